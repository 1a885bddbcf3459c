"""FHIRBundle: resources, typed views, paging, totals and batch/transaction results."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from pymedplum import BundleEntryError, BundleEntryResult, FHIRBundle
from pymedplum.fhir import Bundle as FhirBundle
from pymedplum.fhir import Observation as FhirObservation
from pymedplum.fhir import Patient as FhirPatient

from .fhir_models import Observation, Patient, Untyped

P1 = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Smith"}]}
P2 = {"resourceType": "Patient", "id": "p2"}
PRAC = {"resourceType": "Practitioner", "id": "pr1"}
OBS = {"resourceType": "Observation", "id": "o1", "status": "final"}


def searchset(*resources: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
        **extra,
    }


def response(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch-response", "entry": list(entries)}


# --- construction -----------------------------------------------------------------------


def test_raw_is_the_wrapped_dict() -> None:
    data = searchset(P1)
    assert FHIRBundle(data).raw is data


def test_bundle_model_is_accepted_and_dumped() -> None:
    class Bundle(pydantic.BaseModel):
        resourceType: str = "Bundle"
        entry: list[dict[str, Any]] | None = None

    bundle = FHIRBundle(Bundle(entry=[{"resource": P1}]))
    assert list(bundle) == [P1]


def test_non_bundle_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"data\.resourceType must be 'Bundle'"):
        FHIRBundle({"resourceType": "Patient"})


def test_non_dict_raises_type_error_naming_data() -> None:
    with pytest.raises(TypeError, match="data"):
        FHIRBundle([P1])  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"resourceType": "Bundle", "entry": {}}, r"data\.entry"),
        ({"resourceType": "Bundle", "entry": ["x"]}, r"data\.entry\[0\]"),
        (
            {"resourceType": "Bundle", "entry": [{}, {"resource": "P"}]},
            r"data\.entry\[1\]\.resource",
        ),
        ({"resourceType": "Bundle", "link": "next"}, r"data\.link"),
    ],
)
def test_malformed_entries_raise_value_error_naming_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ValueError, match=path):
        FHIRBundle(data)


def test_as_fhir_must_be_a_model_class() -> None:
    with pytest.raises(TypeError, match="as_fhir"):
        FHIRBundle(searchset(P1), as_fhir=dict)  # type: ignore[type-var]


def test_repr_shows_shape_not_contents() -> None:
    text = repr(FHIRBundle(searchset(P1, total=5)))
    assert text == "FHIRBundle(type='searchset', resources=1, total=5)"
    assert "Smith" not in text


# --- iteration, len, bool ---------------------------------------------------------------


def test_contract_example_iteration_yields_resource_dicts() -> None:
    bundle = FHIRBundle(searchset(P1, P2))
    assert [patient["id"] for patient in bundle] == ["p1", "p2"]


def test_len_counts_entries_with_a_resource() -> None:
    data = searchset(P1, P2)
    data["entry"].append({"fullUrl": "urn:uuid:1", "response": {"status": "204"}})
    assert len(FHIRBundle(data)) == 2


def test_bool_true_with_resources() -> None:
    assert bool(FHIRBundle(searchset(P1))) is True


@pytest.mark.parametrize("data", [searchset(), {"resourceType": "Bundle"}])
def test_empty_bundle_is_falsy_and_empty(data: dict[str, Any]) -> None:
    bundle = FHIRBundle(data)
    assert (bool(bundle), len(bundle), list(bundle), bundle.is_empty()) == (False, 0, [], True)


# --- get_resources ----------------------------------------------------------------------


def test_get_resources_returns_dicts_in_order() -> None:
    assert FHIRBundle(searchset(P1, PRAC, P2)).get_resources() == [P1, PRAC, P2]


def test_get_resources_filters_by_resource_type() -> None:
    assert FHIRBundle(searchset(P1, PRAC, P2)).get_resources("Practitioner") == [PRAC]


def test_get_resources_of_absent_type_is_empty() -> None:
    assert FHIRBundle(searchset(P1)).get_resources("Observation") == []


def test_get_resources_max_resources_guard() -> None:
    with pytest.raises(ValueError, match="max_resources=1"):
        FHIRBundle(searchset(P1, P2)).get_resources(max_resources=1)


def test_get_resources_within_max_resources() -> None:
    assert FHIRBundle(searchset(P1)).get_resources(max_resources=1) == [P1]


# --- typed resources --------------------------------------------------------------------


def test_contract_example_get_resources_typed() -> None:
    patients = FHIRBundle(searchset(P1, P2)).get_resources_typed(Patient)
    assert [p.id for p in patients] == ["p1", "p2"]
    assert patients[0].name is not None and patients[0].name[0].family == "Smith"


def test_get_resources_typed_filters_by_model_resource_type() -> None:
    bundle = FHIRBundle(searchset(P1, PRAC, OBS))
    assert [o.id for o in bundle.get_resources_typed(Observation)] == ["o1"]


def test_get_resources_typed_without_resource_type_validates_all() -> None:
    bundle = FHIRBundle(searchset(P1, PRAC))
    assert [r.id for r in bundle.get_resources_typed(Untyped)] == ["p1", "pr1"]


def test_get_resources_typed_raises_validation_error_for_bad_resource() -> None:
    bundle = FHIRBundle(searchset({"resourceType": "Observation", "id": "o2"}))
    with pytest.raises(pydantic.ValidationError, match="status"):
        bundle.get_resources_typed(Observation)


def test_a_resource_that_does_not_fit_is_located_in_the_bundle() -> None:
    # Before, the error named only the element ("gender"): in a page of 100 entries, which one?
    bad = {"resourceType": "Patient", "id": "p3", "gender": "x", "birthDate": "2020-13"}
    data = searchset(P1, PRAC, bad)
    data["entry"].insert(1, {"fullUrl": "urn:uuid:no-resource"})  # counted: entry.3 below
    for validate in (
        lambda: list(FHIRBundle(data, as_fhir=FhirPatient)),
        lambda: FHIRBundle(data).get_resources_typed(FhirPatient),
    ):
        with pytest.raises(pydantic.ValidationError) as info:
            validate()
        errors = info.value.errors(include_url=False)
        assert [(e["loc"], e["type"]) for e in errors] == [
            (("entry", 3, "resource", "gender"), "literal_error"),
            (("entry", 3, "resource", "birthDate"), "fhir_date"),
        ]
        assert errors[1]["msg"].startswith("Input should be a FHIR date")
        assert "2020-13" not in str(info.value)  # the value stays out of the text (PHI)


def test_get_resources_typed_rejects_non_model() -> None:
    with pytest.raises(TypeError, match="model_class"):
        FHIRBundle(searchset(P1)).get_resources_typed(dict)  # type: ignore[type-var]


def test_as_fhir_iteration_yields_models_for_matching_entries() -> None:
    bundle = FHIRBundle(searchset(P1, P2), as_fhir=Patient)
    patients = [p for p in bundle if isinstance(p, Patient)]
    assert [p.id for p in patients] == ["p1", "p2"]
    assert len(patients) == len(bundle)


def test_as_fhir_iteration_yields_dicts_for_included_resources() -> None:
    data = searchset(P1, PRAC)
    data["entry"][1]["search"] = {"mode": "include"}
    items = list(FHIRBundle(data, as_fhir=Patient))
    assert isinstance(items[0], Patient)
    assert items[1] == PRAC


def test_as_fhir_iteration_is_stable_across_passes() -> None:
    bundle = FHIRBundle(searchset(P1), as_fhir=Patient)
    assert next(iter(bundle)) is next(iter(bundle))


def test_as_fhir_keeps_get_resources_as_dicts() -> None:
    assert FHIRBundle(searchset(P1), as_fhir=Patient).get_resources() == [P1]


def test_as_fhir_with_untyped_model_validates_every_resource() -> None:
    items = list(FHIRBundle(searchset(P1, PRAC), as_fhir=Untyped))
    assert all(isinstance(i, Untyped) for i in items)


# --- links and totals -------------------------------------------------------------------

NEXT = "https://api.medplum.com/fhir/R4/Patient?_count=1&_offset=1"


def test_link_lists_bundle_links() -> None:
    links = [{"relation": "self", "url": "s"}, {"relation": "next", "url": NEXT}]
    assert FHIRBundle(searchset(P1, link=links)).link == links


def test_link_absent_is_empty() -> None:
    assert FHIRBundle(searchset(P1)).link == []


def test_next_link_is_found() -> None:
    bundle = FHIRBundle(
        searchset(P1, link=[{"relation": "self", "url": "s"}, {"relation": "next", "url": NEXT}])
    )
    assert bundle.get_next_link() == NEXT


def test_next_link_absent_on_last_page() -> None:
    assert (
        FHIRBundle(searchset(P1, link=[{"relation": "self", "url": "s"}])).get_next_link() is None
    )


def test_total_from_bundle_total() -> None:
    bundle = FHIRBundle(searchset(P1, total=42, link=[{"relation": "next", "url": NEXT}]))
    assert (bundle.total, bundle.get_total()) == (42, 42)


def test_total_of_count_only_bundle() -> None:
    assert FHIRBundle({"resourceType": "Bundle", "type": "searchset", "total": 7}).total == 7


def test_total_without_field_counts_matches_on_single_page() -> None:
    data = searchset(P1, P2, PRAC)
    data["entry"][2]["search"] = {"mode": "include"}
    data["entry"][0]["search"] = {"mode": "match"}
    assert FHIRBundle(data).total == 2


def test_total_without_field_is_none_when_more_pages_exist() -> None:
    assert FHIRBundle(searchset(P1, link=[{"relation": "next", "url": NEXT}])).total is None


# --- batch / transaction results --------------------------------------------------------


def test_entry_results_parse_status_and_location() -> None:
    bundle = FHIRBundle(
        response(
            {
                "response": {
                    "status": "201 Created",
                    "location": "Patient/123/_history/1",
                    "etag": 'W/"1"',
                }
            }
        )
    )
    assert bundle.entry_results() == [
        BundleEntryResult(
            index=0,
            status_code=201,
            ok=True,
            resource_id="123",
            resource=None,
            outcome=None,
            location="Patient/123/_history/1",
            etag='W/"1"',
        )
    ]


@pytest.mark.parametrize(
    ("location", "resource_id"),
    [
        ("Patient/123", "123"),
        ("https://api.medplum.com/fhir/R4/Patient/abc/_history/9", "abc"),
        ("Patient/xyz?_format=json", "xyz"),
        # Not a Type/id location: no id from it (was "Patient", "a b", "_history").
        ("Patient/", None),
        ("Patient/a b", None),
        ("https://host/fhir/R4/Patient/_history/2", None),
    ],
)
def test_entry_result_id_from_location_forms(location: str, resource_id: str | None) -> None:
    bundle = FHIRBundle(response({"response": {"status": "200 OK", "location": location}}))
    assert bundle.entry_results()[0].resource_id == resource_id


def test_entry_result_id_falls_back_to_resource_id() -> None:
    bundle = FHIRBundle(response({"resource": P1, "response": {"status": "200 OK"}}))
    result = bundle.entry_results()[0]
    assert (result.resource_id, result.resource) == ("p1", P1)


@pytest.mark.parametrize(
    ("status", "code", "ok"),
    [
        ("200", 200, True),
        ("204 No Content", 204, True),
        ("404 Not Found", 404, False),
        ("412 Precondition Failed", 412, False),
        ("garbage", None, False),
        (None, None, False),
        (201, 201, True),
    ],
)
def test_entry_result_status_parsing(status: Any, code: int | None, ok: bool) -> None:
    result = FHIRBundle(response({"response": {"status": status}})).entry_results()[0]
    assert (result.status_code, result.ok) == (code, ok)


def test_entry_without_response_is_not_ok() -> None:
    result = FHIRBundle(searchset(P1)).entry_results()[0]
    assert (result.status_code, result.ok, result.resource_id) == (None, False, "p1")


OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "not-found"}],
}
MIXED = response(
    {"response": {"status": "201 Created", "location": "Patient/1/_history/1"}},
    {"response": {"status": "404 Not Found", "outcome": OUTCOME}},
    {"response": {"status": "200 OK"}, "resource": P2},
    {"response": {"status": "412 Precondition Failed"}},
)


def test_failures_lists_non_2xx_entries_with_outcome() -> None:
    failures = FHIRBundle(MIXED).failures()
    assert [(f.index, f.status_code) for f in failures] == [(1, 404), (3, 412)]
    assert failures[0].outcome == OUTCOME


def test_partition_splits_successes_and_failures() -> None:
    successes, failures = FHIRBundle(MIXED).partition()
    assert ([s.index for s in successes], [f.index for f in failures]) == ([0, 2], [1, 3])


def test_raise_for_entry_errors_raises_with_failed_entries() -> None:
    with pytest.raises(BundleEntryError) as info:
        FHIRBundle(MIXED).raise_for_entry_errors()
    assert [e.index for e in info.value.entries] == [1, 3]
    assert str(info.value) == "2 bundle entries failed (entry 1: 404, entry 3: 412)"


def test_bundle_entry_error_log_form_has_no_outcome() -> None:
    with pytest.raises(BundleEntryError) as info:
        FHIRBundle(MIXED).raise_for_entry_errors()
    assert info.value.sanitize_for_logging() == {
        "type": "BundleEntryError",
        "failed_count": 2,
        "entries": [{"index": 1, "status_code": 404}, {"index": 3, "status_code": 412}],
    }


def test_bundle_entry_error_survives_pickling() -> None:
    # A worker process or task queue sends the exception pickled: rebuilt from its message,
    # it failed with AttributeError ('str' object has no attribute 'status_code').
    import pickle

    with pytest.raises(BundleEntryError) as info:
        FHIRBundle(MIXED).raise_for_entry_errors()
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value) and again.entries == info.value.entries
    assert again.sanitize_for_logging() == info.value.sanitize_for_logging()


def test_raise_for_entry_errors_passes_when_all_ok() -> None:
    ok = response({"response": {"status": "201 Created"}}, {"response": {"status": "200 OK"}})
    FHIRBundle(ok).raise_for_entry_errors()
    assert FHIRBundle(ok).failures() == []


def test_a_bundle_model_wrapped_in_fhirbundle_types_its_resources_with_their_text() -> None:
    # FHIRBundle(model) works on the model's plain dict, where 1.50 is the float 1.5: the
    # typed resources came out with 1.5 and 0.0000001 where the Bundle held 1.50 and 1e-7.
    observation = (
        '{"resourceType":"Observation","status":"final","code":{"text":"x"},'
        '"valueQuantity":{"value":1.50},"referenceRange":[{"low":{"value":1e-7}}],'
        '"unknownElement":[0.10]}'
    )
    model = FhirBundle.model_validate_json(
        '{"resourceType":"Bundle","type":"collection","entry":[{"resource":'
        + observation
        + '},{"resource":{"resourceType":"Patient","id":"p"}}]}'
    )
    bundle = FHIRBundle(model, as_fhir=FhirObservation)
    (typed,) = bundle.get_resources_typed(FhirObservation)
    iterated, patient = list(bundle)
    for obs in (typed, iterated):
        assert isinstance(obs, FhirObservation)
        assert obs.model_dump_json(by_alias=True, exclude_none=True) == observation
    assert patient == {"resourceType": "Patient", "id": "p"}
    assert bundle.raw["entry"][0]["resource"]["valueQuantity"] == {"value": 1.5}
    assert FHIRBundle(FhirBundle(type="collection")).get_resources_typed(FhirObservation) == []

"""The errors a new user's common mistakes produce say what to fix (both clients)."""

from __future__ import annotations

import httpx
import pytest

from pymedplum import AuthenticationError, BadRequestError, NotFoundError, OperationOutcomeError
from tests.qa.conftest import QA

pytestmark = pytest.mark.anyio

NOT_FOUND = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "not-found", "diagnostics": "Not found"}],
}
INVALID = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "invalid", "diagnostics": "Unknown resource type"}],
}


async def test_a_misspelt_resource_type_suggests_the_known_one(qa: QA) -> None:
    qa.handler = lambda request: httpx.Response(404, json=NOT_FOUND)
    with pytest.raises(NotFoundError) as info:
        await qa.call(qa.client(), "read_resource", "Patinet", "123")
    assert str(info.value) == (
        "HTTP 404 Not Found from GET /fhir/R4/Patinet/{id} [error/not-found]; "
        "'Patinet' is not a FHIR R4 or Medplum resource type (did you mean 'Patient'?)"
    )


async def test_an_unknown_resource_type_in_a_body_is_named_on_the_400(qa: QA) -> None:
    qa.handler = lambda request: httpx.Response(400, json=INVALID)
    with pytest.raises(BadRequestError) as info:
        await qa.call(qa.client(), "create_resource", {"resourceType": "Widget"})
    assert str(info.value) == (
        "HTTP 400 Bad Request from POST /fhir/R4/Widget [error/invalid]; "
        "'Widget' is not a FHIR R4 or Medplum resource type; "
        "the server's explanation is in exc.outcome (not shown: it may contain PHI)"
    )


EXPLAINED = "; the server's explanation is in exc.outcome (not shown: it may contain PHI)"


@pytest.mark.parametrize(
    ("issue", "suffix"),
    [
        # What Medplum answers an unknown search parameter: the reason is only in details.text.
        ({"details": {"text": "Unknown search parameter: famly"}}, EXPLAINED),
        ({"diagnostics": "Value required at path: /active"}, EXPLAINED),
        ({"details": {"text": "  "}, "diagnostics": ""}, ""),  # blank text explains nothing
        ({}, ""),
    ],
)
async def test_a_400_says_where_the_servers_explanation_is(
    qa: QA, issue: dict[str, object], suffix: str
) -> None:
    # The message shows only "[error/invalid]" (free text may echo PHI); a new user saw no
    # reason and no pointer to exc.outcome, where the reason is.
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", **issue}],
    }
    qa.handler = lambda request: httpx.Response(400, json=outcome)
    with pytest.raises(BadRequestError) as info:
        await qa.call(qa.client(), "search_resources", "Patient", {"famly": "Smith"})
    assert str(info.value) == (
        "HTTP 400 Bad Request from GET /fhir/R4/Patient [error/invalid]" + suffix
    )
    assert "famly" not in str(info.value) and "/active" not in str(info.value)


async def test_a_422_with_an_explanation_points_at_it_and_a_404_does_not(qa: QA) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": "why"}],
    }
    qa.handler = lambda request: httpx.Response(422, json=outcome)
    with pytest.raises(OperationOutcomeError) as info:
        await qa.call(qa.client(), "read_resource", "Patient", "1")
    assert str(info.value).endswith("[error/processing]" + EXPLAINED)
    qa.handler = lambda request: httpx.Response(404, json=NOT_FOUND)  # "Not found" says it all
    with pytest.raises(NotFoundError) as info:
        await qa.call(qa.client(), "read_resource", "Patient", "1")
    assert not str(info.value).endswith(EXPLAINED)


async def test_a_missing_resource_of_a_known_type_gets_no_hint(qa: QA) -> None:
    qa.handler = lambda request: httpx.Response(404, json=NOT_FOUND)
    with pytest.raises(NotFoundError) as info:
        await qa.call(
            qa.client(), "read_resource", "Patient", "0b9f6a52-3c1d-4e8f-a7b6-5d4c3b2a1f0e"
        )
    assert str(info.value) == "HTTP 404 Not Found from GET /fhir/R4/Patient/{id} [error/not-found]"


async def test_a_missing_resource_whose_id_is_not_a_uuid_says_medplum_ids_are_uuids(
    qa: QA,
) -> None:
    # Medplum 5.0.10 answers 404 for any id that is not a UUID (Repository.readResourceImpl).
    qa.handler = lambda request: httpx.Response(404, json=NOT_FOUND)
    with pytest.raises(NotFoundError) as info:
        await qa.call(qa.client(), "read_resource", "Patient", "does-not-exist")
    assert str(info.value) == (
        "HTTP 404 Not Found from GET /fhir/R4/Patient/{id} [error/not-found]"
        "; the id is not a UUID, and every Medplum id is one (404 for any other)"
    )


async def test_a_401_to_a_client_without_credentials_says_so(qa: QA) -> None:
    qa.handler = lambda request: httpx.Response(401, json=NOT_FOUND)
    with pytest.raises(AuthenticationError, match="the client has no credentials"):
        await qa.call(qa.client(access_token=None), "read_resource", "Patient", "1")


NAME_WANTED = "resource_type must be a str, got the Patient class: pass 'Patient'"
RESOURCE_WANTED = (
    "resource must be a dict or a pydantic model, got the Patient class itself: "
    "pass a resource, Patient(...)"
)


@pytest.mark.parametrize(
    ("method", "args", "message"),
    [
        ("read_resource", "class_id", NAME_WANTED),
        ("search_resources", "class", NAME_WANTED),
        ("create_resource", "class", RESOURCE_WANTED),
        ("update_resource", "class", RESOURCE_WANTED),
    ],
)
async def test_a_model_class_where_a_name_or_a_resource_is_wanted(
    qa: QA, method: str, args: str, message: str
) -> None:
    # A typed-models user writes read_resource(Patient, "1") or create_resource(Patient): the
    # message said only "got ModelMetaclass".
    from pymedplum.fhir import Patient

    call_args = (Patient, "1") if args == "class_id" else (Patient,)
    with pytest.raises(TypeError) as info:
        await qa.call(qa.client(), method, *call_args)
    assert str(info.value) == message
    assert qa.requests == []


async def test_another_class_as_a_resource_type_is_named_as_that_class(qa: QA) -> None:
    # Not a model: no type name to suggest, but not "got type" (its metaclass) either.
    with pytest.raises(TypeError) as info:
        await qa.call(qa.client(), "read_resource", dict, "1")
    assert str(info.value) == "resource_type must be a str, got the dict class"
    assert qa.requests == []


BUNDLE = {"resourceType": "Bundle", "type": "searchset", "entry": []}


@pytest.mark.parametrize("method", ["search_resources", "search_with_options"])
async def test_as_fhir_without_return_bundle_warns_at_the_callers_line(qa: QA, method: str) -> None:
    # The contract applies as_fhir to the FHIRBundle only: search_resources("Patient",
    # as_fhir=Patient) returned the Bundle dict without a word, as if the SDK had a bug.
    from pymedplum.fhir import Patient

    qa.handler = lambda request: httpx.Response(200, json=BUNDLE)
    with pytest.warns(UserWarning) as caught:
        result = await qa.call(qa.client(), method, "Patient", as_fhir=Patient)
    assert result == BUNDLE  # still the dict, as the contract says
    [warning] = caught.list
    assert str(warning.message) == (
        "as_fhir=Patient has no effect without return_bundle=True: the Bundle dict is "
        "returned. Pass return_bundle=True for a FHIRBundle of Patient models, or iterate "
        "search_resource_pages(..., as_fhir=Patient)"
    )
    assert "/src/pymedplum/" not in warning.filename.replace("\\", "/")


async def test_no_warning_with_return_bundle_or_without_as_fhir(qa: QA) -> None:
    import warnings

    from pymedplum.fhir import Patient

    qa.handler = lambda request: httpx.Response(200, json=BUNDLE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await qa.call(
            qa.client(), "search_resources", "Patient", return_bundle=True, as_fhir=Patient
        )
        await qa.call(qa.client(), "search_resources", "Patient")


async def test_a_stored_resource_that_does_not_fit_as_fhir_names_the_answer(qa: QA) -> None:
    # Medplum stores gender "banana"; create_resource(..., as_fhir=Patient) then raised a
    # ValidationError titled just "Patient", like the caller's own invalid input, although the
    # create was applied: sent again, it made a duplicate.
    import pydantic

    from pymedplum.fhir import Patient

    stored = {"resourceType": "Patient", "id": "p1", "gender": "banana"}
    qa.handler = lambda request: httpx.Response(
        201 if request.method == "POST" else 200, json=stored
    )
    with pytest.raises(pydantic.ValidationError) as created:
        await qa.call(qa.client(), "create_resource", {"resourceType": "Patient"}, as_fhir=Patient)
    assert created.value.title == (
        "Patient (the server's answer, HTTP 201 from POST /fhir/R4/Patient; the server "
        "reported success, so it was most likely applied)"
    )
    assert [e["loc"] for e in created.value.errors()] == [("gender",)]
    assert "banana" not in str(created.value)  # server data stays out of the message
    with pytest.raises(pydantic.ValidationError) as read:
        await qa.call(qa.client(), "read_resource", "Patient", "p1", as_fhir=Patient)
    assert (
        read.value.title == "Patient (the server's answer, HTTP 200 from GET /fhir/R4/Patient/{id})"
    )
    assert read.value.errors()[0]["type"] == "literal_error"


LOW_LEVEL_HINT = (
    "; 'Patient' is a FHIR resource type: a low-level path is relative to base_url, "
    "so a FHIR one starts with 'fhir/R4/' ('fhir/R4/Patient')"
)


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "Patient"), ("get", "Patient/123"), ("post", "Patient"), ("delete", "/Patient/1")],
)
async def test_a_low_level_fhir_path_without_the_fhir_base_says_so(
    qa: QA, method: str, path: str
) -> None:
    # A new user wrote client.get("Patient", params=...) as with the endpoint methods and got
    # "HTTP 404 Not Found from GET /{id} [error/not-found]", the type hidden as {id}.
    qa.handler = lambda request: httpx.Response(404, json=NOT_FOUND)
    with pytest.raises(NotFoundError) as info:
        await qa.call(qa.client(), method, path)
    assert str(info.value).endswith("[error/not-found]" + LOW_LEVEL_HINT)
    assert "123" not in str(info.value)


@pytest.mark.parametrize("path", ["fhir/R4/Patient/1", "admin/projects/1", "patient", "Patinet"])
async def test_other_low_level_404s_get_no_fhir_base_hint(qa: QA, path: str) -> None:
    qa.handler = lambda request: httpx.Response(404, json=NOT_FOUND)
    with pytest.raises(NotFoundError) as info:
        await qa.call(qa.client(), "get", path)
    assert "low-level path" not in str(info.value)


@pytest.mark.parametrize(
    "query", [{"identifier": "urn:mrn|1"}, [("identifier", "urn:mrn|1")]], ids=["dict", "pairs"]
)
async def test_an_if_none_exist_given_as_a_search_query_mapping_says_how_to_build_the_str(
    qa: QA, query: object
) -> None:
    # The searches take a dict, so a new user passed one here too and read only "must be a str,
    # got dict".
    with pytest.raises(TypeError) as info:
        await qa.call(
            qa.client(), "create_resource_if_none_exist", {"resourceType": "Patient"}, query
        )
    kind = type(query).__name__
    assert str(info.value) == (
        f"if_none_exist must be a str, got {kind}: a search query string such as "
        "'identifier=urn:mrn|123'; build it with urllib.parse.urlencode(...)"
    )
    assert "urn:mrn|1'" not in str(info.value)  # the caller's value (PHI) is not repeated
    assert qa.requests == []


@pytest.mark.parametrize("method", ["search_resources", "search_with_options"])
async def test_a_model_class_in_return_bundles_place_says_to_pass_it_as_as_fhir(
    qa: QA, method: str
) -> None:
    # read_resource("Patient", "1", Patient) works positionally, so a new user wrote
    # search_resources("Patient", query, Patient) and read "got ModelMetaclass".
    from pymedplum.fhir import Patient

    with pytest.raises(TypeError) as info:
        if method == "search_resources":
            await qa.call(qa.client(), method, "Patient", {"family": "x"}, Patient)
        else:
            await qa.call(qa.client(), method, "Patient", return_bundle=Patient)
    assert str(info.value) == (
        "return_bundle must be True or False, got the Patient class: pass it as "
        "as_fhir=Patient, with return_bundle=True for a FHIRBundle of Patient models"
    )
    assert qa.requests == []


@pytest.mark.parametrize(
    ("method", "before", "message"),
    [
        ("search_resource_pages", ("Patient",), "query must be a mapping, a list of (name, value) "
         "pairs or a str, got the Patient class"),
        ("search_one", ("Patient",), "query must be a mapping, a list of (name, value) pairs or "
         "a str, got the Patient class"),
        ("read_resource", ("Patient",), "resource_id must be a str, got the Patient class"),
        ("create_resource_if_none_exist", ({"resourceType": "Patient"},),
         "if_none_exist must be a str, got the Patient class"),
    ],
)  # fmt: skip
async def test_a_model_class_where_a_str_or_a_query_goes_is_named_as_that_class(
    qa: QA, method: str, before: tuple[object, ...], message: str
) -> None:
    # The messages said "got ModelMetaclass", the name of pydantic's metaclass.
    from pymedplum.fhir import Patient

    with pytest.raises(TypeError) as info:
        # search_resource_pages checks its arguments when called, before iterating.
        await qa.call(qa.client(), method, *before, Patient)
    assert str(info.value) == message
    assert qa.requests == []


@pytest.mark.parametrize("as_model", [False, True], ids=["dict", "model"])
@pytest.mark.parametrize(
    ("method", "before"),
    [("read_resource", ("Patient",)), ("delete_resource", ("Patient",)), ("download_binary", ())],
)
async def test_a_resource_passed_as_an_id_says_to_pass_its_id(
    qa: QA, method: str, before: tuple[object, ...], as_model: bool
) -> None:
    # read_resource("Patient", patient) / download_binary(upload_binary(...)): the message said
    # only "got dict" (or the model's class), not that the resource's id is wanted.
    from pymedplum.fhir import Binary, Patient

    kind = "Binary" if method == "download_binary" else "Patient"
    data = {"resourceType": kind, "id": "secret-id-1"}
    if kind == "Binary":
        data["contentType"] = "text/plain"
    value = (Binary if kind == "Binary" else Patient).model_validate(data) if as_model else data
    arg = "binary_id" if kind == "Binary" else "resource_id"
    with pytest.raises(TypeError) as info:
        await qa.call(qa.client(), method, *before, value)
    assert str(info.value) == (
        f"{arg} must be a str, got a {kind} resource: pass its id, not the resource"
    )
    assert "secret-id-1" not in str(info.value)
    assert qa.requests == []

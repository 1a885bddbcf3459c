"""Search operations of both clients against the live local server: paging across pages,
search_one, search_with_options, FHIRBundle with typed resources, typed query shapes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sdk_clients import Api, unique

from pymedplum import BadRequestError, FHIRBundle, UnsafeRedirectError
from pymedplum.fhir import Observation, Patient
from pymedplum.search_params import ObservationSearchParams, PatientSearchParams

pytestmark = pytest.mark.anyio

CODES = "urn:pymedplum:test-codes"


async def seed_observations(
    api: Api, count: int, subject: str | None = None
) -> tuple[str, set[str]]:
    """``count`` Observations sharing a fresh code (one batch); returns the code and the ids."""
    code = unique("obs")
    entries = []
    for i in range(count):
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": CODES, "code": code}]},
            "valueQuantity": {"value": i, "unit": "1"},
        }
        if subject is not None:
            resource["subject"] = {"reference": subject}
        entries.append({"resource": resource, "request": {"method": "POST", "url": "Observation"}})
    response = await api.call(
        "execute_batch", {"resourceType": "Bundle", "type": "batch", "entry": entries}
    )
    ids = {e["resource"]["id"] for e in response["entry"]}
    assert len(ids) == count
    return code, ids


async def seed_patients(api: Api, birth_dates: list[str]) -> tuple[str, list[dict[str, Any]]]:
    family = unique("Fam")
    created = []
    for birth_date in birth_dates:
        patient = {
            "resourceType": "Patient",
            "name": [{"family": family, "given": ["Ann"]}],
            "birthDate": birth_date,
            "active": True,
        }
        created.append(await api.call("create_resource", patient))
    return family, created


def search_requests(api: Api) -> list[Any]:
    return [e for e in api.fhir_events() if e.action == "search"]


# --- paging ---------------------------------------------------------------------------------------


async def test_search_resource_pages_follows_next_links_across_pages(api: Api) -> None:
    code, ids = await seed_observations(api, 25)
    api.events.clear()
    query: ObservationSearchParams = {"code": f"{CODES}|{code}", "_count": 10}
    seen = [obs["id"] for obs in await api.collect("search_resource_pages", "Observation", query)]
    assert sorted(seen) == sorted(ids)  # every resource once, none twice
    pages = search_requests(api)
    assert len(pages) == 3  # 10 + 10 + 5
    offsets = [(e.query_params or {}).get("_offset", ["0"])[0] for e in pages]
    assert offsets == ["0", "10", "20"]


async def test_search_resource_pages_typed(api: Api) -> None:
    code, ids = await seed_observations(api, 21)
    typed = await api.collect(
        "search_resource_pages",
        "Observation",
        [("code", f"{CODES}|{code}"), ("_count", "7")],
        as_fhir=Observation,
    )
    assert all(isinstance(obs, Observation) for obs in typed)
    assert {obs.id for obs in typed} == ids
    assert {obs.status for obs in typed} == {"final"}
    assert len(search_requests(api)) == 3


async def test_search_resource_pages_is_lazy(api: Api) -> None:
    code, _ = await seed_observations(api, 6)
    api.events.clear()
    iterator = api.iterate(
        "search_resource_pages", "Observation", {"code": f"{CODES}|{code}", "_count": 2}
    )
    first = await iterator.__anext__() if api.is_async else next(iterator)
    assert first["resourceType"] == "Observation"
    assert len(search_requests(api)) == 1  # only the first page was fetched
    if api.is_async:
        await iterator.aclose()
    else:
        iterator.close()


async def test_search_resource_pages_with_no_match_yields_nothing(api: Api) -> None:
    assert await api.collect("search_resource_pages", "Patient", {"family": unique("none")}) == []


# --- search_resources / FHIRBundle ----------------------------------------------------------------


async def test_search_resources_dict_and_bundle(api: Api) -> None:
    family, created = await seed_patients(api, ["1980-01-01", "1981-01-01"])
    ids = {p["id"] for p in created}
    raw = await api.call("search_resources", "Patient", {"family": family})
    assert raw["resourceType"] == "Bundle" and raw["type"] == "searchset"
    assert {e["resource"]["id"] for e in raw["entry"]} == ids
    bundle = await api.call("search_resources", "Patient", {"family": family}, return_bundle=True)
    assert isinstance(bundle, FHIRBundle)
    assert {p["id"] for p in bundle} == ids and len(bundle) == 2
    typed = await api.call(
        "search_resources", "Patient", {"family": family}, return_bundle=True, as_fhir=Patient
    )
    patients = typed.get_resources_typed(Patient)
    assert {p.id for p in patients} == ids
    assert all(isinstance(p, Patient) for p in typed)


async def test_typed_search_params_and_list_of_tuples(api: Api) -> None:
    family, _ = await seed_patients(api, ["1970-05-05", "1990-06-06", "2010-07-07"])
    query: PatientSearchParams = {"family": family, "birthdate": "ge1980-01-01"}
    found = await api.call("search_resources", "Patient", query, return_bundle=True)
    assert {p["birthDate"] for p in found} == {"1990-06-06", "2010-07-07"}
    # Repeated parameters (a date range) need the list-of-tuples form.
    ranged = await api.call(
        "search_resources",
        "Patient",
        [("family", family), ("birthdate", "ge1980-01-01"), ("birthdate", "le2000-01-01")],
        return_bundle=True,
    )
    assert [p["birthDate"] for p in ranged] == ["1990-06-06"]
    assert api.fhir_events()[-1].query_params == {
        "family": [family],
        "birthdate": ["ge1980-01-01", "le2000-01-01"],
    }
    # A dict value that is a list repeats the parameter too.
    listed = await api.call(
        "search_resources",
        "Patient",
        {"family": family, "birthdate": ["ge1980-01-01", "le2000-01-01"]},
        return_bundle=True,
    )
    assert [p["birthDate"] for p in listed] == ["1990-06-06"]


async def test_unknown_search_parameter_is_bad_request(api: Api) -> None:
    with pytest.raises(BadRequestError) as bad:
        await api.call("search_resources", "Patient", {"no-such-param": "x"})
    assert bad.value.status_code == 400


@pytest.mark.parametrize("method", ["search_resources", "search_one", "search_with_options"])
async def test_a_misspelt_resource_type_is_bad_request_naming_the_type(
    api: Api, method: str
) -> None:
    # Medplum checks the type before searching (search.ts validateSearchResourceType): 400
    # 'Unknown resource type', which the SDK's message completes with the likely type.
    with pytest.raises(BadRequestError) as bad:
        await api.call(method, "Patinet", {"name": "x"})
    assert bad.value.status_code == 400
    assert "'Patinet' is not a FHIR R4 or Medplum resource type (did you mean 'Patient'?)" in str(
        bad.value
    )


async def test_binary_is_not_searchable(api: Api) -> None:
    with pytest.raises(BadRequestError) as bad:
        await api.call("search_resources", "Binary", {})
    outcome = bad.value.outcome
    assert outcome is not None
    assert outcome["issue"][0]["details"]["text"] == "Cannot search on Binary resource type"


# --- search_one -----------------------------------------------------------------------------------


async def test_search_one(api: Api) -> None:
    family, created = await seed_patients(api, ["1975-01-01", "1976-01-01"])
    found = await api.call("search_one", "Patient", {"family": family, "_count": 50})
    assert found is not None and found["id"] in {p["id"] for p in created}
    assert api.fhir_events()[-1].query_params == {"family": [family], "_count": ["1"]}
    assert await api.call("search_one", "Patient", {"family": unique("nobody")}) is None
    mrn = unique("mrn")
    await api.call(
        "create_resource",
        {"resourceType": "Patient", "identifier": [{"system": "MRN", "value": mrn}]},
    )
    by_identifier = await api.call("search_one", "Patient", [("identifier", f"MRN|{mrn}")])
    assert by_identifier is not None and by_identifier["identifier"][0]["value"] == mrn


# --- search_with_options --------------------------------------------------------------------------


async def test_search_with_options_summary_count_and_total(api: Api) -> None:
    family, _ = await seed_patients(api, ["1960-01-01", "1961-01-01", "1962-01-01"])
    result = await api.call("search_with_options", "Patient", {"family": family}, summary="count")
    assert result["total"] == 3 and not result.get("entry")
    bundle = await api.call(
        "search_with_options", "Patient", {"family": family}, total="accurate", return_bundle=True
    )
    assert bundle.total == 3 and len(bundle) == 3
    # searchWithOptions is the same method under Medplum's TypeScript name.
    alias = await api.call("searchWithOptions", "Patient", {"family": family}, summary="count")
    assert alias["total"] == 3


async def test_search_with_options_elements_subset_resources(api: Api) -> None:
    family, _ = await seed_patients(api, ["1950-03-03"])
    result = await api.call(
        "search_with_options", "Patient", {"family": family}, elements=["name", "birthDate"]
    )
    (resource,) = [e["resource"] for e in result["entry"]]
    assert resource["birthDate"] == "1950-03-03" and resource["name"][0]["family"] == family
    assert "active" not in resource  # not asked for
    assert any(t.get("code") == "SUBSETTED" for t in resource["meta"].get("tag", []))
    assert api.fhir_events()[-1].query_params == {
        "family": [family],
        "_elements": ["name,birthDate"],
    }


async def test_search_with_options_sort_count_offset(api: Api) -> None:
    dates = ["2001-01-01", "1999-01-01", "2003-01-01", "2002-01-01"]
    family, _ = await seed_patients(api, dates)
    descending = await api.call(
        "search_with_options", "Patient", {"family": family}, sort="-birthdate", return_bundle=True
    )
    assert [p["birthDate"] for p in descending] == sorted(dates, reverse=True)
    window = await api.call(
        "search_with_options",
        "Patient",
        {"family": family},
        sort=["birthdate"],
        count=2,
        offset=1,
        return_bundle=True,
        as_fhir=Patient,
    )
    assert [str(p.birth_date) for p in window] == ["2001-01-01", "2002-01-01"]
    assert api.fhir_events()[-1].query_params == {
        "family": [family],
        "_count": ["2"],
        "_offset": ["1"],
        "_sort": ["birthdate"],
    }
    # Several sort keys go out as one comma-separated _sort. (The local server's memory
    # repository orders by the last key only, so only the request is checked here.)
    both = await api.call(
        "search_with_options", "Patient", {"family": family}, sort=["birthdate", "-_id"]
    )
    assert len(both["entry"]) == 4
    assert api.fhir_events()[-1].query_params == {
        "family": [family],
        "_sort": ["birthdate,-_id"],
    }
    with pytest.raises(ValueError, match="_count"):
        await api.call("search_with_options", "Patient", {"_count": 3}, count=2)


async def test_search_with_options_include_and_revinclude(api: Api) -> None:
    org = await api.call("create_resource", {"resourceType": "Organization", "name": unique("O")})
    patient = await api.call(
        "create_resource",
        {
            "resourceType": "Patient",
            "name": [{"family": unique("Inc")}],
            "managingOrganization": {"reference": f"Organization/{org['id']}"},
        },
    )
    code, obs_ids = await seed_observations(api, 2, subject=f"Patient/{patient['id']}")
    bundle = await api.call(
        "search_with_options",
        "Observation",
        {"code": f"{CODES}|{code}"},
        include="Observation:patient",
        include_iterate="Patient:organization",
        return_bundle=True,
        as_fhir=Observation,
    )
    assert {o.id for o in bundle.get_resources_typed(Observation)} == obs_ids
    included = {(r["resourceType"], r["id"]) for r in bundle if isinstance(r, dict)}
    assert included == {("Patient", patient["id"]), ("Organization", org["id"])}
    assert api.fhir_events()[-1].query_params == {
        "code": [f"{CODES}|{code}"],
        "_include": ["Observation:patient"],
        "_include:iterate": ["Patient:organization"],
    }
    reverse = await api.call(
        "search_with_options",
        "Patient",
        {"_id": patient["id"]},
        revinclude="Observation:patient",
    )
    kinds = sorted(
        (e["resource"]["resourceType"], e.get("search", {}).get("mode")) for e in reverse["entry"]
    )
    assert kinds == [("Observation", "include"), ("Observation", "include"), ("Patient", "match")]


async def test_next_link_on_another_origin_is_refused(make_api: Any) -> None:
    # The server builds its links from the address it listens on (127.0.0.1); a client
    # configured with http://localhost:<port>/ sees them as another origin, as behind a proxy
    # that rewrites the host. The first page is served, the next link is not followed.
    server = make_api().server
    port = httpx.URL(server.base_url).port
    api = make_api()
    family = unique("Origin")
    for _ in range(3):
        await api.call("create_resource", {"resourceType": "Patient", "name": [{"family": family}]})
    other = make_api(base_url=f"http://localhost:{port}/")
    iterator = other.iterate("search_resource_pages", "Patient", {"family": family, "_count": 2})
    seen = []
    with pytest.raises(UnsafeRedirectError):
        if other.is_async:
            async for patient in iterator:
                seen.append(patient["id"])
        else:
            for patient in iterator:
                seen.append(patient["id"])
    assert len(seen) == 2  # the first page only
    assert len(search_requests(other)) == 1


async def test_typed_include_search_keeps_decimal_text_and_plain_dicts(api: Api) -> None:
    # Medplum (JavaScript) writes 1e-7 and 1.5e+21 in exponent form: the typed results keep
    # that text (a typed search wrote them back as 0.0000001 and an integer), and the included
    # resources are plain JSON as without as_fhir (they held Decimals: json.dumps failed).
    patient = await api.call(
        "create_resource",
        {
            "resourceType": "Patient",
            "name": [{"family": unique("Dec"), "given": ["Zoë 🧬", "e\u0301"]}],
            "extension": [{"url": "urn:x", "valueDecimal": 2.5}],
        },
    )
    observation = Observation.model_validate_json(
        '{"resourceType":"Observation","status":"final","code":{"text":"x"},'
        f'"subject":{{"reference":"Patient/{patient["id"]}"}},'
        '"valueQuantity":{"value":1e-7},"referenceRange":[{"high":{"value":1.5e+21}}]}'
    )
    created = await api.call("create_resource", observation, as_fhir=Observation)
    typed = await api.call(
        "search_with_options",
        "Observation",
        {"_id": created.id},
        include="Observation:subject",
        return_bundle=True,
        as_fhir=Observation,
    )
    plain = await api.call(
        "search_with_options",
        "Observation",
        {"_id": created.id},
        include="Observation:subject",
        return_bundle=True,
    )
    (found,) = typed.get_resources_typed(Observation)
    (paged,) = await api.collect(
        "search_resource_pages", "Observation", {"_id": created.id}, as_fhir=Observation
    )
    for result in (found, paged):
        text = result.model_dump_json(by_alias=True, exclude_none=True)
        assert '"valueQuantity":{"value":1e-7}' in text
        assert '"high":{"value":1.5e+21}' in text
    assert json.dumps(typed.raw) == json.dumps(plain.raw)
    (included,) = [r for r in typed if isinstance(r, dict)]
    assert included["extension"] == [{"url": "urn:x", "valueDecimal": 2.5}]
    assert included["name"][0]["given"] == ["Zoë 🧬", "e\u0301"]


async def test_an_empty_searchset_has_no_entry_element_and_reads_as_empty(api: Api) -> None:
    # Medplum writes FHIR JSON with core's stringify (packages/server/src/fhir/routes.ts:96-107,
    # core/src/utils.ts stringify), which leaves empty arrays out: no "entry": [] when nothing
    # matches. Every reading of the page copes with the missing element.
    family = unique("Nobody")
    found = await api.call("search_resources", "Patient", {"family": family})
    assert found["resourceType"] == "Bundle" and "entry" not in found
    bundle = await api.call("search_resources", "Patient", {"family": family}, return_bundle=True)
    assert list(bundle) == [] and len(bundle) == 0
    assert await api.call("search_one", "Patient", {"family": family}) is None
    assert await api.collect("search_resource_pages", "Patient", {"family": family}) == []
    counted = await api.call(
        "search_with_options", "Patient", {"family": family}, summary="count", total="accurate"
    )
    assert counted["total"] == 0 and "entry" not in counted

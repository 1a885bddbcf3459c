"""Every code example of the client sections of the API contract, run on both clients against
an in-memory Medplum (``fake_medplum.FakeMedplum``). The statements follow the contract's
examples (with the generated ``pymedplum.fhir`` models); ``await h.call(...)`` stands for the
plain call on the sync client."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from pymedplum import (
    AsyncMedplumClient,
    NotFoundError,
    OperationOutcomeError,
    PreconditionFailedError,
    ServerError,
    make_project_membership_access,
)
from pymedplum.fhir import Observation, Patient

from .fake_medplum import FakeMedplum

pytestmark = pytest.mark.anyio


@pytest.fixture
def server() -> FakeMedplum:
    return FakeMedplum()


@pytest.fixture
def h(make: Any, server: FakeMedplum) -> Any:
    return make(server)


async def seed_patient(h: Any, **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Patient",
        "name": [{"family": "Smith", "given": ["John"]}],
        **extra,
    }
    return dict(await h.call("create_resource", resource))


# --- Resource Operations ------------------------------------------------------------------


async def test_create_resource_examples(h: Any) -> None:
    patient_dict = {"resourceType": "Patient", "active": True, "name": [{"family": "Doe"}]}
    created = await h.call("create_resource", patient_dict)
    assert created["id"] and created["active"] is True
    created = await h.call("create_resource", patient_dict, accounts="Organization/org-456")
    assert created["meta"]["accounts"] == [{"reference": "Organization/org-456"}]
    created = await h.call(
        "create_resource", patient_dict, accounts=["Organization/org-456", "Organization/org-789"]
    )
    assert len(created["meta"]["accounts"]) == 2
    created_patient = await h.call("create_resource", patient_dict, as_fhir=Patient)
    assert created_patient.name[0].family == "Doe"
    assert "meta" not in patient_dict


async def test_create_resource_if_none_exist_examples(h: Any) -> None:
    patient = Patient(
        identifier=[{"system": "http://hospital.org/mrn", "value": "12345"}],
        name=[{"family": "Smith", "given": ["John"]}],
    )
    resource = await h.call(
        "create_resource_if_none_exist",
        patient,
        if_none_exist="identifier=http://hospital.org/mrn|12345",
    )
    first_id = resource["id"]
    resource = await h.call(
        "create_resource_if_none_exist",
        patient,
        if_none_exist="identifier=http://hospital.org/mrn|12345",
        as_fhir=Patient,
    )
    assert resource.name[0].family == "Smith"
    assert resource.id == first_id  # the existing one (200), not a duplicate
    resource = await h.call(
        "create_resource_if_none_exist",
        patient,
        if_none_exist="?identifier=http://hospital.org/mrn|12345",
    )
    assert resource["id"] == first_id


async def test_read_and_vread_examples(h: Any) -> None:
    pid = (await seed_patient(h))["id"]
    patient_dict = await h.call("read_resource", "Patient", pid)
    assert patient_dict["name"][0]["family"] == "Smith"
    patient = await h.call("read_resource", "Patient", pid, as_fhir=Patient)
    assert patient.name[0].family == "Smith"
    patient_v1 = await h.call("vread_resource", "Patient", pid, "1")
    assert patient_v1["meta"]["versionId"] == "1"
    patient_v1 = await h.call("vread_resource", "Patient", pid, "1", as_fhir=Patient)
    assert isinstance(patient_v1, Patient)


async def test_update_resource_examples(h: Any, server: FakeMedplum) -> None:
    pid = (await seed_patient(h))["id"]
    patient = await h.call("read_resource", "Patient", pid, as_fhir=Patient)
    patient.active = False
    updated = await h.call("update_resource", patient)
    assert updated["meta"]["versionId"] == "2" and updated["active"] is False
    assert h.last.headers["If-Match"] == 'W/"1"'
    updated = await h.call("update_resource", patient, if_match=False)
    assert "If-Match" not in h.last.headers
    updated = await h.call("update_resource", patient, if_match='W/"3"')
    assert updated["meta"]["versionId"] == "4"
    try:
        updated = await h.call("update_resource", patient)  # still carries versionId 1
    except PreconditionFailedError:
        patient = await h.call("read_resource", "Patient", pid, as_fhir=Patient)
    assert patient.meta is not None and patient.meta.version_id == "4"


async def test_patch_resource_examples(h: Any) -> None:
    pid = (await seed_patient(h))["id"]
    operations = [
        {"op": "replace", "path": "/active", "value": False},
        {
            "op": "add",
            "path": "/telecom/-",
            "value": {"system": "email", "value": "new@example.com"},
        },
    ]
    patched = await h.call("patch_resource", "Patient", pid, operations)
    assert patched["telecom"] == [{"system": "email", "value": "new@example.com"}]
    operations = [{"op": "replace", "path": "/active", "value": True}]
    patched_patient = await h.call("patch_resource", "Patient", pid, operations, as_fhir=Patient)
    assert patched_patient.active is True
    patient = await h.call("read_resource", "Patient", pid)
    version = patient["meta"]["versionId"]
    patched = await h.call(
        "patch_resource",
        "Patient",
        pid,
        operations,
        headers={"If-Match": f'W/"{version}"'},
        as_fhir=Patient,
    )
    assert h.last.headers["If-Match"] == f'W/"{version}"'


async def test_delete_resource_examples(h: Any) -> None:
    pid = (await seed_patient(h))["id"]
    assert await h.call("delete_resource", "Patient", pid) is None
    with pytest.raises(NotFoundError):
        await h.call("read_resource", "Patient", pid)
    other = (await seed_patient(h))["id"]
    patient = await h.call("read_resource", "Patient", other)
    version = patient["meta"]["versionId"]
    await h.call("delete_resource", "Patient", other, headers={"If-Match": f'W/"{version}"'})
    assert h.last.headers["If-Match"] == 'W/"1"'


# --- Search Operations --------------------------------------------------------------------


async def test_search_resources_examples(h: Any) -> None:
    ids = {(await seed_patient(h))["id"] for _ in range(3)}
    results = await h.call("search_resources", "Patient", {"family": "Smith"})
    assert {entry["resource"]["id"] for entry in results.get("entry", [])} == ids
    bundle = await h.call("search_resources", "Patient", {"family": "Smith"}, return_bundle=True)
    assert {patient["id"] for patient in bundle} == ids
    bundle = await h.call(
        "search_resources", "Patient", {"family": "Smith"}, return_bundle=True, as_fhir=Patient
    )
    patients = bundle.get_resources_typed(Patient)
    assert {p.id for p in patients} == ids


async def test_search_one_example(h: Any) -> None:
    await seed_patient(h, identifier=[{"system": "MRN", "value": "12345"}])
    patient = await h.call("search_one", "Patient", {"identifier": "MRN|12345"})
    assert patient is not None and patient["identifier"][0]["value"] == "12345"
    assert await h.call("search_one", "Patient", {"identifier": "MRN|0"}) is None


async def test_search_resource_pages_examples(h: Any, server: FakeMedplum) -> None:
    for i in range(45):
        server.put(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "Heart rate"},
                "subject": {"reference": "Patient/123"},
                "id": f"o{i:02d}",
            }
        )
    seen = [
        obs["id"]
        for obs in await h.collect(
            "search_resource_pages", "Observation", {"patient": "Patient/123"}
        )
    ]
    assert len(seen) == 45 and len(set(seen)) == 45
    assert len(server.requests) == 3  # 20 + 20 + 5
    typed = await h.collect(
        "search_resource_pages", "Observation", {"patient": "Patient/123"}, as_fhir=Observation
    )
    assert {obs.status for obs in typed} == {"final"}


async def test_search_with_options_examples(h: Any) -> None:
    for _ in range(3):
        await seed_patient(h, active=True)
    result = await h.call("search_with_options", "Patient", {"family": "Smith"}, summary="count")
    assert result.get("total", 0) == 3
    result = await h.call(
        "search_with_options", "Patient", {"active": "true"}, elements=["id", "name", "birthDate"]
    )
    assert dict(httpx.URL(str(h.last.url)).params)["_elements"] == "id,name,birthDate"
    bundle = await h.call(
        "search_with_options", "Patient", {"family": "Smith"}, total="accurate", return_bundle=True
    )
    assert bundle.total == 3
    result = await h.call(
        "search_with_options", "Patient", {"family": "Smith"}, at="2024-01-01T00:00:00Z"
    )
    assert ("_at", "2024-01-01T00:00:00Z") in httpx.URL(str(h.last.url)).params.multi_items()
    bundle = await h.call(
        "search_with_options",
        "Observation",
        {"patient": "Patient/123"},
        count=50,
        offset=100,
        sort=["-date", "code"],
        include="Observation:patient",
        return_bundle=True,
        as_fhir=Observation,
    )
    assert bundle.get_resources_typed(Observation) == []
    assert httpx.URL(str(h.last.url)).params.multi_items()[1:] == [
        ("_count", "50"),
        ("_offset", "100"),
        ("_sort", "-date,code"),
        ("_include", "Observation:patient"),
    ]


# --- GraphQL, On-Behalf-Of --------------------------------------------------------------------


async def test_execute_graphql_example(h: Any) -> None:
    pid = (await seed_patient(h))["id"]
    query = """
query GetPatient($id: ID!) {
    Patient(id: $id) {
        id
        name { given family }
    }
}
"""
    result = await h.call("execute_graphql", query, variables={"id": pid})
    assert result["data"]["Patient"]["name"] == [{"family": "Smith", "given": ["John"]}]


async def test_on_behalf_of_example(h: Any) -> None:
    pid = (await seed_patient(h))["id"]
    context = h.client.on_behalf_of("ProjectMembership/123")
    if isinstance(h.client, AsyncMedplumClient):
        async with context:
            await h.call("read_resource", "Patient", pid)
    else:
        with context:
            await h.call("read_resource", "Patient", pid)
    assert h.last.headers["X-Medplum-On-Behalf-Of"] == "ProjectMembership/123"


# --- Multi-Tenant Accounts, Async Jobs ----------------------------------------------------------


async def test_set_accounts_and_async_job_examples(h: Any) -> None:
    pid = (await seed_patient(h))["id"]
    result = await h.call("set_accounts", f"Patient/{pid}", "Organization/org-456")
    assert result["parameter"][0]["name"] == "resourcesUpdated"
    await h.call(
        "set_accounts",
        f"Patient/{pid}",
        ["Organization/org-456", "Practitioner/prac-789"],
        propagate=True,
    )
    patient = await h.call("read_resource", "Patient", pid)
    assert [a["reference"] for a in patient["meta"]["accounts"]] == [
        "Organization/org-456",
        "Practitioner/prac-789",
    ]
    result = await h.call(
        "set_accounts", f"Patient/{pid}", "Organization/org-456", propagate=True, prefer_async=True
    )
    job = await h.call("get_async_job_status", result)
    assert job["status"] == "completed"
    job = await h.call("wait_for_async_job", result, timeout=60)
    assert job["status"] == "completed"
    assert job["output"]["parameter"][0]["name"] == "resourcesUpdated"


# --- ProjectMembership Access ---------------------------------------------------------------------


async def test_project_membership_access_examples(h: Any, server: FakeMedplum) -> None:
    server.put(
        {
            "resourceType": "ProjectMembership",
            "id": "alice-membership-id",
            "accessPolicy": {"reference": "AccessPolicy/base"},
        }
    )
    result = await h.call(
        "merge_project_membership_access",
        "alice-membership-id",
        managed_access=[
            make_project_membership_access(
                "AccessPolicy/practice-policy", {"organization": f"Organization/practice-{x}"}
            )
            for x in "abc"
        ],
        managed_policy_ids={"practice-policy"},
    )
    assert (result.updated, result.version_id, result.managed_count) == (True, "2", 3)
    await h.call(
        "add_project_membership_access_entry",
        "alice-membership-id",
        make_project_membership_access(
            "AccessPolicy/practice-policy", {"organization": "Organization/practice-d"}
        ),
        managed_policy_ids={"practice-policy"},
    )
    await h.call(
        "remove_project_membership_access_entry",
        "alice-membership-id",
        make_project_membership_access(
            "AccessPolicy/practice-policy", {"organization": "Organization/practice-c"}
        ),
        managed_policy_ids={"practice-policy"},
    )
    membership = server.current("ProjectMembership", "alice-membership-id")
    assert membership is not None
    orgs = [
        e["parameter"][0]["valueReference"]["reference"].rsplit("-", 1)[1]
        for e in membership["access"]
    ]
    assert orgs == ["a", "b", "d"]


# --- Binary & Document Export ---------------------------------------------------------------------


async def test_binary_and_ccda_examples(h: Any, tmp_path: Any) -> None:
    document = tmp_path / "document.pdf"
    document.write_bytes(b"%PDF-1.7\n\x00\x01\x02binary\xff")
    with open(document, "rb") as f:
        binary = await h.call("upload_binary", f.read(), "application/pdf")
    content = await h.call("download_binary", binary["id"])
    assert content == document.read_bytes()
    ccda_xml = await h.call("export_ccda", "patient-123")
    assert ccda_xml.startswith("<ClinicalDocument") and "patient-123" in ccda_xml


# --- Terminology ----------------------------------------------------------------------------------


async def test_expand_valueset_examples(h: Any, server: FakeMedplum) -> None:
    expansion = await h.call(
        "expand_valueset", valueset_url="http://hl7.org/fhir/ValueSet/observation-status"
    )
    lines = [
        f"{c['code']}: {c['display']}" for c in expansion.get("expansion", {}).get("contains", [])
    ]
    assert "final: Final" in lines
    expansion = await h.call(
        "expand_valueset",
        valueset_url="http://hl7.org/fhir/ValueSet/condition-code",
        filter="diabetes",
        count=20,
        offset=0,
    )
    assert expansion["expansion"]["contains"] == []
    server.put(
        {
            "resourceType": "ValueSet",
            "id": "my-custom-valueset",
            "status": "active",
            "compose": {
                "include": [{"system": "http://example.org/cs", "concept": [{"code": "a"}]}]
            },
        }
    )
    expansion = await h.call("expand_valueset", valueset_id="my-custom-valueset")
    assert expansion["expansion"]["contains"] == [
        {"system": "http://example.org/cs", "code": "a", "display": "a"}
    ]
    # Medplum has no ValueSet/{id}/$expand route: the resource is read, then POSTed.
    assert [(r.method, r.url.path) for r in h.requests[-2:]] == [
        ("GET", "/fhir/R4/ValueSet/my-custom-valueset"),
        ("POST", "/fhir/R4/ValueSet/$expand"),
    ]


async def test_lookup_concept_examples(h: Any) -> None:
    result = await h.call("lookup_concept", code="8867-4", system="http://loinc.org")
    displays = [
        p.get("valueString") for p in result.get("parameter", []) if p.get("name") == "display"
    ]
    assert displays == ["Heart rate"]
    await h.call(
        "lookup_concept",
        code="38341003",
        system="http://snomed.info/sct",
        property=["parent", "child", "designation"],
    )
    assert httpx.URL(str(h.last.url)).params.get_list("property") == [
        "parent",
        "child",
        "designation",
    ]


async def test_translate_concept_examples(h: Any) -> None:
    result = await h.call(
        "translate_concept",
        code="final",
        system="http://hl7.org/fhir/observation-status",
        conceptmap_url="http://example.org/ConceptMap/status-mapping",
        target_system="http://example.org/local-codes",
    )
    found = False
    mapped: list[str] = []
    for param in result.get("parameter", []):
        if param.get("name") == "result" and param.get("valueBoolean"):
            found = True
        elif param.get("name") == "match":
            for part in param.get("part", []):
                if part.get("name") == "concept":
                    coding = part.get("valueCoding", {})
                    mapped.append(f"{coding.get('code')} ({coding.get('display')})")
    assert found and mapped == ["F (Final)"]
    await h.call(
        "translate_concept",
        code="active",
        system="http://hl7.org/fhir/patient-status",
        conceptmap_id="my-status-map",
    )
    assert h.last.url.path == "/fhir/R4/ConceptMap/my-status-map/$translate"


# --- Asynchronous client, errors ----------------------------------------------------------------


async def test_async_client_example(server: FakeMedplum) -> None:
    async with AsyncMedplumClient(
        base_url="https://medplum.test/",
        access_token="YOUR_TOKEN",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)),
    ) as client:
        created = await client.create_resource({"resourceType": "Patient"})
        patient = await client.read_resource("Patient", created["id"])
        assert patient["id"] == created["id"]
        server.put({"resourceType": "Observation", "subject": {"reference": "Patient/123"}})
        ids = [
            obs["id"]
            async for obs in client.search_resource_pages("Observation", {"patient": "Patient/123"})
        ]
        assert len(ids) == 1


async def test_error_handling_examples(h: Any, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("contract-example")
    with pytest.raises(NotFoundError):
        try:
            await h.call("read_resource", "Patient", "nonexistent-id")
        except (OperationOutcomeError, ServerError) as exc:
            log.warning("medplum_call_failed", extra=exc.sanitize_for_logging())
            raise
    assert any(r.getMessage() == "medplum_call_failed" for r in caplog.records)

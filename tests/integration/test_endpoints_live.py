"""The endpoint methods of both clients against the local Medplum-compatible server.

Same behaviours as tests/endpoints (which use a mock transport), here over the wire: ids,
versions, paging links, async jobs and terminology come from the server.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator
from typing import Any

import medplum_server as harness  # scripts/medplum_server.py, put on sys.path by conftest.py
import pytest

from pymedplum import (
    AsyncMedplumClient,
    FHIRBundle,
    MedplumClient,
    NotFoundError,
    PreconditionFailedError,
    make_project_membership_access,
)
from pymedplum.fhir import Observation, Patient

pytestmark = pytest.mark.anyio


class Live:
    """A client of one flavour with ``await live.call(name, ...)`` for both."""

    def __init__(self, client: MedplumClient | AsyncMedplumClient) -> None:
        self.client = client

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def collect(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        iterator = getattr(self.client, name)(*args, **kwargs)
        if hasattr(iterator, "__anext__"):
            return [item async for item in iterator]
        return list(iterator)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sync", "async"])
async def live(
    request: pytest.FixtureRequest, medplum_server: harness.MedplumServer
) -> AsyncIterator[Live]:
    options = {
        "client_id": medplum_server.client_id,
        "client_secret": medplum_server.client_secret,
    }
    if request.param == "sync":
        with MedplumClient(medplum_server.base_url, **options) as client:
            yield Live(client)
    else:
        async with AsyncMedplumClient(medplum_server.base_url, **options) as client:
            yield Live(client)


def unique() -> str:
    return uuid.uuid4().hex[:12]


async def test_resource_lifecycle(live: Live) -> None:
    family = unique()
    created = await live.call(
        "create_resource",
        {"resourceType": "Patient", "name": [{"family": family}]},
        accounts="Organization/org-1",
        as_fhir=Patient,
    )
    assert created.id and created.meta is not None and created.meta.version_id
    assert [a.reference for a in created.meta.accounts or []] == ["Organization/org-1"]
    read = await live.call("read_resource", "Patient", created.id)
    read["active"] = True
    updated = await live.call("update_resource", read)
    assert updated["meta"]["versionId"] != read["meta"]["versionId"]
    with pytest.raises(PreconditionFailedError):
        await live.call("update_resource", read)  # still carries the old versionId
    assert (await live.call("update_resource", read, if_match=False))["active"] is True
    first = await live.call("vread_resource", "Patient", created.id, created.meta.version_id)
    assert "active" not in first
    patched = await live.call(
        "patch_resource",
        "Patient",
        created.id,
        [{"op": "replace", "path": "/active", "value": False}],
        as_fhir=Patient,
    )
    assert patched.active is False
    assert await live.call("delete_resource", "Patient", created.id) is None
    with pytest.raises(NotFoundError):
        await live.call("read_resource", "Patient", created.id)


async def test_conditional_create_returns_the_existing_resource(live: Live) -> None:
    mrn = unique()
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": mrn}]}
    first = await live.call("create_resource_if_none_exist", patient, f"identifier=urn:mrn|{mrn}")
    again = await live.call(
        "create_resource_if_none_exist", patient, f"?identifier=urn:mrn|{mrn}", as_fhir=Patient
    )
    assert again.id == first["id"]
    await live.call("create_resource", patient)
    with pytest.raises(PreconditionFailedError):
        await live.call("create_resource_if_none_exist", patient, f"identifier=urn:mrn|{mrn}")


async def test_search_paging_and_options(live: Live) -> None:
    family = unique()
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "name": [{"family": family}]},
                "request": {"method": "POST", "url": "Patient"},
            }
            for _ in range(25)
        ],
    }
    response = await live.call("execute_batch", bundle, accounts="Organization/org-2")
    assert len(response["entry"]) == 25
    patients = await live.collect("search_resource_pages", "Patient", {"family": family}, Patient)
    assert len(patients) == 25 and len({p.id for p in patients}) == 25
    assert all(p.meta.accounts[0].reference == "Organization/org-2" for p in patients)
    one = await live.call("search_one", "Patient", {"family": family})
    assert one is not None and one["name"][0]["family"] == family
    count = await live.call("search_with_options", "Patient", {"family": family}, summary="count")
    assert count["total"] == 25
    page = await live.call(
        "searchWithOptions",
        "Patient",
        {"family": family},
        count=10,
        sort="-_lastUpdated",
        total="accurate",
        return_bundle=True,
        as_fhir=Patient,
    )
    assert isinstance(page, FHIRBundle)
    assert page.total == 25 and len(page.get_resources_typed(Patient)) == 10


async def test_transaction_and_graphql(live: Live) -> None:
    family = unique()
    placeholder = f"urn:uuid:{uuid.uuid4()}"  # Medplum rewrites only real UUIDs
    result = await live.call(
        "execute_transaction",
        {
            "resourceType": "Bundle",
            "entry": [
                {
                    "fullUrl": placeholder,
                    "resource": {"resourceType": "Patient", "name": [{"family": family}]},
                    "request": {"method": "POST", "url": "Patient"},
                },
                {
                    "resource": {
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"text": "Heart rate"},
                        "subject": {"reference": placeholder},
                    },
                    "request": {"method": "POST", "url": "Observation"},
                },
            ],
        },
    )
    assert result["type"] == "transaction-response"
    patient_id = result["entry"][0]["resource"]["id"]
    observations = await live.collect(
        "search_resource_pages", "Observation", {"subject": f"Patient/{patient_id}"}, Observation
    )
    assert [o.status for o in observations] == ["final"]
    query = "query GetPatient($id: ID!) { Patient(id: $id) { id name { family } } }"
    data = await live.call("execute_graphql", query, variables={"id": patient_id})
    assert data["data"]["Patient"] == {"id": patient_id, "name": [{"family": family}]}


async def test_set_accounts_and_async_job(live: Live) -> None:
    patient = await live.call("create_resource", {"resourceType": "Patient"})
    result = await live.call("set_accounts", f"Patient/{patient['id']}", "Organization/org-3")
    assert result["parameter"][0]["name"] == "resourcesUpdated"
    started = await live.call(
        "set_accounts",
        f"Patient/{patient['id']}",
        ["Organization/org-3", "Organization/org-4"],
        propagate=True,
        prefer_async=True,
    )
    assert started["resourceType"] == "OperationOutcome"
    job = await live.call("wait_for_async_job", started, poll_interval=0.1, timeout=30)
    assert job["status"] == "completed"
    again = await live.call("get_async_job_status", started)
    assert again["status"] == "completed"
    accounts = (await live.call("read_resource", "Patient", patient["id"]))["meta"]["accounts"]
    assert [a["reference"] for a in accounts] == ["Organization/org-3", "Organization/org-4"]


async def test_membership_access_merge(live: Live, medplum_server: harness.MedplumServer) -> None:
    membership = medplum_server.create_membership()["membership"]
    entry = make_project_membership_access(
        "AccessPolicy/practice-policy", {"organization": "Organization/a"}
    )
    first = await live.call(
        "merge_project_membership_access",
        membership["id"],
        managed_access=[entry],
        managed_policy_ids={"practice-policy"},
    )
    assert first.updated and first.managed_count == 1
    second = await live.call(
        "add_project_membership_access_entry",
        f"ProjectMembership/{membership['id']}",
        entry,
        managed_policy_ids={"practice-policy"},
    )
    assert not second.updated and second.version_id == first.version_id


async def test_binary_ccda_and_terminology(live: Live) -> None:
    payload = b"%PDF-1.7\n\x00\x01\x02\xff binary"
    binary = await live.call("upload_binary", payload, "application/pdf")
    assert await live.call("download_binary", binary["id"]) == payload
    patient = await live.call("create_resource", {"resourceType": "Patient"})
    assert "ClinicalDocument" in await live.call("export_ccda", patient["id"])
    expansion = await live.call(
        "expand_valueset",
        valueset_url="http://hl7.org/fhir/ValueSet/observation-status",
        filter="final",
    )
    assert "final" in [c["code"] for c in expansion["expansion"]["contains"]]
    lookup = await live.call("lookup_concept", "8867-4", "http://loinc.org")
    assert any(p["name"] == "display" for p in lookup["parameter"])
    by_coding = await live.call(
        "lookup_concept", "8867-4", coding={"system": "http://loinc.org", "code": "8867-4"}
    )
    assert by_coding["parameter"] == lookup["parameter"]
    concept_map = await live.call(
        "create_resource",
        {
            "resourceType": "ConceptMap",
            "status": "active",
            "url": f"http://example.org/ConceptMap/{unique()}",
            "group": [
                {
                    "source": "http://hl7.org/fhir/observation-status",
                    "target": "http://example.org/local-codes",
                    "element": [
                        {"code": "final", "target": [{"code": "F", "equivalence": "equivalent"}]}
                    ],
                }
            ],
        },
    )
    translated = await live.call(
        "translate_concept",
        code="final",
        system="http://hl7.org/fhir/observation-status",
        conceptmap_id=concept_map["id"],
    )
    assert {"name": "result", "valueBoolean": True} in translated["parameter"]
    by_url = await live.call(
        "translate_concept",
        conceptmap_url=concept_map["url"],
        coding={"system": "http://hl7.org/fhir/observation-status", "code": "final"},
        target_system="http://example.org/local-codes",
    )
    assert {"name": "result", "valueBoolean": True} in by_url["parameter"]

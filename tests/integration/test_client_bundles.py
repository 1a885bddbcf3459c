"""Batch and transaction bundles, GraphQL and the low-level HTTP methods of both clients against
the live local server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sdk_clients import Api, unique

from pymedplum import (
    BadRequestError,
    FHIRBundle,
    GoneError,
    NotFoundError,
    UnsafeRedirectError,
    get_resource_accounts,
)
from pymedplum.fhir import Bundle, BundleEntry, BundleEntryRequest, Patient

pytestmark = pytest.mark.anyio


def _create_entry(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }
    if full_url is not None:
        entry["fullUrl"] = full_url
    return entry


# --- batch ----------------------------------------------------------------------------------------


async def test_execute_batch_entries_succeed_or_fail_independently(api: Api) -> None:
    family = unique("Batch")
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            _create_entry({"resourceType": "Patient", "name": [{"family": family}]}),
            {"request": {"method": "GET", "url": f"Patient/{unique('missing-')}"}},
            _create_entry({"resourceType": "Patient", "name": [{"family": family}]}),
        ],
    }
    response = await api.call("execute_batch", bundle)
    assert response["resourceType"] == "Bundle" and response["type"] == "batch-response"
    results = FHIRBundle(response).entry_results()
    assert [r.status_code for r in results] == [201, 404, 201]
    created = {r.resource_id for r in results if r.ok}
    found = await api.call("search_resources", "Patient", {"family": family}, return_bundle=True)
    assert {p["id"] for p in found} == created  # the failure rolled nothing back


async def test_execute_batch_stamps_accounts_on_every_entry(api: Api) -> None:
    org = await api.call("create_resource", {"resourceType": "Organization", "name": unique("O")})
    account = f"Organization/{org['id']}"
    family = unique("Stamp")
    bundle = Bundle(
        type="batch",
        entry=[
            BundleEntry(
                resource=Patient(name=[{"family": family}]),
                request=BundleEntryRequest(method="POST", url="Patient"),
            ),
            BundleEntry(
                resource={"resourceType": "Organization", "name": family},
                request=BundleEntryRequest(method="POST", url="Organization"),
            ),
        ],
    )
    response = await api.call("execute_batch", bundle, accounts=[account, "Practitioner/pr-1"])
    assert [e["response"]["status"][:3] for e in response["entry"]] == ["201", "201"]
    for entry in response["entry"]:
        # Read back from the server: the stamp is stored, not only echoed.
        resource_type = entry["resource"]["resourceType"]
        stored = await api.call("read_resource", resource_type, entry["resource"]["id"])
        assert get_resource_accounts(stored) == [account, "Practitioner/pr-1"]
        assert stored["meta"]["account"] == {"reference": account}
    assert bundle.entry is not None and bundle.entry[0].resource is not None
    assert bundle.entry[0].resource.meta is None  # the caller's bundle is not modified


# --- transaction ----------------------------------------------------------------------------------


async def test_a_batch_over_medplums_json_limit_is_refused_and_says_why(api: Api) -> None:
    # Medplum parses a JSON body up to its maxJsonSize setting, 1 MB by default
    # (packages/server/src/app.ts:194, config/utils.ts:27), and answers a larger one 400 'File too
    # large' (app.ts errorHandler) before looking at it: nothing of the batch is applied.
    family = unique("Big")
    text = "x" * 2000
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            _create_entry({"resourceType": "Patient", "name": [{"family": family, "text": text}]})
            for _ in range(600)  # about 1.3 MB
        ],
    }
    with pytest.raises(BadRequestError) as caught:
        await api.call("execute_batch", bundle)
    assert caught.value.status_code == 400
    assert caught.value.outcome is not None
    assert caught.value.outcome["issue"][0]["details"]["text"] == "File too large"
    message = str(caught.value)
    assert "over the server's body size limit" in message and "maxJsonSize" in message
    found = await api.call("search_resources", "Patient", {"family": family})
    assert found.get("entry", []) == []

    # A server configured with a larger maxJsonSize takes it.
    api.server.set_max_json_size(4 * 1024 * 1024)
    try:
        response = await api.call("execute_batch", bundle)
    finally:
        api.server.reset()
    assert [r.status_code for r in FHIRBundle(response).entry_results()] == [201] * 600


async def test_a_resource_over_medplums_json_limit_is_refused_but_a_binary_upload_is_not(
    api: Api,
) -> None:
    # The limit is the body parser's, so a single create is refused too; upload_binary goes through
    # Medplum's Binary router (app.ts:187), mounted before the parsers, which has none.
    with pytest.raises(BadRequestError, match="maxJsonSize"):
        await api.call(
            "create_resource", {"resourceType": "Patient", "name": [{"text": "y" * (1 << 20)}]}
        )
    content = b"z" * (2 << 20)
    binary = await api.call("upload_binary", content, "application/octet-stream")
    assert await api.call("download_binary", binary["id"]) == content


async def test_execute_transaction_resolves_urn_uuid_references(api: Api) -> None:
    patient_urn = f"urn:uuid:{uuid.uuid4()}"
    family = unique("Tx")
    bundle = {
        "resourceType": "Bundle",  # no type: execute_transaction sets "transaction"
        "entry": [
            _create_entry({"resourceType": "Patient", "name": [{"family": family}]}, patient_urn),
            _create_entry(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "weight"},
                    "subject": {"reference": patient_urn},
                }
            ),
        ],
    }
    response = await api.call("execute_transaction", bundle)
    assert response["type"] == "transaction-response"
    results = FHIRBundle(response).entry_results()
    assert [r.status_code for r in results] == [201, 201]
    patient_id, observation_id = (r.resource_id for r in results)
    observation = await api.call("read_resource", "Observation", observation_id)
    assert observation["subject"]["reference"] == f"Patient/{patient_id}"
    patient = await api.call("read_resource", "Patient", patient_id)
    assert patient["name"][0]["family"] == family


async def test_execute_transaction_is_atomic(api: Api) -> None:
    family = unique("Atomic")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _create_entry({"resourceType": "Patient", "name": [{"family": family}]}),
            {
                "resource": {"resourceType": "Patient", "id": unique("x"), "active": True},
                "request": {"method": "PUT", "url": f"Patient/{unique('x')}"},  # id mismatch
            },
        ],
    }
    with pytest.raises(BadRequestError) as failed:
        await api.call("execute_transaction", bundle)
    assert failed.value.status_code == 400
    found = await api.call("search_resources", "Patient", {"family": family})
    assert not found.get("entry")  # the first entry was rolled back


# --- GraphQL --------------------------------------------------------------------------------------


async def test_execute_graphql_with_variables(api: Api) -> None:
    family = unique("Gql")
    created = await api.call(
        "create_resource",
        {"resourceType": "Patient", "name": [{"family": family, "given": ["Grace"]}]},
    )
    query = """
    query GetPatient($id: ID!) {
        Patient(id: $id) { id name { given family } }
    }
    """
    result = await api.call("execute_graphql", query, variables={"id": created["id"]})
    assert result["data"]["Patient"] == {
        "id": created["id"],
        "name": [{"given": ["Grace"], "family": family}],
    }
    search = """
    query Find($family: String) { PatientList(family: $family) { id } }
    """
    listed = await api.call("execute_graphql", search, {"family": family})
    assert listed["data"]["PatientList"] == [{"id": created["id"]}]
    assert api.fhir_events()[-1].action == "operation"


async def test_execute_graphql_invalid_query_is_bad_request(api: Api) -> None:
    with pytest.raises(BadRequestError):
        await api.call("execute_graphql", "query { NoSuchType { id } }")


# --- low-level HTTP -------------------------------------------------------------------------------


async def test_low_level_get_post_put_delete(api: Api) -> None:
    family = unique("Low")
    created = await api.call(
        "post", "fhir/R4/Patient", json={"resourceType": "Patient", "name": [{"family": family}]}
    )
    assert created["resourceType"] == "Patient" and created["id"]
    path = f"fhir/R4/Patient/{created['id']}"
    read = await api.call("get", path)
    assert read["name"][0]["family"] == family
    updated = await api.call("put", path, json={**read, "active": True})
    assert updated["active"] is True and updated["meta"]["versionId"] != read["meta"]["versionId"]
    found = await api.call("get", "fhir/R4/Patient", params={"family": family})
    assert [e["resource"]["id"] for e in found["entry"]] == [created["id"]]
    deleted = await api.call("delete", path)
    assert deleted is None or deleted["resourceType"] == "OperationOutcome"
    with pytest.raises(GoneError):
        await api.call("get", path)
    with pytest.raises(NotFoundError):
        await api.call("get", f"fhir/R4/Patient/{unique('none-')}")
    # Medplum endpoints outside the FHIR routes, and same-origin absolute URLs.
    me = await api.call("get", "auth/me")
    assert me["membership"]["resourceType"] == "ProjectMembership"
    assert me["profile"]["resourceType"] == "ClientApplication"
    absolute = await api.call("get", f"{api.server.fhir_url}Patient", params={"family": family})
    assert absolute["resourceType"] == "Bundle"
    with pytest.raises(UnsafeRedirectError):
        await api.call("get", "https://evil.example/fhir/R4/Patient")

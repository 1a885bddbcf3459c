"""Every code example of the client sections of the API contract
(/work/shared/spec/api-reference.txt), run on both clients against the live local server.

The statements follow the contract's examples in order; ``await api.call(...)`` stands for the
plain call on MedplumClient. Literal ids ("123", "alice-membership-id", "org-456", ...) are
replaced by resources created first, and each example's outcome is asserted. Where an example
cannot run as printed, the adaptation is named in a comment.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sdk_clients import Api, MedplumServer, unique

from pymedplum import (
    AuthorizationError,
    BadRequestError,
    NotFoundError,
    OperationOutcomeError,
    PreconditionFailedError,
    RateLimitError,
    ServerError,
    TokenRefreshCooldownError,
    ValidationError,
    make_project_membership_access,
)
from pymedplum.async_client import AsyncMedplumClient
from pymedplum.fhir import Observation, Patient
from pymedplum.hooks import RequestEvent

pytestmark = pytest.mark.anyio


async def new_patient(api: Api, **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Patient",
        "name": [{"family": "Smith", "given": ["John"]}],
        **extra,
    }
    return dict(await api.call("create_resource", resource))


async def new_org(api: Api) -> str:
    org = await api.call("create_resource", {"resourceType": "Organization", "name": unique("O")})
    return f"Organization/{org['id']}"


# --- Resource Operations --------------------------------------------------------------------------


async def test_create_resource_examples(api: Api) -> None:
    org_456, org_789 = await new_org(api), await new_org(api)

    # Basic creation
    # (adapted: a name is added, because the typed example below reads name[0].family)
    patient_dict = {"resourceType": "Patient", "active": True, "name": [{"family": "Doe"}]}
    created = await api.call("create_resource", patient_dict)
    assert created["id"] and created["active"] is True

    # With account assignment (multi-tenant)
    created = await api.call("create_resource", patient_dict, accounts=org_456)
    stored = await api.call("read_resource", "Patient", created["id"])
    assert stored["meta"]["accounts"] == [{"reference": org_456}]

    # Multiple accounts
    created = await api.call("create_resource", patient_dict, accounts=[org_456, org_789])
    stored = await api.call("read_resource", "Patient", created["id"])
    assert [a["reference"] for a in stored["meta"]["accounts"]] == [org_456, org_789]

    # With type-safe response
    created_patient = await api.call("create_resource", patient_dict, as_fhir=Patient)
    print(created_patient.name[0].family)  # Full IDE autocomplete!
    assert isinstance(created_patient, Patient) and created_patient.name[0].family == "Doe"
    assert "meta" not in patient_dict  # the caller's dict was not stamped


async def test_create_resource_if_none_exist_examples(api: Api) -> None:
    mrn = unique("")  # stands in for 12345: the server store is shared by the tests
    patient = Patient(
        identifier=[{"system": "http://hospital.org/mrn", "value": mrn}],
        name=[{"family": "Smith", "given": ["John"]}],
    )

    resource = await api.call(
        "create_resource_if_none_exist",
        patient,
        if_none_exist=f"identifier=http://hospital.org/mrn|{mrn}",
    )
    print(f"Patient ID: {resource['id']}")
    first_id = resource["id"]

    # With type-safe response
    resource = await api.call(
        "create_resource_if_none_exist",
        patient,
        if_none_exist=f"identifier=http://hospital.org/mrn|{mrn}",
        as_fhir=Patient,
    )
    print(resource.name[0].family)  # Type-safe access
    assert resource.name[0].family == "Smith" and resource.id == first_id  # existing, 200

    # Leading ? is automatically stripped (both forms work)
    resource = await api.call(
        "create_resource_if_none_exist",
        patient,
        if_none_exist=f"?identifier=http://hospital.org/mrn|{mrn}",  # Also valid
    )
    assert resource["id"] == first_id


async def test_read_resource_examples(api: Api) -> None:
    pid = (await new_patient(api))["id"]  # stands in for "123"

    # Get as dictionary
    patient_dict = await api.call("read_resource", "Patient", pid)
    assert patient_dict["id"] == pid

    # Get as typed model
    patient = await api.call("read_resource", "Patient", pid, as_fhir=Patient)
    print(patient.name[0].family)  # Type-safe access
    assert patient.name[0].family == "Smith"


async def test_vread_resource_examples(api: Api) -> None:
    created = await new_patient(api, active=True)
    pid, v1 = created["id"], created["meta"]["versionId"]  # "123" and "1"
    await api.call("update_resource", {**created, "active": False})

    # Read a specific version
    patient_v1 = await api.call("vread_resource", "Patient", pid, v1)
    assert patient_v1["active"] is True and patient_v1["meta"]["versionId"] == v1

    # Type-safe versioned read
    patient_v1 = await api.call("vread_resource", "Patient", pid, v1, as_fhir=Patient)
    assert isinstance(patient_v1, Patient) and patient_v1.active is True


async def test_update_resource_examples(api: Api) -> None:
    pid = (await new_patient(api))["id"]

    # Default behavior: If-Match auto-attaches from meta.versionId.
    patient = await api.call("read_resource", "Patient", pid, as_fhir=Patient)
    patient.active = False
    updated = await api.call("update_resource", patient)
    assert updated["active"] is False
    assert api.server.last_headers("/fhir/")["if-match"] == f'W/"{patient.meta.version_id}"'

    # Opt out for last-write-wins semantics.
    updated = await api.call("update_resource", patient, if_match=False)
    assert "if-match" not in api.server.last_headers("/fhir/")

    # Or pass a custom If-Match value. (adapted: the current version instead of "5")
    current = updated["meta"]["versionId"]
    updated = await api.call("update_resource", patient, if_match=f'W/"{current}"')
    assert api.server.last_headers("/fhir/")["if-match"] == f'W/"{current}"'

    # Handle version conflicts from concurrent updates.
    conflict = False
    try:
        updated = await api.call("update_resource", patient)  # still the first version: stale
    except PreconditionFailedError:
        conflict = True
        patient = await api.call("read_resource", "Patient", pid, as_fhir=Patient)
        # re-apply changes, then retry
        patient.active = False
        updated = await api.call("update_resource", patient)
    assert conflict and updated["active"] is False


async def test_patch_resource_examples(api: Api) -> None:
    # (adapted: the patient has `active` and a telecom list: JSON Patch "replace" needs an
    # existing value, and "add /telecom/-" appends to an existing list)
    pid = (await new_patient(api, active=True, telecom=[{"system": "phone", "value": "555-0100"}]))[
        "id"
    ]

    # Patch and get as dict
    operations = [
        {"op": "replace", "path": "/active", "value": False},
        {
            "op": "add",
            "path": "/telecom/-",
            "value": {"system": "email", "value": "new@example.com"},
        },
    ]
    patched = await api.call("patch_resource", "Patient", pid, operations)
    assert patched["active"] is False
    assert patched["telecom"][-1] == {"system": "email", "value": "new@example.com"}

    # With type-safe response
    operations = [{"op": "replace", "path": "/active", "value": True}]
    patched_patient = await api.call("patch_resource", "Patient", pid, operations, as_fhir=Patient)
    print(patched_patient.active)  # Full IDE autocomplete!
    assert patched_patient.active is True

    # With optimistic locking
    patient = await api.call("read_resource", "Patient", pid)
    version = patient["meta"]["versionId"]
    patched = await api.call(
        "patch_resource",
        "Patient",
        pid,
        operations,
        headers={"If-Match": f'W/"{version}"'},
        as_fhir=Patient,
    )
    assert isinstance(patched, Patient)
    assert api.server.last_headers("/fhir/")["if-match"] == f'W/"{version}"'


async def test_a_stale_if_match_on_patch_raises_precondition_failed(api: Api) -> None:
    # Medplum 5.0.10 passes If-Match to PUT only (fhir-router fhirrouter.ts): the SDK turns it
    # into a JSON Patch test of /meta/versionId, which the server checks with the patch.
    pid = (await new_patient(api, active=True))["id"]
    stale = (await api.call("read_resource", "Patient", pid))["meta"]["versionId"]
    await api.call(
        "patch_resource", "Patient", pid, [{"op": "replace", "path": "/active", "value": False}]
    )
    with pytest.raises(PreconditionFailedError):
        await api.call(
            "patch_resource",
            "Patient",
            pid,
            [{"op": "replace", "path": "/active", "value": True}],
            headers={"If-Match": f'W/"{stale}"'},
        )
    assert (await api.call("read_resource", "Patient", pid))["active"] is False
    # The caller's own failed test op stays a 400 BadRequestError.
    with pytest.raises(BadRequestError) as rejected:
        await api.call(
            "patch_resource", "Patient", pid, [{"op": "test", "path": "/active", "value": True}]
        )
    assert not isinstance(rejected.value, PreconditionFailedError)


async def test_a_stale_if_match_on_delete_raises_precondition_failed(api: Api) -> None:
    pid = (await new_patient(api, active=True))["id"]
    stale = (await api.call("read_resource", "Patient", pid))["meta"]["versionId"]
    await api.call(
        "patch_resource", "Patient", pid, [{"op": "replace", "path": "/active", "value": False}]
    )
    with pytest.raises(PreconditionFailedError):
        await api.call("delete_resource", "Patient", pid, headers={"If-Match": f'W/"{stale}"'})
    assert (await api.call("read_resource", "Patient", pid))["active"] is False  # not deleted


async def test_delete_resource_examples(api: Api) -> None:
    pid = (await new_patient(api))["id"]
    assert await api.call("delete_resource", "Patient", pid) is None
    with pytest.raises(NotFoundError) as gone:  # 410 Gone after a logical delete
        await api.call("read_resource", "Patient", pid)
    assert gone.value.status_code == 410

    # With optimistic locking to prevent accidental deletion of modified resource
    pid = (await new_patient(api))["id"]
    patient = await api.call("read_resource", "Patient", pid)
    version = patient["meta"]["versionId"]
    await api.call("delete_resource", "Patient", pid, headers={"If-Match": f'W/"{version}"'})
    assert api.server.last_headers("/fhir/")["if-match"] == f'W/"{version}"'
    with pytest.raises(NotFoundError):
        await api.call("read_resource", "Patient", pid)


# --- Search Operations ----------------------------------------------------------------------------


async def test_search_resources_examples(api: Api) -> None:
    smith = unique("Smith")  # stands in for "Smith"
    ids = {
        (
            await api.call(
                "create_resource", {"resourceType": "Patient", "name": [{"family": smith}]}
            )
        )["id"]
        for _ in range(3)
    }

    # Basic search
    results = await api.call("search_resources", "Patient", {"family": smith})
    for entry in results.get("entry", []):
        print(entry["resource"]["id"])
    assert {e["resource"]["id"] for e in results["entry"]} == ids

    # With FHIRBundle helper
    bundle = await api.call("search_resources", "Patient", {"family": smith}, return_bundle=True)
    for patient in bundle:
        print(patient["id"])
    assert {p["id"] for p in bundle} == ids

    # With type safety
    bundle = await api.call(
        "search_resources", "Patient", {"family": smith}, return_bundle=True, as_fhir=Patient
    )
    patients = bundle.get_resources_typed(Patient)
    assert {p.id for p in patients} == ids


async def test_search_one_example(api: Api) -> None:
    mrn = unique("")
    created = await new_patient(api, identifier=[{"system": "MRN", "value": mrn}])
    patient = await api.call("search_one", "Patient", {"identifier": f"MRN|{mrn}"})
    if patient:
        print(f"Found: {patient['id']}")
    assert patient is not None and patient["id"] == created["id"]


async def test_search_resource_pages_examples(api: Api) -> None:
    pid = (await new_patient(api))["id"]
    entries = [
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "heart rate"},
                "subject": {"reference": f"Patient/{pid}"},
            },
            "request": {"method": "POST", "url": "Observation"},
        }
        for _ in range(45)  # three default pages of 20
    ]
    await api.call("execute_batch", {"resourceType": "Bundle", "type": "batch", "entry": entries})
    api.events.clear()

    # Iterate over dict resources
    seen = []
    for obs in await api.collect(
        "search_resource_pages", "Observation", {"patient": f"Patient/{pid}"}
    ):
        print(f"Observation {obs['id']}: {obs['status']}")
        seen.append(obs["id"])
    assert len(seen) == 45 and len(set(seen)) == 45
    assert len(api.fhir_events()) == 3  # 20 + 20 + 5

    # Type-safe iteration with Pydantic models
    typed = await api.collect(
        "search_resource_pages", "Observation", {"patient": f"Patient/{pid}"}, as_fhir=Observation
    )
    for obs in typed:
        print(f"Observation {obs.id}: {obs.status}")  # Full IDE autocomplete!
    assert len(typed) == 45 and {obs.status for obs in typed} == {"final"}


async def test_search_with_options_examples(api: Api) -> None:
    smith = unique("Smith")
    for _ in range(3):
        await api.call(
            "create_resource",
            {"resourceType": "Patient", "active": True, "name": [{"family": smith}]},
        )
    pid = (await new_patient(api))["id"]
    await api.call(
        "create_resource",
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "bp"},
            "subject": {"reference": f"Patient/{pid}"},
        },
    )

    # Get just a count of matching resources
    result = await api.call("search_with_options", "Patient", {"family": smith}, summary="count")
    print(f"Total patients: {result.get('total', 0)}")
    assert result.get("total", 0) == 3

    # Request specific elements only
    result = await api.call(
        "search_with_options", "Patient", {"active": "true"}, elements=["id", "name", "birthDate"]
    )
    assert result["entry"] and all("active" not in e["resource"] for e in result["entry"])

    # Get accurate total count (may be slower)
    bundle = await api.call(
        "search_with_options", "Patient", {"family": smith}, total="accurate", return_bundle=True
    )
    print(f"Accurate count: {bundle.total}")
    assert bundle.total == 3

    # Point-in-time query (historical data)
    # The local server runs Medplum's own search parser, which does not know _at: the example's
    # request goes out as written and the server rejects the parameter.
    with pytest.raises(ValidationError) as rejected:
        result = await api.call(
            "search_with_options", "Patient", {"family": smith}, at="2024-01-01T00:00:00Z"
        )
    assert api.fhir_events()[-1].query_params == {
        "family": [smith],
        "_at": ["2024-01-01T00:00:00Z"],
    }
    assert rejected.value.status_code == 400

    # Pagination and sorting with includes
    bundle = await api.call(
        "search_with_options",
        "Observation",
        {"patient": f"Patient/{pid}"},
        count=50,
        offset=100,
        sort=["-date", "code"],
        include="Observation:patient",
        return_bundle=True,
        as_fhir=Observation,
    )
    assert bundle.get_resources_typed(Observation) == []  # offset 100 is past the one match
    first_page = await api.call(
        "search_with_options",
        "Observation",
        {"patient": f"Patient/{pid}"},
        count=50,
        offset=0,
        sort=["-date", "code"],
        include="Observation:patient",
        return_bundle=True,
        as_fhir=Observation,
    )
    assert len(first_page.get_resources_typed(Observation)) == 1
    assert [r["id"] for r in first_page if isinstance(r, dict)] == [pid]  # the included Patient


# --- Bundles, GraphQL, low level ------------------------------------------------------------------


async def test_execute_graphql_example(api: Api) -> None:
    pid = (await new_patient(api))["id"]
    query = """
query GetPatient($id: ID!) {
    Patient(id: $id) {
        id
        name { given family }
    }
}
"""
    result = await api.call("execute_graphql", query, variables={"id": pid})
    print(result["data"]["Patient"])
    assert result["data"]["Patient"] == {
        "id": pid,
        "name": [{"given": ["John"], "family": "Smith"}],
    }


async def test_on_behalf_of_context_manager_example(api: Api) -> None:
    membership = api.server.create_membership()["membership"]["id"]
    pid = (await new_patient(api))["id"]  # "456"
    async with api.on_behalf_of(f"ProjectMembership/{membership}"):
        patient = await api.call("read_resource", "Patient", pid)
    assert patient["id"] == pid
    assert api.server.last_headers("/fhir/")["x-medplum-on-behalf-of"] == (
        f"ProjectMembership/{membership}"
    )


# --- Multi-Tenant Accounts, Async Jobs ------------------------------------------------------------


async def test_set_accounts_and_async_job_examples(api: Api) -> None:
    pid = (await new_patient(api))["id"]
    obs = await api.call(
        "create_resource",
        {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
         "subject": {"reference": f"Patient/{pid}"}},
    )  # fmt: skip
    org_456 = await new_org(api)
    prac = await api.call("create_resource", {"resourceType": "Practitioner"})
    prac_789 = f"Practitioner/{prac['id']}"

    # Assign patient to an organization
    await api.call("set_accounts", f"Patient/{pid}", org_456)
    assert (await api.call("read_resource", "Patient", pid))["meta"]["accounts"] == [
        {"reference": org_456}
    ]

    # Multiple accounts with propagation to related resources
    await api.call("set_accounts", f"Patient/{pid}", [org_456, prac_789], propagate=True)
    patient = await api.call("read_resource", "Patient", pid)
    assert [a["reference"] for a in patient["meta"]["accounts"]] == [org_456, prac_789]
    # Propagation pushes the accounts the call added (the Observation had none before).
    stored = await api.call("read_resource", "Observation", obs["id"])
    assert [a["reference"] for a in stored["meta"]["accounts"]] == [prac_789]

    # Start an async operation
    api.server.set_job_delay(300)
    result = await api.call(
        "set_accounts",
        f"Patient/{pid}",
        org_456,
        propagate=True,
        prefer_async=True,
    )

    # Check once without waiting
    job = await api.call("get_async_job_status", result)
    if job["status"] == "completed":
        print(job["output"])
    elif job["status"] in ("accepted", "active"):
        print("Still running")
    assert job["status"] in ("accepted", "active", "completed")

    # Wait for completion — accepts the OperationOutcome directly
    # (adapted: poll_interval=0.1 instead of the default 1 s, to keep the suite fast)
    job = await api.call("wait_for_async_job", result, poll_interval=0.1, timeout=60)
    print(job["status"])  # "completed"
    print(job["output"])  # Parameters with resourcesUpdated
    assert job["status"] == "completed"
    assert job["output"]["parameter"][0] == {"name": "resourcesUpdated", "valueInteger": 2}


async def test_resource_metadata_properties_example(api: Api) -> None:
    org_1, org_2 = await new_org(api), await new_org(api)
    pid = (await new_patient(api))["id"]
    await api.call("set_accounts", f"Patient/{pid}", [org_1, org_2])
    patient = await api.call("read_resource", "Patient", pid, as_fhir=Patient)
    assert patient.medplum_account == org_1
    assert patient.medplum_accounts == [org_1, org_2]
    assert patient.medplum_author == f"ClientApplication/{api.server.client_id}"


# --- ProjectMembership Access ---------------------------------------------------------------------


async def test_project_membership_access_examples(api: Api) -> None:
    alice = api.server.create_membership(read_only=True)["membership"]["id"]
    policy = await api.call(
        "create_resource", {"resourceType": "AccessPolicy", "name": "practice-policy"}
    )
    practice_policy = f"AccessPolicy/{policy['id']}"
    practice = {x: await new_org(api) for x in "abcd"}

    # Alice works at three practices — pass one entry per tenant.
    result = await api.call(
        "merge_project_membership_access",
        alice,
        managed_access=[
            make_project_membership_access(practice_policy, {"organization": practice["a"]}),
            make_project_membership_access(practice_policy, {"organization": practice["b"]}),
            make_project_membership_access(practice_policy, {"organization": practice["c"]}),
        ],
        managed_policy_ids={policy["id"]},
    )
    print(result.updated, result.version_id, result.managed_count)
    assert (result.updated, result.managed_count) == (True, 3)

    await api.call(
        "add_project_membership_access_entry",
        alice,
        make_project_membership_access(practice_policy, {"organization": practice["d"]}),
        managed_policy_ids={policy["id"]},
    )
    await api.call(
        "remove_project_membership_access_entry",
        alice,
        make_project_membership_access(practice_policy, {"organization": practice["c"]}),
        managed_policy_ids={policy["id"]},
    )
    membership = await api.call("read_resource", "ProjectMembership", alice)
    orgs = [e["parameter"][0]["valueReference"]["reference"] for e in membership["access"]]
    assert orgs == [practice["a"], practice["b"], practice["d"]]


# --- Binary & Document Export ---------------------------------------------------------------------


async def test_binary_and_ccda_examples(api: Api, tmp_path: Path) -> None:
    document = tmp_path / "document.pdf"
    document.write_bytes(b"%PDF-1.7\n\x00\x01\x02binary\xff\n%%EOF")
    with open(document, "rb") as f:
        binary = await api.call("upload_binary", f.read(), "application/pdf")

    content = await api.call("download_binary", binary["id"])  # "binary-123"
    assert content == document.read_bytes()

    pid = (await new_patient(api))["id"]  # "patient-123"
    ccda_xml = await api.call("export_ccda", pid)
    assert "<ClinicalDocument" in ccda_xml and pid in ccda_xml


# --- Terminology ----------------------------------------------------------------------------------


async def test_expand_valueset_examples(api: Api) -> None:
    # Expand by URL
    expansion = await api.call(
        "expand_valueset", valueset_url="http://hl7.org/fhir/ValueSet/observation-status"
    )
    lines = []
    for concept in expansion.get("expansion", {}).get("contains", []):
        print(f"{concept['code']}: {concept['display']}")
        lines.append(f"{concept['code']}: {concept['display']}")
    assert "final: Final" in lines

    # Expand with filter and pagination
    expansion = await api.call(
        "expand_valueset",
        valueset_url="http://hl7.org/fhir/ValueSet/condition-code",
        filter="diabetes",
        count=20,
        offset=0,
    )
    found = {c["code"] for c in expansion["expansion"]["contains"]}
    assert {"44054006", "46635009", "73211009"} <= found  # the seeded SNOMED diabetes codes

    # Expand a specific ValueSet by ID (a created ValueSet stands in for my-custom-valueset)
    custom = await api.call(
        "create_resource",
        {
            "resourceType": "ValueSet",
            "url": f"http://example.org/ValueSet/{unique('custom')}",
            "status": "active",
            "compose": {
                "include": [{"system": "http://loinc.org", "concept": [{"code": "8867-4"}]}]
            },
        },
    )
    expansion = await api.call("expand_valueset", valueset_id=custom["id"])
    assert [c["code"] for c in expansion["expansion"]["contains"]] == ["8867-4"]


async def test_lookup_concept_examples(api: Api) -> None:
    # Look up a LOINC code
    result = await api.call("lookup_concept", code="8867-4", system="http://loinc.org")

    # Extract display name from parameters
    displays = []
    for param in result.get("parameter", []):
        if param.get("name") == "display":
            print(f"Display: {param.get('valueString')}")
            displays.append(param.get("valueString"))
    assert displays == ["Heart rate"]

    # Look up with specific properties
    result = await api.call(
        "lookup_concept",
        code="38341003",
        system="http://snomed.info/sct",
        property=["parent", "child", "designation"],
    )
    assert result["resourceType"] == "Parameters"
    assert api.fhir_events()[-1].query_params["property"] == ["parent", "child", "designation"]


async def ensure_concept_map(api: Api, url: str, source: str, code: str, mapped: str) -> str:
    """The ConceptMap of an example, created once per server (conditional create by url)."""
    concept_map = await api.call(
        "create_resource_if_none_exist",
        {
            "resourceType": "ConceptMap",
            "url": url,
            "status": "active",
            "group": [
                {
                    "source": source,
                    "target": "http://example.org/local-codes",
                    "element": [
                        {
                            "code": code,
                            "target": [
                                {"code": mapped, "display": "Final", "equivalence": "equal"}
                            ],
                        }
                    ],
                }
            ],
        },
        if_none_exist=f"url={url}",
    )
    return str(concept_map["id"])


async def test_translate_concept_examples(api: Api) -> None:
    await ensure_concept_map(
        api,
        "http://example.org/ConceptMap/status-mapping",
        "http://hl7.org/fhir/observation-status",
        "final",
        "F",
    )
    # Translate using a ConceptMap URL
    result = await api.call(
        "translate_concept",
        code="final",
        system="http://hl7.org/fhir/observation-status",
        conceptmap_url="http://example.org/ConceptMap/status-mapping",
        target_system="http://example.org/local-codes",
    )

    # Check if translation found matches
    found, mapped = False, []
    for param in result.get("parameter", []):
        if param.get("name") == "result" and param.get("valueBoolean"):
            print("Translation found!")
            found = True
        elif param.get("name") == "match":
            for part in param.get("part", []):
                if part.get("name") == "concept":
                    coding = part.get("valueCoding", {})
                    print(f"Mapped to: {coding.get('code')} ({coding.get('display')})")
                    mapped.append(coding.get("code"))
    assert found and mapped == ["F"]

    # Translate using a specific ConceptMap by ID (a created map stands in for my-status-map)
    my_status_map = await ensure_concept_map(
        api,
        f"http://example.org/ConceptMap/{unique('my-status-map')}",
        "http://hl7.org/fhir/patient-status",
        "active",
        "A",
    )
    result = await api.call(
        "translate_concept",
        code="active",
        system="http://hl7.org/fhir/patient-status",
        conceptmap_id=my_status_map,
    )
    assert [p["valueBoolean"] for p in result["parameter"] if p["name"] == "result"] == [True]


# --- Asynchronous client --------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["async"])  # the example is the async client's own
async def test_async_client_example(api: Api, medplum_server: MedplumServer) -> None:
    pid = (await new_patient(api))["id"]
    await api.call(
        "create_resource",
        {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
         "subject": {"reference": f"Patient/{pid}"}},
    )  # fmt: skip

    async def main() -> list[str]:
        seen = []
        async with AsyncMedplumClient(
            base_url=medplum_server.base_url,  # "https://api.medplum.com/"
            access_token=medplum_server.access_token(),  # "YOUR_TOKEN"
        ) as client:
            # All methods are async
            patient = await client.read_resource("Patient", pid)
            assert patient["id"] == pid

            # Async iteration for search
            async for obs in client.search_resource_pages(
                "Observation", {"patient": f"Patient/{pid}"}
            ):
                print(obs["id"])
                seen.append(obs["id"])
        return seen

    assert len(await main()) == 1


# --- Hooks and Exceptions -------------------------------------------------------------------------


async def test_request_event_methods_on_a_real_event(make_api: Any) -> None:
    events: list[RequestEvent] = []
    api = make_api(on_request_complete=events.append)
    family = unique("Audit")
    await api.call("search_resources", "Patient", {"family": family})
    event = events[-1]
    assert (event.action, event.outcome) == ("search", "success")
    phi = event.to_phi_audit_dict()  # PHI-bearing; for HIPAA-approved audit sinks
    with_query = event.to_phi_audit_dict(include_query_params=True)
    non_phi = event.to_non_phi_dict()  # shape-only; for metrics / general observability
    assert family in repr(with_query) and family not in repr(phi)
    assert family not in repr(non_phi) and non_phi["action"] == "search"


async def test_safe_logging_pattern_example(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger(__name__)
    missing = unique("")  # "123", which does not exist here
    with caplog.at_level(logging.WARNING), pytest.raises(NotFoundError):
        try:
            await api.call("read_resource", "Patient", missing)
        except (OperationOutcomeError, ServerError) as exc:
            log.warning("medplum_call_failed", extra=exc.sanitize_for_logging())
            raise
    (record,) = [r for r in caplog.records if r.getMessage() == "medplum_call_failed"]
    assert record.status_code == 404  # type: ignore[attr-defined]
    assert missing not in repr(record.__dict__)


async def test_token_refresh_cooldown_example(make_api: Any) -> None:
    class TransientAuthError(Exception):
        def __init__(self, retry_after: float) -> None:
            super().__init__(f"retry after {retry_after:.2f}s")
            self.retry_after = retry_after

    api = make_api(failed_refresh_cooldown=30.0)
    api.server.fail_token_endpoint(status=503, error="temporarily_unavailable")
    with pytest.raises(OperationOutcomeError):  # the failed refresh itself
        await api.call("read_resource", "Patient", "123")
    with pytest.raises(TransientAuthError) as transient:
        try:
            patient = await api.call("read_resource", "Patient", "123")
        except TokenRefreshCooldownError as exc:
            # Transient auth failure — push back and let a higher layer
            # decide when to retry.
            raise TransientAuthError(retry_after=exc.retry_after) from exc
        del patient
    assert 0 < transient.value.retry_after <= 30.0


async def test_error_handling_example(api: Api) -> None:
    branch = None
    try:
        patient = await api.call("read_resource", "Patient", "nonexistent-id")
        del patient
    except NotFoundError:
        branch = "not found"
    except AuthorizationError:
        branch = "forbidden"
    except ValidationError:
        branch = "invalid"
    except RateLimitError:
        branch = "rate limited"
    assert branch == "not found"

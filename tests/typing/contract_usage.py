# ruff: noqa: E501
# fmt: off
"""The contract's examples, type-checked with ``mypy --strict`` by test_contract_typing.py.

Each ``reveal_type`` line carries the type mypy must report (``# expect: ...``). Never run:
it only has to type-check.
"""

from __future__ import annotations

from typing_extensions import reveal_type

from pymedplum import FHIRBundle, MergeResult, make_project_membership_access
from pymedplum.async_client import AsyncMedplumClient
from pymedplum.client import MedplumClient
from pymedplum.endpoint_types import PatchOperation
from pymedplum.fhir import Observation, Patient
from pymedplum.search_params import PatientSearchParams


def sync_examples(client: MedplumClient) -> None:
    patient_dict = {"resourceType": "Patient", "active": True}
    created = client.create_resource(patient_dict, accounts="Organization/org-456")
    reveal_type(created)  # expect: dict[str, Any]
    typed = client.create_resource(patient_dict, as_fhir=Patient)
    reveal_type(typed)  # expect: pymedplum.fhir.patient.Patient
    reveal_type(client.read_resource("Patient", "123"))  # expect: dict[str, Any]
    reveal_type(client.read_resource("Patient", "123", as_fhir=Patient))  # expect: pymedplum.fhir.patient.Patient
    reveal_type(client.read_resource("Patient", "123", Patient))  # expect: pymedplum.fhir.patient.Patient
    reveal_type(client.vread_resource("Patient", "123", "1", as_fhir=Patient))  # expect: pymedplum.fhir.patient.Patient
    updated = client.update_resource(typed, if_match=False)
    reveal_type(updated)  # expect: dict[str, Any]
    reveal_type(client.update_resource(typed, as_fhir=Patient))  # expect: pymedplum.fhir.patient.Patient
    ops: list[PatchOperation] = [{"op": "replace", "path": "/active", "value": True}, {"op": "remove", "path": "/telecom"}]
    reveal_type(client.patch_resource("Patient", "123", ops, as_fhir=Patient))  # expect: pymedplum.fhir.patient.Patient
    reveal_type(client.delete_resource("Patient", "123"))  # expect: None
    reveal_type(client.search_resources("Patient", {"family": "Smith"}))  # expect: dict[str, Any]
    typed_query: PatientSearchParams = {"family": "Smith", "name:contains": "Jo", "_count": 10}
    reveal_type(client.search_resources("Patient", typed_query, True, Patient))  # expect: pymedplum.bundle.FHIRBundle[pymedplum.fhir.patient.Patient]
    bundle = client.search_resources("Patient", {"family": "Smith"}, return_bundle=True)
    reveal_type(bundle)  # expect: pymedplum.bundle.FHIRBundle[dict[str, Any]]
    typed_bundle = client.search_resources(
        "Patient", {"family": "Smith"}, return_bundle=True, as_fhir=Patient
    )
    reveal_type(typed_bundle)  # expect: pymedplum.bundle.FHIRBundle[pymedplum.fhir.patient.Patient]
    reveal_type(typed_bundle.get_resources_typed(Patient))  # expect: list[pymedplum.fhir.patient.Patient]
    reveal_type(client.search_one("Patient", {"identifier": "MRN|12345"}))  # expect: dict[str, Any] | None
    for obs in client.search_resource_pages("Observation", {"patient": "Patient/123"}, as_fhir=Observation):
        reveal_type(obs)  # expect: pymedplum.fhir.observation.Observation
    for raw in client.search_resource_pages("Observation", {"patient": "Patient/123"}):
        reveal_type(raw)  # expect: dict[str, Any]
    reveal_type(client.search_with_options("Patient", {"family": "Smith"}, summary="count"))  # expect: dict[str, Any]
    options_bundle = client.search_with_options(
        "Observation",
        {"patient": "Patient/123"},
        count=50,
        offset=100,
        sort=["-date", "code"],
        include="Observation:patient",
        return_bundle=True,
        as_fhir=Observation,
    )
    reveal_type(options_bundle)  # expect: pymedplum.bundle.FHIRBundle[pymedplum.fhir.observation.Observation]
    reveal_type(client.searchWithOptions("Patient", total="accurate", return_bundle=True))  # expect: pymedplum.bundle.FHIRBundle[dict[str, Any]]
    reveal_type(client.execute_graphql("{ a }", variables={"id": "123"}))  # expect: dict[str, Any]
    started = client.set_accounts(
        "Patient/123", "Organization/org-456", propagate=True, prefer_async=True
    )
    reveal_type(started)  # expect: dict[str, Any]
    result = client.merge_project_membership_access(
        "alice-membership-id",
        managed_access=[
            make_project_membership_access(
                "AccessPolicy/practice-policy", {"organization": "Organization/practice-a"}
            )
        ],
        managed_policy_ids={"practice-policy"},
    )
    reveal_type(result)  # expect: pymedplum.access.MergeResult
    reveal_type(client.wait_for_async_job(started, timeout=60))  # expect: dict[str, Any]
    reveal_type(client.download_binary("binary-123"))  # expect: bytes
    reveal_type(client.export_ccda("patient-123"))  # expect: str
    reveal_type(client.expand_valueset(valueset_url="http://hl7.org/fhir/ValueSet/x"))  # expect: dict[str, Any]
    assert isinstance(result, MergeResult) and isinstance(bundle, FHIRBundle)


async def async_examples(client: AsyncMedplumClient) -> None:
    reveal_type(await client.read_resource("Patient", "1", as_fhir=Patient))  # expect: pymedplum.fhir.patient.Patient
    reveal_type(await client.read_resource("Patient", "1"))  # expect: dict[str, Any]
    reveal_type(await client.create_resource(Patient(), as_fhir=Patient))  # expect: pymedplum.fhir.patient.Patient
    reveal_type(await client.search_resources("Patient", None, True, Patient))  # expect: pymedplum.bundle.FHIRBundle[pymedplum.fhir.patient.Patient]
    async for obs in client.search_resource_pages("Observation", as_fhir=Observation):
        reveal_type(obs)  # expect: pymedplum.fhir.observation.Observation
    async for raw in client.search_resource_pages("Observation", {"patient": "Patient/123"}):
        reveal_type(raw)  # expect: dict[str, Any]
    reveal_type(await client.get_async_job_status("job-1"))  # expect: dict[str, Any]
    reveal_type(await client.upload_binary(b"%PDF", "application/pdf"))  # expect: dict[str, Any]

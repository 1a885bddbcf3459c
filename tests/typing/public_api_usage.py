# ruff: noqa: E501
# fmt: off
# pyright: strict
"""Every public method of both clients, called as the contract shows, with the type a user's
checker must infer (``assert_type``): mypy --strict and pyright --strict must report nothing
(test_public_api_typing.py). A wrong annotation in the package (``Any`` where the contract
promises a type, a lost overload, a sync/async mix-up) fails an ``assert_type``. Never run.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import assert_type

from pymedplum import (
    FHIRBundle,
    MergeResult,
    OnBehalfOfContext,
    TokenRefreshCooldownError,
    make_project_membership_access,
)
from pymedplum.async_client import AsyncMedplumClient
from pymedplum.client import MedplumClient
from pymedplum.endpoint_types import PatchOperation
from pymedplum.fhir import (
    Bundle,
    Observation,
    OperationOutcome,
    Patient,
    ProjectMembership,
    Reference,
)
from pymedplum.hooks import PreparedRequest, RequestEvent


def before(request: PreparedRequest) -> PreparedRequest | None:
    return None


def audit(event: RequestEvent) -> None:
    assert_type(event.to_phi_audit_dict(), dict[str, Any])


async def async_audit(event: RequestEvent) -> None:
    assert_type(event.to_non_phi_dict(), dict[str, Any])


def sync_client(client: MedplumClient) -> None:
    patient = Patient(active=True)
    raw = {"resourceType": "Patient", "active": True}
    ops: list[PatchOperation] = [{"op": "replace", "path": "/active", "value": False}]
    entry = make_project_membership_access("AccessPolicy/p", {"organization": "Organization/a"})
    bundle = Bundle(type="batch")

    assert_type(client.create_resource(raw), dict[str, Any])
    assert_type(client.create_resource(patient, headers={"X": "1"}, accounts=["Organization/a"], as_fhir=Patient, on_behalf_of=None), Patient)
    assert_type(client.create_resource_if_none_exist(patient, "identifier=a|1"), dict[str, Any])
    assert_type(client.create_resource_if_none_exist(patient, if_none_exist="identifier=a|1", as_fhir=Patient), Patient)
    assert_type(client.read_resource("Patient", "1"), dict[str, Any])
    assert_type(client.read_resource("Patient", "1", Patient), Patient)
    assert_type(client.read_resource("Patient", "1", as_fhir=Patient, headers={}, on_behalf_of=""), Patient)
    assert_type(client.vread_resource("Patient", "1", "2"), dict[str, Any])
    assert_type(client.vread_resource("Patient", "1", "2", as_fhir=Patient), Patient)
    assert_type(client.update_resource(patient), dict[str, Any])
    assert_type(client.update_resource(raw, as_fhir=Patient, if_match='W/"5"'), Patient)
    assert_type(client.patch_resource("Patient", "1", ops), dict[str, Any])
    assert_type(client.patch_resource("Patient", "1", ops, headers={"If-Match": 'W/"1"'}, as_fhir=Patient), Patient)
    assert_type(client.delete_resource("Patient", "1", headers={}, on_behalf_of=None), None)

    assert_type(client.search_resources("Patient"), dict[str, Any])
    assert_type(client.search_resources("Patient", {"family": "Smith"}), dict[str, Any])
    assert_type(client.search_resources("Patient", as_fhir=Patient), dict[str, Any])  # as_fhir needs return_bundle
    assert_type(client.search_resources("Patient", [("family", "Smith")], return_bundle=True), FHIRBundle[dict[str, Any]])
    assert_type(client.search_resources("Patient", "family=Smith", True, Patient), FHIRBundle[Patient])
    assert_type(client.search_resources("Patient", return_bundle=True, as_fhir=Patient), FHIRBundle[Patient])
    assert_type(client.search_one("Patient", {"identifier": "MRN|1"}), dict[str, Any] | None)
    for raw_page_item in client.search_resource_pages("Patient"):
        assert_type(raw_page_item, dict[str, Any])
    for typed_page_item in client.search_resource_pages("Patient", None, Patient, on_behalf_of=None):
        assert_type(typed_page_item, Patient)
    assert_type(client.search_with_options("Patient", summary="count"), dict[str, Any])
    assert_type(client.search_with_options("Patient", {"family": "Smith"}, total="accurate", return_bundle=True), FHIRBundle[dict[str, Any]])
    assert_type(client.search_with_options("Observation", count=50, offset=100, sort=["-date"], include="Observation:patient", include_iterate=[], revinclude="x", revinclude_iterate=None, elements=["id"], at="2024-01-01", return_bundle=True, as_fhir=Observation), FHIRBundle[Observation])
    assert_type(client.searchWithOptions("Patient"), dict[str, Any])
    assert_type(client.searchWithOptions("Patient", return_bundle=True, as_fhir=Patient), FHIRBundle[Patient])

    typed_bundle = client.search_resources("Patient", return_bundle=True, as_fhir=Patient)
    for item in typed_bundle:
        assert_type(item, Patient | dict[str, Any])  # _include-d resources stay dicts
    assert_type(typed_bundle.get_resources_typed(Patient), list[Patient])
    assert_type(typed_bundle.get_resources(), list[dict[str, Any]])
    assert_type(typed_bundle.total, int | None)
    assert_type(typed_bundle.get_next_link(), str | None)

    assert_type(client.execute_batch(bundle, accounts="Organization/a"), dict[str, Any])
    assert_type(client.execute_transaction({"resourceType": "Bundle", "type": "transaction"}), dict[str, Any])
    assert_type(client.execute_graphql("{ a }", {"id": "1"}, on_behalf_of=None), dict[str, Any])
    assert_type(client.get("admin/projects/1", params={"a": "b"}), Any)
    assert_type(client.post("admin/x", {"a": 1}, headers={}), Any)
    assert_type(client.put("admin/x", content=b"x"), Any)
    assert_type(client.delete("admin/x", timeout=5.0), Any)

    obo = client.on_behalf_of("ProjectMembership/1")
    assert_type(obo, OnBehalfOfContext[MedplumClient])
    with client.on_behalf_of(ProjectMembership(user=Reference(reference="User/1"), project=Reference(reference="Project/1"), profile=Reference(reference="Practitioner/1"))) as scoped:
        assert_type(scoped, MedplumClient)

    started = client.set_accounts("Patient/1", ["Organization/a"], propagate=True, prefer_async=True)
    assert_type(started, dict[str, Any])
    assert_type(client.merge_project_membership_access("m", managed_access=[entry], managed_policy_ids={"p"}, force=False, max_retries=1), MergeResult)
    assert_type(client.add_project_membership_access_entry("m", entry, managed_policy_ids={"p"}), MergeResult)
    assert_type(client.remove_project_membership_access_entry("ProjectMembership/m", entry, managed_policy_ids=frozenset({"p"}), force=True), MergeResult)
    assert_type(client.get_async_job_status(started), dict[str, Any])
    assert_type(client.get_async_job_status(OperationOutcome(issue=[{"severity": "information", "code": "informational"}])), dict[str, Any])
    assert_type(client.wait_for_async_job("job-1", 0.5, 60), dict[str, Any])
    assert_type(client.upload_binary(b"%PDF", "application/pdf", on_behalf_of=None), dict[str, Any])
    assert_type(client.download_binary("b-1"), bytes)
    assert_type(client.export_ccda("p-1"), str)
    assert_type(client.expand_valueset(valueset_url="http://x", filter="a", offset=0, count=20, include_designations=True, active_only=True, exclude_nested=False, exclude_not_for_ui=False, exclude_post_coordinated=False, display_language="en", property=["p"]), dict[str, Any])
    assert_type(client.lookup_concept("8867-4", "http://loinc.org", property=["parent"]), dict[str, Any])
    assert_type(client.lookup_concept(code="x", codesystem_id="cs", version="1", coding={"code": "x"}, date="2024-01-01", display_language="en"), dict[str, Any])
    assert_type(client.translate_concept(code="final", system="http://x", conceptmap_url="http://y", target_system="http://z"), dict[str, Any])
    assert_type(client.translate_concept(conceptmap_id="m", version="1", source="s", target="t", coding=None, codeable_concept={"text": "x"}, reverse=True), dict[str, Any])
    assert_type(client.close(), None)


def sync_construction() -> None:
    client = MedplumClient(
        "https://api.medplum.com/", client_id="id", client_secret="secret", access_token=None,
        project_id=None, fhir_url_path="fhir/R4/", timeout=30.0, http_client=None,
        before_request=before, on_request_complete=audit, allow_insecure_http=False,
        failed_refresh_cooldown=1.0, default_on_behalf_of=None,
    )
    with client as entered:
        assert_type(entered, MedplumClient)
    try:
        client.read_resource("Patient", "1")
    except TokenRefreshCooldownError as exc:
        assert_type(exc.retry_after, float)


async def async_client(client: AsyncMedplumClient) -> None:
    patient = Patient(active=True)
    raw = {"resourceType": "Patient", "active": True}
    ops: list[PatchOperation] = [{"op": "replace", "path": "/active", "value": False}]
    entry = make_project_membership_access("AccessPolicy/p", {"organization": "Organization/a"})
    bundle = Bundle(type="batch")

    assert_type(await client.create_resource(raw), dict[str, Any])
    assert_type(await client.create_resource(patient, headers={"X": "1"}, accounts=["Organization/a"], as_fhir=Patient, on_behalf_of=None), Patient)
    assert_type(await client.create_resource_if_none_exist(patient, "identifier=a|1"), dict[str, Any])
    assert_type(await client.create_resource_if_none_exist(patient, if_none_exist="identifier=a|1", as_fhir=Patient), Patient)
    assert_type(await client.read_resource("Patient", "1"), dict[str, Any])
    assert_type(await client.read_resource("Patient", "1", Patient), Patient)
    assert_type(await client.read_resource("Patient", "1", as_fhir=Patient, headers={}, on_behalf_of=""), Patient)
    assert_type(await client.vread_resource("Patient", "1", "2"), dict[str, Any])
    assert_type(await client.vread_resource("Patient", "1", "2", as_fhir=Patient), Patient)
    assert_type(await client.update_resource(patient), dict[str, Any])
    assert_type(await client.update_resource(raw, as_fhir=Patient, if_match='W/"5"'), Patient)
    assert_type(await client.patch_resource("Patient", "1", ops), dict[str, Any])
    assert_type(await client.patch_resource("Patient", "1", ops, headers={"If-Match": 'W/"1"'}, as_fhir=Patient), Patient)
    assert_type(await client.delete_resource("Patient", "1", headers={}, on_behalf_of=None), None)

    assert_type(await client.search_resources("Patient"), dict[str, Any])
    assert_type(await client.search_resources("Patient", {"family": "Smith"}), dict[str, Any])
    assert_type(await client.search_resources("Patient", as_fhir=Patient), dict[str, Any])  # as_fhir needs return_bundle
    assert_type(await client.search_resources("Patient", [("family", "Smith")], return_bundle=True), FHIRBundle[dict[str, Any]])
    assert_type(await client.search_resources("Patient", "family=Smith", True, Patient), FHIRBundle[Patient])
    assert_type(await client.search_resources("Patient", return_bundle=True, as_fhir=Patient), FHIRBundle[Patient])
    assert_type(await client.search_one("Patient", {"identifier": "MRN|1"}), dict[str, Any] | None)
    async for raw_page_item in client.search_resource_pages("Patient"):
        assert_type(raw_page_item, dict[str, Any])
    async for typed_page_item in client.search_resource_pages("Patient", None, Patient, on_behalf_of=None):
        assert_type(typed_page_item, Patient)
    assert_type(await client.search_with_options("Patient", summary="count"), dict[str, Any])
    assert_type(await client.search_with_options("Patient", {"family": "Smith"}, total="accurate", return_bundle=True), FHIRBundle[dict[str, Any]])
    assert_type(await client.search_with_options("Observation", count=50, offset=100, sort=["-date"], include="Observation:patient", include_iterate=[], revinclude="x", revinclude_iterate=None, elements=["id"], at="2024-01-01", return_bundle=True, as_fhir=Observation), FHIRBundle[Observation])
    assert_type(await client.searchWithOptions("Patient"), dict[str, Any])
    assert_type(await client.searchWithOptions("Patient", return_bundle=True, as_fhir=Patient), FHIRBundle[Patient])

    assert_type(await client.execute_batch(bundle, accounts="Organization/a"), dict[str, Any])
    assert_type(await client.execute_transaction({"resourceType": "Bundle", "type": "transaction"}), dict[str, Any])
    assert_type(await client.execute_graphql("{ a }", {"id": "1"}, on_behalf_of=None), dict[str, Any])
    assert_type(await client.get("admin/projects/1", params={"a": "b"}), Any)
    assert_type(await client.post("admin/x", {"a": 1}, headers={}), Any)
    assert_type(await client.put("admin/x", content=b"x"), Any)
    assert_type(await client.delete("admin/x", timeout=5.0), Any)

    obo = client.on_behalf_of("ProjectMembership/1")
    assert_type(obo, OnBehalfOfContext[AsyncMedplumClient])
    async with client.on_behalf_of("ProjectMembership/1") as scoped:
        assert_type(scoped, AsyncMedplumClient)
    with client.on_behalf_of("ProjectMembership/1") as plain_scoped:
        assert_type(plain_scoped, AsyncMedplumClient)

    started = await client.set_accounts("Patient/1", ["Organization/a"], propagate=True, prefer_async=True)
    assert_type(started, dict[str, Any])
    assert_type(await client.merge_project_membership_access("m", managed_access=[entry], managed_policy_ids={"p"}, force=False, max_retries=1), MergeResult)
    assert_type(await client.add_project_membership_access_entry("m", entry, managed_policy_ids={"p"}), MergeResult)
    assert_type(await client.remove_project_membership_access_entry("ProjectMembership/m", entry, managed_policy_ids=frozenset({"p"}), force=True), MergeResult)
    assert_type(await client.get_async_job_status(started), dict[str, Any])
    assert_type(await client.get_async_job_status(OperationOutcome(issue=[{"severity": "information", "code": "informational"}])), dict[str, Any])
    assert_type(await client.wait_for_async_job("job-1", 0.5, 60), dict[str, Any])
    assert_type(await client.upload_binary(b"%PDF", "application/pdf", on_behalf_of=None), dict[str, Any])
    assert_type(await client.download_binary("b-1"), bytes)
    assert_type(await client.export_ccda("p-1"), str)
    assert_type(await client.expand_valueset(valueset_url="http://x", filter="a", offset=0, count=20, include_designations=True, active_only=True, exclude_nested=False, exclude_not_for_ui=False, exclude_post_coordinated=False, display_language="en", property=["p"]), dict[str, Any])
    assert_type(await client.lookup_concept("8867-4", "http://loinc.org", property=["parent"]), dict[str, Any])
    assert_type(await client.lookup_concept(code="x", codesystem_id="cs", version="1", coding={"code": "x"}, date="2024-01-01", display_language="en"), dict[str, Any])
    assert_type(await client.translate_concept(code="final", system="http://x", conceptmap_url="http://y", target_system="http://z"), dict[str, Any])
    assert_type(await client.translate_concept(conceptmap_id="m", version="1", source="s", target="t", coding=None, codeable_concept={"text": "x"}, reverse=True), dict[str, Any])
    assert_type(await client.close(), None)
    assert_type(await client.aclose(), None)


async def async_construction() -> None:
    async with AsyncMedplumClient(
        "https://api.medplum.com/", client_id="id", client_secret="secret", access_token=None,
        project_id=None, fhir_url_path="fhir/R4/", timeout=30.0, http_client=None,
        before_request=before, on_request_complete=async_audit, allow_insecure_http=False,
        failed_refresh_cooldown=1.0, default_on_behalf_of=None,
    ) as client:
        assert_type(client, AsyncMedplumClient)
    AsyncMedplumClient(on_request_complete=audit)  # a sync hook is fine on the async client

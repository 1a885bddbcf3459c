# ruff: noqa: E501
# fmt: off
# pyright: strict
"""The models and helpers as a user's checker sees them: field types (lists, Literal codes,
choice fields, decimals), construction by Python name, the pydantic methods returning the
class, and every contract helper's result type, stated with ``assert_type``. mypy --strict and
pyright strict must report nothing (test_public_api_typing.py). Never run.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from typing_extensions import assert_type

from pymedplum import (
    BundleEntryError,
    BundleEntryResult,
    FHIRBundle,
    OperationOutcomeError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    build_merged_access,
    build_reference,
    coding_parts,
    extract_account_references,
    extract_identifier,
    get_code_by_system,
    get_code_display,
    get_patient_display_name,
    get_project_membership_access_parameter,
    get_project_membership_access_policy_id,
    get_resource_accounts,
    make_project_membership_access,
    merged_equals_remote,
    normalize_access_policy_id,
    normalize_access_policy_reference,
    parse_reference,
    partition_access,
    resolve_id,
    resource_has_account,
    to_fhir_json,
    validate_managed_access,
)
from pymedplum.fhir import (
    Bundle,
    BundleEntry,
    CodeableConcept,
    Coding,
    DocumentReference,
    DocumentReferenceContent,
    Encounter,
    Extension,
    HumanName,
    Identifier,
    Meta,
    Observation,
    OperationOutcome,
    OperationOutcomeIssue,
    Patient,
    ProjectMembershipAccess,
    Quantity,
    Reference,
    Resource,
)
from pymedplum.hooks import (
    RequestAction,
    RequestAttempt,
    RequestEvent,
    RequestOutcome,
    serialize_exception,
)

Gender = Literal["male", "female", "other", "unknown"]


def fields(patient: Patient, observation: Observation, bundle: Bundle) -> None:
    assert_type(patient.resource_type, Literal["Patient"])
    assert_type(patient.id, str | None)
    assert_type(patient.meta, Meta | None)
    assert_type(patient.active, bool | None)
    assert_type(patient.gender, Gender | None)
    assert_type(patient.birth_date, str | None)
    assert_type(patient.name, list[HumanName] | None)
    assert_type(patient.identifier, list[Identifier] | None)
    assert_type(patient.extension, list[Extension] | None)
    assert_type(patient.contained, list[Resource] | None)
    assert_type(patient.deceased_boolean, bool | None)  # choice field deceased[x]
    assert_type(patient.deceased_date_time, str | None)
    if patient.name:
        assert_type(patient.name[0].given, list[str] | None)
        assert_type(patient.name[0].family, str | None)
    assert_type(observation.status, Literal["registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"])
    assert_type(observation.code, CodeableConcept)
    assert_type(observation.subject, Reference | None)
    assert_type(observation.value_quantity, Quantity | None)  # choice field value[x]
    assert_type(observation.value_string, str | None)
    assert_type(observation.value_integer, int | None)
    if observation.value_quantity is not None:
        assert_type(observation.value_quantity.value, Decimal | None)
    assert_type(bundle.entry, list[BundleEntry] | None)
    if bundle.entry:
        assert_type(bundle.entry[0].resource, Resource | None)
    assert_type(Encounter(status="planned", class_=Coding(code="AMB")).class_, Coding)


def one_to_many(doc: DocumentReference, outcome: OperationOutcome) -> None:
    # 1..* is a required list: indexed with no None check
    assert_type(doc.content, list[DocumentReferenceContent])
    assert_type(doc.content[0].attachment.url, str | None)
    assert_type(outcome.issue, list[OperationOutcomeIssue])
    DocumentReference(status="current", content=[{"attachment": {"url": "http://x.org/a"}}])


def model_api(patient: Patient) -> None:
    built = Patient(
        name=[HumanName(given=["John"], family="Doe")],
        gender="male",
        birth_date="1970-03",
        identifier=[Identifier(system="http://hospital.org/mrn", value="12345")],
        deceased_boolean=False,
    )
    assert_type(built, Patient)
    assert_type(built.model_copy(), Patient)
    assert_type(built.model_copy(update={"active": True}, deep=True), Patient)
    assert_type(Patient.model_validate({"resourceType": "Patient"}), Patient)
    assert_type(Patient.model_validate_json('{"resourceType": "Patient"}'), Patient)
    assert_type(Patient.model_validate_json(b'{"resourceType": "Patient"}', strict=True), Patient)
    assert_type(Patient.model_construct(active=True), Patient)
    assert_type(built.model_dump(by_alias=True, exclude_none=True), dict[str, Any])
    assert_type(built.model_dump_json(indent=2), str)
    assert_type(patient.medplum_account, str | None)
    assert_type(patient.medplum_accounts, list[str])
    assert_type(patient.medplum_author, str | None)
    assert_type(patient.medplum_project, str | None)
    assert_type(patient.medplum_compartment, list[Any] | None)  # the contract's "list | None"


def helpers(patient: Patient, observation: Observation, raw: dict[str, Any]) -> None:
    assert_type(parse_reference("Patient/1"), tuple[str, str])
    assert_type(build_reference("Patient", "1"), str)
    assert_type(resolve_id("Patient/1"), str | None)
    assert_type(resolve_id(observation.subject), str | None)
    assert_type(resolve_id(raw), str | None)
    assert_type(resolve_id(None), str | None)
    assert_type(get_patient_display_name(patient), str)
    assert_type(get_patient_display_name(raw), str)
    assert_type(extract_identifier(patient, "http://hospital.org/mrn"), str | None)
    assert_type(get_code_display(observation.code), str | None)
    assert_type(get_code_by_system(observation.code, "http://loinc.org"), str | None)
    assert_type(coding_parts(observation.code), tuple[str | None, str | None, str | None, str | None])
    assert_type(coding_parts(None), tuple[str | None, str | None, str | None, str | None])
    assert_type(get_resource_accounts(patient), list[str])
    assert_type(extract_account_references(patient.meta), list[str])
    assert_type(extract_account_references({"accounts": []}), list[str])
    assert_type(resource_has_account(raw, "Organization/1"), bool)
    assert_type(to_fhir_json(patient), dict[str, Any])
    assert_type(to_fhir_json(raw), dict[str, Any])
    entry = make_project_membership_access("AccessPolicy/p", {"organization": Reference(reference="Organization/a"), "name": "x"})
    assert_type(entry, dict[str, Any])
    model_entry = ProjectMembershipAccess.model_validate(entry)
    assert_type(normalize_access_policy_reference("p"), dict[str, Any])
    assert_type(normalize_access_policy_id(Reference(reference="AccessPolicy/p")), str)
    assert_type(get_project_membership_access_policy_id(model_entry), str | None)
    assert_type(get_project_membership_access_parameter(entry, "organization"), dict[str, Any] | None)
    managed, untouched = partition_access([entry, model_entry], {"p"})
    assert_type(managed, list[dict[str, Any]])
    assert_type(build_merged_access(untouched, [entry, model_entry]), list[dict[str, Any]])
    assert_type(merged_equals_remote(managed, None), bool)
    assert_type(validate_managed_access([entry], {"p"}), None)


def bundles_hooks_errors(raw: dict[str, Any], bundle: Bundle, event: RequestEvent) -> None:
    assert_type(FHIRBundle(raw), FHIRBundle[dict[str, Any]])
    typed = FHIRBundle(bundle, as_fhir=Patient)
    assert_type(typed, FHIRBundle[Patient])
    assert_type(typed.entry_results(), list[BundleEntryResult])
    assert_type(typed.partition(), tuple[list[BundleEntryResult], list[BundleEntryResult]])
    assert_type(typed.failures(), list[BundleEntryResult])
    assert_type(typed.raise_for_entry_errors(), None)
    assert_type(typed.raw, dict[str, Any])
    assert_type(typed.is_empty(), bool)
    assert_type(len(typed), int)
    assert_type(event.action, RequestAction | None)
    assert_type(event.outcome, RequestOutcome)
    assert_type(event.attempts, list[RequestAttempt])
    assert_type(event.duration_seconds, float)
    assert_type(event.to_phi_audit_dict(include_query_params=True), dict[str, Any])
    assert_type(serialize_exception(ValueError()), dict[str, Any] | None)
    assert_type(RetryPolicy(max_attempts=1).max_attempts, int)
    try:
        typed.raise_for_entry_errors()
    except BundleEntryError as exc:
        assert_type(exc.entries, list[BundleEntryResult])
        assert_type(exc.entries[0].status_code, int | None)
    except RateLimitError as exc:
        assert_type(exc.retry_after, float | None)
    except (OperationOutcomeError, ServerError) as exc:
        assert_type(exc.sanitize_for_logging(), dict[str, Any])
        assert_type(exc.outcome, dict[str, Any] | None)
        assert_type(exc.status_code, int | None)

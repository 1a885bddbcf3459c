# ruff: noqa: B018, F841
# fmt: off
"""Mistakes with the models and helpers that a type checker must reject: every line ending in
``# error`` must get an error from ``mypy --strict`` and from pyright, no other line may
(test_public_api_typing.py). Never run: it only has to type-check.
"""

from __future__ import annotations

from decimal import Decimal

from pymedplum import MedplumClient, coding_parts, parse_reference, resolve_id, to_fhir_json
from pymedplum.endpoint_types import PatchOperation
from pymedplum.fhir import (
    Coding,
    DocumentReference,
    Encounter,
    HumanName,
    Observation,
    Patient,
    Quantity,
)


def construction() -> None:
    Patient(birth_date="1970", gender="male", active=True)
    Patient(birthDate="1970")  # error
    Patient(gender="Male")  # error
    Patient(active="yes")  # error
    Patient(name=HumanName(family="Doe"))  # error
    Patient(name=["Doe"])  # error
    HumanName(given="John")  # error
    Quantity(value="72.5")  # error
    Quantity(value=Decimal("72.5"), comparator="<")
    Quantity(value=Decimal("72.5"), comparator="=")  # error
    # Nested elements as models or FHIR JSON dicts (the contract's examples use both).
    Observation(status="final", code={"text": "x"}, value_quantity={"value": 1})
    Patient(identifier=[{"system": "urn:x", "value": "1"}], name=[{"family": "Smith"}])
    names: list[HumanName] = [HumanName(family="Doe")]
    Patient(name=names)
    Patient(name=[HumanName(family="Doe"), {"family": "Roe"}])
    Quantity(value=72.5)
    Observation(status="final", code={"text": "x"}, subject=Patient())  # error
    Patient(name=[{"family": "Doe"}, "Roe"])  # error
    Observation(status="done", code=Coding())  # error
    Observation(status="final")  # error
    Encounter(status="planned", class_=Coding(code="AMB"))
    Encounter(status="planned", klass=Coding(code="AMB"))  # error
    # 1..* is a required list (DocumentReference.content, SearchParameter.base)
    DocumentReference(status="current")  # error
    DocumentReference(status="current", content=None)  # error
    DocumentReference(status="current", content=[{"attachment": {"url": "http://x.org/a"}}])


def fields(patient: Patient, observation: Observation, doc: DocumentReference) -> None:
    patient.name[0]  # error
    doc.content[0].attachment
    doc.content = None  # error
    patient.gender = "F"  # error
    patient.active = "true"  # error
    # Valid at run time (validated into a HumanName), but the attribute's type is the model's.
    patient.name = [{"family": "Doe"}]  # error
    patient.name = [HumanName(family="Doe")]
    patient.birthDate  # error
    observation.value_quantity.value  # error
    observation.valueQuantity  # error
    copy: Observation = patient.model_copy()  # error
    parsed: Observation = Patient.model_validate_json("{}")  # error
    validated: Observation = Patient.model_validate({})  # error
    Patient.model_validate_json(42)  # error


def helpers(patient: Patient) -> None:
    kind: int = parse_reference("Patient/1")[0]  # error
    found: str = resolve_id(patient)  # error
    code: str = coding_parts(None)[0]  # error
    to_fhir_json("Patient/1")  # error
    dumped: Patient = to_fhir_json(patient)  # error


def patch_operations(client: MedplumClient) -> None:
    # The contract's example list: mypy infers list[object] (the values differ in type) and
    # rejects it; pyright accepts it. docs/client.md says to annotate it list[PatchOperation].
    operations = [
        {"op": "replace", "path": "/active", "value": False},
        {"op": "add", "path": "/telecom/-", "value": {"system": "email", "value": "a@b.c"}},
    ]
    annotated: list[PatchOperation] = [
        {"op": "replace", "path": "/active", "value": False},
        {"op": "add", "path": "/telecom/-", "value": {"system": "email", "value": "a@b.c"}},
    ]
    client.patch_resource("Patient", "123", annotated)
    client.patch_resource("Patient", "123", [{"op": "replace", "path": "/active", "value": True}])
    wrong: list[PatchOperation] = [{"op": "replaces", "path": "/active"}]  # error
    print(operations)

"""Tests that kill mutants of the models' hand-written runtime (src/pymedplum/fhir/_*.py) which
the other tests let survive; each comment says which rule the mutant broke."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ConfigDict, Field, ValidationError

from pymedplum import to_fhir_json
from pymedplum.fhir import (
    Bundle,
    CarePlan,
    Coverage,
    DeviceUdiCarrier,
    HumanName,
    Observation,
    Patient,
    Period,
    Quantity,
)


def test_decimals_inside_lists_become_json_numbers_in_to_fhir_json() -> None:
    # plain_json must walk lists: a Decimal left in component[0] is not JSON-serializable.
    obs = Observation.model_validate_json(
        '{"resourceType":"Observation","status":"final","code":{"text":"bp"},'
        '"component":[{"code":{"text":"sys"},"valueQuantity":{"value":1.50}}]}'
    )
    fhir = to_fhir_json(obs)
    value = fhir["component"][0]["valueQuantity"]["value"]
    assert type(value) is float
    assert value == 1.5
    assert json.loads(json.dumps(fhir)) == fhir


def test_a_repeating_element_refuses_a_tuple() -> None:
    # An optional list (0..*) and a required one (1..*) have different schemas.
    with pytest.raises(ValidationError) as info:
        Patient(name=(HumanName(family="x"),))
    [error] = info.value.errors(include_url=False)
    assert (error["type"], error["loc"]) == ("list_type", ("name",))
    with pytest.raises(ValidationError) as info:
        Coverage(
            status="active",
            beneficiary={"reference": "Patient/1"},
            payor=({"reference": "Organization/1"},),
        )
    [error] = info.value.errors(include_url=False)
    assert (error["type"], error["loc"]) == ("list_type", ("payor",))


def test_exclude_unset_keeps_unknown_elements_of_a_model_without_choices() -> None:
    # Period has no choice element and no repeating primitive: the plain parts function.
    period = Period.model_validate({"start": "2020", "foo": 1})
    assert period.model_dump(exclude_unset=True) == {"start": "2020", "foo": 1}
    assert json.loads(period.model_dump_json(exclude_unset=True)) == {"start": "2020", "foo": 1}


@pytest.mark.parametrize("resource", [{"id": "x"}, {"resourceType": 5, "id": "x"}])
def test_a_resource_typed_element_needs_a_string_resource_type(resource: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        Bundle.model_validate(
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}
        )
    [error] = info.value.errors(include_url=False)
    assert error["type"] == "resource_type"
    assert error["loc"] == ("entry", 0, "resource")


def test_assigning_by_an_explicit_fhir_alias_sets_the_element() -> None:
    # carrierAIDC is not what the alias generator makes of carrier_aidc (carrierAidc).
    carrier = DeviceUdiCarrier()
    carrier.carrierAIDC = "QUJD"  # type: ignore[attr-defined]
    assert carrier.carrier_aidc == "QUJD"
    assert json.loads(carrier.model_dump_json()) == {"carrierAIDC": "QUJD"}
    assert carrier.model_extra == {}


class _LowerPatient(Patient):
    model_config = ConfigDict(str_to_lower=True)


def test_an_assigned_element_is_validated_with_the_models_config() -> None:
    patient = _LowerPatient(id="ABC")
    assert patient.id == "abc"
    patient.id = "DEF"
    assert patient.id == "def"


class _PatientWithPrivateField(Patient):
    ssn: str | None = Field(default=None, repr=False)


def test_a_field_declared_with_repr_false_is_left_out_of_repr() -> None:
    patient = _PatientWithPrivateField(id="a", ssn="123-45-6789")
    assert "123-45-6789" not in repr(patient)
    assert "id='a'" in repr(patient)


class _UserDecimal(Decimal):
    pass


def test_a_decimal_subclass_is_written_in_plain_notation() -> None:
    # A user's Decimal subclass is written with format(value, "f"): 1E+2 is 100, as before.
    assert Quantity(value=_UserDecimal("1E+2")).model_dump_json() == '{"value":100}'
    assert Quantity(value=_UserDecimal("1.50")).model_dump_json() == '{"value":1.50}'


def test_the_primary_account_is_meta_account_before_meta_accounts() -> None:
    patient = Patient.model_validate(
        {
            "resourceType": "Patient",
            "meta": {
                "account": {"reference": "Organization/a"},
                "accounts": [{"reference": "Organization/b"}, {"reference": "Organization/a"}],
            },
        }
    )
    assert patient.medplum_accounts == ["Organization/a", "Organization/b"]
    assert patient.medplum_account == "Organization/a"


def test_a_second_choice_type_assigned_is_refused_without_echoing_the_value() -> None:
    obs = Observation(status="final", code={"text": "x"}, value_string="first")
    with pytest.raises(ValidationError) as info:
        obs.value_integer = 918273645
    [error] = info.value.errors(include_url=False)
    assert error["type"] == "fhir_choice"
    assert "918273645" not in str(info.value)
    assert "input_value" not in str(info.value)


def test_a_null_entry_assigned_without_extensions_is_refused_without_echoing_it() -> None:
    name = HumanName(family="x")
    with pytest.raises(ValidationError) as info:
        name.given = ["Zebedee", None]
    [error] = info.value.errors(include_url=False)
    assert error["type"] == "fhir_null_entry"
    assert "Zebedee" not in str(info.value)
    assert "input_value" not in str(info.value)


class _PatientWithFrozenField(Patient):
    mrn: str | None = Field(default=None, frozen=True)


def test_a_frozen_field_of_a_subclass_refuses_assignment_and_deletion() -> None:
    patient = _PatientWithFrozenField(mrn="MRN-0042")
    with pytest.raises(ValidationError) as info:
        patient.mrn = "MRN-0043"
    [error] = info.value.errors(include_url=False)
    assert (error["type"], error["loc"]) == ("frozen_field", ("mrn",))
    assert "MRN-004" not in str(info.value)
    with pytest.raises(ValidationError):
        del patient.mrn
    assert patient.mrn == "MRN-0042"
    patient.gender = "female"  # the other fields are not frozen
    assert patient.gender == "female"


@pytest.mark.parametrize("resource", ["Patient/1", ["Patient/1"], 7])
def test_a_resource_typed_element_refuses_what_is_not_a_json_object(resource: object) -> None:
    with pytest.raises(ValidationError) as info:
        Bundle.model_validate(
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}
        )
    [error] = info.value.errors(include_url=False)
    assert (error["type"], error["loc"]) == ("resource_type", ("entry", 0, "resource"))


def test_json_text_as_a_bytearray_keeps_its_decimals() -> None:
    text = bytearray(b'{"resourceType":"Observation","status":"final","code":{"text":"x"},')
    text += b'"valueQuantity":{"value":1.50}}'
    obs = Observation.model_validate_json(text)
    assert '"value":1.50' in obs.model_dump_json()


def test_a_null_entry_error_names_the_element_by_its_fhir_name() -> None:
    with pytest.raises(ValidationError) as info:
        CarePlan.model_validate(
            {
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "subject": {"reference": "Patient/1"},
                "instantiatesUri": ["http://example.org/a", None],
            }
        )
    [error] = info.value.errors(include_url=False)
    assert (error["type"], error["loc"]) == ("fhir_null_entry", ("instantiatesUri", 1))
    assert error["msg"].startswith("instantiatesUri[1] is null but _instantiatesUri[1]")

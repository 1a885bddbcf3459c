"""to_fhir_json: dicts pass through, models become FHIR JSON, anything else is a TypeError."""

from __future__ import annotations

from typing import Any

import pytest

from pymedplum import to_fhir_json

from .fhir_models import HumanName, Meta, Patient


def test_dict_is_returned_unchanged_as_the_same_object() -> None:
    data: dict[str, Any] = {"resourceType": "Patient", "active": None}
    assert to_fhir_json(data) is data


def test_model_is_dumped_with_aliases_and_without_none() -> None:
    patient = Patient(name=[HumanName(given=["John"], family="Doe")])
    assert to_fhir_json(patient) == {
        "resourceType": "Patient",
        "name": [{"family": "Doe", "given": ["John"]}],
    }


def test_model_field_names_become_camel_case_aliases() -> None:
    patient = Patient(birth_date="1970-01-01", meta=Meta(version_id="3"))
    assert to_fhir_json(patient) == {
        "resourceType": "Patient",
        "birthDate": "1970-01-01",
        "meta": {"versionId": "3"},
    }


def test_model_dump_is_json_mode() -> None:
    from datetime import date

    from pydantic import BaseModel

    class WithDate(BaseModel):
        when: date

    assert to_fhir_json(WithDate(when=date(2024, 1, 2))) == {"when": "2024-01-02"}


@pytest.mark.parametrize("bad", [None, "Patient/1", 3, [{"resourceType": "Patient"}]])
def test_other_types_raise_type_error_naming_resource(bad: object) -> None:
    with pytest.raises(TypeError, match="resource"):
        to_fhir_json(bad)  # type: ignore[arg-type]

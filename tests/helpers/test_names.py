"""get_patient_display_name and extract_identifier."""

from __future__ import annotations

from typing import Any

import pytest

from pymedplum import extract_identifier, get_patient_display_name

from .fhir_models import HumanName, Identifier, Patient

MRN = "http://hospital.org/mrn"


def test_display_name_contract_example_joins_given_and_family() -> None:
    assert get_patient_display_name({"name": [{"given": ["John"], "family": "Doe"}]}) == "John Doe"


def test_display_name_prefers_text() -> None:
    patient = {"name": [{"text": "Dr. J. Doe", "given": ["John"], "family": "Doe"}]}
    assert get_patient_display_name(patient) == "Dr. J. Doe"


def test_display_name_joins_every_given_name() -> None:
    assert get_patient_display_name({"name": [{"given": ["Mary", "Ann"], "family": "Lee"}]}) == (
        "Mary Ann Lee"
    )


def test_display_name_uses_only_the_first_name() -> None:
    patient = {"name": [{"family": "First"}, {"family": "Second"}]}
    assert get_patient_display_name(patient) == "First"


def test_display_name_of_given_only() -> None:
    assert get_patient_display_name({"name": [{"given": ["Cher"]}]}) == "Cher"


def test_display_name_from_model() -> None:
    patient = Patient(name=[HumanName(given=["John"], family="Doe")])
    assert get_patient_display_name(patient) == "John Doe"


@pytest.mark.parametrize(
    "patient",
    [
        {},
        {"name": []},
        {"name": None},
        {"name": [{}]},
        {"name": ["John Doe"]},
        {"name": [{"text": "", "given": [], "family": ""}]},
        {"name": [{"given": [None, 3]}]},
        {"name": "John"},
    ],
)
def test_display_name_without_usable_name_is_unknown(patient: dict[str, Any]) -> None:
    assert get_patient_display_name(patient) == "Unknown"


@pytest.mark.parametrize("bad", [None, "John Doe", ["name"]])
def test_display_name_of_non_resource_raises_type_error_naming_patient(bad: object) -> None:
    with pytest.raises(TypeError, match="patient"):
        get_patient_display_name(bad)  # type: ignore[arg-type]


def test_extract_identifier_contract_example() -> None:
    patient = {"identifier": [{"system": MRN, "value": "123456"}]}
    assert extract_identifier(patient, MRN) == "123456"


def test_extract_identifier_returns_first_match() -> None:
    patient = {
        "identifier": [
            {"system": "http://other", "value": "x"},
            {"system": MRN, "value": "first"},
            {"system": MRN, "value": "second"},
        ]
    }
    assert extract_identifier(patient, MRN) == "first"


def test_extract_identifier_from_model() -> None:
    patient = Patient(identifier=[Identifier(system=MRN, value="42")])
    assert extract_identifier(patient, MRN) == "42"


@pytest.mark.parametrize(
    "resource",
    [
        {},
        {"identifier": []},
        {"identifier": None},
        {"identifier": [{"system": "http://other", "value": "x"}]},
        {"identifier": ["not-an-object", {"value": "no-system"}]},
        {"identifier": [{"system": MRN}]},
    ],
)
def test_extract_identifier_without_match_is_none(resource: dict[str, Any]) -> None:
    assert extract_identifier(resource, MRN) is None


def test_extract_identifier_of_non_resource_raises_type_error_naming_resource() -> None:
    with pytest.raises(TypeError, match="resource"):
        extract_identifier(None, MRN)  # type: ignore[arg-type]


def test_extract_identifier_with_non_string_system_raises_type_error_naming_system() -> None:
    with pytest.raises(TypeError, match="system"):
        extract_identifier({}, None)  # type: ignore[arg-type]

"""get_code_display, get_code_by_system and coding_parts."""

from __future__ import annotations

from typing import Any

import pytest

from pymedplum import coding_parts, get_code_by_system, get_code_display

from .fhir_models import CodeableConcept, Coding

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CONCEPT = {
    "coding": [
        {"system": SNOMED, "code": "44054006"},
        {"system": ICD10, "code": "E11.9"},
    ]
}


# --- get_code_display -------------------------------------------------------------------


def test_code_display_contract_example_text() -> None:
    assert get_code_display({"text": "Type 2 Diabetes"}) == "Type 2 Diabetes"


def test_code_display_contract_example_coding_display() -> None:
    assert get_code_display({"coding": [{"display": "Hypertension"}]}) == "Hypertension"


def test_code_display_prefers_text_over_coding_display() -> None:
    assert get_code_display({"text": "T", "coding": [{"display": "D"}]}) == "T"


def test_code_display_does_not_fall_back_to_code() -> None:
    assert get_code_display({"coding": [{"code": "E11.9", "system": ICD10}]}) is None


def test_code_display_reads_only_the_first_coding() -> None:
    assert get_code_display({"coding": [{"code": "x"}, {"display": "second"}]}) is None


def test_code_display_from_model() -> None:
    assert get_code_display(CodeableConcept(coding=[Coding(display="Asthma")])) == "Asthma"


@pytest.mark.parametrize(
    "concept", [None, {}, {"text": ""}, {"coding": []}, {"coding": "x"}, {"coding": [None]}]
)
def test_code_display_of_empty_or_malformed_concept_is_none(concept: Any) -> None:
    assert get_code_display(concept) is None


def test_code_display_of_non_concept_raises_type_error_naming_argument() -> None:
    with pytest.raises(TypeError, match="codeable_concept"):
        get_code_display("Diabetes")  # type: ignore[arg-type]


# --- get_code_by_system -----------------------------------------------------------------


def test_code_by_system_contract_example_match() -> None:
    assert get_code_by_system(CONCEPT, ICD10) == "E11.9"


def test_code_by_system_contract_example_no_match() -> None:
    assert get_code_by_system(CONCEPT, "http://loinc.org") is None


def test_code_by_system_returns_first_matching_coding() -> None:
    concept = {"coding": [{"system": SNOMED, "code": "1"}, {"system": SNOMED, "code": "2"}]}
    assert get_code_by_system(concept, SNOMED) == "1"


def test_code_by_system_from_model() -> None:
    concept = CodeableConcept(coding=[Coding(system=ICD10, code="I10")])
    assert get_code_by_system(concept, ICD10) == "I10"


@pytest.mark.parametrize(
    "concept", [None, {}, {"coding": None}, {"coding": ["x", {"system": ICD10, "code": ""}]}]
)
def test_code_by_system_of_empty_or_malformed_concept_is_none(concept: Any) -> None:
    assert get_code_by_system(concept, ICD10) is None


def test_code_by_system_with_non_string_system_raises_type_error_naming_system() -> None:
    with pytest.raises(TypeError, match="system"):
        get_code_by_system(CONCEPT, None)  # type: ignore[arg-type]


# --- coding_parts -----------------------------------------------------------------------


def test_coding_parts_contract_example_full() -> None:
    concept = {
        "coding": [{"code": "E11.9", "system": ICD10, "display": "Type 2 diabetes"}],
        "text": "DM2",
    }
    assert coding_parts(concept) == ("E11.9", ICD10, "Type 2 diabetes", "DM2")


def test_coding_parts_contract_example_text_only() -> None:
    assert coding_parts({"text": "free text only"}) == (None, None, None, "free text only")


def test_coding_parts_of_none_is_all_none() -> None:
    assert coding_parts(None) == (None, None, None, None)


def test_coding_parts_normalizes_empty_strings_to_none() -> None:
    concept = {"coding": [{"code": "", "system": "", "display": ""}], "text": ""}
    assert coding_parts(concept) == (None, None, None, None)


def test_coding_parts_reads_the_first_coding() -> None:
    assert coding_parts(CONCEPT) == ("44054006", SNOMED, None, None)


def test_coding_parts_from_model() -> None:
    concept = CodeableConcept(coding=[Coding(system=ICD10, code="I10", display="HTN")], text="t")
    assert coding_parts(concept) == ("I10", ICD10, "HTN", "t")


def test_coding_parts_skips_malformed_codings() -> None:
    assert coding_parts({"coding": ["junk", {"code": "c"}]}) == ("c", None, None, None)


def test_coding_parts_of_non_concept_raises_type_error_naming_argument() -> None:
    with pytest.raises(TypeError, match="codeable_concept"):
        coding_parts(["E11.9"])  # type: ignore[arg-type]

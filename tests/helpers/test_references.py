"""parse_reference, build_reference and resolve_id."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymedplum import build_reference, parse_reference, resolve_id

from .fhir_models import Patient, Reference

resource_types = st.from_regex(r"[A-Z][A-Za-z]{0,30}", fullmatch=True)
fhir_ids = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)


# --- parse_reference --------------------------------------------------------------------


def test_parse_reference_contract_example() -> None:
    assert parse_reference("Patient/abc-123") == ("Patient", "abc-123")


def test_parse_reference_drops_history_version() -> None:
    assert parse_reference("Patient/123/_history/4") == ("Patient", "123")


def test_parse_reference_takes_last_pair_of_absolute_url() -> None:
    assert parse_reference("https://example.com/fhir/R4/Observation/o-1") == ("Observation", "o-1")


@pytest.mark.parametrize("bad", ["", "Patient", "urn:uuid:1234", "#contained"])
def test_parse_reference_without_separator_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="reference"):
        parse_reference(bad)


@pytest.mark.parametrize("bad", ["Patient/", "/123", "/"])
def test_parse_reference_with_empty_part_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="Type/id"):
        parse_reference(bad)


def test_parse_reference_rejects_conditional_reference() -> None:
    with pytest.raises(ValueError, match="conditional"):
        parse_reference("Patient?identifier=http://x.org/mrn|1")


@pytest.mark.parametrize("bad", [None, 123, {"reference": "Patient/1"}])
def test_parse_reference_non_string_raises_type_error_naming_reference(bad: object) -> None:
    with pytest.raises(TypeError, match="reference must be a str"):
        parse_reference(bad)  # type: ignore[arg-type]


# --- build_reference --------------------------------------------------------------------


def test_build_reference_contract_example() -> None:
    assert build_reference("Patient", "123") == "Patient/123"


@pytest.mark.parametrize(
    ("resource_type", "resource_id", "argument"),
    [
        ("", "1", "resource_type"),
        ("Patient", "", "resource_id"),
        ("Pa/tient", "1", "resource_type"),
        ("Patient", "1/2", "resource_id"),
    ],
)
def test_build_reference_rejects_empty_or_slashed_parts(
    resource_type: str, resource_id: str, argument: str
) -> None:
    with pytest.raises(ValueError, match=argument):
        build_reference(resource_type, resource_id)


def test_build_reference_non_string_raises_type_error_naming_argument() -> None:
    with pytest.raises(TypeError, match="resource_id"):
        build_reference("Patient", 123)  # type: ignore[arg-type]


@given(resource_types, fhir_ids)
def test_parse_reference_inverts_build_reference(resource_type: str, resource_id: str) -> None:
    assert parse_reference(build_reference(resource_type, resource_id)) == (
        resource_type,
        resource_id,
    )


@given(resource_types, fhir_ids)
def test_resolve_id_of_built_reference_is_the_id(resource_type: str, resource_id: str) -> None:
    assert resolve_id(build_reference(resource_type, resource_id)) == resource_id


# --- resolve_id -------------------------------------------------------------------------


def test_resolve_id_of_reference_string() -> None:
    assert resolve_id("Patient/123") == "123"


def test_resolve_id_of_bare_id() -> None:
    assert resolve_id("123") == "123"


def test_resolve_id_of_reference_dict() -> None:
    assert resolve_id({"reference": "Patient/abc"}) == "abc"


def test_resolve_id_of_reference_model() -> None:
    assert resolve_id(Reference(reference="Patient/abc")) == "abc"


def test_resolve_id_of_resource_model_is_its_id() -> None:
    assert resolve_id(Patient(id="p-9")) == "p-9"


def test_resolve_id_of_resource_dict_is_its_id() -> None:
    assert resolve_id({"resourceType": "Patient", "id": "p-9"}) == "p-9"


def test_resolve_id_ignores_history_suffix() -> None:
    assert resolve_id("Patient/123/_history/2") == "123"


def test_resolve_id_prefers_reference_over_id() -> None:
    assert resolve_id({"reference": "Patient/a", "id": "b"}) == "a"


@pytest.mark.parametrize(
    "missing", [None, "", {}, "Patient/", {"reference": ""}, {"id": ""}, {"display": "x"}]
)
def test_resolve_id_returns_none_when_no_id_is_found(missing: object) -> None:
    assert resolve_id(missing) is None  # type: ignore[arg-type]


def test_resolve_id_of_unsupported_type_raises_type_error_naming_reference() -> None:
    with pytest.raises(TypeError, match="reference"):
        resolve_id(123)  # type: ignore[arg-type]

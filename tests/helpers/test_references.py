"""parse_reference, build_reference and resolve_id."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymedplum import build_reference, parse_reference, resolve_id

from .fhir_models import Patient, Reference

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
TYPE_NAME = re.compile(r"[A-Z][A-Za-z]*")

resource_types = st.from_regex(r"[A-Z][A-Za-z]{0,30}", fullmatch=True)
fhir_ids = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)
not_fhir_ids = st.text(max_size=80).filter(lambda s: FHIR_ID.fullmatch(s) is None)
not_type_names = st.text(max_size=40).filter(lambda s: TYPE_NAME.fullmatch(s) is None)


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


@pytest.mark.parametrize(
    "bad", ["Patient/1?x", "Patient/a b", "Patient/1|2", "Patient/" + "a" * 65, "Patient/#c1"]
)
def test_parse_reference_rejects_an_id_that_is_not_a_fhir_id(bad: str) -> None:
    with pytest.raises(ValueError, match=r"conditional|id must be a FHIR id"):
        parse_reference(bad)


@pytest.mark.parametrize("bad", ["patient/1", "Pa-tient/1", "Patient/1/Observation", "1/2"])
def test_parse_reference_rejects_a_type_that_is_not_a_type_name(bad: str) -> None:
    with pytest.raises(ValueError, match="type must be a resource type name"):
        parse_reference(bad)


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
        ("Patient", "1?x", "resource_id"),  # parse_reference: "conditional reference"
        ("Patient", "#c1", "resource_id"),
        ("Patient", "a b", "resource_id"),
        ("Patient", "1|2", "resource_id"),
        ("Patient", "a" * 65, "resource_id"),
        ("Patient", "_history", "resource_id"),
        ("patient", "1", "resource_type"),
        ("Patient?x", "1", "resource_type"),
        ("Pa-tient", "1", "resource_type"),
        ("Patient1", "1", "resource_type"),
    ],
)
def test_build_reference_rejects_what_parse_reference_rejects(
    resource_type: str, resource_id: str, argument: str
) -> None:
    with pytest.raises(ValueError, match=argument):
        build_reference(resource_type, resource_id)
    reference = f"{resource_type}/{resource_id}"
    if "/" in resource_type or "/" in resource_id:
        return  # a slash moves the split; the parts can never round-trip
    with pytest.raises(ValueError):
        parse_reference(reference)


def test_build_reference_accepts_the_longest_fhir_id() -> None:
    assert build_reference("Patient", "a" * 64) == "Patient/" + "a" * 64


def test_build_reference_non_string_raises_type_error_naming_argument() -> None:
    with pytest.raises(TypeError, match="resource_id"):
        build_reference("Patient", 123)  # type: ignore[arg-type]


@given(resource_types, fhir_ids)
def test_parse_reference_inverts_build_reference(resource_type: str, resource_id: str) -> None:
    assert parse_reference(build_reference(resource_type, resource_id)) == (
        resource_type,
        resource_id,
    )


@given(resource_types, not_fhir_ids)
def test_build_reference_rejects_every_id_that_is_not_a_fhir_id_naming_it(
    resource_type: str, resource_id: str
) -> None:
    with pytest.raises(ValueError, match="resource_id"):
        build_reference(resource_type, resource_id)


@given(not_type_names, fhir_ids)
def test_build_reference_rejects_every_type_that_is_not_a_type_name_naming_it(
    resource_type: str, resource_id: str
) -> None:
    with pytest.raises(ValueError, match="resource_type"):
        build_reference(resource_type, resource_id)


reference_like = st.one_of(
    st.text(max_size=80), st.text(alphabet="Pat/ien01-._?#:| h_istory", max_size=40)
)


@given(reference_like)
def test_what_parse_reference_accepts_build_reference_accepts(reference: str) -> None:
    try:
        parts = parse_reference(reference)
    except ValueError:
        return
    assert parse_reference(build_reference(*parts)) == parts


@given(st.one_of(reference_like, resource_types.map(lambda t: t + "/"), fhir_ids))
def test_resolve_id_never_raises_and_returns_a_fhir_id_or_none(reference: str) -> None:
    resolved = resolve_id(reference)
    assert resolved is None or FHIR_ID.fullmatch(resolved)
    assert resolve_id({"reference": reference}) == (resolved if reference else None)


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
    "unresolvable",
    [
        "#c1",  # contained: no server id
        {"reference": "#c1"},
        {"reference": "#c1", "id": "element-id"},  # the element id is not the resource's
        "Patient?identifier=http://x.org/mrn|1",  # conditional
        {"reference": "Patient?identifier=http://x.org/mrn|1"},
        "Patient/1?x",
        "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",  # a bundle placeholder
        "Patient/a b",
        "a b",
        {"resourceType": "Patient", "id": "not an id"},
    ],
)
def test_resolve_id_returns_none_for_what_is_not_a_server_id(unresolvable: object) -> None:
    assert resolve_id(unresolvable) is None  # type: ignore[arg-type]


def test_resolve_id_of_absolute_url_is_its_id() -> None:
    assert resolve_id("https://example.com/fhir/R4/Observation/o-1/_history/2") == "o-1"


@pytest.mark.parametrize(
    "missing", [None, "", {}, "Patient/", {"reference": ""}, {"id": ""}, {"display": "x"}]
)
def test_resolve_id_returns_none_when_no_id_is_found(missing: object) -> None:
    assert resolve_id(missing) is None  # type: ignore[arg-type]


def test_resolve_id_of_unsupported_type_raises_type_error_naming_reference() -> None:
    with pytest.raises(TypeError, match="reference"):
        resolve_id(123)  # type: ignore[arg-type]

"""get_resource_accounts, extract_account_references and resource_has_account."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymedplum import extract_account_references, get_resource_accounts, resource_has_account

from .fhir_models import Meta, Patient, Reference

ORG1, ORG2, PRAC = "Organization/org-1", "Organization/org-2", "Practitioner/xyz"


def _ref(reference: str) -> dict[str, str]:
    return {"reference": reference}


# --- extract_account_references ---------------------------------------------------------


def test_extract_contract_example_singular_first_then_plural() -> None:
    meta = {"account": _ref(ORG1), "accounts": [_ref(ORG2)]}
    assert extract_account_references(meta) == [ORG1, ORG2]


def test_extract_dedupes_singular_against_plural() -> None:
    meta = {"account": _ref(ORG2), "accounts": [_ref(ORG1), _ref(ORG2)]}
    assert extract_account_references(meta) == [ORG2, ORG1]


def test_extract_dedupes_within_plural() -> None:
    assert extract_account_references({"accounts": [_ref(ORG1), _ref(ORG1)]}) == [ORG1]


def test_extract_singular_only() -> None:
    assert extract_account_references({"account": _ref(ORG1)}) == [ORG1]


def test_extract_from_meta_model() -> None:
    meta = Meta(account=Reference(reference=ORG1), accounts=[Reference(reference=PRAC)])
    assert extract_account_references(meta) == [ORG1, PRAC]


def test_extract_from_dict_holding_reference_models() -> None:
    meta = {"accounts": [Reference(reference=ORG1)]}
    assert extract_account_references(meta) == [ORG1]


@pytest.mark.parametrize("meta", [None, {}, {"accounts": []}, {"accounts": None}])
def test_extract_of_none_or_empty_meta_is_empty(meta: Any) -> None:
    assert extract_account_references(meta) == []


def test_extract_skips_malformed_entries() -> None:
    meta = {
        "account": "Organization/not-a-reference-object",
        "accounts": [None, "Organization/x", {}, {"reference": ""}, {"reference": 5}, _ref(ORG1)],
    }
    assert extract_account_references(meta) == [ORG1]


def test_extract_of_non_mapping_meta_raises_type_error_naming_meta() -> None:
    with pytest.raises(TypeError, match="meta"):
        extract_account_references("Organization/org-1")  # type: ignore[arg-type]


references = st.sampled_from([ORG1, ORG2, PRAC, "Organization/org-3"])


@given(st.one_of(st.none(), references), st.lists(references, max_size=6))
def test_extract_is_singular_first_unique_and_complete(
    singular: str | None, plural: list[str]
) -> None:
    meta: dict[str, Any] = {"accounts": [_ref(r) for r in plural]}
    if singular is not None:
        meta["account"] = _ref(singular)
    result = extract_account_references(meta)
    assert len(result) == len(set(result))
    assert set(result) == set(plural) | ({singular} if singular else set())
    if singular is not None:
        assert result[0] == singular


# --- get_resource_accounts --------------------------------------------------------------


def test_resource_accounts_contract_example() -> None:
    patient = {"resourceType": "Patient", "meta": {"accounts": [_ref(ORG1), _ref(ORG2)]}}
    assert get_resource_accounts(patient) == [ORG1, ORG2]


def test_resource_accounts_include_deprecated_singular() -> None:
    patient = {"meta": {"account": _ref(PRAC), "accounts": [_ref(ORG1)]}}
    assert get_resource_accounts(patient) == [PRAC, ORG1]


def test_resource_accounts_from_model() -> None:
    patient = Patient(meta=Meta(accounts=[Reference(reference=ORG1)]))
    assert get_resource_accounts(patient) == [ORG1]


@pytest.mark.parametrize("resource", [{}, {"meta": None}, {"meta": {}}, Patient()])
def test_resource_accounts_without_assignment_is_empty(resource: Any) -> None:
    assert get_resource_accounts(resource) == []


def test_resource_accounts_of_malformed_meta_raises_type_error_naming_meta() -> None:
    with pytest.raises(TypeError, match=r"resource\.meta"):
        get_resource_accounts({"meta": "Organization/org-1"})


def test_resource_accounts_of_non_resource_raises_type_error_naming_resource() -> None:
    with pytest.raises(TypeError, match="resource"):
        get_resource_accounts(None)  # type: ignore[arg-type]


# --- resource_has_account ---------------------------------------------------------------


def test_has_account_true_for_plural_assignment() -> None:
    assert resource_has_account({"meta": {"accounts": [_ref(ORG1)]}}, ORG1) is True


def test_has_account_true_for_singular_assignment() -> None:
    assert resource_has_account({"meta": {"account": _ref(ORG1)}}, ORG1) is True


def test_has_account_false_for_other_account() -> None:
    assert resource_has_account({"meta": {"accounts": [_ref(ORG1)]}}, ORG2) is False


def test_has_account_false_without_meta() -> None:
    assert resource_has_account({"resourceType": "Patient"}, ORG1) is False


def test_has_account_on_model() -> None:
    patient = Patient(meta=Meta(account=Reference(reference=ORG1)))
    assert resource_has_account(patient, ORG1) is True


def test_has_account_with_non_string_ref_raises_type_error_naming_account_ref() -> None:
    with pytest.raises(TypeError, match="account_ref"):
        resource_has_account({}, {"reference": ORG1})  # type: ignore[arg-type]

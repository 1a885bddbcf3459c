"""ProjectMembership.access helpers: entries, policies, partition, merge, equality, validation."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pymedplum import (
    MergeResult,
    build_merged_access,
    get_project_membership_access_parameter,
    get_project_membership_access_policy_id,
    make_project_membership_access,
    merged_equals_remote,
    normalize_access_entry,
    normalize_access_policy_id,
    normalize_access_policy_reference,
    partition_access,
    validate_managed_access,
)
from pymedplum.access import normalize_project_membership_id, require_version_id

from .fhir_models import ProjectMembershipAccess, ProjectMembershipAccessParameter, Reference

POLICY = "AccessPolicy/practice-policy"


def entry(policy: str, org: str | None = None) -> dict[str, Any]:
    return make_project_membership_access(policy, {"organization": org} if org else {})


# --- MergeResult ------------------------------------------------------------------------


def test_merge_result_fields() -> None:
    result = MergeResult(updated=True, version_id="2", managed_count=3, untouched_count=1)
    assert (result.updated, result.version_id, result.managed_count, result.untouched_count) == (
        True,
        "2",
        3,
        1,
    )


def test_merge_result_is_frozen() -> None:
    result = MergeResult(updated=False, version_id="1", managed_count=0, untouched_count=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.updated = True  # type: ignore[misc]


# --- make_project_membership_access -----------------------------------------------------


def test_make_access_contract_example_reference_parameter() -> None:
    assert make_project_membership_access(POLICY, {"organization": "Organization/practice-a"}) == {
        "policy": {"reference": POLICY},
        "parameter": [
            {"name": "organization", "valueReference": {"reference": "Organization/practice-a"}}
        ],
    }


def test_make_access_plain_string_becomes_value_string() -> None:
    built = make_project_membership_access("p", {"tier": "gold"})
    assert built["parameter"] == [{"name": "tier", "valueString": "gold"}]


def test_make_access_url_string_is_not_a_reference() -> None:
    built = make_project_membership_access("p", {"site": "https://example.com/a"})
    assert built["parameter"] == [{"name": "site", "valueString": "https://example.com/a"}]


def test_make_access_reference_dict_keeps_display() -> None:
    value = {"reference": "Organization/a", "display": "Practice A"}
    built = make_project_membership_access("p", {"organization": value})
    assert built["parameter"] == [{"name": "organization", "valueReference": value}]


def test_make_access_reference_model_becomes_value_reference() -> None:
    built = make_project_membership_access(
        "p", {"organization": Reference(reference="Organization/a")}
    )
    assert built["parameter"] == [
        {"name": "organization", "valueReference": {"reference": "Organization/a"}}
    ]


def test_make_access_keeps_parameter_order() -> None:
    built = make_project_membership_access("p", {"b": "1", "a": "Organization/x", "c": "3"})
    assert [p["name"] for p in built["parameter"]] == ["b", "a", "c"]


def test_make_access_without_parameters_omits_parameter() -> None:
    assert make_project_membership_access("p", {}) == {"policy": {"reference": "AccessPolicy/p"}}


@pytest.mark.parametrize(
    "policy", ["practice-policy", POLICY, {"reference": POLICY}, Reference(reference=POLICY)]
)
def test_make_access_accepts_every_policy_shape(policy: Any) -> None:
    assert make_project_membership_access(policy, {})["policy"] == {"reference": POLICY}


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"": "x"}, "name"),
        ({"org": ""}, "org"),
        ({"org": {"display": "no reference"}}, "org"),
        ({"org": {"reference": ""}}, "org"),
    ],
)
def test_make_access_rejects_malformed_parameters(parameters: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_project_membership_access("p", parameters)


def test_make_access_rejects_unsupported_parameter_value_type() -> None:
    with pytest.raises(TypeError, match="org"):
        make_project_membership_access("p", {"org": 42})  # type: ignore[dict-item]


def test_make_access_rejects_non_mapping_parameters() -> None:
    with pytest.raises(TypeError, match="parameters"):
        make_project_membership_access("p", [("org", "x")])  # type: ignore[arg-type]


def test_make_access_rejects_malformed_policy() -> None:
    with pytest.raises(ValueError, match="AccessPolicy"):
        make_project_membership_access("Organization/x", {})


# --- normalize_access_policy_reference / _id --------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        "abc",
        "AccessPolicy/abc",
        " AccessPolicy/abc ",
        {"reference": "AccessPolicy/abc"},
        Reference(reference="AccessPolicy/abc"),
    ],
)
def test_policy_reference_of_every_shape(policy: Any) -> None:
    assert normalize_access_policy_reference(policy) == {"reference": "AccessPolicy/abc"}


@pytest.mark.parametrize("policy", ["abc", "AccessPolicy/abc", {"reference": "AccessPolicy/abc"}])
def test_policy_id_of_every_shape(policy: Any) -> None:
    assert normalize_access_policy_id(policy) == "abc"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Organization/abc", "AccessPolicy"),
        ("AccessPolicy/", "AccessPolicy/<id>"),
        ("AccessPolicy/abc/_history/1", "AccessPolicy/<id>"),
        ({}, "reference"),
        ({"reference": ""}, "reference"),
        (Reference(display="no ref"), "reference"),
        ({"reference": "Patient/1"}, "AccessPolicy"),
    ],
)
def test_policy_reference_rejects_malformed_input(policy: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_access_policy_reference(policy)


@pytest.mark.parametrize("policy", [None, 5, ["AccessPolicy/abc"]])
def test_policy_reference_rejects_wrong_type_naming_policy(policy: Any) -> None:
    with pytest.raises(TypeError, match="policy"):
        normalize_access_policy_reference(policy)


# --- entry accessors --------------------------------------------------------------------


def test_policy_id_of_entry_dict() -> None:
    assert get_project_membership_access_policy_id(entry(POLICY)) == "practice-policy"


def test_policy_id_of_entry_model() -> None:
    model = ProjectMembershipAccess(policy=Reference(reference="AccessPolicy/p"))
    assert get_project_membership_access_policy_id(model) == "p"


@pytest.mark.parametrize(
    "malformed",
    [
        None,
        "x",
        {},
        {"policy": None},
        {"policy": {}},
        {"policy": {"reference": 3}},
        {"policy": {"reference": "Organization/o"}},
        {"policy": "AccessPolicy/p"},
    ],
)
def test_policy_id_of_malformed_entry_is_none(malformed: Any) -> None:
    assert get_project_membership_access_policy_id(malformed) is None


def test_parameter_of_entry_dict() -> None:
    built = entry(POLICY, "Organization/a")
    assert get_project_membership_access_parameter(built, "organization") == {
        "name": "organization",
        "valueReference": {"reference": "Organization/a"},
    }


def test_parameter_of_entry_model_uses_fhir_aliases() -> None:
    model = ProjectMembershipAccess(
        policy=Reference(reference="AccessPolicy/p"),
        parameter=[ProjectMembershipAccessParameter(name="tier", value_string="gold")],
    )
    assert get_project_membership_access_parameter(model, "tier") == {
        "name": "tier",
        "valueString": "gold",
    }


@pytest.mark.parametrize(
    "built", [entry(POLICY), {"policy": {}, "parameter": None}, {"parameter": ["x", {}]}]
)
def test_absent_parameter_is_none(built: dict[str, Any]) -> None:
    assert get_project_membership_access_parameter(built, "organization") is None


def test_parameter_with_non_string_name_raises_type_error_naming_name() -> None:
    with pytest.raises(TypeError, match="name"):
        get_project_membership_access_parameter(entry(POLICY), 1)  # type: ignore[arg-type]


# --- normalize_access_entry -------------------------------------------------------------


def test_normalize_entry_is_a_deep_copy() -> None:
    original = entry(POLICY, "Organization/a")
    copy = normalize_access_entry(original)
    copy["parameter"][0]["name"] = "changed"
    assert original["parameter"][0]["name"] == "organization"


def test_normalize_entry_dumps_nested_models_and_drops_none() -> None:
    mixed = {"policy": Reference(reference="AccessPolicy/p"), "parameter": None}
    assert normalize_access_entry(mixed) == {"policy": {"reference": "AccessPolicy/p"}}


def test_normalize_entry_rejects_non_json_values_naming_path() -> None:
    with pytest.raises(TypeError, match=r"entry\.policy\.reference"):
        normalize_access_entry({"policy": {"reference": object()}})


# --- partition_access -------------------------------------------------------------------


def test_partition_splits_managed_and_untouched_in_order() -> None:
    a, b = entry("p", "Organization/a"), entry("p", "Organization/b")
    foreign, other = entry("admin"), entry("q")
    assert partition_access([a, foreign, b, other], {"p"}) == ([a, b], [foreign, other])


def test_partition_puts_malformed_entries_in_untouched() -> None:
    malformed: list[dict[str, Any]] = [
        {"policy": {}},
        {"parameter": []},
        {"policy": {"reference": "Patient/1"}},
    ]
    assert partition_access(malformed, {"p"}) == ([], malformed)


def test_partition_keeps_non_object_entries_untouched() -> None:
    junk: list[Any] = ["junk", None, 3]
    assert partition_access([*junk, entry("p")], {"p"}) == ([entry("p")], junk)


def test_merge_carries_non_object_untouched_entries_through() -> None:
    merged = build_merged_access(["junk"], [entry("p")])
    assert merged == ["junk", entry("p")]
    assert merged_equals_remote(merged, ["junk", entry("p")]) is True


def test_partition_rejects_non_json_entries_naming_index() -> None:
    with pytest.raises(TypeError, match=r"current\[0\]"):
        partition_access([object()], {"p"})


def test_partition_of_none_is_empty() -> None:
    assert partition_access(None, {"p"}) == ([], [])


def test_partition_accepts_models_and_returns_dicts() -> None:
    model = ProjectMembershipAccess(policy=Reference(reference="AccessPolicy/p"))
    assert partition_access([model], {"p"}) == ([{"policy": {"reference": "AccessPolicy/p"}}], [])


def test_partition_accepts_full_policy_references_as_ids() -> None:
    assert partition_access([entry("p")], {"AccessPolicy/p"}) == ([entry("p")], [])


def test_partition_single_writer_has_no_untouched() -> None:
    current = [entry("p", "Organization/a"), entry("p", "Organization/b")]
    assert partition_access(current, {"p"}) == (current, [])


def test_partition_rejects_empty_policy_ids() -> None:
    with pytest.raises(ValueError, match="managed_policy_ids"):
        partition_access([], set())


def test_partition_rejects_string_policy_ids_naming_argument() -> None:
    with pytest.raises(TypeError, match="managed_policy_ids"):
        partition_access([], "practice-policy")


def test_partition_rejects_single_entry_instead_of_list() -> None:
    with pytest.raises(TypeError, match="current"):
        partition_access(entry("p"), {"p"})  # type: ignore[arg-type]


# --- build_merged_access ----------------------------------------------------------------


def test_merged_is_untouched_then_managed_in_caller_order() -> None:
    foreign = entry("q")
    b, a = entry("p", "Organization/b"), entry("p", "Organization/a")
    assert build_merged_access([foreign], [b, a]) == [foreign, b, a]


def test_merged_normalizes_models_to_fhir_json() -> None:
    model = ProjectMembershipAccess(
        policy=Reference(reference="AccessPolicy/p"),
        parameter=[ProjectMembershipAccessParameter(name="tier", value_string="gold")],
    )
    assert build_merged_access([], [model]) == [
        {
            "policy": {"reference": "AccessPolicy/p"},
            "parameter": [{"name": "tier", "valueString": "gold"}],
        }
    ]


def test_merged_of_empty_lists_is_empty() -> None:
    assert build_merged_access([], []) == []


# --- merged_equals_remote ---------------------------------------------------------------


def test_equal_lists_ignoring_key_order() -> None:
    left = [
        {
            "policy": {"reference": "AccessPolicy/p"},
            "parameter": [{"name": "a", "valueString": "1"}],
        }
    ]
    right = [
        {
            "parameter": [{"valueString": "1", "name": "a"}],
            "policy": {"reference": "AccessPolicy/p"},
        }
    ]
    assert merged_equals_remote(left, right) is True


def test_list_order_matters() -> None:
    a, b = entry("p", "Organization/a"), entry("p", "Organization/b")
    assert merged_equals_remote([a, b], [b, a]) is False


def test_different_values_are_not_equal() -> None:
    assert (
        merged_equals_remote([entry("p", "Organization/a")], [entry("p", "Organization/b")])
        is False
    )


def test_none_remote_equals_empty_merged() -> None:
    assert merged_equals_remote([], None) is True


def test_model_equals_its_dict() -> None:
    model = ProjectMembershipAccess(policy=Reference(reference="AccessPolicy/p"))
    assert merged_equals_remote([model], [{"policy": {"reference": "AccessPolicy/p"}}]) is True


# --- validate_managed_access ------------------------------------------------------------


def test_validate_accepts_managed_entries() -> None:
    validate_managed_access([entry("p", "Organization/a"), entry("p")], {"p"})


def test_validate_accepts_empty_managed_access() -> None:
    validate_managed_access([], {"p"})


def test_validate_rejects_foreign_policy_naming_index() -> None:
    with pytest.raises(ValueError, match=r"managed_access\[1\].*AccessPolicy/q"):
        validate_managed_access([entry("p"), entry("q"), entry("r")], {"p"})


def test_validate_rejects_entry_without_policy() -> None:
    with pytest.raises(ValueError, match=r"managed_access\[0\] has no AccessPolicy"):
        validate_managed_access([{"parameter": []}], {"p"})


def test_validate_rejects_empty_policy_ids() -> None:
    with pytest.raises(ValueError, match="managed_policy_ids must not be empty"):
        validate_managed_access([entry("p")], set())


def test_validate_rejects_single_entry_instead_of_list() -> None:
    with pytest.raises(TypeError, match="managed_access must be a list"):
        validate_managed_access(entry("p"), {"p"})  # type: ignore[arg-type]


# --- memberships ------------------------------------------------------------------------


@pytest.mark.parametrize("membership_id", ["abc", "ProjectMembership/abc"])
def test_membership_id_is_normalized_to_bare_id(membership_id: str) -> None:
    assert normalize_project_membership_id(membership_id) == "abc"


@pytest.mark.parametrize("bad", ["", "Patient/abc", "ProjectMembership/"])
def test_membership_id_rejects_malformed_values(bad: str) -> None:
    with pytest.raises(ValueError, match="membership_id"):
        normalize_project_membership_id(bad)


def test_membership_id_rejects_non_string() -> None:
    with pytest.raises(TypeError, match="membership_id"):
        normalize_project_membership_id(None)  # type: ignore[arg-type]


def test_version_id_is_read_from_meta() -> None:
    assert require_version_id({"meta": {"versionId": "7"}}) == "7"


@pytest.mark.parametrize("membership", [{}, {"meta": {}}, {"meta": {"versionId": ""}}])
def test_missing_version_id_raises_value_error(membership: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="versionId"):
        require_version_id(membership)

"""plan_merge / plan_add / plan_remove: the pure core of the client's access methods."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymedplum import make_project_membership_access, merged_equals_remote
from pymedplum.access import (
    AccessPlan,
    plan_add,
    plan_merge,
    plan_remove,
    would_grant_unrestricted_access,
)

from .fhir_models import ProjectMembershipAccess, Reference

PRACTICE = "AccessPolicy/practice-policy"


def practice(org: str) -> dict[str, Any]:
    return make_project_membership_access(PRACTICE, {"organization": f"Organization/{org}"})


ADMIN_EDIT = make_project_membership_access("AccessPolicy/admin-policy", {})


# --- plan_merge -------------------------------------------------------------------------


def test_merge_contract_example_three_practices() -> None:
    managed = [practice("practice-a"), practice("practice-b"), practice("practice-c")]
    plan = plan_merge([], managed, {"practice-policy"})
    assert plan == AccessPlan(managed, 3, 0)


def test_merge_plan_unpacks_as_triple() -> None:
    merged, managed_count, untouched_count = plan_merge([practice("a")], [], {"practice-policy"})
    assert (merged, managed_count, untouched_count) == ([], 0, 0)


def test_merge_replaces_managed_slice_and_keeps_untouched_first() -> None:
    remote = [practice("old"), ADMIN_EDIT]
    plan = plan_merge(remote, [practice("new")], {"practice-policy"})
    assert plan == ([ADMIN_EDIT, practice("new")], 1, 1)


def test_merge_with_empty_managed_access_is_lockout_of_managed_only() -> None:
    plan = plan_merge([practice("a"), ADMIN_EDIT, practice("b")], [], {"practice-policy"})
    assert plan == ([ADMIN_EDIT], 0, 1)


def test_merge_of_same_list_equals_remote() -> None:
    remote = [ADMIN_EDIT, practice("a")]
    plan = plan_merge(remote, [practice("a")], {"practice-policy"})
    assert merged_equals_remote(plan.merged, remote)


def test_merge_rejects_foreign_managed_entry() -> None:
    with pytest.raises(ValueError, match=r"managed_access\[0\]"):
        plan_merge([], [ADMIN_EDIT], {"practice-policy"})


def test_merge_rejects_empty_policy_ids() -> None:
    with pytest.raises(ValueError, match="managed_policy_ids"):
        plan_merge([], [], set())


def test_merge_accepts_models() -> None:
    model = ProjectMembershipAccess(policy=Reference(reference=PRACTICE))
    assert plan_merge(None, [model], {"practice-policy"}) == (
        [{"policy": {"reference": PRACTICE}}],
        1,
        0,
    )


# --- plan_add ---------------------------------------------------------------------------


def test_add_contract_example_appends_to_managed_slice() -> None:
    remote = [practice("practice-a"), ADMIN_EDIT]
    plan = plan_add(remote, practice("practice-d"), {"practice-policy"})
    assert plan == ([ADMIN_EDIT, practice("practice-a"), practice("practice-d")], 2, 1)


def test_add_of_present_entry_is_idempotent() -> None:
    remote = [ADMIN_EDIT, practice("a")]
    plan = plan_add(remote, practice("a"), {"practice-policy"})
    assert plan == (remote, 1, 1)
    assert merged_equals_remote(plan.merged, remote)


def test_add_matches_structurally_ignoring_key_order() -> None:
    reordered = {
        "parameter": [{"valueReference": {"reference": "Organization/a"}, "name": "organization"}],
        "policy": {"reference": PRACTICE},
    }
    assert plan_add([practice("a")], reordered, {"practice-policy"}).managed_count == 1


def test_add_rejects_foreign_entry() -> None:
    with pytest.raises(ValueError, match="not in managed_policy_ids"):
        plan_add([], ADMIN_EDIT, {"practice-policy"})


# --- plan_remove ------------------------------------------------------------------------


def test_remove_contract_example_drops_matching_managed_entry() -> None:
    remote = [practice("practice-a"), practice("practice-c"), ADMIN_EDIT]
    plan = plan_remove(remote, practice("practice-c"), {"practice-policy"})
    assert plan == ([ADMIN_EDIT, practice("practice-a")], 1, 1)


def test_remove_of_absent_entry_is_idempotent() -> None:
    remote = [ADMIN_EDIT, practice("a")]
    plan = plan_remove(remote, practice("zzz"), {"practice-policy"})
    assert merged_equals_remote(plan.merged, remote)


def test_remove_drops_every_duplicate() -> None:
    assert plan_remove([practice("a"), practice("a")], practice("a"), {"practice-policy"}) == (
        [],
        0,
        0,
    )


def test_remove_never_touches_untouched_entries() -> None:
    other = make_project_membership_access("other", {})
    plan = plan_remove([practice("a"), other], other, {"other"})
    assert plan == ([practice("a")], 0, 1)


def test_remove_rejects_foreign_entry() -> None:
    with pytest.raises(ValueError, match="not in managed_policy_ids"):
        plan_remove([ADMIN_EDIT], ADMIN_EDIT, {"practice-policy"})


@pytest.mark.parametrize("plan", [plan_add, plan_remove])
def test_add_and_remove_errors_name_their_entry_argument(plan: Any) -> None:
    with pytest.raises(ValueError, match=r"^entry references AccessPolicy/admin-policy"):
        plan([], ADMIN_EDIT, {"practice-policy"})
    with pytest.raises(ValueError, match=r"^entry has no AccessPolicy reference"):
        plan([], {"parameter": []}, {"practice-policy"})
    with pytest.raises(TypeError, match=r"^entry must be a dict"):
        plan([], "AccessPolicy/practice-policy", {"practice-policy"})


# --- properties -------------------------------------------------------------------------

orgs = st.sampled_from(["a", "b", "c", "d"])
remote_lists = st.lists(
    st.one_of(orgs.map(practice), st.just(ADMIN_EDIT), st.just({"policy": {}})), max_size=6
)


@given(remote_lists, orgs)
def test_add_is_idempotent(remote: list[dict[str, Any]], org: str) -> None:
    once = plan_add(remote, practice(org), {"practice-policy"})
    twice = plan_add(once.merged, practice(org), {"practice-policy"})
    assert twice == once


@given(remote_lists, orgs)
def test_remove_after_add_leaves_no_copy_of_the_entry(
    remote: list[dict[str, Any]], org: str
) -> None:
    added = plan_add(remote, practice(org), {"practice-policy"})
    removed = plan_remove(added.merged, practice(org), {"practice-policy"})
    assert practice(org) not in removed.merged
    assert removed.untouched_count == added.untouched_count


@given(remote_lists, st.lists(orgs.map(practice), max_size=4))
def test_merge_preserves_every_untouched_entry_in_order(
    remote: list[dict[str, Any]], managed: list[dict[str, Any]]
) -> None:
    plan = plan_merge(remote, managed, {"practice-policy"})
    untouched = [e for e in remote if e not in [practice(o) for o in "abcd"]]
    assert plan.merged == untouched + managed
    assert (plan.managed_count, plan.untouched_count) == (len(managed), len(untouched))


# --- would_grant_unrestricted_access ----------------------------------------------------


def test_emptying_access_without_access_policy_fails_open() -> None:
    assert would_grant_unrestricted_access({"access": [practice("a")]}, []) is True


def test_emptying_access_with_access_policy_is_safe() -> None:
    membership = {"access": [practice("a")], "accessPolicy": {"reference": "AccessPolicy/base"}}
    assert would_grant_unrestricted_access(membership, []) is False


def test_non_empty_merge_is_safe() -> None:
    assert would_grant_unrestricted_access({"access": [practice("a")]}, [practice("b")]) is False


def test_already_empty_access_is_not_a_change() -> None:
    assert would_grant_unrestricted_access({}, []) is False

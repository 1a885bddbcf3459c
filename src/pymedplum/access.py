"""ProjectMembership.access: entry construction, policy normalization and merge planning.

Multi-tenant Medplum apps grant a user one tenant by adding a parameterized AccessPolicy
entry to ``ProjectMembership.access``::

    {"policy": {"reference": "AccessPolicy/p"},
     "parameter": [{"name": "organization", "valueReference": {"reference": "Organization/a"}}]}

The client methods (``merge_project_membership_access`` and the add/remove variants) run a
read / plan / PUT-with-If-Match loop and retry on 412. Everything here is pure: the client
reads the membership, calls one ``plan_*`` function, compares with
:func:`merged_equals_remote`, and writes. ``managed_policy_ids`` splits the remote list
into the caller's *managed* slice (replaced) and the *untouched* rest (kept verbatim, e.g.
an admin's manual edit in the Medplum app).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import BaseModel

from pymedplum._fhir_rules import (
    ID_RULE,
    describe_not_id,
    describe_not_reference,
    is_fhir_id,
    is_relative_reference,
    is_resource_type,
)
from pymedplum._serialization import as_fhir_dict

__all__ = [
    "AccessPlan",
    "MergeResult",
    "build_merged_access",
    "get_project_membership_access_parameter",
    "get_project_membership_access_policy_id",
    "make_project_membership_access",
    "merged_equals_remote",
    "normalize_access_entry",
    "normalize_access_policy_id",
    "normalize_access_policy_reference",
    "normalize_project_membership_id",
    "partition_access",
    "plan_add",
    "plan_merge",
    "plan_remove",
    "require_version_id",
    "validate_managed_access",
    "would_grant_unrestricted_access",
]

AccessEntry = Mapping[str, Any] | BaseModel
"""An access entry as callers pass it: a FHIR-JSON mapping or a ProjectMembershipAccess model."""

PolicyInput = str | Mapping[str, Any] | BaseModel
"""An AccessPolicy as callers name it: bare id, ``"AccessPolicy/<id>"``, or a Reference."""

_ACCESS_POLICY = "AccessPolicy"
_PROJECT_MEMBERSHIP = "ProjectMembership"


@dataclass(frozen=True)
class MergeResult:
    """Outcome of a ProjectMembership access merge (merge, add or remove).

    Attributes:
        updated: Whether a PUT was sent. ``False`` means the merged list was byte-equal to
            the remote and ``force`` was not set.
        version_id: ``meta.versionId`` after the merge: the new one when ``updated``, the
            pre-existing one otherwise.
        managed_count: Entries in the managed slice after the merge.
        untouched_count: Entries preserved untouched.
    """

    updated: bool
    version_id: str
    managed_count: int
    untouched_count: int


class AccessPlan(NamedTuple):
    """What a ``plan_*`` function decided: the full new access list and its two slice sizes.

    Unpacks as ``(merged, managed_count, untouched_count)``.
    """

    merged: list[dict[str, Any]]
    managed_count: int
    untouched_count: int


# --- normalization ----------------------------------------------------------------------


def _json_value(value: object, path: str) -> Any:
    """Deep FHIR-JSON copy: models dumped, ``None`` members dropped, anything else rejected."""
    if isinstance(value, BaseModel):
        value = as_fhir_dict(value, path)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has a non-string key {key!r}")
            if item is not None:
                out[key] = _json_value(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_json_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{path} is not FHIR JSON: {type(value).__name__}")


def normalize_access_entry(entry: AccessEntry, *, argument: str = "entry") -> dict[str, Any]:
    """A deep FHIR-JSON copy of one access entry (dict or ProjectMembershipAccess model).

    Nested models are dumped with FHIR aliases and ``None`` members are dropped, so two
    entries that mean the same compare equal.

    Raises:
        TypeError: the entry is not a mapping or Pydantic model, or holds a non-JSON value
            (the message names ``argument`` and the path inside it).

    Example:
        >>> normalize_access_entry({"policy": {"reference": "AccessPolicy/p"}, "parameter": None})
        {'policy': {'reference': 'AccessPolicy/p'}}
    """
    if not isinstance(entry, Mapping | BaseModel):
        raise TypeError(
            f"{argument} must be a dict or a pydantic model, got {type(entry).__name__}"
        )
    result: dict[str, Any] = _json_value(entry, argument)
    return result


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _entry_list(entries: object, argument: str, *, lenient: bool = False) -> list[Any]:
    """Normalize a list of entries. ``lenient`` (lists read from the server) carries
    malformed non-object entries through as JSON instead of raising, so they stay untouched.
    """
    # A single entry (a Mapping) passed where a list belongs would iterate over its keys.
    if entries is None:
        if lenient:  # a membership read without access
            return []
        # A caller's None is no list: taken as [] it would remove every managed entry.
        raise TypeError(
            f"{argument} must be a list of access entries, got None; pass [] to remove every "
            "managed entry"
        )
    if isinstance(entries, str | bytes | Mapping | BaseModel) or not isinstance(entries, Iterable):
        raise TypeError(
            f"{argument} must be a list of access entries, got {type(entries).__name__}"
        )
    return [
        _json_value(e, f"{argument}[{i}]")
        if lenient and not isinstance(e, Mapping | BaseModel)
        else normalize_access_entry(e, argument=f"{argument}[{i}]")
        for i, e in enumerate(entries)
    ]


# --- policies and memberships -------------------------------------------------------------


def _bare_id(value: str, resource_type: str, argument: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError(f"{argument} must not be empty")
    if "/" not in text:
        found_id = text
    else:
        found_type, _, found_id = text.partition("/")
        # The messages describe the value, never show it (see describe_not_id).
        if found_type != resource_type:
            got = repr(found_type) if is_resource_type(found_type) else describe_not_reference(text)
            raise ValueError(f"{argument} must reference {resource_type}, got {got}")
        if not found_id or "/" in found_id:
            raise ValueError(
                f"{argument} must look like '{resource_type}/<id>', got "
                + describe_not_reference(text)
            )
    if not is_fhir_id(found_id):
        raise ValueError(f"{argument} id must be {ID_RULE}, got {describe_not_id(found_id)}")
    return found_id


def normalize_access_policy_id(policy: PolicyInput) -> str:
    """The bare AccessPolicy id of ``"id"``, ``"AccessPolicy/id"``, or a Reference dict/model.

    Raises:
        TypeError: ``policy`` is not a str, mapping or Pydantic model.
        ValueError: it is empty, names another resource type, is a Reference without a
            ``reference``, or its id is not a FHIR id.

    Example:
        >>> normalize_access_policy_id("AccessPolicy/practice-policy")
        'practice-policy'
    """
    return _policy_id(policy, "policy")


def _policy_id(policy: object, argument: str) -> str:
    """:func:`normalize_access_policy_id`, its errors naming ``argument``."""
    if isinstance(policy, str):
        return _bare_id(policy, _ACCESS_POLICY, argument)
    if not isinstance(policy, Mapping | BaseModel):
        raise TypeError(
            f"{argument} must be a str, a Reference dict or a pydantic model, got "
            f"{type(policy).__name__}"
        )
    reference = normalize_access_entry(policy, argument=argument).get("reference")
    if not isinstance(reference, str) or not reference.strip():
        raise ValueError(f"{argument} Reference must have a non-empty 'reference'")
    return _bare_id(reference, _ACCESS_POLICY, f"{argument}.reference")


def normalize_access_policy_reference(policy: PolicyInput) -> dict[str, Any]:
    """``{"reference": "AccessPolicy/<id>"}`` for any :func:`normalize_access_policy_id` input.

    Raises:
        TypeError: ``policy`` is not a str, mapping or Pydantic model.
        ValueError: it is empty or does not point at an AccessPolicy.

    Example:
        >>> normalize_access_policy_reference("practice-policy")
        {'reference': 'AccessPolicy/practice-policy'}
    """
    return {"reference": f"{_ACCESS_POLICY}/{normalize_access_policy_id(policy)}"}


def normalize_project_membership_id(membership_id: str) -> str:
    """The bare id of ``"abc"`` or ``"ProjectMembership/abc"``.

    Raises:
        TypeError: ``membership_id`` is not a string.
        ValueError: it is empty, references another resource type, or its id is not a
            FHIR id.

    Example:
        >>> normalize_project_membership_id("ProjectMembership/abc")
        'abc'
    """
    if not isinstance(membership_id, str):
        raise TypeError(f"membership_id must be a str, got {type(membership_id).__name__}")
    return _bare_id(membership_id, _PROJECT_MEMBERSHIP, "membership_id")


def _policy_id_set(managed_policy_ids: object) -> frozenset[str]:
    # A str is iterable: "abc" would otherwise become {"a", "b", "c"}; a model iterates over its
    # (field, value) pairs.
    if isinstance(managed_policy_ids, str | bytes | BaseModel) or not isinstance(
        managed_policy_ids, Iterable
    ):
        raise TypeError(
            "managed_policy_ids must be a set of AccessPolicy ids, got "
            f"{type(managed_policy_ids).__name__}"
        )
    # Named without an index: a set has none.
    ids = frozenset(_policy_id(p, "managed_policy_ids entry") for p in managed_policy_ids)
    if not ids:
        raise ValueError("managed_policy_ids must not be empty")
    return ids


def require_version_id(membership: Mapping[str, Any] | BaseModel) -> str:
    """``meta.versionId`` of a ProjectMembership read from the server, for ``If-Match``.

    Raises:
        ValueError: the version id is missing or empty (writing without optimistic
            concurrency could overwrite a concurrent change).

    Example:
        >>> require_version_id({"meta": {"versionId": "7"}})
        '7'
    """
    meta = normalize_access_entry(membership, argument="membership").get("meta")
    version_id = meta.get("versionId") if isinstance(meta, dict) else None
    if not isinstance(version_id, str) or not version_id:
        raise ValueError(
            "ProjectMembership has no meta.versionId; refusing to write without If-Match"
        )
    return version_id


# --- entries ------------------------------------------------------------------------------


def _parameter_value(name: str, value: object) -> dict[str, Any]:
    if isinstance(value, str):
        if not value:
            raise ValueError(f"parameters[{name!r}] must not be empty")
        if is_relative_reference(value):
            return {"valueReference": {"reference": value}}
        return {"valueString": value}
    if not isinstance(value, Mapping | BaseModel):
        raise TypeError(
            f"parameters[{name!r}] must be a str, a Reference dict or a pydantic model, got "
            f"{type(value).__name__}"
        )
    reference = normalize_access_entry(value, argument=f"parameters[{name!r}]")
    ref = reference.get("reference")
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError(f"parameters[{name!r}] Reference must have a non-empty 'reference'")
    return {"valueReference": reference}


def make_project_membership_access(
    policy: PolicyInput,
    parameters: Mapping[str, str | Mapping[str, Any] | BaseModel],
) -> dict[str, Any]:
    """Build one ``ProjectMembership.access`` entry.

    ``policy`` is a bare AccessPolicy id, ``"AccessPolicy/<id>"`` or a Reference.
    Each parameter value that is reference-shaped (``"Type/id"``, a Reference dict or
    model) becomes ``valueReference``; any other string becomes ``valueString``.
    Parameters keep the caller's order; ``parameter`` is omitted when there are none.

    Raises:
        TypeError: ``parameters`` is not a mapping, or a value has an unsupported type.
        ValueError: the policy is malformed, a name is empty, or a value is empty.

    Example:
        >>> make_project_membership_access(
        ...     "AccessPolicy/practice-policy", {"organization": "Organization/practice-a"}
        ... )
        {'policy': {'reference': 'AccessPolicy/practice-policy'}, 'parameter': [{'name': \
'organization', 'valueReference': {'reference': 'Organization/practice-a'}}]}
    """
    entry: dict[str, Any] = {"policy": normalize_access_policy_reference(policy)}
    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters must be a mapping, got {type(parameters).__name__}")
    params: list[dict[str, Any]] = []
    for name, value in parameters.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"parameters has an empty or non-string name: {name!r}")
        params.append({"name": name, **_parameter_value(name, value)})
    if params:
        entry["parameter"] = params
    return entry


def get_project_membership_access_policy_id(entry: object) -> str | None:
    """The bare AccessPolicy id an access entry points at, or ``None`` if malformed.

    Never raises: a non-mapping entry, a missing or non-string ``policy.reference``, or a
    reference to another resource type all yield ``None``.

    Example:
        >>> get_project_membership_access_policy_id({"policy": {"reference": "AccessPolicy/p"}})
        'p'
    """
    if not isinstance(entry, Mapping | BaseModel):
        return None
    try:
        policy = normalize_access_entry(entry).get("policy")
        reference = policy.get("reference") if isinstance(policy, dict) else None
        return normalize_access_policy_id(reference) if isinstance(reference, str) else None
    except (TypeError, ValueError):
        return None


def get_project_membership_access_parameter(entry: AccessEntry, name: str) -> dict[str, Any] | None:
    """The parameter element named ``name`` of an access entry (FHIR JSON), or ``None``.

    Raises:
        TypeError: ``name`` is not a string, or ``entry`` is not a mapping or model.

    Example:
        >>> entry = make_project_membership_access("p", {"organization": "Organization/a"})
        >>> get_project_membership_access_parameter(entry, "organization")
        {'name': 'organization', 'valueReference': {'reference': 'Organization/a'}}
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    parameters = normalize_access_entry(entry).get("parameter")
    if not isinstance(parameters, list):
        return None
    for parameter in parameters:
        if isinstance(parameter, dict) and parameter.get("name") == name:
            return parameter
    return None


# --- merge primitives ---------------------------------------------------------------------


def partition_access(
    current: Sequence[Any] | None, managed_policy_ids: Iterable[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split an access list into ``(managed, untouched)``, both in original order.

    An entry is managed when its policy id is in ``managed_policy_ids`` (bare ids or
    ``"AccessPolicy/<id>"``). Malformed entries (even non-objects) are untouched, never
    dropped. ``None`` counts as an empty list.

    Raises:
        TypeError: ``managed_policy_ids`` is a string or not iterable, or ``current`` is
            not a list of entries.
        ValueError: ``managed_policy_ids`` is empty.

    Example:
        >>> mine = make_project_membership_access("p", {})
        >>> theirs = make_project_membership_access("q", {})
        >>> partition_access([theirs, mine], {"p"}) == ([mine], [theirs])
        True
    """
    ids = _policy_id_set(managed_policy_ids)
    managed: list[dict[str, Any]] = []
    untouched: list[dict[str, Any]] = []
    for entry in _entry_list(current, "current", lenient=True):
        policy_id = get_project_membership_access_policy_id(entry)
        (managed if policy_id in ids else untouched).append(entry)
    return managed, untouched


def build_merged_access(
    untouched: Sequence[Any], managed_access: Sequence[AccessEntry]
) -> list[dict[str, Any]]:
    """``untouched`` (original order) followed by ``managed_access`` (caller order), as FHIR JSON.

    Example:
        >>> build_merged_access([{"policy": {"reference": "AccessPolicy/q"}}], [])
        [{'policy': {'reference': 'AccessPolicy/q'}}]
    """
    untouched_entries = _entry_list(untouched, "untouched", lenient=True)
    return untouched_entries + _entry_list(managed_access, "managed_access")


def merged_equals_remote(merged: Sequence[Any], remote: Sequence[Any] | None) -> bool:
    """Whether two access lists are byte-equal as canonical JSON (sorted keys).

    Key order does not matter; list order does. ``None`` equals ``[]``.

    Example:
        >>> merged_equals_remote([{"b": "1", "a": "2"}], [{"a": "2", "b": "1"}])
        True
    """
    merged_json = _entry_list(merged, "merged", lenient=True)
    return _canonical(merged_json) == _canonical(_entry_list(remote, "remote", lenient=True))


def validate_managed_access(
    managed_access: Sequence[AccessEntry], managed_policy_ids: Iterable[str]
) -> None:
    """Reject managed entries whose policy is outside ``managed_policy_ids``.

    Every entry the caller writes must be removable by a later ``managed_access=[]``; an
    entry for a foreign policy would be partitioned as untouched and survive.

    Raises:
        ValueError: on the first entry (named ``managed_access[i]``) whose policy is
            missing or not managed, or when ``managed_policy_ids`` is empty.
        TypeError: ``managed_access`` is not a list of entries.

    Example:
        >>> validate_managed_access([make_project_membership_access("p", {})], {"p"})
    """
    ids = _policy_id_set(managed_policy_ids)
    for index, entry in enumerate(_entry_list(managed_access, "managed_access")):
        _check_managed(entry, ids, f"managed_access[{index}]")


def _validate_managed_entry(entry: AccessEntry, managed_policy_ids: Iterable[str]) -> None:
    """:func:`validate_managed_access` for the one ``entry`` of ``plan_add`` / ``plan_remove``
    and the client's add / remove methods: the errors name ``entry``, their argument."""
    ids = _policy_id_set(managed_policy_ids)
    _check_managed(normalize_access_entry(entry, argument="entry"), ids, "entry")


def _check_managed(entry: Mapping[str, Any], ids: frozenset[str], argument: str) -> None:
    policy_id = get_project_membership_access_policy_id(entry)
    if policy_id is None:
        raise ValueError(f"{argument} has no AccessPolicy reference")
    if policy_id not in ids:
        raise ValueError(
            f"{argument} references AccessPolicy/{policy_id}, which is not in managed_policy_ids"
        )


# --- plans for the client methods ---------------------------------------------------------


def plan_merge(
    remote_access: Sequence[Any] | None,
    managed_access: Sequence[AccessEntry],
    managed_policy_ids: Iterable[str],
) -> AccessPlan:
    """The new access list for ``merge_project_membership_access``: replace the managed slice.

    Untouched remote entries keep their order, then ``managed_access`` in caller order.
    Compare ``plan.merged`` with the remote using :func:`merged_equals_remote` to decide
    whether to PUT.

    Raises:
        ValueError / TypeError: as :func:`validate_managed_access`.

    Example:
        >>> theirs = make_project_membership_access("q", {})
        >>> new = make_project_membership_access("p", {"organization": "Organization/a"})
        >>> plan_merge([theirs], [new], {"p"}) == ([theirs, new], 1, 1)
        True
    """
    validate_managed_access(managed_access, managed_policy_ids)
    _, untouched = partition_access(remote_access, managed_policy_ids)
    managed = _entry_list(managed_access, "managed_access")
    return AccessPlan(untouched + managed, len(managed), len(untouched))


def plan_add(
    remote_access: Sequence[Any] | None,
    entry: AccessEntry,
    managed_policy_ids: Iterable[str],
) -> AccessPlan:
    """The new access list for ``add_project_membership_access_entry``.

    Appends ``entry`` to the managed slice unless a structurally equal entry (same
    canonical JSON) is already there; then the plan equals the remote (idempotent).

    Raises:
        ValueError: ``entry`` references a policy outside ``managed_policy_ids`` (the message
            names ``entry``).

    Example:
        >>> new = make_project_membership_access("p", {})
        >>> plan_add([new], new, {"p"}) == ([new], 1, 0)
        True
    """
    target = normalize_access_entry(entry)
    _validate_managed_entry(target, managed_policy_ids)
    managed, untouched = partition_access(remote_access, managed_policy_ids)
    key = _canonical(target)
    if not any(_canonical(e) == key for e in managed):
        managed.append(target)
    return AccessPlan(untouched + managed, len(managed), len(untouched))


def plan_remove(
    remote_access: Sequence[Any] | None,
    entry: AccessEntry,
    managed_policy_ids: Iterable[str],
) -> AccessPlan:
    """The new access list for ``remove_project_membership_access_entry``.

    Drops every managed entry structurally equal to ``entry``; untouched entries are
    never removed, even when equal. No match leaves the plan equal to the remote.

    Raises:
        ValueError: ``entry`` references a policy outside ``managed_policy_ids`` (the message
            names ``entry``).

    Example:
        >>> old = make_project_membership_access("p", {})
        >>> plan_remove([old], old, {"p"}) == ([], 0, 0)
        True
    """
    target = normalize_access_entry(entry)
    _validate_managed_entry(target, managed_policy_ids)
    managed, untouched = partition_access(remote_access, managed_policy_ids)
    key = _canonical(target)
    kept = [e for e in managed if _canonical(e) != key]
    return AccessPlan(untouched + kept, len(kept), len(untouched))


def would_grant_unrestricted_access(
    membership: Mapping[str, Any] | BaseModel, merged: Sequence[AccessEntry]
) -> bool:
    """Whether writing ``merged`` would leave the membership with *unrestricted* access.

    Medplum grants project-wide access to a membership with neither ``access`` entries
    nor an ``accessPolicy``, so emptying a non-empty ``access`` list on such a membership
    fails open. The client can refuse that write (or require an explicit opt-in).

    Example:
        >>> membership = {"access": [{"policy": {"reference": "AccessPolicy/p"}}]}
        >>> would_grant_unrestricted_access(membership, [])
        True
    """
    data = normalize_access_entry(membership, argument="membership")
    return not merged and bool(data.get("access")) and not data.get("accessPolicy")

"""Account stamping: account references checked, and ``meta.accounts`` of a resource, or of
each resource a batch or transaction writes, extended with them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from pymedplum._fhir_rules import describe_not_reference, is_fhir_id, is_resource_type
from pymedplum._request_builders.bodies import _entry_method
from pymedplum._serialization import Deferred, decode_wire, dump_quietly, wire_dict


def account_references(accounts: str | Iterable[str], arg: str = "accounts") -> list[str]:
    """Validate account references ("Organization/abc"), one or several, order kept; the errors
    name ``arg`` (set_accounts' argument is account_refs)."""
    if isinstance(accounts, str):
        refs = [accounts]
    elif isinstance(accounts, Iterable) and not isinstance(accounts, Mapping | bytes | BaseModel):
        # A pydantic model iterates over its (field, value) pairs: not a list of references.
        refs = list(accounts)
    else:
        raise TypeError(
            f"{arg} must be a reference like 'Organization/abc' or a list of them, "
            f"got {type(accounts).__name__}"
        )
    for index, ref in enumerate(refs):
        if not isinstance(ref, str):
            # By type only: the repr of a resource or Reference would put its content here.
            raise TypeError(
                f"{arg}[{index}] must be a reference str like 'Organization/abc', "
                f"got {type(ref).__name__}"
            )
        resource_type, _, resource_id = ref.partition("/")
        # Both parts checked: 'a/b' or 'Organization/a b' would be written as a dangling
        # reference (Medplum stores meta.accounts as given).
        if not is_resource_type(resource_type) or not is_fhir_id(resource_id):
            raise ValueError(
                f"{arg}[{index}] must be a reference like 'Organization/abc', got "
                + describe_not_reference(ref)
            )
    return refs


def stamp_accounts(
    resource: Mapping[str, Any], accounts: str | Iterable[str], *, arg: str = "resource"
) -> dict[str, Any]:
    """A copy of ``resource`` whose meta.accounts also lists ``accounts`` (no duplicates).

    The caller's dict, its meta and its accounts list are left untouched. A ``meta`` that is
    not a mapping, or ``meta.accounts`` that is not a list of References, is a TypeError
    naming ``arg.meta`` / ``arg.meta.accounts`` (a str would otherwise be split into
    characters).
    """
    return _stamped(resource, account_references(accounts), arg)


def _stamped(resource: Mapping[str, Any], refs: list[str], arg: str) -> dict[str, Any]:
    """``stamp_accounts`` with ``refs`` already checked (a batch checks them once)."""
    if not refs:
        # Nothing to add: "accounts": [] would be written where there was no element (FHIR
        # allows no empty arrays).
        return dict(resource)
    raw_meta = resource.get("meta")
    if isinstance(raw_meta, BaseModel):
        raw_meta = wire_dict(raw_meta)
    if raw_meta is not None and not isinstance(raw_meta, Mapping):
        raise TypeError(
            f"{arg}.meta must be a mapping (a FHIR Meta), got {type(raw_meta).__name__}"
        )
    meta = dict(raw_meta or {})
    raw_accounts = meta.get("accounts")
    if raw_accounts is not None and not isinstance(raw_accounts, list | tuple):
        raise TypeError(
            f"{arg}.meta.accounts must be a list of References, got {type(raw_accounts).__name__}"
        )
    existing: list[Any] = []
    for index, account in enumerate(raw_accounts or []):
        if isinstance(account, BaseModel):
            account = wire_dict(account)
        if not isinstance(account, Mapping):
            raise TypeError(
                f"{arg}.meta.accounts[{index}] must be a Reference such as "
                f"{{'reference': 'Organization/abc'}}, got {type(account).__name__}"
            )
        existing.append(account)
    present = {a.get("reference") for a in existing}
    for ref in refs:
        if ref not in present:
            existing.append({"reference": ref})
            present.add(ref)
    meta["accounts"] = existing
    return {**resource, "meta": meta}


_STAMPED_METHODS = frozenset({"POST", "PUT"})


def stamp_bundle_accounts(
    bundle: Mapping[str, Any], accounts: str | Iterable[str]
) -> dict[str, Any]:
    """A copy of ``bundle`` whose POST and PUT entries' resources are stamped by
    ``stamp_accounts``.

    Only those entries carry the resource being written. A PATCH entry's resource is the patch
    document (a Binary), so stamping it would not reach the patched resource: it is left as
    given, like entries without a resource (GET, DELETE).

    Each stamped entry is checked here (the errors of ``stamp_accounts``) but built only when
    the body is written (a :class:`Deferred`): its copies, and the dict of a model resource,
    are then held one entry at a time instead of all together (11.6x the body of a
    5,000-entry batch of models).
    """
    refs = account_references(accounts)
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return dict(bundle)
    stamped: list[Any] = []
    for index, entry in enumerate(entries):
        if _stamp_entry(entry, refs, index, check_only=True) is not entry:
            entry = Deferred(functools.partial(_stamp_entry, entry, refs, index))
        stamped.append(entry)
    return {**bundle, "entry": stamped}


def _stamp_entry(entry: Any, refs: list[str], index: int, *, check_only: bool = False) -> Any:
    """One entry of ``stamp_bundle_accounts``: ``entry`` itself when it is not stamped, else
    its stamped copy (with ``check_only``: the checks alone, and any other object)."""
    # A dict bundle may hold models (a BundleEntry, its resource or request), which the
    # body encoder writes as their JSON: stamp them too, not only dicts.
    given = entry
    if isinstance(entry, BaseModel):
        entry = wire_dict(entry)
    if not isinstance(entry, Mapping):
        return given
    resource = entry.get("resource")
    if isinstance(resource, BaseModel):
        # The checks read only its meta: the whole resource is dumped when it is written.
        resource = _meta_of(resource) if check_only else wire_dict(resource)
    if not isinstance(resource, Mapping) or _entry_method(entry) not in _STAMPED_METHODS:
        return given
    arg = f"bundle.entry[{index}].resource"
    if check_only:
        _stamped({"meta": resource.get("meta")}, refs, arg)
        return object()
    return {**entry, "resource": _stamped(resource, refs, arg)}


def _meta_of(resource: BaseModel) -> dict[str, Any]:
    """``{"meta": ...}`` as ``wire_dict(resource)`` holds it (or ``{}``), without the rest."""
    meta: dict[str, Any] = decode_wire(
        dump_quietly(resource.model_dump_json, by_alias=True, exclude_none=True, include={"meta"})
    )
    return meta

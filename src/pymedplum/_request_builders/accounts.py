"""Account stamping: account references checked, and ``meta.accounts`` of a resource, or of
each resource a batch or transaction writes, extended with them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from pymedplum._fhir_rules import describe_not_reference, is_fhir_id, is_resource_type
from pymedplum._request_builders.bodies import entry_fields, entry_method
from pymedplum._serialization import (
    Deferred,
    ModelList,
    decode_wire,
    dump_quietly,
    element_key,
    wire_dict,
)


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


def stamp_model_accounts(resource: BaseModel, refs: list[str]) -> BaseModel | None:
    """A shallow copy of a FHIR model ``resource`` whose meta.accounts also lists ``refs`` (no
    duplicates), or None when it is not a FHIR model holding a Meta model and Reference models
    there (the dict path of :func:`stamp_accounts` then stamps it, and names what is wrong).

    Nothing is dumped: the model is sent as its own JSON, its meta and accounts list copied with
    the new references (dumping a 5,000-component Observation to a dict to stamp it held 11x
    its JSON). The bytes sent are those of the stamped dict of the model's JSON.
    """
    from pymedplum.fhir._base import FHIRModel
    from pymedplum.fhir._class_cache import element_validator
    from pymedplum.fhir.datatypes import Meta

    # The resource must write its meta as it is, under "meta" (element_key), and the meta be the
    # generated Meta: a user's subclass leaving meta out (Field(exclude=True)) sent no accounts,
    # and subclasses of Meta or Reference with defaults of their own wrote them into the new
    # meta and references, which the stamped dict does not hold (the dict path then stamps it).
    if not isinstance(resource, FHIRModel) or element_key(type(resource), "meta") != "meta":
        return None
    meta = resource.__dict__.get("meta")
    if meta is not None and type(meta) is not Meta:
        return None
    accounts = [] if meta is None else meta.__dict__.get("accounts") or []
    if type(accounts) is not list or not all(isinstance(a, FHIRModel) for a in accounts):
        return None
    present = {account.__dict__.get("reference") for account in accounts}
    added = [{"reference": ref} for ref in dict.fromkeys(refs) if ref not in present]
    if not added:
        return resource
    try:
        # Validated as an assigned element is: the Meta and Reference classes of this model.
        if meta is None:
            new_meta = element_validator(type(resource), "meta").validate_python(
                {"accounts": added}
            )
            if type(new_meta) is not Meta:  # a subclass of Meta, declared by the resource's class
                return None
        else:
            new_accounts = element_validator(type(meta), "accounts").validate_python(
                [*accounts, *added]
            )
            new_meta = _with_element(meta, "accounts", new_accounts)
    except ValidationError:  # an account of another model class, put there unvalidated
        return None
    return _with_element(resource, "meta", new_meta)


def _with_element(model: BaseModel, name: str, value: Any) -> BaseModel:
    """A shallow copy of ``model`` with element ``name`` set to ``value``: in its place when it
    is present, else last, where the dict of the model's JSON gets it (``{**resource, "meta":
    meta}``), so that the JSON is the same."""
    if name in model.__dict__ and model.__dict__[name] is None:
        # Stored as None, it is not written: the dict has no such key, the new one goes last.
        model = model.model_copy()
        del model.__dict__[name]
    return model.model_copy(update={name: value})


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
    # A Bundle model's entries stay a ModelList, written one at a time.
    stamped: list[Any] = []
    for index, entry in enumerate(entries):
        if type(entries) is ModelList:
            entry = entries.as_written(entry)
        if _check_entry(entry, refs, index):
            entry = Deferred(functools.partial(_stamp_entry, entry, refs, index))
        stamped.append(entry)
    return {
        **bundle,
        "entry": ModelList(stamped, entries) if type(entries) is ModelList else stamped,
    }


def _resource_to_stamp(entry: Any) -> Any:
    """The resource of a POST or PUT ``entry`` (a dict or a model), else None."""
    # A dict bundle may hold models (a BundleEntry, its resource or request), which the
    # body encoder writes as their JSON: stamp them too, not only dicts.
    fields = entry_fields(entry)
    if fields is None or entry_method(fields) not in _STAMPED_METHODS:
        return None
    resource = fields.get("resource")
    return resource if isinstance(resource, Mapping | BaseModel) else None


def _check_entry(entry: Any, refs: list[str], index: int) -> bool:
    """Whether ``entry`` is one to stamp; its meta is checked here (the errors of
    ``stamp_accounts``), before anything is sent."""
    resource = _resource_to_stamp(entry)
    if resource is None:
        return False
    meta = _meta_of(resource) if isinstance(resource, BaseModel) else resource.get("meta")
    if meta is not None:  # without one, nothing can be wrong (nothing built: no GC work)
        _stamped({"meta": meta}, refs, f"bundle.entry[{index}].resource")
    return True


def _stamp_entry(entry: Any, refs: list[str], index: int) -> Any:
    """The stamped copy of an entry :func:`_check_entry` accepted: a FHIR model entry holding
    a FHIR model resource stays a model (shallow copies), anything else becomes a dict."""
    resource = _resource_to_stamp(entry)
    if isinstance(entry, BaseModel) and isinstance(resource, BaseModel):
        from pymedplum.fhir._base import FHIRModel  # loaded: entry is a model

        # Its resource was read from its stored elements (entry_fields): replaced there.
        stamped = stamp_model_accounts(resource, refs) if isinstance(entry, FHIRModel) else None
        if stamped is not None:
            return entry.model_copy(update={"resource": stamped})
    fields = wire_dict(entry) if isinstance(entry, BaseModel) else entry
    if isinstance(resource, BaseModel):
        resource = wire_dict(resource)
    return {**fields, "resource": _stamped(resource, refs, f"bundle.entry[{index}].resource")}


def _meta_of(resource: BaseModel) -> Any:
    """``wire_dict(resource).get("meta")``, without dumping the rest of the resource (of a
    FHIR model, its stored meta: nothing is dumped when it has none)."""
    from pymedplum.fhir._base import FHIRModel  # loaded: resource is a model

    if isinstance(resource, FHIRModel):
        meta = resource.__dict__.get("meta")
        return wire_dict(meta) if isinstance(meta, BaseModel) else meta
    holder: dict[str, Any] = decode_wire(
        dump_quietly(resource.model_dump_json, by_alias=True, exclude_none=True, include={"meta"})
    )
    return holder.get("meta")

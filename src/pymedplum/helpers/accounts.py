"""Medplum account assignments (``meta.account`` and ``meta.accounts``) as reference strings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from pymedplum._serialization import as_fhir_dict

__all__ = ["extract_account_references", "get_resource_accounts", "resource_has_account"]


def _reference_of(value: object) -> str | None:
    if isinstance(value, BaseModel):
        value = as_fhir_dict(value, "meta.accounts[]")
    if not isinstance(value, dict):
        return None
    ref = value.get("reference")
    return ref if isinstance(ref, str) and ref else None


def extract_account_references(meta: dict[str, Any] | BaseModel | None) -> list[str]:
    """Account references of a ``meta`` object: deprecated singular first, then the plural.

    Normalizes like Medplum's ``extractAccountReferences``: ``meta.account`` (deprecated
    singular Reference) comes first, then ``meta.accounts`` (Reference[]), duplicates
    removed in first-seen order. Malformed entries (non-dict or without a string
    ``reference``) are skipped. ``None`` or empty meta yields ``[]``.

    Raises:
        TypeError: ``meta`` is not a dict, Pydantic model or ``None``.

    Example:
        >>> extract_account_references({
        ...     "account": {"reference": "Organization/org-1"},
        ...     "accounts": [{"reference": "Organization/org-2"}],
        ... })
        ['Organization/org-1', 'Organization/org-2']
    """
    if meta is None:
        return []
    data = as_fhir_dict(meta, "meta")
    plural = data.get("accounts")
    candidates = [data.get("account"), *(plural if isinstance(plural, list) else [])]
    refs: list[str] = []
    for candidate in candidates:
        ref = _reference_of(candidate)
        if ref is not None and ref not in refs:
            refs.append(ref)
    return refs


def get_resource_accounts(resource: dict[str, Any] | BaseModel) -> list[str]:
    """All account references assigned to ``resource`` (see :func:`extract_account_references`).

    Raises:
        TypeError: ``resource`` is neither a dict nor a Pydantic model.

    Example:
        >>> get_resource_accounts({"meta": {"accounts": [{"reference": "Organization/a"}]}})
        ['Organization/a']
    """
    meta = as_fhir_dict(resource, "resource").get("meta")
    if meta is None:
        return []
    return extract_account_references(as_fhir_dict(meta, "resource.meta"))


def resource_has_account(resource: dict[str, Any] | BaseModel, account_ref: str) -> bool:
    """Whether ``resource`` is assigned to ``account_ref`` (singular or plural meta field).

    Raises:
        TypeError: ``resource`` is neither a dict nor a Pydantic model, or
            ``account_ref`` is not a string.

    Example:
        >>> resource_has_account({"meta": {"account": {"reference": "Organization/a"}}},
        ...                      "Organization/a")
        True
    """
    if not isinstance(account_ref, str):
        raise TypeError(f"account_ref must be a str, got {type(account_ref).__name__}")
    return account_ref in get_resource_accounts(resource)

"""FHIR reference strings: split, build and resolve ``"Type/id"``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from pymedplum._serialization import as_fhir_dict

__all__ = ["build_reference", "parse_reference", "resolve_id"]

_HISTORY = "/_history/"


def _strip_history(reference: str) -> str:
    # "Patient/1/_history/3" names version 3 of Patient/1; the id is still "1".
    head, sep, _ = reference.partition(_HISTORY)
    return head if sep else reference


def parse_reference(reference: str) -> tuple[str, str]:
    """Split a FHIR reference string into ``(resource_type, id)``.

    Strict: a malformed reference raises. A version suffix (``/_history/<v>``) is
    dropped, and an absolute URL yields its last ``Type/id`` pair.

    Raises:
        TypeError: ``reference`` is not a string.
        ValueError: ``reference`` is empty, has no ``/`` separator, or has an empty
            type or id (``"Patient/"``, ``"/123"``).

    Example:
        >>> parse_reference("Patient/abc-123")
        ('Patient', 'abc-123')
    """
    if not isinstance(reference, str):
        raise TypeError(f"reference must be a str, got {type(reference).__name__}")
    if not reference:
        raise ValueError("reference must not be empty")
    if "/" not in reference:
        raise ValueError(f"reference must look like 'Type/id', got {reference!r}")
    if "?" in reference:
        raise ValueError(f"reference is a conditional (search) reference: {reference!r}")
    resource_type, _, resource_id = _strip_history(reference).rpartition("/")
    resource_type = resource_type.rpartition("/")[2]
    if not resource_type or not resource_id:
        raise ValueError(f"reference must look like 'Type/id', got {reference!r}")
    return resource_type, resource_id


def build_reference(resource_type: str, resource_id: str) -> str:
    """Build a ``"Type/id"`` reference string; the inverse of :func:`parse_reference`.

    Raises:
        TypeError: an argument is not a string.
        ValueError: an argument is empty or contains ``/`` (the result would not
            parse back to the same parts).

    Example:
        >>> build_reference("Patient", "123")
        'Patient/123'
    """
    for name, value in (("resource_type", resource_type), ("resource_id", resource_id)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        if not value:
            raise ValueError(f"{name} must not be empty")
        if "/" in value:
            raise ValueError(f"{name} must not contain '/', got {value!r}")
    return f"{resource_type}/{resource_id}"


def _id_from_string(reference: str) -> str | None:
    return _strip_history(reference).rpartition("/")[2] or None


def resolve_id(reference: str | dict[str, Any] | BaseModel | None) -> str | None:
    """Return the bare id from a reference string, a bare id, a Reference or a resource.

    Lenient: returns ``None`` when no id can be found (``None``, ``""``, ``{}``,
    ``"Patient/"``) instead of raising. A Reference's ``reference`` wins over a
    resource's ``id``. Mirrors ``@medplum/core`` ``resolveId``, plus plain strings.

    Raises:
        TypeError: ``reference`` is not a str, dict, Pydantic model or ``None``.

    Example:
        >>> resolve_id("Patient/123"), resolve_id("123"), resolve_id({"reference": "Patient/abc"})
        ('123', '123', 'abc')
    """
    if reference is None:
        return None
    if isinstance(reference, str):
        return _id_from_string(reference)
    data = as_fhir_dict(reference, "reference")
    ref = data.get("reference")
    if isinstance(ref, str) and ref:
        return _id_from_string(ref)
    resource_id = data.get("id")
    return resource_id if isinstance(resource_id, str) and resource_id else None

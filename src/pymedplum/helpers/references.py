"""FHIR reference strings: split, build and resolve ``"Type/id"``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from pymedplum._fhir_rules import (
    ID_RULE,
    RESOURCE_TYPE_RULE,
    describe_not_id,
    describe_not_reference,
    describe_not_type,
    is_fhir_id,
    is_resource_type,
)
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
    dropped, and an absolute URL yields its last ``Type/id`` pair. Accepts exactly the
    parts :func:`build_reference` accepts, so ``build_reference(*parse_reference(r))``
    never raises.

    Raises:
        TypeError: ``reference`` is not a string.
        ValueError: ``reference`` is empty, has no ``/`` separator (a contained
            ``"#id"`` or ``urn:uuid:`` reference), is a conditional reference
            (``"Patient?identifier=..."``), has an empty type or id (``"Patient/"``,
            ``"/123"``), or its type is not a resource type name or its id not a FHIR id.

    Example:
        >>> parse_reference("Patient/abc-123")
        ('Patient', 'abc-123')
    """
    if not isinstance(reference, str):
        raise TypeError(f"reference must be a str, got {type(reference).__name__}")
    if not reference:
        raise ValueError("reference must not be empty")
    # The messages describe the reference, never show it: an id or a search is PHI.
    if "?" in reference:
        # Its query (identifier=mrn|123) is PHI: only a resource type before it is named.
        before = reference.partition("?")[0].rpartition("/")[2]
        what = f" to {before}" if is_resource_type(before) else ""
        raise ValueError(
            f"reference is a conditional (search) reference{what}, not 'Type/id' (its query "
            "is not shown)"
        )
    if "/" not in reference:
        raise ValueError(
            f"reference must look like 'Type/id', got {describe_not_reference(reference)}"
        )
    resource_type, _, resource_id = _strip_history(reference).rpartition("/")
    resource_type = resource_type.rpartition("/")[2]
    if not resource_type or not resource_id:
        raise ValueError("reference must look like 'Type/id', got an empty type or id")
    if not is_resource_type(resource_type):
        raise ValueError(
            f"reference type must be {RESOURCE_TYPE_RULE}, got {describe_not_type(resource_type)}"
        )
    if not is_fhir_id(resource_id):
        raise ValueError(f"reference id must be {ID_RULE}, got {describe_not_id(resource_id)}")
    return resource_type, resource_id


def build_reference(resource_type: str, resource_id: str) -> str:
    """Build a ``"Type/id"`` reference string; the inverse of :func:`parse_reference`.

    ``parse_reference(build_reference(t, i)) == (t, i)`` for every pair it accepts.

    Raises:
        TypeError: an argument is not a string.
        ValueError: ``resource_type`` is not a resource type name (an upper-case letter,
            then letters) or ``resource_id`` is not a FHIR id (1 to 64 of ``A-Z a-z 0-9 - .``);
            the message names the argument.

    Example:
        >>> build_reference("Patient", "123")
        'Patient/123'
    """
    for name, value, valid, rule, describe in (
        ("resource_type", resource_type, is_resource_type, RESOURCE_TYPE_RULE, describe_not_type),
        ("resource_id", resource_id, is_fhir_id, ID_RULE, describe_not_id),
    ):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        if not value:
            raise ValueError(f"{name} must not be empty")
        if not valid(value):
            raise ValueError(f"{name} must be {rule}, got {describe(value)}")
    return f"{resource_type}/{resource_id}"


def _id_from_string(reference: str) -> str | None:
    if "/" in reference:
        try:
            return parse_reference(reference)[1]
        except ValueError:
            return None
    return reference if is_fhir_id(reference) else None


def resolve_id(reference: str | dict[str, Any] | BaseModel | None) -> str | None:
    """Return the bare id from a reference string, a bare id, a Reference or a resource.

    Lenient: returns ``None`` instead of raising when no id can be found. A reference
    string yields the id :func:`parse_reference` would return, and ``None`` where it
    raises (``"Patient/"``, a conditional ``"Patient?identifier=..."``); a string without
    ``/`` is returned when it is a FHIR id, else ``None`` (a contained ``"#c1"`` names no
    server resource, a ``urn:uuid:`` placeholder no id). So the result is always a FHIR id
    or ``None``. A Reference's ``reference`` wins over a resource's ``id`` (a Reference
    that has one is never resolved through its element ``id``). Mirrors ``@medplum/core``
    ``resolveId``, plus plain strings.

    Raises:
        TypeError: ``reference`` is not a str, dict, Pydantic model or ``None``.

    Example:
        >>> resolve_id("Patient/123"), resolve_id("123"), resolve_id({"reference": "Patient/abc"})
        ('123', '123', 'abc')
        >>> resolve_id({"reference": "#c1"}) is None
        True
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
    if is_fhir_id(resource_id):
        return resource_id
    return None

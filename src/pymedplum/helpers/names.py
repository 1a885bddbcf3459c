"""Human-readable names and identifier lookups."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from pymedplum._serialization import as_fhir_dict

__all__ = ["extract_identifier", "get_patient_display_name"]

UNKNOWN_NAME = "Unknown"


def get_patient_display_name(patient: dict[str, Any] | BaseModel) -> str:
    """Best-effort display name from a Patient's first ``HumanName``.

    Prefers ``name[0].text``; otherwise joins the ``given`` names and ``family``
    with spaces. Returns ``"Unknown"`` when no usable name is present.

    Raises:
        TypeError: ``patient`` is neither a dict nor a Pydantic model.

    Example:
        >>> get_patient_display_name({"name": [{"given": ["John"], "family": "Doe"}]})
        'John Doe'
    """
    names = as_fhir_dict(patient, "patient").get("name")
    if not isinstance(names, list) or not names or not isinstance(names[0], dict):
        return UNKNOWN_NAME
    first: dict[str, Any] = names[0]
    text = first.get("text")
    if isinstance(text, str) and text.strip():
        return text
    given = first.get("given")
    parts = [g for g in given if isinstance(g, str) and g] if isinstance(given, list) else []
    family = first.get("family")
    if isinstance(family, str) and family:
        parts.append(family)
    return " ".join(parts) if parts else UNKNOWN_NAME


def extract_identifier(resource: dict[str, Any] | BaseModel, system: str) -> str | None:
    """Value of the first ``identifier`` whose ``system`` equals ``system``, else ``None``.

    Raises:
        TypeError: ``resource`` is neither a dict nor a Pydantic model, or ``system``
            is not a string.

    Example:
        >>> patient = {"identifier": [{"system": "http://hospital.org/mrn", "value": "123456"}]}
        >>> extract_identifier(patient, "http://hospital.org/mrn")
        '123456'
    """
    data = as_fhir_dict(resource, "resource")
    if not isinstance(system, str):
        raise TypeError(f"system must be a str, got {type(system).__name__}")
    identifiers = data.get("identifier")
    if not isinstance(identifiers, list):
        return None
    for identifier in identifiers:
        if isinstance(identifier, dict) and identifier.get("system") == system:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
    return None

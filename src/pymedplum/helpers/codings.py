"""Reads of a CodeableConcept: display label, code by system, primary coding parts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from pymedplum._serialization import as_fhir_dict

__all__ = ["coding_parts", "get_code_by_system", "get_code_display"]


def _text(value: object) -> str | None:
    # FHIR forbids empty strings; treat them (and non-strings) as absent.
    return value if isinstance(value, str) and value else None


def _codings(concept: dict[str, Any]) -> list[dict[str, Any]]:
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return []
    return [c for c in codings if isinstance(c, dict)]


def get_code_display(codeable_concept: dict[str, Any] | BaseModel | None) -> str | None:
    """A label for a CodeableConcept: its ``text``, else the first coding's ``display``.

    Never falls back to the raw code (use :func:`get_code_by_system` or
    :func:`coding_parts` for codes). ``None`` input yields ``None``.

    Raises:
        TypeError: ``codeable_concept`` is not a dict, Pydantic model or ``None``.

    Example:
        >>> get_code_display({"coding": [{"display": "Hypertension"}]})
        'Hypertension'
    """
    if codeable_concept is None:
        return None
    concept = as_fhir_dict(codeable_concept, "codeable_concept")
    text = _text(concept.get("text"))
    if text is not None:
        return text
    codings = _codings(concept)
    return _text(codings[0].get("display")) if codings else None


def get_code_by_system(
    codeable_concept: dict[str, Any] | BaseModel | None, system: str
) -> str | None:
    """The ``code`` of the first coding whose ``system`` matches, else ``None``.

    Mirrors ``@medplum/core`` ``getCodeBySystem``.

    Raises:
        TypeError: ``codeable_concept`` is not a dict, Pydantic model or ``None``, or
            ``system`` is not a string.

    Example:
        >>> concept = {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}
        >>> get_code_by_system(concept, "http://loinc.org")
        '8867-4'
    """
    if not isinstance(system, str):
        raise TypeError(f"system must be a str, got {type(system).__name__}")
    if codeable_concept is None:
        return None
    for coding in _codings(as_fhir_dict(codeable_concept, "codeable_concept")):
        if coding.get("system") == system:
            return _text(coding.get("code"))
    return None


def coding_parts(
    codeable_concept: dict[str, Any] | BaseModel | None,
) -> tuple[str | None, str | None, str | None, str | None]:
    """``(code, system, display, text)`` of the first coding plus the concept's text.

    Empty strings become ``None``; ``None`` input yields ``(None, None, None, None)``.
    The first coding is arbitrary when several systems are present: prefer
    :func:`get_code_by_system` when one system matters.

    Raises:
        TypeError: ``codeable_concept`` is not a dict, Pydantic model or ``None``.

    Example:
        >>> coding_parts({"text": "free text only"})
        (None, None, None, 'free text only')
    """
    if codeable_concept is None:
        return None, None, None, None
    concept = as_fhir_dict(codeable_concept, "codeable_concept")
    text = _text(concept.get("text"))
    codings = _codings(concept)
    if not codings:
        return None, None, None, text
    first = codings[0]
    return _text(first.get("code")), _text(first.get("system")), _text(first.get("display")), text

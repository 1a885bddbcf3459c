"""FHIR-JSON normalization: the one place a model becomes a plain dict."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["as_fhir_dict", "to_fhir_json"]


def to_fhir_json(resource: dict[str, Any] | BaseModel) -> dict[str, Any]:
    """Normalize a resource to a FHIR-JSON dict.

    A dict is returned unchanged (the same object, not a copy). A Pydantic model is
    dumped with ``mode="json", by_alias=True, exclude_none=True`` so field names are
    FHIR's camelCase and unset elements are left out.

    Raises:
        TypeError: ``resource`` is neither a dict nor a Pydantic model.

    Example:
        >>> to_fhir_json({"resourceType": "Patient"})
        {'resourceType': 'Patient'}
    """
    return as_fhir_dict(resource, "resource")


def as_fhir_dict(value: object, argument: str) -> dict[str, Any]:
    """``to_fhir_json`` for internal callers: the TypeError names *their* argument."""
    if isinstance(value, dict):
        return value
    if isinstance(value, BaseModel):
        dumped: dict[str, Any] = value.model_dump(mode="json", by_alias=True, exclude_none=True)
        return dumped
    raise TypeError(f"{argument} must be a dict or a pydantic model, got {type(value).__name__}")

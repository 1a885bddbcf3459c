"""Validation errors of FHIR models name the element path but never echo the value (PHI)."""

from __future__ import annotations

import pydantic
import pytest

from pymedplum.fhir import Patient


def test_validation_error_names_the_path_without_the_value() -> None:
    secret = "1980-13-45-John-Doe-SSN-123-45-6789"
    with pytest.raises(pydantic.ValidationError) as info:
        Patient.model_validate_json('{"resourceType":"Patient","birthDate":"' + secret + '"}')
    text = str(info.value)
    assert "birthDate" in text
    assert secret not in text
    assert "SSN" not in repr(info.value.errors(include_input=False))

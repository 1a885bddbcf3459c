"""Validation errors of FHIR models name the element path but never echo the value (PHI)."""

from __future__ import annotations

import json

import pydantic
import pytest

from pymedplum.fhir import HumanName, Patient


def test_validation_error_names_the_path_without_the_value() -> None:
    secret = "1980-13-45-John-Doe-SSN-123-45-6789"
    with pytest.raises(pydantic.ValidationError) as info:
        Patient.model_validate_json('{"resourceType":"Patient","birthDate":"' + secret + '"}')
    text = str(info.value)
    assert "birthDate" in text
    assert secret not in text
    assert "SSN" not in repr(info.value.errors(include_input=False))


def test_a_value_no_validation_saw_is_warned_about_without_the_value() -> None:
    # pydantic's serializer warning quoted it: input_value={'family': 'Doe-SSN-123-45-6789'}.
    import warnings

    from pymedplum import to_fhir_json
    from pymedplum._serialization import encode_json

    secret = "Doe-SSN-123-45-6789"
    patient = Patient(name=[HumanName(family="Roe")])
    assert patient.name is not None
    patient.name.append({"family": secret})  # type: ignore[arg-type]
    written = {"resourceType": "Patient", "name": [{"family": "Roe"}, {"family": secret}]}
    # Where the SDK writes the model itself: to_fhir_json and every request body.
    for dump in (lambda: to_fhir_json(patient), lambda: json.loads(encode_json(patient))):
        with pytest.warns(UserWarning) as caught:
            assert dump() == written
        [warning] = caught
        assert warning.filename == __file__  # the caller's line, not one inside pymedplum
        text = str(warning.message)
        assert "Expected `HumanName`" in text and "field_name='name'" in text
        assert "input_type=dict" in text and secret not in text
        assert "patient.name = patient.name" in text
    # Assigning the element again validates it: no warning then.
    patient.name = patient.name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert to_fhir_json(patient) == written

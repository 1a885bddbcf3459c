"""Edge cases found by running real-world FHIR data and hand-crafted server output through the
models (docs/models.md, "Checked beyond the official examples"); each is a small hand-written
reproduction, no third-party data."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from codegen.roundtrip import as_text_numbers
from pymedplum import to_fhir_json
from pymedplum.fhir import Bundle, Observation, Parameters, Patient, Resource


def roundtrip(model_cls: type[Resource], data: str) -> str:
    out = model_cls.model_validate_json(data).model_dump_json(by_alias=True, exclude_none=True)
    assert as_text_numbers(out) == as_text_numbers(data)
    return out


PATIENT = '{"resourceType":"Patient",%s}'
OBSERVATION = '{"resourceType":"Observation","status":"final","code":{"text":"x"},%s}'


# --- the JSON integer literal -0 ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '"valueQuantity":{"value":-0}',
        '"valueQuantity":{"value":-0 }',
        '"component":[{"code":{"text":"y"},"valueQuantity":{"value":-0}}]',
        '"extension":[{"url":"http://a","valueDecimal":-0}]',
        '"futureElement":-0',
        '"futureElement":{"a":[1,-0,2.50]}',
        '"contained":[{"resourceType":"FutureThing","v":[-0]}]',
    ],
)
def test_negative_zero_keeps_its_sign(body: str) -> None:
    # jiter reads the literal -0 as the int 0: a decimal (or unknown element) holding it was
    # written back as 0.
    out = roundtrip(Observation, OBSERVATION % body)
    assert "-0" in out


def test_negative_zero_is_a_negative_zero_decimal() -> None:
    obs = Observation.model_validate_json(OBSERVATION % '"valueQuantity":{"value":-0}')
    value = obs.value_quantity.value
    assert isinstance(value, Decimal)
    assert value.is_zero()
    assert value.is_signed()
    # As a plain dict it is the int 0, as json.loads reads -0.
    assert to_fhir_json(obs)["valueQuantity"] == {"value": 0}


def test_negative_zero_inside_a_bundle_and_parameters() -> None:
    text = (
        '{"resourceType":"Bundle","type":"collection","entry":[{"resource":'
        '{"resourceType":"Parameters","parameter":[{"name":"a","valueDecimal":-0}]}}]}'
    )
    roundtrip(Bundle, text)
    roundtrip(
        Parameters, '{"resourceType":"Parameters","parameter":[{"name":"a","valueDecimal":-0}]}'
    )


@pytest.mark.parametrize("text", ['"name":[{"text":"GMT-0 ,-0]"}]', '"id":"x-0","gender":"male"'])
def test_text_that_looks_like_negative_zero_is_read_as_it_is(text: str) -> None:
    # The search for -0 also matches inside strings: those are read again, unchanged.
    roundtrip(Patient, PATIENT % text)


def test_an_integer_negative_zero_is_zero() -> None:
    # A Python int has no negative zero: an integer element reads -0 as 0.
    obs = Observation.model_validate_json(OBSERVATION % '"valueInteger":-0')
    assert obs.value_integer == 0
    assert type(obs.value_integer) is int


def test_negative_zero_with_bad_json_elsewhere_is_still_json_invalid() -> None:
    with pytest.raises(ValidationError) as info:
        Observation.model_validate_json((OBSERVATION % '"valueQuantity":{"value":-0}') + "x")
    assert info.value.errors()[0]["type"] == "json_invalid"
    with pytest.raises(ValidationError) as info:
        Observation.model_validate_json(OBSERVATION % '"valueQuantity":{"value":-0,"x":NaN}')
    assert info.value.errors()[0]["type"] == "json_invalid"


def test_negative_zero_assigned_as_a_decimal_is_written_with_its_sign() -> None:
    obs = Observation.model_validate_json(OBSERVATION % '"valueQuantity":{"value":1}')
    obs.value_quantity.value = Decimal("-0")
    assert json.loads(obs.model_dump_json(exclude_none=True))["valueQuantity"] == {"value": 0}
    assert '"value":-0}' in obs.model_dump_json(exclude_none=True)

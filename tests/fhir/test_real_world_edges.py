"""Edge cases found by running real-world FHIR data and hand-crafted server output through the
models (docs/models.md, "Checked beyond the official examples"); each is a small hand-written
reproduction, no third-party data."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from pymedplum import to_fhir_json
from pymedplum.fhir import Bundle, Observation, Parameters, Patient
from tests.fhir.test_models import roundtrip

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


# --- unknown elements named like the model's own attributes ----------------------------------


@pytest.mark.parametrize(
    "name", ["model_dump", "model_dump_json", "_json_bytes", "__pydantic_serializer__", "copy"]
)
def test_an_unknown_element_named_like_a_method_is_refused_by_name(name: str) -> None:
    # Kept in the instance __dict__, it hid the method: to_fhir_json, model_dump_json, repr,
    # deepcopy and pickle failed with "'dict' object is not callable" after a clean parse.
    text = PATIENT % f'"gender":"male","{name}":{{"secret":"Jane"}}'
    with pytest.raises(ValidationError) as info:
        Patient.model_validate_json(text)
    (error,) = info.value.errors()
    assert error["type"] == "fhir_unknown_element_name"
    assert error["loc"] == (name,)
    assert name in error["msg"]
    assert "Jane" not in str(info.value)


def test_an_unknown_element_named_like_a_method_is_refused_where_it_is() -> None:
    text = (
        '{"resourceType":"Bundle","type":"collection","entry":[{"resource":'
        '{"resourceType":"Patient","contained":[{"resourceType":"FutureThing","model_copy":1}]}}]}'
    )
    with pytest.raises(ValidationError) as info:
        Bundle.model_validate_json(text)
    assert info.value.errors()[0]["loc"] == ("entry", 0, "resource", "contained", 0, "model_copy")
    with pytest.raises(ValidationError):
        Patient.model_validate({"resourceType": "Patient", "model_dump": 1})


@pytest.mark.parametrize(
    "name", ["futureElement", "fields", "__dict__", "model_extra", "medplum_project", "x_y"]
)
def test_other_unknown_elements_are_still_kept(name: str) -> None:
    # Data descriptors (properties, __dict__) are not hidden by an instance attribute.
    text = PATIENT % f'"{name}":{{"a":[1,2.50]}}'
    patient = Patient.model_validate_json(text)
    roundtrip(Patient, text)
    assert to_fhir_json(patient)[name] == {"a": [1, 2.5]}
    repr(patient)


# --- Python names as JSON keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '"name":[{"text":"birth_date\\":"}]',  # looks like one, inside a string
        '"future_element":{"birth_date":1}',  # inside an unknown element: kept as it is
        '"gender":"male","_gender":{"extension":[{"url":"http://a","valueCode":"x"}]}',
    ],
)
def test_text_that_only_looks_like_a_python_name_is_read(body: str) -> None:
    roundtrip(Patient, PATIENT % body)


def test_an_element_whose_json_name_has_an_underscore_is_read() -> None:
    from pymedplum.fhir import JsonWebKey

    text = (
        '{"resourceType":"JsonWebKey","active":true,"alg":"RS256","kty":"RSA","key_ops":["sign"]}'
    )
    assert JsonWebKey.model_validate_json(text).key_ops == ["sign"]
    roundtrip(JsonWebKey, text)


def test_python_names_stay_accepted_from_python_and_from_json_text() -> None:
    # validate_by_name (the "construction by either"), for JSON text as pydantic does
    # it: the element is read and written back under its FHIR name.
    assert Patient(birth_date="1980").birth_date == "1980"
    assert Patient.model_validate({"birth_date": "1980"}).birth_date == "1980"
    patient = Patient.model_validate_json(PATIENT % '"birth_date":"1980"')
    assert patient.birth_date == "1980"
    assert patient.model_dump_json() == '{"resourceType":"Patient","birthDate":"1980"}'


def test_negative_zero_is_sent_with_its_sign() -> None:
    from pymedplum._serialization import encode_json, wire_dict

    obs = Observation.model_validate_json(OBSERVATION % '"valueQuantity":{"value":-0}')
    assert b'"valueQuantity":{"value":-0}' in encode_json(obs)
    assert b'"value":-0}' in encode_json({"resourceType": "Bundle", "entry": [{"resource": obs}]})
    assert str(wire_dict(obs)["valueQuantity"]["value"]) == "-0"


# --- duplicate keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (PATIENT % '"gender":"male","gender":"female"', "gender"),
        ('{"resourceType":"Patient","resourceType":"Observation"}', "resourceType"),
        (PATIENT % '"contained":[{"resourceType":"FutureThing","a":1,"a":2}]', "a"),
        # read by the standard library (a lone surrogate), or read again (a -0)
        (PATIENT % '"name":[{"text":"\\ud800","family":"a","family":"b"}]', "family"),
        (PATIENT % '"extension":[{"url":"u","valueDecimal":-0,"url":"v"}]', "url"),
    ],
)
def test_a_key_given_twice_is_invalid_json_naming_it(text: str, key: str) -> None:
    # Every JSON parser keeps one of the values: the other was dropped without a word.
    with pytest.raises(ValidationError) as info:
        Patient.model_validate_json(text)
    (error,) = info.value.errors()
    assert error["type"] == "json_invalid"
    assert f'duplicate key "{key}"' in error["msg"]


@pytest.mark.parametrize(
    "body",
    [
        '"name":[{"text":"LOINC 9270-0 = total score"}]',
        '"name":[{"text":"GMT-0, 2020-01-02"}]',
        '"id":"x-0","gender":"male"',
    ],
)
def test_text_with_minus_zero_inside_strings_is_read_once(
    body: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The search for the literal -0 matches inside such strings (LOINC codes in narratives are
    # common); only a -0 where a value starts (after ':', '[' or ',') costs a second read.
    import pymedplum.fhir._decimals as decimals

    def read_again(data: bytes) -> object:
        raise AssertionError("read a second time")

    monkeypatch.setattr(decimals, "_read_again", read_again)
    roundtrip(Patient, PATIENT % body)
    with pytest.raises(AssertionError, match="second time"):
        Patient.model_validate_json(PATIENT % '"name":[{"text":"a"}],"futureElement":[-0]')


@pytest.mark.parametrize("content", [b'{"value":-0}', '{"value":-0}'])
def test_negative_zero_read_from_a_response_for_a_model_keeps_its_sign(
    content: bytes | str,
) -> None:
    # Typed search results are validated from decode_exact's dicts, not from the text.
    from pymedplum._serialization import decode_exact
    from pymedplum.fhir import Quantity

    data = decode_exact(content)
    assert data == {"value": 0}
    assert Quantity.model_validate(data).model_dump_json() == '{"value":-0}'
    assert decode_exact(b'{"value":-0.0,"n":[1,-1,0]}') == {
        "value": Decimal("-0.0"),
        "n": [1, -1, 0],
    }


# --- data nested past Python's recursion limit -------------------------------------------------


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [600, 2000])
@pytest.mark.parametrize("how", ["json", "dict", "init", "assign"])
def test_an_unknown_element_nested_too_deeply_is_a_validation_error(depth: int, how: str) -> None:
    # The models walk unknown elements recursively: a bare RecursionError came out of pydantic
    # (or of the standard library's second read of the text, at 2,000 levels).
    text = '{"resourceType":"Patient","future":' + "[" * depth + "1" + "]" * depth + "}"
    with pytest.raises(ValidationError) as info:
        if how == "json":
            Patient.model_validate_json(text)
        elif how == "dict":
            Patient.model_validate({"resourceType": "Patient", "future": _deep(depth)})
        elif how == "init":
            Patient(future=_deep(depth))
        else:
            Patient().future = _deep(depth)
    assert info.value.errors()[0]["type"] == "too_deep"
    assert info.value.title == "Patient"

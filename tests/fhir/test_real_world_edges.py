"""Edge cases found by running real-world FHIR data and hand-crafted server output through the
models (docs/models.md, "Checked beyond the official examples"); each is a small hand-written
reproduction, no third-party data."""

from __future__ import annotations

import json
import sys
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


READERS = ["decode_exact", "decode_json", "read_json"]


def _reader(name: str) -> Any:
    import pymedplum._serialization as serialization
    from pymedplum.fhir import _decimals

    return getattr(_decimals if name == "read_json" else serialization, name)


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    ("text", "key", "where"),
    [
        (b'{"a":1,"a":2}', "a", (1, 12)),
        (b'{"x":{"y":[{"k":1,"j":{"k":0},"k":[2]}]}}', "k", (1, 35)),
        (b'{\n  "a": 1,\n  "a": 2\n}', "a", (3, 7)),
        (b'{"q\\"\\\\\\n\\u00e9":1,"q\\"\\\\\\n\\u00e9":2}', 'q"\\\né', (1, 36)),
        # jiter's message writes these as Rust does (\u{7f}, \u{200b}, \u{301}, and a
        # backslash doubled before a literal "u{41}"): the key is read back as it was
        (
            b'{"\\u007f\\u200b\\u0301x\\\\u{41}":1,"\\u007f\\u200b\\u0301x\\\\u{41}":2}',
            "\x7f\u200b\u0301x\\u{41}",
            (1, 62),
        ),
        # read by the standard library (a lone surrogate, a -0, an exponent): no position
        (b'{"t":"\\ud800","a":1,"a":2}', "a", None),
        (b'{"v":-0,"a":1,"a":2}', "a", None),
        (b'{"v":1e-7,"a":1,"a":2}', "a", None),
    ],
)
def test_every_reader_refuses_a_key_given_twice_with_one_error(
    reader: str, text: bytes, key: str, where: tuple[int, int] | None
) -> None:
    from pymedplum._serialization import DuplicateKeyError

    if reader != "decode_exact" and where is None and b"ud800" not in text:
        # jiter reads it first (the second read, for the -0, happens only for valid text): an
        # exponent form is read by the standard library only in decode_exact.
        where = (1, 19 if b"-0" in text else 21)
    with pytest.raises(DuplicateKeyError) as info:
        _reader(reader)(text)
    error = info.value
    assert isinstance(error, ValueError)  # as any other invalid JSON
    assert error.key == key
    assert (error.line, error.column) == (where or (None, None))
    position = f" at line {where[0]} column {where[1]}" if where else ""
    assert str(error) == f"Detected duplicate key {json.dumps(key, ensure_ascii=False)}{position}"


def test_a_long_key_given_twice_is_named_by_its_start() -> None:
    import pickle

    from pymedplum._serialization import DuplicateKeyError, decode_json

    key = "k" * 500
    with pytest.raises(DuplicateKeyError) as info:
        decode_json(json.dumps({key: 1}).replace("}", f',"{key}":2}}').encode())
    assert info.value.key == key
    assert str(info.value) == f'Detected duplicate key "{"k" * 64}..." at line 1 column 1011'
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.key, copy.line, copy.column, str(copy)) == (
        key, 1, 1011, str(info.value)
    )  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":1.50,"b":[0.1,2,-3.25e2],"c":{"d":1E+21}}',
        b'{"a":1.0E-7 }',
        b"[1e5]",
        b"1e5",
        b'{"a":"Base64 Type-2 1e5 x","b":72.50}',  # exponent-like text in strings only
        b'{"a":"code 4e5","b":"1e5,2","c":2.50}',
        b'{"a":-0,"b":-0.0,"c":[0,-1]}',
        b"-0",  # the text's end closes a number as a comma does: "1e5" above
        b'{"a":"\\ud83d","b":1.5}',
        b'{"deep":' + b"[" * 300 + b"1.5" + b"]" * 300 + b"}",
    ],
)
def test_decode_exact_reads_every_number_as_before(text: bytes) -> None:
    # Read by jiter when it can (no -0, no exponent form), else by the standard library: the
    # same values and types either way, those of the standard library's exact reading.
    from pymedplum._serialization import decode_exact, exact_decimal, keep_negative_zero

    expected = json.loads(text, parse_float=exact_decimal, parse_int=keep_negative_zero)
    got = decode_exact(text)
    assert got == expected
    assert _types(got) == _types(expected)
    assert repr(got) == repr(expected)


@pytest.mark.parametrize(
    ("text", "by_jiter"),
    [
        (b'{"a":1.50,"id":"4e5f0c1a-7d2b-4c1e-9a3f-2b1c0d9e8f7a"}', True),
        (b'{"a":"Base64 Type-2 x","b":72.50}', True),
        (b'{"div":"LOINC 9270-0 = x","b":[1,-1]}', True),
        (b'{"a":1.5e5}', False),
        (b'{"a":[-0]}', False),
        (b'{"a":"1e5,2"}', False),  # the price of a fast search: read again, correctly
    ],
)
def test_decode_exact_reads_with_jiter_unless_a_number_could_change(
    monkeypatch: pytest.MonkeyPatch, text: bytes, by_jiter: bool
) -> None:
    # The searches must not send ordinary FHIR text (UUIDs, narratives) to the slow reader,
    # nor let an exponent form or a -0 through to jiter (which would change its text).
    import pymedplum._serialization as serialization

    second: list[bytes | str] = []
    stdlib = serialization.parse_json_stdlib

    def recording(content: bytes | str, **options: Any) -> Any:
        second.append(content)
        return stdlib(content, **options)

    monkeypatch.setattr(serialization, "parse_json_stdlib", recording)
    serialization.decode_exact(text)
    assert second == ([] if by_jiter else [text])


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value), getattr(value, "text", None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b'{"a":NaN}', "NaN is not a JSON value"),
        # past what json.loads reads on every supported CPython (3.13: ~10,000 levels)
        (b'{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}", "JSON nested too deeply to be read"),
        (b"{", "Expecting property name enclosed in double quotes"),
    ],
)
def test_decode_exact_refuses_what_it_refused_before(text: bytes, problem: str) -> None:
    from pymedplum._serialization import decode_exact

    with pytest.raises(ValueError, match=problem):
        decode_exact(text)


def test_an_error_body_with_a_key_twice_is_no_json() -> None:
    from pymedplum._serialization import DuplicateKeyError, json_or_none, json_or_problem

    body = b'{"resourceType":"OperationOutcome","issue":[],"issue":[{"code":"x"}]}'
    assert json_or_none(body) is None
    value, problem = json_or_problem(body)
    assert value is None and isinstance(problem, DuplicateKeyError) and problem.key == "issue"
    assert json_or_problem(b'{"a":NaN}') == ({"a": pytest.approx(float("nan"), nan_ok=True)}, None)
    assert json_or_problem(b"") == (None, None)


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


# Past what the models' walk survives: ~500 levels on CPython 3.10 and 3.11, ~1,000 on 3.12
# and 3.13 (600 levels are a valid Patient there); 20,000 is past what json.loads reads too.
WALK_DEPTH = 600 if sys.version_info < (3, 12) else 1200


@pytest.mark.parametrize("depth", [WALK_DEPTH, 20_000])
@pytest.mark.parametrize("how", ["json", "dict", "init", "assign"])
def test_an_unknown_element_nested_too_deeply_is_a_validation_error(depth: int, how: str) -> None:
    # The models walk unknown elements recursively: a bare RecursionError came out of pydantic
    # (or of the standard library's second read of the text, at 20,000 levels).
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

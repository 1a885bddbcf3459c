# Hand-written (not generated): how the generated FHIR models read and write FHIR decimals.
"""FHIR decimals and JSON numbers, for the models in :mod:`pymedplum.fhir`.

* :data:`FhirDecimal` — the annotated ``Decimal`` of every ``decimal`` element: it keeps the
  exact text it was read from (``1.50`` stays ``1.50``) and is written as a JSON number.
* :func:`read_json` and :func:`unmark_numbers` — JSON text read and written around pydantic's
  own parser and writer, which would turn ``1.50`` into ``1.5``.
* :func:`json_number` and :func:`plain_json` — the same numbers for ``json.dumps``.
* :data:`EXTRAS_SCHEMA` — the values of unknown elements, whose numbers are read the same way.

Not generated: the generated ``_primitives.Decimal`` only names :data:`FhirDecimal`; this is the
code behind it, the same for every model.
"""

from __future__ import annotations

import io
import os
from contextvars import ContextVar
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from jiter import LosslessFloat
from pydantic import GetJsonSchemaHandler, PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError, SchemaValidator, core_schema

from pymedplum._serialization import (
    LONE_SURROGATE,
    DuplicateKeyError,
    ExponentDecimal,
    NegativeZero,
    exact_decimal,
    holds_negative_zero,
    parse_json,
    parse_json_stdlib,
)

if TYPE_CHECKING:
    from pydantic.json_schema import JsonSchemaValue


# pydantic's JSON parser reads every number as a float, so "1.50" would come back as 1.5. JSON
# text is therefore read by jiter (the parser inside pydantic-core, published on its own) with
# lossless floats, which keep each number's text, and the result is validated as Python data.
# On output, a decimal whose text is not a float's repr is emitted as a marked string which
# model_dump_json turns back into a bare JSON number.

# A NUL and a per-process random tag: no string a server or user sends can carry it.
_MARK_TAG = os.urandom(6).hex()
_MARK = "\x00" + _MARK_TAG
# How pydantic writes the marked string: the opening quote, the escaped mark, the decimal's text.
_MARKED = b'"\\u0000' + _MARK_TAG.encode()
# Set while model_dump_json runs: marked strings may be emitted and a post-pass is needed.
RAW_NUMBERS: ContextVar[list[bool] | None] = ContextVar("pymedplum_raw_numbers", default=None)


def read_json(data: str | bytes | bytearray) -> Any:
    """JSON text as Python data, every non-integral number a ``LosslessFloat`` (its text).

    ``NaN`` and ``Infinity`` are not JSON (jiter accepts them by default), and neither is an
    object with a key twice (``{"gender": "male", "gender": "female"}``: a parser keeps one
    value and drops the other without a word): they raise ``ValueError`` like any other invalid
    JSON (the latter a ``DuplicateKeyError``, as every reader of server JSON in the SDK does).
    """
    if isinstance(data, str):
        data = data.encode()
    elif isinstance(data, bytearray):
        data = bytes(data)
    try:
        value = parse_json(data, floats="lossless-float")
    except DuplicateKeyError:
        raise
    except ValueError as exc:
        # jiter refuses a lone UTF-16 surrogate escape ("\ud83d", which a JavaScript server
        # writes for a string cut inside an emoji) that JSON's grammar allows: read by the
        # standard library, validation then names the element that holds it.
        try:
            return _read_again(data)
        except DuplicateKeyError:
            raise
        except ValueError:
            raise exc from None
    if holds_negative_zero(data):
        # jiter reads the integer literal -0 (valid JSON, and a valid FHIR decimal and integer)
        # as 0, so "value": -0 came back as 0. Rare (a JavaScript or Java server writes 0): such
        # text, or text that only looks like it inside a string ("x,-0"), is read again by the
        # standard library, which hands each -0 to NegativeZero. jiter read it first, so its
        # errors and nesting limit stay the ones every document gets.
        value = _read_again(data)
    return value


def _read_again(data: bytes) -> Any:
    """``data`` read by the standard library as :func:`read_json` reads it with jiter, -0 kept."""
    return parse_json_stdlib(data, exact=True)


# Pieces of unmark_numbers held before they are written out: 2048 memoryviews (~0.4 MB) were
# 0.7x more than the body at the peak of a 0.6 MB decimal-dense resource; 256 cost no time.
_FLUSH = 256


def unmark_numbers(raw: bytes) -> bytes:
    """Turn each marked decimal string (see above) back into a bare JSON number."""
    mark = raw.find(_MARKED)
    if mark < 0:
        return raw
    # Slices of a memoryview, joined once: the output is copied once (split + join copied twice
    # and was ~5x slower on a 32 MB Bundle). A decimal-dense body would hold two memoryviews
    # per decimal (~400 bytes each pair, 5.8x the body), so every _FLUSH pieces go into one
    # buffer whose getvalue() hands it over without a copy; a small body never needs one, and
    # skipping it keeps a few-decimal resource's dump ~8 % faster.
    view = memoryview(raw)
    pieces: list[memoryview | bytes] = []
    out: io.BytesIO | None = None
    start = 0
    while mark >= 0:
        pieces.append(view[start:mark])
        number = mark + len(_MARKED)
        end = raw.index(b'"', number)  # the closing quote right after the number's text
        pieces.append(view[number:end])
        start = end + 1
        mark = raw.find(_MARKED, start)
        if len(pieces) >= _FLUSH:
            out = out or io.BytesIO()
            out.write(b"".join(pieces))
            pieces.clear()
    pieces.append(view[start:])
    if out is None:
        return b"".join(pieces)
    out.write(b"".join(pieces))
    return out.getvalue()


def _validate_decimal(value: Any) -> Decimal:
    """Accept a Decimal, an int or a float (never a str or bool) for a FHIR decimal."""
    kind = type(value)
    if kind is LosslessFloat:
        return exact_decimal(str(value))
    if kind is Decimal:
        if not value.is_finite():
            raise PydanticCustomError("decimal_finite", "Input should be a finite number")
        return value  # type: ignore[no-any-return]
    if kind is float:
        if value != value or value in _INFINITIES:
            raise PydanticCustomError("decimal_finite", "Input should be a finite number")
        # repr gives the shortest text that reads back as this float: the literal a user typed.
        return Decimal(repr(value))
    if kind is int:
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise PydanticCustomError("decimal_finite", "Input should be a finite number")
        return value
    if kind is NegativeZero:
        return Decimal("-0")
    if kind is str:  # the usual way to write exact digits in Python: say which type keeps them
        raise PydanticCustomError(
            "decimal_type",
            "Input should be a JSON number (FHIR decimal), not str; "
            "for exact digits pass decimal.Decimal(text)",
        )
    raise PydanticCustomError(
        "decimal_type",
        "Input should be a JSON number (FHIR decimal), not {type}",
        {"type": kind.__name__},
    )


def _text_and_number(value: Decimal) -> tuple[str, int | float]:
    """A decimal's JSON text and the plain number nearest to it: an int for integral text
    ("6", or a Decimal built from int 6), else a float."""
    if type(value) is ExponentDecimal:
        text = value.text
    elif type(value) is Decimal:
        # str() is ~3x faster than format(value, "f") and gives the same text unless it
        # switches to an exponent ("0E-7" for "0.0000000", "1E+2"): then "f" keeps the digits.
        text = str(value)
        if "E" in text:
            text = format(value, "f")
    else:  # a subclass of the user's: its own formatting, as before
        text = format(value, "f")
    if "." not in text and "E" not in text and "e" not in text:
        try:
            return text, int(text)
        except ValueError:  # NaN or Infinity, assigned without validation
            raise ValueError(f"a FHIR decimal is a finite number, not {text}") from None
    return text, float(text)


_INFINITIES = (float("inf"), float("-inf"))


def _serialize_decimal(value: Decimal) -> Any:
    """JSON-mode output of a decimal: int or float when exact, else marked text (see above)."""
    if type(value) is Decimal:
        # The common case inline (a Python call per decimal written is most of a decimal-heavy
        # resource's dump): plain text with a fraction, "4.5" or "1.50".
        text = str(value)
        if "." in text and "E" not in text:
            number: int | float = float(text)
            return number if repr(number) == text else _marked(value, text, number)
    if not isinstance(value, Decimal):
        value = _assigned_decimal(value)
    text, number = _text_and_number(value)
    # A float is written by pydantic's own formatter, which agrees with repr only without an
    # exponent: repr's "1e-07" and "1e-05" come out as "1e-7" and "0.00001". So exponent text
    # always takes the marked path.
    if type(number) is int:
        # An int cannot write -0 (Decimal("-0"), read from the JSON literal -0).
        return _marked(value, text, number) if text[0] == "-" and number == 0 else number
    if repr(number) == text and "e" not in text and "E" not in text:
        return number
    return _marked(value, text, number)


def _assigned_decimal(value: object) -> Decimal:
    """A decimal element's value assigned without validation (``quantity.value = 1.5``),
    read as validation would: ``format(1.5, "f")`` wrote it as 1.500000, and 1e-7 as 0.000000.
    """
    try:
        return _validate_decimal(value)
    except PydanticCustomError as exc:  # a str, a bool, NaN: say what, not "format code 'f'"
        raise ValueError(f"a FHIR decimal was assigned a wrong value: {exc.message()}") from None


def _marked(value: Decimal, text: str, number: float) -> Any:
    """A decimal that a float would not write as ``text``: marked text in model_dump_json."""
    flag = RAW_NUMBERS.get()
    if flag is not None:
        flag[0] = True
        return _MARK + text
    # model_dump(mode="json") and JSON written by other serializers (a TypeAdapter, FastAPI):
    # a JSON number, never a string (pydantic writes a Decimal as one, which no FHIR reader
    # accepts). Beyond a float's 17 digits it is rounded: to_fhir_json and model_dump_json keep
    # every digit (docs/models.md). Beyond a float's range (1e400) the float is infinite, which
    # pydantic would write as null: such a number is integral, and an int holds it exactly.
    if number in _INFINITIES:
        return int(value)
    return number


def json_number(value: Decimal) -> int | float | Decimal:
    """A decimal as the number ``json.dumps`` writes: an int when it was integral text, a float
    when the float's shortest text has the same value (``1.50`` -> 1.5), else the Decimal itself
    (``66.899999999999991``, whose float writes ``66.89999999999999``), so that no digit is lost."""
    _, number = _text_and_number(value)
    if type(number) is int or Decimal(repr(number)) == value:
        return number
    return value


def plain_json(value: Any) -> Any:
    """A python-mode dump of a model made JSON-ready: each Decimal as :func:`json_number`."""
    kind = type(value)
    if kind is dict:
        return {k: plain_json(v) for k, v in value.items()}
    if kind is list:
        return [plain_json(v) for v in value]
    if isinstance(value, Decimal):
        return json_number(value)
    return value


class _NumberJsonSchema:
    """A decimal's JSON schema is ``{"type": "number"}`` in both modes: in serialization mode
    (FastAPI's response models) pydantic would describe the serializer's return, which is Any."""

    __slots__ = ()

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "number"}


FhirDecimal = Annotated[
    Decimal,
    PlainValidator(_validate_decimal, json_schema_input_type=float),
    PlainSerializer(_serialize_decimal, when_used="json"),
    _NumberJsonSchema(),
]
"""A FHIR ``decimal``: a ``Decimal`` that keeps the exact text it was read from."""


def _serialize_json_value(value: Any) -> Any:
    """JSON-mode output of an unknown element: Decimals inside it are written as numbers."""
    if isinstance(value, Decimal):
        return _serialize_decimal(value)
    if isinstance(value, dict):
        return {k: _serialize_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):  # a tuple is a JSON array too (pydantic writes it so)
        return [_serialize_json_value(v) for v in value]
    return value


def _validate_extra(value: Any) -> Any:
    """An unknown element: JSON numbers read losslessly become ``Decimal`` (see decimals).

    NaN and infinities are refused, as in a decimal: they are not JSON, and pydantic would
    write a float one back as null (they get here from Python data, or from JSON text read by
    pydantic's own parser when a model sits inside the user's model or a TypeAdapter).
    """
    kind = type(value)
    if kind is str:
        if LONE_SURROGATE.search(value) is not None:
            # Refused as pydantic refuses one in a known element: UTF-8 cannot write it back.
            raise PydanticCustomError(
                "string_unicode",
                "Input should be a valid string, unable to parse raw data as a unicode string",
            )
        return value
    if kind is LosslessFloat:
        return exact_decimal(str(value))
    if kind is NegativeZero:
        return Decimal("-0")
    if kind is dict:
        return {_validate_extra(k): _validate_extra(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_validate_extra(v) for v in value]
    if kind is float:
        if value != value or value in _INFINITIES:
            raise PydanticCustomError("finite_number", "Input should be a finite number")
    elif isinstance(value, Decimal) and not value.is_finite():
        raise PydanticCustomError("finite_number", "Input should be a finite number")
    return value


EXTRAS_SCHEMA = core_schema.no_info_after_validator_function(
    _validate_extra,
    core_schema.any_schema(),
    serialization=core_schema.plain_serializer_function_ser_schema(
        _serialize_json_value, when_used="json"
    ),
)


EXTRA_VALIDATOR = SchemaValidator(EXTRAS_SCHEMA)

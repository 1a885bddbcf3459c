# Hand-written (not generated): the base class and runtime helpers of the generated FHIR models.
"""Runtime support for the generated models in :mod:`pymedplum.fhir`.

What lives here, and why it is not generated:

* :class:`FHIRModel` — the pydantic base of every model: an instance stores only the elements
  present (unknown ones included, kept and written back), both Python and FHIR JSON names are
  accepted, and JSON in/out keeps the exact text of FHIR ``decimal`` values (``1.50`` stays
  ``1.50``, written as a JSON number).
* :data:`FhirDecimal` — the annotated ``Decimal`` used for every ``decimal`` element.
* :func:`dispatch_resource` — validates a ``Resource``-typed field (``contained``,
  ``Bundle.entry.resource``, ...) into the concrete model named by its ``resourceType``, importing
  that model's module only when it is first needed.
* :class:`ResourceBase` — the Medplum metadata properties every resource exposes.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import importlib
import io
import os
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from decimal import Decimal
from types import UnionType
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Optional,
    Union,
    cast,
    get_args,
    get_origin,
)

import jiter
from jiter import LosslessFloat
from pydantic import (
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    PlainValidator,
)
from pydantic.warnings import PydanticDeprecatedSince20
from pydantic_core import (
    PydanticCustomError,
    SchemaValidator,
    ValidationError,
    core_schema,
)

from pymedplum._serialization import LONE_SURROGATE, ExponentDecimal, decode_exact, exact_decimal

if TYPE_CHECKING:
    from pydantic.json_schema import JsonSchemaValue
    from pydantic.plugin._schema_validator import PluggableSchemaValidator
    from typing_extensions import Self

# --- decimals -------------------------------------------------------------------------------
#
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
_RAW_NUMBERS: ContextVar[list[bool] | None] = ContextVar("pymedplum_raw_numbers", default=None)


class _GCPaused:
    """Pause the cyclic GC (unless already paused) while a model tree is built.

    Building a large resource allocates many objects but no garbage cycles; with the GC on it
    would rescan the growing tree again and again (3-5x the parse time). A class rather than a
    ``@contextmanager`` generator, which cost ~2.5 us per call (3 % of a Patient's parse).
    """

    __slots__ = ("_was_enabled",)

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc_info: object) -> None:
        if self._was_enabled:
            gc.enable()


def _read_json(data: str | bytes | bytearray) -> Any:
    """JSON text as Python data, every non-integral number a ``LosslessFloat`` (its text).

    ``NaN`` and ``Infinity`` are not JSON (jiter accepts them by default): they raise
    ``ValueError`` like any other invalid JSON.
    """
    if isinstance(data, str):
        data = data.encode()
    elif isinstance(data, bytearray):
        data = bytes(data)
    try:
        return jiter.from_json(data, float_mode="lossless-float", allow_inf_nan=False)
    except ValueError as exc:
        # jiter refuses a lone UTF-16 surrogate escape ("\ud83d", which a JavaScript server
        # writes for a string cut inside an emoji) that JSON's grammar allows: read by the
        # standard library, validation then names the element that holds it.
        try:
            return decode_exact(data)
        except ValueError:
            raise exc from None


_FLUSH = 2048  # pieces of _unmark_numbers held before they are written out


def _unmark_numbers(raw: bytes) -> bytes:
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
    if type(number) is int or (repr(number) == text and "e" not in text and "E" not in text):
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
    flag = _RAW_NUMBERS.get()
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


class PrimitiveSchema:
    """``Annotated`` metadata that gives a FHIR primitive's pydantic-core schema directly.

    ``Annotated[str, PrimitiveSchema(cs.str_schema(strict=True, pattern=...))]`` checks the same
    as ``Annotated[str, Strict(), Field(pattern=...)]``, but pydantic stores it as is when a model
    class is created instead of merging field infos, and it needs no ``pydantic.types`` (together
    about a third of a cold ``from pymedplum.fhir import Patient``).
    """

    __slots__ = ("schema",)

    def __init__(self, schema: core_schema.CoreSchema) -> None:
        self.schema = schema

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return cast("core_schema.CoreSchema", dict(self.schema))  # pydantic may annotate it

    def __repr__(self) -> str:
        return f"PrimitiveSchema({self.schema!r})"


if TYPE_CHECKING:
    PrimitiveList = list
else:

    class PrimitiveList:
        """``PrimitiveList[fp.String]``: the values of a repeating primitive (``given``).

        FHIR JSON puts ``null`` in such a list where an entry has only extensions
        (``"given": ["Bob", null], "_given": [null, {"extension": [...]}]``), so at run time the
        entries may be None. Type checkers see ``list[fp.String]``: a None entry needs an
        extension in the ``_x`` list beside it, and typing every name part as optional would
        make ``given=names`` (a ``list[str]``) a type error for everyone else.
        """

        def __class_getitem__(cls, item: Any) -> Any:
            return list[Optional[item]]  # noqa: UP045  # item is an Annotated type


def fhir_alias(name: str) -> str:
    """The FHIR JSON name of a generated field: ``birth_date`` -> ``birthDate``,
    ``class_`` -> ``class``, ``birth_date_ext`` -> ``_birthDate``.

    Fields whose JSON name does not follow this rule carry explicit aliases instead; computing
    the rest here keeps ``Field(...)`` calls (and their import cost) out of the generated code.
    """
    base = name.rstrip("_")
    prefix = ""
    if base.endswith("_ext"):
        base, prefix = base[: -len("_ext")].rstrip("_"), "_"
    first, *rest = base.split("_")
    return prefix + first + "".join(part[:1].upper() + part[1:] for part in rest)


ChoiceGroups = tuple[tuple[str, frozenset[str]], ...]
"""The choice elements of a model: ``(("value", frozenset({"value_string", ...})), ...)``."""


class SharedFieldsSet(set[str]):
    """The fields set of the instances of one model class: every field name it declares.

    pydantic keeps per instance the set of fields that were given, and reads it for
    ``exclude_unset``. Here an instance stores only the elements that are present, so every
    field in its ``__dict__`` was given, and one read-only set of the class's field names serves
    all its instances (a set per instance would cost about a third of a parsed bundle's
    memory). Instances with unknown elements get a set of their own; pydantic's setters are
    preceded by ``FHIRModel._thaw``, which also gives the instance a set of its own.
    """

    __slots__ = ()

    def _read_only(self) -> TypeError:
        return TypeError("a model's shared fields set is read-only; assign the field instead")

    def add(self, element: str) -> None:
        raise self._read_only()

    def discard(self, element: object) -> None:
        raise self._read_only()

    def remove(self, element: str) -> None:
        raise self._read_only()

    def update(self, *others: Any) -> None:
        raise self._read_only()

    def clear(self) -> None:
        raise self._read_only()

    def pop(self) -> str:
        raise self._read_only()


_Parts = tuple[dict[str, Any], None, set[str]]


NullPairs = tuple[tuple[str, str], ...]
"""Repeating primitives and their ``_x`` lists: ``(("given", "given_ext"), ...)``."""


def _model_parts(
    fields: SharedFieldsSet, groups: ChoiceGroups, null_pairs: NullPairs = ()
) -> Callable[[dict[str, Any]], _Parts]:
    """The function that hands a validated dict to pydantic-core as a model's parts.

    pydantic-core stores the three parts as the instance ``__dict__`` (the present elements,
    unknown ones under their JSON name), ``__pydantic_extra__`` (unused: extras are in
    ``__dict__``) and ``__pydantic_fields_set__``. A model with choice elements also checks
    here that at most one type of each is set, and one with repeating primitives that a null
    entry has an ``_x`` entry (its extensions) beside it.
    """

    def parts(values: dict[str, Any]) -> _Parts:
        return values, None, fields if fields.issuperset(values) else set(values)

    if not groups and not null_pairs:
        return parts

    def parts_checked(values: dict[str, Any]) -> _Parts:
        for element, choice in groups:
            present = choice.intersection(values)
            if len(present) > 1:
                given = sorted(f for f in present if values[f] is not None)
                if len(given) > 1:
                    raise _choice_error(element, given)
        for name, ext_name in null_pairs:
            entries = values.get(name)
            if entries is not None and None in entries:
                _check_null_entries(name, entries, values.get(ext_name))
        return values, None, fields if fields.issuperset(values) else set(values)

    return parts_checked


def _fields_set_of_present(parts: _Parts) -> _Parts:
    """``parts`` whose fields set names every element present, after a deprecated post
    ``@root_validator`` added some (pydantic's wrapper leaves the set as it was, so
    ``exclude_unset`` dropped them once the instance had a set of its own: unknown elements)."""
    values, extra, fields_set = parts
    if type(fields_set) is SharedFieldsSet and fields_set.issuperset(values):
        return parts
    return values, extra, set(values)


def _choice_error(element: str, names: list[str], advice: str = "") -> PydanticCustomError:
    """The ``fhir_choice`` error: more than one type of ``element[x]`` (``names``) is set."""
    return PydanticCustomError(
        "fhir_choice",
        "At most one of {element}[x] may be set, got {fields}" + advice,
        {"element": element, "fields": ", ".join(fhir_alias(f) for f in names)},
    )


def _check_null_entries(name: str, entries: list[Any], extensions: Any) -> None:
    """A JSON null in a repeating primitive stands for an entry that has only extensions:
    the ``_x`` list must hold them at the same position."""
    for index, entry in enumerate(entries):
        if entry is None and (
            not isinstance(extensions, list)
            or index >= len(extensions)
            or extensions[index] is None
        ):
            alias = fhir_alias(name)
            error = PydanticCustomError(
                "fhir_null_entry",
                "{element}[{index}] is null but _{element}[{index}] has no extensions for it",
                {"element": alias, "index": index},
            )
            # Raised as a ValidationError so that its loc goes down to the entry
            # (("name", 0, "given", 1), as for any other bad entry); pydantic-core prefixes the
            # location of the model being validated.
            raise ValidationError.from_exception_data(
                "FHIR", [{"type": error, "loc": (alias, index), "input": None}]
            )


def _null_pairs(model: type[BaseModel]) -> NullPairs:
    """The repeating primitives of ``model`` that have an ``_x`` list (see PrimitiveList)."""
    fields = model.__pydantic_fields__
    pairs = []
    for name, field in fields.items():
        ext_name = name.rstrip("_") + "_ext"
        if ext_name in fields and get_origin(_without_none(field.annotation)) is list:
            pairs.append((name, ext_name))
    return tuple(pairs)


class _ClassCache:
    """What assignment looks up per model class, computed on first use."""

    __slots__ = ("element_validators", "null_pair_of", "python_names")

    def __init__(self) -> None:
        self.python_names: dict[str, str] | None = None
        self.null_pair_of: dict[str, tuple[str, str]] | None = None
        self.element_validators: dict[str, SchemaValidator] = {}


# id(model class) -> its cache. Keyed by id, with the entry dropped when its class is collected:
# a dict keyed by the class itself kept every subclass a program made alive for good.
_CLASS_CACHES: dict[int, _ClassCache] = {}


def _new_class_cache(cls: type[BaseModel]) -> _ClassCache:
    """The cache of ``cls``, made on its first use. Readers inline the lookup,
    ``_CLASS_CACHES.get(id(cls)) or _new_class_cache(cls)``: an assignment reads it up to
    three times, and a call each time cost ~0.1 µs."""
    cache = _CLASS_CACHES[id(cls)] = _ClassCache()
    weakref.finalize(cls, _CLASS_CACHES.pop, id(cls), None)
    return cache


def _null_pair_of(cls: type[BaseModel], name: str) -> tuple[str, str] | None:
    """The null pair (see :func:`_null_pairs`) that ``name`` of ``cls`` belongs to, if any."""
    cache = _CLASS_CACHES.get(id(cls)) or _new_class_cache(cls)
    pairs = cache.null_pair_of  # {element: (repeating primitive, its _x list)}, both names
    if pairs is None:
        pairs = cache.null_pair_of = {}
        for pair in _null_pairs(cls):
            pairs[pair[0]] = pairs[pair[1]] = pair
    return pairs.get(name)


def _without_none(annotation: Any) -> Any:
    """``X`` of ``X | None``."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    return (
        args[0] if get_origin(annotation) in (UnionType, Union) and len(args) == 1 else annotation
    )


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


_EXTRAS_SCHEMA = core_schema.no_info_after_validator_function(
    _validate_extra,
    core_schema.any_schema(),
    serialization=core_schema.plain_serializer_function_ser_schema(
        _serialize_json_value, when_used="json"
    ),
)


_EXTRA_VALIDATOR = SchemaValidator(_EXTRAS_SCHEMA)


def _validated_extra(cls: type[BaseModel], name: str, value: Any) -> Any:
    """An unknown element assigned, checked as when it is read (a NaN is no JSON: pydantic would
    write it as null), and a tuple made the list it is written as."""
    try:
        return _EXTRA_VALIDATOR.validate_python(value)
    except ValidationError as exc:
        raise _name_expected_models(exc, cls, {name: value}, (name,)) from None


def _list_only(schema: dict[str, Any]) -> dict[str, Any]:
    """A repeating element takes a list, not any iterable (pydantic's lax default).

    A model is iterable (its ``(name, value)`` pairs), so ``Patient(name=HumanName(...))`` failed
    as ``name.0: Input should be a valid dictionary``; now it is ``name: Input should be a valid
    list``. Tuples and generators are refused the same way, as type checkers refuse them.
    """
    if schema["type"] == "list":
        return {**schema, "strict": True}
    if schema["type"] == "nullable" and schema["schema"]["type"] == "list":
        return {**schema, "schema": {**schema["schema"], "strict": True}}
    return schema


def _present_only(
    model_schema: dict[str, Any],
    field_names: SharedFieldsSet,
    groups: ChoiceGroups,
    first: tuple[str, ...] = (),
    null_pairs: NullPairs = (),
) -> None:
    """Rewrite a model's core schema so that an instance stores only the elements present.

    pydantic's own model schema puts every declared field into the instance ``__dict__``
    (Extension declares 72, a few are set) and builds a fields set per instance. A typed-dict
    schema with the same fields keeps only what the input holds, unknown elements included, so
    parsing does work in proportion to the data and a model is about as small as its JSON dict.
    Absent fields still read as None (``FHIRModel.__getattr__``).

    The instance dict (and so the JSON output) follows the schema's field order; ``first`` names
    fields moved to the front (a resource's ``resourceType``, which FHIR JSON writes first).
    """
    # A subclass's model_validator(mode="before") (or a deprecated @root_validator) wraps the
    # fields' schema inside the model's (model -> function-before -> model-fields): the storage
    # goes under it, or the model would keep pydantic's own (every field stored, absent ones
    # written as null). The parts it hands on have the model-fields' shape.
    holder: dict[str, Any] = model_schema
    inner = holder["schema"]
    post_validators = False
    while inner.get("type") in ("function-before", "function-after"):
        post_validators = post_validators or inner["type"] == "function-after"
        holder, inner = inner, inner["schema"]
    if inner.get("type") != "model-fields":
        return  # already rewritten (pydantic reuses a built class's schema)
    if inner.get("computed_fields"):
        # pydantic-core reads a typed dict's computed fields from the dict, not the model: they
        # would fail to serialize (or, before, be left out without a word).
        names = ", ".join(field["property_name"] for field in inner["computed_fields"])
        raise TypeError(
            f"{model_schema['cls'].__name__}: @computed_field ({names}) is not supported on FHIR"
            " models; use a plain @property, or add the value in a @model_serializer"
        )
    fields: dict[str, core_schema.TypedDictField] = {}
    for name, spec in inner["fields"].items():
        schema = spec["schema"]
        required = True
        if schema["type"] == "default":
            required = False
            if schema.get("default") is None:
                # Absent stays absent, rather than stored as None. A field_serializer (of a
                # user's subclass) sits on the default schema: it moves with the value's.
                serializer = schema.get("serialization")
                schema = schema["schema"]
                if serializer is not None:
                    schema = {**schema, "serialization": serializer}
            elif name in first:
                # resourceType is always written: its serializer knows no default, so that
                # exclude_defaults=True cannot drop it (its default is its only valid value).
                schema = {**schema, "serialization": core_schema.simple_ser_schema("str")}
        fields[name] = core_schema.typed_dict_field(
            _list_only(schema),
            required=required,
            validation_alias=spec.get("validation_alias"),
            serialization_alias=spec.get("serialization_alias"),
            # Field(exclude=..., exclude_if=..., description=...) of a user's subclass.
            serialization_exclude=spec.get("serialization_exclude"),
            serialization_exclude_if=spec.get("serialization_exclude_if"),
            metadata=spec.get("metadata"),
        )
    fields = {**{name: fields[name] for name in first if name in fields}, **fields}
    # A typed-dict schema reads no settings from its parent: it gets the model's own.
    config = model_schema.get("config", {})
    # Unknown elements are kept (FHIRModel's extra="allow"), unless a user's subclass says
    # extra="forbid" or "ignore".
    extra = config.get("extra_fields_behavior", "allow")
    typed_dict = core_schema.typed_dict_schema(
        fields,
        extra_behavior=extra,
        extras_schema=_EXTRAS_SCHEMA if extra == "allow" else None,
        total=False,
        config=cast("core_schema.CoreConfig", config),
    )
    parts = _model_parts(field_names, groups, null_pairs)
    holder["schema"] = core_schema.no_info_after_validator_function(parts, typed_dict)
    if post_validators:
        # A post @root_validator edits the dict after the fields set was taken from it.
        model_schema["schema"] = core_schema.no_info_after_validator_function(
            _fields_set_of_present, model_schema["schema"]
        )
    # Extras live in __dict__ now: pydantic-core must not look for __pydantic_extra__.
    model_schema["config"] = {**config, "extra_fields_behavior": "ignore"}


def _share_definitions(schema: core_schema.CoreSchema) -> None:
    """Hand each model built inside ``schema`` its own schema, so that later builds reuse it.

    Models are deferred (``defer_build``): building Patient generates the schemas of the
    datatypes it refers to (Extension refers to all of them) inline, and pydantic keeps them
    only on Patient. Every other resource type would generate them all again on first use
    (~50 ms each; a searchset of 20 types: about a second). pydantic reuses a referenced model's
    schema when the class holds one, so each datatype (and backbone element) still without one
    gets a schema made of this build's definitions. The class stays deferred: its validator is
    built from that schema the first time it validates by itself.
    """
    if schema.get("type") != "definitions":
        return
    definitions = cast("core_schema.DefinitionsSchema", schema)["definitions"]
    for definition in definitions:
        model_cls = definition.get("cls") if definition["type"] == "model" else None
        if (
            isinstance(model_cls, type)
            and issubclass(model_cls, FHIRModel)
            # A deferred class holds a placeholder (not a dict) until it is built.
            and not isinstance(model_cls.__dict__.get("__pydantic_core_schema__"), dict)
        ):
            model_cls.__pydantic_core_schema__ = core_schema.definitions_schema(
                core_schema.definition_reference_schema(definition["ref"]), definitions
            )


def _python_names(cls: type[BaseModel]) -> dict[str, str]:
    """{FHIR JSON name: Python name} of the fields of ``cls`` whose names differ."""
    cache = _CLASS_CACHES.get(id(cls)) or _new_class_cache(cls)
    names = cache.python_names
    if names is None:
        names = cache.python_names = {}
        for name, field in cls.__pydantic_fields__.items():
            alias = field.validation_alias if isinstance(field.validation_alias, str) else None
            alias = alias or field.alias or fhir_alias(name)
            if alias != name:
                names[alias] = name
    return names


def _frozen(cls: type[BaseModel], name: str) -> bool:
    """Whether pydantic refuses to change ``name`` (a user's subclass with ``frozen=True``)."""
    field = cls.__pydantic_fields__.get(name)
    return bool(cls.model_config.get("frozen")) or (field is not None and bool(field.frozen))


# pydantic-core's own error types; any other type in a ValidationError is a custom one.
_ERROR_TYPES = frozenset(get_args(core_schema.ErrorType))


def _expected_model(
    cls: type[BaseModel], loc: tuple[int | str, ...], data: Any = None
) -> type[BaseModel] | None:
    """The model class a field at ``loc`` of ``cls`` holds, if it holds one.

    ``data`` is the input validated (walked along ``loc``): below a Resource-typed element
    (``contained``, ``Bundle.entry.resource``) the class is the one its ``resourceType`` names.
    """
    annotation: Any = cls
    node = data
    for part in loc:
        annotation = _without_none(annotation)
        if get_origin(annotation) is Annotated:
            if any(isinstance(m, ResourceField) for m in get_args(annotation)[1:]):
                annotation = _resource_model(node)
            else:
                annotation = get_args(annotation)[0]
        if isinstance(part, int):
            if get_origin(annotation) is not list:
                return None
            annotation = get_args(annotation)[0]
            node = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
            continue
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        fields = annotation.__pydantic_fields__
        name = part if part in fields else _python_names(annotation).get(part)
        if name is None:
            return None
        annotation = fields[name].annotation
        node = node.get(part) if isinstance(node, dict) else getattr(node, name, None)
    annotation = _without_none(annotation)
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]  # a Resource-typed element itself: any resource
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _resource_model(value: Any) -> Any:
    """The model a Resource-typed element holding ``value`` validated it with (or None)."""
    if isinstance(value, ResourceBase):
        return type(value)
    resource_type = value.get("resourceType") if isinstance(value, dict) else None
    if not isinstance(resource_type, str):
        return None
    # An unknown type is kept as a generic Resource (see dispatch_resource).
    return _resource_class(resource_type) or _resource_class("Resource")


def _name_expected_models(
    exc: ValidationError, cls: type[BaseModel], data: Any, prefix: tuple[int | str, ...] = ()
) -> ValidationError:
    """``exc`` with "Input should be a valid dictionary" made pydantic's usual "... or instance
    of Reference" where the field holds a model, plus ", not Patient" for a model of another class.

    A model's storage is validated as a typed dict (see :func:`_present_only`), whose error for
    any other input names no class: confusing for the common ``Observation(subject=patient)``.
    Runs only once validation has failed; every other error is kept as it was. ``data`` is the
    input that failed (see :func:`_expected_model`); ``prefix`` is put before each location (an
    element validated on its own, see :meth:`FHIRModel._assign_element`).
    """
    details = exc.errors(include_url=False)
    if not prefix and not any(e["type"] == "dict_type" for e in details):
        return exc
    rebuilt: list[Any] = []
    for error in details:
        loc = prefix + tuple(error["loc"])
        given = error["input"]
        expected = _expected_model(cls, loc, data) if error["type"] == "dict_type" else None
        if expected is not None and isinstance(given, BaseModel):
            kind: Any = PydanticCustomError(
                "model_type",
                "Input should be a valid dictionary or instance of {class_name}, not {given}",
                {"class_name": expected.__name__, "given": type(given).__name__},
            )
            detail = {"type": kind, "loc": loc, "input": given}
        elif expected is not None:
            ctx = {"class_name": expected.__name__}
            detail = {"type": "model_type", "loc": loc, "input": given, "ctx": ctx}
        else:
            detail = {**_same_error(error), "loc": loc}
        rebuilt.append(detail)
    return ValidationError.from_exception_data(
        cls.__name__, rebuilt, hide_input=bool(cls.model_config.get("hide_input_in_errors"))
    )


def _hide_input(exc: ValidationError, cls: type[BaseModel]) -> ValidationError:
    """``exc`` (raised by pydantic itself, which shows the value: ``frozen_instance``) with its
    input hidden as the model's config says (``hide_input_in_errors``: the value may be PHI)."""
    return ValidationError.from_exception_data(
        exc.title,
        [_same_error(e) for e in exc.errors(include_url=False)],
        hide_input=bool(cls.model_config.get("hide_input_in_errors")),
    )


def _same_error(error: Any) -> Any:
    """The details that raise ``error`` (from ``ValidationError.errors()``) again, unchanged.

    A custom error may reuse one of pydantic's type names with its own message (pymedplum's
    ``decimal_type``), so a known type is kept only when pydantic writes the same message.
    """
    detail: Any = {"type": error["type"], "loc": error["loc"], "input": error["input"]}
    if "ctx" in error:
        detail["ctx"] = error["ctx"]
    if error["type"] in _ERROR_TYPES:
        with contextlib.suppress(Exception):  # a ctx pydantic does not take for this type
            again = ValidationError.from_exception_data("", [detail]).errors(include_url=False)
            if again[0]["msg"] == error["msg"]:
                return detail
    detail["type"] = PydanticCustomError(error["type"], error["msg"], error.get("ctx"))
    detail.pop("ctx", None)
    return detail


def _element_validator(cls: type[BaseModel], name: str) -> SchemaValidator:
    """The validator of one element of ``cls``: its schema in the model's storage (the same
    checks as when the model is validated), with only the definitions it refers to."""
    validators = (_CLASS_CACHES.get(id(cls)) or _new_class_cache(cls)).element_validators
    validator = validators.get(name)
    if validator is None:
        if not cls.__pydantic_complete__:
            cls.model_rebuild()  # deferred schema: build it now
        schema: Any = cls.__pydantic_core_schema__
        definitions: dict[str, Any] = {}
        if schema["type"] == "definitions":
            definitions = {d["ref"]: d for d in schema["definitions"]}
            schema = schema["schema"]
        # definitions -> model (or a subclass's model_validator around it) -> parts -> typed dict
        while schema["type"] != "typed-dict":
            if schema["type"] == "definition-ref":
                schema = definitions[schema["schema_ref"]]
            else:
                schema = schema["schema"]
        element = schema["fields"][name]["schema"]
        needed = _referenced(element, definitions)
        if needed:
            element = core_schema.definitions_schema(element, [definitions[r] for r in needed])
        validator = validators[name] = SchemaValidator(element, schema.get("config"))
    return validator


def _referenced(schema: Any, definitions: dict[str, Any]) -> list[str]:
    """The definitions ``schema`` refers to, directly or through other definitions."""
    found: dict[str, None] = {}
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("schema_ref") if node.get("type") == "definition-ref" else None
            if ref is not None and ref not in found:
                found[ref] = None
                pending.append(definitions[ref])
            pending.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            pending.extend(v for v in node if isinstance(v, (dict, list)))
    return list(found)


class FHIRModel(BaseModel):
    """Base of every generated FHIR model (datatypes, backbone elements and resources).

    An instance's ``__dict__`` holds the elements that are present, by Python name, and unknown
    elements by their JSON name (see :func:`_present_only`); an absent element reads as None.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(
        extra="allow",
        alias_generator=fhir_alias,
        # Python names as well as the FHIR aliases; validate_by_name (not the older
        # populate_by_name) also lets the pydantic mypy plugin check required elements.
        validate_by_name=True,
        serialize_by_alias=True,
        defer_build=True,
        protected_namespaces=(),
        # Server data is PHI: a ValidationError names the element path (loc) and the problem,
        # never the offending value, so it is safe to log.
        hide_input_in_errors=True,
        # An assigned value is checked (only that element: see _assign_element), as when the
        # model is built: a wrong code or date is refused where it is made, and a dict becomes
        # its model, rather than being written out as it is.
        validate_assignment=True,
    )

    # The choice elements ("value[x]") of this model, checked at validation (generated).
    __fhir_choices__: ClassVar[ChoiceGroups] = ()

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        # A recursive model (Extension holds Extensions) comes back as a reference, and a
        # subclass's model_validator wraps the model schema in a function schema.
        model = handler.resolve_ref_schema(schema)
        while model.get("type", "").startswith("function-") and "schema" in model:
            model = handler.resolve_ref_schema(model["schema"])
        if model.get("type") == "model" and model.get("cls") is cls:
            field_names = SharedFieldsSet(cls.__pydantic_fields__)
            # resourceType is declared by each concrete resource, after the inherited elements.
            first = ("resource_type",) if issubclass(cls, ResourceBase) else ()
            _present_only(
                cast("dict[str, Any]", model),
                field_names,
                cls.__fhir_choices__,
                first,
                _null_pairs(cls),
            )
        return schema

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Runs before pydantic collects the new class's fields. A user's subclass inherits the
        # fields of its generated bases; one whose annotation is still a forward reference
        # ("list[Extension]" of Element, which its module defines before Extension) would be
        # resolved in the subclass's module, where the name is unknown (class MyName(HumanName)
        # failed with "not fully defined" unless HumanName had been used before) or another
        # type. Completing the base first resolves it in its own module; the subclass then
        # inherits the resolved field (and reuses the base's schema).
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith(_PACKAGE + "."):
            return  # generated: resolved in their own modules
        for base in reversed(cls.__mro__[1:]):
            if (
                issubclass(base, FHIRModel)
                and base.__module__.startswith(_PACKAGE + ".")
                and not getattr(base, "__pydantic_fields_complete__", False)
            ):
                base.model_rebuild(_parent_namespace_depth=0)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # pydantic gives a frozen subclass a hash of every declared field, an absent one as a
        # placeholder: FrozenPatient(id="a", active=None) == FrozenPatient(id="a") (the same FHIR
        # content, see __eq__) but their hashes differed. A __hash__ of the user's own is kept.
        hash_func = cls.__dict__.get("__hash__")
        if getattr(hash_func, "__qualname__", "").startswith("make_hash_func."):
            # setattr: an assignment would make type checkers infer __hash__ from it.
            setattr(cls, "__hash__", FHIRModel._content_hash)  # noqa: B010

    def _content_hash(self) -> int:
        """The hash of a frozen subclass: of the elements that are present and not None."""
        known = type(self).__pydantic_fields__
        return hash(
            frozenset((k, v) for k, v in self.__dict__.items() if v is not None and k in known)
        )

    @classmethod
    def __pydantic_on_complete__(cls) -> None:
        # pydantic calls this once the class is built (since 2.12; pymedplum needs 2.13).
        _share_definitions(cls.__pydantic_core_schema__)

    def _thaw(self) -> None:
        # The fields set may be the class's shared one (see SharedFieldsSet); pydantic's setters
        # add to it, so it becomes a set of the present elements before the first change.
        if type(self.__pydantic_fields_set__) is SharedFieldsSet:
            object.__setattr__(self, "__pydantic_fields_set__", set(self.__dict__))

    def _fields_set_copy(self) -> set[str]:
        fields_set = self.__pydantic_fields_set__
        return fields_set if type(fields_set) is SharedFieldsSet else set(fields_set)

    @property
    def model_fields_set(self) -> set[str]:
        """The names of the elements that are present (unknown elements included)."""
        fields_set = self.__pydantic_fields_set__
        return set(self.__dict__) if type(fields_set) is SharedFieldsSet else set(fields_set)

    @property
    def model_extra(self) -> dict[str, Any] | None:
        """The unknown elements, by their JSON name."""
        known = type(self).__pydantic_fields__
        return {k: v for k, v in self.__dict__.items() if k not in known}

    def __setattr__(self, name: str, value: Any) -> None:
        self._thaw()
        cls = type(self)
        fields = cls.__pydantic_fields__
        if name not in fields:
            name = _python_names(cls).get(name, name)  # birthDate -> birth_date
        if name in fields:
            if cls.model_config.get("validate_assignment") and not _frozen(cls, name):
                self._assign_validated(name, value)
            else:
                self._pydantic_setattr(name, value)
        elif (
            name.startswith("_")
            and name not in self.__dict__
            and name not in cls.__private_attributes__
            and not hasattr(cls, name)
        ):
            # An undeclared private name: pydantic keeps it as a plain attribute, outside the
            # model's data. Here __dict__ is the data (it would be written as an unknown element
            # and sent to the server), so it goes beside the declared private attributes.
            private = self.__pydantic_private__
            if private is None:
                object.__setattr__(self, "__pydantic_private__", {name: value})
            else:
                private[name] = value
        elif name.startswith("_") or hasattr(cls, name) or _frozen(cls, name):
            self._pydantic_setattr(name, value)  # pydantic's own (a private name, or it refuses)
        elif cls.model_config.get("extra") != "allow":
            # pydantic's own refusal, which it would reach only after trying to validate the
            # assignment (a TypeError for the typed-dict storage).
            raise ValueError(f'"{cls.__name__}" object has no field "{name}"')
        else:  # an unknown element: kept beside the others, written back under this name
            if cls.model_config.get("validate_assignment"):
                value = _validated_extra(cls, name, value)
            self.__dict__[name] = value
            self.__pydantic_fields_set__.add(name)

    def _assign_validated(self, name: str, value: Any) -> None:
        """``validate_assignment=True`` (the default): pydantic-core cannot validate an
        assignment to the typed-dict storage, so it is done here. Nested models are taken as
        they are; errors name the field; a failed assignment changes nothing."""
        cls = type(self)
        decorators = cls.__pydantic_decorators__
        if not (
            decorators.model_validators or decorators.field_validators or decorators.validators
        ):
            self._assign_element(name, value)
            return
        # A subclass with validators of its own: the model validated with the new value, as
        # pydantic does it, so that they run.
        if value is not None:
            # First, so that the error names the element and says what to do, as below (the
            # whole model's choice check would give an error at the model, without advice).
            self._check_choice(name, value)
        values = dict(self.__dict__)
        values[name] = value
        try:
            validated = type(self).__pydantic_validator__.validate_python(values)
        except ValidationError as exc:
            raise _name_expected_models(exc, type(self), values) from None
        object.__setattr__(self, "__dict__", validated.__dict__)
        if type(self.__pydantic_fields_set__) is not SharedFieldsSet:
            self.__pydantic_fields_set__.add(name)

    def _assign_element(self, name: str, value: Any) -> None:
        """Validate the one element assigned (not the whole model, which would cost as much as
        parsing it), then check its choice group."""
        cls = type(self)
        try:
            value = _element_validator(cls, name).validate_python(value)
        except ValidationError as exc:
            raise _name_expected_models(exc, cls, {name: value}, (name,)) from None
        if value is not None:
            self._check_choice(name, value)
        pair = _null_pair_of(cls, name)
        if pair is not None:
            self._check_null_pair(pair, name, value)
        self.__dict__[name] = value
        if type(self.__pydantic_fields_set__) is not SharedFieldsSet:
            self.__pydantic_fields_set__.add(name)

    def _check_choice(self, name: str, value: Any) -> None:
        """Setting ``name`` must leave at most one type of its choice element (value[x]) set."""
        for element, choice in type(self).__fhir_choices__:
            if name in choice:
                others = sorted(f for f in choice if f != name and self.__dict__.get(f) is not None)
                if others:
                    error = _choice_error(element, [*others, name], "; delete the other first")
                    raise ValidationError.from_exception_data(
                        type(self).__name__,
                        [{"type": error, "loc": (name,), "input": value}],
                        hide_input=True,
                    )

    def _check_null_pair(self, pair: tuple[str, str], name: str, value: Any) -> None:
        """A null entry of a repeating primitive (``given``) needs its extensions at the same
        position of the ``_x`` list (``given_ext``), with either of them assigned; the model's
        validation checks this (see :func:`_check_null_entries`), an element's alone cannot."""
        list_name, ext_name = pair
        entries = value if name == list_name else self.__dict__.get(list_name)
        if entries is None or None not in entries:
            return
        extensions = value if name == ext_name else self.__dict__.get(ext_name)
        try:
            _check_null_entries(list_name, entries, extensions)
        except ValidationError as exc:
            [error] = exc.errors(include_url=False)
            # The entry in the list assigned; the _x list as a whole (it may be None).
            loc = (name, *error["loc"][1:]) if name == list_name else (name,)
            hint = "assign the extensions first" if name == list_name else "remove the nulls first"
            kind = PydanticCustomError(
                "fhir_null_entry", "{message}; {hint}", {"message": error["msg"], "hint": hint}
            )
            raise ValidationError.from_exception_data(
                type(self).__name__, [{"type": kind, "loc": loc, "input": value}], hide_input=True
            ) from None

    def _pydantic_setattr(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:  # frozen_instance, which pydantic raises showing the value
            raise _hide_input(exc, type(self)) from None

    def __delattr__(self, name: str) -> None:
        private = self.__pydantic_private__
        if private is not None and name in private and name not in self.__private_attributes__:
            del private[name]  # an undeclared private name (see __setattr__)
            return
        if name not in self.__dict__:
            name = _python_names(type(self)).get(name, name)
        if name in self.__dict__ and not _frozen(type(self), name):
            cls = type(self)
            field = cls.__pydantic_fields__.get(name)
            if (
                field is not None
                and field.is_required()
                and cls.model_config.get("validate_assignment")
            ):
                # A required element (1..1) cannot be absent: the model would write JSON that
                # reading refuses, and read None for a type that says it is never None.
                raise ValidationError.from_exception_data(
                    cls.__name__,
                    [{"type": "missing", "loc": (name,), "input": None}],
                    hide_input=True,
                )
            self._thaw()
            del self.__dict__[name]
            self.__pydantic_fields_set__.discard(name)
            return
        try:
            super().__delattr__(name)
        except ValidationError as exc:
            raise _hide_input(exc, type(self)) from None

    @classmethod
    def _assemble(
        cls, values: dict[str, Any], fields_set: set[str], private: dict[str, Any] | None
    ) -> Self:
        """An instance with this storage, not validated (copies and model_construct)."""
        instance = cls.__new__(cls)
        object.__setattr__(instance, "__dict__", values)
        object.__setattr__(instance, "__pydantic_extra__", None)
        object.__setattr__(instance, "__pydantic_fields_set__", fields_set)
        object.__setattr__(instance, "__pydantic_private__", private)
        return instance

    def __copy__(self) -> Self:
        private = self.__pydantic_private__
        return self._assemble(
            dict(self.__dict__),
            self._fields_set_copy(),
            None if private is None else dict(private),
        )

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        return self._assemble(
            copy.deepcopy(self.__dict__, memo),
            self._fields_set_copy(),
            copy.deepcopy(self.__pydantic_private__, memo),
        )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy (deep or shallow); ``update`` values are set as given, not validated."""
        copied = self.__deepcopy__() if deep else self.__copy__()
        if update:
            names = _python_names(type(self))
            update = {names.get(key, key): value for key, value in update.items()}
            copied._thaw()
            copied.__dict__.update(update)
            copied.__pydantic_fields_set__.update(update)
        return copied

    @classmethod
    def model_construct(  # type: ignore[override]  # the mypy plugin types it per model
        cls, _fields_set: set[str] | None = None, **values: Any
    ) -> Self:
        """An instance from trusted values, not validated (FHIR JSON or Python names)."""
        fields = cls.__pydantic_fields__
        names = _python_names(cls)
        given = {
            key if key in fields else names.get(key, key): value for key, value in values.items()
        }
        stored: dict[str, Any] = {}
        if "resource_type" in fields:  # first, as validation puts it (see _present_only)
            stored["resource_type"] = given.pop("resource_type", fields["resource_type"].default)
        # The elements in the definition's order, as validation stores them (and pydantic's
        # model_construct), then the unknown ones as given: the output is in FHIR's order.
        stored.update({name: given.pop(name) for name in fields if name in given})
        stored.update(given)
        fields_set = set(stored) if _fields_set is None else set(_fields_set)
        return cls._assemble(stored, fields_set, None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BaseModel):
            return NotImplemented
        if type(self) is not type(other):
            return False
        mine, theirs = self.__dict__, other.__dict__
        if mine == theirs:
            return True
        # An element set to None and an absent one are the same FHIR content.
        return {k: v for k, v in mine.items() if v is not None} == {
            k: v for k, v in theirs.items() if v is not None
        }

    __hash__ = None  # type: ignore[assignment]  # mutable, like pydantic models

    def _json_bytes(self, **kwargs: Any) -> bytes:
        """``model_dump_json``'s text as the UTF-8 bytes pydantic-core writes: a request body
        needs bytes, and the ``str`` in between would be two more copies of it."""
        flag = [False]
        token = _RAW_NUMBERS.set(flag)
        try:
            # pydantic's model_dump_json is exactly this call plus .decode(); the bytes are
            # post-processed first (bytes operations are several times faster than str ones).
            # No GC pause here: writing JSON builds no tree (not one collection ran while the
            # 32.7 MB benchmark Bundle was written), and the pause cost 13 % of a Patient's dump.
            raw: bytes = self.__pydantic_serializer__.to_json(self, **kwargs)
        finally:
            _RAW_NUMBERS.reset(token)
        if flag[0]:
            raw = _unmark_numbers(raw)
        return raw

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        known = type(self).__pydantic_fields__
        for name, value in self.__dict__.items():
            field = known.get(name)
            if field is None or field.repr:
                yield name, value

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # An element that is not present reads as None.
            if name in type(self).__pydantic_fields__:
                return None
            if name.startswith("_") and not name.startswith("__"):
                # An undeclared private name (see __setattr__).
                try:
                    private = object.__getattribute__(self, "__pydantic_private__")
                except AttributeError:  # not set yet (an instance being built or unpickled)
                    private = None
                if private is not None and name in private:
                    return private[name]
            return super().__getattr__(name)

    # Hidden from type checkers, which see pydantic's own signatures (every keyword, typed): these
    # take the same keywords and pass them on unchanged, whatever the pydantic release.
    if not TYPE_CHECKING:

        def __init__(self, /, **data: Any) -> None:
            try:
                super().__init__(**data)
            except ValidationError as exc:
                raise _name_expected_models(exc, type(self), data) from None

        # Marked as pydantic's own __init__: otherwise pydantic-core would call this Python
        # function for every nested model it validates (and a subclass's after-validators twice).
        __init__.__pydantic_base_init__ = True

        @classmethod
        def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
            """Validate a FHIR JSON dict (as ``json.loads`` gives it) or a model instance."""
            with _GCPaused():
                try:
                    return super().model_validate(obj, **kwargs)
                except ValidationError as exc:
                    raise _name_expected_models(exc, cls, obj) from None

        @classmethod
        def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
            """Validate FHIR JSON text, keeping the exact text of every decimal."""
            if not isinstance(json_data, (str, bytes, bytearray)):
                # pydantic's json_type error
                return super().model_validate_json(json_data, **kwargs)
            with _GCPaused():
                try:
                    data = _read_json(json_data)
                except ValueError as exc:
                    # pydantic's own error for bad JSON text (json_invalid), raised here: pydantic's
                    # parser would accept NaN and Infinity, which are not JSON.
                    raise ValidationError.from_exception_data(
                        cls.__name__,
                        [
                            {
                                "type": "json_invalid",
                                "loc": (),
                                "input": "",
                                "ctx": {"error": str(exc)},
                            }
                        ],
                        input_type="json",
                        hide_input=True,
                    ) from None
                try:
                    return super().model_validate(data, **kwargs)
                except ValidationError as exc:
                    raise _name_expected_models(exc, cls, data) from None

        def model_dump_json(self, **kwargs: Any) -> str:
            """FHIR JSON text; decimals are written as the exact number text they hold."""
            return self._json_bytes(**kwargs).decode()

        # pydantic v1's methods, deprecated in v2, which code written for fhir.resources still
        # calls: pydantic's versions write the Python names (by_alias=False, which is not FHIR
        # JSON: "birth_date") and parse_raw reads numbers as floats ("1.50" became 1.5). These
        # are the model_* methods, with the same deprecation warning.
        def json(self, *, by_alias: bool | None = None, **kwargs: Any) -> str:
            _deprecated("json", "model_dump_json")
            return self.model_dump_json(by_alias=by_alias, **kwargs)

        def dict(self, *, by_alias: bool | None = None, **kwargs: Any) -> dict[str, Any]:
            _deprecated("dict", "model_dump")
            return self.model_dump(by_alias=by_alias, **kwargs)

        def copy(
            self,
            *,
            include: Any = None,
            exclude: Any = None,
            update: Mapping[str, Any] | None = None,
            deep: bool = False,
        ) -> Self:
            # pydantic's copy(include=...) dropped resourceType (FHIR JSON always has it) and
            # kept the old fields set (here every declared field, so exclude_unset wrote
            # nothing new): the copy keeps its resourceType, its fields set is what it holds.
            _deprecated("copy", "model_copy")
            if update:
                names = _python_names(type(self))
                update = {names.get(key, key): value for key, value in update.items()}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PydanticDeprecatedSince20)
                copied = super().copy(include=include, exclude=exclude, update=update, deep=deep)
            stored = copied.__dict__
            if "resource_type" in self.__dict__ and "resource_type" not in stored:
                stored = {"resource_type": self.__dict__["resource_type"], **stored}
                object.__setattr__(copied, "__dict__", stored)
            object.__setattr__(copied, "__pydantic_fields_set__", set(stored))
            return copied

        @classmethod
        def parse_raw(cls, b: str | bytes, **kwargs: Any) -> Self:
            if kwargs.get("content_type") not in (None, "application/json") or kwargs.get(
                "proto"
            ) not in (None, "json"):
                return super().parse_raw(b, **kwargs)  # pickle: pydantic's own
            _deprecated("parse_raw", "model_validate_json")
            if isinstance(b, bytes) and kwargs.get("encoding", "utf8") not in ("utf8", "utf-8"):
                b = b.decode(kwargs["encoding"])
            return cls.model_validate_json(b)


def _deprecated(name: str, replacement: str) -> None:
    """pydantic's deprecation warning for its v1 method ``name``, pointing at the caller."""
    warnings.warn(
        f"The `{name}` method is deprecated; use `{replacement}` instead.",
        PydanticDeprecatedSince20,
        stacklevel=3,
    )


# --- resources ---------------------------------------------------------------------------------


# The package the models live in (pymedplum.fhir, or another one `python -m codegen models` wrote).
_PACKAGE = __name__.rsplit(".", 1)[0]


# resourceType -> the validator of its model, filled as known types are first met (a Bundle
# repeats a few types). Unknown names are not cached: they come from input and would grow it.
_RESOURCE_VALIDATORS: dict[str, SchemaValidator | PluggableSchemaValidator] = {}


def _resource_class(resource_type: str) -> Any:
    """The model class for ``resource_type`` (its module imported on first use), or None."""
    registry = importlib.import_module(f"{_PACKAGE}._registry")
    module_name = registry.RESOURCE_MODULES.get(resource_type)
    if module_name is None:
        return None
    return getattr(importlib.import_module(f"{_PACKAGE}.{module_name}"), resource_type)


def _resource_validator(resource_type: str) -> SchemaValidator | PluggableSchemaValidator | None:
    """The validator of the model for ``resource_type`` (its module imported on first use)."""
    validator = _RESOURCE_VALIDATORS.get(resource_type)
    if validator is None:
        cls = _resource_class(resource_type)
        if cls is None:
            return None
        if not cls.__pydantic_complete__:
            cls.model_rebuild()  # deferred schema: build it now
        validator = _RESOURCE_VALIDATORS[resource_type] = cls.__pydantic_validator__
    return validator


def dispatch_resource(value: Any) -> Any:
    """Validate a Resource-typed element into the model for its ``resourceType``.

    An unknown ``resourceType`` is kept losslessly as a generic ``Resource`` whose other elements
    are extras, rather than rejected.
    """
    if isinstance(value, ResourceBase):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "resource_type", "Input should be a FHIR resource (a JSON object with resourceType)"
        )
    resource_type = value.get("resourceType")
    if not isinstance(resource_type, str):
        raise PydanticCustomError("resource_type", "A resource needs a string resourceType")
    # The validator itself rather than cls.model_validate: a Bundle calls this per entry.
    validator = _resource_validator(resource_type) or _resource_validator("Resource")
    if validator is None:  # pragma: no cover - the registry always has Resource
        raise PydanticCustomError(
            "resource_type", "Unknown resourceType {rt}", {"rt": resource_type}
        )
    resource = validator.validate_python(value)
    # In a generic Resource (an unknown type, or the abstract Resource and DomainResource, which
    # declare no resourceType) it is an unknown element, and extras follow the known ones: put
    # it first, as for every concrete type.
    stored = resource.__dict__
    if "resourceType" in stored and next(iter(stored)) != "resourceType":
        object.__setattr__(
            resource, "__dict__", {"resourceType": stored.pop("resourceType"), **stored}
        )
    return resource


class ResourceField:
    """``Annotated`` metadata of a ``Resource``-typed field (``AnyResource``).

    Validation dispatches on ``resourceType`` (:func:`dispatch_resource`); output is the concrete
    model's own (serialize as any). Its JSON schema is the ``Resource`` model's, in validation
    and serialization mode alike (a plain validator alone has none in serialization mode, which
    FastAPI uses for response models).
    """

    __slots__ = ()

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        resource = handler(source)
        if resource.get("type") == "definition-ref":
            # Metadata keeps the reference: pydantic inlines a definition used only once (a
            # model with one Resource field), and the schemas it then shares with other models
            # (see _share_definitions) gave their JSON schema the Resource model inline, without
            # its "$defs" entry, depending on which model was built first.
            resource = {**resource, "metadata": {"pymedplum_resource": True}}
        return core_schema.no_info_plain_validator_function(
            dispatch_resource,
            serialization=core_schema.simple_ser_schema("any"),
            json_schema_input_schema=resource,
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        resource = cast("dict[str, Any]", schema)["json_schema_input_schema"]
        return handler(resource)


def _get(obj: Any, name: str, alias: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(alias, obj.get(name))
    return getattr(obj, name, None)


class ResourceBase(FHIRModel):
    """Medplum metadata properties shared by every resource model."""

    resource_type_name: ClassVar[str] = "Resource"

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        # A concrete resource always writes its resourceType (it may be left out on input): the
        # output's schema (FastAPI's response models) says so, as OpenAPI asks of the property
        # a discriminated union of resources is told apart by.
        if handler.mode == "serialization" and "resource_type" in cls.__pydantic_fields__:
            target = handler.resolve_ref_schema(json_schema)
            properties = target.get("properties", {})
            name = next((n for n in ("resourceType", "resource_type") if n in properties), None)
            required = target.setdefault("required", [])
            if name is not None and name not in required:
                required.insert(0, name)
        return json_schema

    @property
    def medplum_accounts(self) -> list[str]:
        """Every account reference in ``meta`` (``account`` first, then ``accounts``), deduped."""
        meta = getattr(self, "meta", None)
        refs: list[str] = []
        single = _get(meta, "account", "account")
        many = _get(meta, "accounts", "accounts") or []
        for ref in [single, *many]:
            text = _get(ref, "reference", "reference")
            if isinstance(text, str) and text and text not in refs:
                refs.append(text)
        return refs

    @property
    def medplum_account(self) -> str | None:
        """The primary account reference (first of :attr:`medplum_accounts`), or None."""
        accounts = self.medplum_accounts
        return accounts[0] if accounts else None

    @property
    def medplum_author(self) -> str | None:
        """``meta.author.reference``: who created or last updated the resource."""
        ref = _get(_get(getattr(self, "meta", None), "author", "author"), "reference", "reference")
        return ref if isinstance(ref, str) else None

    @property
    def medplum_project(self) -> str | None:
        """``meta.project``: the id of the Medplum project that owns the resource."""
        project = _get(getattr(self, "meta", None), "project", "project")
        return project if isinstance(project, str) else None

    @property
    def medplum_compartment(self) -> list[Any] | None:
        """``meta.compartment``: the access-control compartments (references), or None."""
        compartment = _get(getattr(self, "meta", None), "compartment", "compartment")
        return list(compartment) if compartment is not None else None

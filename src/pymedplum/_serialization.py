"""FHIR JSON: the one place a model becomes a plain dict, a request body becomes bytes, and
a response body is decoded outside the validating models (exact decimals, or lenient)."""

from __future__ import annotations

import functools
import io
import json
import math
import re
import secrets
import typing
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, AnyStr, TypeVar

import jiter
import pydantic_core
from pydantic import BaseModel

from pymedplum._warnings import warn_caller

__all__ = [
    "DuplicateKeyError",
    "ExponentDecimal",
    "as_fhir_dict",
    "decode_exact",
    "decode_wire",
    "encode_json",
    "exact_decimal",
    "json_or_none",
    "to_fhir_json",
    "wire_dict",
]

# A Decimal in a request body is written as a JSON number with its exact text ("72.50", not 72.5
# and not the string "72.50"). json.dumps hands Decimals to `default`, which returns this marked
# string; a post-pass (only when a mark was written) unquotes it back into a number.
_NUMBER_MARK = "\x00fhir-number:"
# The mark carries a random token per body, so that a caller's string that happens to look
# like one is never turned into a number.
_MARKED_NUMBER = re.compile(r'"\\u0000fhir-number:([0-9a-f]{16}):([-+0-9.eE]+)"')
# encode_json writes the elements of the top two levels of dicts and lists one by one.
_SPLIT_DEPTH = 2
# About how many characters encode_json encodes at once (a run of a list's elements).
_PIECE = 1 << 14


class ExponentDecimal(Decimal):
    """A decimal that remembers the exact text it was read from ("1e-7", "0.0000001").

    ``Decimal`` would write ``1e-7`` back as ``1E-7`` and ``0.0000001`` as ``1E-7``; FHIR JSON
    must get the text it was given. The models use it for exponent forms, request bodies for
    every number they carry.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> ExponentDecimal:
        self = super().__new__(cls, text)
        self.text = text
        return self

    def __reduce__(self) -> tuple[type[ExponentDecimal], tuple[str]]:
        # Decimal pickles itself by str() ("1E-7"): rebuild from the text that was read.
        return (type(self), (self.text,))


def to_fhir_json(resource: dict[str, Any] | BaseModel) -> dict[str, Any]:
    """Normalize a resource to a FHIR-JSON dict.

    A dict is returned unchanged (the same object, not a copy). A Pydantic model is
    dumped with ``by_alias=True, exclude_none=True`` so field names are FHIR's camelCase and
    unset elements are left out. A FHIR ``decimal`` becomes an ``int`` or ``float`` when one
    holds its value, and stays a ``Decimal`` when none does (``66.899999999999991``: its float
    gives back ``66.89999999999999``).

    Raises:
        TypeError: ``resource`` is neither a dict nor a Pydantic model.

    Example:
        >>> to_fhir_json({"resourceType": "Patient"})
        {'resourceType': 'Patient'}
    """
    return as_fhir_dict(resource, "resource")


_T = TypeVar("_T")

# pydantic's serializer warning quotes the unexpected value (PHI, for a patient's name).
_WARNED_INPUT = re.compile(r"input_value=.*?, input_type=", re.DOTALL)


def dump_quietly(dump: Callable[..., _T], **kwargs: Any) -> _T:
    """``dump(**kwargs)`` (a model's ``model_dump`` or ``model_dump_json``) with pydantic's
    warning about a value of the wrong type re-issued without the value.

    A dict appended to ``patient.name`` is seen by no validation; pydantic writes it as it is
    and warns, quoting it, and warnings end up in logs (the models' errors never show values).
    Used where the SDK writes a model itself (request bodies, ``to_fhir_json``): pydantic's
    ``warnings="error"`` costs ~2 us a call (a str argument), nothing beside a request, too much
    for every ``model_dump_json``, which keeps pydantic's own behaviour.
    """
    try:
        return dump(warnings="error", **kwargs)
    except pydantic_core.PydanticSerializationError as exc:
        text = str(exc)
        if "PydanticSerializationUnexpectedValue" not in text:
            raise
        warn_caller(
            _WARNED_INPUT.sub("input_type=", text)
            + "\n  (a value put inside a list or dict element is not validated: assign the"
            " element again, e.g. patient.name = patient.name, to validate it)"
        )
        return dump(warnings=False, **kwargs)


def as_fhir_dict(value: object, argument: str) -> dict[str, Any]:
    """``to_fhir_json`` for internal callers: the TypeError names *their* argument."""
    if isinstance(value, dict):
        return value
    if isinstance(value, BaseModel):
        # Imported here, as everywhere in this module: the models' runtime imports this module
        # (fhir/_decimals.py), and a client that sends only dicts never loads the runtime.
        from pymedplum.fhir._base import FHIRModel
        from pymedplum.fhir._decimals import plain_json

        if isinstance(value, FHIRModel):
            # Python mode keeps each decimal a Decimal; plain_json turns it into the int or
            # float that holds its value, and keeps the Decimal when none does (no digit lost,
            # where mode="json" would round it).
            fhir: dict[str, Any] = plain_json(
                dump_quietly(value.model_dump, by_alias=True, exclude_none=True)
            )
            return fhir
        dumped: dict[str, Any] = dump_quietly(
            value.model_dump, mode="json", by_alias=True, exclude_none=True
        )
        return dumped
    raise TypeError(f"{argument} must be a dict or a pydantic model, got {type(value).__name__}")


def wire_dict(model: BaseModel) -> dict[str, Any]:
    """A model as the FHIR-JSON dict the client sends: decimals stay ``Decimal`` with their text.

    ``to_fhir_json`` gives plain Python numbers (``1.50`` becomes the float ``1.5``); a request
    body must not lose ``1.50``'s trailing zero, so the client goes through the model's own
    lossless JSON instead.
    """
    data: dict[str, Any] = decode_wire(
        dump_quietly(model.model_dump_json, by_alias=True, exclude_none=True)
    )
    return data


def decode_wire(content: bytes | str) -> Any:
    """JSON of a request body as Python data that :func:`encode_json` writes back unchanged:
    every number with a fraction or exponent an ``ExponentDecimal`` keeping its text ("1e-7",
    "1.50"; a plain Decimal would be written back by ``str()``, 0.0000001 as 1E-7), and the
    integer literal ``-0`` one too (an int would write it as ``0``)."""
    if not holds_negative_zero(content):
        return json.loads(content, parse_float=ExponentDecimal)
    return json.loads(content, parse_float=ExponentDecimal, parse_int=_int_keeping_negative_zero)


# The integer literal -0 (which json.loads and jiter read as the int 0), which only whitespace,
# ',', ']', '}' or the text's end can follow. A literal first is what keeps the search fast
# (~7 ms on 20 MB, where jiter takes ~500 ms; a pattern starting with a class of the preceding
# ':', '[' or ',' took 70 ms); the byte before it is checked for each match (see
# holds_negative_zero).
_NEGATIVE_ZERO = re.compile(rb"-0(?=[\s,\]}]|\Z)")
_NEGATIVE_ZERO_TEXT = re.compile(r"-0(?=[\s,\]}]|\Z)")


def holds_negative_zero(content: bytes | str) -> bool:
    """Whether JSON text may hold the number ``-0``: a match of the literal that follows ':',
    '[' or ',' (whitespace between), where a value starts. Text inside a string matches the
    literal often ("LOINC 9270-0 = ...", "GMT-0 "), and each such text was read a second time
    (+50 % on the benchmark Bundle, whose narratives hold a few); a string whose "-0 " follows
    one of those three is rare, and costs only the second read."""
    if isinstance(content, str):
        return _any_at_value_start(
            content, _NEGATIVE_ZERO_TEXT.finditer(content), (":", "[", ",", "")
        )
    return _any_at_value_start(content, _NEGATIVE_ZERO.finditer(content), (b":", b"[", b",", b""))


def _any_at_value_start(
    content: AnyStr, matches: Iterator[re.Match[AnyStr]], value_start: tuple[AnyStr, ...]
) -> bool:
    """Whether one of ``matches`` follows one of ``value_start`` (whitespace between; the
    empty one stands for the text's start)."""
    for match in matches:
        # A bounded look back (64 characters all blank: taken as a value, read again).
        before = content[max(0, match.start() - 64) : match.start()].rstrip()
        if before[-1:] in value_start:
            return True
    return False


def _int_keeping_negative_zero(text: str) -> int | ExponentDecimal:
    return ExponentDecimal(text) if text == "-0" else int(text)


class Deferred:
    """A request body part built only when :func:`encode_json` writes it (``build()``), so that
    the parts of a large body are not all held at once (the stamped resources of a batch)."""

    __slots__ = ("build",)

    def __init__(self, build: Callable[[], Any]) -> None:
        self.build = build


class ModelList(list[Any]):
    """A list element of a model (a Bundle's entries, an Observation's components) that
    :func:`encode_json` writes in runs of elements, each run written by the model's own
    serializer (:meth:`run_json`), and each :class:`Deferred` built as it is reached (a Bundle
    model's stamped entries). The model's JSON is neither dumped into a dict tree that is then
    encoded again (a whole Bundle's tree is ~7x its JSON) nor held whole while its decimals
    are unmarked; the bytes are those the model writes (the same serializer, the same list)."""

    __slots__ = ("_holder", "_name", "_prefix")
    _holder: BaseModel
    _name: str
    _prefix: bytes

    def __init__(self, items: Iterable[Any], like: ModelList | tuple[BaseModel, str, str]) -> None:
        """``items``, written as element ``name`` (JSON ``key``) of ``model`` (``like``), or as
        the ModelList ``like``'s elements are."""
        super().__init__(items)
        if isinstance(like, ModelList):
            self._holder, self._name, self._prefix = like._holder, like._name, like._prefix
        else:
            model, self._name, key = like
            # A copy of the model holding only this element (a copy: the model is not changed).
            self._holder = model.model_copy()
            self._holder.__dict__.clear()
            self._prefix = b'{"' + key.encode() + b'":['

    def as_written(self, item: Any) -> Any:
        """``item`` as it is; or, a model of another class than the one the element declares
        for its items (a subclass, stored as it is), the dict of the JSON the model writes for
        it. The model writes it by the declared class, not by its own (a subclass's excluded
        elements are written, its own ones not): a stamped batch reading the item itself sent
        what the model's JSON does not hold."""
        if not isinstance(item, BaseModel) or type(item) is _item_class(
            type(self._holder), self._name
        ):
            return item
        return decode_wire(bytes(self.run_json([item])))

    def run_json(self, run: list[Any]) -> memoryview:
        """The JSON of the elements ``run``, comma-separated, as the model writes them."""
        self._holder.__dict__[self._name] = run
        try:
            raw = model_json_bytes(self._holder)  # {"key":[...]}
        finally:
            self._holder.__dict__.clear()
        return memoryview(raw)[len(self._prefix) : -2]  # not a copy


@functools.cache
def _item_class(cls: type[BaseModel], name: str) -> Any:
    """The class ``cls`` declares for the items of its list element ``name`` (``list[X] |
    None``: X), or None."""
    annotation = cls.__pydantic_fields__[name].annotation
    for arg in typing.get_args(annotation) or (annotation,):
        if typing.get_origin(arg) is list:
            return typing.get_args(arg)[0]
    return None


# A model's list of at least this many elements is written in runs (a ModelList): below it,
# one pydantic call for the whole model is faster and holds little.
_MODEL_RUN = 64


def model_parts(model: BaseModel, min_length: int = _MODEL_RUN) -> dict[str, Any] | None:
    """A FHIR model's JSON as a dict holding each of its lists of ``min_length`` models or more
    as a :class:`ModelList`; None when it has none (or its class has serializers of its own,
    which could write the list otherwise).

    :func:`encode_json` writes such a dict in pieces: a large model's JSON (a 5,000-entry
    Bundle, an Observation with 5,000 components) is not held twice while its decimals are
    unmarked, nor as a dict tree.
    """
    # First, as it rules out most models (a small one costs ~0.5 us here, 7 us to write).
    lists = [
        name
        for name, value in model.__dict__.items()
        if type(value) is list and len(value) >= min_length
    ]
    if not lists:
        return None
    cls = type(model)
    # Elements the class writes as they are, holding models only: a dict put into a list
    # unvalidated is written by pydantic its own way ("1.50" as a string), which is kept.
    keys = {
        name: key
        for name in lists
        if (key := element_key(cls, name)) is not None
        and all(isinstance(item, BaseModel) for item in model.__dict__[name])
    }
    if not keys:
        return None
    # The other elements as wire_dict gives them; each list in its place, emptied then filled.
    data = wire_dict(model.model_copy(update={name: [] for name in keys}))
    for name, key in keys.items():
        data[key] = ModelList(model.__dict__[name], (model, name, key))
    return data


def writes_as_stored(cls: type[BaseModel]) -> bool:
    """Whether ``cls`` is a FHIR model class writing its stored elements by their own
    serializers: no serializers of its own (a user's subclass may add some), nor its own
    ``model_dump_json``."""
    from pymedplum.fhir._base import FHIRModel

    if not issubclass(cls, FHIRModel) or cls.model_dump_json is not FHIRModel.model_dump_json:
        return False
    decorators = cls.__pydantic_decorators__
    return not (decorators.model_serializers or decorators.field_serializers)


def element_key(cls: type[BaseModel], name: str) -> str | None:
    """The JSON key under which FHIR model class ``cls`` writes its declared element ``name``
    as the element's own serializer writes it; None when the class may write it otherwise (it
    is no FHIR model, or it has serializers of its own), or not at all.

    Used where a copy of a model written in part (a :class:`ModelList`'s runs) or with an
    element replaced (``accounts=``'s meta) must give the bytes of the model, or of its dict,
    written whole.
    """
    if not writes_as_stored(cls):
        return None
    field = cls.__pydantic_fields__.get(name)
    # Not declared (an unknown element); written by a serializer of its own (PlainSerializer
    # metadata); or left out of the JSON (a subclass's Field(exclude=True) or exclude_if): the
    # holder of a run of such a list wrote no list, and the run nothing ("[,]" was sent), and
    # accounts= stamped a meta the model does not write (the accounts were lost).
    if field is None or field.metadata or field.exclude or field.exclude_if is not None:
        return None
    return field.serialization_alias or field.alias or name


def model_json_bytes(model: BaseModel) -> bytes:
    """A model's FHIR JSON (by alias, no ``None`` fields) as the UTF-8 bytes of
    ``model_dump_json``; a FHIR model's without the ``str`` in between."""
    from pymedplum.fhir._base import FHIRModel

    if isinstance(model, FHIRModel) and type(model).model_dump_json is FHIRModel.model_dump_json:
        raw: bytes = dump_quietly(model._json_bytes, by_alias=True, exclude_none=True)
        return raw
    return dump_quietly(model.model_dump_json, by_alias=True, exclude_none=True).encode()


def encode_json(value: Any, name: str = "request body") -> bytes:
    """JSON bytes of a request body, encoded once; errors name its parts from ``name`` (the
    argument it came from, e.g. ``json``: ``json.valueQuantity.value is nan ...``).

    A model is written by its own FHIR JSON (by alias, no ``None`` fields). Anything else goes
    through ``json.dumps``: ``Decimal`` values become JSON numbers with their exact text, nested
    models their FHIR JSON, dates ISO text (a ``datetime`` without a time zone raises
    ``ValueError``: FHIR needs its offset); other types raise ``TypeError`` naming the type.

    The text is what one ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``
    writes, but produced piece by piece (the top two levels of dicts and lists are walked, e.g.
    a Bundle's entries encoded in runs of ~16K characters) straight into one growing bytes
    buffer: the whole body as a ``str``, its pieces and its UTF-8 copy (3.3x a 5,000-entry
    batch, 12.5x once an emoji made the ``str`` 4 bytes a character) are never held at once.
    """
    if isinstance(value, BaseModel):
        parts = model_parts(value)
        if parts is None:
            return model_json_bytes(value)
        value = parts
    # This call's own mark: a caller's string that looks like one stays a string.
    mark = f"{_NUMBER_MARK}{secrets.token_hex(8)}:"
    marked = False

    def default(obj: object) -> object:
        nonlocal marked
        if isinstance(obj, Decimal):
            if not obj.is_finite():
                raise ValueError(f"{name}: {obj} is not a JSON number")
            marked = True
            # A decimal read from text (a model's, or a wire_dict's) is written as that text.
            text = obj.text if isinstance(obj, ExponentDecimal) else str(obj)
            return mark + text
        if isinstance(obj, Deferred):
            return obj.build()
        if isinstance(obj, BaseModel):
            return wire_dict(obj)
        if isinstance(obj, datetime) and obj.utcoffset() is None:
            # Sent as is, it lacks the offset a FHIR dateTime or instant with a time must
            # carry (invalid FHIR, as the models say); guessing a zone would shift the time.
            raise ValueError(f"{name}: a datetime without a time zone")
        if isinstance(obj, (datetime, date, time)):
            return obj.isoformat()
        raise TypeError(f"{name}: a {type(obj).__name__} is not JSON serializable")

    encode = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default
    ).encode
    nonce = mark[len(_NUMBER_MARK) : -1]

    def unmark(found: re.Match[str]) -> str:
        return found[2] if found[1] == nonce else found[0]

    out = io.BytesIO()
    write = out.write

    def piece(part: Any, *, inner: bool = False) -> bytes:
        """``part`` encoded; with ``inner`` (a list's run of elements) without its brackets."""
        nonlocal marked
        marked = False
        text = encode(part)
        if marked:
            text = _MARKED_NUMBER.sub(unmark, text)
        data = (text[1:-1] if inner else text).encode()
        if not inner:
            write(data)
        return data

    def walk(part: Any, depth: int) -> None:
        kind = type(part)
        # Only plain dicts with str keys and plain lists / tuples are split: json.dumps writes
        # anything else (a subclass, a float or None key) its own way, so it gets it whole.
        if depth and part and kind is dict and all(type(key) is str for key in part):
            write(b"{")
            first = True
            for key, item in part.items():
                if not first:
                    write(b",")
                first = False
                piece(key)
                write(b":")
                walk(item, depth - 1)
            write(b"}")
        elif depth > 1 and part and (kind is list or kind is tuple):
            write(b"[")
            first = True
            for item in part:
                if not first:
                    write(b",")
                first = False
                walk(item, depth - 1)
            write(b"]")
        elif kind is ModelList:
            write(b"[")
            _write_runs(part, write, piece)
            write(b"]")
        elif depth and part and (kind is list or kind is tuple):
            # Elements written whole go in runs of about _PIECE characters: one encode call
            # per small element (a component, a coding) would cost more than the encoding.
            write(b"[")
            start, size, count = 0, 8, len(part)
            while start < count:
                text = piece(part[start : start + size], inner=True)
                if start:
                    write(b",")
                write(text)
                start += size
                size = _next_run_size(size, len(text))
            write(b"]")
        else:
            piece(part)

    try:
        walk(value, _SPLIT_DEPTH)
    except UnicodeEncodeError:
        # A piece is encoded before the next one is written: what json.dumps of the whole body
        # would have refused first (a NaN further on) is still the error reported.
        problem = _unencodable(value, name)
        if problem is not None:
            raise problem from None
        # A lone UTF-16 surrogate ("\ud83c": half an emoji, as json.loads reads a string
        # that JavaScript cut in two) is no Unicode text: say where, not "position 45".
        where = _surrogate_path(value, name) or name
        raise ValueError(
            f"{where} holds a lone UTF-16 surrogate (half of a character such as an "
            "emoji), which is not valid Unicode text and cannot be sent"
        ) from None
    except (TypeError, ValueError):
        # json's own messages name no place ("Out of range float values are not JSON
        # compliant"): say where, by path and type only (a body is often PHI).
        problem = _unencodable(value, name)
        if problem is None:
            raise
        raise problem from None
    # The buffer itself, trimmed in place (no copy: nothing else refers to it).
    return out.getvalue()


def _next_run_size(size: int, written: int) -> int:
    """How many elements the next run takes, after ``size`` elements wrote ``written``
    characters: about _PIECE characters a run, 1 to 4,096 elements."""
    return max(1, min(4096, size * _PIECE // max(written, 1)))


def _write_runs(
    items: ModelList, write: Callable[[bytes | memoryview], object], piece: Callable[[Any], object]
) -> None:
    """The elements of ``items`` (models), comma-separated, in runs of about _PIECE bytes; a
    Deferred built as it is reached, and written by ``piece`` when it gives no model (an
    entry stamped as a dict)."""
    run: list[Any] = []
    size, first = 8, True

    def flush() -> None:
        nonlocal size, first
        if run:
            data = items.run_json(run)
            if not first:
                write(b",")
            write(data)
            first = False
            size = _next_run_size(size, len(data))
            run.clear()

    for item in items:
        if type(item) is Deferred:
            item = item.build()
        if isinstance(item, BaseModel):
            run.append(item)
            if len(run) >= size:
                flush()
            continue
        flush()
        if not first:
            write(b",")
        piece(item)
        first = False
    flush()


# A lone UTF-16 surrogate (half of an emoji's pair): JSON text may escape one ("\ud83d"), UTF-8
# cannot hold one.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _leaves(value: Any, path: str, *, dump_models: bool) -> Iterator[tuple[str, Any, bool]]:
    """``(path, value, is_key)`` of each leaf of a request body, depth first, in order (the
    one walk behind the error paths of :func:`encode_json`); a model is a leaf unless
    ``dump_models``."""
    if isinstance(value, Deferred):
        value = value.build()
    if dump_models and isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True, exclude_none=True)
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"a key in {path}", key, True
            yield from _leaves(item, f"{path}.{key}", dump_models=dump_models)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]", dump_models=dump_models)
    else:
        yield path, value, False


_JSON_LEAF = (str, int, float, bool, Decimal, BaseModel, datetime, date, time, type(None))


def _unencodable(value: Any, path: str) -> TypeError | ValueError | None:
    """What :func:`encode_json` cannot write and where, as the error json.dumps raises for it
    (``ValueError: request body.valueQuantity.value is nan, which JSON cannot hold``); None when
    nothing is found (a model is written by pydantic, which reports its own errors)."""
    for where, leaf, is_key in _leaves(value, path, dump_models=False):
        if is_key:
            if not isinstance(leaf, str | int | float | bool) and leaf is not None:
                return TypeError(f"{where} is a {type(leaf).__name__}, not a str")
        elif isinstance(leaf, float) and not math.isfinite(leaf):
            return ValueError(f"{where} is {leaf!r}, which JSON cannot hold (no NaN or infinity)")
        elif isinstance(leaf, datetime) and leaf.utcoffset() is None:
            return ValueError(
                f"{where} is a datetime without a time zone, but a FHIR dateTime with a time "
                "needs an offset: give it tzinfo (e.g. tzinfo=datetime.timezone.utc), or send "
                "a str"
            )
        elif not isinstance(leaf, _JSON_LEAF):
            return TypeError(f"{where} is a {type(leaf).__name__}, which is not JSON serializable")
    return None


def _surrogate_path(value: Any, path: str) -> str | None:
    """The path (``request body.name[0].family``) of the first str holding a lone surrogate."""
    for where, leaf, _ in _leaves(value, path, dump_models=True):
        if isinstance(leaf, str) and LONE_SURROGATE.search(leaf):
            return where
    return None


def decode_exact(content: bytes | str) -> Any:
    """Decode JSON keeping every number with a fraction or exponent as a ``Decimal`` (its text
    intact), and the integer literal ``-0`` as :class:`NegativeZero`, for responses whose
    resources are validated into models afterwards.

    ``NaN`` and ``Infinity`` are not JSON: they raise ``ValueError``, as in the clients' ``_json``
    (``_async/_base_client.py``); so does an object with a key twice (:class:`DuplicateKeyError`).

    Read by jiter (``float_mode="decimal"``: ``Decimal(text)``, as :func:`exact_decimal` gives
    for a number without an exponent; with its duplicate-key check ~25 % faster than
    ``json.loads`` with ``parse_float`` on a 3 MB searchset, ~5 % with the searches below). Text
    that may hold an exponent form (kept as its text, an :class:`ExponentDecimal`) or a ``-0``
    (which jiter reads as 0), and text jiter refuses (a lone UTF-16 surrogate, nesting past its
    200 levels) are read by the standard library.
    """
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    if not (holds_negative_zero(content) or _may_hold_exponent(content)):
        try:
            return parse_json(content, floats="decimal")
        except DuplicateKeyError:
            raise
        except ValueError:
            pass  # read again below: its errors (and RecursionError) are the ones reported
    try:
        return parse_json_stdlib(content, exact=True)
    except RecursionError:
        raise ValueError(_TOO_DEEP) from None


# An exponent after the digits of a number: "1e-7", "1.0E10" (what jiter's decimal mode would
# read as Decimal("1E-7"), written back as 0.0000001). The literal first keeps the search fast
# (~3 ms for both on 3 MB, where "[0-9][eE]" took ~12 ms); a digit must come before it, and the
# exponent's digits must end where a value ends, so "Base64 " in a narrative or the "4e5" of a
# UUID are read by jiter all the same. Text holding such a number inside a string ("1e5,") is
# only read by the standard library (~1.25x what decode_exact took before the check).
_EXPONENTS = (
    re.compile(rb"e[-+]?[0-9]+(?=[\s,\]}]|\Z)"),
    re.compile(rb"E[-+]?[0-9]+(?=[\s,\]}]|\Z)"),
)


def _may_hold_exponent(content: bytes) -> bool:
    for pattern in _EXPONENTS:
        for match in pattern.finditer(content):
            if content[match.start() - 1 : match.start()].isdigit():
                return True
    return False


class NegativeZero(int):
    """The JSON integer literal ``-0`` as :func:`decode_exact` and the models read it: the int
    0, which a ``decimal`` element or an unknown element reads as ``Decimal("-0")`` (written
    back as ``-0``), and an ``integer`` element as 0 (a Python int has no negative zero)."""

    __slots__ = ()


def keep_negative_zero(text: str) -> int:
    """``parse_int`` of ``json.loads`` that reads ``-0`` as :class:`NegativeZero`."""
    return NegativeZero(0) if text == "-0" else int(text)


def exact_decimal(text: str) -> Decimal:
    """The Decimal of a JSON number's text, as the models and typed search results read it: an
    exponent form keeps its text ("1e-7" stays "1e-7"; a plain Decimal would be written back as
    0.0000001, and 1.0000000000000001e+23 as an integer)."""
    if "e" in text or "E" in text:
        return ExponentDecimal(text)
    return Decimal(text)


# The ValueError of a body nested past Python's recursion limit (json.loads: RecursionError).
_TOO_DEEP = "JSON nested too deeply to be read"


def not_json(constant: str) -> Any:
    """``parse_constant`` of ``json.loads`` that refuses ``NaN`` and ``Infinity``."""
    raise ValueError(f"{constant} is not a JSON value")


class DuplicateKeyError(ValueError):
    """JSON text with an object that gives a key twice (``{"gender": "male", "gender":
    "female"}``): every parser keeps one of the values and drops the other without a word, so
    the SDK reads such text as invalid JSON, wherever it comes from (a response body, an error
    answer, a token answer, a model's ``model_validate_json``).

    ``key`` is the key (the message shows at most its first 64 characters); ``line`` and
    ``column`` say where the value given to it the second time starts, when the parser that
    found it tells (jiter does; the standard library's rare second read does not: ``None``).
    """

    key: str
    line: int | None
    column: int | None

    def __init__(self, key: str, line: int | None = None, column: int | None = None) -> None:
        cut = key if len(key) <= _KEY_SHOWN else key[:_KEY_SHOWN] + "..."
        # As JSON writes it; escaped when it holds a lone surrogate (which no text can show).
        shown = json.dumps(cut, ensure_ascii=bool(LONE_SURROGATE.search(cut)))
        where = f" at line {line} column {column}" if line is not None else ""
        super().__init__(f"{_DUPLICATE_KEY} {shown}{where}")
        self.key, self.line, self.column = key, line, column

    def __reduce__(self) -> tuple[type[DuplicateKeyError], tuple[str, int | None, int | None]]:
        return (type(self), (self.key, self.line, self.column))


# How jiter's refusal starts (and so the message of DuplicateKeyError, which the models'
# json_invalid error and the clients' unreadable-body error quote).
_DUPLICATE_KEY = "Detected duplicate key"
_KEY_SHOWN = 64
# jiter's message: Detected duplicate key "<the key as Rust's Debug writes it>" at line L column C
_JITER_DUPLICATE = re.compile(
    r'Detected duplicate key "(.*)" at line (\d+) column (\d+)', re.DOTALL
)
# Rust's Debug escapes of a str: \" \\ \n \r \t \0 \' and \u{hex}.
_RUST_ESCAPE = re.compile(r"\\(u\{([0-9a-fA-F]+)\}|.)", re.DOTALL)
_RUST_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "0": "\0"}


def _rust_unescape(found: re.Match[str]) -> str:
    if found[2] is not None:
        return chr(int(found[2], 16))
    return _RUST_ESCAPES.get(found[1], found[1])


def parse_json(
    content: bytes,
    *,
    floats: typing.Literal["float", "decimal", "lossless-float"] = "float",
    allow_inf_nan: bool = False,
) -> Any:
    """JSON text read by jiter, every object checked for a key given twice: the one reading of
    server JSON behind the models' ``read_json``, :func:`decode_exact` and :func:`decode_json`.

    Raises :class:`DuplicateKeyError` for a key given twice, and jiter's ``ValueError`` for
    anything else it refuses (invalid JSON, ``NaN`` unless ``allow_inf_nan``, a lone UTF-16
    surrogate escape, nesting past 200 levels: the callers read the last two again with
    :func:`parse_json_stdlib`).
    """
    try:
        return jiter.from_json(
            content, allow_inf_nan=allow_inf_nan, catch_duplicate_keys=True, float_mode=floats
        )
    except ValueError as exc:
        text = str(exc)
        if not text.startswith(_DUPLICATE_KEY):
            raise
        found = _JITER_DUPLICATE.fullmatch(text)
        if found is None:  # a message jiter did not write this way before: kept whole
            raise DuplicateKeyError(text.removeprefix(_DUPLICATE_KEY).strip()) from None
        key = _RUST_ESCAPE.sub(_rust_unescape, found[1])
        raise DuplicateKeyError(key, int(found[2]), int(found[3])) from None


def parse_json_stdlib(content: bytes | str, *, exact: bool, allow_inf_nan: bool = False) -> Any:
    """JSON text read by the standard library, for what jiter refuses (a lone surrogate, deep
    nesting) or reads otherwise (``-0``, exponent forms), with the same refusal of a key given
    twice (:class:`DuplicateKeyError`, without a position). ``exact``: numbers with a fraction
    or exponent as :func:`exact_decimal` reads them, ``-0`` as :class:`NegativeZero`; else
    floats. ``NaN`` and ``Infinity`` raise ``ValueError`` unless ``allow_inf_nan``.

    ``RecursionError`` (nesting past Python's limit) is left to the caller.
    """
    constant = None if allow_inf_nan else not_json
    if exact:
        return json.loads(
            content,
            parse_float=exact_decimal,
            parse_int=keep_negative_zero,
            parse_constant=constant,
            object_pairs_hook=refuse_duplicate_keys,
        )
    return json.loads(content, parse_constant=constant, object_pairs_hook=refuse_duplicate_keys)


def refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` of ``json.loads``: the object as a dict, or
    :class:`DuplicateKeyError` naming a key it gives twice. (~25 % slower than a plain
    ``json.loads``: only for the rare texts jiter does not read.)"""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return obj


def decode_json(content: bytes, *, allow_inf_nan: bool = False) -> Any:
    """A response body's JSON as plain Python data (floats for non-integral numbers).

    ``NaN`` and ``Infinity`` are not JSON: they raise ``ValueError`` unless ``allow_inf_nan``;
    an object with a key twice raises :class:`DuplicateKeyError` (a ``ValueError``).
    """
    try:
        return parse_json(content, allow_inf_nan=allow_inf_nan)
    except DuplicateKeyError:
        raise
    except ValueError as exc:
        # jiter refuses a lone UTF-16 surrogate escape ("\ud83d"), which JSON's grammar allows
        # and a JavaScript server writes for a string cut inside an emoji: one such resource
        # made every search page holding it unreadable. The standard library reads it (the
        # rare slow path).
        try:
            return parse_json_stdlib(content, exact=False, allow_inf_nan=allow_inf_nan)
        except DuplicateKeyError:
            raise
        except (ValueError, RecursionError):
            # RecursionError: nested past Python's recursion limit (jiter stops at 200
            # levels with a ValueError, which says where); a server's answer, not a bug here.
            raise exc from None


def json_or_none(content: bytes) -> Any:
    """The JSON of a response body, or ``None`` when it is empty or not JSON (a proxy's HTML
    error page, an object with a key twice): reading an error answer must not fail on the
    body."""
    return json_or_problem(content)[0]


def json_or_problem(content: bytes) -> tuple[Any, ValueError | None]:
    """:func:`json_or_none`, with why the body is not JSON (``None`` when it is, or is empty)."""
    if not content:
        return None, None
    try:
        return decode_json(content, allow_inf_nan=True), None
    except ValueError as exc:
        return None, exc

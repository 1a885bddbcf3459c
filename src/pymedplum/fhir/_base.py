# Hand-written (not generated): the base class and runtime helpers of the generated FHIR models.
"""Runtime support for the generated models in :mod:`pymedplum.fhir`.

What lives here, and why it is not generated:

* :class:`FHIRModel` — the pydantic base of every model: unknown elements are kept
  (``extra="allow"``), both Python and FHIR JSON names are accepted, and JSON in/out keeps the
  exact text of FHIR ``decimal`` values (``1.50`` stays ``1.50``, written as a JSON number).
* :data:`FhirDecimal` — the annotated ``Decimal`` used for every ``decimal`` element.
* :func:`dispatch_resource` — validates a ``Resource``-typed field (``contained``,
  ``Bundle.entry.resource``, ...) into the concrete model named by its ``resourceType``, importing
  that model's module only when it is first needed.
* :class:`ResourceBase` — the Medplum metadata properties every resource exposes.
"""

from __future__ import annotations

import gc
import importlib
import json
import re
from contextvars import ContextVar
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from typing_extensions import Self

# --- decimals -------------------------------------------------------------------------------
#
# pydantic's JSON parser reads every number as a float, so "1.50" would come back as 1.5. The
# text is kept this way: model_validate_json takes pydantic's fast path only when every decimal
# in the text survives a float round trip (checked by one regex search); otherwise it parses with
# the standard library into Decimal values and validates those. On output, a decimal whose text
# is not a float's repr is emitted as a marked string which model_dump_json turns back into a
# bare JSON number.

# A number whose text a float would not reproduce: a fraction ending in 0 ("1.50"), an exponent,
# a tiny value (repr switches to exponent form) or 16+ significant digits. False positives (the
# pattern inside a string value) only cost the slower, still exact, path.
_RISKY_PATTERN = r"[:\[,]\s*-?(?:\d+\.\d*0(?!\d)|\d+(?:\.\d+)?[eE]|0\.0000|(?=[\d.]{17})\d+\.\d)"
_RISKY_NUMBER = re.compile(_RISKY_PATTERN.encode())
_RISKY_NUMBER_STR = re.compile(_RISKY_PATTERN)
_MARK = "\x00"
# How pydantic writes the marked string: "\u0000" then the decimal's text.
_MARKED = re.compile(r'"\\u0000(-?[0-9][0-9.Ee+-]*)"')
# Set while model_dump_json runs: marked strings may be emitted and a post-pass is needed.
_RAW_NUMBERS: ContextVar[list[bool] | None] = ContextVar("pymedplum_raw_numbers", default=None)


class ExponentDecimal(Decimal):
    """A decimal read from exponent notation ("1e-7"), remembering that exact text.

    ``Decimal`` would write it back as ``1E-7``; FHIR JSON must get the text it was given.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> ExponentDecimal:
        self = super().__new__(cls, text)
        self.text = text
        return self


def _parse_float(text: str) -> Decimal:
    """``parse_float`` of the lossless JSON path."""
    if "e" in text or "E" in text:
        return ExponentDecimal(text)
    return Decimal(text)


def _validate_decimal(value: Any) -> Decimal:
    """Accept a Decimal, an int or a float (never a str or bool) for a FHIR decimal."""
    kind = type(value)
    if kind is Decimal:
        if not value.is_finite():
            raise PydanticCustomError("decimal_finite", "Input should be a finite number")
        return value  # type: ignore[no-any-return]
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise PydanticCustomError("decimal_finite", "Input should be a finite number")
        # repr gives the shortest text that reads back as this float: the JSON text on the
        # fast path (guaranteed by _RISKY_NUMBER), the literal a user typed otherwise.
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


def _serialize_decimal(value: Decimal) -> Any:
    """JSON-mode output of a decimal: int or float when exact, else marked text (see above)."""
    # format "f" keeps the digits as read ("0.0000000"); str() would switch to "0E-7".
    text = value.text if type(value) is ExponentDecimal else format(value, "f")
    if "." not in text and "E" not in text and "e" not in text:
        return int(text)  # an integral decimal read as "6" (or built from int 6)
    as_float = float(text)
    if repr(as_float) == text:
        return as_float
    flag = _RAW_NUMBERS.get()
    if flag is not None:
        flag[0] = True
        return _MARK + text
    # model_dump(mode="json"): a float when it holds the same value ("1.50" -> 1.5), else the
    # Decimal itself so that no digits are lost (see docs/models.md).
    return as_float if Decimal(repr(as_float)) == value else value


FhirDecimal = Annotated[
    Decimal,
    PlainValidator(_validate_decimal, json_schema_input_type=float),
    PlainSerializer(_serialize_decimal, when_used="json"),
]
"""A FHIR ``decimal``: a ``Decimal`` that keeps the exact text it was read from."""


def _serialize_json_value(value: Any) -> Any:
    """JSON-mode output of an unknown element: Decimals inside it are written as numbers."""
    if isinstance(value, Decimal):
        return _serialize_decimal(value)
    if isinstance(value, dict):
        return {k: _serialize_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_serialize_json_value(v) for v in value]
    return value


# Unknown elements are kept as the JSON values they were read as.
ExtraValue = Annotated[Any, PlainSerializer(_serialize_json_value, when_used="json")]


def _needs_lossless_parse(data: str | bytes | bytearray) -> bool:
    if isinstance(data, str):
        return _RISKY_NUMBER_STR.search(data) is not None
    return _RISKY_NUMBER.search(data) is not None


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


class SharedFieldsSet(set[str]):
    """A read-only set of field names shared by every model with the same present fields.

    pydantic's serializer needs a real ``set`` for ``model_fields_set``; sharing one per
    combination saves a set per instance (a third of a parsed bundle's memory).
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


# One shared fields set per combination of present fields (bounded).
_FIELDS_SETS: dict[tuple[str, ...], SharedFieldsSet] = {}
_FIELDS_SETS_MAX = 65536


class FHIRModel(BaseModel):
    """Base of every generated FHIR model (datatypes, backbone elements and resources)."""

    model_config = ConfigDict(
        extra="allow",
        alias_generator=fhir_alias,
        populate_by_name=True,
        serialize_by_alias=True,
        defer_build=True,
        protected_namespaces=(),
        # Server data is PHI: a ValidationError names the element path (loc) and the problem,
        # never the offending value, so it is safe to log.
        hide_input_in_errors=True,
    )

    if TYPE_CHECKING:
        # Field(init=False): type checkers must not take it for a constructor argument.
        __pydantic_extra__: dict[str, Any] = Field(init=False)
    else:
        # Unknown elements; typed so that decimals inside them are written as JSON numbers.
        __pydantic_extra__: dict[str, ExtraValue]

    def model_post_init(self, context: Any, /) -> None:
        """Keep only the elements that are present, and share the record of which they are.

        A FHIR type has many optional elements (Extension has 72 fields) of which a few are
        set. pydantic stores every field in the instance ``__dict__`` and a fresh set of the
        given field names per instance; dropping the unset fields and sharing one read-only set per
        combination of present fields makes a model about as small as the JSON dict it came
        from and lets the serializer skip absent fields (which still read as None, see
        ``__getattr__``). ``__setattr__`` and copies replace it by a private set when needed.
        """
        values = self.__dict__
        if None in values.values():
            values = {k: v for k, v in values.items() if v is not None}
            object.__setattr__(self, "__dict__", values)
        key = tuple(values)
        shared = _FIELDS_SETS.get(key)
        if shared is None:
            shared = SharedFieldsSet(key)
            if len(_FIELDS_SETS) < _FIELDS_SETS_MAX:
                _FIELDS_SETS[key] = shared
        object.__setattr__(self, "__pydantic_fields_set__", shared)

    def _thaw(self) -> None:
        fields_set = self.__pydantic_fields_set__
        if type(fields_set) is SharedFieldsSet:
            object.__setattr__(self, "__pydantic_fields_set__", set(fields_set))

    def __setattr__(self, name: str, value: Any) -> None:
        self._thaw()
        super().__setattr__(name, value)

    def __copy__(self) -> Self:
        copied = super().__copy__()
        copied._thaw()
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        copied = super().__deepcopy__(memo)
        copied._thaw()
        return copied

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # An element that is not present reads as None (model_post_init removed it).
            if name in type(self).__pydantic_fields__:
                return None
            return super().__getattr__(name)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """Validate a FHIR JSON dict (as ``json.loads`` gives it) or a model instance."""
        if not gc.isenabled():
            return super().model_validate(obj, **kwargs)
        gc.disable()  # see model_validate_json
        try:
            return super().model_validate(obj, **kwargs)
        finally:
            gc.enable()

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        """Validate FHIR JSON text, keeping the exact text of every decimal."""
        # Building a large resource allocates many objects but no garbage cycles; without this
        # the cyclic GC would rescan the growing tree again and again (3-5x the parse time).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            if _needs_lossless_parse(json_data):
                try:
                    data = json.loads(json_data, parse_float=_parse_float)
                except ValueError:
                    pass  # let pydantic report the JSON error in its usual form
                else:
                    return cls.model_validate(data, **kwargs)
            return super().model_validate_json(json_data, **kwargs)
        finally:
            if gc_was_enabled:
                gc.enable()

    def model_dump_json(self, **kwargs: Any) -> str:
        """FHIR JSON text; decimals are written as the exact number text they hold."""
        flag = [False]
        token = _RAW_NUMBERS.set(flag)
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            text = super().model_dump_json(**kwargs)
        finally:
            _RAW_NUMBERS.reset(token)
            if gc_was_enabled:
                gc.enable()
        if flag[0]:
            text = _MARKED.sub(r"\1", text)
        return text


# --- resources ---------------------------------------------------------------------------------


# The package the models live in (pymedplum.fhir, or another one `python -m codegen models` wrote).
_PACKAGE = __name__.rsplit(".", 1)[0]


# resourceType -> model class, filled as known types are first met (a Bundle repeats a few
# types). Unknown names are not cached: they come from input and would grow it without bound.
_RESOURCE_CLASSES: dict[str, type[FHIRModel]] = {}


def _resource_class(resource_type: str) -> type[FHIRModel] | None:
    try:
        return _RESOURCE_CLASSES[resource_type]
    except KeyError:
        pass
    registry = importlib.import_module(f"{_PACKAGE}._registry")
    module_name = registry.RESOURCE_MODULES.get(resource_type)
    cls: type[FHIRModel] | None = None
    if module_name is not None:
        module = importlib.import_module(f"{_PACKAGE}.{module_name}")
        cls = getattr(module, resource_type)
        _RESOURCE_CLASSES[resource_type] = cls
    return cls


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
    cls = _resource_class(resource_type) or _resource_class("Resource")
    if cls is None:  # pragma: no cover - the registry always has Resource
        raise PydanticCustomError(
            "resource_type", "Unknown resourceType {rt}", {"rt": resource_type}
        )
    return cls.model_validate(value)


def _get(obj: Any, name: str, alias: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(alias, obj.get(name))
    return getattr(obj, name, None)


class ResourceBase(FHIRModel):
    """Medplum metadata properties shared by every resource model."""

    resource_type_name: ClassVar[str] = "Resource"

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


def check_one_of(model: BaseModel, groups: tuple[tuple[str, frozenset[str]], ...]) -> None:
    """Raise when more than one field of a choice group (``value[x]``) is set.

    Only fields given at construction can be set, so one set intersection per group does the
    work on the hot path.
    """
    given = model.__pydantic_fields_set__
    for element, fields in groups:
        if len(fields & given) < 2:
            continue
        present = sorted(f for f in fields & given if getattr(model, f) is not None)
        if len(present) > 1:
            aliases = [type(model).model_fields[f].serialization_alias or f for f in present]
            raise PydanticCustomError(
                "fhir_choice",
                "At most one of {element}[x] may be set, got {fields}",
                {"element": element, "fields": ", ".join(aliases)},
            )

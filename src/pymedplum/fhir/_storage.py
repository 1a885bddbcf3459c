# Hand-written (not generated): how an instance of a generated FHIR model stores its elements.
"""Storage of the models in :mod:`pymedplum.fhir`: only the elements that are present.

:func:`present_only` rewrites the core schema pydantic builds for a model, so that an
instance's ``__dict__`` holds the elements present (unknown ones too) rather than every declared
field, and :class:`SharedFieldsSet` serves as the fields set of all the instances of a class.
:func:`_model_parts` hands the validated dict to pydantic-core, checking the choice and null
entry rules and the names of unknown elements on the way.

Not generated: it works on the schema pydantic builds from the generated declarations, the same
way for every model (a user's subclass included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from pydantic_core import core_schema

from ._class_cache import shadowed_names
from ._decimals import EXTRAS_SCHEMA
from ._errors import check_null_entries, choice_error, unknown_element_error
from ._fields import ChoiceGroups, NullPairs

if TYPE_CHECKING:
    from pydantic import BaseModel


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


def _model_parts(
    model_cls: type[BaseModel],
    fields: SharedFieldsSet,
    groups: ChoiceGroups,
    null_pairs: NullPairs = (),
) -> Callable[[dict[str, Any]], _Parts]:
    """The function that hands a validated dict to pydantic-core as a model's parts.

    pydantic-core stores the three parts as the instance ``__dict__`` (the present elements,
    unknown ones under their JSON name), ``__pydantic_extra__`` (unused: extras are in
    ``__dict__``) and ``__pydantic_fields_set__``. A model with choice elements also checks
    here that at most one type of each is set, and one with repeating primitives that a null
    entry has an ``_x`` entry (its extensions) beside it. An unknown element may not have the
    name of one of ``model_cls``'s methods (see :func:`._class_cache.shadowed_names`).
    """

    def _with_unknown(values: dict[str, Any]) -> set[str]:
        """The fields set of an instance with unknown elements, whose names are checked."""
        shadowed = shadowed_names(model_cls).intersection(values)
        if shadowed:
            raise unknown_element_error(min(shadowed))
        return set(values)

    def parts(values: dict[str, Any]) -> _Parts:
        return values, None, fields if fields.issuperset(values) else _with_unknown(values)

    if not groups and not null_pairs:
        return parts

    def parts_checked(values: dict[str, Any]) -> _Parts:
        for element, choice in groups:
            present = choice.intersection(values)
            if len(present) > 1:
                given = sorted(f for f in present if values[f] is not None)
                if len(given) > 1:
                    raise choice_error(element, given)
        for name, ext_name in null_pairs:
            entries = values.get(name)
            if entries is not None and None in entries:
                check_null_entries(name, entries, values.get(ext_name))
        return values, None, fields if fields.issuperset(values) else _with_unknown(values)

    return parts_checked


def _fields_set_of_present(parts: _Parts) -> _Parts:
    """``parts`` whose fields set names every element present, after a deprecated post
    ``@root_validator`` added some (pydantic's wrapper leaves the set as it was, so
    ``exclude_unset`` dropped them once the instance had a set of its own: unknown elements)."""
    values, extra, fields_set = parts
    if type(fields_set) is SharedFieldsSet and fields_set.issuperset(values):
        return parts
    return values, extra, set(values)


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


def present_only(
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
        extras_schema=EXTRAS_SCHEMA if extra == "allow" else None,
        total=False,
        config=cast("core_schema.CoreConfig", config),
    )
    parts = _model_parts(model_schema["cls"], field_names, groups, null_pairs)
    holder["schema"] = core_schema.no_info_after_validator_function(parts, typed_dict)
    if post_validators:
        # A post @root_validator edits the dict after the fields set was taken from it.
        model_schema["schema"] = core_schema.no_info_after_validator_function(
            _fields_set_of_present, model_schema["schema"]
        )
    # Extras live in __dict__ now: pydantic-core must not look for __pydantic_extra__.
    model_schema["config"] = {**config, "extra_fields_behavior": "ignore"}

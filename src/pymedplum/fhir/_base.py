# Hand-written (not generated): the base class of the generated FHIR models.
"""The base class of the generated models in :mod:`pymedplum.fhir`.

:class:`FHIRModel` is the pydantic base of every model: an instance stores only the elements
present (unknown ones included, kept and written back), both Python and FHIR JSON names are
accepted, and JSON in/out keeps the exact text of FHIR ``decimal`` values (``1.50`` stays
``1.50``, written as a JSON number).

Not generated: one class for every model. What it builds on lives beside it: decimals in
``_decimals``, field declarations in ``_fields``, the storage of present elements in ``_storage``,
per-class lookups in ``_class_cache``, errors in ``_errors``; resources (:class:`ResourceBase`,
Resource-typed fields) in ``_resources``, which builds on this module.
"""

from __future__ import annotations

import copy
import gc
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler
from pydantic.warnings import PydanticDeprecatedSince20
from pydantic_core import PydanticCustomError, ValidationError, core_schema

# Relative imports: these modules are copied into every package `python -m codegen models` writes.
from ._class_cache import element_validator, null_pair_of, python_names
from ._decimals import EXTRA_VALIDATOR, RAW_NUMBERS, read_json, unmark_numbers
from ._errors import check_null_entries, choice_error, hide_input, name_expected_models
from ._fields import ChoiceGroups, fhir_alias, null_pairs
from ._storage import SharedFieldsSet, present_only

if TYPE_CHECKING:
    from typing_extensions import Self


# The package the models live in (pymedplum.fhir, or another one `python -m codegen models` wrote).
PACKAGE = __name__.rsplit(".", 1)[0]


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


def _too_deep(cls: type[BaseModel]) -> ValidationError:
    """The ``too_deep`` error for data nested past Python's recursion limit (an unknown element
    some hundreds of levels deep), which pydantic and the JSON decoder raise as a bare
    ``RecursionError``. Imported here, when it happens: the client's module defines it."""
    from pymedplum.bundle import too_deep

    return too_deep(cls)


def _validated_extra(cls: type[BaseModel], name: str, value: Any) -> Any:
    """An unknown element assigned, checked as when it is read (a NaN is no JSON: pydantic would
    write it as null), and a tuple made the list it is written as."""
    try:
        return EXTRA_VALIDATOR.validate_python(value)
    except ValidationError as exc:
        raise name_expected_models(exc, cls, {name: value}, (name,)) from None
    except RecursionError:
        raise _too_deep(cls) from None


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


def _attribute_for(cls: type[BaseModel], name: str) -> str | None:
    """The attribute of ``cls`` that holds the element ``name`` names in FHIR JSON
    (``birthDate``, ``_birthDate``) or in fhir.resources (``birthDate__ext``), if any."""
    names = python_names(cls)
    python = names.get(name)
    if python is None and name.endswith("__ext"):
        python = names.get("_" + name.removesuffix("__ext"))
    return python if python in cls.__pydantic_fields__ else None


def _frozen(cls: type[BaseModel], name: str) -> bool:
    """Whether pydantic refuses to change ``name`` (a user's subclass with ``frozen=True``)."""
    field = cls.__pydantic_fields__.get(name)
    return bool(cls.model_config.get("frozen")) or (field is not None and bool(field.frozen))


class FHIRModel(BaseModel):
    """Base of every generated FHIR model (datatypes, backbone elements and resources).

    An instance's ``__dict__`` holds the elements that are present, by Python name, and unknown
    elements by their JSON name (see :func:`._storage.present_only`); an absent element reads as None.
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
            # Here, not at the top: _resources imports this module (ResourceBase is a FHIRModel).
            from ._resources import ResourceBase

            field_names = SharedFieldsSet(cls.__pydantic_fields__)
            # resourceType is declared by each concrete resource, after the inherited elements.
            first = ("resource_type",) if issubclass(cls, ResourceBase) else ()
            present_only(
                cast("dict[str, Any]", model),
                field_names,
                cls.__fhir_choices__,
                first,
                null_pairs(cls),
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
        if cls.__module__.startswith(PACKAGE + "."):
            return  # generated: resolved in their own modules
        for base in reversed(cls.__mro__[1:]):
            if (
                issubclass(base, FHIRModel)
                and base.__module__.startswith(PACKAGE + ".")
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

    # Hidden from type checkers, as pydantic hides its own: a visible __setattr__ makes them
    # accept an assignment to any name, so `patient.brith_date = ...` (which adds an unknown
    # element that is sent to the server) or `meta.versionId = ...` would not be flagged.
    if not TYPE_CHECKING:

        def __setattr__(self, name: str, value: Any) -> None:
            self._thaw()
            cls = type(self)
            fields = cls.__pydantic_fields__
            if name not in fields:
                name = python_names(cls).get(name, name)  # birthDate -> birth_date
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
                # An undeclared private name: pydantic keeps it as a plain attribute, outside
                # the model's data. Here __dict__ is the data (it would be written as an unknown
                # element and sent to the server), so it goes beside the declared private ones.
                private = self.__pydantic_private__
                if private is None:
                    object.__setattr__(self, "__pydantic_private__", {name: value})
                else:
                    private[name] = value
            elif name.startswith("_") or hasattr(cls, name) or _frozen(cls, name):
                # pydantic's own (a private name, or it refuses)
                self._pydantic_setattr(name, value)
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
            raise name_expected_models(exc, type(self), values) from None
        object.__setattr__(self, "__dict__", validated.__dict__)
        if type(self.__pydantic_fields_set__) is not SharedFieldsSet:
            self.__pydantic_fields_set__.add(name)

    def _assign_element(self, name: str, value: Any) -> None:
        """Validate the one element assigned (not the whole model, which would cost as much as
        parsing it), then check its choice group."""
        cls = type(self)
        try:
            value = element_validator(cls, name).validate_python(value)
        except ValidationError as exc:
            raise name_expected_models(exc, cls, {name: value}, (name,)) from None
        if value is not None:
            self._check_choice(name, value)
        pair = null_pair_of(cls, name)
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
                    error = choice_error(element, [*others, name], "; delete the other first")
                    raise ValidationError.from_exception_data(
                        type(self).__name__,
                        [{"type": error, "loc": (name,), "input": value}],
                        hide_input=True,
                    )

    def _check_null_pair(self, pair: tuple[str, str], name: str, value: Any) -> None:
        """A null entry of a repeating primitive (``given``) needs its extensions at the same
        position of the ``_x`` list (``given_ext``), with either of them assigned; the model's
        validation checks this (see :func:`._errors.check_null_entries`), an element's alone cannot."""
        list_name, ext_name = pair
        entries = value if name == list_name else self.__dict__.get(list_name)
        if entries is None or None not in entries:
            return
        extensions = value if name == ext_name else self.__dict__.get(ext_name)
        try:
            check_null_entries(list_name, entries, extensions)
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
            raise hide_input(exc, type(self)) from None

    if not TYPE_CHECKING:  # as __setattr__: `del patient.brith_date` is a type error

        def __delattr__(self, name: str) -> None:
            private = self.__pydantic_private__
            if private is not None and name in private and name not in self.__private_attributes__:
                del private[name]  # an undeclared private name (see __setattr__)
                return
            if name not in self.__dict__:
                name = python_names(type(self)).get(name, name)
            if name in self.__dict__ and not _frozen(type(self), name):
                cls = type(self)
                field = cls.__pydantic_fields__.get(name)
                if (
                    field is not None
                    and field.is_required()
                    and cls.model_config.get("validate_assignment")
                ):
                    # A required element (1..1) cannot be absent: the model would write JSON
                    # that reading refuses, and read None for a type that says it is never None.
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
                raise hide_input(exc, type(self)) from None

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
            names = python_names(type(self))
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
        names = python_names(cls)
        given = {
            key if key in fields else names.get(key, key): value for key, value in values.items()
        }
        stored: dict[str, Any] = {}
        if "resource_type" in fields:  # first, as validation puts it (see _storage.present_only)
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
        token = RAW_NUMBERS.set(flag)
        try:
            # pydantic's model_dump_json is exactly this call plus .decode(); the bytes are
            # post-processed first (bytes operations are several times faster than str ones).
            # No GC pause here: writing JSON builds no tree (not one collection ran while the
            # 32.7 MB benchmark Bundle was written), and the pause cost 13 % of a Patient's dump.
            raw: bytes = self.__pydantic_serializer__.to_json(self, **kwargs)
        finally:
            RAW_NUMBERS.reset(token)
        if flag[0]:
            raw = unmark_numbers(raw)
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
            try:
                return super().__getattr__(name)
            except AttributeError:
                python = _attribute_for(type(self), name)
                if python is None:
                    raise
            # Code ported from fhir.resources, whose attributes are the FHIR names, reads
            # `patient.birthDate`: say which attribute holds the element (never its value).
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}: read the element "
                f"{name!r} as .{python} (attributes are snake_case; the constructor, "
                "assignment and model_validate also take the FHIR name)",
                name=name,
                obj=self,
            ) from None

    # Hidden from type checkers, which see pydantic's own signatures (every keyword, typed): these
    # take the same keywords and pass them on unchanged, whatever the pydantic release.
    if not TYPE_CHECKING:

        def __init__(self, /, **data: Any) -> None:
            try:
                super().__init__(**data)
            except ValidationError as exc:
                raise name_expected_models(exc, type(self), data) from None
            except RecursionError:
                raise _too_deep(type(self)) from None

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
                    raise name_expected_models(exc, cls, obj) from None
                except RecursionError:
                    raise _too_deep(cls) from None

        @classmethod
        def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
            """Validate FHIR JSON text, keeping the exact text of every decimal."""
            if not isinstance(json_data, (str, bytes, bytearray)):
                # pydantic's json_type error
                return super().model_validate_json(json_data, **kwargs)
            with _GCPaused():
                try:
                    data = read_json(json_data)
                except RecursionError:  # read again by the standard library (see read_json)
                    raise _too_deep(cls) from None
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
                    raise name_expected_models(exc, cls, data) from None
                except RecursionError:
                    raise _too_deep(cls) from None

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
                names = python_names(type(self))
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

        @classmethod
        def parse_file(cls, path: str | Path, **kwargs: Any) -> Self:
            # fhir.resources' README reads files with it; pydantic's reads numbers as floats
            # (1.50 became 1.5), as its parse_raw did. A pickle stays pydantic's own.
            path = Path(path)
            content_type = kwargs.get("content_type")
            if (
                content_type not in (None, "application/json")
                or kwargs.get("proto") not in (None, "json")
                or (content_type is None and path.suffix == ".pkl")
            ):
                return super().parse_file(path, **kwargs)
            _deprecated("parse_file", "model_validate_json")
            text: str | bytes = path.read_bytes()
            encoding = kwargs.get("encoding", "utf8")
            if encoding not in ("utf8", "utf-8"):
                text = text.decode(encoding)
            return cls.model_validate_json(text)


def _deprecated(name: str, replacement: str) -> None:
    """pydantic's deprecation warning for its v1 method ``name``, pointing at the caller."""
    warnings.warn(
        f"The `{name}` method is deprecated; use `{replacement}` instead.",
        PydanticDeprecatedSince20,
        stacklevel=3,
    )

# Hand-written (not generated): per-class lookups of the generated FHIR models.
"""What assigning to (and validating) a model of :mod:`pymedplum.fhir` looks up per class,
computed on first use.

* :func:`python_names` — the Python name of each field whose FHIR JSON name differs.
* :func:`null_pair_of` — the repeating primitive and ``_x`` list a field belongs to.
* :func:`element_validator` — the validator of one element, cut from the model's core schema.
* :func:`shadowed_names` — the names an unknown element cannot have (the model's methods').

Each class's lookups live in a :class:`_ClassCache`, dropped when the class is collected.
Not generated: they are computed from the built classes (a user's subclass included).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from pydantic_core import SchemaValidator, core_schema

from ._fields import fhir_alias, null_pairs

if TYPE_CHECKING:
    from pydantic import BaseModel


class _ClassCache:
    """What assignment (and, for ``shadowed_names``, validation) looks up per model class,
    computed on first use."""

    __slots__ = ("element_validators", "null_pair_of", "python_names", "shadowed_names")

    def __init__(self) -> None:
        self.python_names: dict[str, str] | None = None
        self.shadowed_names: frozenset[str] | None = None
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


def null_pair_of(cls: type[BaseModel], name: str) -> tuple[str, str] | None:
    """The null pair (see :func:`._fields.null_pairs`) that ``name`` of ``cls`` belongs to, if any."""
    cache = _CLASS_CACHES.get(id(cls)) or _new_class_cache(cls)
    pairs = cache.null_pair_of  # {element: (repeating primitive, its _x list)}, both names
    if pairs is None:
        pairs = cache.null_pair_of = {}
        for pair in null_pairs(cls):
            pairs[pair[0]] = pairs[pair[1]] = pair
    return pairs.get(name)


def python_names(cls: type[BaseModel]) -> dict[str, str]:
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


def shadowed_names(cls: type[BaseModel]) -> frozenset[str]:
    """The attributes of ``cls`` that an unknown element of the same name would hide.

    An instance keeps its unknown elements in its ``__dict__`` under their JSON names (see
    :func:`._storage.present_only`), and an instance attribute hides a method or any other class
    attribute that is not a data descriptor: an unknown element ``model_dump`` made
    ``to_fhir_json(model)`` fail with "'dict' object is not callable", ``_json_bytes`` broke
    ``model_dump_json``, ``__pydantic_serializer__`` every dump. Properties and slots (data
    descriptors, such as ``model_extra``) win over the instance ``__dict__``: not listed.
    """
    cache = _CLASS_CACHES.get(id(cls)) or _new_class_cache(cls)
    names = cache.shadowed_names
    if names is None:
        found = set()
        for name in dir(cls):
            for klass in cls.__mro__:
                if name in klass.__dict__:
                    kind = type(klass.__dict__[name])
                    if not (hasattr(kind, "__set__") or hasattr(kind, "__delete__")):
                        found.add(name)
                    break
        names = cache.shadowed_names = frozenset(found - set(cls.__pydantic_fields__))
    return names


def element_validator(cls: type[BaseModel], name: str) -> SchemaValidator:
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

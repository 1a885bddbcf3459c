# Hand-written (not generated): what the generated FHIR models declare their fields with.
"""The pieces the generated field declarations of :mod:`pymedplum.fhir` are written with.

* :class:`PrimitiveSchema` — the pydantic-core schema of a FHIR primitive (``_primitives.py``).
* :data:`PrimitiveList` — a repeating primitive (``given``), whose entries may be JSON nulls.
* :func:`fhir_alias` — a field's FHIR JSON name (``birth_date`` -> ``birthDate``), the models'
  alias generator.
* :data:`ChoiceGroups` and :data:`NullPairs` — the per-model tables of choice elements
  (``value[x]``) and of repeating primitives with an ``_x`` list, which validation checks;
  :func:`null_pairs` finds the latter on a built class, :func:`without_none` unwraps ``X | None``.

Not generated: the generated modules import these names; keeping them here keeps the
generated code down to declarations, and its imports cheap.
"""

from __future__ import annotations

from types import UnionType
from typing import TYPE_CHECKING, Any, Optional, Union, cast, get_args, get_origin

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

if TYPE_CHECKING:
    from pydantic import BaseModel


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


NullPairs = tuple[tuple[str, str], ...]
"""Repeating primitives and their ``_x`` lists: ``(("given", "given_ext"), ...)``."""


def null_pairs(model: type[BaseModel]) -> NullPairs:
    """The repeating primitives of ``model`` that have an ``_x`` list (see PrimitiveList)."""
    fields = model.__pydantic_fields__
    pairs = []
    for name, field in fields.items():
        ext_name = name.rstrip("_") + "_ext"
        if ext_name in fields and get_origin(without_none(field.annotation)) is list:
            pairs.append((name, ext_name))
    return tuple(pairs)


def without_none(annotation: Any) -> Any:
    """``X`` of ``X | None``."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    return (
        args[0] if get_origin(annotation) in (UnionType, Union) and len(args) == 1 else annotation
    )

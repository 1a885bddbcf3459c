# Hand-written (not generated): the validation errors of the generated FHIR models.
"""Validation errors of the models in :mod:`pymedplum.fhir`.

* :func:`choice_error` and :func:`check_null_entries` — the errors of two FHIR rules pydantic
  does not know: one type per choice element (``value[x]``), and a JSON null in a repeating
  primitive only with extensions beside it.
* :func:`name_expected_models` — a failed validation's errors with the expected model named
  (``Input should be a valid dictionary or instance of Reference``).
* :func:`hide_input` — an error of pydantic's own with its input hidden (it may be PHI).
* :func:`unknown_element_error` — an unknown element whose name would hide a method.

Not generated: the same rules and rewording for every model.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticCustomError, ValidationError, core_schema

from ._class_cache import python_names
from ._fields import fhir_alias, without_none


def choice_error(element: str, names: list[str], advice: str = "") -> PydanticCustomError:
    """The ``fhir_choice`` error: more than one type of ``element[x]`` (``names``) is set."""
    return PydanticCustomError(
        "fhir_choice",
        "At most one of {element}[x] may be set, got {fields}" + advice,
        {"element": element, "fields": ", ".join(fhir_alias(f) for f in names)},
    )


def check_null_entries(name: str, entries: list[Any], extensions: Any) -> None:
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


def unknown_element_error(name: str) -> ValidationError:
    """The error for an unknown element named like one of the model's methods (``model_dump``,
    ``copy``, ``__eq__``), which the instance could not keep without hiding the method."""
    error = PydanticCustomError(
        "fhir_unknown_element_name",
        "Unknown element {element} is not kept: its name is one of the Python model's own"
        " attributes, which it would hide (FHIR JSON names are camelCase words)",
        {"element": name},
    )
    # A ValidationError, so that its loc ends at the element (as check_null_entries does).
    return ValidationError.from_exception_data(
        "FHIR", [{"type": error, "loc": (name,), "input": None}]
    )


# pydantic-core's own error types; any other type in a ValidationError is a custom one.
_ERROR_TYPES = frozenset(get_args(core_schema.ErrorType))


def _expected_model(
    cls: type[BaseModel], loc: tuple[int | str, ...], data: Any = None
) -> type[BaseModel] | None:
    """The model class a field at ``loc`` of ``cls`` holds, if it holds one.

    ``data`` is the input validated (walked along ``loc``): below a Resource-typed element
    (``contained``, ``Bundle.entry.resource``) the class is the one its ``resourceType`` names.
    """
    # Here, not at the top: _resources imports _base, which imports this module.
    from ._resources import ResourceField, resource_model

    annotation: Any = cls
    node = data
    for part in loc:
        annotation = without_none(annotation)
        if get_origin(annotation) is Annotated:
            if any(isinstance(m, ResourceField) for m in get_args(annotation)[1:]):
                annotation = resource_model(node)
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
        name = part if part in fields else python_names(annotation).get(part)
        if name is None:
            return None
        annotation = fields[name].annotation
        node = node.get(part) if isinstance(node, dict) else getattr(node, name, None)
    annotation = without_none(annotation)
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]  # a Resource-typed element itself: any resource
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def name_expected_models(
    exc: ValidationError, cls: type[BaseModel], data: Any, prefix: tuple[int | str, ...] = ()
) -> ValidationError:
    """``exc`` with "Input should be a valid dictionary" made pydantic's usual "... or instance
    of Reference" where the field holds a model, plus ", not Patient" for a model of another class.

    A model's storage is validated as a typed dict (see :func:`._storage.present_only`), whose error for
    any other input names no class: confusing for the common ``Observation(subject=patient)``.
    Runs only once validation has failed; every other error is kept as it was. ``data`` is the
    input that failed (see :func:`_expected_model`); ``prefix`` is put before each location (an
    element validated on its own, see :meth:`._base.FHIRModel._assign_element`).
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


def hide_input(exc: ValidationError, cls: type[BaseModel]) -> ValidationError:
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

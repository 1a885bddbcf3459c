"""The path segments and URLs of a request: resource types and ids checked as path segments,
``{resourceType}/{id}`` templates filled, ``"Patient/123"`` references split, and an absolute
URL told apart from a relative path or a search query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel

from pymedplum._fhir_rules import (
    ID_RULE,
    RESOURCE_TYPE_RULE,
    describe_not_id,
    describe_not_reference,
    describe_not_type,
    is_fhir_id,
    is_relative_reference,
    is_resource_type,
)
from pymedplum._request_builders.arguments import describe_type
from pymedplum.bundle import model_resource_type


def check_resource_type(arg: str, value: object) -> str:
    """``value`` if it is a resource type name; else TypeError / ValueError naming ``arg``.

    Like :func:`check_id`, it keeps a path segment free of "/", "?", "#" and "..", so an
    argument cannot walk to another endpoint."""
    if not isinstance(value, str):
        got = describe_type(value)
        if isinstance(value, type) and issubclass(value, BaseModel):
            # read_resource(Patient, ...) with the model class: its type name is wanted.
            got += f": pass {model_resource_type(value) or value.__name__!r}"
        raise TypeError(f"{arg} must be a str, got {got}")
    if not is_resource_type(value):
        # Described, not shown, as an id is: an id or a search passed as the type is PHI.
        raise ValueError(
            f"{arg} must be {RESOURCE_TYPE_RULE} such as 'Patient', got {describe_not_type(value)}"
        )
    return value


def _resource_kind(value: object) -> str | None:
    """The resource type of a resource given as a dict or a model instance, else ``None``
    (only a resource type name: never a value from it)."""
    if isinstance(value, BaseModel):
        kind = model_resource_type(type(value))
    elif isinstance(value, Mapping):
        kind = value.get("resourceType")
    else:
        return None
    return kind if isinstance(kind, str) and is_resource_type(kind) else None


def check_id(arg: str, value: object) -> str:
    """``value`` if it is a FHIR id usable as a URL path segment; else TypeError / ValueError."""
    # Stricter than the FHIR id on purpose: "." and ".." are FHIR ids, but as a path segment
    # they would name the parent endpoint (Patient/.. is the server root).
    if not isinstance(value, str):
        kind = _resource_kind(value)
        if kind is not None:
            # read_resource("Patient", patient): the resource where its id goes.
            raise TypeError(
                f"{arg} must be a str, got a {kind} resource: pass its id, not the resource"
            )
        raise TypeError(f"{arg} must be a str, got {describe_type(value)}")
    if not is_fhir_id(value) or set(value) == {"."}:
        # Described, not shown: an MRN or a name passed as an id is PHI (see describe_not_id).
        raise ValueError(f"{arg} must be {ID_RULE}, not only dots, got {describe_not_id(value)}")
    return value


def fill_path(
    path: str,
    values: Mapping[str, str | None],
    args: Mapping[str, str],
    optional: Iterable[str] = (),
) -> str:
    """Fill ``{resourceType}``-style placeholders.

    ``args`` maps each placeholder to the argument name used in error messages. A placeholder
    in ``optional`` bound to None drops its segment; any other one bound to None is a TypeError
    (dropping it would turn ``DELETE Patient/{id}`` into a conditional delete of every Patient).
    """
    segments: list[str] = []
    for segment in path.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            key = segment[1:-1]
            value = values.get(key)
            arg = args.get(key, key)
            if value is None:
                if key in optional:
                    continue
                raise TypeError(f"{arg} is required, got None")
            if key == "resourceType":
                segments.append(check_resource_type(arg, value))
            else:
                segments.append(check_id(arg, value))
        elif segment:
            segments.append(segment)
    return "/".join(segments)


def split_reference(arg: str, reference: object) -> tuple[str, str]:
    """``"Patient/123"`` → ``("Patient", "123")``; TypeError / ValueError naming ``arg``
    otherwise."""
    if not isinstance(reference, str):
        # By type only: a resource passed here (set_accounts(patient, ...)) would put its whole
        # repr, PHI included, in the message.
        raise TypeError(
            f"{arg} must be a reference str like 'Patient/123', got {type(reference).__name__}"
        )
    if not is_relative_reference(reference):
        raise ValueError(
            f"{arg} must be a reference like 'Patient/123', got {describe_not_reference(reference)}"
        )
    resource_type, resource_id = reference.split("/")
    return check_resource_type(arg, resource_type), check_id(arg, resource_id)


def is_absolute_url(value: str) -> bool:
    """True for ``scheme://...`` and protocol-relative ``//host`` strings. A bare
    ``scheme:`` prefix is not enough: ``name:exact=Smith`` is a search query (urlsplit reads
    ``name`` as its scheme)."""
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:  # unparsable yet URL-shaped: the same-origin check will reject it
        return "://" in text
    if parts.netloc:
        return True
    return bool(parts.scheme) and text[len(parts.scheme) :].startswith("://")

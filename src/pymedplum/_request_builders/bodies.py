"""JSON request bodies: a resource argument as FHIR JSON, its required fields, the refusal to
write back a resource read as a subset (SUBSETTED; alone or in a batch's PUT entries), and the
``$graphql`` body.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from pymedplum._serialization import element_key, wire_dict, writes_as_stored


def resource_json(arg: str, resource: object) -> dict[str, Any]:
    """A resource argument as a FHIR-JSON dict (models by their lossless JSON, dicts as given)."""
    if isinstance(resource, BaseModel):
        return wire_dict(resource)
    if isinstance(resource, Mapping):
        return resource if isinstance(resource, dict) else dict(resource)
    got = type(resource).__name__
    if isinstance(resource, type) and issubclass(resource, BaseModel):
        got = f"the {resource.__name__} class itself: pass a resource, {resource.__name__}(...)"
    raise TypeError(f"{arg} must be a dict or a pydantic model, got {got}")


def require_fields(arg: str, resource: Mapping[str, Any], *fields: str) -> None:
    """Each of ``fields`` must be a non-empty str in ``resource``: ValueError when it is missing
    or empty, TypeError when it is another type (both name ``arg.field``)."""
    for field in fields:
        value = resource.get(field)
        if value is None:
            raise ValueError(f"{arg} has no {field}; a non-empty str is required here")
        if not isinstance(value, str):
            raise TypeError(f"{arg}.{field} must be a non-empty str, got {type(value).__name__}")
        if not value.strip():
            raise ValueError(f"{arg}.{field} must be a non-empty str, got {value!r}")


# FHIR tags a resource read with _summary or _elements SUBSETTED (v3 ObservationValue; Medplum
# 5 still writes the system's pre-THO URL). Writing it back replaces the stored resource with
# the subset: every element left out of the read would be erased.
_SUBSETTED_SYSTEMS = frozenset(
    {
        "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "http://hl7.org/fhir/v3/ObservationValue",
    }
)


def refuse_subsetted(arg: str, resource: Mapping[str, Any]) -> None:
    """ValueError when ``resource`` (FHIR JSON, at least its ``meta``) is tagged SUBSETTED."""
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, Mapping) else None
    if not isinstance(tags, list):
        return
    for tag in tags:
        if (
            isinstance(tag, Mapping)
            and tag.get("code") == "SUBSETTED"
            and tag.get("system") in _SUBSETTED_SYSTEMS
        ):
            raise ValueError(
                f"{arg} is tagged SUBSETTED in meta.tag: it was read with _summary or _elements "
                "and lacks elements, which an update would erase on the server. Read it whole "
                "(read_resource) and update that, or remove the tag to write it as it is"
            )


def entry_fields(entry: object) -> Mapping[str, Any] | None:
    """A bundle entry (or its request) as a mapping to read ``request``, ``resource`` or
    ``method`` from, or None when it is neither a mapping nor a model.

    A FHIR model is read from its stored elements (by Python name, the JSON name for these
    three), not dumped: dumping a Bundle model's entries would write each resource once more
    just to read its request method. A model whose class may write them otherwise (another
    model, a user's subclass with serializers or excluded elements) is read from its JSON.
    """
    if isinstance(entry, BaseModel):
        fields: dict[str, Any] = (
            entry.__dict__ if _writes_entry_fields(type(entry)) else wire_dict(entry)
        )
        return fields
    return entry if isinstance(entry, Mapping) else None


@functools.cache
def _writes_entry_fields(cls: type[BaseModel]) -> bool:
    """Whether a model of ``cls`` writes the elements read from an entry (``request``,
    ``resource``, ``method``) as stored, under those names: a FHIR model's, unless a user's
    subclass writes them otherwise (a resource it leaves out, Field(exclude=True), was stamped
    and sent, where the model's JSON has none)."""
    fields = cls.__pydantic_fields__
    return writes_as_stored(cls) and all(
        element_key(cls, name) == name
        for name in ("request", "resource", "method")
        if name in fields
    )


def entry_method(entry: Mapping[str, Any]) -> str | None:
    """A bundle entry's ``request.method``, upper-cased (its request a dict or a model)."""
    request = entry_fields(entry.get("request"))
    method = request.get("method") if request is not None else None
    return method.upper() if isinstance(method, str) else None


def refuse_subsetted_entries(bundle: Mapping[str, Any]) -> None:
    """``refuse_subsetted`` for the resource of each PUT entry of a batch or transaction: the
    server replaces the stored resource with it, as ``update_resource`` would."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return
    for index, given in enumerate(entries):
        # A dict bundle may hold models (a BundleEntry, its request or resource).
        entry = entry_fields(given)
        if entry is None or entry_method(entry) != "PUT":
            continue
        resource = entry.get("resource")
        if isinstance(resource, BaseModel):
            # Only the tags matter: dump the meta, not the whole resource.
            meta = getattr(resource, "meta", None)
            resource = {"meta": wire_dict(meta) if isinstance(meta, BaseModel) else meta}
        if isinstance(resource, Mapping):
            refuse_subsetted(f"bundle.entry[{index}].resource", resource)


def graphql_body(query: object, variables: object) -> dict[str, Any]:
    """The ``$graphql`` request body; TypeError / ValueError naming a bad argument."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a GraphQL query str, got {type(query).__name__}")
    if not query.strip():
        raise ValueError(f"query must be a non-empty GraphQL query, got {query!r:.40}")
    if variables is not None and not isinstance(variables, Mapping):
        raise TypeError(f"variables must be a mapping or None, got {type(variables).__name__}")
    return {"query": query, "variables": dict(variables) if variables is not None else {}}

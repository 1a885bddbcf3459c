"""JSON Patch (RFC 6902): the ``operations`` argument of a patch checked op by op."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from pymedplum._serialization import to_fhir_json

_PATCH_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})
_PATCH_VALUE_OPS = frozenset({"add", "replace", "test"})
_PATCH_FROM_OPS = frozenset({"move", "copy"})


def patch_operations(operations: object) -> list[Any]:
    """``operations`` as a JSON Patch list, each one checked: a mapping (or model) with an
    ``op`` of RFC 6902, a ``path`` string, and the ``value`` (add, replace, test) or ``from``
    string (move, copy) that op needs. A single dict or a str is a TypeError."""
    if isinstance(operations, str | bytes | Mapping | BaseModel) or not isinstance(
        operations, Sequence
    ):
        raise TypeError(
            "operations must be a list of JSON Patch operations such as "
            "[{'op': 'replace', 'path': '/active', 'value': False}], "
            f"got {type(operations).__name__}"
        )
    out: list[Any] = []
    for index, op in enumerate(operations):
        data = to_fhir_json(op) if isinstance(op, BaseModel) else op
        if not isinstance(data, Mapping):
            raise TypeError(f"operations[{index}] must be a mapping, got {type(op).__name__}")
        if data.get("op") not in _PATCH_OPS:
            raise ValueError(
                f"operations[{index}]['op'] must be one of {sorted(_PATCH_OPS)}, "
                f"got {data.get('op')!r}"
            )
        if not isinstance(data.get("path"), str):
            raise ValueError(f"operations[{index}] needs a 'path' string, got {data.get('path')!r}")
        # RFC 6902 requires these members; Medplum reads a missing value as undefined, so a
        # replace without one would silently delete the element.
        if data["op"] in _PATCH_VALUE_OPS and "value" not in data:
            raise ValueError(f"operations[{index}] ({data['op']!r}) needs a 'value'")
        if data["op"] in _PATCH_FROM_OPS and not isinstance(data.get("from"), str):
            raise ValueError(
                f"operations[{index}] ({data['op']!r}) needs a 'from' string, "
                f"got {data.get('from')!r}"
            )
        out.append(op)
    return out

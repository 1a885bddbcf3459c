"""Types used in the signatures of the client's endpoint methods.

``ModelT`` is what ``as_fhir=`` binds: pass ``as_fhir=Patient`` and the method returns a
``Patient`` (a ``dict[str, Any]`` without it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from pydantic import BaseModel
from typing_extensions import NotRequired, TypedDict

if TYPE_CHECKING:
    import httpx

    from pymedplum._async._base_client import QueryParams

__all__ = [
    "BodyRequestOptions",
    "JobReference",
    "ModelT",
    "PatchOperation",
    "ProjectMembershipAccessLike",
    "RequestOptions",
    "SearchQuery",
    "SearchValue",
    "SearchValues",
    "SummaryMode",
    "TotalMode",
]

ModelT = TypeVar("ModelT", bound=BaseModel)
"""The model class given as ``as_fhir``; the method returns an instance of it."""

SearchValue: TypeAlias = str | int | float | Decimal | bool | date | datetime | None
"""One search parameter value (``None`` leaves the parameter out; bools are sent lowercase; a
``Decimal`` is sent with its exact digits, NaN and infinities refused).

The aliases are real types, not strings, so that ``typing.get_type_hints`` and pydantic can
resolve the search TypedDicts at run time."""

SearchValues: TypeAlias = SearchValue | Sequence[SearchValue]
"""A value or a sequence of values (repeats the parameter: ``name=a&name=b``; joined with commas
for ``_elements``, ``_sort`` and ``_type``)."""

SearchQuery: TypeAlias = Mapping[str, Any] | Sequence[tuple[str, Any]] | str
"""Search parameters: a mapping (a list value repeats the parameter; ``None`` values are
skipped; ``True``/``False`` are sent as ``true``/``false``), a list of ``(name, value)`` tuples,
or a query string (``"family=Smith&_count=10"``). ``pymedplum.search_params`` has a TypedDict
per resource type that types the mapping form."""

SummaryMode: TypeAlias = Literal["true", "text", "data", "count", "false"]
"""Values of FHIR ``_summary``."""

TotalMode: TypeAlias = Literal["none", "estimate", "accurate"]
"""Values of FHIR ``_total``."""

PatchOperation = TypedDict(
    "PatchOperation",
    {
        "op": Literal["add", "remove", "replace", "move", "copy", "test"],
        "path": str,
        "value": NotRequired[Any],
        "from": NotRequired[str],
    },
)
"""One JSON Patch (RFC 6902) operation."""

JobReference: TypeAlias = str | Mapping[str, Any] | BaseModel
"""An async job: its id, its status URL, or the OperationOutcome (dict or model) whose
``issue[0].diagnostics`` is the status URL."""

ProjectMembershipAccessLike: TypeAlias = Mapping[str, Any] | BaseModel
"""A ``ProjectMembership.access`` entry, as FHIR JSON or a ``ProjectMembershipAccess`` model."""


class RequestOptions(TypedDict, total=False):
    """The keywords of ``get`` and ``delete`` (the contract's ``**kwargs``): a misspelt one is a
    type error, as it is a ``TypeError`` at run time."""

    params: QueryParams | None
    """Query parameters: a mapping (a list value repeats the parameter) or ``(name, value)``
    pairs."""
    headers: Mapping[str, str] | None
    """Extra request headers."""
    timeout: float | httpx.Timeout | None
    """Seconds, or an ``httpx.Timeout``, for this call only."""
    on_behalf_of: str | None
    """Per-call On-Behalf-Of override (``""`` clears it for this call)."""


class BodyRequestOptions(RequestOptions, total=False):
    """The keywords of ``post`` and ``put``: those of ``get`` plus a raw or form body."""

    content: bytes | None
    """A raw request body (instead of ``json``)."""
    data: Mapping[str, Any] | None
    """Form fields, sent as ``application/x-www-form-urlencoded`` (values str or numbers; a JSON
    body goes in ``json=``)."""

"""On-Behalf-Of: the ambient membership (a ContextVar per client) and its precedence.

Precedence for one call: the per-call ``on_behalf_of=`` argument (``""`` sends none) >
``client.on_behalf_of(...)`` context manager > ``default_on_behalf_of`` > none.

The ambient value lives in a ``ContextVar`` owned by one client, so two clients never see each
other's value, concurrent asyncio tasks each see their own copy of the context, and a new
thread starts with none (``ThreadPoolExecutor`` does not copy contexts: pass ``on_behalf_of=``
or use ``contextvars.copy_context().run`` in the worker).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Generic, TypeVar

from pymedplum._fhir_rules import (
    describe_not_id,
    describe_not_reference,
    is_fhir_id,
    is_relative_reference,
)

OwnerT = TypeVar("OwnerT")

OBO_HEADER = "X-Medplum-On-Behalf-Of"


def normalize_membership(membership: object, *, argument: str = "membership") -> str:
    """``"ProjectMembership/<id>"`` from a bare id, a reference string, or a ProjectMembership
    dict / model. Another resource reference (a profile such as ``Practitioner/<id>``, which
    Medplum also accepts) is kept as given. Anything else raises ``ValueError`` / ``TypeError``
    naming ``argument``."""
    if isinstance(membership, str):
        text = membership.strip()
        if is_relative_reference(text):
            return text
        if is_fhir_id(text):
            return f"ProjectMembership/{text}"
        # Described, not shown: a profile reference (Patient/...) may be what was meant.
        got = describe_not_reference(text) if "/" in text else describe_not_id(text)
        raise ValueError(
            f"{argument} must be a ProjectMembership id or a reference like "
            f"'ProjectMembership/<id>', got {got}"
        )
    if isinstance(membership, Mapping):
        resource_type: Any = membership.get("resourceType")
        resource_id: Any = membership.get("id")
    else:
        resource_type = getattr(membership, "resource_type", None) or getattr(
            membership, "resourceType", None
        )
        resource_id = getattr(membership, "id", None)
        if resource_type is None and resource_id is None:
            raise TypeError(
                f"{argument} must be a str or a ProjectMembership resource, "
                f"got {type(membership).__name__}"
            )
    if resource_type not in (None, "ProjectMembership"):
        raise ValueError(f"{argument} must be a ProjectMembership, got a {resource_type}")
    if not is_fhir_id(resource_id):
        raise ValueError(f"{argument} has no usable id (read it from the server first)")
    return f"ProjectMembership/{resource_id}"


def optional_membership(membership: object, *, argument: str) -> str | None:
    """:func:`normalize_membership`, or ``None`` for ``None`` and ``""`` (no membership). Only
    these two mean none: another falsy value (``False``, ``0``, ``{}``) is a mistake and raises,
    rather than silently dropping the membership."""
    if membership is None or membership == "":
        return None
    return normalize_membership(membership, argument=argument)


class OnBehalfOfContext(Generic[OwnerT]):
    """Sets a client's ambient On-Behalf-Of membership for the ``with`` (or ``async with``)
    block, and restores the previous value on exit. Returned by ``client.on_behalf_of(...)``;
    entering it gives back the client (``with client.on_behalf_of(m) as c: ...``)."""

    __slots__ = ("_owner", "_token", "_value", "_var")

    def __init__(self, var: ContextVar[str | None], value: str, owner: OwnerT) -> None:
        self._var = var
        self._value = value
        self._owner = owner
        self._token: Token[str | None] | None = None

    @property
    def membership(self) -> str:
        """The normalized reference this block sends (``ProjectMembership/<id>``)."""
        return self._value

    def __enter__(self) -> OwnerT:
        if self._token is not None:
            raise RuntimeError("this on_behalf_of(...) context is already active")
        self._token = self._var.set(self._value)
        return self._owner

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            self._var.reset(token)

    async def __aenter__(self) -> OwnerT:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def resolve(explicit: str | None, var: ContextVar[str | None], default: str | None) -> str | None:
    """The membership one call sends: explicit (``""`` = none) > ambient > default."""
    if explicit is not None:  # "" is none for this call, whatever the ambient value
        return optional_membership(explicit, argument="on_behalf_of")
    ambient = var.get()
    if ambient is not None:
        return ambient
    return default

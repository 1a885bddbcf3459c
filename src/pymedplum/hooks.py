"""The public hook surface: what ``before_request`` and ``on_request_complete`` receive.

``PreparedRequest`` is shown to ``before_request`` (already stripped of the bearer token and the
On-Behalf-Of header). ``RequestEvent`` is handed to ``on_request_complete`` exactly once per
logical SDK call, with one ``RequestAttempt`` per wire attempt (retries and the 401
refresh-and-replay included). These dataclasses are public API.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pymedplum._fhir_rules import RESOURCE_TYPE_PATTERN, known_resource_types
from pymedplum._warnings import PACKAGE_DIR

__all__ = [
    "AsyncOnRequestCompleteHook",
    "BeforeRequestHook",
    "OnRequestCompleteHook",
    "PreparedRequest",
    "RequestAction",
    "RequestAttempt",
    "RequestEvent",
    "RequestOutcome",
    "serialize_exception",
]

RequestAction = Literal[
    "read",
    "search",
    "create",
    "update",
    "patch",
    "delete",
    "operation",
    "batch_or_transaction",
]
"""The FHIR interaction a call performed; ``None`` on an event means a non-FHIR call."""

RequestOutcome = Literal["success", "error"]
"""``"success"``: finished with a 2xx/3xx and no exception; ``"error"`` otherwise."""


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """The request as a ``before_request`` hook sees it. Return ``None`` to keep it, or a copy
    (``dataclasses.replace``) with adjusted fields. A copy that changes the origin, adds an
    auth or On-Behalf-Of header, or switches to an unsafe method is logged and discarded."""

    method: str
    url: str
    headers: dict[str, str]
    json_body: Any | None = None


@dataclass(frozen=True, slots=True)
class RequestAttempt:
    """One wire attempt of a logical call."""

    attempt_number: int
    status_code: int | None
    duration_seconds: float
    on_behalf_of: str | None
    exception: BaseException | None = None


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """One logical SDK call, delivered once to ``on_request_complete``.

    ``path`` and ``query_params`` and ``resource_id`` can identify a patient (PHI);
    ``path_template`` replaces ids by ``{id}`` and is safe for metrics.
    """

    method: str
    path: str
    path_template: str
    query_params: dict[str, list[str]] | None
    resource_type: str | None
    resource_id: str | None
    operation: str | None
    started_at: datetime
    ended_at: datetime
    attempts: list[RequestAttempt] = field(default_factory=list)
    final_status_code: int | None = None
    final_exception: BaseException | None = None
    action: RequestAction | None = None
    outcome: RequestOutcome = "error"

    @property
    def duration_seconds(self) -> float:
        """Wall-clock seconds from the start of the call to its end."""
        return (self.ended_at - self.started_at).total_seconds()

    def to_phi_audit_dict(self, *, include_query_params: bool = False) -> dict[str, Any]:
        """Everything an access audit needs, JSON-ready. Contains PHI (the resolved path,
        resource id, On-Behalf-Of membership, and with ``include_query_params=True`` the search
        parameters): send it only to a sink approved for PHI."""
        data: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "path_template": self.path_template,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "operation": self.operation,
            "action": self.action,
            "outcome": self.outcome,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "duration_seconds": self.duration_seconds,
            "attempts": [
                {
                    "attempt_number": a.attempt_number,
                    "status_code": a.status_code,
                    "duration_seconds": a.duration_seconds,
                    "on_behalf_of": a.on_behalf_of,
                    "exception": serialize_exception(a.exception),
                }
                for a in self.attempts
            ],
            "final_status_code": self.final_status_code,
            "final_exception": serialize_exception(self.final_exception),
        }
        if include_query_params:
            data["query_params"] = (
                {k: list(v) for k, v in self.query_params.items()}
                if self.query_params is not None
                else None
            )
        return data

    def to_non_phi_dict(self) -> dict[str, Any]:
        """The shape of the call only, for metrics and general logs: no path, ids, query
        values, bodies or On-Behalf-Of value; exception *type names* instead of messages."""
        return {
            "method": self.method,
            "path_template": self.path_template,
            "resource_type": self.resource_type,
            "operation": self.operation,
            "action": self.action,
            "outcome": self.outcome,
            "final_status_code": self.final_status_code,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "duration_seconds": self.duration_seconds,
            "attempt_count": len(self.attempts),
            "attempts": [
                {
                    "attempt_number": a.attempt_number,
                    "status_code": a.status_code,
                    "duration_seconds": a.duration_seconds,
                    "exception_type": _type_name(a.exception),
                }
                for a in self.attempts
            ],
            "final_exception_type": _type_name(self.final_exception),
        }


BeforeRequestHook = Callable[[PreparedRequest], "PreparedRequest | None"]
"""``before_request``: receives the sanitized request, returns ``None`` or an adjusted copy."""

OnRequestCompleteHook = Callable[[RequestEvent], None]
"""``on_request_complete`` for either client; its exceptions are logged, never raised."""

AsyncOnRequestCompleteHook = Callable[[RequestEvent], Awaitable[None]]
"""An ``on_request_complete`` coroutine function: ``AsyncMedplumClient`` only."""


def serialize_exception(exc: BaseException | None) -> dict[str, Any] | None:
    """Reduce an exception to a dict for logging: ``exc.sanitize_for_logging()`` when the
    exception defines it (all SDK exceptions do), else ``{"type": ..., "message": str(exc)}``."""
    if exc is None:
        return None
    sanitize = getattr(exc, "sanitize_for_logging", None)
    if callable(sanitize):
        result = sanitize()
        if isinstance(result, dict):
            return result
    return {"type": type(exc).__name__, "message": str(exc)}


def _type_name(exc: BaseException | None) -> str | None:
    return type(exc).__name__ if exc is not None else None


_HOOK_FRAMES_SHOWN = 5


def describe_hook_failure(exc: BaseException) -> str:
    """The exception a hook raised, for the SDK's WARNING: its type and where it was raised
    (the innermost frames as ``file:line in function``), never its message. A hook handles
    the event's PHI (an audit sink's error quotes the row it refused), and the SDK's log goes
    to general logs, not to the PHI audit sink."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(PACKAGE_DIR)
    ][-_HOOK_FRAMES_SHOWN:]  # the hook's frames, not the SDK's that called it
    where = " <- ".join(
        f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}" for f in reversed(frames)
    )
    return f"{type(exc).__name__} at {where}" if where else type(exc).__name__


# --- deriving the FHIR facts of a call from its URL -----------------------------------------


def _is_known_type(segment: str) -> bool:
    """A known resource type name: any other capitalised segment may be a name (PHI)."""
    return segment in known_resource_types()


# The end of a compartment search over every type (``Patient/{id}/*``): its event has no
# ``resource_type``, so derive_action recognises it by the template.
_ALL_TYPES_COMPARTMENT = re.compile(f"/{RESOURCE_TYPE_PATTERN}/\\{{id\\}}/\\*(/_search)?\\Z")

# Path segments that are never identifiers: the route words of the Medplum server outside the
# FHIR resource types (admin, auth, OAuth, .well-known, SCIM, ...) and FHIR-level keywords. In
# the path_template of a path that is not FHIR-shaped every other segment becomes ``{id}``: an
# unknown route word costs a little metric detail, whereas a kept identifier (a key-value key,
# a user name, a file name) would put PHI into logs documented as safe.
_ROUTE_WORDS = frozenset(
    {
        # top-level routers and versions
        ".well-known", "admin", "agent", "api", "auth", "bulkdata", "dicom", "email", "fhir",
        "fhircast", "healthcheck", "hl7", "keyvalue", "oauth2", "openapi.json", "robots.txt",
        "scim", "storage", "webhook", "ws", "PS3", "R4", "STU2", "STU3", "v1", "v2",
        # /admin
        "bot", "client", "invite", "members", "projects", "secrets", "setpassword", "sites",
        "super",
        # /auth
        "changepassword", "clientinfo", "disable", "enroll", "exchange", "external", "google",
        "login", "logout", "me", "method", "mfa", "newpatient", "newproject", "newuser",
        "profile", "resetpassword", "revoke", "scope", "status", "verify", "verifyemail",
        # /oauth2 and /.well-known
        "authorize", "introspect", "register", "token", "userinfo", "jwks.json",
        "oauth-authorization-server", "oauth-protected-resource", "openid-configuration",
        "smart-configuration", "smart-styles.json",
        # /email and /scim
        "send", "Groups", "ResourceTypes", "Schemas", "ServiceProviderConfig", "Users",
        # FHIR-level words (under the FHIR base, but not a resource type)
        "_history", "_search", "export", "job", "metadata",
    }
)  # fmt: skip


def _route_template(path: str, fhir_prefix: str) -> str:
    """``path`` with every segment that is not a known route word, an ``$operation`` or empty
    replaced by ``{id}``. The leading segments ``path`` shares with ``fhir_prefix`` (a
    deployment prefix such as ``/medplum/``) are configuration and stay."""
    segments = path.split("/")
    base = fhir_prefix.split("/")
    shared = 0
    while shared < min(len(segments), len(base)) and segments[shared] == base[shared]:
        shared += 1
    return "/".join(
        s if i < shared or not s or s in _ROUTE_WORDS or s.startswith("$") else "{id}"
        for i, s in enumerate(segments)
    )


def describe_fhir_path(
    path: str, fhir_prefix: str
) -> tuple[str | None, str | None, str | None, str]:
    """``(resource_type, resource_id, operation, path_template)`` of a URL path.

    ``fhir_prefix`` is the path of the FHIR base (``/fhir/R4/``). After it:

    - ``Patient``, ``Patient/_search``, ``Patient/_history``, ``Patient/$op``: type level,
      ``resource_type="Patient"``, no id;
    - ``Patient/p1``, ``Patient/p1/_history``, ``Patient/p1/_history/3`` (vread),
      ``Patient/p1/$op``: instance level, ``resource_id="p1"``;
    - ``Patient/p1/Observation`` (also ``.../_search``): a compartment search, with
      ``resource_type="Observation"`` (the searched type) and no id; ``Patient/p1/*`` searches
      every type of the compartment (``resource_type=None``). The compartment's id is only in
      ``path``;
    - ``$op``: a system operation.

    In the template only ids become ``{id}``: type names, ``*``, ``_search``, ``_history`` and
    ``$operations`` stay (``/fhir/R4/Patient/{id}/Observation``). Any other path (outside the
    FHIR base, or under it without a leading resource type) gives ``(None, None, None)`` and a
    template that keeps only known Medplum route words (``admin``, ``projects``, ``oauth2``,
    ...), ``$operations`` and the segments it shares with the FHIR base; every other segment
    becomes ``{id}``.
    """
    if not path.startswith(fhir_prefix):
        return None, None, None, _route_template(path, fhir_prefix)
    segments = path[len(fhir_prefix) :].split("/")
    first = segments[0]
    if first.startswith("$") and len(segments) == 1:
        return None, None, first, path
    if not _is_known_type(first):
        return None, None, None, _route_template(path, fhir_prefix)
    resource_type: str | None = first
    resource_id: str | None = None
    operation: str | None = None
    template = [first]
    rest = segments[1:]
    if rest and rest[0] and not rest[0].startswith(("$", "_")):
        resource_id = rest[0]
        template.append("{id}")
        rest = rest[1:]
        if rest and (rest[0] == "*" or _is_known_type(rest[0])):
            # [Compartment]/[id]/[type] or [Compartment]/[id]/*: a search of that type (of
            # every type) within the compartment; the compartment's id is in `path` only.
            resource_type = None if rest[0] == "*" else rest[0]
            resource_id = None
            template.append(rest[0])
            rest = rest[1:]
            if rest and rest[0] and not rest[0].startswith(("$", "_")):
                resource_id = rest[0]  # not FHIR, but name the resource it addresses
                template.append("{id}")
                rest = rest[1:]
    for segment in rest:
        if segment.startswith("$"):
            operation = segment
            template.append(segment)
        elif segment.startswith("_") or segment == "":
            template.append(segment)
        else:
            template.append("{id}")
    return resource_type, resource_id, operation, fhir_prefix + "/".join(template)


def derive_action(
    method: str,
    resource_type: str | None,
    resource_id: str | None,
    operation: str | None,
    path_template: str,
    *,
    fhir_root: bool,
) -> RequestAction | None:
    """The ``RequestAction`` implied by a FHIR call's method and path facts."""
    if operation:
        return "operation"
    if resource_type is not None:
        if method in ("GET", "HEAD"):
            return "read" if resource_id is not None else "search"
        if method == "POST":
            return "search" if path_template.endswith("/_search") else "create"
        if method == "PUT":
            return "update"
        if method == "PATCH":
            return "patch"
        if method == "DELETE":
            return "delete"
        return None
    compartment = _ALL_TYPES_COMPARTMENT.search(path_template)
    if compartment is not None:
        if method in ("GET", "HEAD") and not compartment.group(1):
            return "search"
        if method == "POST" and compartment.group(1):
            return "search"
        return None
    if fhir_root and method == "POST":
        return "batch_or_transaction"
    return None

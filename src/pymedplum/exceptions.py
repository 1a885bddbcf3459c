"""The exception tree of pymedplum and the HTTP status / OperationOutcome → exception mapping.

Hierarchy (every class is re-exported at ``pymedplum.*``)::

    MedplumError                      base of everything the SDK raises on purpose
    ├── OperationOutcomeError         the server answered an error status (>= 400)
    │   ├── BadRequestError           400
    │   │   └── ValidationError       400 / 422 whose OperationOutcome reports invalid content
    │   ├── AuthenticationError       401, or any failure of the client-credentials flow
    │   ├── AuthorizationError        403
    │   ├── NotFoundError             404
    │   │   └── GoneError             410 (a deleted resource)
    │   ├── ConflictError             409 (e.g. a concurrent write)
    │   ├── PreconditionFailedError   412
    │   ├── RateLimitError            429 (``retry_after``: Retry-After or RateLimit reset)
    │   └── ServerError               5xx
    ├── NetworkError                  connection / timeout / DNS failure, undecodable body
    ├── InsecureTransportError        plain http:// to a non-loopback host without the opt-in
    ├── UnsafeRedirectError           a follow-up URL outside the configured origin
    ├── TokenRefreshCooldownError     refresh attempted inside the failed-refresh cooldown
    └── BundleEntryError              FHIRBundle.raise_for_entry_errors(): batch entries failed

Every error answer from the server is an ``OperationOutcomeError`` *and* an instance of its status
class, so ``except NotFoundError`` and ``except OperationOutcomeError`` both work; ``exc.outcome``
is the OperationOutcome dict when the body was one, else ``None``. A status the table does not
name (405, a 422 without validation issues, ...) raises a plain ``OperationOutcomeError``.

``str(exc)`` never contains a response body, ``diagnostics`` or ``details.text`` (they can echo
PHI): only the status, the method, the PHI-free path template and the issue ``severity/code``
pairs. ``sanitize_for_logging()`` returns the same facts as a JSON-ready dict.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pymedplum._fhir_rules import loggable_code

if TYPE_CHECKING:
    import httpx

    from pymedplum.bundle import BundleEntryResult

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "BadRequestError",
    "BundleEntryError",
    "ConflictError",
    "GoneError",
    "InsecureTransportError",
    "MedplumError",
    "NetworkError",
    "NotFoundError",
    "OperationOutcomeError",
    "PreconditionFailedError",
    "RateLimitError",
    "ServerError",
    "TokenRefreshCooldownError",
    "UnsafeRedirectError",
    "ValidationError",
]


def _drop_credentials(response: httpx.Response) -> None:
    """Remove the bearer token and client secret a response carries (in its request, and in
    its transport stream): exceptions get logged, pickled and shown, and must never hold them
    (whichever code path raised them)."""
    import httpx  # at call time: the module imports httpx only for type checking

    # A body read from the network keeps its transport stream, and through it the transport's
    # own copy of the request (headers with the token, the token request's form body with the
    # client secret): swap it for the bytes already read, or for nothing when the response was
    # closed unread (an HTTPStatusError a caller pool's response hook raised): nothing can be
    # read from it either way. Public httpx API only: a change there fails here, not silently.
    try:
        content: bytes | None = response.content
    except httpx.ResponseNotRead:
        content = b"" if response.is_closed else None
    if content is not None:
        response.stream = httpx.ByteStream(content)
    # A 3xx that httpx.Client.send did not follow keeps the request it would have sent next:
    # with the Authorization header when the target is on the same origin, and for a 307 / 308
    # with the body (the token request's form with the client secret), whatever the origin.
    if response.next_request is not None:
        response.next_request = detached_request(response.next_request)
    try:
        request = response.request
    except RuntimeError:  # a response built without a request
        return
    response.request = detached_request(request)


_CREDENTIAL_HEADERS = ("Authorization", "Proxy-Authorization")


def drop_request_credentials(request: httpx.Request) -> None:
    """Remove the credential headers from a request that travels inside an exception (a
    response's, or a transport error's): the one list of them, for every error path."""
    for name in _CREDENTIAL_HEADERS:
        if name in request.headers:
            del request.headers[name]


def detached_request(request: httpx.Request) -> httpx.Request:
    """A copy of ``request`` to travel inside an exception: its method, URL and headers, without
    the credential headers and without its body.

    A body can hold secrets the SDK cannot tell apart from data (a password posted to
    ``auth/login``, a ``client_secret`` or refresh token in a form posted to ``oauth2/token``,
    the client's own token request) and exceptions get logged, pickled (task queues,
    multiprocessing) and shown; the caller has the body it sent."""
    import httpx  # at call time: the module imports httpx only for type checking

    dropped = {name.lower() for name in _CREDENTIAL_HEADERS} | {"content-length"}
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in dropped]
    return httpx.Request(request.method, request.url, headers=headers)


def detach_error_requests(exc: httpx.HTTPError) -> None:
    """Swap the requests an httpx error carries for :func:`detached_request` copies: its own,
    and its response's (an ``HTTPStatusError`` that a caller pool's event hook raised with
    ``raise_for_status()`` holds both, with the bearer token or the token request's form)."""
    with contextlib.suppress(RuntimeError):  # an error raised without a request
        exc.request = detached_request(exc.request)
    response = getattr(exc, "response", None)
    if response is not None:
        _drop_credentials(response)


class MedplumError(Exception):
    """Base class for every exception the SDK raises.

    ``status_code``, ``response`` and ``outcome`` are ``None`` unless the server answered.
    """

    status_code: int | None
    response: httpx.Response | None
    outcome: dict[str, Any] | None

    def __init__(
        self,
        message: str = "",
        status_code: int | None = None,
        *,
        response: httpx.Response | None = None,
        outcome: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        if response is not None:
            _drop_credentials(response)
        self.response = response
        self.outcome = dict(outcome) if outcome is not None else None

    def sanitize_for_logging(self) -> dict[str, Any]:
        """A PHI-safe, JSON-serializable summary: type, status and issue codes; never a body."""
        data: dict[str, Any] = {"type": type(self).__name__, "status_code": self.status_code}
        if self.outcome is not None:
            data["issues"] = issue_codes(self.outcome)
        return data


class OperationOutcomeError(MedplumError):
    """The server answered an error status; ``outcome`` holds its FHIR OperationOutcome.

    ``str()`` lists only ``severity/code`` pairs: ``diagnostics`` and ``details.text`` stay on
    ``exc.outcome`` (they can echo the values a caller sent). ``method`` and ``path_template``
    (ids replaced by ``{id}``) say which call failed without naming a patient.
    """

    method: str | None
    path_template: str | None

    def __init__(
        self,
        message: str | None = None,
        *,
        outcome: Mapping[str, Any] | None = None,
        status_code: int | None = None,
        response: httpx.Response | None = None,
        method: str | None = None,
        path_template: str | None = None,
    ) -> None:
        self.method = method
        self.path_template = path_template
        if message is None:
            message = _describe(status_code, method, path_template, outcome)
        super().__init__(message, status_code, response=response, outcome=outcome)

    def sanitize_for_logging(self) -> dict[str, Any]:
        """A PHI-safe dict: type, status, method, path template, issue severity/code pairs."""
        data = super().sanitize_for_logging()
        data["method"] = self.method
        data["path_template"] = self.path_template
        return data


class BadRequestError(OperationOutcomeError):
    """HTTP 400 Bad Request (an unknown search parameter, a malformed body, ...)."""


class ValidationError(BadRequestError):
    """The server rejected the resource as invalid: a 400 or 422 whose OperationOutcome has an
    ``invalid``, ``structure``, ``required``, ``value`` or ``invariant`` issue."""


class AuthenticationError(OperationOutcomeError):
    """HTTP 401, or a failure of the client-credentials token request (bad secret, token
    endpoint unreachable: then ``status_code`` is ``None`` and ``__cause__`` says why)."""


class AuthorizationError(OperationOutcomeError):
    """HTTP 403 Forbidden: the credentials (or the On-Behalf-Of membership) lack access."""


class NotFoundError(OperationOutcomeError):
    """HTTP 404 Not Found (and, through ``GoneError``, 410 Gone)."""


class GoneError(NotFoundError):
    """HTTP 410 Gone: the resource existed and was deleted. A ``NotFoundError``, so one
    ``except NotFoundError`` covers missing and deleted resources alike."""


class ConflictError(OperationOutcomeError):
    """HTTP 409 Conflict: the request conflicts with the resource's current state (typically a
    concurrent write). Its own class so ``except ConflictError`` (the name pymedplum 0.6 used)
    works; still an ``OperationOutcomeError``, as before it had a class."""


class PreconditionFailedError(OperationOutcomeError):
    """HTTP 412: an ``If-Match`` version is stale, or an ``If-None-Exist`` matched several."""


class RateLimitError(OperationOutcomeError):
    """HTTP 429 Too Many Requests, after the SDK's own retries are spent.

    ``retry_after`` is the server's Retry-After in seconds (else the reset time of Medplum's
    ``RateLimit`` header), or ``None`` when it said neither.
    """

    retry_after: float | None

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        outcome: Mapping[str, Any] | None = None,
        status_code: int | None = 429,
        response: httpx.Response | None = None,
        method: str | None = None,
        path_template: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(
            message,
            outcome=outcome,
            status_code=status_code,
            response=response,
            method=method,
            path_template=path_template,
        )

    def sanitize_for_logging(self) -> dict[str, Any]:
        """The common PHI-safe dict plus ``retry_after``."""
        data = super().sanitize_for_logging()
        data["retry_after"] = self.retry_after
        return data


class ServerError(OperationOutcomeError):
    """HTTP 5xx. ``str()`` omits the body and the raw path; ``exc.response`` has the body,
    ``exc.path`` the exact path (it may hold ids), ``exc.sanitize_for_logging()`` a safe dict."""

    path: str | None

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        method: str | None = None,
        path: str | None = None,
        path_template: str | None = None,
        response: httpx.Response | None = None,
        outcome: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = path
        super().__init__(
            message,
            outcome=outcome,
            status_code=status_code,
            response=response,
            method=method,
            path_template=path_template,
        )


class NetworkError(MedplumError):
    """The request failed in transport (connect, timeout, DNS, reset) or the 2xx answer it got
    could not be decoded (a broken Content-Encoding, a decompression bomb: any other status
    raises its own error); ``__cause__`` is the httpx exception.
    ``possibly_committed`` is ``True`` when a request had been sent before the failure, so a
    write may have been applied: re-read before retrying it by hand."""

    possibly_committed: bool

    def __init__(self, message: str = "", *, possibly_committed: bool = False) -> None:
        super().__init__(message)
        self.possibly_committed = possibly_committed

    def sanitize_for_logging(self) -> dict[str, Any]:
        """Type, the httpx cause's type name, and whether the request may have been applied."""
        cause = self.__cause__
        return {
            "type": type(self).__name__,
            "status_code": None,
            "cause": type(cause).__name__ if cause is not None else None,
            "possibly_committed": self.possibly_committed,
        }


class InsecureTransportError(MedplumError):
    """``base_url`` is plain ``http://`` to a non-loopback host without ``allow_insecure_http``."""


class UnsafeRedirectError(MedplumError):
    """A server-handed or hook-supplied URL leaves the configured origin (scheme, host, port)."""


class TokenRefreshCooldownError(MedplumError):
    """A token refresh was attempted inside the cooldown window after a failed one.

    Raised without touching the network. ``retry_after`` is the number of seconds left in the
    window: surface it to your caller instead of retrying in a loop.
    """

    retry_after: float

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = max(0.0, float(retry_after))
        super().__init__(
            message
            or f"token refresh is cooling down after a failure; retry in {self.retry_after:.2f}s"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle (multiprocessing, task queues) rebuilds from args, which hold only the
        # message: pass retry_after first, as __init__ takes it.
        return (type(self), (self.retry_after, str(self)), self.__dict__)

    def sanitize_for_logging(self) -> dict[str, Any]:
        """Type and ``retry_after``."""
        return {"type": type(self).__name__, "status_code": None, "retry_after": self.retry_after}


class BundleEntryError(MedplumError):
    """One or more entries of a batch/transaction response failed.

    Raised by :meth:`FHIRBundle.raise_for_entry_errors`. Medplum transactions are not
    always atomic (only with the ``transaction-bundles`` project feature), so the other
    entries may have been committed. The message carries indices and status codes only;
    the server's OperationOutcomes (which may echo PHI) stay on :attr:`entries`.

    Attributes:
        entries: the failed :class:`BundleEntryResult` items, in bundle order.
    """

    def __init__(self, entries: list[BundleEntryResult]) -> None:
        self.entries: list[BundleEntryResult] = list(entries)
        summary = ", ".join(f"entry {e.index}: {e.status_code}" for e in self.entries)
        noun = "entry" if len(self.entries) == 1 else "entries"
        super().__init__(f"{len(self.entries)} bundle {noun} failed ({summary})")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle (multiprocessing, task queues) rebuilds from args, which hold only the
        # message: __init__ takes the entries.
        return (type(self), (self.entries,), self.__dict__)

    def sanitize_for_logging(self) -> dict[str, object]:
        """A PHI-free dict for logs: the failed entries' indices and status codes."""
        return {
            "type": type(self).__name__,
            "failed_count": len(self.entries),
            "entries": [{"index": e.index, "status_code": e.status_code} for e in self.entries],
        }


# --- mapping ------------------------------------------------------------------------------

# A FHIRPath element path as Medplum's validator writes issue.expression: names and indices.
_ELEMENT_PATH = re.compile(
    r"(?=.{1,120}$)[A-Za-z_]\w*(\[\d{1,6}\])?(\.[A-Za-z_]\w*(\[\d{1,6}\])?)*", re.A
)
_MAX_ISSUES_IN_MESSAGE = 10
_VALIDATION_CODES = frozenset({"invalid", "structure", "required", "value", "invariant"})

_STATUS_CLASSES: dict[int, type[OperationOutcomeError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthorizationError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    412: PreconditionFailedError,
    429: RateLimitError,
}

_REASONS: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _element_path(issue: Mapping[str, Any]) -> str | None:
    """The issue's first ``expression`` when it is an element path (``Patient.name[0].given``):
    names and indices only, no value, so it says which field failed without PHI."""
    expression = issue.get("expression")
    if isinstance(expression, list) and expression:
        first = expression[0]
        if isinstance(first, str) and _ELEMENT_PATH.fullmatch(first):
            return first
    return None


def issue_codes(outcome: Mapping[str, Any]) -> list[dict[str, str | None]]:
    """The ``severity`` / ``code`` of every issue of an OperationOutcome, and its
    ``expression`` when that is an element path (no free text; a value that is not shaped like
    a FHIR code becomes ``None``)."""
    issues = outcome.get("issue")
    result: list[dict[str, str | None]] = []
    if isinstance(issues, list):
        for issue in issues:
            if isinstance(issue, Mapping):
                severity, code = issue.get("severity"), issue.get("code")
                entry = {"severity": loggable_code(severity), "code": loggable_code(code)}
                path = _element_path(issue)
                if path is not None:
                    entry["expression"] = path
                result.append(entry)
    return result


def issue_texts(outcome: Mapping[str, Any] | None) -> list[str]:
    """The free text of every issue of an OperationOutcome (``diagnostics``, ``details.text``),
    for recognising a known answer; never for a message or a log (it may echo PHI)."""
    issues = outcome.get("issue") if outcome is not None else None
    texts: list[str] = []
    if isinstance(issues, list):
        for issue in issues:
            if isinstance(issue, Mapping):
                details = issue.get("details")
                for text in (
                    issue.get("diagnostics"),
                    details.get("text") if isinstance(details, Mapping) else None,
                ):
                    if isinstance(text, str):
                        texts.append(text)
    return texts


def _describe(
    status_code: int | None,
    method: str | None,
    path_template: str | None,
    outcome: Mapping[str, Any] | None,
) -> str:
    if status_code is not None:
        reason = _REASONS.get(status_code)
        text = f"HTTP {status_code} {reason}" if reason else f"HTTP {status_code}"
    else:
        text = "request failed"
    if method and path_template is not None:
        text += f" from {method} {path_template}"
    if outcome is not None:
        codes = issue_codes(outcome)
        if codes:
            # Bounded: a server (or proxy) answering thousands of issues must not turn every
            # log line and traceback into megabytes; exc.outcome keeps them all.
            # A field that is no FHIR code (a number, a list, missing) shows as "?", not "None".
            shown = [
                f"{c['severity'] or '?'}/{c['code'] or '?'}"
                + (f" at {c['expression']}" if "expression" in c else "")
                for c in codes[:_MAX_ISSUES_IN_MESSAGE]
            ]
            if len(codes) > _MAX_ISSUES_IN_MESSAGE:
                shown.append(f"+{len(codes) - _MAX_ISSUES_IN_MESSAGE} more")
            text += " [" + ", ".join(shown) + "]"
    return text


# Appended to a 400 / 422 whose OperationOutcome explains itself in free text: that text is the
# one thing that says what was wrong ("Unknown search parameter: foo", "Value required at path:
# /active"), and it stays out of str() (it may echo PHI), so say where it is.
_EXPLANATION_HINT = "; the server's explanation is in exc.outcome (not shown: it may contain PHI)"


def _has_explanation(outcome: Mapping[str, Any] | None) -> bool:
    """Whether an issue carries ``diagnostics`` or ``details.text`` (free text)."""
    return any(text.strip() for text in issue_texts(outcome))


def _is_validation_outcome(outcome: Mapping[str, Any] | None) -> bool:
    return outcome is not None and any(c["code"] in _VALIDATION_CODES for c in issue_codes(outcome))


def error_for_status(
    status_code: int,
    *,
    body: Any,
    response: httpx.Response | None,
    method: str | None,
    path: str | None,
    path_template: str | None,
    retry_after: float | None = None,
    hint: str = "",
) -> OperationOutcomeError:
    """Build (not raise) the exception for an error answer; ``body`` is the decoded JSON or
    ``None``. Only a dict whose ``resourceType`` is ``OperationOutcome`` becomes ``outcome``.
    ``hint`` (PHI-free) is appended to the message of a 4xx: what the caller most likely got
    wrong (for a 429, which limit is spent and why the client did not wait); a 400 / 422
    whose outcome has free text also says it is on ``exc.outcome``."""
    outcome = (
        body
        if isinstance(body, Mapping) and body.get("resourceType") == "OperationOutcome"
        else None
    )
    if status_code >= 500:
        return ServerError(
            status_code=status_code,
            method=method,
            path=path,
            path_template=path_template,
            response=response,
            outcome=outcome,
        )
    if status_code == 429:
        return RateLimitError(
            _describe(status_code, method, path_template, outcome) + hint if hint else None,
            retry_after=retry_after,
            outcome=outcome,
            status_code=status_code,
            response=response,
            method=method,
            path_template=path_template,
        )
    if status_code in (400, 422) and _has_explanation(outcome):
        hint += _EXPLANATION_HINT
    cls: type[OperationOutcomeError]
    if status_code in (400, 422) and _is_validation_outcome(outcome):
        cls = ValidationError
    else:
        cls = _STATUS_CLASSES.get(status_code, OperationOutcomeError)
    return cls(
        _describe(status_code, method, path_template, outcome) + hint if hint else None,
        outcome=outcome,
        status_code=status_code,
        response=response,
        method=method,
        path_template=path_template,
    )

"""AsyncBaseClient: constructor, authentication, On-Behalf-Of and the one ``_request``.

Every endpoint method (generated into ``client.py``) describes its request and calls
``_request``; this module alone builds the URL and headers, applies auth, OBO and the
``before_request`` hook, runs the retry loop, maps errors and emits the ``RequestEvent``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, parse_qsl

import httpx
from pydantic import BaseModel
from typing_extensions import Self, overload  # at run time: get_type_hints, get_overloads

from pymedplum import _hints as hints
from pymedplum import _obo
from pymedplum._async import _synchronization
from pymedplum._async._auth import AsyncTokenManager
from pymedplum._async._body import read_body
from pymedplum._async._pool import after_failed_read, after_failed_send
from pymedplum._decoding import ACCEPT_ENCODING, answered_unread, why_unread
from pymedplum._request_builders.arguments import check_seconds
from pymedplum._request_builders.constructor import check_hook_arity, named_constructor
from pymedplum._request_builders.content import (
    BODY_CHUNK,
    ChunkedBody,
    binary_content,
    form_body,
)
from pymedplum._request_builders.headers import (
    check_header,
    check_headers,
    has_header,
    header_value,
    is_header_safe,
    set_header,
)
from pymedplum._request_builders.search import check_query_params
from pymedplum._retry import RetryPolicy, retry_after_seconds, was_possibly_sent
from pymedplum._security import check_same_origin, is_same_origin, normalize_base_url, origin_of
from pymedplum._serialization import decode_json, decode_wire, encode_json, json_or_none
from pymedplum._version import __version__
from pymedplum.exceptions import (
    MedplumError,
    NetworkError,
    OperationOutcomeError,
    UnsafeRedirectError,
    detach_error_requests,
    drop_request_credentials,
    error_for_status,
)
from pymedplum.hooks import (
    AsyncOnRequestCompleteHook,
    BeforeRequestHook,
    OnRequestCompleteHook,
    PreparedRequest,
    RequestAction,
    RequestAttempt,
    RequestEvent,
    derive_action,
    describe_fhir_path,
    describe_hook_failure,
)

__all__ = ["AsyncBaseClient", "QueryParams"]

ModelT = TypeVar("ModelT", bound=BaseModel)
ResultT = TypeVar("ResultT")
QueryValue = str | int | float | bool
QueryParams = Mapping[str, QueryValue | Sequence[QueryValue]] | Sequence[tuple[str, QueryValue]]
Base = Literal["fhir", "api", "absolute"]

hooks_logger = logging.getLogger("pymedplum.hooks")
logger = logging.getLogger("pymedplum.client")

_ACCEPT = "application/fhir+json, application/json;q=0.9, */*;q=0.1"
_USER_AGENT = f"pymedplum/{__version__} python-httpx/{httpx.__version__}"
# Headers a before_request hook never sees and may not set.
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", _obo.OBO_HEADER.lower()}
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Body framing: set by httpx from the body, never by a caller or a hook.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
_OBO_LOWER = _obo.OBO_HEADER.lower()

_CLOSED = "the client has been closed; create a new one"
# Bumped in a child process after os.fork(): a client whose generation differs was inherited
# from the parent, and so were its pooled connections (their sockets are shared with it).
_fork_generation = 0
# Held while the first event loop claims a client, or a forked child replaces its pool.
_BIND_LOCK = threading.Lock()


def _count_fork() -> None:
    global _fork_generation, _BIND_LOCK
    _fork_generation += 1
    _BIND_LOCK = threading.Lock()  # a parent thread may have held it at the fork


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_count_fork)


def _decode_body(body: bytes | None) -> Any:
    """A request body's JSON as Python values, decimals as ``Decimal`` (their text kept, so a
    hook's edited body sends the untouched ones as they were)."""
    return None if body is None else decode_wire(body)


class _Call:
    """The state of one logical call while it runs (one object instead of a dozen locals)."""

    __slots__ = (
        "attempts",
        "base",
        "body",
        "gone_on_replay",
        "headers",
        "method",
        "obo",
        "operation",
        "params",
        "path_template",
        "rederive",
        "refine_error",
        "request",
        "resource_id",
        "resource_type",
        "timeout",
        "url",
    )

    def __init__(self, method: str, url: str, base: Base) -> None:
        self.method = method
        self.url = url
        self.base = base
        self.params: Any = None
        self.headers: dict[str, str] = {}
        self.body: bytes | None = None
        self.obo: str | None = None
        self.request: httpx.Request | None = None
        self.attempts: list[RequestAttempt] = []
        self.path_template: str | None = None
        self.resource_type: str | None = None
        self.resource_id: str | None = None
        self.operation: str | None = None
        self.timeout: httpx.Timeout | None = None
        self.rederive = False  # a hook changed the method or path: describe the wire request
        # A replayed DELETE answered 410: taken as the earlier attempt's delete (see _send).
        self.gone_on_replay = False
        # Turns the error for an answer >= 400 into a more precise one (see _request).
        self.refine_error: Callable[[OperationOutcomeError], OperationOutcomeError] | None = None


class AsyncBaseClient:
    """The transport core shared by every endpoint method of ``AsyncMedplumClient``.

    Construct it like the client (all arguments after ``base_url`` are keyword-only). It owns
    one httpx connection pool unless ``http_client`` is given (then it never closes that one).
    ``retry`` (not in the upstream contract) tunes retries; ``RetryPolicy(max_attempts=1)``
    turns them off.
    """

    @named_constructor  # an argument error names the class called, not AsyncBaseClient
    def __init__(
        self,
        base_url: str = "https://api.medplum.com/",
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        access_token: str | None = None,
        project_id: str | None = None,
        fhir_url_path: str = "fhir/R4/",
        timeout: float = 30.0,
        http_client: httpx.AsyncClient | None = None,
        before_request: BeforeRequestHook | None = None,
        # The sync client takes only a plain function (unasync would write the union twice).
        on_request_complete: (  # async-only
            OnRequestCompleteHook | AsyncOnRequestCompleteHook | None  # async-only
        ) = None,  # async-only
        # sync-only: on_request_complete: OnRequestCompleteHook | None = None,
        allow_insecure_http: bool = False,
        failed_refresh_cooldown: float = 1.0,
        default_on_behalf_of: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url: str = normalize_base_url(base_url, allow_insecure_http=allow_insecure_http)
        if not isinstance(fhir_url_path, str):
            raise TypeError(f"fhir_url_path must be a str, got {type(fhir_url_path).__name__}")
        if (
            not fhir_url_path.isprintable()
            or any(c in fhir_url_path for c in "?#\\")
            or "://" in fhir_url_path
        ):
            # A query or fragment would swallow every FHIR path after it, a control character
            # fail each call inside httpx, a URL be read as path segments of base_url.
            raise ValueError(
                "fhir_url_path must be a path under base_url such as 'fhir/R4/' (no URL, '?', "
                f"'#', '\\' or control characters), got {fhir_url_path!r}"
            )
        fhir_path = fhir_url_path.strip("/")
        self.fhir_url_path: str = fhir_path + "/" if fhir_path else ""
        if fhir_path and self.base_url.endswith("/" + self.fhir_url_path):
            # A FHIR base given as base_url: every request would go to .../fhir/R4/fhir/R4/...
            # and the token request to .../fhir/R4/oauth2/token, failing far from the cause.
            raise ValueError(
                f"base_url {self.base_url!r} ends with the FHIR path {self.fhir_url_path!r}: "
                "pass the Medplum server root (such as 'https://api.medplum.com/'); the client "
                "adds fhir_url_path itself"
            )
        self.fhir_base_url: str = self.base_url + self.fhir_url_path
        self._origin = origin_of(self.base_url)
        self._api_prefix = httpx.URL(self.base_url).path
        self._fhir_prefix = httpx.URL(self.fhir_base_url).path
        self._fhir_root = self._fhir_prefix.rstrip("/")

        for name, secret in (
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("access_token", access_token),
            ("project_id", project_id),
        ):
            if secret is not None and not isinstance(secret, str):
                raise TypeError(
                    f"{name} must be a non-empty str or None, got {type(secret).__name__}"
                )
            if secret is not None and not secret.strip():
                # Not echoed (it may be a credential); "  " would fail only at the token request.
                raise ValueError(
                    f"{name} must be a non-empty str or None, got an empty or blank str"
                )
        if access_token is not None and not is_header_safe(access_token):
            # Never echoed: it is a credential.
            raise ValueError(
                "access_token must be printable ASCII, not ending in a space (it is sent in the "
                "Authorization header)"
            )
        if access_token is not None and access_token[:7].lower() == "bearer ":
            # fhirpy and others take the header value ("Bearer <token>"); sent as given it was
            # "Bearer Bearer <token>", a 401. Never echoed: it is a credential.
            raise ValueError(
                "access_token starts with the scheme 'Bearer ': pass the token alone; the "
                "client sends it as 'Authorization: Bearer <token>'"
            )
        if (client_id is None) != (client_secret is None):
            raise ValueError("client_id and client_secret must be given together")
        if isinstance(timeout, httpx.Timeout):
            # Accepted per call and by pymedplum 0.6's constructor; say where it goes here.
            pool = httpx.AsyncClient.__name__  # outside the f-string, for unasync
            raise TypeError(
                "timeout must be a finite number of seconds > 0, got Timeout; for an "
                f"httpx.Timeout pass http_client=httpx.{pool}(timeout=..., "
                "follow_redirects=False), or timeout= per call"
            )
        check_seconds("timeout", timeout)
        check_seconds("failed_refresh_cooldown", failed_refresh_cooldown, allow_zero=True)
        if before_request is not None and not callable(before_request):
            raise TypeError("before_request must be callable or None")
        if before_request is not None and _synchronization.is_coroutine_callable(before_request):
            # Its coroutine would never run: the request must be final before it is sent.
            raise TypeError("before_request must be a synchronous function, not a coroutine one")
        if before_request is not None:
            check_hook_arity("before_request", before_request, "PreparedRequest")
        if on_request_complete is not None:
            _synchronization.check_complete_hook(on_request_complete)
            check_hook_arity("on_request_complete", on_request_complete, "RequestEvent")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, got {type(retry).__name__}")

        self.timeout: float = float(timeout)
        if http_client is None:
            self._http = self._new_pool()
            self._owns_http = True
        else:
            if not isinstance(http_client, httpx.AsyncClient):
                expected = httpx.AsyncClient.__name__  # outside the f-string, for unasync
                raise TypeError(
                    f"http_client must be an httpx.{expected}, got {type(http_client).__name__}"
                )
            if http_client.follow_redirects:
                raise ValueError(
                    "http_client must be created with follow_redirects=False: a followed "
                    "redirect would carry the bearer token to wherever the server points"
                )
            self._http = http_client
            self._owns_http = False

        # Straight-to-transport sends (see _send_once) only where httpx would add nothing.
        self._direct = (
            hasattr(self._http, "_transport_for_url")
            and self._http.auth is None
            and not any(self._http.event_hooks.values())
        )
        self._lean = self._direct and not self._http.params and str(self._http.base_url) == ""
        self._client_headers = {k.lower(): v for k, v in self._http.headers.items()}
        self.client_id: str | None = client_id
        self.project_id: str | None = project_id
        self._generation = _fork_generation
        self._loop: object | None = None  # AsyncMedplumClient: the event loop it belongs to
        self.retry_policy: RetryPolicy = retry if retry is not None else RetryPolicy()
        self._before_request = before_request
        self._on_request_complete = on_request_complete
        self.default_on_behalf_of: str | None = _obo.optional_membership(
            default_on_behalf_of, argument="default_on_behalf_of"
        )
        self._obo_var: ContextVar[str | None] = ContextVar(
            f"pymedplum_on_behalf_of_{id(self):x}", default=None
        )
        self._closed = False
        self._tokens = AsyncTokenManager(
            token_url=self.base_url + "oauth2/token",
            client_id=client_id,
            client_secret=client_secret,
            access_token=access_token,
            cooldown=float(failed_refresh_cooldown),
            policy=lambda: self.retry_policy,
            emit=self._emit,
        )
        for name in self._http.headers:
            # A caller pool's default headers go out with every request too.
            self._check_caller_header(name, where="http_client's default headers")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"auth={self._tokens.mode!r}, client_id={self.client_id!r})"
        )

    # --- lifecycle -------------------------------------------------------------------------

    def _new_pool(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
            headers={"User-Agent": _USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
        )

    async def aclose(self) -> None:
        """Close the connection pool this client created (never a caller-supplied one).
        The client refuses further calls either way.

        An AsyncMedplumClient closed from another event loop than the one that used it raises
        RuntimeError, its pool left as it is (its connections are that loop's: closing them
        here fails, or acts on that loop from outside it); the client is closed all the same."""
        self._closed = True
        # A pool inherited through os.fork() is the parent's (its sockets too): not closed here.
        if self._owns_http and self._generation == _fork_generation:
            self._check_loop("it was closed in")
            await self._http.aclose()

    def _check_context(self) -> None:
        """RuntimeError for a client used where its connections are not its own: from a
        second event loop, or with a caller's pool in a forked child. An owned pool inherited
        through os.fork() is replaced by a new one."""
        if self._closed:
            raise RuntimeError(_CLOSED)  # before a forked child would open a new pool
        if self._generation != _fork_generation:
            if not self._owns_http:
                raise RuntimeError(
                    f"{type(self).__name__} was created before os.fork() with a caller-supplied "
                    "http_client, whose pooled connections this process shares with its parent "
                    "(answers could reach the wrong process); create the http_client and the "
                    "client in the child process"
                )
            with _BIND_LOCK:  # threads the child started may get here together
                if self._generation != _fork_generation:
                    # Never closed here: closing could wait on a lock a parent thread held at
                    # the fork, and its sockets are the parent's too. Kept, so not collected.
                    self._inherited_http = self._http
                    self._http = self._new_pool()
                    self._tokens.after_fork()
                    self._loop = None
                    self._generation = _fork_generation
        loop = _synchronization.event_loop()
        if loop is not self._loop:
            with _BIND_LOCK:
                if self._loop is None:
                    self._loop = loop
            # Its locks and connections would wake the other loop's waiters, never this
            # one's: the call would hang instead of failing.
            self._check_loop("this call was made in")

    def _check_loop(self, what: str) -> None:
        """RuntimeError when the running event loop is not the one the client belongs to
        (the first that used it); ``what`` says what happened in the wrong one."""
        loop = _synchronization.event_loop()
        if self._loop is None or loop is self._loop:
            return
        state = "now closed" if _synchronization.is_closed_loop(self._loop) else "still open"
        raise RuntimeError(
            f"this {type(self).__name__} belongs to another event loop (the first one that "
            f"used it, {state}); {what} a different one. Its pooled connections are that "
            "loop's and cannot be closed from here (they are released when collected, with a "
            "ResourceWarning): create one client per event loop, inside it, and close it there "
            "(async with the client inside the coroutine given to asyncio.run)"
        )

    close = aclose  # async-only

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- On-Behalf-Of ----------------------------------------------------------------------

    def on_behalf_of(
        self, membership: str | Mapping[str, Any] | BaseModel
    ) -> _obo.OnBehalfOfContext[Self]:
        """Context manager: send ``X-Medplum-On-Behalf-Of`` for every request made by this client
        in the block (this task / thread only). Accepts a ProjectMembership id, a reference
        ``ProjectMembership/<id>``, or a ProjectMembership resource (dict or model)."""
        return _obo.OnBehalfOfContext(self._obo_var, _obo.normalize_membership(membership), self)

    def _bind_on_behalf_of(self, on_behalf_of: str | None) -> str:
        """The membership of a call whose requests go out later (a lazy page iteration),
        resolved now by the usual precedence, as a per-call value (``""`` for none) that
        every later request sends whatever the ambient value is by then."""
        return _obo.resolve(on_behalf_of, self._obo_var, self.default_on_behalf_of) or ""

    # --- low-level HTTP (paths relative to base_url, or same-origin absolute URLs) ----------

    async def get(
        self,
        path: str,
        *,
        params: QueryParams | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        on_behalf_of: str | None = None,
    ) -> Any:
        """GET a Medplum API path (relative to ``base_url``); the parsed JSON or ``None``.
        ``timeout`` overrides the client's for this call."""
        return await self._request(
            "GET", path, base=self._base_of(path), params=params, headers=headers,
            on_behalf_of=on_behalf_of, timeout=timeout, convert=self._json,
        )  # fmt: skip

    async def post(
        self,
        path: str,
        json: Any = None,
        *,
        params: QueryParams | None = None,
        content: bytes | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        on_behalf_of: str | None = None,
    ) -> Any:
        """POST ``json`` (or raw ``content``, or ``data`` form-encoded) to a Medplum API path;
        the parsed JSON or ``None``. ``timeout`` overrides the client's for this call."""
        return await self._send_body(
            "POST", path, json, params=params, content=content, data=data, headers=headers,
            timeout=timeout, on_behalf_of=on_behalf_of,
        )  # fmt: skip

    async def put(
        self,
        path: str,
        json: Any = None,
        *,
        params: QueryParams | None = None,
        content: bytes | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        on_behalf_of: str | None = None,
    ) -> Any:
        """PUT ``json`` (or raw ``content``, or ``data`` form-encoded) to a Medplum API path;
        the parsed JSON or ``None``. ``timeout`` overrides the client's for this call."""
        return await self._send_body(
            "PUT", path, json, params=params, content=content, data=data, headers=headers,
            timeout=timeout, on_behalf_of=on_behalf_of,
        )  # fmt: skip

    async def _send_body(
        self,
        method: str,
        path: str,
        json: Any,
        *,
        params: QueryParams | None,
        content: bytes | None,
        data: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        timeout: float | httpx.Timeout | None,
        on_behalf_of: str | None,
    ) -> Any:
        """The one body-carrying low-level call behind ``post`` and ``put``."""
        if data is not None:
            content, headers = form_body(data, json, content, headers)
        elif content is not None:
            # Bytes only: httpx would read an iterator or a file once, so a retry or the 401
            # replay would send an empty body, and it fails on a bytearray with a bare TypeError.
            content = binary_content("content", content)
        return await self._request(
            method, path, base=self._base_of(path), params=params, json=json, body_name="json",
            content=content, headers=headers, on_behalf_of=on_behalf_of, timeout=timeout,
            convert=self._json,
        )  # fmt: skip

    async def delete(
        self,
        path: str,
        *,
        params: QueryParams | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        on_behalf_of: str | None = None,
    ) -> Any:
        """DELETE a Medplum API path; the parsed JSON or ``None``.
        ``timeout`` overrides the client's for this call."""
        return await self._request(
            "DELETE", path, base=self._base_of(path), params=params, headers=headers,
            on_behalf_of=on_behalf_of, timeout=timeout, convert=self._json,
        )  # fmt: skip

    @staticmethod
    def _base_of(path: str) -> Base:
        if not isinstance(path, str):
            # An httpx.URL or bytes would fail later with a TypeError naming nothing.
            raise TypeError(
                f"path must be a str (a path relative to base_url or a same-origin URL), "
                f"got {type(path).__name__}"
            )
        # Schemes ignore case: "HTTPS://..." is an absolute URL too (then checked for origin).
        return "absolute" if path[:8].lower().startswith(("https://", "http://")) else "api"

    # --- response helpers for endpoint methods --------------------------------------------

    def _json(self, response: httpx.Response) -> Any:
        """The decoded JSON body, ``None`` for an empty one; ``MedplumError`` if not JSON."""
        content = response.content
        if not content:
            return None
        try:
            return decode_json(content)
        except ValueError as exc:
            kind = response.headers.get("Content-Type", "no content type")
            raise self._unreadable(
                response, f"expected a JSON response body, got {kind} ({len(content)} bytes): {exc}"
            ) from exc

    def _unreadable(self, response: httpx.Response, problem: str) -> MedplumError:
        """The ``MedplumError`` for a 2xx answer the SDK cannot use (not JSON, not an object, an
        empty body where a resource is due), saying which call got it: status, method and the
        PHI-free path template (never the body, which may be a proxy's page echoing the URL)."""
        return MedplumError(
            f"{problem} ({self._answer_of(response)})", response.status_code, response=response
        )

    def _answer_of(self, response: httpx.Response) -> str:
        """``HTTP 201 from POST /fhir/R4/Patient`` (PHI-free), and for a write answered 2xx that
        it was most likely applied: what an error about a usable status's body must say."""
        where = f"HTTP {response.status_code}"
        try:
            request = response.request
        except RuntimeError:  # a response built by hand, without a request
            pass
        else:
            template = describe_fhir_path(request.url.path, self._fhir_prefix)[3]
            where += f" from {request.method} {template}"
            if (
                request.method not in _SAFE_METHODS
                and 200 <= response.status_code < 300
                and not _is_search_post(request)
            ):
                # The caller must not take this for a failed write and send it again blind.
                where += "; the server reported success, so it was most likely applied"
        return where

    # --- the request path -------------------------------------------------------------------

    @overload
    async def _request(
        self,
        method: str,
        url: str,
        *,
        base: Base = "fhir",
        params: QueryParams | None = None,
        json: Any = None,
        body_name: str = "request body",
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        action: RequestAction | None = None,
        operation: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        path_template: str | None = None,
        on_behalf_of: str | None = None,
        replay_safe: bool | None = None,
        timeout: float | httpx.Timeout | None = None,
        refine_error: Callable[[OperationOutcomeError], OperationOutcomeError] | None = None,
        precondition: Callable[[], Awaitable[None]] | None = None,  # async-only
        # sync-only: precondition: Callable[[], None] | None = None,
        convert: None = None,
    ) -> httpx.Response: ...

    @overload
    async def _request(
        self,
        method: str,
        url: str,
        *,
        base: Base = "fhir",
        params: QueryParams | None = None,
        json: Any = None,
        body_name: str = "request body",
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        action: RequestAction | None = None,
        operation: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        path_template: str | None = None,
        on_behalf_of: str | None = None,
        replay_safe: bool | None = None,
        timeout: float | httpx.Timeout | None = None,
        refine_error: Callable[[OperationOutcomeError], OperationOutcomeError] | None = None,
        precondition: Callable[[], Awaitable[None]] | None = None,  # async-only
        # sync-only: precondition: Callable[[], None] | None = None,
        convert: Callable[[httpx.Response], ResultT],
    ) -> ResultT: ...

    async def _request(
        self,
        method: str,
        url: str,
        *,
        base: Base = "fhir",
        params: QueryParams | None = None,
        json: Any = None,
        body_name: str = "request body",
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        action: RequestAction | None = None,
        operation: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        path_template: str | None = None,
        on_behalf_of: str | None = None,
        replay_safe: bool | None = None,
        timeout: float | httpx.Timeout | None = None,
        refine_error: Callable[[OperationOutcomeError], OperationOutcomeError] | None = None,
        precondition: Callable[[], Awaitable[None]] | None = None,  # async-only
        # sync-only: precondition: Callable[[], None] | None = None,
        convert: Callable[[httpx.Response], Any] | None = None,
    ) -> Any:
        """Send one logical call and return its 2xx (or 304) response, or what ``convert``
        reads from it.

        Errors: an answer >= 400 raises the mapped ``OperationOutcomeError`` subclass (its
        body undecodable or not), a transport failure or an answer the call returns (a 2xx, a
        replayed DELETE's 410) whose body cannot be decoded ``NetworkError``, a cross-origin
        ``base="absolute"`` URL ``UnsafeRedirectError``, any other 3xx (never followed)
        ``UnsafeRedirectError`` when it points at another origin, else ``MedplumError``.
        Exactly one ``RequestEvent`` is emitted, whatever happens (a cancellation included).
        ``convert`` runs before it: an answer it cannot use (``MedplumError``: an HTML page,
        an empty body where a resource is due) is the event's ``final_exception`` too, not a
        success the caller never saw.
        ``refine_error`` may replace the exception of an error answer with a more precise one
        (what the caller, the attempt and the event all see). ``precondition`` runs once the
        request is prepared, before anything is sent: an exception from it ends the call (its
        event then has no attempts). ``body_name`` is what an error about ``json`` calls it
        (``json`` for the low-level ``post`` / ``put``, whose argument it is).
        """
        call = _Call(method.upper(), url, base)
        call.path_template = path_template
        call.resource_type = resource_type
        call.resource_id = resource_id
        call.operation = operation
        call.refine_error = refine_error
        if timeout is not None:
            call.timeout = _timeout(timeout)
        started_at = datetime.now(timezone.utc) if self._on_request_complete is not None else None
        error: BaseException | None = None
        try:
            self._prepare(call, params, json, content, headers, on_behalf_of, body_name)
            if precondition is not None:
                await precondition()
            safe = (
                replay_safe if replay_safe is not None else RetryPolicy.is_replay_safe(call.method)
            )
            response = await self._send(call, safe)
            return response if convert is None else convert(response)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if started_at is not None:
                await self._emit(
                    self._event(call, started_at, error, None if call.rederive else action)
                )

    def _prepare(
        self,
        call: _Call,
        params: QueryParams | None,
        json: Any,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        on_behalf_of: str | None,
        body_name: str = "request body",
    ) -> None:
        base = call.base
        if base == "fhir":
            call.url = self._join(self.fhir_base_url, call.url)
        elif base == "api":
            call.url = self._join(self.base_url, call.url)
        elif base == "absolute":
            check_same_origin(self._origin, call.url, what="server-supplied URL")
        else:
            raise ValueError(f"base must be 'fhir', 'api' or 'absolute', got {base!r}")
        params = check_query_params(params)
        call.obo = _obo.resolve(on_behalf_of, self._obo_var, self.default_on_behalf_of)
        hdrs = {"Accept": _ACCEPT, "X-Medplum": "extended"}
        if json is not None:
            if content is not None:
                raise TypeError("pass either json= or content=, not both")
            call.body = encode_json(json, body_name)
            hdrs["Content-Type"] = "application/fhir+json" if base == "fhir" else "application/json"
        else:
            call.body = content
        caller_headers = check_headers(headers)
        if caller_headers:
            for key, value in caller_headers.items():
                check_header(key, value)
                self._check_caller_header(key)
                set_header(hdrs, key, value)
        call.headers = hdrs
        if params and "?" in call.url:
            # httpx would replace the URL's own query with params=: keep both, in order.
            call.url, _, query = call.url.partition("?")
            params = [*parse_qsl(query, keep_blank_values=True), *_param_items(params)]
        call.params = params
        if self._before_request is not None:
            self._apply_before_request(call, json)

    def _check_caller_header(self, name: str, where: str = "headers") -> None:
        """ValueError for a caller header the client sets itself: it would bypass the
        On-Behalf-Of checks and audit record, or be silently replaced."""
        lower = name.lower()
        if lower == _OBO_LOWER:
            raise ValueError(
                f"{where} must not set {name}: pass on_behalf_of= (or use client.on_behalf_of"
                "(...), or default_on_behalf_of=), which is validated and recorded in the "
                "RequestEvent"
            )
        if lower == "host":
            raise ValueError(f"{where} must not set Host: it comes from the URL")
        if lower in _FRAMING_HEADERS:
            # A wrong one sends the headers, then fails inside h11 with a bare exception (and
            # Content-Length: 0 makes the server read an empty body).
            raise ValueError(f"{where} must not set {name}: it comes from the body")
        if lower == "authorization" and self._tokens.mode != "none":
            raise ValueError(
                f"{where} must not set Authorization: this client sends its own bearer token"
            )

    @staticmethod
    def _join(prefix: str, url: str) -> str:
        # Neither message shows the query: a search's values (a name, a birth date) are PHI.
        path, query_sep, _ = url.partition("?")
        if "://" in path or path.startswith("//") or "\\" in path:
            shown = repr(path) + (" (query not shown)" if query_sep else "")
            raise ValueError(f"expected a path relative to the base URL, got {shown}")
        if not url.isprintable():
            # httpx would refuse it with its own InvalidURL, after the call had started.
            at = next(i for i, c in enumerate(url) if not c.isprintable())
            raise ValueError(
                f"path must not contain control characters, got {url[at]!r} at index {at}"
                + (" (in its query)" if query_sep and at > len(path) else "")
            )
        return prefix + url.lstrip("/")

    def _apply_before_request(self, call: _Call, json: Any) -> None:
        assert self._before_request is not None
        probe = self._http.build_request(call.method, call.url, params=call.params)
        visible = {k: v for k, v in call.headers.items() if k.lower() not in _SECRET_HEADERS}
        original = PreparedRequest(
            method=call.method,
            url=str(probe.url),
            headers=dict(visible),
            # A fresh copy decoded from the encoded body (decimals keep their text): a hook
            # editing it in place can never reach the caller's resource.
            json_body=_decode_body(call.body) if json is not None else None,
        )
        result = self._before_request(original)
        if result is None:
            return
        problem = self._hook_violation(original, result)
        if problem is not None:
            hooks_logger.warning(
                "before_request hook result discarded (%s); sending the original request", problem
            )
            return
        headers = dict(result.headers)
        for key, value in call.headers.items():
            if key.lower() in _SECRET_HEADERS:
                set_header(headers, key, value)  # the caller's own secret headers stay
        if result.json_body is not None and (
            json is None or result.json_body != _decode_body(call.body)
        ):  # a replaced or an in-place edited body
            call.body = encode_json(result.json_body)
            if not has_header(headers, "Content-Type"):
                headers["Content-Type"] = "application/fhir+json"
        if result.method.upper() != original.method or (
            httpx.URL(result.url).path != httpx.URL(original.url).path
        ):
            # The endpoint's facts describe the original request; the audit event must
            # describe what is sent, so derive them from the new method and path.
            call.rederive = True
            call.path_template = call.resource_type = call.resource_id = call.operation = None
        call.method = result.method.upper()
        call.url = result.url
        call.params = None  # the hook saw (and returned) the URL with its query
        call.headers = headers

    def _hook_violation(self, original: PreparedRequest, result: object) -> str | None:
        if not isinstance(result, PreparedRequest):
            return f"returned {type(result).__name__}, expected PreparedRequest or None"
        if not isinstance(result.url, str) or not is_same_origin(self._origin, result.url):
            return "the URL leaves the client's origin"
        try:
            httpx.URL(result.url)
        except httpx.InvalidURL:
            return "the URL is not a valid URL"
        if not isinstance(result.headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in result.headers.items()
        ):
            return "headers must be a dict of str to str"
        for key, value in result.headers.items():
            try:
                check_header(key, value)
            except ValueError as exc:
                return str(exc)
        injected = sorted(k for k in result.headers if k.lower() in _SECRET_HEADERS)
        if injected:
            return "it sets auth / On-Behalf-Of headers " + ", ".join(injected)
        if any(k.lower() == "host" for k in result.headers):
            # Host picks the virtual host behind a shared front end: another origin in effect.
            return "it sets the Host header (change the URL instead; it must stay same-origin)"
        framing = sorted(k for k in result.headers if k.lower() in _FRAMING_HEADERS)
        if framing:
            return "it sets " + ", ".join(framing) + " (the body's framing comes from the body)"
        if not isinstance(result.method, str):
            return "method must be a str"
        method = result.method.upper()
        if method != original.method and method not in _SAFE_METHODS:
            return f"it changes the method {original.method} to unsafe {method}"
        return None

    async def _send(self, call: _Call, replay_safe: bool) -> httpx.Response:
        self._check_context()
        http = self._http
        tokens = self._tokens
        policy = self.retry_policy
        attempts = call.attempts
        refreshed = False
        tries = 0
        possibly_sent = False
        while True:
            if self._closed or http.is_closed:
                # httpx's own check, which the straight-to-transport path would skip.
                raise RuntimeError(_CLOSED)
            token = await tokens.token(http)
            if self._closed:
                # Closed while the token was fetched: a request sent now would open a
                # connection in the closed pool, which nothing would ever close.
                raise RuntimeError(_CLOSED)
            request = self._build(call, token)
            call.request = request
            tries += 1
            t0 = time.perf_counter()
            try:
                response, undecodable = await self._send_once(request)
                if undecodable is not None and _returns(call, response.status_code, possibly_sent):
                    # The answer's data is lost: a NetworkError as for a transport failure.
                    raise undecodable
            except httpx.RequestError as exc:
                # Transport failures, and a 2xx whose body could not be decoded (DecodingError:
                # a broken Content-Encoding, a decompression bomb), which arrives after the
                # server processed the request. Any other status decides by itself: a 401 is
                # refreshed, a 503 retried, an error raised as its typed exception, whatever its
                # body. The exception reaches hooks (RequestAttempt) even when the call is
                # retried.
                drop_request_credentials(request)
                detach_error_requests(exc)  # the body stays out of exceptions too
                attempts.append(
                    RequestAttempt(len(attempts) + 1, None, time.perf_counter() - t0, call.obo, exc)
                )
                possibly_sent = possibly_sent or was_possibly_sent(exc)
                delay = policy.delay_for_error(exc, tries, replay_safe=replay_safe)
                if delay is None:
                    raise NetworkError(
                        f"{call.method} {self._template(call)} failed: {type(exc).__name__} "
                        f"after {len(attempts)} attempt(s); {_reached(exc, possibly_sent)}",
                        possibly_committed=possibly_sent,
                    ) from exc
                await _synchronization.sleep(delay)
                continue
            except BaseException as exc:
                # Cancelled or interrupted mid-attempt: the request may have reached the server,
                # so the call's RequestEvent records the attempt (as the token request's does).
                # An httpx error here came from a caller pool's event hook (raise_for_status()):
                # it goes to the caller as it is, but without the token and the body.
                if isinstance(exc, httpx.HTTPError):
                    detach_error_requests(exc)
                attempts.append(
                    RequestAttempt(len(attempts) + 1, None, time.perf_counter() - t0, call.obo, exc)
                )
                raise
            status = response.status_code
            attempts.append(
                RequestAttempt(len(attempts) + 1, status, time.perf_counter() - t0, call.obo)
            )
            if _returns(call, status, possibly_sent):
                # A DELETE replayed after a gateway error or a lost connection may find the
                # resource gone (410): the earlier attempt most likely deleted it, which is what
                # was asked (and FHIR makes deleting a deleted resource a no-op). Not an error.
                call.gone_on_replay = status == 410
                return response
            if status < 400:
                # Never followed (the token would go along) and never read as an empty result.
                drop_request_credentials(request)
                redirect = self._redirect_error(call, response)
                if undecodable is not None:
                    _say_unread(redirect, undecodable)
                attempts[-1] = replace(attempts[-1], exception=redirect)
                raise redirect
            if status == 401 and not refreshed and tokens.can_refresh:
                # One forced refresh and one replay; it does not count as a retry.
                refreshed = True
                tries -= 1
                await response.aclose()
                await tokens.refresh_after_401(http, token)
                continue
            retry_after = retry_after_seconds(response)
            if status >= 500:
                possibly_sent = True
            delay = policy.delay_for_status(status, retry_after, tries, replay_safe=replay_safe)
            if delay is not None:
                await response.aclose()
                await _synchronization.sleep(delay)
                continue
            drop_request_credentials(request)
            # An error answer whose body could not be decoded is still that error (no outcome).
            body = json_or_none(response.content) if undecodable is None else None
            hint = self._hint(call, status, body)
            if status == 429:
                limits = response.headers.get_list("RateLimit")
                hint = hints.rate_limited(limits, retry_after, tries, policy)
            replayed = _stale_by_replay(call, status, possibly_sent)
            exc_obj = error_for_status(
                status,
                body=body,
                response=response,
                method=call.method,
                path=request.url.path,
                path_template=self._template(call),
                retry_after=retry_after,
                hint=hint + replayed,
            )
            if call.refine_error is not None and not replayed:
                # Not for a replayed conditional write: "nothing was updated, someone else
                # wrote it" may be false (the call's own earlier attempt may have written it).
                exc_obj = call.refine_error(exc_obj)
            if undecodable is not None:
                _say_unread(exc_obj, undecodable)  # after any refinement: no message loses it
            attempts[-1] = replace(attempts[-1], exception=exc_obj)
            raise exc_obj

    def _hint(self, call: _Call, status: int, body: Any = None) -> str:
        """What the caller most likely got wrong, for the usual causes of a 4xx (PHI-free)."""
        if status == 401 and self._tokens.mode == "none":
            return hints.NO_CREDENTIALS
        return (
            hints.body_too_large(status, call.body, call.headers, body)
            or hints.obo_membership(status, call.obo)
            or hints.resource_type(status, call.resource_type)
            or hints.resource_id(
                status, call.method, call.resource_type, call.resource_id, call.operation
            )
            or hints.deleted_version(status, call.method, self._template(call), body)
            or hints.fhir_path(
                status, call.request, self._api_prefix, self._fhir_prefix, self.fhir_url_path
            )
        )

    def _redirect_error(self, call: _Call, response: httpx.Response) -> MedplumError:
        """The error for a 3xx answer: ``UnsafeRedirectError`` when it points at another
        origin, else ``MedplumError``. Names the target's origin, never its path or query."""
        where = f"{call.method} {self._template(call)}"
        location = response.headers.get("Location")
        try:
            target = str(response.request.url.join(location)) if location else None
        except httpx.InvalidURL:
            target = "invalid:"
        if target is not None and not is_same_origin(self._origin, target):
            scheme, host, port = origin_of(target)
            return UnsafeRedirectError(
                f"{where} answered HTTP {response.status_code} redirecting to "
                f"{scheme or '?'}://{host or '?'}:{port}; the SDK does not follow redirects "
                "(the bearer token would go along)",
                response.status_code,
                response=response,
            )
        return MedplumError(
            f"{where} answered HTTP {response.status_code} (a redirect); the SDK does not "
            "follow redirects: call the target URL yourself",
            response.status_code,
            response=response,
        )

    def _build(self, call: _Call, token: str | None) -> httpx.Request:
        """The wire request of one attempt: the call's headers plus auth and OBO."""
        http = self._http
        if self._lean and not http.cookies:
            # What build_request would produce for a client without base_url, default params
            # or cookies, at two thirds of its cost (header names lower-cased, as on the wire).
            headers = (
                dict(self._client_headers)
                if self._owns_http
                else {k.lower(): v for k, v in http.headers.items()}
            )
            for key, value in call.headers.items():
                headers[key.lower()] = value
            if token is not None:
                headers["authorization"] = "Bearer " + token
            if call.obo is not None:
                headers["x-medplum-on-behalf-of"] = call.obo
            request = httpx.Request(
                call.method,
                call.url,
                params=call.params,
                headers=headers,
                content=call.body,
                extensions={"timeout": (call.timeout or http.timeout).as_dict()},
            )
        else:
            headers = dict(call.headers)
            if token is not None:
                set_header(headers, "Authorization", "Bearer " + token)
            if call.obo is not None:
                set_header(headers, _obo.OBO_HEADER, call.obo)
            request = http.build_request(
                call.method,
                call.url,
                params=call.params,
                headers=headers,
                content=call.body,
                timeout=call.timeout if call.timeout is not None else http.timeout,
            )
        if call.body is not None and len(call.body) > BODY_CHUNK:
            # Sent in slices (a large upload is not copied whole by the HTTP layer); the
            # request keeps content and Content-Length from the bytes.
            request.stream = ChunkedBody(call.body)
        return request

    async def _send_once(
        self, request: httpx.Request
    ) -> tuple[httpx.Response, httpx.DecodingError | None]:
        """One wire attempt, the body read: the response, and the ``DecodingError`` of a body
        that could not be decoded (a broken Content-Encoding, a decompression bomb; the
        response is then closed, its body unread), which the status decides about (see
        ``_send``). For a client without auth or event hooks the request goes straight to the
        transport the client would pick (mounts and proxies included): httpx's redirect / auth /
        hook machinery is a no-op there and costs more than the rest of the SDK together
        (docs/performance.md)."""
        try:
            if not self._direct:
                # Explicit: the caller's client may have been switched to follow redirects.
                response = await self._http.send(request, follow_redirects=False, stream=True)
            else:
                transport = self._http._transport_for_url(request.url)
                try:
                    response = await transport.handle_async_request(request)
                except httpx.RequestError as exc:
                    if exc._request is None:  # as httpx.Client.send would have done
                        exc.request = request
                    raise
                response.request = request
        except BaseException:
            # A cancellation (or failure) here can leave httpcore's pool holding a connection
            # slot nobody will ever use or free (see _pool.py); give it back.
            await after_failed_send(self._http, request)
            raise
        try:
            await read_body(response)
        except httpx.DecodingError as exc:
            return response, exc
        except BaseException:
            # read_body closed the response; a cancellation can cut that close short and
            # leave its connection slot taken in httpx's pool (see _pool.py).
            await after_failed_read(response)
            raise
        return response, None

    # --- RequestEvent -----------------------------------------------------------------------

    def _describe(self, call: _Call) -> tuple[str, str | None, str | None, str | None, str]:
        """``(path, resource_type, resource_id, operation, path_template)`` of a call."""
        if call.request is not None:
            path = call.request.url.path
        else:  # the call failed before a request was built
            try:
                path = httpx.URL(call.url).path
            except httpx.InvalidURL:
                path = call.url.split("?", 1)[0]
        rtype, rid, op, template = describe_fhir_path(path, self._fhir_prefix)
        if call.path_template is not None:
            template = call.path_template.replace(
                "{resourceType}", call.resource_type or rtype or "{resourceType}"
            )
            if not template.startswith("/"):
                # Server-handed absolute URLs (next pages, job status) are FHIR URLs too.
                prefix = self._api_prefix if call.base == "api" else self._fhir_prefix
                template = prefix + template
        return (
            path,
            call.resource_type or rtype,
            call.resource_id if call.resource_id is not None else rid,
            call.operation or op,
            template,
        )

    def _template(self, call: _Call) -> str:
        return self._describe(call)[4]

    def _event(
        self,
        call: _Call,
        started_at: datetime,
        error: BaseException | None,
        action: RequestAction | None,
    ) -> RequestEvent:
        path, rtype, rid, op, template = self._describe(call)
        query: dict[str, list[str]] | None = None
        if call.request is not None and call.request.url.query:
            query = parse_qs(call.request.url.query.decode("ascii"), keep_blank_values=True)
        elif call.request is not None and _is_search_post(call.request):
            # A search too long for a URL went as POST _search: its form body is the query.
            query = parse_qs(call.request.content.decode("ascii"), keep_blank_values=True)
        if action is None and path.startswith(self._fhir_root):
            fhir_root = path.rstrip("/") == self._fhir_root
            action = derive_action(call.method, rtype, rid, op, template, fhir_root=fhir_root)
        final_status = call.attempts[-1].status_code if call.attempts else None
        success = (
            error is None
            and final_status is not None
            and (final_status < 400 or call.gone_on_replay)
        )
        return RequestEvent(
            method=call.method,
            path=path,
            path_template=template,
            query_params=query,
            resource_type=rtype,
            resource_id=rid,
            operation=op,
            started_at=started_at,
            ended_at=datetime.now(timezone.utc),
            attempts=list(call.attempts),
            final_status_code=final_status,
            final_exception=error,
            action=action,
            outcome="success" if success else "error",
        )

    async def _emit(self, event: RequestEvent) -> None:
        hook = self._on_request_complete
        if hook is None:
            return
        try:
            await _synchronization.call_hook(hook, event)
        except Exception as exc:
            # Type and frames only, no exc_info: the message of a hook's exception tends to
            # quote the event (PHI), and this record goes to the application's general logs.
            hooks_logger.warning(
                "on_request_complete hook raised %s; ignored (the call's result is unaffected)",
                describe_hook_failure(exc),
            )


def _stale_by_replay(call: _Call, status: int, possibly_sent: bool) -> str:
    """For a 412 to a request with If-Match that was sent again after an attempt that may have
    been applied (a gateway's 5xx, a connection lost after sending): what the caller must know,
    as a hint; else "". That attempt's own write may be what moved the version on."""
    if status != 412 or not possibly_sent:
        return ""
    if_match = header_value(call.headers, "If-Match")
    if if_match is None:
        return ""
    earlier = next(
        (
            f"HTTP {a.status_code}" if a.status_code is not None else type(a.exception).__name__
            for a in reversed(call.attempts[:-1])
            if (a.status_code or 0) >= 500
            or (a.exception is not None and was_possibly_sent(a.exception))
        ),
        "a failure",
    )
    return (
        f"; If-Match {if_match} is not the current version of the resource, but this request "
        f"was sent again after an earlier attempt ended in {earlier}: that attempt may have "
        "applied it. Read the resource to see whether it holds the change before sending it "
        "again"
    )


def _returns(call: _Call, status: int, possibly_sent: bool) -> bool:
    """Whether the call returns this answer: a 2xx or 304, or a replayed DELETE's 410 (the
    delete done). So a body of one that could not be decoded loses its data; any other status
    is decided without its body."""
    return (
        status < 300
        or status == 304
        or (status == 410 and call.method == "DELETE" and possibly_sent)
    )


def _say_unread(exc: MedplumError, undecodable: httpx.DecodingError) -> None:
    """Make the error of an answer whose body could not be decoded (an error status, a 3xx)
    say so, its ``response`` having no body: the reason ends its message, and the
    DecodingError, without the token its request carried, is its cause."""
    exc.args = (f"{exc}; {why_unread(undecodable)}", *exc.args[1:])
    detach_error_requests(undecodable)
    exc.__cause__ = undecodable


def _reached(exc: httpx.RequestError, possibly_sent: bool) -> str:
    """What a transport failure means for the call, for its NetworkError's message: whether a
    write may have been applied, so the caller checks before sending it again."""
    if isinstance(exc, httpx.DecodingError):
        return answered_unread(exc)
    if possibly_sent:
        return "the request may have reached the server"
    return "the request never reached the server"


def _param_items(params: QueryParams) -> list[tuple[str, QueryValue]]:
    """``params=`` as ``(name, value)`` pairs (a list value repeats its name)."""
    if isinstance(params, str):
        # A query str (check_query_params accepts one): list() would split it into characters.
        return list(parse_qsl(params.removeprefix("?"), keep_blank_values=True))
    if not isinstance(params, Mapping):
        return list(params)
    items: list[tuple[str, QueryValue]] = []
    for name, value in params.items():
        if isinstance(value, Sequence) and not isinstance(value, str):
            items.extend((name, v) for v in value)
        else:
            items.append((name, value))
    return items


def _timeout(value: object) -> httpx.Timeout:
    """A per-call ``timeout``: seconds > 0 or an ``httpx.Timeout``; else TypeError/ValueError."""
    if isinstance(value, httpx.Timeout):
        return value
    return httpx.Timeout(check_seconds("timeout", value, alternative="an httpx.Timeout"))


def _is_search_post(request: httpx.Request) -> bool:
    """A ``POST .../_search`` with a form body (how a long search query is sent)."""
    return (
        request.method == "POST"
        and request.url.path.endswith("/_search")
        and request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
    )

"""The token manager: client credentials against ``{base_url}oauth2/token``, refreshed before
expiry, single-flight under concurrency, with a cooldown after a failed refresh."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import httpx

from pymedplum._async import _synchronization
from pymedplum._async._body import read_body
from pymedplum._async._pool import after_failed_read, after_failed_send
from pymedplum._decoding import answered_unread, why_unread
from pymedplum._request_builders.headers import is_header_safe
from pymedplum._retry import RetryPolicy, retry_after_seconds
from pymedplum._serialization import DuplicateKeyError, json_or_problem
from pymedplum.exceptions import (
    AuthenticationError,
    TokenRefreshCooldownError,
    detach_error_requests,
    detached_request,
)
from pymedplum.hooks import RequestAttempt, RequestEvent

logger = logging.getLogger("pymedplum.auth")

# Refresh this long before the server's expiry (at most half the lifetime for short tokens).
REFRESH_MARGIN_SECONDS = 60.0


class AsyncTokenManager:
    """Holds the bearer token of one client and fetches a new one when needed.

    ``token()`` is the hot path: a fresh token is returned without locking. Only when the token
    is missing or inside its refresh margin do callers queue on the lock, and the first one
    through fetches while the others reuse its result: one token request per expiry. While an
    early refresh runs, callers whose token has not expired go on with it without queueing.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str | None,
        client_secret: str | None,
        access_token: str | None,
        cooldown: float,
        policy: Callable[[], RetryPolicy],
        emit: Callable[[RequestEvent], Awaitable[None]],  # async-only
        # sync-only: emit: Callable[[RequestEvent], None],
    ) -> None:
        self._token_url = token_url
        self._token_path = httpx.URL(token_url).path
        self._client_id = client_id
        self._client_secret = client_secret
        # (token, monotonic time to refresh it, monotonic time it expires) as one tuple, so
        # that a thread reading it never pairs a new token with old deadlines. A failed early
        # refresh keeps the token until it expires. A given access_token has no known expiry:
        # it is used until the server answers 401.
        self._state: tuple[str | None, float, float] = (
            (access_token, math.inf, math.inf)
            if access_token is not None
            else (None, -math.inf, -math.inf)
        )
        self._cooldown = cooldown
        # Retries of the token request, and the cap of a cooldown the server asks for: the
        # client's RetryPolicy as it is at each request (client.retry_policy may be replaced).
        self._policy = policy
        self._failed_until = -math.inf
        self._lock = _synchronization.AsyncLock()
        self._emit = emit

    @property
    def can_refresh(self) -> bool:
        """Whether client credentials are configured, so a new token can be fetched."""
        return self._client_id is not None and self._client_secret is not None

    @property
    def mode(self) -> str:
        """``client_credentials``, ``access_token`` or ``none`` (for the client's repr)."""
        if self.can_refresh:
            return "client_credentials"
        return "access_token" if self._state[0] is not None else "none"

    async def token(self, http: httpx.AsyncClient) -> str | None:
        """A usable bearer token (fetching one if needed), or ``None`` without credentials."""
        token, refresh_at, expires_at = self._state
        if token is not None and time.monotonic() < refresh_at:
            return token
        if not self.can_refresh:
            return token
        if token is not None and time.monotonic() < expires_at and self._lock.locked():
            # Another caller is refreshing early: the current token is still valid, so go on
            # with it rather than wait for the token endpoint (a slow one would stall every call).
            return token
        events: list[RequestEvent] = []
        try:
            async with self._lock:
                token, refresh_at, expires_at = self._state
                if token is not None and time.monotonic() < refresh_at:
                    return token
                early = token is not None and time.monotonic() < expires_at
                try:
                    return await self._fetch(http, events, retry=not early)
                except (AuthenticationError, TokenRefreshCooldownError) as exc:
                    if token is None or time.monotonic() >= expires_at:
                        raise
                    # An early refresh failed but the current token has not expired: keep
                    # using it (the next call retries once the cooldown is over).
                    if isinstance(exc, AuthenticationError):
                        logger.warning("early token refresh failed; the current token is kept")
                    return token
        finally:
            await self._emit_all(events)

    async def refresh_after_401(self, http: httpx.AsyncClient, rejected: str | None) -> str:
        """A new token after the server rejected ``rejected``; reuses one another caller
        fetched meanwhile."""
        events: list[RequestEvent] = []
        try:
            async with self._lock:
                token, refresh_at, _ = self._state
                if token is not None and token != rejected and time.monotonic() < refresh_at:
                    return token
                return await self._fetch(http, events)
        finally:
            await self._emit_all(events)

    def after_fork(self) -> None:
        """In a forked child: a new lock (the parent's may be held by a thread the child lacks)."""
        self._lock = _synchronization.AsyncLock()

    def expire(self) -> None:
        """Treat the current token as unusable: the next call fetches a new one."""
        self._state = (self._state[0], -math.inf, -math.inf)

    async def _emit_all(self, events: list[RequestEvent]) -> None:
        # Outside the lock and after the new token is stored: a hook may itself call the
        # client (an audit write), which needs the token and so the lock.
        for event in events:
            await self._emit(event)

    async def _fetch(
        self, http: httpx.AsyncClient, events: list[RequestEvent], *, retry: bool = True
    ) -> str:
        """Fetch and store a new token (the caller holds the lock); the token request's
        RequestEvent goes into ``events`` for the caller to emit once the lock is released.

        With ``retry``, a transient failure (no connection, a 502-504, a 429 whose wait is
        within ``max_retry_after``) is retried under the client's RetryPolicy, as a replay-safe
        API call is: a long paging run whose token expires while the token endpoint restarts
        must not end there (its iterator cannot be resumed). Sending the credentials again only
        issues another token. Not for an early refresh: the current token is still good."""
        now = time.monotonic()
        if now < self._failed_until:
            raise TokenRefreshCooldownError(retry_after=self._failed_until - now)
        started_at = datetime.now(timezone.utc)
        attempts: list[RequestAttempt] = []
        error: BaseException | None = None
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    token, expires_in, status = await self._post(http)
                except AuthenticationError as exc:
                    duration = time.perf_counter() - t0
                    delay = self._retry_delay(exc, len(attempts) + 1) if retry else None
                    # As for a call's attempts: a transport failure holds its httpx error (the
                    # AuthenticationError it became is the event's final_exception), an answer
                    # the exception it became if it ended the request, None if it was retried.
                    cause = _transport_failure(exc)
                    seen = cause if cause is not None else (exc if delay is None else None)
                    attempts.append(
                        RequestAttempt(len(attempts) + 1, exc.status_code, duration, None, seen)
                    )
                    if delay is None:
                        raise
                    await _synchronization.sleep(delay)
                    continue
                except BaseException as exc:  # cancelled mid-request: the attempt is recorded
                    attempts.append(
                        RequestAttempt(len(attempts) + 1, None, time.perf_counter() - t0, None, exc)
                    )
                    raise
                attempts.append(
                    RequestAttempt(len(attempts) + 1, status, time.perf_counter() - t0, None)
                )
                break
        except Exception as exc:
            # A cancelled caller (BaseException) is not a failed refresh: no cooldown then.
            error = exc
            # The cooldown, or longer when a rate-limited token endpoint says when to return:
            # asking earlier would only be refused again (Medplum limits logins per minute).
            # Not past max_retry_after: a proxy's "Retry-After: 99999999" would otherwise lock
            # the client out of every call for years, whatever the server's state.
            response = getattr(exc, "response", None)
            server_wait = _server_wait(response) if isinstance(response, httpx.Response) else 0.0
            cooldown = max(self._cooldown, min(server_wait, self._policy().max_retry_after))
            self._failed_until = time.monotonic() + cooldown
            logger.warning(
                "token request failed (%s); further refreshes wait %.2fs",
                type(error).__name__,
                cooldown,
            )
            raise
        except BaseException as exc:  # cancelled: reported as such, no cooldown
            error = exc
            raise
        finally:
            events.append(self._event(started_at, attempts, error))
        lifetime = expires_in if expires_in is not None else math.inf
        margin = min(REFRESH_MARGIN_SECONDS, lifetime / 2)
        fetched_at = time.monotonic()
        self._state = (token, fetched_at + lifetime - margin, fetched_at + lifetime)
        self._failed_until = -math.inf
        logger.debug("token acquired (expires in %s s)", expires_in)
        return token

    async def _post(self, http: httpx.AsyncClient) -> tuple[str, float | None, int]:
        """One token request: ``(token, lifetime, status)``, or AuthenticationError (its
        ``__cause__`` the httpx error when the endpoint could not be reached)."""
        undecodable: httpx.DecodingError | None = None
        try:
            request = http.build_request(
                "POST",
                self._token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id or "",
                    "client_secret": self._client_secret or "",
                },
                headers={"Accept": "application/json"},
            )
            try:
                # The client secret must not travel anywhere else: redirects are never followed.
                response = await http.send(request, follow_redirects=False, stream=True)
            except BaseException:
                # As for an API call: a cancellation can leave a pool slot taken (_pool.py).
                await after_failed_send(http, request)
                raise
            try:
                # The API calls' reading: a decompression bomb is refused there.
                await read_body(response)
            except httpx.DecodingError as exc:
                if 200 <= response.status_code < 300:
                    raise  # the token is lost with it
                undecodable = exc  # the status decides, as for an API call
            except BaseException:
                await after_failed_read(response)
                raise
        except httpx.HTTPError as exc:
            # Its request holds the form with the client secret (a transport error's, or an
            # HTTPStatusError's that a caller pool's response hook raised).
            detach_error_requests(exc)
            why = (
                answered_unread(exc)
                if isinstance(exc, httpx.DecodingError)
                else "check base_url and that the server is reachable"
            )
            raise AuthenticationError(
                f"client-credentials token request to {self._token_url} failed: "
                f"{type(exc).__name__}; {why}",
                method="POST",
                path_template=self._token_path,
            ) from exc
        # The request body holds the client secret; the response travels in exceptions.
        response.request = detached_request(response.request)
        token, expires_in = self._read(response, undecodable)
        return token, expires_in, response.status_code

    def _retry_delay(self, exc: AuthenticationError, attempt: int) -> float | None:
        """Seconds to wait before sending the token request again, or ``None``."""
        policy = self._policy()
        cause = _transport_failure(exc)
        if cause is not None:
            return policy.delay_for_error(cause, attempt, replay_safe=True)
        if isinstance(exc.response, httpx.Response) and exc.status_code is not None:
            wait = retry_after_seconds(exc.response)
            return policy.delay_for_status(exc.status_code, wait, attempt, replay_safe=True)
        return None

    def _read(
        self, response: httpx.Response, undecodable: httpx.DecodingError | None = None
    ) -> tuple[str, float | None]:
        """Token and lifetime from a token response, or the AuthenticationError saying why not
        (``undecodable``: the error of a non-2xx answer's body that could not be decoded, then
        its ``__cause__``, without the request it holds)."""
        body, problem = json_or_problem(response.content) if undecodable is None else (None, None)
        # Only a 2xx is a token answer: a 3xx (never followed) is not, whatever its body says.
        if not 200 <= response.status_code < 300 or not isinstance(body, dict):
            code = body.get("error") if isinstance(body, dict) else None
            detail = f" ({code})" if isinstance(code, str) and code.isidentifier() else ""
            # A 2xx answer of the token endpoint may hold a token whatever else is wrong with
            # it (cut off mid-body, a key given twice): its body stays out of the exception,
            # as for an object with an unusable token.
            holds_tokens = 200 <= response.status_code < 300
            if holds_tokens:
                # "failed: HTTP 200" alone reads as a contradiction: say what came instead (a
                # proxy's login page, an empty body), by type and size only.
                kind = response.headers.get("Content-Type", "no content type")
                size = len(response.content)
                detail = f" without a JSON object ({kind}, {size} bytes)"
                if isinstance(problem, DuplicateKeyError):
                    # Which access_token (or expires_in) was meant cannot be told: say so, by
                    # the key's name (never a value: the token).
                    detail = f" with a JSON object that gives a key twice ({problem})"
            if undecodable is not None:
                detail += "; " + why_unread(undecodable)
                detach_error_requests(undecodable)
            raise self._refused(
                f"client-credentials token request to {self._token_url} failed: "
                f"HTTP {response.status_code}{detail}{_hint(response.status_code)}",
                response,
                response=None if holds_tokens else response,
                outcome=body
                if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"
                else None,
            ) from undecodable
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise self._refused("token endpoint answered without an access_token", response)
        if not is_header_safe(token):
            # It could not be sent: a line break fails every call as a retried NetworkError, a
            # non-ASCII character as a UnicodeEncodeError whose repr holds the whole header.
            raise self._refused(
                "token endpoint answered an access_token that cannot be sent in a header "
                "(non-ASCII or control characters, or a trailing space)",
                response,
            )
        expires_in = body.get("expires_in")
        lifetime = (
            _seconds(expires_in)
            if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool)
            else None
        )
        if lifetime is not None and not lifetime > 0:
            # 0, negative or NaN would make every call fetch a new token (serialised on the
            # lock): no usable lifetime, so the token is used until the server answers 401.
            lifetime = None
        return token, lifetime

    def _refused(self, message: str, answer: httpx.Response, **fields: Any) -> AuthenticationError:
        """The AuthenticationError for a token request's ``answer`` (its status, the token
        path); ``fields``: its ``response`` and ``outcome``, when it may carry them."""
        return AuthenticationError(
            message,
            status_code=answer.status_code,
            method="POST",
            path_template=self._token_path,
            **fields,
        )

    def _event(
        self, started_at: datetime, attempts: list[RequestAttempt], error: BaseException | None
    ) -> RequestEvent:
        status = attempts[-1].status_code if attempts else None
        return RequestEvent(
            method="POST",
            path=self._token_path,
            path_template=self._token_path,
            query_params=None,
            resource_type=None,
            resource_id=None,
            operation=None,
            started_at=started_at,
            ended_at=datetime.now(timezone.utc),
            attempts=attempts,
            final_status_code=status,
            final_exception=error,
            action=None,
            outcome="success" if error is None and status is not None and status < 400 else "error",
        )


def _seconds(number: float) -> float | None:
    """``float(number)``, or ``None`` for an int too large for a float (10**400 raised
    OverflowError): such a lifetime is no usable one."""
    try:
        return float(number)
    except OverflowError:
        return None


def _server_wait(response: httpx.Response) -> float:
    """Seconds a 429 or 503 from the token endpoint asks to wait (Retry-After, or for a 429
    Medplum's RateLimit header); 0 when it says nothing."""
    if response.status_code not in (429, 503):
        return 0.0
    return retry_after_seconds(response) or 0.0


def _transport_failure(exc: AuthenticationError) -> httpx.RequestError | None:
    """The httpx error of a token request that got no usable answer (none, or a 2xx whose
    body could not be decoded); ``None`` for an answer, whose status decides (its
    ``__cause__`` may be the DecodingError of its body)."""
    cause = exc.__cause__
    if isinstance(cause, httpx.RequestError) and exc.status_code is None:
        return cause
    return None


def _hint(status: int) -> str:
    """What a user most likely got wrong, for a token request the server refused."""
    if status in (400, 401, 403):  # Medplum answers a wrong id or secret with 400 invalid_request
        return "; check client_id and client_secret"
    if status in (404, 405):
        return "; no token endpoint there: base_url must be the Medplum server root"
    if 300 <= status < 400:
        return "; the SDK does not follow redirects: base_url must be the server's own root"
    return ""

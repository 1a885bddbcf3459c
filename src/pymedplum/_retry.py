"""RetryPolicy: which failures are retried, how often, and how long to wait in between.

The rules (docs/errors-and-retries.md explains why):

* 429 is retried for every method: the server refused the request without processing it.
  ``Retry-After`` (seconds or an HTTP date) is honoured, else the reset time of Medplum's
  ``RateLimit`` header (``rate_limit_reset``); one longer than ``max_retry_after`` is not
  waited for, the ``RateLimitError`` is raised at once.
* 502 / 503 / 504, a reset or timed-out connection are retried only for replay-safe requests:
  GET, HEAD, OPTIONS, PUT, DELETE and what the caller marks ``replay_safe`` (conditional
  creates). A plain POST that may have reached the server is never sent twice.
* A connection that could not be opened at all (connect error / connect timeout / pool
  timeout) never carried the request, so it is retried for every method.
* Waits grow exponentially with "equal jitter" (half fixed, half random) up to ``max_backoff``.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timezone

import httpx

from pymedplum._request_builders.arguments import check_seconds

__all__ = ["RetryPolicy"]

_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_REPLAY_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# Failures before a single byte of the request left: safe to retry for any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Failures after the request may have been sent: retried only when replay-safe.
_MAYBE_SENT = (
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the client retries; pass ``retry=RetryPolicy(...)`` to the constructor.

    ``RetryPolicy(max_attempts=1)`` turns retries off. ``max_attempts`` counts wire attempts of
    one logical call (the first one included); the one-off 401 refresh-and-replay is separate.
    """

    max_attempts: int = 3
    backoff_base: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({502, 503, 504}))

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise TypeError(
                f"RetryPolicy.max_attempts must be an int >= 1, got {type(attempts).__name__}"
            )
        if attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be an int >= 1, got {attempts!r}")
        for name in ("backoff_base", "max_backoff", "max_retry_after"):
            check_seconds(f"RetryPolicy.{name}", getattr(self, name), allow_zero=True)
        object.__setattr__(self, "retry_statuses", _status_codes(self.retry_statuses))

    @staticmethod
    def is_replay_safe(method: str) -> bool:
        """Whether sending ``method`` twice cannot apply a change twice."""
        return method in _REPLAY_SAFE_METHODS

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), jittered."""
        # The exponent is capped: 2.0 ** 1024 raises OverflowError (max_attempts is unbounded).
        ceiling = min(self.max_backoff, self.backoff_base * (2.0 ** min(attempt - 1, 1023)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def delay_for_status(
        self, status_code: int, retry_after: float | None, attempt: int, *, replay_safe: bool
    ) -> float | None:
        """Seconds to wait before retrying a response, or ``None`` to not retry it."""
        if attempt >= self.max_attempts:
            return None
        # A 429 was not processed, so any method may be resent; a 502-504 may have been.
        if status_code != 429 and not (status_code in self.retry_statuses and replay_safe):
            return None
        if retry_after is None:
            return self.backoff(attempt)
        return retry_after if retry_after <= self.max_retry_after else None

    def delay_for_error(
        self, exc: BaseException, attempt: int, *, replay_safe: bool
    ) -> float | None:
        """Seconds to wait before retrying after a transport error, or ``None``."""
        if attempt >= self.max_attempts:
            return None
        if isinstance(exc, _NOT_SENT) or (replay_safe and isinstance(exc, _MAYBE_SENT)):
            return self.backoff(attempt)
        return None


def _status_codes(value: object) -> frozenset[int]:
    """``RetryPolicy.retry_statuses`` as a frozenset of HTTP status codes; else TypeError /
    ValueError naming it (a str, or codes given as strs, matched no status: retries were off
    without a word)."""
    expected = "RetryPolicy.retry_statuses must be a set of HTTP status codes (ints 100-599)"
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{expected}, got {type(value).__name__}")
    try:
        codes = frozenset(value)
    except TypeError:  # an unhashable item (a list of lists)
        raise TypeError(f"{expected}, got an unhashable item in it") from None
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"{expected}, got a {type(code).__name__} in it")
        if not 100 <= code <= 599:
            raise ValueError(f"{expected}, got {code}")
    return codes


def was_possibly_sent(exc: BaseException) -> bool:
    """Whether a transport failure happened after the request may have reached the server."""
    return not isinstance(exc, _NOT_SENT)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); ``None`` if absent
    or unreadable. Dates in the past give 0.

    Only ASCII digits count as delta-seconds (RFC 9110; a fraction is tolerated): a negative
    or otherwise malformed value is ignored, so the backoff applies, rather than read as
    "retry at once" (``float`` would also take ``-5``, ``1_0`` or non-ASCII digits). An HTTP
    date is always GMT: one without a zone is read as UTC, not as the machine's local time.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            # OverflowError: a year or zone offset no datetime holds ("01 Jan 99999999999").
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - time.time()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds the server asks the client to wait before asking again, or ``None``: its
    ``Retry-After``, else, for a 429, the reset of Medplum's ``RateLimit`` header (Medplum
    5.0.10 sends no Retry-After). The one reading of both the API calls and the token request."""
    wait = parse_retry_after(response.headers.get("Retry-After"))
    if wait is None and response.status_code == 429:
        wait = rate_limit_reset(response.headers.get_list("RateLimit"))
    return wait


def rate_limit_reset(values: list[str]) -> float | None:
    """Seconds until an exhausted quota resets, from ``RateLimit`` header values.

    Medplum 5.0.10 answers 429 without Retry-After; it sends one ``RateLimit`` item per limiter
    instead (``"requests";r=0;t=42``: r points remaining, t seconds to the reset; see
    packages/server/src/ratelimit.ts and fhir/fhirquota.ts). The wait is the largest t among
    the exhausted items (r=0); None when no item is exhausted or none can be read.
    """
    waits: list[float] = []
    for value in values:
        for item in value.split(","):
            params: dict[str, str] = {}
            for part in item.split(";")[1:]:
                key, _, number = part.partition("=")
                params[key.strip()] = number.strip()
            remaining, reset = params.get("r", ""), params.get("t", "")
            # ASCII digits only, as for Retry-After: int() would also take "+5", "1_0" or a
            # full-width digit. Zero read as text: int() refuses over 4300 digits (ValueError).
            if _ascii_digits(remaining) and _ascii_digits(reset) and not remaining.strip("0"):
                wait = float(reset)
                # Too many digits read as inf, which would be a token cooldown that never ends;
                # unreadable then, as in parse_retry_after.
                if math.isfinite(wait):
                    waits.append(wait)
    return max(waits) if waits else None


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()

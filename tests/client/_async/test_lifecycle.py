"""Lifecycle and timing under concurrency: an early refresh under way does not stall callers
whose token is still valid, and the retry backoff stays finite however many attempts."""

from __future__ import annotations

import math
import time

import pytest

from pymedplum import RetryPolicy

from ..fake import FakeMedplum
from .helpers import make_client

pytestmark = pytest.mark.anyio  # async-only


class HeldLock:
    """The token lock while another caller's early refresh is under way (a slow endpoint)."""

    def locked(self) -> bool:
        return True

    async def __aenter__(self) -> None:
        raise AssertionError("the call waited for another caller's token request")

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_a_valid_token_is_used_while_another_caller_refreshes_early(
    fake: FakeMedplum,
) -> None:
    client = make_client(fake)
    await client._request("GET", "Patient/1")
    tokens = client._tokens
    token, _, _ = tokens._state
    # Inside the refresh margin but not expired, with the lock held by the refreshing caller.
    tokens._state = (token, time.monotonic() - 1, time.monotonic() + 30)
    real_lock = tokens._lock
    tokens._lock = HeldLock()  # type: ignore[assignment]
    assert (await client._request("GET", "Patient/1")).status_code == 200
    assert fake.requests[-1].headers["Authorization"] == f"Bearer {token}"
    # Once the lock is free the early refresh happens as before.
    tokens._lock = real_lock
    await client._request("GET", "Patient/1")
    assert len(fake.token_requests) == 2
    assert fake.requests[-1].headers["Authorization"] != f"Bearer {token}"


async def test_an_expired_token_still_waits_for_the_refresh(fake: FakeMedplum) -> None:
    client = make_client(fake)
    await client._request("GET", "Patient/1")
    client._tokens.expire()
    client._tokens._lock = HeldLock()  # type: ignore[assignment]
    with pytest.raises(AssertionError, match="waited"):
        await client._request("GET", "Patient/1")


def test_the_backoff_stays_finite_after_a_thousand_attempts() -> None:
    policy = RetryPolicy(max_attempts=5000, backoff_base=0.25, max_backoff=8.0)
    for attempt in (1024, 1025, 4999):
        delay = policy.backoff(attempt)
        assert math.isfinite(delay) and 4.0 <= delay <= 8.0

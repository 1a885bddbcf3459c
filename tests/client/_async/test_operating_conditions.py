"""Real-world operating conditions: bursts of concurrent callers with a token revoked in the
middle, interruptions (a BaseException, as KeyboardInterrupt or a cancellation is) at every
await point of a call, and servers that misbehave (undecodable bodies, bad Retry-After values).

Asyncio / anyio cancellation proper is in tests/client/test_async_cancellation.py.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from pymedplum import (
    AuthenticationError,
    NetworkError,
    RateLimitError,
    RetryPolicy,
    TokenRefreshCooldownError,
)
from pymedplum._async import _synchronization
from pymedplum.hooks import RequestEvent

from ..concurrency import gather_tasks
from ..fake import FakeMedplum
from .helpers import make_client

pytestmark = pytest.mark.anyio  # async-only

PATH = "/fhir/R4/Patient/1"


class Interrupt(BaseException):
    """Stands for KeyboardInterrupt / a cancellation: not an Exception, so nothing swallows it."""


# --- load -----------------------------------------------------------------------------------


async def test_a_burst_with_the_token_revoked_midway_refreshes_once_and_loses_nothing(
    fake: FakeMedplum,
) -> None:
    fake.valid_tokens = {"secret-token-1", "secret-token-2"}
    lock = threading.Lock()
    served: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        with lock:
            served.append(request.headers["Authorization"])
            if len(served) == 40:  # the server revokes the first token mid-burst
                fake.valid_tokens = {"secret-token-2"}
        return httpx.Response(201, json={"resourceType": "Patient", "id": request.url.params["n"]})

    fake.queue("POST", "/fhir/R4/Patient", answer)
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)

    async def call(i: int) -> str:
        response = await client._request(
            "POST", "Patient", params={"n": str(i)}, json={"resourceType": "Patient"}
        )
        return str(response.json()["id"])

    n = 150
    results = await gather_tasks(n, call)
    assert results == [str(i) for i in range(n)]
    assert len(fake.token_requests) == 2  # the first token, and one refresh for every 401
    calls = [e for e in events if e.action is not None]
    assert len(calls) == n  # one event per call
    # A POST answered 401 was replayed once with the new token, and only those.
    assert sorted(len(e.attempts) for e in calls)[-1] <= 2
    replayed = [e for e in calls if len(e.attempts) == 2]
    assert all([a.status_code for a in e.attempts] == [401, 201] for e in replayed)
    assert len(fake.requests) == n + len(replayed)


async def test_a_401_burst_whose_refresh_times_out_sends_one_refresh_then_recovers(
    fake: FakeMedplum,
) -> None:
    # 20 calls in flight when the server revokes the token, and the token endpoint then times
    # out: one refresh (its own retries included) is sent, not one per call; the other callers
    # get the cooldown error at once, and the client works again once the cooldown is over.
    events: list[RequestEvent] = []
    client = make_client(
        fake,
        failed_refresh_cooldown=0.5,
        retry=RetryPolicy(max_attempts=2, backoff_base=0.01),
        on_request_complete=events.append,
    )
    assert (await client._request("GET", "Patient/1")).status_code == 200  # secret-token-1
    fake.valid_tokens = {"secret-token-4"}  # the first token is revoked
    fake.token_answers.extend([httpx.ReadTimeout("timed out"), httpx.ReadTimeout("timed out")])
    events.clear()

    async def call(i: int) -> int:
        return (await client._request("GET", "Patient/1")).status_code

    results = await gather_tasks(20, call)
    assert len(fake.token_requests) == 3  # the first token, then one refresh tried twice
    assert sum(isinstance(r, AuthenticationError) for r in results) == 1
    assert sum(isinstance(r, TokenRefreshCooldownError) for r in results) == 19
    assert not any("secret-token" in f"{r} {r!r}" for r in results)
    (refresh,) = [e for e in events if e.path == "/oauth2/token"]
    assert [type(a.exception) for a in refresh.attempts] == [httpx.ReadTimeout] * 2
    calls = [e for e in events if e.path == PATH]
    assert len(calls) == 20 and all(e.outcome == "error" for e in calls)
    assert not client._tokens._lock.locked()
    time.sleep(0.55)  # the cooldown is over: one new token, and every call succeeds again
    assert await gather_tasks(20, call) == [200] * 20
    assert len(fake.token_requests) == 4


# --- interruptions at every await point -----------------------------------------------------


async def test_interrupted_token_request_releases_the_lock_without_cooldown(
    fake: FakeMedplum,
) -> None:
    fake.token_answers.append(Interrupt())
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    with pytest.raises(Interrupt):
        await client._request("GET", "Patient/1")
    assert [(e.path, type(e.final_exception)) for e in events] == [
        ("/oauth2/token", Interrupt),
        (PATH, Interrupt),
    ]
    assert events[0].attempts[0].exception is events[0].final_exception
    assert not client._tokens._lock._lock.locked()
    # An interruption is not a failed refresh: the next call fetches at once.
    response = await client._request("GET", "Patient/1")
    assert response.status_code == 200
    assert len(fake.token_requests) == 2


async def test_an_attempt_interrupted_in_flight_is_recorded_in_the_event(
    fake: FakeMedplum,
) -> None:
    fake.queue("POST", "/fhir/R4/Patient", Interrupt(), fake.json(201, {"id": "2"}))
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    with pytest.raises(Interrupt):
        await client._request("POST", "Patient", json={"resourceType": "Patient"})
    (event,) = [e for e in events if e.action is not None or e.path != "/oauth2/token"]
    # The request may have reached the server: the audit event says it was sent.
    assert [(a.status_code, type(a.exception)) for a in event.attempts] == [(None, Interrupt)]
    assert event.outcome == "error" and isinstance(event.final_exception, Interrupt)
    response = await client._request("POST", "Patient", json={"resourceType": "Patient"})
    assert response.status_code == 201


async def test_an_interrupted_backoff_sleep_leaves_the_client_usable(
    fake: FakeMedplum, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(seconds: float) -> None:
        raise Interrupt

    monkeypatch.setattr(_synchronization, "sleep", interrupted)
    fake.queue("GET", PATH, httpx.Response(503), fake.json(200, {"id": "1"}))
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    with pytest.raises(Interrupt):
        await client._request("GET", "Patient/1")
    assert [a.status_code for a in events[-1].attempts] == [503]
    assert (await client._request("GET", "Patient/1")).status_code == 200


async def test_an_interrupted_token_retry_backoff_releases_the_lock_without_cooldown(
    fake: FakeMedplum, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The token endpoint answered 503 and the refresh waits (holding the token lock) to ask
    # again: interrupted there, the lock is released and no cooldown starts.
    async def interrupted(seconds: float) -> None:
        raise Interrupt

    monkeypatch.setattr(_synchronization, "sleep", interrupted)
    fake.token_answers.append(httpx.Response(503))
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    with pytest.raises(Interrupt):
        await client._request("GET", "Patient/1")
    assert [a.status_code for a in events[0].attempts] == [503]
    assert isinstance(events[0].final_exception, Interrupt)
    assert not client._tokens._lock._lock.locked()
    assert client._tokens._failed_until < 0
    assert (await client._request("GET", "Patient/1")).status_code == 200
    assert len(fake.token_requests) == 2


async def test_an_interrupted_refresh_after_401_releases_the_lock(fake: FakeMedplum) -> None:
    fake.valid_tokens = {"secret-token-2"}  # the first token is rejected
    fake.token_answers.extend(
        [fake.json(200, {"access_token": "secret-token-1", "expires_in": 3600}), Interrupt()]
    )
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    with pytest.raises(Interrupt):
        await client._request("GET", "Patient/1")
    assert not client._tokens._lock._lock.locked()
    assert [e.path for e in events].count(PATH) == 1
    fake.valid_tokens = None
    assert (await client._request("GET", "Patient/1")).status_code == 200


# --- a misbehaving server -------------------------------------------------------------------


def _broken_gzip(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        201,
        headers={"Content-Type": "application/fhir+json", "Content-Encoding": "gzip"},
        content=b'{"resourceType": "Patient"}',  # a proxy stripped the compression
    )


async def test_an_undecodable_body_is_a_network_error_never_replayed_for_post(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    fake.queue("POST", "/fhir/R4/Patient", _broken_gzip)
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    with pytest.raises(NetworkError) as info:
        await client._request("POST", "Patient", json={"resourceType": "Patient"})
    assert isinstance(info.value.__cause__, httpx.DecodingError)
    assert info.value.possibly_committed  # the server answered: the create happened
    assert len(fake.requests) == 1 and sleeps == []
    (attempt,) = events[-1].attempts
    assert attempt.status_code is None and isinstance(attempt.exception, httpx.DecodingError)


@pytest.mark.parametrize(
    "value", ["-1", "-0.5", "1_0", "\uff11\uff12".encode(), "+3", "soon", "1e2"]
)
async def test_a_malformed_retry_after_is_ignored_and_the_backoff_applies(
    fake: FakeMedplum, sleeps: list[float], value: str | bytes
) -> None:
    fake.queue("GET", PATH, httpx.Response(429, headers={"Retry-After": value}))
    policy = RetryPolicy(max_attempts=3, backoff_base=0.5)
    client = make_client(fake, retry=policy)
    with pytest.raises(RateLimitError) as info:
        await client._request("GET", "Patient/1")
    assert info.value.retry_after is None
    # A 429 storm is met with the growing backoff, never with retries at once.
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0

"""AsyncMedplumClient under asyncio / anyio cancellation at every await point of a call.

After a cancellation the client must keep working (the token lock released, no cooldown), no
response may be left open (ResourceWarning is an error here), and the cancelled call still
delivers exactly one RequestEvent, to a coroutine hook too. The sync client's counterpart
(a BaseException at the same points) is tests/client/_async/test_operating_conditions.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import anyio
import httpx
import pytest

from pymedplum import AsyncMedplumClient, RetryPolicy
from pymedplum.hooks import RequestEvent

from .fake import AsyncFakeTransport, FakeMedplum
from .rawserver import answer, raw_server

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("error::ResourceWarning")]

BASE = "https://medplum.test/"
FHIR = BASE + "fhir/R4/"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SlowTransport(AsyncFakeTransport):
    """The fake server, with FHIR answers that take ``delay`` seconds."""

    def __init__(self, fake: FakeMedplum, delay: float = 0.0) -> None:
        super().__init__(fake)
        self.delay = delay

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/fhir/") and self.delay:
            await anyio.sleep(self.delay)
        return await super().handle_async_request(request)


def make(fake: FakeMedplum, delay: float = 0.0, **kwargs: Any) -> AsyncMedplumClient:
    http = httpx.AsyncClient(transport=SlowTransport(fake, delay))
    return AsyncMedplumClient(BASE, client_id="cid", client_secret="cs", http_client=http, **kwargs)


async def still_works(client: AsyncMedplumClient) -> None:
    assert not client._tokens._lock._lock.locked()
    transport = client._http._transport
    assert isinstance(transport, SlowTransport)
    transport.delay = 0.0
    transport.fake.token_delay = 0.0
    assert await client.read_resource("Patient", "123") == {"resourceType": "Patient", "id": "123"}


async def test_wait_for_timeout_during_the_token_request() -> None:
    fake = FakeMedplum(token_delay=5)
    events: list[RequestEvent] = []
    client = make(fake, on_request_complete=events.append)
    with pytest.raises(asyncio.TimeoutError):  # the builtin TimeoutError on 3.11+ only
        await asyncio.wait_for(client.read_resource("Patient", "1"), 0.05)
    assert [(e.path, type(e.final_exception).__name__) for e in events] == [
        ("/oauth2/token", "CancelledError"),
        ("/fhir/R4/Patient/1", "CancelledError"),
    ]
    await still_works(client)
    assert client._tokens._failed_until < 0  # a cancellation starts no cooldown


async def test_cancelling_the_task_fetching_the_token_lets_a_waiter_fetch_it() -> None:
    fake = FakeMedplum(token_delay=0.2)
    client = make(fake)
    tasks = [asyncio.create_task(client.read_resource("Patient", "1")) for _ in range(20)]
    await asyncio.sleep(0.05)
    tasks[0].cancel()  # the first one holds the lock and is fetching
    for task in tasks[1:5]:
        task.cancel()  # and some of those waiting for it
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results[:5])
    assert all(isinstance(r, dict) for r in results[5:])
    assert len(fake.token_requests) == 1  # the cancelled fetch never reached the server
    await still_works(client)


async def test_wait_for_timeout_during_a_token_retry_backoff() -> None:
    # The token endpoint answered 503 and the refresh waits to ask again, holding the token
    # lock: cancelled there, the lock is released, no cooldown starts, and the token event
    # records the 503 and the cancellation.
    fake = FakeMedplum()
    fake.token_answers = [httpx.Response(503)]
    events: list[RequestEvent] = []
    client = make(
        fake, on_request_complete=events.append, retry=RetryPolicy(backoff_base=5, max_backoff=5)
    )
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.read_resource("Patient", "1"), 0.1)
    token_event = events[0]
    assert token_event.path == "/oauth2/token"
    assert type(token_event.final_exception).__name__ == "CancelledError"
    assert [a.status_code for a in token_event.attempts] == [503]
    assert client._tokens._failed_until < 0
    await still_works(client)
    assert len(fake.token_requests) == 2


async def test_wait_for_timeout_during_the_request() -> None:
    fake = FakeMedplum()
    events: list[RequestEvent] = []
    client = make(fake, delay=5, on_request_complete=events.append)
    with pytest.raises(asyncio.TimeoutError):  # the builtin TimeoutError on 3.11+ only
        await asyncio.wait_for(client.create_resource({"resourceType": "Patient"}), 0.05)
    (event,) = [e for e in events if e.action is not None]
    assert event.action == "create" and event.outcome == "error"
    assert [(a.status_code, type(a.exception).__name__) for a in event.attempts] == [
        (None, "CancelledError")
    ]
    await still_works(client)


async def test_wait_for_timeout_during_the_retry_backoff() -> None:
    fake = FakeMedplum()
    fake.queue("GET", "/fhir/R4/Patient/1", httpx.Response(503, headers={"Retry-After": "30"}))
    events: list[RequestEvent] = []
    client = make(fake, on_request_complete=events.append)
    with pytest.raises(asyncio.TimeoutError):  # the builtin TimeoutError on 3.11+ only
        await asyncio.wait_for(client.read_resource("Patient", "1"), 0.1)
    assert [a.status_code for a in events[-1].attempts] == [503]
    assert len(fake.requests) == 1
    await still_works(client)


async def test_wait_for_timeout_while_polling_an_async_job() -> None:
    fake = FakeMedplum()
    fake.queue("GET", "/fhir/R4/job/j1/status", fake.json(200, {"status": "accepted"}))
    client = make(fake)
    with pytest.raises(asyncio.TimeoutError):  # the builtin TimeoutError on 3.11+ only
        await asyncio.wait_for(client.wait_for_async_job("j1", poll_interval=0.02), 0.2)
    polls = len(fake.sent_to("/fhir/R4/job/j1/status"))
    assert polls >= 2
    await anyio.sleep(0.1)
    assert len(fake.sent_to("/fhir/R4/job/j1/status")) == polls  # no poll outlives the call
    await still_works(client)


def _page(n: int, last: int) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "Patient", "id": f"p{n}"}}],
    }
    if n < last:
        bundle["link"] = [{"relation": "next", "url": f"{FHIR}Patient?page={n + 1}"}]
    return bundle


async def test_paging_cancelled_between_pages_or_abandoned_halfway() -> None:
    fake = FakeMedplum()
    fake.queue("GET", "/fhir/R4/Patient", lambda r: httpx.Response(
        200, json=_page(int(r.url.params.get("page", "1")), last=100)
    ))  # fmt: skip
    client = make(fake, delay=0.01)
    seen: list[str] = []

    async def drain() -> None:
        async for patient in client.search_resource_pages("Patient"):
            seen.append(patient["id"])

    with pytest.raises(asyncio.TimeoutError):  # the builtin TimeoutError on 3.11+ only
        await asyncio.wait_for(drain(), 0.2)
    assert 0 < len(seen) < 100
    await anyio.sleep(0.05)
    before = len(fake.sent_to("/fhir/R4/Patient"))
    pages = client.search_resource_pages("Patient")
    async for _ in pages:
        break  # abandoned after the first resource: nothing is held open
    await pages.aclose()  # type: ignore[attr-defined]
    assert len(fake.sent_to("/fhir/R4/Patient")) == before + 1  # pages are fetched lazily
    await still_works(client)


@pytest.mark.parametrize("where", ["request", "backoff", "token"])
async def test_an_anyio_cancel_scope_still_delivers_the_event_to_a_coroutine_hook(
    where: str,
) -> None:
    # Level-triggered cancellation (anyio, trio, FastAPI) re-cancels every await inside the
    # cancelled scope; the audit hook's own awaits must not be cancelled with the call.
    fake = FakeMedplum(token_delay=5 if where == "token" else 0)
    if where == "backoff":
        fake.queue("GET", "/fhir/R4/Patient/1", httpx.Response(503))
    delivered: list[RequestEvent] = []

    async def audit(event: RequestEvent) -> None:
        await anyio.sleep(0.01)  # an audit write
        delivered.append(event)

    client = make(
        fake,
        delay=5 if where == "request" else 0,
        on_request_complete=audit,
        retry=RetryPolicy(backoff_base=10, max_backoff=10),
    )
    with anyio.move_on_after(0.1) as scope:
        await client.read_resource("Patient", "1")
    assert scope.cancelled_caught
    fhir_events = [e for e in delivered if e.action is not None]
    assert len(fhir_events) == 1 and fhir_events[0].outcome == "error"
    if where == "token":
        assert [e.path for e in delivered] == ["/oauth2/token", "/fhir/R4/Patient/1"]

    # A task group cancelled from outside: the same.
    delivered.clear()
    async with anyio.create_task_group() as group:
        group.start_soon(client.read_resource, "Patient", "1")
        await anyio.sleep(0.05)
        group.cancel_scope.cancel()
    assert len([e for e in delivered if e.action is not None]) == 1
    await still_works(client)


async def test_closing_while_calls_are_in_flight_never_hangs() -> None:
    fake = FakeMedplum()
    client = make(fake, delay=0.2)
    await client.read_resource("Patient", "1")
    tasks = [asyncio.create_task(client.read_resource("Patient", "1")) for _ in range(10)]
    await asyncio.sleep(0.05)
    await client.aclose()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 2)
    with pytest.raises(RuntimeError, match="closed"):
        await client.read_resource("Patient", "1")


# --- on a real socket: the pooled connection of a cancelled call -------------------------------

_PATIENT = b'{"resourceType": "Patient", "id": "1"}'


class _Scripted:
    """A raw server behaviour switched by the test: the token, then answers or stalls."""

    def __init__(self) -> None:
        self.mode = "answer"

    def __call__(self, conn: socket.socket, line: str) -> bool:
        if "/oauth2/token" in line:
            body = b'{"access_token": "tok", "expires_in": 3600}'
        elif self.mode == "before-headers":
            time.sleep(1.0)  # never answers: the call is cancelled waiting for the status line
            return True
        elif self.mode == "mid-body":
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"resourceType"')
            time.sleep(1.0)
            return True
        else:
            body = _PATIENT
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        return False


@pytest.mark.parametrize("mode", ["before-headers", "mid-body"])
@pytest.mark.parametrize("how", ["wait_for", "move_on_after", "task.cancel"])
async def test_a_call_cancelled_on_the_wire_gives_its_connection_back_to_the_pool(
    mode: str, how: str
) -> None:
    # A pool of one connection: a cancelled call that kept its connection checked out would
    # make the next call wait for the pool (PoolTimeout) instead of answering.
    behaviour = _Scripted()
    events: list[RequestEvent] = []
    pool = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=1), timeout=httpx.Timeout(5, pool=0.5)
    )
    with raw_server(behaviour) as server:
        async with (
            pool,
            AsyncMedplumClient(
                server.url,
                client_id="cid",
                client_secret="cs",
                http_client=pool,
                on_request_complete=events.append,
            ) as client,
        ):
            assert await client.read_resource("Patient", "1") == {
                "resourceType": "Patient",
                "id": "1",
            }
            behaviour.mode = mode
            events.clear()
            for _ in range(3):
                if how == "wait_for":
                    with pytest.raises(asyncio.TimeoutError):
                        await asyncio.wait_for(client.read_resource("Patient", "1"), 0.1)
                elif how == "move_on_after":
                    with anyio.move_on_after(0.1):
                        await client.create_resource({"resourceType": "Patient"})
                else:
                    task = asyncio.create_task(client.read_resource("Patient", "1"))
                    await asyncio.sleep(0.1)
                    task.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await task
            behaviour.mode = "answer"
            assert await client.read_resource("Patient", "1") == {
                "resourceType": "Patient",
                "id": "1",
            }
        fhir_lines = [line for line in server.request_lines if "/fhir/" in line]
    assert len(fhir_lines) == 5  # nothing cancelled was sent again
    assert [(e.outcome, len(e.attempts)) for e in events] == [("error", 1)] * 3 + [("success", 1)]
    assert all(isinstance(e.attempts[0].exception, asyncio.CancelledError) for e in events[:3])


async def test_requests_cancelled_while_the_pool_is_busy_leave_no_connection_slot_taken() -> None:
    # httpcore 1.0.9 (encode/httpcore#1093): a request cancelled after the pool gave it a new
    # connection but before it sent anything leaves that connection behind, unopened (or
    # opened, in HTTP/1.1 state NEW), held by no request and never removed: each took one of
    # max_connections for good, until every request ended in PoolTimeout (seen on a real
    # Medplum with 30 tasks cancelling now and then). The client gives such slots back.
    body = b'{"resourceType": "Patient", "id": "1"}'
    with raw_server(answer(200, body)) as server:
        http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=2), timeout=httpx.Timeout(5.0, pool=1.0)
        )
        client = AsyncMedplumClient(
            server.url, access_token="t", http_client=http, retry=RetryPolicy(max_attempts=1)
        )
        for steps in range(40):  # cancelled at every point of a send, one round each
            tasks = [asyncio.ensure_future(client.read_resource("Patient", "1")) for _ in range(5)]
            for _ in range(steps):
                await asyncio.sleep(0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        pool = http._transport._pool  # type: ignore[attr-defined]
        assert [c for c in pool.connections if not (c.is_idle() or c.is_closed())] == []
        results = await asyncio.gather(*(client.read_resource("Patient", "1") for _ in range(4)))
        assert results == [{"resourceType": "Patient", "id": "1"}] * 4
        await client.aclose()
        await http.aclose()


async def test_token_requests_cancelled_while_the_pool_is_busy_leave_no_slot_taken() -> None:
    # The same for the token request, which goes through the same pool: cancelled there, it
    # kept its slot (and with every slot taken no token could be fetched again, so no call
    # could be sent to clean up after it).
    token = b'{"access_token": "t", "token_type": "Bearer", "expires_in": 3600}'
    body = b'{"resourceType": "Patient", "id": "1"}'

    def behaviour(conn: socket.socket, line: str) -> bool:
        answer(200, token if "oauth2/token" in line else body)(conn, line)
        return False

    with raw_server(behaviour) as server:
        http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=2), timeout=httpx.Timeout(5.0, pool=1.0)
        )
        client = AsyncMedplumClient(
            server.url,
            client_id="c",
            client_secret="s",
            http_client=http,
            retry=RetryPolicy(max_attempts=1),
        )
        for steps in range(40):  # cancelled at every point of a token request, one round each
            client._tokens.expire()
            # Two other requests keep the pool busy while the token request waits for a slot.
            busy = [asyncio.ensure_future(http.get(server.url)) for _ in range(2)]
            task = asyncio.ensure_future(client.read_resource("Patient", "1"))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, *busy, return_exceptions=True)
        pool = http._transport._pool  # type: ignore[attr-defined]
        assert [c for c in pool.connections if not (c.is_idle() or c.is_closed())] == []
        results = await asyncio.gather(*(client.read_resource("Patient", "1") for _ in range(4)))
        assert results == [{"resourceType": "Patient", "id": "1"}] * 4
        await client.aclose()
        await http.aclose()

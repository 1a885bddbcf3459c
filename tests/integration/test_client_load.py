"""Both clients under load against the live local server: a burst of hundreds of concurrent
writes and reads with the tokens expired in the middle, a small connection pool, and (async)
calls cancelled at their await points. Counts come from the server, not the SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from sdk_clients import TOKEN_PATH, Api, MedplumServer, build_client, unique

from pymedplum import NotFoundError
from pymedplum.hooks import RequestEvent

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("error::ResourceWarning")]


async def test_a_burst_with_tokens_expired_midway_loses_and_duplicates_nothing(
    make_api: Callable[..., Api],
) -> None:
    api = make_api()
    pid = (await api.call("create_resource", {"resourceType": "Patient"}))["id"]
    tag = unique("burst")
    start = api.server.token_request_count()
    n = 240

    def call(i: int) -> Callable[[], Any]:
        if i == n // 2:
            return lambda: api.server.expire_tokens()  # every token so far is now rejected
        if i % 3 == 0:
            observation = {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": tag},
                "identifier": [{"system": "urn:burst", "value": f"{tag}-{i}"}],
                "subject": {"reference": f"Patient/{pid}"},
            }
            return lambda: api.client.create_resource(observation)
        return lambda: api.client.read_resource("Patient", pid)

    async def run(thunk: Callable[[], Any]) -> Any:
        result = thunk()
        return await result if api.is_async and result is not None else result

    calls = [call(i) for i in range(n)]
    if api.is_async:
        results = await api.concurrently([lambda c=c: run(c) for c in calls])  # type: ignore[misc]
    else:
        results = await api.concurrently(calls)
    assert all(r is None or r["resourceType"] in ("Patient", "Observation") for r in results)
    await api.call("read_resource", "Patient", pid)  # meets the expiry if the burst did not
    # Exactly one refresh for the expiry, however many calls met the 401.
    assert api.server.token_request_count() - start == 1
    events = api.fhir_events()
    assert len(events) == n + 1  # one per call: the Patient's create, n - 1, the last read
    assert all(e.outcome == "success" for e in events)
    expected = ([200], [201], [401, 200], [401, 201])

    def answered(event: RequestEvent) -> list[int | None]:
        # On a heavily loaded machine an attempt can time out before the server answers (seen:
        # a read waiting 30 s for the pool), and the SDK retries it as it should: such attempts
        # are not what this test is about. Any other exception stays an odd call.
        return [
            a.status_code
            for a in event.attempts
            if not (a.status_code is None and type(a.exception).__name__.endswith("Timeout"))
        ]

    # Only the odd calls, with their attempts' exception types (the whole list's repr cut them off).
    odd = [e.to_non_phi_dict()["attempts"] for e in events if answered(e) not in expected]
    assert not odd, odd
    # Every create applied exactly once: a 401 is refused before processing, so replayed.
    found = await api.call(
        "search_resources", "Observation", {"subject": f"Patient/{pid}", "_count": 500}
    )
    values = sorted(e["resource"]["identifier"][0]["value"] for e in found.get("entry", []))
    assert values == sorted(f"{tag}-{i}" for i in range(0, n, 3) if i != n // 2)


async def test_a_pool_of_two_connections_serves_a_burst_without_deadlock(
    make_api: Callable[..., Api], flavour: str
) -> None:
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    timeout = httpx.Timeout(10.0, pool=10.0)
    pool: Any = (
        httpx.AsyncClient(limits=limits, timeout=timeout)
        if flavour == "async"
        else httpx.Client(limits=limits, timeout=timeout)
    )
    try:
        api = make_api(http_client=pool)
        pid = (await api.call("create_resource", {"resourceType": "Patient"}))["id"]
        api.client._tokens.expire()  # the burst needs a new token: one request for all
        results = await api.concurrently(
            [lambda: api.client.read_resource("Patient", pid) for _ in range(100)]
        )
        assert [r["id"] for r in results] == [pid] * 100
        assert len([e for e in api.events if e.path == TOKEN_PATH]) == 2
    finally:
        if flavour == "async":
            await pool.aclose()
        else:
            pool.close()


async def test_async_calls_cancelled_mid_flight_leave_the_client_working(
    medplum_server: MedplumServer,
) -> None:
    events: list[RequestEvent] = []
    client = build_client("async", medplum_server, on_request_complete=events.append)
    async with client:
        pid = (await client.create_resource({"resourceType": "Patient"}))["id"]
        org = (await client.create_resource({"resourceType": "Organization"}))["id"]
        client._tokens.expire()
        # Half of a burst cancelled while the others wait for, send or read: token request,
        # request and response are all await points some task is at.
        tasks = [asyncio.create_task(client.read_resource("Patient", pid)) for _ in range(50)]
        await asyncio.sleep(0)
        for i, task in enumerate(tasks):
            if i % 2:
                task.cancel()
            await asyncio.sleep(0.001)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, (dict, asyncio.CancelledError)) for r in results)
        assert not client._tokens._lock._lock.locked()
        reads = [e for e in events if e.action == "read" and e.resource_id == pid]
        assert len(reads) == 50  # one event per call, cancelled or not

        # A job wait cancelled while polling (a cancel scope, as anyio / FastAPI code uses).
        medplum_server.set_job_delay(10_000)
        try:
            outcome = await client.set_accounts(
                f"Patient/{pid}", f"Organization/{org}", propagate=True, prefer_async=True
            )
            with anyio.move_on_after(0.3) as scope:
                await client.wait_for_async_job(outcome, poll_interval=0.05)
            assert scope.cancelled_caught
        finally:
            medplum_server.reset()
        assert (await client.read_resource("Patient", pid))["id"] == pid


async def test_one_connection_serves_a_long_run_of_calls(
    make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long-running job on one client: reads, errors (404s), token refreshes, paging and a
    # paging loop left early all go over the one pooled connection; none opens another.
    import httpcore

    connects: list[str] = []
    sync_connect = httpcore._backends.sync.SyncBackend.connect_tcp
    async_connect = httpcore._backends.anyio.AnyIOBackend.connect_tcp

    def counted_sync(self: Any, *args: Any, **kwargs: Any) -> Any:
        connects.append("sync")
        return sync_connect(self, *args, **kwargs)

    async def counted_async(self: Any, *args: Any, **kwargs: Any) -> Any:
        connects.append("async")
        return await async_connect(self, *args, **kwargs)

    monkeypatch.setattr(httpcore._backends.sync.SyncBackend, "connect_tcp", counted_sync)
    monkeypatch.setattr(httpcore._backends.anyio.AnyIOBackend, "connect_tcp", counted_async)
    api = make_api()
    tag = unique("conn")
    for _ in range(3):
        await api.call("create_resource", {"resourceType": "Patient", "name": [{"family": tag}]})
    for i in range(60):
        await api.call("search_one", "Patient", {"family": tag})
        if i % 20 == 0:
            api.client._tokens.expire()
            with pytest.raises(NotFoundError):
                await api.call("read_resource", "Patient", unique("missing"))
    assert (
        len(await api.collect("search_resource_pages", "Patient", {"family": tag, "_count": 1}))
        == 3
    )
    iterator = api.iterate("search_resource_pages", "Patient", {"family": tag, "_count": 1})
    first = await (iterator.__anext__() if api.is_async else asyncio.sleep(0, next(iterator)))
    assert first["resourceType"] == "Patient"
    if api.is_async:
        await iterator.aclose()
    assert len(connects) == 1

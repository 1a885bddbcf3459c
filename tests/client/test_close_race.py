"""close() while a call waits for its token: the call must not go on to send its request
through the closed pool (httpcore would open a connection there that nothing ever closes)."""

from __future__ import annotations

import threading
import time

import anyio
import httpx
import pytest

from pymedplum._async._base_client import AsyncBaseClient
from pymedplum._sync._base_client import SyncBaseClient

from .fake import AsyncFakeTransport, FakeMedplum, SyncFakeTransport

BASE = "https://medplum.test/"


@pytest.mark.anyio
async def test_async_close_during_the_token_request_sends_nothing_after_it() -> None:
    fake = FakeMedplum(token_delay=0.2)
    client = AsyncBaseClient(BASE, client_id="cid", client_secret="cs")
    await client._http.aclose()  # the client's own pool, on the fake server instead
    client._http = httpx.AsyncClient(transport=AsyncFakeTransport(fake))
    client._owns_http = True
    outcome: list[BaseException] = []

    async def call() -> None:
        try:
            await client._request("GET", "Patient/1")
        except RuntimeError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(call)
        await anyio.sleep(0.05)
        await client.aclose()
    assert len(fake.token_requests) == 1 and fake.requests == []
    assert "closed" in str(outcome[0])


def test_sync_close_during_the_token_request_sends_nothing_after_it() -> None:
    fake = FakeMedplum(token_delay=0.2)
    client = SyncBaseClient(BASE, client_id="cid", client_secret="cs")
    client._http.close()
    client._http = httpx.Client(transport=SyncFakeTransport(fake))
    client._owns_http = True
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            client._request("GET", "Patient/1")
        except RuntimeError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.05)
    client.close()
    thread.join()
    assert len(fake.token_requests) == 1 and fake.requests == []
    assert "closed" in str(outcome[0])

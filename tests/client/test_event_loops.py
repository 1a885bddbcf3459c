"""An AsyncMedplumClient belongs to the first event loop that uses it: from another loop it
raises RuntimeError at once. Before, two loops sharing one client woke each other's waiters
on its locks (never their own), so a call hung; one loop after another failed later, with
httpx's "Event loop is closed", once a pooled connection was reused."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from pymedplum import AsyncMedplumClient

from .fake import AsyncFakeTransport, FakeMedplum

BASE = "https://medplum.test/"


def make() -> AsyncMedplumClient:
    http = httpx.AsyncClient(transport=AsyncFakeTransport(FakeMedplum()))
    return AsyncMedplumClient(BASE, client_id="cid", client_secret="cs", http_client=http)


def test_a_second_event_loop_gets_a_clear_error() -> None:
    client = make()
    assert asyncio.run(client.read_resource("Patient", "1"))["id"] == "123"
    with pytest.raises(RuntimeError, match="belongs to another event loop"):
        asyncio.run(client.read_resource("Patient", "1"))


def test_a_loop_in_another_thread_gets_a_clear_error_while_the_first_runs() -> None:
    client = make()
    outcome: list[BaseException] = []

    def other_thread() -> None:
        try:
            asyncio.run(client.read_resource("Patient", "1"))
        except RuntimeError as exc:
            outcome.append(exc)

    async def main() -> None:
        await client.read_resource("Patient", "1")
        thread = threading.Thread(target=other_thread)
        thread.start()
        await asyncio.to_thread(thread.join)  # this loop keeps running meanwhile
        await client.read_resource("Patient", "1")  # still the client's own loop

    asyncio.run(main())
    assert len(outcome) == 1 and "another event loop" in str(outcome[0])


def test_many_calls_in_one_loop_are_unaffected() -> None:
    client = make()

    async def main() -> list[dict[str, object]]:
        async with client:
            return await asyncio.gather(*(client.read_resource("Patient", "1") for _ in range(50)))

    assert len(asyncio.run(main())) == 50

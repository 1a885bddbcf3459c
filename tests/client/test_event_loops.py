"""An AsyncMedplumClient belongs to the first event loop that uses it: from another loop it
raises RuntimeError at once. Before, two loops sharing one client woke each other's waiters
on its locks (never their own), so a call hung; one loop after another failed later, with
httpx's "Event loop is closed", once a pooled connection was reused."""

from __future__ import annotations

import asyncio
import socket
import threading

import httpx
import pytest

from pymedplum import AsyncMedplumClient, NetworkError, RetryPolicy

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


# --- closing from another loop ---------------------------------------------------------------
# Before, aclose() in a second loop handed the first loop's pooled connections to httpx, which
# failed inside asyncio with a bare "Event loop is closed" (the socket left open), or, with the
# first loop still open, queued the close on that loop from outside it without a word.


def test_aclose_from_another_loop_names_the_problem_and_leaves_the_pool_to_its_loop(
    server_url: str,
) -> None:
    client = AsyncMedplumClient(server_url, access_token="tok")  # the pool is the client's own
    first = asyncio.new_event_loop()
    try:
        assert first.run_until_complete(client.read_resource("Patient", "1"))["id"] == "1"
        with pytest.raises(RuntimeError) as info:
            asyncio.run(client.aclose())
        message = str(info.value)
        assert "belongs to another event loop" in message
        assert "still open" in message and "closed in a different one" in message
        assert "close it there" in message
        # Closed all the same: no call reopens connections.
        with pytest.raises(RuntimeError, match="has been closed"):
            first.run_until_complete(client.read_resource("Patient", "1"))
        # The pool was left to its loop, where it still closes cleanly (no ResourceWarning).
        http = client._http
        assert not http.is_closed
        first.run_until_complete(http.aclose())
    finally:
        first.close()


def test_a_call_or_aclose_after_its_loop_closed_says_that_loop_is_closed() -> None:
    # Nothing listens on the port: the first call fails without a pooled connection (nothing
    # is leaked), and has bound the client to its loop all the same.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = AsyncMedplumClient(
        f"http://127.0.0.1:{port}/", access_token="tok", retry=RetryPolicy(max_attempts=1)
    )
    with pytest.raises(NetworkError):
        asyncio.run(client.read_resource("Patient", "1"))
    with pytest.raises(RuntimeError, match=r"used it, now closed\); this call was made in"):
        asyncio.run(client.read_resource("Patient", "1"))
    with pytest.raises(RuntimeError, match=r"used it, now closed\); it was closed in"):
        asyncio.run(client.aclose())
    with pytest.raises(RuntimeError, match="has been closed"):
        asyncio.run(client.read_resource("Patient", "1"))


def test_aclose_in_its_own_loop_or_before_any_call_closes_without_error(server_url: str) -> None:
    unused = AsyncMedplumClient(server_url, access_token="tok")
    asyncio.run(unused.aclose())  # never bound to a loop
    assert unused._http.is_closed

    client = AsyncMedplumClient(server_url, access_token="tok")

    async def main() -> None:
        async with client:
            await client.read_resource("Patient", "1")

    asyncio.run(main())
    assert client._http.is_closed


def test_a_caller_supplied_pool_is_not_closed_so_aclose_from_another_loop_is_quiet() -> None:
    client = make()
    asyncio.run(client.read_resource("Patient", "1"))
    asyncio.run(client.aclose())  # the caller's pool is the caller's to close
    with pytest.raises(RuntimeError, match="has been closed"):
        asyncio.run(client.read_resource("Patient", "1"))

"""A client inherited through os.fork() (multiprocessing's fork start method, pre-forking
servers) must not use the parent's pooled connections: their sockets are shared, so an answer
could reach the wrong process. The child gets a fresh pool of its own; a caller-supplied pool,
which the client cannot replace, is refused with RuntimeError."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import httpx
import pytest

from pymedplum import AsyncMedplumClient, MedplumClient

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only"),
    # Python 3.12+ warns about forking a process with threads (the test server's); the child
    # only makes one call and exits.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def in_child(work: Callable[[], object]) -> str:
    """Run ``work`` in a forked child; its result (or exception) as text."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            signal.alarm(20)  # a hang kills the child rather than the suite
            try:
                result = repr(work())
            except BaseException as exc:
                result = f"{type(exc).__name__}: {exc}"
            os.write(write_end, result.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return text


def test_a_sync_client_gets_a_pool_of_its_own_after_fork(server_url: str) -> None:
    kwargs = {"client_id": "cid", "client_secret": "cs", "allow_insecure_http": True}
    with MedplumClient(server_url, **kwargs) as client:  # type: ignore[arg-type]
        parent_port = client.read_resource("Patient", "1")["port"]
        child = in_child(lambda: client.read_resource("Patient", "1")["port"])
        assert child.isdigit() and int(child) != parent_port  # a new connection
        assert client.read_resource("Patient", "1")["port"] == parent_port  # parent's intact


def test_an_async_client_gets_a_pool_of_its_own_after_fork(server_url: str) -> None:
    client = AsyncMedplumClient(
        server_url, client_id="cid", client_secret="cs", allow_insecure_http=True
    )
    # The parent's loop stays open until its client is closed in it: a connection of a
    # finished asyncio.run() loop cannot be closed any more (collected later, it warns).
    loop = asyncio.new_event_loop()
    parent_port = loop.run_until_complete(client.read_resource("Patient", "1"))["port"]

    def child_call() -> object:
        async def main() -> object:
            async with client:  # the child's own loop and pool
                return (await client.read_resource("Patient", "1"))["port"]

        return asyncio.run(main())

    try:
        child = in_child(child_call)
        assert child.isdigit() and int(child) != parent_port
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def test_a_caller_supplied_pool_is_refused_in_the_child(server_url: str) -> None:
    with httpx.Client() as http:
        client = MedplumClient(
            server_url, client_id="cid", client_secret="cs", http_client=http,
            allow_insecure_http=True,
        )  # fmt: skip
        client.read_resource("Patient", "1")
        child = in_child(lambda: client.read_resource("Patient", "1"))
        assert child.startswith("RuntimeError") and "os.fork()" in child
        assert client.read_resource("Patient", "1")["id"] == "1"  # the parent goes on


def test_a_closed_client_stays_closed_in_the_child(server_url: str) -> None:
    client = MedplumClient(
        server_url, client_id="cid", client_secret="cs", allow_insecure_http=True
    )
    client.read_resource("Patient", "1")
    client.close()
    pool = client._http

    def work() -> object:
        with pytest.raises(RuntimeError, match="closed"):
            client.read_resource("Patient", "1")
        return client._http is pool  # no new pool opened for a closed client

    assert in_child(work) == "True"

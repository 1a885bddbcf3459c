"""Cancelled requests through an HTTP proxy leave no connection slot taken (``_pool.py``).

httpcore 1.0.9's proxy pool (``httpx.Client(proxy=...)``, or ``HTTPS_PROXY`` with trust_env)
is its connection pool with other connections: forwarding an ``http://`` target's requests,
or a CONNECT tunnel to an ``https://`` target with TLS over it. The same cancellations as on a
direct pool (encode/httpcore#1093, tests/client/test_async_cancellation.py and
test_sync_interrupted_pool.py) leave such a connection held by no request, neither idle nor
closed, for good; a tunnel also when cancelled during its TLS handshake (its CONNECT answer
keeps the connection to the proxy ACTIVE). Here through a loopback proxy
(tests/client/proxyserver.py) to a loopback target, https with a test CA (tests/client/tls):
async tasks cancelled at every point of a send, a sync call interrupted at each point that
leaks, and what a bare httpx client is left with. The state-by-state checks of both flavours
are tests/client/_async/test_proxy_connections.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from pymedplum import AsyncMedplumClient, MedplumClient, RetryPolicy

from .proxyserver import LoopbackProxy, loopback_proxy, tls_contexts
from .rawserver import RawServer, answer, raw_server

BODY = b'{"resourceType": "Patient", "id": "1"}'
PATIENT = {"resourceType": "Patient", "id": "1"}

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextmanager
def target_and_proxy(scheme: str) -> Iterator[tuple[RawServer, LoopbackProxy]]:
    server_tls = tls_contexts()[0] if scheme == "https" else None
    with raw_server(answer(200, BODY), tls=server_tls) as server, loopback_proxy() as proxy:
        yield server, proxy


def limits(slots: int, proxy: LoopbackProxy) -> dict[str, Any]:
    """An httpx client's arguments: through ``proxy``, ``slots`` connections, a short pool
    timeout, the test CA trusted."""
    return {
        "proxy": proxy.url,
        "verify": tls_contexts()[1],
        "limits": httpx.Limits(max_connections=slots),
        "timeout": httpx.Timeout(5.0, pool=0.5),
    }


def stuck(http: httpx.Client | httpx.AsyncClient, url: str) -> list[Any]:
    """The proxy pool's connections that are neither idle nor closed (each holds a slot)."""
    pool = http._transport_for_url(httpx.URL(url))._pool  # type: ignore[attr-defined]
    assert type(pool).__name__ in ("AsyncHTTPProxy", "HTTPProxy")
    return [c for c in pool.connections if not (c.is_idle() or c.is_closed())]


def went_through(proxy: LoopbackProxy, scheme: str) -> bool:
    """Whether the proxy forwarded requests (http) or opened tunnels (https)."""
    return any(
        r.startswith("CONNECT " if scheme == "https" else "GET http://") for r in proxy.requests
    )


async def cancel_rounds(send: Callable[[], Any], rounds: int = 40) -> None:
    """Five requests at once, cancelled after 0, 1, ... ``rounds - 1`` turns of the event loop:
    at every point of a send (queued for a slot, connecting, the CONNECT, the TLS handshake,
    the request), one round each."""
    for steps in range(rounds):
        tasks = [asyncio.ensure_future(send()) for _ in range(5)]
        for _ in range(steps):
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- async: tasks cancelled ---------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"], ids=["forward", "tunnel"])
async def test_requests_cancelled_through_a_proxy_leave_no_slot_taken(scheme: str) -> None:
    with target_and_proxy(scheme) as (server, proxy):
        http = httpx.AsyncClient(**limits(2, proxy))
        client = AsyncMedplumClient(
            server.url, access_token="t", http_client=http, retry=RetryPolicy(max_attempts=1)
        )
        await cancel_rounds(lambda: client.read_resource("Patient", "1"))
        assert stuck(http, server.url) == []
        reads = [client.read_resource("Patient", "1") for _ in range(4)]
        assert await asyncio.gather(*reads) == [PATIENT] * 4
        assert went_through(proxy, scheme)
        await client.aclose()
        await http.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"], ids=["forward", "tunnel"])
async def test_the_clients_own_pool_through_the_environments_proxy_leaves_no_slot_taken(
    scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # HTTP_PROXY / HTTPS_PROXY, as a hospital network sets them: the client's own pool (100
    # slots) goes through the proxy, and loses no slot either.
    with target_and_proxy(scheme) as (server, proxy):
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv(f"{scheme.upper()}_PROXY", proxy.url)
        monkeypatch.setenv("SSL_CERT_FILE", str(Path(__file__).parent / "tls" / "ca.pem"))
        client = AsyncMedplumClient(server.url, access_token="t", retry=RetryPolicy(max_attempts=1))
        await cancel_rounds(lambda: client.read_resource("Patient", "1"))
        assert stuck(client._http, server.url) == []
        assert await client.read_resource("Patient", "1") == PATIENT
        assert went_through(proxy, scheme)
        await client.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"], ids=["forward", "tunnel"])
async def test_without_the_clean_up_cancellations_through_a_proxy_use_up_the_pool(
    scheme: str,
) -> None:
    # The same on a bare httpx.AsyncClient: what the test above guards against (httpcore 1.0.9).
    with target_and_proxy(scheme) as (server, proxy):
        http = httpx.AsyncClient(**limits(2, proxy))
        await cancel_rounds(lambda: http.get(server.url))
        assert len(stuck(http, server.url)) == 2  # both slots, for good
        for _ in range(2):
            with pytest.raises(httpx.PoolTimeout):
                await http.get(server.url)
        await http.aclose()


# --- sync: a KeyboardInterrupt at the point that leaks -----------------------------------------


@contextmanager
def interrupted(owner: type, name: str, call: int = 1) -> Iterator[None]:
    """``owner.name`` raises KeyboardInterrupt instead of running on its ``call``-th call."""
    original: Callable[..., Any] = getattr(owner, name)
    calls: list[int] = []

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def shape(connection: object) -> str:
    """A connection and what it wraps, with HTTP/1.1 states: "A > B > C:NEW"."""
    parts = []
    while connection is not None:
        state = getattr(getattr(connection, "_state", None), "name", None)
        parts.append(type(connection).__name__ + (f":{state}" if state else ""))
        connection = getattr(connection, "_connection", None)
    return " > ".join(parts)


SYNC = httpcore._sync
HTTP11 = (SYNC.http11.HTTP11Connection, "handle_request")
ASSIGNED = (SYNC.connection_pool.PoolRequest, "wait_for_connection")
FORWARD, TUNNEL = "ForwardHTTPConnection > HTTPConnection", "TunnelHTTPConnection > HTTPConnection"
# Where an interrupt leaves a proxy connection held by no request, and what it is left as.
LEAKS = {
    # Given a new connection by the pool, not yet opened (encode/httpcore#1093).
    "forward-unopened": ("http", (*ASSIGNED, 1), FORWARD),
    "tunnel-unopened": ("https", (*ASSIGNED, 1), TUNNEL),
    # Connected to the proxy, nothing sent yet.
    "forward-new": ("http", (*HTTP11, 1), f"{FORWARD} > HTTP11Connection:NEW"),
    "tunnel-before-connect": ("https", (*HTTP11, 1), f"{TUNNEL} > HTTP11Connection:NEW"),
    # CONNECT answered, interrupted in the TLS handshake: the proxy's connection stays ACTIVE.
    "tunnel-during-tls": (
        "https",
        (httpcore._backends.sync.SyncStream, "start_tls", 1),
        f"{TUNNEL} > HTTP11Connection:ACTIVE",
    ),
    # The tunnel set up, the request not sent over it.
    "tunnel-set-up": ("https", (*HTTP11, 2), "TunnelHTTPConnection > HTTP11Connection:NEW"),
}


@pytest.mark.parametrize(("scheme", "where", "left"), LEAKS.values(), ids=LEAKS.keys())
def test_an_interrupted_request_through_a_proxy_leaves_no_slot_taken(
    scheme: str, where: tuple[type, str, int], left: str
) -> None:
    with target_and_proxy(scheme) as (server, proxy):
        http = httpx.Client(**limits(1, proxy))
        client = MedplumClient(
            server.url, access_token="t", http_client=http, retry=RetryPolicy(max_attempts=1)
        )
        with interrupted(*where), pytest.raises(KeyboardInterrupt):
            client.read_resource("Patient", "1")
        assert stuck(http, server.url) == []
        # The only slot is free again: without the client's clean-up this is a PoolTimeout.
        assert client.read_resource("Patient", "1") == PATIENT
        assert went_through(proxy, scheme)
        client.close()
        http.close()


@pytest.mark.parametrize(("scheme", "where", "left"), LEAKS.values(), ids=LEAKS.keys())
def test_without_the_clean_up_the_interrupt_through_a_proxy_keeps_the_slot(
    scheme: str, where: tuple[type, str, int], left: str
) -> None:
    with target_and_proxy(scheme) as (server, proxy):
        http = httpx.Client(**limits(1, proxy))
        with interrupted(*where), pytest.raises(KeyboardInterrupt):
            http.get(server.url)
        assert [shape(c) for c in stuck(http, server.url)] == [left]
        with pytest.raises(httpx.PoolTimeout):
            http.get(server.url)
        http.close()

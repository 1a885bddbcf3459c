"""``reclaim_orphaned_connections`` on httpcore's HTTP proxy pool, state by state: which
connections held by no request it removes and closes (those the pool would keep for good),
built from httpcore's own classes; and, through a real loopback proxy, that a request keeps
its connection, in flight or idle. The leak end to end (tasks cancelled, a sync call
interrupted): tests/client/test_proxy_pool.py.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import httpcore
import httpx
import pytest

from pymedplum import AsyncMedplumClient, RetryPolicy
from pymedplum._async._pool import reclaim_orphaned_connections
from pymedplum._async._synchronization import sleep

from ..concurrency import gather_tasks
from ..proxyserver import loopback_proxy, tls_contexts
from ..rawserver import answer, raw_server

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("error::ResourceWarning")]  # async-only

BODY = b'{"resourceType": "Patient", "id": "1"}'
PATIENT = {"resourceType": "Patient", "id": "1"}
TLS = httpcore.Origin(b"https", b"medplum.test", 443)  # reached through a CONNECT tunnel
PLAIN = httpcore.Origin(b"http", b"medplum.test", 80)  # its requests forwarded
State = httpcore._async.http11.HTTPConnectionState
NEW, ACTIVE, IDLE = State.NEW, State.ACTIVE, State.IDLE


class Stream:
    """A connection's network stream, which records its closing."""

    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True

    def get_extra_info(self, info: str) -> None:
        return None  # an idle connection asks whether its socket is readable: not


class HTTP2Standin:
    """Stands for httpcore's HTTP/2 connection over a tunnel (h2 is not installed here)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def is_closed(self) -> bool:
        return False


def proxied(
    pool: Any, origin: httpcore.Origin, to_proxy: State | None, over_tunnel: object
) -> tuple[Any, Stream]:
    """A connection of ``pool`` to ``origin``, put in the pool: its connection to the proxy
    opened in HTTP/1.1 state ``to_proxy`` (None: not opened), or a tunnel set up over which the
    connection to the target is in state ``over_tunnel`` (or is HTTP/2)."""
    connection = pool.create_connection(origin)
    stream = Stream()
    if to_proxy is not None:
        to_the_proxy = connection._connection
        to_the_proxy._connection = httpcore._async.http11.AsyncHTTP11Connection(
            origin=to_the_proxy._origin, stream=stream
        )
        to_the_proxy._connection._state = to_proxy
    if over_tunnel == "HTTP/2":
        connection._connection = HTTP2Standin(stream)
        connection._connected = True
    elif over_tunnel is not None:
        connection._connection = httpcore._async.http11.AsyncHTTP11Connection(
            origin=origin, stream=stream
        )
        connection._connection._state = over_tunnel
        connection._connected = True
    pool._connections.append(connection)
    return connection, stream


# id: (target, state of the connection to the proxy, state over the tunnel, removed, closed)
STATES: dict[str, tuple[httpcore.Origin, State | None, object, bool, bool]] = {
    # Forwarding: the connection to the proxy is the whole story, as a direct connection.
    "forward-unopened": (PLAIN, None, None, True, False),
    "forward-new": (PLAIN, NEW, None, True, True),
    "forward-active": (PLAIN, ACTIVE, None, True, True),
    "forward-idle": (PLAIN, IDLE, None, False, False),
    # A tunnel: not yet opened, its CONNECT not sent, or answered but its TLS handshake (over
    # the connection the CONNECT's response keeps ACTIVE) cut short; then set up.
    "tunnel-unopened": (TLS, None, None, True, False),
    "tunnel-connect-unsent": (TLS, NEW, None, True, True),
    "tunnel-tls-unfinished": (TLS, ACTIVE, None, True, True),
    "tunnel-set-up-new": (TLS, None, NEW, True, True),
    "tunnel-set-up-active": (TLS, None, ACTIVE, True, True),
    "tunnel-set-up-idle": (TLS, None, IDLE, False, False),
    # One HTTP/2 connection may carry other requests: left to the pool.
    "tunnel-set-up-http2": (TLS, None, "HTTP/2", False, False),
}


def proxy_transport() -> httpx.AsyncHTTPTransport:
    # httpx's transport for proxy=: its pool is httpcore's AsyncHTTPProxy (nothing listens).
    transport = httpx.AsyncHTTPTransport(proxy="http://127.0.0.1:9")
    assert isinstance(transport._pool, httpcore.AsyncHTTPProxy)
    return transport


@pytest.mark.parametrize("held", [False, True], ids=["no-request", "held"])
@pytest.mark.parametrize(
    ("origin", "to_proxy", "over_tunnel", "removed", "closed"), STATES.values(), ids=STATES.keys()
)
async def test_a_proxy_connection_no_request_holds_is_removed_only_when_the_pool_would_keep_it(
    origin: httpcore.Origin,
    to_proxy: State | None,
    over_tunnel: object,
    removed: bool,
    closed: bool,
    held: bool,
) -> None:
    transport = proxy_transport()
    pool = transport._pool
    kept, kept_stream = proxied(pool, PLAIN, IDLE, None)  # another one, idle: stays
    connection, stream = proxied(pool, origin, to_proxy, over_tunnel)
    if held:  # a request was given it (under the pool's lock): in use, whatever its state
        request = httpcore._async.connection_pool.AsyncPoolRequest(
            httpcore.Request("GET", "https://medplum.test/fhir/R4/Patient/1")
        )
        request.assign_to_connection(connection)
        pool._requests.append(request)
    removed = removed and not held
    assert await reclaim_orphaned_connections(transport) == int(removed)
    assert pool._connections == ([kept] if removed else [kept, connection])
    assert stream.closed is (closed and removed)
    assert not kept_stream.closed


async def test_a_connection_of_another_kind_is_left_alone() -> None:
    # A proxy connection of a later httpcore (or anything else) wrapping an unopened one.
    class Stranger:
        def __init__(self, inner: object) -> None:
            self._connection = inner

    transport = proxy_transport()
    pool = transport._pool
    connection, _ = proxied(pool, TLS, None, None)
    pool._connections[:] = [Stranger(connection._connection)]
    assert await reclaim_orphaned_connections(transport) == 0
    assert len(pool._connections) == 1


# --- through a loopback proxy --------------------------------------------------------------------


def client_through(proxy_url: str, url: str) -> tuple[AsyncMedplumClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(
        proxy=proxy_url, verify=tls_contexts()[1], limits=httpx.Limits(max_connections=2)
    )
    client = AsyncMedplumClient(
        url, access_token="t", http_client=http, retry=RetryPolicy(max_attempts=1)
    )
    return client, http


@pytest.mark.parametrize("scheme", ["http", "https"], ids=["forward", "tunnel"])
async def test_requests_through_a_proxy_keep_their_idle_connection(scheme: str) -> None:
    server_tls = tls_contexts()[0] if scheme == "https" else None
    with raw_server(answer(200, BODY), tls=server_tls) as server, loopback_proxy() as proxy:
        client, http = client_through(proxy.url, server.url)
        async with http, client:
            for _ in range(3):
                assert await client.read_resource("Patient", "1") == PATIENT
            transport = http._transport_for_url(httpx.URL(server.url))
            assert await reclaim_orphaned_connections(transport) == 0
            assert await client.read_resource("Patient", "1") == PATIENT
        host = server.url.split("//")[1].rstrip("/")
        if scheme == "https":
            assert proxy.requests == [f"CONNECT {host}"]
        else:
            assert proxy.requests == [f"GET {server.url}fhir/R4/Patient/1"] * 4
        assert proxy.accepted == 1  # one connection to the proxy, reused: never closed


@pytest.mark.parametrize("scheme", ["http", "https"], ids=["forward", "tunnel"])
async def test_a_request_in_flight_through_a_proxy_keeps_its_connection(scheme: str) -> None:
    # The request is on the wire, its answer awaited (HTTP/1.1 state ACTIVE, as a connection
    # a cancellation left behind) while the clean-up runs: held by its request, it stays.
    answered = threading.Event()
    wire = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)

    def behaviour(conn: socket.socket, line: str) -> bool:
        answered.wait(5)
        conn.sendall(wire)
        return False

    server_tls = tls_contexts()[0] if scheme == "https" else None
    with raw_server(behaviour, tls=server_tls) as server, loopback_proxy() as proxy:
        client, http = client_through(proxy.url, server.url)
        transport = http._transport_for_url(httpx.URL(server.url))

        async def call(i: int) -> object:
            if i == 0:
                return await client.read_resource("Patient", "1")
            while not server.request_lines:
                await sleep(0.01)
            try:
                return [await reclaim_orphaned_connections(transport) for _ in range(3)]
            finally:
                answered.set()

        async with http, client:
            assert await gather_tasks(2, call) == [PATIENT, [0, 0, 0]]
        assert proxy.accepted == 1

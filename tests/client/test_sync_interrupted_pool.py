"""The sync client after a KeyboardInterrupt inside httpx's pool (httpcore 1.0.9,
encode/httpcore#1093): the two ways an interrupted exchange keeps a connection slot for good,
and the client giving it back (``_sync/_pool.py``, derived from ``_async/_pool.py``, whose
own test cancels async tasks in tests/client/test_async_cancellation.py).

A Ctrl-C is the sync client's cancellation: it lands wherever the thread is. Here it is made to
land at the two points that leak, by wrapping httpcore's own methods, on a pool of one
connection, so that one leaked slot is enough to make the next call time out.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx
import pytest

from pymedplum import MedplumClient, RetryPolicy
from pymedplum._sync._pool import release_abandoned_response

from .rawserver import answer, raw_server

BODY = b'{"resourceType": "Patient", "id": "1"}'


@contextmanager
def interrupted_once(owner: type, name: str, *, before: bool = False) -> Iterator[list[int]]:
    """``owner.name`` raises KeyboardInterrupt the first time it is called: after running as
    before, or (``before``) instead of running."""
    original: Callable[..., Any] = getattr(owner, name)
    calls: list[int] = []

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if before and len(calls) == 1:
            raise KeyboardInterrupt
        result = original(self, *args, **kwargs)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return result

    setattr(owner, name, wrapper)
    try:
        yield calls
    finally:
        setattr(owner, name, original)


def one_connection_client(url: str, *, hooked: bool = False) -> tuple[MedplumClient, httpx.Client]:
    # hooked: an event hook makes the client send through httpx.Client.send, whose response
    # wraps the transport's stream (not straight to the transport).
    hooks: dict[str, list[Callable[..., Any]]] = {"request": [lambda request: None]}
    http = httpx.Client(
        limits=httpx.Limits(max_connections=1),
        timeout=httpx.Timeout(5.0, pool=1.0),
        event_hooks=hooks if hooked else None,
    )
    client = MedplumClient(
        url, access_token="t", http_client=http, retry=RetryPolicy(max_attempts=1)
    )
    return client, http


def stuck(http: httpx.Client) -> list[Any]:
    """The pool's connections that are neither idle nor closed (each holds a slot)."""
    pool = http._transport._pool  # type: ignore[attr-defined]
    return [c for c in pool.connections if not (c.is_idle() or c.is_closed())]


def test_an_interrupt_after_the_pool_assigned_a_connection_leaves_no_slot_taken() -> None:
    # Interrupted after the pool handed the request a new (unopened) connection, before the
    # request used it: httpcore drops the request but keeps the connection, held by nobody.
    with raw_server(answer(200, BODY)) as server:
        client, http = one_connection_client(server.url)
        assigned = (httpcore._sync.connection_pool.PoolRequest, "wait_for_connection")
        with interrupted_once(*assigned), pytest.raises(KeyboardInterrupt):
            client.read_resource("Patient", "1")
        assert stuck(http) == []
        # The only slot is free again: without the client's clean-up this is a PoolTimeout.
        assert client.read_resource("Patient", "1") == {"resourceType": "Patient", "id": "1"}
        client.close()
        http.close()


@pytest.mark.parametrize("hooked", [False, True], ids=["direct", "through-send"])
@pytest.mark.parametrize("before", [True, False], ids=["exchange-left-active", "exchange-ended"])
def test_an_interrupt_while_the_response_is_closed_leaves_no_slot_taken(
    before: bool, hooked: bool
) -> None:
    # Interrupted while httpcore winds up the exchange of a response being closed: the pool
    # stream is marked closed but the pool still counts the request, and closing the response
    # again does nothing. Before the exchange ended, its connection stays ACTIVE: the slot is
    # lost; after, the request stays listed in the pool for good.
    with raw_server(answer(200, BODY)) as server:
        client, http = one_connection_client(server.url, hooked=hooked)
        assert client._direct is not hooked
        close = (httpcore._sync.http11.HTTP11ConnectionByteStream, "close")
        with interrupted_once(*close, before=before), pytest.raises(KeyboardInterrupt):
            client.read_resource("Patient", "1")
        assert stuck(http) == []
        pool = http._transport._pool  # type: ignore[attr-defined]
        assert pool._requests == []
        assert client.read_resource("Patient", "1") == {"resourceType": "Patient", "id": "1"}
        client.close()
        http.close()


def test_without_the_clean_up_the_interrupt_would_keep_the_slot() -> None:
    # The same interrupt on a bare httpx.Client: what the two tests above guard against.
    with raw_server(answer(200, BODY)) as server:
        http = httpx.Client(
            limits=httpx.Limits(max_connections=1), timeout=httpx.Timeout(5.0, pool=0.5)
        )
        assigned = (httpcore._sync.connection_pool.PoolRequest, "wait_for_connection")
        with interrupted_once(*assigned), pytest.raises(KeyboardInterrupt):
            http.get(server.url)
        assert len(stuck(http)) == 1
        with pytest.raises(httpx.PoolTimeout):
            http.get(server.url)
        http.close()


def test_release_is_a_no_op_for_a_response_not_from_httpcore() -> None:
    response = httpx.Response(200, content=BODY)
    assert release_abandoned_response(response) is False


def test_the_clean_up_leaves_alone_a_connection_another_thread_took_meanwhile() -> None:
    # Interrupted after the exchange ended: the connection is idle again, so another thread's
    # request can be given it before the interrupted one has left the pool. Giving the slot
    # back must not close that connection under the other thread's request.
    started, go_on = threading.Event(), threading.Event()
    wire = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)

    def behaviour(conn: socket.socket, line: str) -> bool:
        if len(server.request_lines) == 2:  # the other thread's request: answered later
            started.set()
            go_on.wait(5)
        conn.sendall(wire)
        return False

    with raw_server(behaviour) as server:
        client, http = one_connection_client(server.url)
        results: list[object] = []

        def other() -> None:
            try:
                results.append(client.read_resource("Patient", "1"))
            except BaseException as exc:
                results.append(exc)

        thread = threading.Thread(target=other)
        original = httpcore._sync.http11.HTTP11ConnectionByteStream.close

        def close_then_interrupt(self: Any) -> None:
            original(self)  # the exchange ended: the connection is idle
            if not thread.is_alive() and not results:
                thread.start()
                assert started.wait(5)  # the other request is on that connection now
                raise KeyboardInterrupt

        httpcore._sync.http11.HTTP11ConnectionByteStream.close = close_then_interrupt  # type: ignore[method-assign]
        try:
            with pytest.raises(KeyboardInterrupt):
                client.read_resource("Patient", "1")
        finally:
            httpcore._sync.http11.HTTP11ConnectionByteStream.close = original  # type: ignore[method-assign]
        go_on.set()
        thread.join(5)
        assert results == [{"resourceType": "Patient", "id": "1"}]
        assert stuck(http) == []
        pool = http._transport._pool  # type: ignore[attr-defined]
        assert pool._requests == []
        client.close()
        http.close()


class HTTP2Connection:
    """Stands for httpcore's HTTP/2 connection (matched by class name): busy, many requests."""

    def __init__(self) -> None:
        self.closed = False

    def is_idle(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


class HTTPConnection:
    """Stands for httpcore's lazy connection, opened as HTTP/2."""

    def __init__(self) -> None:
        self._connection = HTTP2Connection()

    def is_idle(self) -> bool:
        return False

    def is_closed(self) -> bool:
        return self._connection.closed

    def has_expired(self) -> bool:
        return False

    def close(self) -> None:
        self._connection.close()


def test_release_leaves_an_http2_connection_to_the_pool() -> None:
    # One HTTP/2 connection carries the other requests' streams: the request whose close was
    # cut short leaves the pool, its connection stays open (closing it would fail the others).
    pool = httpcore.ConnectionPool()
    connection = HTTPConnection()
    pool_request = httpcore._sync.connection_pool.PoolRequest(
        httpcore.Request("GET", "https://medplum.test/fhir/R4/Patient/1")
    )
    pool_request.assign_to_connection(connection)  # type: ignore[arg-type]
    pool._connections.append(connection)  # type: ignore[arg-type]
    pool._requests.append(pool_request)
    stream = httpcore._sync.connection_pool.PoolByteStream(iter([]), pool_request, pool)
    stream._closed = True  # its close began, then was interrupted

    class Outer:
        _httpcore_stream = stream

    response = httpx.Response(200, stream=Outer())  # type: ignore[arg-type]
    assert release_abandoned_response(response) is True
    assert pool._requests == []
    assert pool._connections == [connection]
    assert not connection.is_closed()


@pytest.mark.parametrize(
    "where",
    [
        (httpcore._sync.connection_pool.PoolRequest, "wait_for_connection", False),
        (httpcore._sync.http11.HTTP11ConnectionByteStream, "close", True),
    ],
    ids=["connection-assigned", "response-closed"],
)
def test_an_interrupted_token_request_leaves_no_slot_taken(where: tuple[type, str, bool]) -> None:
    # The token request goes through the same pool: interrupted at the same points, it kept
    # the only slot, and every later token request ended in PoolTimeout (the client locked
    # out for good, since no API call could be sent to clean up after).
    token = b'{"access_token": "t", "token_type": "Bearer", "expires_in": 3600}'

    def behaviour(conn: socket.socket, line: str) -> bool:
        body = token if "oauth2/token" in line else BODY
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        conn.sendall(head % len(body) + body)
        return False

    with raw_server(behaviour) as server:
        http = httpx.Client(
            limits=httpx.Limits(max_connections=1), timeout=httpx.Timeout(5.0, pool=0.5)
        )
        client = MedplumClient(
            server.url,
            client_id="c",
            client_secret="s",
            http_client=http,
            retry=RetryPolicy(max_attempts=1),
        )
        owner, name, before = where
        with interrupted_once(owner, name, before=before), pytest.raises(KeyboardInterrupt):
            client.read_resource("Patient", "1")
        assert server.request_lines[:1] in ([], ["POST /oauth2/token HTTP/1.1"])
        assert stuck(http) == []
        assert client.read_resource("Patient", "1") == {"resourceType": "Patient", "id": "1"}
        client.close()
        http.close()

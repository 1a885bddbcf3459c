"""Give back the connection slots a cancelled request leaves in httpx's connection pool.

httpcore 1.0.9 (httpx 0.28's pool; encode/httpcore#1093) assigns a queued request a *new*
connection before that request has opened it. A request cancelled in between (an
``asyncio.wait_for`` / ``asyncio.timeout`` / anyio cancel scope, or a task cancelled, while
the pool is busy) leaves that connection behind, held by no request: either never opened, or
opened (its socket too) but cancelled before sending, in HTTP/1.1 state NEW. A cancellation
that lands again while a cancelled exchange is being wound up leaves one in state ACTIVE.
None of them is closed, idle or available, so the pool neither reuses nor removes it (a
connection that carries a request is held by it until its response is closed, and is idle
by then). Each one takes a
slot of ``max_connections`` for good; with enough cancellations under load every request ends
in ``PoolTimeout`` against a healthy server (seen on a real Medplum 5.0.10: 62 of 100 slots
held after 80 s of 30 tasks cancelling a request now and then).

Through an HTTP proxy (``proxy=``, or ``HTTPS_PROXY`` / ``HTTP_PROXY`` with trust_env) the
pool is httpcore's ``AsyncHTTPProxy``, the same pool with connections that wrap one to the
proxy: an ``http://`` target's requests are forwarded over it, an ``https://`` target is
reached through a CONNECT tunnel with TLS over it, after which the tunnel holds the HTTP/1.1
(or 2) connection to the target instead. The same leaks happen there, and one more, busy pool
or not: a tunnel cancelled during its TLS handshake keeps the connection to the proxy ACTIVE
(the CONNECT's response is never closed). On a loopback proxy, 160 rounds of 5 requests
cancelled at every point of a send left all 10 slots held, and 20 later requests all ended in
``PoolTimeout``.

After a request of the client (an API call or the token request) fails or is cancelled,
``reclaim_orphaned_connections`` removes such connections from the pool it went through and
lets queued requests have their slots. Safe with other requests in flight, tasks or threads:
the pool gives a request its connection under its lock, and a request in use keeps it until
the exchange is over (idle or closed), so a connection no listed request holds is used by
nobody; the same for a proxy's connections. Duck-typed on httpcore's internals, and a no-op for
anything else (the httpx-aiohttp transport, a mock, an HTTP/2 connection once opened, directly
or over a tunnel, a later httpcore that keeps none of these attributes).
"""

from __future__ import annotations

import contextlib
from typing import Any

# httpcore's HTTP/1.1-or-2 connection: the class that opens its socket lazily, and the HTTP/1.1
# connection it opens; and an HTTP proxy pool's connections, forwarding (http:// targets) or
# tunnelling (https://). The sync twin names httpcore's sync classes.
_LAZY_CONNECTIONS = frozenset({"AsyncHTTPConnection"})  # async-only
_HTTP11_CONNECTIONS = frozenset({"AsyncHTTP11Connection"})  # async-only
_PROXY_CONNECTIONS = ("AsyncForwardHTTPConnection", "AsyncTunnelHTTPConnection")  # async-only
# sync-only: _LAZY_CONNECTIONS = frozenset({"HTTPConnection"})
# sync-only: _HTTP11_CONNECTIONS = frozenset({"HTTP11Connection"})
# sync-only: _PROXY_CONNECTIONS = ("ForwardHTTPConnection", "TunnelHTTPConnection")


def _http11_state(connection: Any) -> str | None:
    """The HTTP/1.1 state (NEW, ACTIVE, IDLE, CLOSED) of the opened connection ``connection``
    is or wraps (an HTTP(S) proxy's included); None for HTTP/2 (one connection carries many
    requests), one not opened, or anything else."""
    for _ in range(3):  # a proxy connection wraps a connection that wraps the HTTP/1.1 one
        if type(connection).__name__ in _HTTP11_CONNECTIONS:
            return getattr(getattr(connection, "_state", None), "name", None)
        connection = getattr(connection, "_connection", None)
        if connection is None:
            return None
    return None


def _holders(requests: list[Any]) -> set[int]:
    """The ids of the connections the pool's requests hold (a request is given one by the pool
    under its lock, so no connection in use escapes this, whichever thread uses it)."""
    return {id(r.connection) for r in requests if getattr(r, "connection", None) is not None}


def _unused_http11(connection: Any) -> bool:
    """Whether an HTTP/1.1 connection no request holds is one the pool keeps for good: its
    exchange never began (NEW) or never ended (ACTIVE), so it is neither idle nor closed."""
    if type(connection).__name__ not in _HTTP11_CONNECTIONS:
        return False
    return getattr(getattr(connection, "_state", None), "name", None) in ("NEW", "ACTIVE")


def _unused(connection: Any) -> tuple[bool, bool]:
    """``(orphan, opened)`` for a connection no request holds: whether the pool would keep it
    for good (not yet opened, or opened and in HTTP/1.1 state NEW or ACTIVE; through a proxy,
    what it wraps), and whether it has a socket to close."""
    if type(connection).__name__ in _PROXY_CONNECTIONS:
        # Through a proxy: it wraps a lazy connection to the proxy, left behind as a direct
        # one is (a tunnel's also ACTIVE when cut short between its CONNECT's answer and the
        # TLS handshake), or a set-up tunnel's HTTP/1.1 (or 2) connection to the target.
        connection = getattr(connection, "_connection", None)
        if _unused_http11(connection):
            return True, True
    if type(connection).__name__ not in _LAZY_CONNECTIONS:
        return False, False
    inner = getattr(connection, "_connection", object())
    if inner is None:
        return getattr(connection, "_connect_failed", None) is False, False
    unused = _unused_http11(inner)
    return unused, unused


def _pool_parts(pool: object) -> tuple[list[Any], list[Any], Any, Any, Any] | None:
    """httpcore's pool internals: connections, requests, lock, assign and close; or None."""
    connections = getattr(pool, "_connections", None)
    requests = getattr(pool, "_requests", None)
    lock = getattr(pool, "_optional_thread_lock", None)
    assign = getattr(pool, "_assign_requests_to_connections", None)
    close = getattr(pool, "_close_connections", None)
    if (
        not isinstance(connections, list)
        or not isinstance(requests, list)
        or lock is None
        or assign is None
        or close is None
    ):
        return None
    return connections, requests, lock, assign, close


async def reclaim_orphaned_connections(transport: object) -> int:
    """Remove the pool's unused connections that no request holds; return how many."""
    parts = _pool_parts(getattr(transport, "_pool", None))
    if parts is None:
        return 0
    connections, requests, lock, assign, close = parts
    with lock:
        held = _holders(requests)
        orphans: list[Any] = []
        opened: list[Any] = []
        for connection in connections:
            if id(connection) in held:
                continue
            orphan, has_socket = _unused(connection)
            if orphan:
                orphans.append(connection)
                if has_socket:
                    opened.append(connection)
        if not orphans:
            return 0
        for connection in orphans:
            connections.remove(connection)
        # Queued requests waiting for a slot get the freed ones now, as after any request.
        closing = assign()
    # An orphan that was opened holds a socket: closed with those the pool lets go of.
    await close([*opened, *closing])
    return len(orphans)


async def release_abandoned_response(response: object) -> bool:
    """Finish closing a response whose close a cancellation cut short; return whether needed.

    httpcore's response stream marks itself closed, then (shielded only from anyio's own
    cancel scopes, not from ``task.cancel()``) winds up the exchange and only after that lets
    the pool forget the request. Cancelled in between, the request stays in the pool for good,
    holding its connection (often in state ACTIVE), and closing the response again does
    nothing: the pool loses that slot. Here the request leaves the pool, and its connection
    too (closed) if the exchange was left unfinished (HTTP/1.1 NEW or ACTIVE) and no other
    request holds it: once the exchange ended the connection is idle, and another thread's
    request may have been given it already. An HTTP/2 connection, which carries other
    requests, is left to the pool."""
    stream = getattr(response, "stream", None)
    # Sent through httpx.AsyncClient.send (a caller's client with hooks or auth), the
    # response's stream wraps the transport's.
    stream = getattr(stream, "_httpcore_stream", None) or getattr(
        getattr(stream, "_stream", None), "_httpcore_stream", None
    )
    pool_request = getattr(stream, "_pool_request", None)
    parts = _pool_parts(getattr(stream, "_pool", None))
    if parts is None or pool_request is None or not getattr(stream, "_closed", False):
        return False
    connections, requests, lock, assign, close = parts
    with lock:
        if pool_request not in requests:
            return False
        requests.remove(pool_request)
        connection = getattr(pool_request, "connection", None)
        dropped = []
        if (
            connection is not None
            and connection in connections
            and id(connection) not in _holders(requests)
            and _http11_state(connection) in ("NEW", "ACTIVE")
        ):
            connections.remove(connection)
            dropped.append(connection)
        closing = assign()
    await close([*dropped, *closing])
    return True


async def after_failed_send(http: object, request: object) -> None:
    """After a send through the httpx client ``http`` failed or was cancelled: remove the
    orphaned connections from the pool of the transport that carried ``request`` (mounts and
    proxies included; httpx's own pool only). Raises no Exception: the send's own error is what
    the caller must see."""
    pick = getattr(http, "_transport_for_url", None)
    url = getattr(request, "url", None)
    if pick is None or url is None:
        return
    with contextlib.suppress(Exception):
        await reclaim_orphaned_connections(pick(url))


async def after_failed_read(response: object) -> None:
    """After reading ``response``'s body failed or was cancelled (the reading closed it): finish
    a close the cancellation cut short. Raises no Exception, as ``after_failed_send``."""
    with contextlib.suppress(Exception):
        await release_abandoned_response(response)

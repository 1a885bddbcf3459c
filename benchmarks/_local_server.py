"""What benchmarks/client.py and benchmarks/clients_compare.py share: the local aiohttp server
they time clients against, and the interleaved best-of-rounds timing loops.

The server runs in a process of its own (spawn), so that its event loop does not share the
benchmark's CPU time slice with the clients being measured.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)


def run_app(app: Any, port: int, ready: Any) -> None:
    """Serve the ``aiohttp.web.Application`` on 127.0.0.1:``port``; set ``ready`` once listening."""
    from aiohttp import web

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


@contextmanager
def serving(serve: Callable[[int, Any], None]) -> Iterator[int]:
    """Run ``serve(port, ready)``, which calls :func:`run_app`, in a spawned process: the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=serve, args=(port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("benchmark server did not start")
        yield port
    finally:
        server.terminate()
        server.join()


def interleaved_sync(
    fns: dict[K, Callable[[], Any]], n: int, rounds: int, warm: int
) -> dict[K, float]:
    """Seconds per call of each function: ``warm`` calls each, then ``rounds`` rounds of ``n``
    calls of each in turn (so that load on the machine hits them alike); the best round kept."""
    best = dict.fromkeys(fns, float("inf"))
    for fn in fns.values():
        for _ in range(warm):
            fn()
    for _ in range(rounds):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best[key] = min(best[key], (time.perf_counter() - t0) / n)
    return best


async def interleaved_async(
    fns: dict[K, Callable[[], Awaitable[Any]]], n: int, rounds: int, warm: int
) -> dict[K, float]:
    """:func:`interleaved_sync` for coroutine functions."""
    best = dict.fromkeys(fns, float("inf"))
    for fn in fns.values():
        for _ in range(warm):
            await fn()
    for _ in range(rounds):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(n):
                await fn()
            best[key] = min(best[key], (time.perf_counter() - t0) / n)
    return best

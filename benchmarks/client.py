"""Client runtime benchmarks: one command, prints one table.

    .venv/bin/python benchmarks/client.py   # needs the `bench` extra (aiohttp, httpx-aiohttp)
    .venv/bin/python benchmarks/client.py --quick    # fewer iterations

1. Per-request overhead of the SDK over a bare httpx client on the same MockTransport
   (sync and async; best of several runs, microseconds per request).
2. 50 requests in flight with the async client against a local HTTP server the benchmark starts
   on 127.0.0.1 (an aiohttp.web app in a separate process), as a ratio to an aiohttp session
   doing the same: httpx's own pool, and httpx on the httpx-aiohttp transport.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from pymedplum._async._base_client import AsyncBaseClient
from pymedplum._sync._base_client import SyncBaseClient
from pymedplum.hooks import RequestEvent

BODY = (
    b'{"resourceType":"Patient","id":"123","meta":{"versionId":"1","lastUpdated":'
    b'"2024-01-01T00:00:00.000Z"},"name":[{"given":["Jane"],"family":"Doe"}],'
    b'"gender":"female","birthDate":"1970-01-01","active":true}'
)
HEADERS = {"Content-Type": "application/fhir+json"}
BASE = "https://medplum.bench/"
URL = BASE + "fhir/R4/Patient/123"
AUTH = {
    "Authorization": "Bearer bench-token",
    "Accept": "application/fhir+json",
    "X-Medplum": "extended",
}


def handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=BODY, headers=HEADERS)


# --- 1. overhead on MockTransport ----------------------------------------------------------


def best_sync(fn: Callable[[], Any], n: int, repeats: int) -> float:
    for _ in range(200):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


async def best_async(fn: Callable[[], Awaitable[Any]], n: int, repeats: int) -> float:
    for _ in range(200):
        await fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            await fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def overhead(n: int, repeats: int) -> list[tuple[str, float, float | None]]:
    rows: list[tuple[str, float, float | None]] = []
    transport = httpx.MockTransport(handler)

    bare = httpx.Client(transport=transport)
    base = best_sync(lambda: bare.get(URL, headers=AUTH).json(), n, repeats)
    rows.append(("sync  bare httpx.Client (get + .json())", base, None))
    sdk = SyncBaseClient(BASE, access_token="bench-token", http_client=bare)
    t = best_sync(lambda: sdk._json(sdk._request("GET", "Patient/123")), n, repeats)
    rows.append(("sync  pymedplum _request + _json", t, t - base))
    events: list[RequestEvent] = []
    hooked = SyncBaseClient(
        BASE,
        access_token="bench-token",
        http_client=bare,
        on_request_complete=lambda e: events.append(e) if len(events) < 1 else None,
    )
    t = best_sync(lambda: hooked._json(hooked._request("GET", "Patient/123")), n, repeats)
    rows.append(("sync  pymedplum + on_request_complete hook", t, t - base))

    async def run_async() -> None:
        abare = httpx.AsyncClient(transport=transport)
        abase = await best_async(lambda: _aget(abare), n, repeats)
        rows.append(("async bare httpx.AsyncClient (get + .json())", abase, None))
        asdk = AsyncBaseClient(BASE, access_token="bench-token", http_client=abare)

        async def call() -> Any:
            return asdk._json(await asdk._request("GET", "Patient/123"))

        t = await best_async(call, n, repeats)
        rows.append(("async pymedplum _request + _json", t, t - abase))
        ahooked = AsyncBaseClient(
            BASE, access_token="bench-token", http_client=abare, on_request_complete=lambda e: None
        )

        async def hooked_call() -> Any:
            return ahooked._json(await ahooked._request("GET", "Patient/123"))

        t = await best_async(hooked_call, n, repeats)
        rows.append(("async pymedplum + on_request_complete hook", t, t - abase))

    asyncio.run(run_async())
    return rows


async def _aget(client: httpx.AsyncClient) -> Any:
    return (await client.get(URL, headers=AUTH)).json()


# --- 2. 50 in flight against a local server ------------------------------------------------


def serve(port: int, ready: Any) -> None:
    from aiohttp import web

    async def patient(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/fhir+json")

    app = web.Application()
    app.router.add_get("/fhir/R4/Patient/{id}", patient)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def in_flight(fetch: Callable[[], Awaitable[Any]], total: int, concurrency: int) -> float:
    """Seconds per request with ``concurrency`` workers sharing ``total`` requests."""
    per_worker = total // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await fetch()

    for _ in range(concurrency):  # warm the pool
        await fetch()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.perf_counter() - t0) / (per_worker * concurrency)


async def concurrent_rows(port: int, total: int, concurrency: int) -> list[tuple[str, float]]:
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    base = f"http://127.0.0.1:{port}/"
    url = base + "fhir/R4/Patient/123"
    rows: list[tuple[str, float]] = []

    async with aiohttp.ClientSession() as session:

        async def aio() -> Any:
            async with session.get(url, headers=AUTH) as response:
                return await response.json(content_type=None)

        rows.append(("aiohttp.ClientSession", await in_flight(aio, total, concurrency)))

    async with httpx.AsyncClient() as bare:
        rows.append(
            ("bare httpx.AsyncClient", await in_flight(lambda: _get(bare, url), total, concurrency))
        )

    sdk = AsyncBaseClient(base, access_token="bench-token")
    async with sdk:

        async def sdk_call() -> Any:
            return sdk._json(await sdk._request("GET", "Patient/123"))

        rows.append(
            ("pymedplum, httpx pool (default)", await in_flight(sdk_call, total, concurrency))
        )

    http = httpx.AsyncClient(transport=AiohttpTransport(), follow_redirects=False)
    async with AsyncBaseClient(base, access_token="bench-token", http_client=http) as sdk2:

        async def sdk2_call() -> Any:
            return sdk2._json(await sdk2._request("GET", "Patient/123"))

        rows.append(
            ("pymedplum, httpx-aiohttp transport", await in_flight(sdk2_call, total, concurrency))
        )
    await http.aclose()
    return rows


async def _get(client: httpx.AsyncClient, url: str) -> Any:
    return (await client.get(url, headers=AUTH)).json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    n, repeats = (2000, 3) if args.quick else (10000, 5)
    total, concurrency = (2000, 50) if args.quick else (10000, 50)

    print(
        f"# pymedplum client benchmarks ({platform.python_implementation()} "
        f"{platform.python_version()}, httpx {httpx.__version__}, {platform.machine()})\n"
    )
    print(f"## Overhead per request on httpx.MockTransport (best of {repeats} x {n})\n")
    print("| client | µs / request | overhead vs bare httpx |")
    print("| --- | ---: | ---: |")
    for name, micros, extra in overhead(n, repeats):
        print(f"| {name} | {micros:.1f} | {'' if extra is None else f'{extra:+.1f} µs'} |")

    port = free_port()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=serve, args=(port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("benchmark server did not start")
        rows = asyncio.run(concurrent_rows(port, total, concurrency))
    finally:
        server.terminate()
        server.join()
    baseline = rows[0][1]
    print(f"\n## {concurrency} requests in flight, {total} GETs against a local aiohttp server\n")
    print("| client | µs / request | ratio to aiohttp |")
    print("| --- | ---: | ---: |")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e6:.0f} | {seconds / baseline:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

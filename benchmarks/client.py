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
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from _local_server import interleaved_async, interleaved_sync, run_app, serving

from pymedplum._async._base_client import AsyncBaseClient
from pymedplum._sync._base_client import SyncBaseClient

BODY = (
    b'{"resourceType":"Patient","id":"123","meta":{"versionId":"1","lastUpdated":'
    b'"2024-01-01T00:00:00.000Z"},"name":[{"given":["Jane"],"family":"Doe"}],'
    b'"gender":"female","birthDate":"1970-01-01","active":true}'
)
HEADERS = {"Content-Type": "application/fhir+json"}
BASE = "https://medplum.bench/"
URL_PATH = "Patient/123"
URL = BASE + "fhir/R4/" + URL_PATH
AUTH = {
    "Authorization": "Bearer bench-token",
    "Accept": "application/fhir+json",
    "X-Medplum": "extended",
}


def handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=BODY, headers=HEADERS)


# --- 1. overhead on MockTransport ----------------------------------------------------------
# The variants run interleaved (one batch of each per round, best round kept), so a busy
# machine slows all of them alike instead of whichever happened to run during a spike.


def micros(seconds: dict[str, float]) -> dict[str, float]:
    """The timings of ``interleaved_sync`` / ``interleaved_async`` in microseconds a call."""
    return {name: value * 1e6 for name, value in seconds.items()}


def overhead(n: int, repeats: int) -> list[tuple[str, float, str]]:
    """Rows (name, µs per request, overhead vs the flavour's bare httpx client)."""
    transport = httpx.MockTransport(handler)
    bare = httpx.Client(transport=transport)
    sdk = SyncBaseClient(BASE, access_token="bench-token", http_client=bare)
    hooked = SyncBaseClient(
        BASE, access_token="bench-token", http_client=bare, on_request_complete=lambda e: None
    )

    def raw_transport() -> Any:
        response = transport.handle_request(httpx.Request("GET", URL, headers=AUTH))
        response.read()
        return response.json()

    sync = interleaved_sync(
        {
            "sync  bare httpx.Client (get + .json())": lambda: bare.get(URL, headers=AUTH).json(),
            "sync  httpx Request straight to the transport": raw_transport,
            "sync  pymedplum _request + _json": lambda: sdk._json(sdk._request("GET", URL_PATH)),
            "sync  pymedplum + on_request_complete hook": lambda: hooked._json(
                hooked._request("GET", URL_PATH)
            ),
        },
        n,
        repeats,
        warm=200,
    )

    async def run_async() -> dict[str, float]:
        abare = httpx.AsyncClient(transport=transport)
        asdk = AsyncBaseClient(BASE, access_token="bench-token", http_client=abare)
        ahooked = AsyncBaseClient(
            BASE, access_token="bench-token", http_client=abare, on_request_complete=lambda e: None
        )

        async def bare_call() -> Any:
            return (await abare.get(URL, headers=AUTH)).json()

        async def raw_call() -> Any:
            response = await transport.handle_async_request(httpx.Request("GET", URL, headers=AUTH))
            await response.aread()
            return response.json()

        async def sdk_call() -> Any:
            return asdk._json(await asdk._request("GET", URL_PATH))

        async def hooked_call() -> Any:
            return ahooked._json(await ahooked._request("GET", URL_PATH))

        return await interleaved_async(
            {
                "async bare httpx.AsyncClient (get + .json())": bare_call,
                "async httpx Request straight to the transport": raw_call,
                "async pymedplum _request + _json": sdk_call,
                "async pymedplum + on_request_complete hook": hooked_call,
            },
            n,
            repeats,
            warm=200,
        )

    rows: list[tuple[str, float, str]] = []
    for results in (micros(sync), micros(asyncio.run(run_async()))):
        names = list(results)
        base, raw = results[names[0]], results[names[1]]
        rows.append((names[0], base, "baseline"))
        rows.append((names[1], raw, f"{raw - base:+.1f} µs"))
        for name in names[2:]:
            value = results[name]
            rows.append((name, value, f"{value - base:+.1f} µs ({value - raw:+.1f} vs transport)"))
    return rows


# --- 2. 50 in flight against a local server ------------------------------------------------


def serve(port: int, ready: Any) -> None:
    from aiohttp import web

    async def patient(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/fhir+json")

    app = web.Application()
    app.router.add_get("/fhir/R4/Patient/{id}", patient)
    run_app(app, port, ready)


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


async def concurrent_rows(
    port: int, total: int, concurrency: int, rounds: int
) -> list[tuple[str, float]]:
    """Best round per client; the clients take turns within each round."""
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    base = f"http://127.0.0.1:{port}/"
    url = base + "fhir/R4/Patient/123"
    session = aiohttp.ClientSession()
    bare = httpx.AsyncClient()
    aio_transport = AiohttpTransport()
    sdk = AsyncBaseClient(base, access_token="bench-token")
    aio_http = httpx.AsyncClient(transport=AiohttpTransport(), follow_redirects=False)
    sdk_aio = AsyncBaseClient(base, access_token="bench-token", http_client=aio_http)

    async def aio() -> Any:
        async with session.get(url, headers=AUTH) as response:
            return await response.json(content_type=None)

    async def raw_aio() -> Any:
        response = await aio_transport.handle_async_request(httpx.Request("GET", url, headers=AUTH))
        await response.aread()
        return response.json()

    async def sdk_call() -> Any:
        return sdk._json(await sdk._request("GET", URL_PATH))

    async def sdk_aio_call() -> Any:
        return sdk_aio._json(await sdk_aio._request("GET", URL_PATH))

    clients: dict[str, Callable[[], Awaitable[Any]]] = {
        "aiohttp.ClientSession": aio,
        "bare httpx.AsyncClient (httpx pool)": lambda: _get(bare, url),
        "pymedplum, httpx pool (default)": sdk_call,
        "httpx Request straight to httpx-aiohttp transport": raw_aio,
        "pymedplum, httpx-aiohttp transport": sdk_aio_call,
    }
    best = dict.fromkeys(clients, float("inf"))
    try:
        for _ in range(rounds):
            for name, fetch in clients.items():
                best[name] = min(best[name], await in_flight(fetch, total, concurrency))
    finally:
        await session.close()
        await bare.aclose()
        await aio_transport.aclose()
        await sdk.aclose()
        await sdk_aio.aclose()
        await aio_http.aclose()  # caller-supplied: the SDK leaves it open
    return list(best.items())


async def _get(client: httpx.AsyncClient, url: str) -> Any:
    return (await client.get(url, headers=AUTH)).json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    n, repeats = (2000, 3) if args.quick else (10000, 5)
    total, concurrency, rounds = (1000, 50, 1) if args.quick else (2000, 50, 3)

    print(
        f"# pymedplum client benchmarks ({platform.python_implementation()} "
        f"{platform.python_version()}, httpx {httpx.__version__}, {platform.machine()})\n"
    )
    print(f"## Overhead per request on httpx.MockTransport (best of {repeats} x {n})\n")
    print("| client | µs / request | overhead vs bare httpx |")
    print("| --- | ---: | ---: |")
    for name, micros, extra in overhead(n, repeats):
        print(f"| {name} | {micros:.1f} | {extra} |")

    with serving(serve) as port:
        rows = asyncio.run(concurrent_rows(port, total, concurrency, rounds))
    baseline = rows[0][1]
    print(
        f"\n## {concurrency} requests in flight, {total} GETs against a local aiohttp server "
        f"(best of {rounds} interleaved rounds)\n"
    )
    print("| client | µs / request | ratio to aiohttp |")
    print("| --- | ---: | ---: |")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e6:.0f} | {seconds / baseline:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

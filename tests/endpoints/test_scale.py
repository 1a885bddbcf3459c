"""The SDK used at scale: memory while paging, copies of large payloads (both clients)."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pymedplum import AsyncMedplumClient, MedplumClient
from pymedplum.hooks import RequestEvent

from .conftest import BASE, FHIR, Patient

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]


def client_of(flavour: str, handler: Handler, **kwargs: Any) -> Any:
    transport = httpx.MockTransport(handler)
    if flavour == "sync":
        return MedplumClient(
            BASE, access_token="t", http_client=httpx.Client(transport=transport), **kwargs
        )
    return AsyncMedplumClient(
        BASE, access_token="t", http_client=httpx.AsyncClient(transport=transport), **kwargs
    )


def cursor_pages(count: int, per_page: int = 20) -> Handler:
    """``count`` searchset pages linked by Medplum-like cursor URLs (each one different and
    longer than pydantic-core's 64-character string cache, so only the SDK can keep them)."""
    entries = [
        {
            "resource": {"resourceType": "Patient", "id": f"p{i}", "active": True},
            "search": {"mode": "match"},
        }
        for i in range(per_page)
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("_cursor")
        number = int(cursor.split("-")[0]) if cursor else 0
        page: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        if number + 1 < count:
            token = f"{number + 1:06d}-" + "0123456789abcdef" * 4
            page["link"] = [
                {
                    "relation": "next",
                    "url": f"{FHIR}Patient?_count={per_page}&_sort=_lastUpdated&_cursor={token}",
                }
            ]
        return httpx.Response(200, content=json.dumps(page).encode())

    return handler


async def _consume(iterator: Any, on_item: Callable[[int], None]) -> int:
    index = 0
    if hasattr(iterator, "__anext__"):
        async for _ in iterator:
            on_item(index)
            index += 1
    else:
        for _ in iterator:
            on_item(index)
            index += 1
    return index


@pytest.mark.parametrize("as_fhir", [None, Patient])
async def test_memory_stays_flat_while_paging(flavour: str, as_fhir: Any) -> None:
    # 350 pages; what the iteration keeps between page 150 and page 350 is measured (by then the
    # bounded caches of the standard library, urlsplit's 128 URLs, are full). The loop guard
    # keeps a 16-byte digest of every page fetched (~0.1 KB a page with its set slot, plus the
    # set's resizes); before, it kept every next URL and its decoded query (~0.95 KB a page
    # here: 190-203 KB over the 200 pages), and the page read last stayed alive while the
    # next one was fetched.
    events: list[int] = []

    def hook(event: RequestEvent) -> None:
        events.append(event.final_status_code or 0)  # a hook that keeps nothing of the event

    client = client_of(flavour, cursor_pages(350), on_request_complete=hook)
    marks: dict[int, int] = {}

    def on_item(index: int) -> None:
        if index in (150 * 20, 350 * 20 - 1):
            gc.collect()
            marks[index] = tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        iterator = client.search_resource_pages("Patient", {"_count": 20}, as_fhir)
        total = await _consume(iterator, on_item)
    finally:
        tracemalloc.stop()
    assert total == 350 * 20 and len(events) == 350
    growth = marks[350 * 20 - 1] - marks[150 * 20]
    assert growth < 200 * 400, f"{growth} bytes kept over 200 pages"

"""The SDK used at scale: memory while paging, copies of large payloads (both clients)."""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pymedplum import AsyncMedplumClient, MedplumClient, RetryPolicy
from pymedplum._async import _auth as async_auth
from pymedplum._sync import _auth as sync_auth
from pymedplum.exceptions import NetworkError
from pymedplum.hooks import RequestEvent

from .conftest import BASE, FHIR, Patient, call, client_of

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]


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


MB = 1024 * 1024


class StreamedAnswer(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body arriving in 64 KB chunks, as from a socket (a MockTransport's arrives read);
    ``fail_after`` chunks, it raises a ReadError instead (a connection lost midway)."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self.data = data
        self.fail_after = fail_after
        self.closed = False

    def __iter__(self) -> Any:
        view = memoryview(self.data)
        for number, start in enumerate(range(0, len(self.data), 64 * 1024)):
            if number == self.fail_after:
                raise httpx.ReadError("connection lost")
            yield bytes(view[start : start + 64 * 1024])

    async def __aiter__(self) -> Any:
        for chunk in self:
            yield chunk

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


class StreamingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers every request with ``body`` streamed; a request body is drained unjoined."""

    def __init__(self, body: StreamedAnswer) -> None:
        self.body = body

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for _ in request.stream:  # type: ignore[union-attr]
            pass
        return httpx.Response(200, stream=self.body)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async for _ in request.stream:  # type: ignore[union-attr]
            pass
        return httpx.Response(200, stream=self.body)


def streaming_client(flavour: str, body: StreamedAnswer, hooked: bool) -> Any:
    transport = StreamingTransport(body)
    # An event hook makes the client send through httpx's own send() (the other read path).
    hooks: dict[str, list[Any]] = {"response": [lambda r: None]} if hooked else {}
    if flavour == "sync":
        http: Any = httpx.Client(transport=transport, event_hooks=hooks)
        return MedplumClient(BASE, access_token="t", http_client=http, retry=no_retry())
    if hooked:
        hooks = {"response": [async_noop]}
    http = httpx.AsyncClient(transport=transport, event_hooks=hooks)
    return AsyncMedplumClient(BASE, access_token="t", http_client=http, retry=no_retry())


async def async_noop(response: httpx.Response) -> None:
    pass


def no_retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=1)


@pytest.mark.parametrize("hooked", [False, True])
async def test_a_large_download_is_held_once(flavour: str, hooked: bool) -> None:
    # httpx's read() keeps the chunks in a list and joins them: a 20 MB Binary peaked at
    # 40 MB (2.00x) on top of what was there; now one growing buffer (1.03x).
    payload = bytes(range(256)) * (20 * MB // 256)
    client = streaming_client(flavour, StreamedAnswer(payload), hooked)
    gc.collect()
    tracemalloc.start()
    try:
        content = await call(client.download_binary("b1"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert content == payload
    assert peak < 1.3 * len(payload), f"peak {peak / len(payload):.2f}x the body"


@pytest.mark.parametrize("hooked", [False, True])
async def test_a_body_lost_midway_is_closed(flavour: str, hooked: bool) -> None:
    body = StreamedAnswer(bytes(MB), fail_after=3)
    client = streaming_client(flavour, body, hooked)
    with pytest.raises(NetworkError, match="ReadError"):
        await call(client.download_binary("b1"))
    assert body.closed


class Clock:
    """The token manager's clock, moved by hand (its ``perf_counter`` stays real)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    perf_counter = staticmethod(time.perf_counter)


async def test_a_long_paging_run_survives_token_expiry_a_failed_refresh_and_rate_limits(
    flavour: str, monkeypatch: pytest.MonkeyPatch, no_sleep: list[float]
) -> None:
    # 40 pages, each one 100 s later on the token manager's clock: the 300 s tokens are
    # refreshed every few pages. The fifth token request answers 503 (the token endpoint
    # restarting), one page 429 with Retry-After and another 503: none of them may end an
    # iteration that cannot be resumed.
    clock = Clock()
    monkeypatch.setattr(async_auth, "time", clock)
    monkeypatch.setattr(sync_auth, "time", clock)
    pages = cursor_pages(40)
    token_requests: list[int] = []
    page_requests: list[str] = []
    issued: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            token_requests.append(len(page_requests))
            if len(token_requests) == 5:
                return httpx.Response(503, text="restarting")
            token = f"token-{len(token_requests)}"
            issued.add(token)
            return httpx.Response(200, json={"access_token": token, "expires_in": 300})
        assert request.headers["Authorization"].removeprefix("Bearer ") in issued
        page_requests.append(str(request.url))
        if len(page_requests) == 12:
            return httpx.Response(429, headers={"Retry-After": "2"})
        if len(page_requests) == 20:
            return httpx.Response(503)
        clock.now += 100
        return pages(request)

    events: list[RequestEvent] = []
    transport = httpx.MockTransport(handler)
    credentials = {
        "client_id": "cid",
        "client_secret": "secret",
        "on_request_complete": events.append,
    }
    if flavour == "sync":
        client: Any = MedplumClient(
            BASE, http_client=httpx.Client(transport=transport), **credentials
        )
    else:
        client = AsyncMedplumClient(
            BASE, http_client=httpx.AsyncClient(transport=transport), **credentials
        )
    found = await _consume(client.search_resource_pages("Patient", {"_count": 20}), lambda i: None)
    assert found == 40 * 20
    assert len(page_requests) == 42  # 40 pages, two of them sent twice
    assert 2.0 in no_sleep  # the page's Retry-After
    token_events = [e for e in events if e.path == "/oauth2/token"]
    assert [len(e.attempts) for e in token_events].count(2) == 1  # the 503, then the token
    assert all(e.outcome == "success" for e in events)


async def test_a_typed_search_bundle_holds_its_page_once(flavour: str) -> None:
    # return_bundle=True with as_fhir kept a second decoding of the page (decimals exact, for
    # the models) beside the dicts from the start: 2.4x what the untyped bundle holds. The
    # models are now validated from the body when they are built.
    entries = [
        {
            "resource": {
                "resourceType": "Patient",
                "id": str(i),
                "extension": [{"url": "urn:x", "valueDecimal": 1.5}],
            },
            "search": {"mode": "match"},
        }
        for i in range(2000)
    ]
    body = json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": entries}).encode()
    client = client_of(flavour, lambda request: httpx.Response(200, content=body))

    async def held(**options: Any) -> tuple[int, Any]:
        gc.collect()
        tracemalloc.start()
        try:
            bundle = await call(client.search_resources("Patient", return_bundle=True, **options))
            gc.collect()
            return tracemalloc.get_traced_memory()[0], bundle
        finally:
            tracemalloc.stop()

    await held(as_fhir=Patient)  # warm-up (class caches)
    untyped, _ = await held()
    typed, bundle = await held(as_fhir=Patient)
    assert typed < 1.2 * untyped, f"{typed / untyped:.2f}x the untyped bundle"
    patients = list(bundle)
    assert [p.id for p in patients[:2]] == ["0", "1"] and len(patients) == 2000
    assert bundle.get_resources_typed(Patient)[1].id == "1"


class RecordingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Records the chunks each request body arrives in; answers from ``answers`` (then 201)."""

    def __init__(self, answers: list[httpx.Response]) -> None:
        self.answers = answers
        self.bodies: list[list[int]] = []
        self.contents: list[bytes] = []
        self.lengths: list[str] = []

    def _answer(self, request: httpx.Request, chunks: list[bytes]) -> httpx.Response:
        self.bodies.append([len(c) for c in chunks])
        self.contents.append(b"".join(chunks))
        self.lengths.append(request.headers["Content-Length"])
        if self.answers:
            return self.answers.pop(0)
        return httpx.Response(201, json={"resourceType": "Binary", "id": "b1"})

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request, list(request.stream))  # type: ignore[arg-type]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request, [c async for c in request.stream])  # type: ignore[union-attr]


def recording_client(
    flavour: str, transport: RecordingTransport, hooked: bool = False
) -> tuple[Any, list[int]]:
    """A client on ``transport``, and what its request hook saw of each body (``hooked``: a
    request hook that reads the body, so requests go through httpx's own send())."""
    seen: list[int] = []
    if flavour == "sync":
        hooks: dict[str, list[Any]] = {"request": [lambda r: seen.append(len(r.content))]}
        http: Any = httpx.Client(transport=transport, event_hooks=hooks if hooked else {})
        client: Any = MedplumClient(BASE, access_token="t", http_client=http)
    else:

        async def read(request: httpx.Request) -> None:
            seen.append(len(request.content))

        http = httpx.AsyncClient(
            transport=transport, event_hooks={"request": [read]} if hooked else {}
        )
        client = AsyncMedplumClient(BASE, access_token="t", http_client=http)
    return client, seen


@pytest.mark.parametrize("hooked", [False, True])
async def test_a_large_upload_goes_out_in_slices_and_is_resent_whole(
    flavour: str, hooked: bool, no_sleep: list[float]
) -> None:
    # httpx handed a bytes body to the transport in one piece, which h11 copied whole with
    # its framing: a 50 MB upload peaked at 1.77x (sync) / 1.85x (async) its size on the
    # local server, now 0.01x (tests/integration/test_client_binary_terminology.py).
    payload = bytes(range(256)) * (3 * MB // 256 + 1)
    transport = RecordingTransport([httpx.Response(429, headers={"Retry-After": "1"})])
    client, hook_saw = recording_client(flavour, transport, hooked)
    assert (await call(client.upload_binary(payload, "application/pdf")))["id"] == "b1"
    assert len(transport.bodies) == 2  # the 429, then the retry: the same bytes both times
    assert transport.contents == [payload, payload]
    assert transport.lengths == [str(len(payload))] * 2
    assert all(max(sizes) <= 256 * 1024 and len(sizes) > 1 for sizes in transport.bodies)
    # An httpx request hook still sees the whole body as request.content.
    assert hook_saw == ([len(payload)] * 2 if hooked else [])


async def test_a_small_body_is_sent_as_one_piece(flavour: str) -> None:
    transport = RecordingTransport([])
    client, _ = recording_client(flavour, transport)
    await call(client.upload_binary(b"x" * 1000, "text/plain"))
    assert transport.bodies == [[1000]]

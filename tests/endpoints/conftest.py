"""One endpoint suite for both clients: every test runs against MedplumClient and
AsyncMedplumClient, each wired to an ``httpx.MockTransport`` that records the requests."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict

from pymedplum import AsyncMedplumClient, MedplumClient
from pymedplum._async import _synchronization as async_sync
from pymedplum._serialization import ExponentDecimal
from pymedplum._sync import _synchronization as sync_sync
from pymedplum.hooks import RequestEvent

BASE = "https://medplum.test/"
FHIR = BASE + "fhir/R4/"

Handler = Callable[[httpx.Request], httpx.Response]


class Patient(BaseModel):
    """A tiny stand-in model (the suite tests the client, not pymedplum.fhir)."""

    model_config = ConfigDict(extra="allow")
    resourceType: str = "Patient"
    id: str | None = None
    active: bool | None = None


class OperationOutcome(BaseModel):
    model_config = ConfigDict(extra="allow")
    resourceType: str = "OperationOutcome"
    issue: list[dict[str, Any]] = []


@dataclass
class Harness:
    """A client of one flavour, the requests it sent and the events it emitted."""

    client: MedplumClient | AsyncMedplumClient
    requests: list[httpx.Request] = field(default_factory=list)
    events: list[RequestEvent] = field(default_factory=list)

    @property
    def is_async(self) -> bool:
        return isinstance(self.client, AsyncMedplumClient)

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` on the client, awaiting it on the async flavour."""
        result = getattr(self.client, method)(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result

    async def collect(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Drain an iterator method (generator or async generator) into a list."""
        iterator = getattr(self.client, method)(*args, **kwargs)
        if hasattr(iterator, "__anext__"):
            return [item async for item in iterator]
        return list(iterator)

    def iterate(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.client, method)(*args, **kwargs)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


async def next_item(iterator: Any) -> Any:
    """``next()`` for a generator or an async generator."""
    if hasattr(iterator, "__anext__"):
        return await iterator.__anext__()
    return next(iterator)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def searchset(*ids: str, next_url: str | None = None) -> dict[str, Any]:
    """A searchset page of Patients with these ids, and a next link when given."""
    data: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": i}, "search": {"mode": "match"}}
            for i in ids
        ],
    }
    if next_url is not None:
        data["link"] = [{"relation": "next", "url": next_url}]
    return data


def outcome(code: str = "processing", diagnostics: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": code}
    if diagnostics is not None:
        issue["diagnostics"] = diagnostics
    return {"resourceType": "OperationOutcome", "issue": [issue]}


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(flavour: str) -> Iterator[Callable[..., Harness]]:
    """``make(handler, **client_kwargs)`` → a Harness of the current flavour."""
    made: list[Harness] = []

    def factory(handler: Handler, **kwargs: Any) -> Harness:
        harness: Harness

        def record(request: httpx.Request) -> httpx.Response:
            request.read()
            harness.requests.append(request)
            return handler(request)

        transport = httpx.MockTransport(record)
        events: list[RequestEvent] = []
        options: dict[str, Any] = {
            "access_token": "token",
            "on_request_complete": events.append,
            **kwargs,
        }
        if flavour == "sync":
            client: Any = MedplumClient(
                BASE, http_client=httpx.Client(transport=transport), **options
            )
        else:
            client = AsyncMedplumClient(
                BASE, http_client=httpx.AsyncClient(transport=transport), **options
            )
        harness = Harness(client=client, events=events)
        made.append(harness)
        return harness

    yield factory


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits of both clients are recorded here instead of slept."""
    delays: list[float] = []

    async def async_sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(async_sync, "sleep", async_sleep)
    monkeypatch.setattr(sync_sync, "sleep", delays.append)
    return delays


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def drain(iterator: Any) -> list[Any]:
    if hasattr(iterator, "__anext__"):
        return [item async for item in iterator]
    return list(iterator)


def echo(status: int = 200) -> Handler:
    """A handler answering the JSON request body back (or ``{}``), with an id and version."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        if isinstance(body, dict):
            body = {"id": "new-id", **body, "meta": {**body.get("meta", {}), "versionId": "2"}}
        return json_response(status, body)

    return handler


def client_of(flavour: str, handler: Handler, **kwargs: Any) -> Any:
    """A ``flavour`` client (``"sync"`` / ``"async"``) whose own httpx client sends every
    request to ``handler`` (a MockTransport), with a fixed access token."""
    transport = httpx.MockTransport(handler)
    if flavour == "sync":
        return MedplumClient(
            BASE, access_token="t", http_client=httpx.Client(transport=transport), **kwargs
        )
    return AsyncMedplumClient(
        BASE, access_token="t", http_client=httpx.AsyncClient(transport=transport), **kwargs
    )


async def call(result: Any) -> Any:
    """A client method's result: awaited for the async client, as it is for the sync one."""
    return await result if inspect.isawaitable(result) else result


def reference_encoding(value: Any) -> bytes:
    """What the client sent before bodies were written piece by piece: one ``json.dumps`` of
    the whole body, each Decimal then written as its number text (the expected bytes of the
    request-body tests)."""

    def default(obj: object) -> object:
        if isinstance(obj, Decimal):
            return "\x00ref:" + (obj.text if isinstance(obj, ExponentDecimal) else str(obj))
        raise TypeError(type(obj).__name__)

    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=default)
    return re.sub(r'"\\u0000ref:([-+0-9.eE]+)"', r"\1", text).encode()

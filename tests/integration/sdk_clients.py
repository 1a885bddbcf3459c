"""Both SDK clients against the live local Medplum server, behind one small adapter.

Every ``tests/integration/test_client_*.py`` test takes ``api`` (or ``make_api``) and runs once
with ``MedplumClient`` and once with ``AsyncMedplumClient`` (the ``flavour`` parameter).
``await api.call("read_resource", ...)`` awaits on the async client and is the plain call on the
sync one; the sync client blocks the event loop while it runs, which is harmless here: the server
is another process. The fixtures are registered by an import at the end of ``conftest.py``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import medplum_server as harness  # scripts/medplum_server.py, put on sys.path by conftest.py
import pytest

from pymedplum import AsyncMedplumClient, MedplumClient
from pymedplum.hooks import RequestEvent

MedplumServer = harness.MedplumServer
TOKEN_PATH = "/oauth2/token"


def unique(prefix: str = "t") -> str:
    """A fresh token for identifiers and names: tests share one server store."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@dataclass
class Api:
    """One client of one flavour, the events it emitted, and the server it talks to."""

    flavour: str
    client: Any  # MedplumClient | AsyncMedplumClient: tests call it through the adapter
    server: MedplumServer
    events: list[RequestEvent] = field(default_factory=list)

    @property
    def is_async(self) -> bool:
        return self.flavour == "async"

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``client.<method>(...)``, awaited on the async client."""
        result = getattr(self.client, method)(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result

    def iterate(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """The iterator (sync) or async iterator (async) a paging method returns, undrained."""
        return getattr(self.client, method)(*args, **kwargs)

    async def collect(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Drain a paging method: ``async for`` on the async client, ``for`` on the sync one."""
        iterator = self.iterate(method, *args, **kwargs)
        if self.is_async:
            assert hasattr(iterator, "__aiter__"), "the async client must return an async iterator"
            return [item async for item in iterator]
        assert not hasattr(iterator, "__aiter__"), "the sync client must return a plain iterator"
        return list(iterator)

    @contextlib.asynccontextmanager
    async def on_behalf_of(self, membership: Any) -> AsyncIterator[Any]:
        """``client.on_behalf_of(...)``: ``async with`` on the async client, ``with`` on sync."""
        context = self.client.on_behalf_of(membership)
        if self.is_async:
            async with context as value:
                yield value
        else:
            with context as value:
                yield value

    async def concurrently(self, calls: list[Callable[[], Any]]) -> list[Any]:
        """Run the calls at once: tasks of one task group (async), threads of a pool (sync).

        Each callable returns the call's result (sync) or its awaitable (async).
        """
        results: list[Any] = [None] * len(calls)
        if self.is_async:

            async def run(index: int, call: Callable[[], Awaitable[Any]]) -> None:
                results[index] = await call()

            async with anyio.create_task_group() as group:
                for index, call in enumerate(calls):
                    group.start_soon(run, index, call)
            return results
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = [pool.submit(call) for call in calls]
            return [future.result() for future in futures]

    def fhir_events(self) -> list[RequestEvent]:
        """The events of SDK calls, without the token requests the client made on its own."""
        return [e for e in self.events if e.path != TOKEN_PATH]

    async def close(self) -> None:
        if self.is_async:
            await self.client.aclose()
        else:
            self.client.close()


def build_client(flavour: str, server: MedplumServer, **kwargs: Any) -> Any:
    """A client of the flavour with the server's URL and credentials (``kwargs`` override
    them, ``base_url`` included)."""
    base_url = kwargs.pop("base_url", server.base_url)
    options: dict[str, Any] = {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        **kwargs,
    }
    cls = AsyncMedplumClient if flavour == "async" else MedplumClient
    return cls(base_url, **options)


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    """``sync`` (MedplumClient) or ``async`` (AsyncMedplumClient)."""
    return str(request.param)


@pytest.fixture
async def make_api(
    flavour: str, medplum_server: MedplumServer
) -> AsyncIterator[Callable[..., Api]]:
    """``make_api(**client_kwargs)``: a new client of the current flavour with an event log;
    closed after the test. Harness settings a test changed are reset afterwards."""
    made: list[Api] = []

    def factory(**kwargs: Any) -> Api:
        events: list[RequestEvent] = []
        kwargs.setdefault("on_request_complete", events.append)
        api = Api(flavour, build_client(flavour, medplum_server, **kwargs), medplum_server, events)
        made.append(api)
        return api

    try:
        yield factory
    finally:
        for api in made:
            await api.close()
        medplum_server.reset()  # default token lifetime, token endpoint, job delay, counters


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """A client of the current flavour with the server's client credentials."""
    return make_api()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def event_summary(events: list[RequestEvent]) -> list[tuple[str, str | None]]:
    """``(METHOD path, action)`` of each event, for readable assertion failures."""
    return [(f"{e.method} {e.path}", e.action) for e in events]


__all__ = [
    "Api",
    "MedplumServer",
    "anyio_backend",
    "api",
    "build_client",
    "event_summary",
    "flavour",
    "make_api",
    "unique",
]

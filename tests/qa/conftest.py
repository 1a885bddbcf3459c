"""QA audit suite: every test runs against MedplumClient and AsyncMedplumClient wired to an
``httpx.MockTransport`` whose handler the test scripts; the wire requests are recorded."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from pymedplum import AsyncMedplumClient, MedplumClient

BASE = "https://medplum.test/"
FHIR = BASE + "fhir/R4/"
TOKEN = "SECRET-TOKEN-abc123"

Handler = Callable[[httpx.Request], httpx.Response]


def default_handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"resourceType": "Patient", "id": "1"})


def page_with_next(link: str) -> httpx.Response:
    """A searchset page of one Patient whose ``next`` link is ``link``."""
    return httpx.Response(
        200,
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": {"resourceType": "Patient", "id": "1"}}],
            "link": [{"relation": "next", "url": link}],
        },
    )


@dataclass
class QA:
    """A client of one flavour, the handler answering it, and the requests it sent."""

    flavour: str
    handler: Handler = default_handler
    requests: list[httpx.Request] = field(default_factory=list)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.handler(request)

    def client(self, **kwargs: Any) -> MedplumClient | AsyncMedplumClient:
        kwargs.setdefault("access_token", TOKEN)
        transport = httpx.MockTransport(self._handle)
        if self.flavour == "async":
            return AsyncMedplumClient(
                BASE, http_client=httpx.AsyncClient(transport=transport), **kwargs
            )
        return MedplumClient(BASE, http_client=httpx.Client(transport=transport), **kwargs)

    @staticmethod
    async def call(client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` on ``client``, awaiting it on the async flavour."""
        result = getattr(client, method)(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sync", "async"])
def qa(request: pytest.FixtureRequest) -> Iterator[QA]:
    yield QA(request.param)

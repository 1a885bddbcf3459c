"""What differs between the two clients (coroutine hooks), and that their surfaces match."""

from __future__ import annotations

import inspect
import logging
import typing
from typing import Any

import httpx
import pytest
import typing_extensions

from pymedplum._async._base_client import AsyncBaseClient
from pymedplum._sync._base_client import SyncBaseClient
from pymedplum.hooks import RequestEvent

from .fake import AsyncFakeTransport, FakeMedplum, SyncFakeTransport

BASE = "https://medplum.test/"


async def async_hook(event: RequestEvent) -> None:
    return None


class AsyncCallable:
    async def __call__(self, event: RequestEvent) -> None:
        return None


@pytest.mark.parametrize("hook", [async_hook, AsyncCallable()])
def test_the_sync_client_rejects_a_coroutine_hook(hook: Any) -> None:
    with pytest.raises(TypeError, match="AsyncMedplumClient"):
        SyncBaseClient(BASE, on_request_complete=hook)


@pytest.mark.anyio
async def test_the_async_client_awaits_a_coroutine_hook() -> None:
    fake = FakeMedplum()
    events: list[RequestEvent] = []

    async def hook(event: RequestEvent) -> None:
        events.append(event)

    http = httpx.AsyncClient(transport=AsyncFakeTransport(fake))
    client = AsyncBaseClient(BASE, access_token="t", http_client=http, on_request_complete=hook)
    await client._request("GET", "Patient/1")
    assert [e.path for e in events] == ["/fhir/R4/Patient/1"]


@pytest.mark.anyio
async def test_a_failing_coroutine_hook_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def hook(event: RequestEvent) -> None:
        raise RuntimeError("sink down")

    http = httpx.AsyncClient(transport=AsyncFakeTransport(FakeMedplum()))
    client = AsyncBaseClient(BASE, access_token="t", http_client=http, on_request_complete=hook)
    with caplog.at_level(logging.WARNING, logger="pymedplum.hooks"):
        assert (await client._request("GET", "Patient/1")).status_code == 200
    assert "RuntimeError" in caplog.records[0].getMessage()


def test_a_sync_hook_returning_an_awaitable_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    class Sneaky:
        def __call__(self, event: RequestEvent) -> Any:
            return async_hook(event)

    http = httpx.Client(transport=SyncFakeTransport(FakeMedplum()))
    client = SyncBaseClient(BASE, access_token="t", http_client=http, on_request_complete=Sneaky())
    with caplog.at_level(logging.WARNING, logger="pymedplum.hooks"):
        assert client._request("GET", "Patient/1").status_code == 200
    assert "TypeError" in caplog.records[0].getMessage()


SEAM = [
    ("method", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
    ("url", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
    ("base", inspect.Parameter.KEYWORD_ONLY, "fhir"),
    ("params", inspect.Parameter.KEYWORD_ONLY, None),
    ("json", inspect.Parameter.KEYWORD_ONLY, None),
    ("body_name", inspect.Parameter.KEYWORD_ONLY, "request body"),
    ("content", inspect.Parameter.KEYWORD_ONLY, None),
    ("headers", inspect.Parameter.KEYWORD_ONLY, None),
    ("action", inspect.Parameter.KEYWORD_ONLY, None),
    ("operation", inspect.Parameter.KEYWORD_ONLY, None),
    ("resource_type", inspect.Parameter.KEYWORD_ONLY, None),
    ("resource_id", inspect.Parameter.KEYWORD_ONLY, None),
    ("path_template", inspect.Parameter.KEYWORD_ONLY, None),
    ("on_behalf_of", inspect.Parameter.KEYWORD_ONLY, None),
    ("replay_safe", inspect.Parameter.KEYWORD_ONLY, None),
    ("timeout", inspect.Parameter.KEYWORD_ONLY, None),
    ("refine_error", inspect.Parameter.KEYWORD_ONLY, None),
    ("precondition", inspect.Parameter.KEYWORD_ONLY, None),
    ("convert", inspect.Parameter.KEYWORD_ONLY, None),
]


@pytest.mark.parametrize("cls", [AsyncBaseClient, SyncBaseClient])
def test_the_request_seam_matches_docs_architecture(cls: type) -> None:
    params = list(inspect.signature(cls._request).parameters.values())[1:]
    assert [(p.name, p.kind, p.default) for p in params] == SEAM
    # Without convert it returns the response; with one, what convert returns.
    plain, converted = typing_extensions.get_overloads(cls._request)
    assert typing.get_type_hints(plain)["return"] is httpx.Response
    assert (
        typing.get_type_hints(converted)["return"]
        is typing.get_type_hints(converted)["convert"].__args__[1]
    )


def test_both_clients_have_the_same_public_surface() -> None:
    def surface(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(member).parameters)
            for name, member in inspect.getmembers(cls, callable)
            if not name.startswith("__") or name == "__init__"
        }

    async_surface = surface(AsyncBaseClient)
    async_surface.pop("aclose")
    async_surface.pop("close")
    sync_surface = surface(SyncBaseClient)
    sync_surface.pop("close")
    assert async_surface == sync_surface
    assert hasattr(AsyncBaseClient, "__aenter__") and hasattr(SyncBaseClient, "__enter__")
    assert inspect.iscoroutinefunction(AsyncBaseClient.close)
    assert inspect.iscoroutinefunction(AsyncBaseClient._request)
    assert not inspect.iscoroutinefunction(SyncBaseClient._request)


@pytest.mark.anyio
async def test_a_cancelled_token_request_starts_no_cooldown() -> None:
    import anyio

    fake = FakeMedplum(token_delay=1.0)
    http = httpx.AsyncClient(transport=AsyncFakeTransport(fake))
    client = AsyncBaseClient(
        BASE, client_id="c", client_secret="s", http_client=http, failed_refresh_cooldown=60
    )
    with anyio.move_on_after(0.05):
        await client._request("GET", "Patient/1")
    assert len(fake.token_requests) == 0  # cancelled while the token request was in flight
    fake.token_delay = 0.0
    assert (await client._request("GET", "Patient/1")).status_code == 200
    assert len(fake.token_requests) == 1

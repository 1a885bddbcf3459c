"""A 3xx is never followed and never silently turned into an empty result."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pymedplum import MedplumError, UnsafeRedirectError
from pymedplum.hooks import RequestEvent
from tests.qa.conftest import QA, TOKEN

pytestmark = pytest.mark.anyio

CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("read_resource", ("Patient", "1")),
    ("search_resources", ("Patient",)),
    ("create_resource", ({"resourceType": "Patient"},)),
    ("download_binary", ("b1",)),
    ("get", ("admin/projects",)),
]


@pytest.mark.parametrize(("method", "args"), CALLS, ids=[c[0] for c in CALLS])
async def test_cross_origin_redirect_raises_and_is_not_followed(
    qa: QA, method: str, args: tuple[Any, ...]
) -> None:
    qa.handler = lambda r: httpx.Response(302, headers={"Location": "https://evil.example/x?p=1"})
    events: list[RequestEvent] = []
    client = qa.client(on_request_complete=events.append)
    with pytest.raises(UnsafeRedirectError) as info:
        await qa.call(client, method, *args)
    assert len(qa.requests) == 1  # not followed
    assert "evil.example" in str(info.value) and "p=1" not in str(info.value)
    assert info.value.status_code == 302
    assert TOKEN not in repr(info.value.__dict__)
    assert events[-1].outcome == "error"
    assert isinstance(events[-1].final_exception, UnsafeRedirectError)


async def test_same_origin_redirect_raises_medplum_error(qa: QA) -> None:
    qa.handler = lambda r: httpx.Response(301, headers={"Location": "/fhir/R4/Patient/2"})
    client = qa.client()
    with pytest.raises(MedplumError, match="301") as info:
        await qa.call(client, "read_resource", "Patient", "1")
    assert not isinstance(info.value, UnsafeRedirectError)
    assert len(qa.requests) == 1


async def test_not_modified_is_not_an_error(qa: QA) -> None:
    qa.handler = lambda r: httpx.Response(304)
    client = qa.client()
    assert await qa.call(client, "get", "fhir/R4/Patient/1") is None


async def test_not_modified_on_a_typed_read_says_304_not_return_minimal(qa: QA) -> None:
    # A conditional read (If-None-Match) answered 304: the message asked "was Prefer:
    # return=minimal sent?", pointing away from the header the caller did send.
    from pymedplum.fhir import Patient

    qa.handler = lambda r: httpx.Response(304, headers={"ETag": 'W/"1"'})
    client = qa.client()
    headers = {"If-None-Match": 'W/"1"'}
    assert await qa.call(client, "read_resource", "Patient", "1", headers=headers) == {}
    with pytest.raises(MedplumError) as info:
        await qa.call(client, "read_resource", "Patient", "1", as_fhir=Patient, headers=headers)
    assert "304 Not Modified" in str(info.value) and "return=minimal" not in str(info.value)
    assert info.value.status_code == 304


async def test_redirects_not_followed_even_if_http_client_is_switched_later(qa: QA) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "evil.example":
            return httpx.Response(200, json={"stolen": True})
        return httpx.Response(302, headers={"Location": "https://evil.example/x"})

    transport = httpx.MockTransport(handler)
    # An event hook makes the SDK send through httpx.Client.send (not straight to transport).
    if qa.flavour == "async":

        async def ahook(request: httpx.Request) -> None:
            return None

        http: Any = httpx.AsyncClient(transport=transport, event_hooks={"request": [ahook]})
        from pymedplum import AsyncMedplumClient as Client
    else:
        http = httpx.Client(transport=transport, event_hooks={"request": [lambda r: None]})
        from pymedplum import MedplumClient as Client  # type: ignore[assignment]
    client = Client("https://medplum.test/", access_token=TOKEN, http_client=http)
    http.follow_redirects = True  # flipped after the SDK checked it
    with pytest.raises(UnsafeRedirectError):
        await qa.call(client, "read_resource", "Patient", "1")
    assert [r.url.host for r in seen] == ["medplum.test"]


async def test_token_request_redirect_is_not_followed(qa: QA) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"Location": "https://evil.example/oauth2/token"})

    transport = httpx.MockTransport(handler)
    http: Any
    if qa.flavour == "async":
        http = httpx.AsyncClient(transport=transport)
        from pymedplum import AsyncMedplumClient as Client
    else:
        http = httpx.Client(transport=transport)
        from pymedplum import MedplumClient as Client  # type: ignore[assignment]
    client = Client("https://medplum.test/", client_id="c", client_secret="s", http_client=http)
    http.follow_redirects = True  # flipped after the SDK checked it
    with pytest.raises(MedplumError):
        await qa.call(client, "read_resource", "Patient", "1")
    assert [r.url.host for r in seen] == ["medplum.test"]

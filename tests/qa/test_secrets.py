"""No bearer token or client secret reachable from hooks, exceptions or their causes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pymedplum import AuthenticationError, MedplumError
from pymedplum.hooks import RequestEvent
from tests.qa.conftest import QA

pytestmark = pytest.mark.anyio

SECRET = "client-SEKRET-42"
ISSUED = "ISSUED-TOKEN-77"


def _requests_in(obj: Any) -> list[httpx.Request]:
    """Every httpx.Request reachable from an exception (itself, its response, its causes)."""
    found: list[httpx.Request] = []
    seen: set[int] = set()
    while isinstance(obj, BaseException) and id(obj) not in seen:
        seen.add(id(obj))
        for holder in (obj, getattr(obj, "response", None)):
            try:
                request = getattr(holder, "request", None)
            except RuntimeError:  # httpx raises when no request is attached
                request = None
            if isinstance(request, httpx.Request):
                found.append(request)
        obj = obj.__cause__ or obj.__context__
    return found


def _assert_clean(request: httpx.Request) -> None:
    assert "authorization" not in request.headers
    assert SECRET.encode() not in request.read()
    assert ISSUED not in str(request.headers)


async def test_retried_transport_error_in_event_has_no_token(qa: QA) -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": ISSUED, "expires_in": 3600})
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"resourceType": "Patient", "id": "1"})

    qa.handler = handler
    events: list[RequestEvent] = []
    client = qa.client(
        access_token=None, client_id="cid", client_secret=SECRET, on_request_complete=events.append
    )
    await qa.call(client, "read_resource", "Patient", "1")
    read = next(e for e in events if e.action == "read")
    assert read.attempts[0].exception is not None
    for request in _requests_in(read.attempts[0].exception):
        _assert_clean(request)
    assert len(_requests_in(read.attempts[0].exception)) >= 1


@pytest.mark.parametrize("failure", ["status", "transport"])
async def test_failed_token_request_exception_holds_no_client_secret(qa: QA, failure: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if failure == "transport":
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(401, json={"error": "invalid_client"})

    qa.handler = handler
    events: list[RequestEvent] = []
    client = qa.client(
        access_token=None, client_id="cid", client_secret=SECRET, on_request_complete=events.append
    )
    with pytest.raises(AuthenticationError) as info:
        await qa.call(client, "read_resource", "Patient", "1")
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    requests = _requests_in(info.value)
    assert requests, "the exception should still say which request failed"
    for request in requests:
        _assert_clean(request)
    for event in events:
        for attempt in event.attempts:
            for request in _requests_in(attempt.exception):
                _assert_clean(request)


async def test_error_response_request_has_no_token(qa: QA) -> None:
    qa.handler = lambda r: httpx.Response(500, text="boom")
    client = qa.client(access_token=ISSUED)
    with pytest.raises(MedplumError) as info:
        await qa.call(client, "read_resource", "Patient", "1")
    for request in _requests_in(info.value):
        _assert_clean(request)

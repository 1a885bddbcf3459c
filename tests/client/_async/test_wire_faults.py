"""Faults on a real socket (tests/client/rawserver.py): a body that stalls past the read
timeout, a body cut short, a connection reset. Replay-safe requests are retried; a POST that
may have reached the server is never sent twice, and every attempt is in the RequestEvent."""

from __future__ import annotations

import sys

import httpx
import pytest

from pymedplum import NetworkError, RetryPolicy
from pymedplum._async._base_client import AsyncBaseClient
from pymedplum.hooks import RequestEvent

from ..rawserver import (
    Behaviour,
    cut_short,
    full_backlog_url,
    never_read,
    raw_server,
    reset,
    stall_mid_body,
)

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("error::ResourceWarning")]  # async-only


@pytest.mark.parametrize(
    ("behaviour", "cause"),
    [
        (stall_mid_body, httpx.ReadTimeout),
        (cut_short, httpx.RemoteProtocolError),
        (reset, httpx.ReadError),
    ],
)
@pytest.mark.parametrize(("method", "tries"), [("GET", 2), ("POST", 1)])
async def test_a_wire_fault_is_retried_only_when_replay_safe(
    behaviour: Behaviour, cause: type[Exception], method: str, tries: int
) -> None:
    events: list[RequestEvent] = []
    with raw_server(behaviour) as server:
        async with AsyncBaseClient(
            server.url,
            timeout=0.3,
            retry=RetryPolicy(max_attempts=2, backoff_base=0.01),
            on_request_complete=events.append,
        ) as client:
            body = {"resourceType": "Patient"} if method == "POST" else None
            with pytest.raises(NetworkError) as info:
                await client._request(method, "Patient", json=body)
        assert isinstance(info.value.__cause__, cause)
        assert info.value.possibly_committed
        assert server.request_lines == [f"{method} /fhir/R4/Patient HTTP/1.1"] * tries
    (event,) = events
    assert [type(a.exception) for a in event.attempts[:-1]] == [cause] * (tries - 1)
    assert event.attempts[-1].status_code is None and len(event.attempts) == tries


@pytest.mark.parametrize(("method", "tries"), [("PUT", 2), ("POST", 1)])
async def test_an_upload_the_server_does_not_read_times_out_and_is_resent_only_when_replay_safe(
    method: str, tries: int
) -> None:
    body = {"resourceType": "Patient", "text": {"div": "x" * 20_000_000}}  # past the socket buffers
    with raw_server(never_read) as server:
        server.read_bodies = False
        policy = RetryPolicy(max_attempts=2, backoff_base=0.01)
        client = AsyncBaseClient(server.url, timeout=0.3, retry=policy)
        try:
            with pytest.raises(NetworkError) as info:
                await client._request(method, "Patient/p1", json=body)
        finally:
            await client.aclose()
        assert server.request_lines == [f"{method} /fhir/R4/Patient/p1 HTTP/1.1"] * tries
    assert isinstance(info.value.__cause__, httpx.WriteTimeout)
    assert info.value.possibly_committed  # part of it was sent
    assert str(info.value).startswith(
        f"{method} /fhir/R4/Patient/{{id}} failed: WriteTimeout after {tries} attempt(s)"
    )


@pytest.mark.skipif(
    sys.platform != "linux", reason="a full accept queue drops the handshake on Linux"
)
async def test_a_connect_timeout_is_retried_even_for_post_as_nothing_was_sent() -> None:
    events: list[RequestEvent] = []
    with full_backlog_url() as url:
        policy = RetryPolicy(max_attempts=2, backoff_base=0.01)
        client = AsyncBaseClient(url, timeout=0.2, retry=policy, on_request_complete=events.append)
        try:
            with pytest.raises(NetworkError) as info:
                await client._request("POST", "Patient", json={"resourceType": "Patient"})
        finally:
            await client.aclose()
    assert isinstance(info.value.__cause__, httpx.ConnectTimeout)
    assert not info.value.possibly_committed
    assert str(info.value) == (
        "POST /fhir/R4/Patient failed: ConnectTimeout after 2 attempt(s); the request never "
        "reached the server"
    )
    (event,) = events
    assert [type(a.exception) for a in event.attempts] == [httpx.ConnectTimeout] * 2

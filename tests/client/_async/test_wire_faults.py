"""Faults on a real socket (tests/client/rawserver.py): a body that stalls past the read
timeout, a body cut short, a connection reset. Replay-safe requests are retried; a POST that
may have reached the server is never sent twice, and every attempt is in the RequestEvent."""

from __future__ import annotations

import httpx
import pytest

from pymedplum import NetworkError, RetryPolicy
from pymedplum._async._base_client import AsyncBaseClient
from pymedplum.hooks import RequestEvent

from ..rawserver import Behaviour, cut_short, raw_server, reset, stall_mid_body

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

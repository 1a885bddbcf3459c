"""Retry rules: what is replayed, how long the SDK waits, and that every attempt is recorded."""

from __future__ import annotations

import email.utils
import io
import time

import httpx
import pytest

from pymedplum import GoneError, NetworkError, RateLimitError, RetryPolicy, ServerError
from pymedplum.hooks import RequestEvent

from ..fake import FakeMedplum
from .helpers import make_client

pytestmark = pytest.mark.anyio  # async-only

PATH = "/fhir/R4/Patient/1"


async def test_post_is_never_replayed_after_503(fake: FakeMedplum, sleeps: list[float]) -> None:
    fake.queue("POST", "/fhir/R4/Patient", httpx.Response(503), fake.json(201, {}))
    client = make_client(fake)
    with pytest.raises(ServerError):
        await client._request("POST", "Patient", json={"resourceType": "Patient"})
    assert len(fake.requests) == 1 and sleeps == []


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
async def test_replay_safe_methods_are_retried_on_gateway_errors(
    fake: FakeMedplum, sleeps: list[float], method: str, status: int
) -> None:
    fake.queue(method, PATH, httpx.Response(status), fake.json(200, {}))
    client = make_client(fake)
    response = await client._request(method, "Patient/1")
    assert response.status_code == 200
    assert len(fake.requests) == 2 and len(sleeps) == 1


GONE = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "deleted"}]}


@pytest.mark.parametrize(
    "first", [httpx.Response(504), httpx.Response(502), httpx.ReadTimeout("slow")]
)
async def test_a_replayed_delete_that_finds_the_resource_gone_succeeded(
    fake: FakeMedplum, sleeps: list[float], first: httpx.Response | Exception
) -> None:
    # The first DELETE reached the origin and deleted the resource; the gateway's error made
    # the SDK replay it, and the replay's 410 was raised as GoneError: a delete that worked
    # reported as failed.
    fake.queue("DELETE", PATH, first, fake.json(410, GONE))
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    response = await client._request("DELETE", "Patient/1")
    assert response.status_code == 410
    assert len(fake.requests) == 2
    assert events[-1].outcome == "success" and events[-1].final_exception is None
    assert [a.status_code for a in events[-1].attempts][-1] == 410


async def test_a_first_delete_answered_410_is_still_gone(fake: FakeMedplum) -> None:
    fake.queue("DELETE", PATH, fake.json(410, GONE))
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    with pytest.raises(GoneError):
        await client._request("DELETE", "Patient/1")
    assert events[-1].outcome == "error"


async def test_a_replayed_get_answered_410_is_still_gone(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    fake.queue("GET", PATH, httpx.Response(504), fake.json(410, GONE))
    client = make_client(fake)
    with pytest.raises(GoneError):
        await client._request("GET", "Patient/1")


async def test_a_conditional_create_marked_replay_safe_is_retried(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    fake.queue("POST", "/fhir/R4/Patient", httpx.Response(503), fake.json(200, {}))
    client = make_client(fake)
    await client._request(
        "POST", "Patient", json={}, headers={"If-None-Exist": "identifier=x|1"}, replay_safe=True
    )
    assert len(fake.requests) == 2


async def test_retries_are_bounded_and_back_off_with_jitter(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    fake.queue("GET", PATH, httpx.Response(503))
    policy = RetryPolicy(max_attempts=4, backoff_base=0.5, max_backoff=1.5)
    client = make_client(fake, retry=policy)
    with pytest.raises(ServerError):
        await client._request("GET", "Patient/1")
    assert len(fake.requests) == 4
    assert len(sleeps) == 3
    for delay, ceiling in zip(sleeps, [0.5, 1.0, 1.5], strict=True):
        assert ceiling / 2 <= delay <= ceiling


async def test_429_honours_retry_after_seconds_for_any_method(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    fake.queue(
        "POST", "/fhir/R4/Patient", httpx.Response(429, headers={"Retry-After": "2"}),
        fake.json(201, {}),
    )  # fmt: skip
    client = make_client(fake)
    response = await client._request("POST", "Patient", json={})
    assert response.status_code == 201
    assert sleeps == [2.0]


async def test_429_honours_retry_after_as_an_http_date(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fake.queue("GET", PATH, httpx.Response(429, headers={"Retry-After": when}), fake.json(200, {}))
    client = make_client(fake)
    await client._request("GET", "Patient/1")
    assert len(sleeps) == 1 and 27 <= sleeps[0] <= 30


async def test_429_retries_are_bounded(fake: FakeMedplum, sleeps: list[float]) -> None:
    fake.queue("GET", PATH, httpx.Response(429, headers={"Retry-After": "1"}))
    client = make_client(fake, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(RateLimitError) as info:
        await client._request("GET", "Patient/1")
    assert len(fake.requests) == 3 and sleeps == [1.0, 1.0]
    assert info.value.retry_after == 1.0


async def test_a_retry_after_beyond_the_cap_is_not_waited_for(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    fake.queue("GET", PATH, httpx.Response(429, headers={"Retry-After": "3600"}))
    client = make_client(fake, retry=RetryPolicy(max_retry_after=60))
    with pytest.raises(RateLimitError) as info:
        await client._request("GET", "Patient/1")
    assert len(fake.requests) == 1 and sleeps == []
    assert info.value.retry_after == 3600


async def test_429_without_retry_after_waits_for_medplums_ratelimit_reset(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    # Medplum 5.0.10 (packages/server/src/ratelimit.ts, fhir/fhirquota.ts) sends no
    # Retry-After on 429, one RateLimit item per limiter: the exhausted one (r=0) says when.
    limited = httpx.Response(
        429,
        headers=[
            ("RateLimit", '"requests";r=57;t=60'),
            ("RateLimit", '"fhirInteractions";r=0;t=12'),
        ],
    )
    fake.queue("GET", PATH, limited, fake.json(200, {}))
    client = make_client(fake)
    await client._request("GET", "Patient/1")
    assert sleeps == [12.0]


async def test_medplums_ratelimit_reset_beyond_the_cap_is_raised_with_retry_after(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    fake.queue("GET", PATH, httpx.Response(429, headers={"RateLimit": '"requests";r=0;t=45'}))
    client = make_client(fake, retry=RetryPolicy(max_retry_after=30))
    with pytest.raises(RateLimitError) as info:
        await client._request("GET", "Patient/1")
    assert len(fake.requests) == 1 and sleeps == []
    assert info.value.retry_after == 45


THROTTLED = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "throttled", "details": {"text": "Too Many Requests"}}],
}
# As a real Medplum 5.0.10 answered a client over its FHIR quota.
QUOTA_SPENT = '"requests";r=59091;t=27, "fhirInteractions";r=0;t=58'


async def test_a_raised_429_says_which_limit_is_spent_and_why_it_was_not_waited_for(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    # On a real 5.0.10 the message was only "HTTP 429 Too Many Requests from POST
    # /fhir/R4/Observation [error/throttled]": not which limit, when it resets, nor why the
    # client raised instead of waiting.
    fake.queue("POST", "/fhir/R4/Observation", fake.json(429, THROTTLED, RateLimit=QUOTA_SPENT))
    client = make_client(fake, retry=RetryPolicy(max_retry_after=5))
    with pytest.raises(RateLimitError) as info:
        await client._request("POST", "Observation", json={"resourceType": "Observation"})
    assert str(info.value) == (
        "HTTP 429 Too Many Requests from POST /fhir/R4/Observation [error/throttled]; "
        "Medplum's FHIR quota (points a minute per membership and per project: a read costs "
        "1, a search 20, a write 100) is spent, resetting in 58 s (exc.retry_after); not "
        "waited for: longer than RetryPolicy.max_retry_after (5 s): send it again after the "
        "reset, or spread the load, or raise the project's userFhirQuota / totalFhirQuota "
        "system setting"
    )
    assert info.value.retry_after == 58 and sleeps == []


async def test_a_429_still_answered_after_the_last_attempt_says_so(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    limited = httpx.Response(429, headers={"RateLimit": '"requests";r=0;t=3'})
    fake.queue("GET", PATH, limited, limited)
    client = make_client(fake, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(RateLimitError) as info:
        await client._request("GET", "Patient/1")
    assert str(info.value) == (
        "HTTP 429 Too Many Requests from GET /fhir/R4/Patient/{id}; Medplum's limit of requests "
        "a minute from one address is spent, resetting in 3 s (exc.retry_after); still "
        "refused after 2 attempts (RetryPolicy.max_attempts=2): send it again after the "
        "reset, or slow down"
    )
    assert sleeps == [3.0]


async def test_a_429_without_ratelimit_or_retry_after_says_what_it_can(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    fake.queue("GET", PATH, httpx.Response(429))
    client = make_client(fake, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(RateLimitError) as info:
        await client._request("GET", "Patient/1")
    assert str(info.value).endswith(
        "; a limit of the server's is spent; still refused after 1 attempt "
        "(RetryPolicy.max_attempts=1): send it again after the reset, or slow down"
    )
    assert info.value.retry_after is None


async def test_max_attempts_one_turns_retries_off(fake: FakeMedplum, sleeps: list[float]) -> None:
    fake.queue("GET", PATH, httpx.Response(503), fake.json(200, {}))
    client = make_client(fake, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(ServerError):
        await client._request("GET", "Patient/1")
    assert len(fake.requests) == 1 and sleeps == []


async def test_a_connection_that_never_opened_is_retried_even_for_post(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    fake.queue("POST", "/fhir/R4/Patient", httpx.ConnectError("refused"), fake.json(201, {}))
    client = make_client(fake)
    response = await client._request("POST", "Patient", json={})
    assert response.status_code == 201 and len(sleeps) == 1


async def test_a_reset_after_sending_is_not_replayed_for_post(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    fake.queue("POST", "/fhir/R4/Patient", httpx.RemoteProtocolError("reset"), fake.json(201, {}))
    client = make_client(fake)
    with pytest.raises(NetworkError) as info:
        await client._request("POST", "Patient", json={})
    assert info.value.possibly_committed
    assert len(fake.requests) == 1 and sleeps == []


async def test_a_reset_is_retried_for_get(fake: FakeMedplum, sleeps: list[float]) -> None:
    fake.queue("GET", PATH, httpx.ReadError("reset"), httpx.ReadTimeout("slow"), fake.json(200, {}))
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    response = await client._request("GET", "Patient/1")
    assert response.status_code == 200
    attempts = events[-1].attempts
    assert [a.status_code for a in attempts] == [None, None, 200]
    kinds = [type(a.exception).__name__ for a in attempts]
    assert kinds == ["ReadError", "ReadTimeout", "NoneType"]
    assert all(a.duration_seconds >= 0 for a in attempts)


async def test_client_errors_are_not_retried(fake: FakeMedplum, sleeps: list[float]) -> None:
    fake.queue("GET", PATH, httpx.Response(500), fake.json(200, {}))
    client = make_client(fake)
    with pytest.raises(ServerError):
        await client._request("GET", "Patient/1")
    assert len(fake.requests) == 1 and sleeps == []


async def test_a_retried_post_sends_its_bytes_body_again_identically(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    client = make_client(fake)
    fake.queue("POST", "/x", fake.json(429, None, **{"Retry-After": "1"}), fake.json(200, {}))
    await client.post("x", content=bytearray(b"\x00binary\xff"))
    assert [r.content for r in fake.sent_to("/x")] == [b"\x00binary\xff"] * 2
    assert sleeps == [1.0]


@pytest.mark.parametrize(
    "content", [iter([b"ab", b"cd"]), io.BytesIO(b"abcd"), "text"], ids=["iterator", "file", "str"]
)
async def test_a_body_that_cannot_be_sent_twice_is_refused_before_sending(
    fake: FakeMedplum, content: object
) -> None:
    # A retry (429) or the 401 replay would have sent an iterator or a file empty.
    client = make_client(fake)
    with pytest.raises(TypeError, match="content must be bytes"):
        await client.post("x", content=content)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="content must be bytes"):
        await client.put("x", content=content)  # type: ignore[arg-type]
    assert fake.requests == []


async def test_a_429_names_only_a_limiter_name_the_server_sent(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    # The RateLimit item names are the server's text (a proxy's, anything): a name is repeated,
    # other text is not (it could be anything, a patient's name included); a reset under a
    # second is not "in 0 s".
    spent = '"Jane Doe, MRN 12345";r=0, "per-tenant";r=0;t=1'
    fake.queue("GET", PATH, httpx.Response(429, headers={"RateLimit": spent, "Retry-After": "0.4"}))
    client = make_client(fake, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(RateLimitError) as info:
        await client._request("GET", "Patient/1")
    message = str(info.value)
    assert "Jane" not in message and "12345" not in message
    assert message.endswith(
        "; the server's 'per-tenant' limit is spent, resetting in 1 s (exc.retry_after); still "
        "refused after 1 attempt (RetryPolicy.max_attempts=1): send it again after the reset, "
        "or slow down"
    )
    fake.queue("GET", PATH, httpx.Response(429, headers={"RateLimit": '"Jane Doe";r=0'}))
    with pytest.raises(RateLimitError) as info:
        await client._request("GET", "Patient/1")
    assert "Jane" not in str(info.value)
    assert "; a limit of the server's is spent;" in str(info.value)

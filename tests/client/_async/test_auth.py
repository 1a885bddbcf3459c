"""Authentication: lazy client credentials, proactive refresh, single flight, 401 replay,
cooldown, static tokens, and the token never leaking."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs

import httpx
import pytest

from pymedplum import AuthenticationError, MedplumError, RetryPolicy, TokenRefreshCooldownError
from pymedplum.hooks import PreparedRequest, RequestEvent

from ..concurrency import gather_tasks
from ..fake import FakeMedplum, outcome
from .helpers import make_client

pytestmark = pytest.mark.anyio  # async-only


async def test_no_request_before_the_first_call_then_one_token_request(
    fake: FakeMedplum,
) -> None:
    client = make_client(fake)
    assert fake.token_requests == []
    await client._request("GET", "Patient/123")
    assert len(fake.token_requests) == 1
    form = parse_qs(fake.token_requests[0].content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["cid"],
        "client_secret": ["csecret-value"],
    }
    assert str(fake.token_requests[0].url) == "https://medplum.test/oauth2/token"
    assert fake.requests[0].headers["Authorization"] == "Bearer secret-token-1"


async def test_the_token_is_reused_until_it_nears_expiry(fake: FakeMedplum) -> None:
    client = make_client(fake)
    for _ in range(5):
        await client._request("GET", "Patient/123")
    assert len(fake.token_requests) == 1


async def test_the_token_is_refreshed_before_it_expires(fake: FakeMedplum) -> None:
    fake.expires_in = 0.2  # refreshed at half its life for such a short token
    client = make_client(fake)
    await client._request("GET", "Patient/123")
    time.sleep(0.15)
    await client._request("GET", "Patient/123")
    assert len(fake.token_requests) == 2
    # The second request already carried the new token: no 401 round trip was needed.
    assert [r.headers["Authorization"] for r in fake.requests] == [
        "Bearer secret-token-1",
        "Bearer secret-token-2",
    ]


@pytest.mark.parametrize("expires_in", [b"0", b"-30", b"NaN"])
async def test_a_token_without_a_usable_lifetime_is_kept_until_rejected(
    fake: FakeMedplum, expires_in: bytes
) -> None:
    # Read literally, "expires_in": 0 would make every call fetch a token, one at a time.
    def token(request: httpx.Request) -> httpx.Response:
        body = b'{"access_token": "secret-token-%d", "expires_in": %s}' % (
            len(fake.token_requests),
            expires_in,
        )
        return httpx.Response(200, content=body)

    fake.token_answers.extend([token, token])
    client = make_client(fake)

    async def call(i: int) -> int:
        return (await client._request("GET", "Patient/123")).status_code

    assert await gather_tasks(30, call) == [200] * 30
    assert len(fake.token_requests) == 1
    # Used until the server rejects it: then one refresh and one replay, as always.
    fake.valid_tokens = {"secret-token-2"}
    assert (await client._request("GET", "Patient/123")).status_code == 200
    assert len(fake.token_requests) == 2


async def test_one_token_request_for_100_concurrent_callers(fake: FakeMedplum) -> None:
    fake.token_delay = 0.05
    client = make_client(fake)

    async def call(i: int) -> int:
        response = await client._request("GET", "Patient/123")
        return response.status_code

    results = await gather_tasks(100, call)
    assert results == [200] * 100
    assert len(fake.token_requests) == 1
    assert {r.headers["Authorization"] for r in fake.requests} == {"Bearer secret-token-1"}


async def test_one_token_request_per_expiry_under_concurrency(fake: FakeMedplum) -> None:
    fake.token_delay = 0.02
    client = make_client(fake)
    await client._request("GET", "Patient/123")
    client._tokens.expire()

    async def call(i: int) -> int:
        return (await client._request("GET", "Patient/123")).status_code

    assert await gather_tasks(100, call) == [200] * 100
    assert len(fake.token_requests) == 2


async def test_401_forces_one_refresh_and_one_replay(fake: FakeMedplum) -> None:
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    await client._request("GET", "Patient/123")
    fake.valid_tokens = {"secret-token-2"}  # the server revoked token 1
    response = await client._request("GET", "Patient/123")
    assert response.status_code == 200
    assert len(fake.token_requests) == 2
    assert [r.headers["Authorization"] for r in fake.requests[1:]] == [
        "Bearer secret-token-1",
        "Bearer secret-token-2",
    ]
    call_events = [e for e in events if e.path == "/fhir/R4/Patient/123"]
    assert [a.status_code for a in call_events[-1].attempts] == [401, 200]


async def test_a_second_401_is_raised_after_exactly_one_replay(fake: FakeMedplum) -> None:
    fake.valid_tokens = set()
    client = make_client(fake)
    with pytest.raises(AuthenticationError) as info:
        await client._request("GET", "Patient/123")
    assert info.value.status_code == 401
    assert len(fake.requests) == 2
    assert len(fake.token_requests) == 2


async def test_a_static_access_token_is_sent_as_given(fake: FakeMedplum) -> None:
    client = make_client(fake, client_id=None, client_secret=None, access_token="static-tok")
    await client._request("GET", "Patient/123")
    assert fake.requests[0].headers["Authorization"] == "Bearer static-tok"
    assert fake.token_requests == []


async def test_a_static_token_rejected_with_401_raises_without_refresh(
    fake: FakeMedplum,
) -> None:
    fake.valid_tokens = set()
    client = make_client(fake, client_id=None, client_secret=None, access_token="static-tok")
    with pytest.raises(AuthenticationError):
        await client._request("GET", "Patient/123")
    assert len(fake.requests) == 1
    assert fake.token_requests == []


async def test_no_credentials_sends_no_authorization(fake: FakeMedplum) -> None:
    client = make_client(fake, client_id=None, client_secret=None)
    await client._request("GET", "Patient/123")
    assert "Authorization" not in fake.requests[0].headers


async def test_a_401_without_credentials_says_the_client_has_none(fake: FakeMedplum) -> None:
    # The usual cause of a 401 for a client built with neither credentials nor a token.
    fake.queue("GET", "/fhir/R4/Patient/123", httpx.Response(401, json=outcome("login", "x")))
    client = make_client(fake, client_id=None, client_secret=None)
    with pytest.raises(AuthenticationError) as info:
        await client._request("GET", "Patient/123")
    assert str(info.value) == (
        "HTTP 401 Unauthorized from GET /fhir/R4/Patient/{id} [error/login]; the client has no "
        "credentials: pass client_id and client_secret, or access_token"
    )
    assert info.value.status_code == 401 and info.value.path_template == "/fhir/R4/Patient/{id}"


async def test_a_401_with_a_static_token_gives_no_credentials_hint(fake: FakeMedplum) -> None:
    fake.queue("GET", "/fhir/R4/Patient/123", httpx.Response(401, json=outcome("login", "x")))
    client = make_client(fake, client_id=None, client_secret=None, access_token="t")
    with pytest.raises(AuthenticationError) as info:
        await client._request("GET", "Patient/123")
    assert str(info.value) == "HTTP 401 Unauthorized from GET /fhir/R4/Patient/{id} [error/login]"


async def test_a_rejected_secret_is_an_authentication_error(fake: FakeMedplum) -> None:
    fake.token_answers = [
        httpx.Response(
            400, json={"error": "invalid_request", "error_description": "Invalid secret"}
        )
    ]
    client = make_client(fake)
    with pytest.raises(AuthenticationError) as info:
        await client._request("GET", "Patient/123")
    assert info.value.status_code == 400
    assert str(info.value) == (
        "client-credentials token request to https://medplum.test/oauth2/token failed: "
        "HTTP 400 (invalid_request); check client_id and client_secret"
    )
    assert "csecret-value" not in str(info.value)
    assert fake.requests == []


@pytest.mark.parametrize("status", [404, 405])
async def test_no_token_endpoint_at_base_url_names_base_url(fake: FakeMedplum, status: int) -> None:
    # A base_url that is not the server root (a typo in its path, a wrong host) answers the
    # token request with a 404: say so, not just "HTTP 404".
    fake.token_answers = [httpx.Response(status, text="Not found")]
    client = make_client(fake)
    with pytest.raises(AuthenticationError) as info:
        await client._request("GET", "Patient/123")
    assert str(info.value) == (
        "client-credentials token request to https://medplum.test/oauth2/token failed: "
        f"HTTP {status}; no token endpoint there: base_url must be the Medplum server root"
    )


async def test_an_unreachable_token_endpoint_is_an_authentication_error(
    fake: FakeMedplum,
) -> None:
    fake.token_answers = [httpx.ConnectError("connection refused")]
    client = make_client(fake, retry=RetryPolicy(max_attempts=1))  # retried: see below
    with pytest.raises(AuthenticationError) as info:
        await client._request("GET", "Patient/123")
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert str(info.value) == (
        "client-credentials token request to https://medplum.test/oauth2/token failed: "
        "ConnectError; check base_url and that the server is reachable"
    )


async def test_a_transient_token_failure_is_retried(fake: FakeMedplum, sleeps: list[float]) -> None:
    # A token endpoint restarting (503, a refused connection) must not fail the call, nor end
    # a paging run whose token expired just then: retried as a replay-safe request is.
    events: list[RequestEvent] = []
    fake.token_answers = [httpx.Response(503), httpx.ConnectError("connection refused")]
    client = make_client(fake, on_request_complete=events.append)
    assert (await client._request("GET", "Patient/123")).status_code == 200
    assert len(fake.token_requests) == 3 and len(sleeps) == 2
    token_event = next(e for e in events if e.path == "/oauth2/token")
    assert [a.status_code for a in token_event.attempts] == [503, None, 200]
    # As for a call: a retried answer has no exception, a retried transport failure its own.
    assert token_event.attempts[0].exception is None
    assert isinstance(token_event.attempts[1].exception, httpx.ConnectError)
    assert token_event.outcome == "success"


async def test_a_token_request_attempt_holds_its_transport_error_as_a_call_s_does(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    # The last attempt, too: its httpx error, the AuthenticationError being final_exception
    # (the last attempt held the AuthenticationError, unlike a call's).
    events: list[RequestEvent] = []
    fake.token_answers = [httpx.ConnectError("connection refused")] * 2
    client = make_client(fake, on_request_complete=events.append, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(AuthenticationError) as info:
        await client._request("GET", "Patient/123")
    token_event = next(e for e in events if e.path == "/oauth2/token")
    assert [type(a.exception) for a in token_event.attempts] == [httpx.ConnectError] * 2
    assert token_event.attempts[-1].exception is info.value.__cause__
    assert token_event.final_exception is info.value


async def test_a_rate_limited_token_request_waits_as_asked(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    fake.token_answers = [httpx.Response(429, headers={"Retry-After": "7"})]
    client = make_client(fake)
    assert (await client._request("GET", "Patient/123")).status_code == 200
    assert sleeps == [7.0] and len(fake.token_requests) == 2


async def test_token_retries_are_bounded_then_cool_down(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    fake.token_answers = [httpx.Response(503)] * 3
    client = make_client(fake, failed_refresh_cooldown=5.0)
    with pytest.raises(AuthenticationError, match="HTTP 503"):
        await client._request("GET", "Patient/123")
    assert len(fake.token_requests) == 3 and len(sleeps) == 2  # max_attempts, as for a call
    with pytest.raises(TokenRefreshCooldownError):
        await client._request("GET", "Patient/123")
    assert len(fake.token_requests) == 3


async def test_token_retries_follow_a_replaced_retry_policy(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    # client.retry_policy is the calls' policy: replaced after construction, the token request
    # follows it too (it kept the constructor's, retrying where calls no longer did).
    fake.token_answers = [httpx.Response(503)] * 3
    client = make_client(fake)
    client.retry_policy = RetryPolicy(max_attempts=1)
    with pytest.raises(AuthenticationError, match="HTTP 503"):
        await client._request("GET", "Patient/123")
    assert len(fake.token_requests) == 1 and sleeps == []


@pytest.mark.parametrize("status", [400, 401, 500])
async def test_a_refused_token_request_is_not_retried(
    fake: FakeMedplum, sleeps: list[float], status: int
) -> None:
    fake.token_answers = [httpx.Response(status, json={"error": "invalid_client"})]
    client = make_client(fake)
    with pytest.raises(AuthenticationError):
        await client._request("GET", "Patient/123")
    assert len(fake.token_requests) == 1 and sleeps == []


async def test_a_token_answer_without_access_token_is_an_authentication_error(
    fake: FakeMedplum,
) -> None:
    fake.token_answers = [httpx.Response(200, json={"token_type": "Bearer"})]
    client = make_client(fake)
    with pytest.raises(AuthenticationError, match="access_token"):
        await client._request("GET", "Patient/123")


async def test_a_failed_refresh_starts_the_cooldown(fake: FakeMedplum) -> None:
    fake.token_answers = [httpx.Response(500, text="oauth down")]
    client = make_client(fake, failed_refresh_cooldown=0.3)
    with pytest.raises(AuthenticationError):
        await client._request("GET", "Patient/123")
    with pytest.raises(TokenRefreshCooldownError) as info:
        await client._request("GET", "Patient/123")
    assert 0 < info.value.retry_after <= 0.3
    assert isinstance(info.value, MedplumError)
    assert len(fake.token_requests) == 1  # the cooldown did not touch the network
    time.sleep(0.35)
    await client._request("GET", "Patient/123")
    assert len(fake.token_requests) == 2


@pytest.mark.parametrize(
    "headers",
    [{"Retry-After": "30"}, {"RateLimit": '"requests";r=0;t=30'}],
    ids=["retry-after", "medplum-ratelimit"],
)
async def test_a_rate_limited_token_endpoint_sets_the_cooldown(
    fake: FakeMedplum, headers: dict[str, str]
) -> None:
    fake.token_answers = [httpx.Response(429, headers=headers)]
    # Retries off: a 30 s wait is within max_retry_after and would be slept (see below).
    client = make_client(fake, failed_refresh_cooldown=0.3, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(AuthenticationError):
        await client._request("GET", "Patient/123")
    time.sleep(0.35)  # past failed_refresh_cooldown, not past what the server asked for
    with pytest.raises(TokenRefreshCooldownError) as info:
        await client._request("GET", "Patient/123")
    assert 29 < info.value.retry_after <= 30
    assert len(fake.token_requests) == 1


async def test_an_endless_ratelimit_reset_does_not_block_refreshes_forever(
    fake: FakeMedplum,
) -> None:
    # t= with more digits than a float holds reads as inf: it must count as unreadable (the
    # configured cooldown applies), not as a cooldown that never ends.
    fake.token_answers = [httpx.Response(429, headers={"RateLimit": '"r";r=0;t=' + "9" * 400})]
    client = make_client(fake, failed_refresh_cooldown=0.3, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(AuthenticationError):
        await client._request("GET", "Patient/123")
    time.sleep(0.35)
    assert (await client._request("GET", "Patient/123")).status_code == 200
    assert len(fake.token_requests) == 2


async def test_concurrent_callers_during_a_failed_refresh_do_not_hammer(
    fake: FakeMedplum,
) -> None:
    fake.token_delay = 0.02
    fake.token_answers = [httpx.Response(503)]
    client = make_client(fake, failed_refresh_cooldown=5.0, retry=RetryPolicy(max_attempts=1))

    async def call(i: int) -> int:
        return (await client._request("GET", "Patient/123")).status_code

    results = await gather_tasks(20, call)
    assert len(fake.token_requests) == 1
    assert sum(isinstance(r, AuthenticationError) for r in results) == 1
    assert sum(isinstance(r, TokenRefreshCooldownError) for r in results) == 19


async def test_a_failed_early_refresh_keeps_the_token_until_it_expires(
    fake: FakeMedplum, caplog: pytest.LogCaptureFixture
) -> None:
    fake.expires_in = 0.6  # refreshed 0.3 s early
    client = make_client(fake, failed_refresh_cooldown=5.0)
    await client._request("GET", "Patient/123")
    time.sleep(0.35)  # inside the refresh margin: token 1 is still valid for ~0.25 s
    fake.token_answers = [httpx.Response(503, text="oauth down")]
    with caplog.at_level(logging.WARNING, logger="pymedplum.auth"):
        assert (await client._request("GET", "Patient/123")).status_code == 200
    assert "the current token is kept" in caplog.text
    # During the cooldown the still-valid token is used without another token request.
    assert (await client._request("GET", "Patient/123")).status_code == 200
    assert len(fake.token_requests) == 2
    assert [r.headers["Authorization"] for r in fake.requests] == ["Bearer secret-token-1"] * 3
    time.sleep(0.3)  # now it has expired, and the cooldown still runs
    with pytest.raises(TokenRefreshCooldownError):
        await client._request("GET", "Patient/123")
    assert len(fake.token_requests) == 2


async def test_an_audit_hook_may_call_the_same_client(fake: FakeMedplum) -> None:
    # The token request's event is delivered after the token lock is released: an audit
    # hook that writes through the same client must neither deadlock (sync) nor fail (async).
    lock_held: list[bool] = []
    audited: list[int] = []

    async def audit(event: RequestEvent) -> None:
        lock_held.append(client._tokens._lock._lock.locked())
        if event.path == "/fhir/R4/AuditEvent" or lock_held[-1]:
            return  # with the lock held, the call below would hang (sync) or fail (async)
        response = await client._request("POST", "AuditEvent", json={"resourceType": "AuditEvent"})
        audited.append(response.status_code)

    client = make_client(fake, on_request_complete=audit)
    await client._request("GET", "Patient/123")
    assert lock_held == [False] * 4  # token, its audit write, the GET, its audit write
    assert audited == [200, 200]
    assert len(fake.token_requests) == 1


async def test_the_token_request_emits_its_own_event_without_obo(fake: FakeMedplum) -> None:
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    async with client.on_behalf_of("ProjectMembership/pm-1"):
        await client._request("GET", "Patient/123")
    token_event, call_event = events
    assert token_event.path == "/oauth2/token" and token_event.method == "POST"
    assert token_event.action is None and token_event.outcome == "success"
    assert [a.on_behalf_of for a in token_event.attempts] == [None]
    assert call_event.attempts[0].on_behalf_of == "ProjectMembership/pm-1"
    assert "X-Medplum-On-Behalf-Of" not in fake.token_requests[0].headers
    assert fake.requests[0].headers["X-Medplum-On-Behalf-Of"] == "ProjectMembership/pm-1"


async def test_the_token_never_leaks(fake: FakeMedplum, caplog: pytest.LogCaptureFixture) -> None:
    events: list[RequestEvent] = []
    seen: list[PreparedRequest] = []

    def before(request: PreparedRequest) -> None:
        seen.append(request)

    fake.queue("GET", "/fhir/R4/Patient/404", httpx.Response(404, json=outcome("not-found")))
    fake.queue("GET", "/fhir/R4/Patient/500", httpx.Response(500, text="stack trace"))
    fake.queue("GET", "/fhir/R4/Patient/net", httpx.ConnectError("boom"))
    client = make_client(
        fake,
        before_request=before,
        on_request_complete=events.append,
        default_on_behalf_of="pm-9",
    )
    errors: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):
        await client._request("GET", "Patient/123", params={"name": "Doe"})
        for path in ("Patient/404", "Patient/500", "Patient/net"):
            try:
                await client._request("GET", path)
            except MedplumError as exc:
                errors.append(exc)
    assert len(errors) == 3
    token = fake.issued[0]
    haystack = [repr(client), str(client)]
    for event in events:
        haystack += [repr(event), str(event.to_phi_audit_dict(include_query_params=True))]
        haystack.append(str(event.to_non_phi_dict()))
    for exc in errors:
        haystack += [str(exc), repr(exc), str(exc.sanitize_for_logging())]
        haystack += [repr(vars(exc)), repr(exc.__cause__), str(exc.__cause__)]
        if exc.response is not None:
            haystack.append(str(exc.response.request.headers))
    for record in caplog.records:
        haystack += [record.getMessage(), str(record.args), str(record.exc_text)]
    haystack += [repr(r) for r in seen]
    assert all(token not in text for text in haystack)
    assert all("csecret-value" not in text for text in haystack)

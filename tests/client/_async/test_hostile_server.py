"""A misbehaving server on a real socket (tests/client/rawserver.py), through the endpoint
methods: answers the SDK cannot use end in a typed error naming the status and the call, never
in an empty result, a raw exception or a call that never returns."""

from __future__ import annotations

import contextlib
import email.utils
import json
import pickle
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pydantic
import pytest

from pymedplum import (
    AsyncMedplumClient,
    AuthenticationError,
    BadRequestError,
    MedplumError,
    NetworkError,
    NotFoundError,
    OperationOutcomeError,
    PreconditionFailedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TokenRefreshCooldownError,
    UnsafeRedirectError,
)
from pymedplum._async._overrides.search import MAX_EMPTY_PAGES
from pymedplum.fhir import Patient
from pymedplum.hooks import RequestEvent

from ..rawserver import (
    Behaviour,
    RawServer,
    answer,
    bad_chunked,
    bad_gzip,
    closed_port_url,
    conflicting_lengths,
    cut_short,
    hang_up,
    huge_header,
    not_http,
    raw_server,
    reset,
    sequence,
    stall_before_headers,
    stall_mid_body,
)

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("error::ResourceWarning")]  # async-only

Call = Callable[[AsyncMedplumClient], Any]  # a coroutine function (a plain one in the sync twin)


def connect(url: str, **options: Any) -> AsyncMedplumClient:
    settings: dict[str, Any] = {
        "access_token": "token",
        "timeout": 2.0,
        "retry": RetryPolicy(max_attempts=2, backoff_base=0.01),
    }
    return AsyncMedplumClient(url, **{**settings, **options})


async def ask(server: RawServer | str, call: Call, **options: Any) -> Any:
    """``call`` on a fresh client of ``server`` (or a URL), the client closed afterwards."""
    client = connect(server if isinstance(server, str) else server.url, **options)
    try:
        return await call(client)
    finally:
        await client.aclose()


async def read(client: AsyncMedplumClient) -> Any:
    return await client.read_resource("Patient", "p1")


async def read_model(client: AsyncMedplumClient) -> Any:
    return await client.read_resource("Patient", "p1", Patient)


async def search(client: AsyncMedplumClient) -> Any:
    return await client.search_resources("Patient", {"name": "x"})


async def pages(client: AsyncMedplumClient) -> Any:
    return [resource async for resource in client.search_resource_pages("Patient")]


async def batch(client: AsyncMedplumClient) -> Any:
    return await client.execute_batch({"resourceType": "Bundle", "type": "batch", "entry": []})


async def wait_job(client: AsyncMedplumClient) -> Any:
    return await client.wait_for_async_job("j1", poll_interval=0.01, timeout=2.0)


CALLS: list[tuple[Call, str]] = [
    (read, "GET /fhir/R4/Patient/{id}"),
    (read_model, "GET /fhir/R4/Patient/{id}"),
    (search, "GET /fhir/R4/Patient"),
    (pages, "GET /fhir/R4/Patient"),
    # A write answered 2xx: the caller must not take it for a failure and send it again.
    (batch, "POST /fhir/R4/; the server reported success, so it was most likely applied"),
    (wait_job, "GET /fhir/R4/job/{id}/status"),
]


@pytest.mark.parametrize(("call", "where"), CALLS)
@pytest.mark.parametrize(
    ("status", "body", "got"),
    [
        (200, b"", "an empty body"),
        (204, b"", "an empty body"),
        (200, b"null", "null"),
        (200, b"[]", "a list"),
    ],
)
async def test_an_answer_without_a_json_object_is_an_error_not_an_empty_result(
    call: Call, where: str, status: int, body: bytes, got: str
) -> None:
    # Read as {} it was a resource without fields, a search without results, a batch without
    # entries, a finished job (200) or a job polled until the timeout (204).
    with raw_server(answer(status, body)) as server:
        with pytest.raises(MedplumError) as info:
            await ask(server, call)
        assert len(server.request_lines) == 1  # an answer, not a fault: not retried
    assert type(info.value) is MedplumError
    assert str(info.value) == f"expected a JSON object, got {got} (HTTP {status} from {where})"
    assert info.value.status_code == status
    assert info.value.response is not None and info.value.response.content == body


async def test_a_running_bulk_export_may_still_answer_202_without_a_body() -> None:
    manifest = b'{"transactionTime": "2026-01-01T00:00:00Z", "output": []}'
    with raw_server(sequence(answer(202), answer(200, manifest))) as server:
        url = server.url + "fhir/R4/bulkdata/export/e1"
        done = await ask(server, lambda c: c.wait_for_async_job(url, poll_interval=0.01))
    assert done == {"transactionTime": "2026-01-01T00:00:00Z", "output": []}


@pytest.mark.parametrize(
    "location",
    [
        "Patient/p9/_history/2",  # relative to the request URL (RFC 9110 10.2.2)
        "/fhir/R4/Patient/p9/_history/2",
        "{base}fhir/R4/Patient/p9/_history/2",
    ],
)
async def test_an_empty_created_answer_is_named_by_its_location_relative_or_not(
    location: str,
) -> None:
    with raw_server(answer(201)) as server:
        server.behaviour = answer(201, b"", "Location: " + location.format(base=server.url))
        created = await ask(server, lambda c: c.create_resource({"resourceType": "Patient"}))
        typed = await ask(
            server, lambda c: c.create_resource({"resourceType": "Patient"}, as_fhir=Patient)
        )
    assert created == {"resourceType": "Patient", "id": "p9", "meta": {"versionId": "2"}}
    assert typed.id == "p9" and typed.meta is not None and typed.meta.version_id == "2"


async def test_an_empty_created_binary_is_named_by_its_location() -> None:
    with raw_server(answer(201, b"", "Location: Binary/b1/_history/1")) as server:
        created = await ask(server, lambda c: c.upload_binary(b"%PDF", "application/pdf"))
    assert created == {"resourceType": "Binary", "id": "b1", "meta": {"versionId": "1"}}


@pytest.mark.parametrize("etag", ['W/"3"', '"3"'])
async def test_an_empty_update_answer_takes_its_version_from_a_weak_or_strong_etag(
    etag: str,
) -> None:
    resource = {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "2"}}
    with raw_server(answer(200, b"", f"ETag: {etag}")) as server:
        updated = await ask(server, lambda c: c.update_resource(resource))
    assert updated == {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "3"}}


async def search_one(client: AsyncMedplumClient) -> Any:
    return await client.search_one("Patient")


async def search_bundle(client: AsyncMedplumClient) -> Any:
    return await client.search_resources("Patient", return_bundle=True)


@pytest.mark.parametrize("call", [pages, search_one, search_bundle])
@pytest.mark.parametrize(
    ("field", "value", "got"),
    [
        ("entry", 5, "a number"),
        ("entry", {"resource": {}}, "an object"),
        ("entry", [5, None], "a list of non-objects"),
        ("link", "next", "a string"),
    ],
)
async def test_a_searchset_whose_entry_or_link_is_no_list_of_objects_is_a_medplum_error(
    call: Call, field: str, value: object, got: str
) -> None:
    # Iterating an int (entry: 5) raised a bare TypeError; a dict's keys or a list of
    # non-objects yielded nothing, as if the search had no results.
    bundle = json.dumps({"resourceType": "Bundle", field: value}).encode()
    with raw_server(answer(200, bundle)) as server, pytest.raises(MedplumError) as info:
        await ask(server, call)
    assert str(info.value) == (
        f"expected the Bundle's {field} to be a list of objects, got {got} "
        "(HTTP 200 from GET /fhir/R4/Patient)"
    )
    assert info.value.status_code == 200


async def search_typed_bundle(client: AsyncMedplumClient) -> Any:
    return await client.search_resources("Patient", return_bundle=True, as_fhir=Patient)


@pytest.mark.parametrize("call", [search_bundle, search_typed_bundle])
@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"total": "5"}, "total must be a non-negative int, got str"),
        ({"total": -1}, "total must be a non-negative int, got -1"),
        ({"entry": [{"resource": 5}]}, "entry[0].resource must be an object"),
        ({"resourceType": "Patient"}, "resourceType must be 'Bundle', got 'Patient'"),
    ],
)
async def test_a_searchset_a_fhir_bundle_cannot_hold_is_a_medplum_error(
    call: Call, fields: dict[str, Any], problem: str
) -> None:
    # return_bundle=True raised FHIRBundle's plain ValueError ("data.total ..."), which
    # names an argument the caller never passed: the server's answer is at fault.
    bundle = json.dumps({"resourceType": "Bundle", **fields}).encode()
    with raw_server(answer(200, bundle)) as server, pytest.raises(MedplumError) as info:
        await ask(server, call)
    assert str(info.value) == (
        f"expected a Bundle, but its {problem} (HTTP 200 from GET /fhir/R4/Patient)"
    )
    assert info.value.status_code == 200


def empty_page(next_offset: int | None) -> Behaviour:
    link = [{"relation": "next", "url": f"Patient?_offset={next_offset}"}] if next_offset else []
    return answer(200, json.dumps({"resourceType": "Bundle", "link": link}).encode())


async def test_endless_empty_pages_with_new_next_links_end_in_an_error_not_a_hang() -> None:
    # Each page links a new one and yields nothing: the caller's loop body never runs, so it
    # could never break out. MAX_EMPTY_PAGES such pages in a row end the iteration.
    endless = sequence(*(empty_page(offset) for offset in range(1, 100)))
    with raw_server(endless) as server:
        with pytest.raises(MedplumError) as info:
            await ask(server, pages)
        assert len(server.request_lines) == MAX_EMPTY_PAGES
    assert str(info.value).startswith(
        f"{MAX_EMPTY_PAGES} search pages in a row had no results but a next link"
    )


async def test_empty_pages_between_results_are_followed() -> None:
    patient = {"resource": {"resourceType": "Patient", "id": "p1"}}
    with_result = {
        "resourceType": "Bundle",
        "entry": [patient],
        "link": [{"relation": "next", "url": f"Patient?_offset={MAX_EMPTY_PAGES}"}],
    }
    script = [empty_page(offset) for offset in range(1, MAX_EMPTY_PAGES)]
    script += [answer(200, json.dumps(with_result).encode())]
    script += [empty_page(offset) for offset in range(MAX_EMPTY_PAGES + 1, 2 * MAX_EMPTY_PAGES)]
    script += [empty_page(None)]
    with raw_server(sequence(*script)) as server:
        found = await ask(server, pages)
        assert len(server.request_lines) == 2 * MAX_EMPTY_PAGES
    assert found == [{"resourceType": "Patient", "id": "p1"}]


TOKEN = answer(200, b'{"access_token": "t1", "expires_in": 3600}', "Content-Type: application/json")


@pytest.mark.parametrize("retry_after", ["99999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
async def test_a_huge_retry_after_from_the_token_endpoint_is_capped_by_max_retry_after(
    retry_after: str,
) -> None:
    # The cooldown followed it unbounded: one proxy answer locked the client out for years.
    rate_limited = answer(429, b"", f"Retry-After: {retry_after}")
    patient = answer(200, b'{"resourceType": "Patient", "id": "p1"}')
    with raw_server(sequence(rate_limited, TOKEN, patient)) as server:
        client = AsyncMedplumClient(
            server.url,
            client_id="cid",
            client_secret="secret",
            failed_refresh_cooldown=0.1,
            retry=RetryPolicy(max_retry_after=0.3),
        )
        async with client:
            with pytest.raises(AuthenticationError, match="HTTP 429"):
                await read(client)
            with pytest.raises(TokenRefreshCooldownError) as info:
                await read(client)
            assert info.value.retry_after <= 0.3
            time.sleep(0.35)  # past max_retry_after: the token endpoint is asked again
            assert await read(client) == {"resourceType": "Patient", "id": "p1"}
        assert [line.split()[1] for line in server.request_lines] == [
            "/oauth2/token",
            "/oauth2/token",
            "/fhir/R4/Patient/p1",
        ]


async def create(client: AsyncMedplumClient) -> Any:
    return await client.create_resource({"resourceType": "Patient"})


MAY_HAVE_REACHED = "the request may have reached the server"


@pytest.mark.parametrize(
    ("call", "where", "tries"),
    [
        (read, "GET /fhir/R4/Patient/{id}", 2),
        (pages, "GET /fhir/R4/Patient", 2),
        (wait_job, "GET /fhir/R4/job/{id}/status", 2),
        (create, "POST /fhir/R4/Patient", 1),  # it may have been applied: never sent twice
        (batch, "POST /fhir/R4/", 1),
    ],
)
@pytest.mark.parametrize(
    ("behaviour", "cause", "reached"),
    [
        (cut_short, httpx.RemoteProtocolError, MAY_HAVE_REACHED),
        (reset, httpx.ReadError, MAY_HAVE_REACHED),
        (stall_mid_body, httpx.ReadTimeout, MAY_HAVE_REACHED),
        (stall_before_headers, httpx.ReadTimeout, MAY_HAVE_REACHED),
        (huge_header, httpx.RemoteProtocolError, MAY_HAVE_REACHED),
        (conflicting_lengths, httpx.RemoteProtocolError, MAY_HAVE_REACHED),
        (bad_chunked, httpx.RemoteProtocolError, MAY_HAVE_REACHED),
        (not_http, httpx.RemoteProtocolError, MAY_HAVE_REACHED),
        (hang_up, httpx.RemoteProtocolError, MAY_HAVE_REACHED),
        # The server answered: not retried, whatever the method.
        (bad_gzip, httpx.DecodingError, "the server answered, but its body could not be decoded"),
    ],
)
async def test_a_broken_answer_is_a_network_error_saying_whether_the_request_got_through(
    call: Call,
    where: str,
    tries: int,
    behaviour: Behaviour,
    cause: type[Exception],
    reached: str,
) -> None:
    if cause is httpx.DecodingError:
        tries = 1
    # Short only where the read must time out: elsewhere a busy machine must not turn a slow
    # thread of the test server into a ReadTimeout.
    timeout = 0.3 if behaviour in (stall_mid_body, stall_before_headers) else 5.0
    with raw_server(behaviour) as server:
        server_url = server.url
        with pytest.raises(NetworkError) as info:
            await ask(server, call, timeout=timeout)
        assert len(server.request_lines) == tries
    assert isinstance(info.value.__cause__, cause)
    assert info.value.possibly_committed
    attempts = f"{tries} attempt(s)"
    message = f"{where} failed: {cause.__name__} after {attempts}; {reached}"
    assert str(info.value).startswith(message)
    assert "token" not in str(info.value) and server_url not in str(info.value)


@pytest.mark.parametrize(
    ("call", "where"), [(read, "GET /fhir/R4/Patient/{id}"), (create, "POST /fhir/R4/Patient")]
)
async def test_a_refused_connection_is_retried_for_every_method_as_it_never_got_through(
    call: Call, where: str
) -> None:
    retry = RetryPolicy(max_attempts=3, backoff_base=0.01)
    with pytest.raises(NetworkError) as info:
        await ask(closed_port_url(), call, retry=retry)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert not info.value.possibly_committed
    assert str(info.value) == (
        f"{where} failed: ConnectError after 3 attempt(s); the request never reached the server"
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"<html>Sign in</html>", "text/html"), (b"", "text/plain"), (b"[]", "application/json")],
)
async def test_a_token_answer_200_without_a_json_object_says_what_came_instead(
    body: bytes, kind: str
) -> None:
    with raw_server(answer(200, body, f"Content-Type: {kind}")) as server:
        with pytest.raises(AuthenticationError) as info:
            await ask(server, read, access_token=None, client_id="cid", client_secret="secret")
        assert str(info.value) == (
            f"client-credentials token request to {server.url}oauth2/token failed: HTTP 200 "
            f"without a JSON object ({kind}, {len(body)} bytes)"
        )
    assert info.value.status_code == 200


async def test_a_token_answer_cut_off_mid_body_keeps_the_token_out_of_the_exception() -> None:
    # A 200 whose JSON ends early (a proxy's timeout, a dropped connection behind it) still
    # holds the token's text: the exception, which gets logged and pickled, must not.
    body = b'{"access_token":"eyJ-cut-secret","token_type":"Bearer","expires_in":36'
    token_server = raw_server(answer(200, body, "Content-Type: application/json"))
    with token_server as server, pytest.raises(AuthenticationError) as info:
        await ask(server, read, access_token=None, client_id="cid", client_secret="secret")
    assert str(info.value).endswith(
        f"HTTP 200 without a JSON object (application/json, {len(body)} bytes)"
    )
    assert info.value.response is None
    assert b"cut-secret" not in pickle.dumps(info.value)
    assert "cut-secret" not in repr(info.value.__dict__)


async def test_a_401_after_a_token_was_issued_refreshes_and_replays_once_not_in_a_loop() -> None:
    unauthorized = answer(401, b'{"resourceType": "OperationOutcome", "issue": []}')
    with raw_server(sequence(TOKEN, unauthorized, TOKEN, unauthorized)) as server:
        with pytest.raises(AuthenticationError) as info:
            await ask(server, create, access_token=None, client_id="cid", client_secret="secret")
        assert server.request_lines == [
            "POST /oauth2/token HTTP/1.1",
            "POST /fhir/R4/Patient HTTP/1.1",
            "POST /oauth2/token HTTP/1.1",
            "POST /fhir/R4/Patient HTTP/1.1",  # a 401 was not processed: replaying is safe
        ]
    assert str(info.value) == "HTTP 401 Unauthorized from POST /fhir/R4/Patient"


@pytest.mark.parametrize(
    ("link", "error", "requests"),
    [
        # Relative, or absolute on the client's origin: followed.
        ("Patient?_offset=1", None, 2),
        ("/fhir/R4/Patient?_offset=1", None, 2),
        ("{base}fhir/R4/Patient?_offset=1", None, 2),
        # Another origin: refused before it is requested (the token would go along).
        ("https://elsewhere.example/fhir/R4/Patient?_offset=1", UnsafeRedirectError, 1),
        # Back to the first page, differently encoded: a loop, refused.
        ("{base}fhir/R4/Patient?_count=%32", MedplumError, 1),
    ],
)
async def test_a_next_link_is_followed_only_on_the_origin_and_never_in_a_loop(
    link: str, error: type[Exception] | None, requests: int
) -> None:
    patient = {"resource": {"resourceType": "Patient", "id": "p1"}}
    with raw_server(answer(200)) as server:
        first = {
            "resourceType": "Bundle",
            "entry": [patient],
            "link": [{"relation": "next", "url": link.format(base=server.url)}],
        }
        last = {"resourceType": "Bundle", "entry": [patient]}
        server.behaviour = sequence(
            answer(200, json.dumps(first).encode()), answer(200, json.dumps(last).encode())
        )

        async def two_pages(client: AsyncMedplumClient) -> Any:
            stream = client.search_resource_pages("Patient", {"_count": "2"})
            return [resource["id"] async for resource in stream]

        if error is None:
            assert await ask(server, two_pages) == ["p1", "p1"]
        else:
            with pytest.raises(error) as info:
                await ask(server, two_pages)
            assert info.value.status_code == (200 if error is MedplumError else None)
        assert len(server.request_lines) == requests


CREATED = answer(201, b'{"resourceType": "Patient", "id": "p1"}')


def http_date(value: str) -> str:
    """``date+30`` as the HTTP date 30 s from now (computed when the test runs); else as is."""
    if not value.startswith("date"):
        return value
    return email.utils.formatdate(time.time() + float(value[4:]), usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        ("2", 2.0, 2.0),
        ("1.5", 1.5, 1.5),
        ("0", 0.0, 0.0),
        ("date+30", 28.0, 30.0),
        ("date-100", 0.0, 0.0),  # a date in the past: at once
        # Malformed: the backoff (0.005 to 0.01 s here), not "at once".
        ("-1", 0.005, 0.01),
        ("1e3", 0.005, 0.01),
        ("soon", 0.005, 0.01),
        ("", 0.005, 0.01),
        # A date whose year (or zone) no datetime holds: the stdlib raised OverflowError.
        ("Mon, 01 Jan 99999999999 00:00:00 GMT", 0.005, 0.01),
        ("Mon, 01 Jan 2030 00:00:00 +99999999999999999999", 0.005, 0.01),
    ],
)
async def test_a_429_to_a_create_is_retried_after_the_servers_retry_after(
    sleeps: list[float], retry_after: str, low: float, high: float
) -> None:
    # A 429 was not processed: even a POST is sent again.
    rate_limited = answer(429, b"", f"Retry-After: {http_date(retry_after)}")
    with raw_server(sequence(rate_limited, CREATED)) as server:
        created = await ask(server, create)
        assert len(server.request_lines) == 2
    assert created == {"resourceType": "Patient", "id": "p1"}
    (wait,) = sleeps
    assert low <= wait <= high


async def test_a_retry_after_above_max_retry_after_is_raised_at_once(sleeps: list[float]) -> None:
    with raw_server(answer(429, b"", "Retry-After: 99999999")) as server:
        with pytest.raises(RateLimitError) as info:
            await ask(server, create)
        assert len(server.request_lines) == 1
    assert info.value.retry_after == 99999999.0 and sleeps == []
    assert str(info.value) == (
        "HTTP 429 Too Many Requests from POST /fhir/R4/Patient; a limit of the server's is "
        "spent, resetting in 99999999 s (exc.retry_after); not waited for: longer than "
        "RetryPolicy.max_retry_after (60 s): send it again after the reset, or slow down"
    )


@pytest.mark.parametrize(("call", "tries"), [(create, 1), (read, 2)])
async def test_a_503_with_retry_after_is_retried_only_for_a_replay_safe_request(
    sleeps: list[float], call: Call, tries: int
) -> None:
    # A gateway error may come after the origin applied the create: it is not sent twice.
    unavailable = answer(503, b"<html>Service Unavailable</html>", "Retry-After: 1")
    with raw_server(unavailable) as server:
        with pytest.raises(ServerError) as info:
            await ask(server, call)
        assert len(server.request_lines) == tries
    assert sleeps == [1.0] * (tries - 1)
    assert info.value.outcome is None and info.value.status_code == 503


async def low_level_get(client: AsyncMedplumClient) -> Any:
    return await client.get("admin/projects/p1")


@pytest.mark.parametrize(
    "call", [read, read_model, search, pages, batch, wait_job, search_one, low_level_get]
)
@pytest.mark.parametrize(
    "bad_answer",
    [
        answer(200, b"<html>Gateway login</html>", "Content-Type: text/html"),
        answer(200, b"null"),
    ],
)
async def test_an_answer_the_sdk_cannot_use_is_the_request_events_outcome(
    call: Call, bad_answer: Behaviour
) -> None:
    # The answer was read after the RequestEvent had been emitted: an audit hook recorded a
    # success, final_exception None, for a call that raised.
    if call is low_level_get:  # it returns any JSON, null included: only HTML is unusable
        bad_answer = answer(200, b"<html>Gateway login</html>", "Content-Type: text/html")
    events: list[RequestEvent] = []
    with raw_server(bad_answer) as server, pytest.raises(MedplumError) as info:
        await ask(server, call, on_request_complete=events.append)
    (event,) = events
    assert event.final_exception is info.value
    assert event.outcome == "error" and event.final_status_code == 200


async def test_a_typed_read_that_does_not_fit_its_model_is_the_request_events_outcome() -> None:
    events: list[RequestEvent] = []
    misfit = answer(200, b'{"resourceType": "Patient", "gender": 5}')
    with raw_server(misfit) as server, pytest.raises(pydantic.ValidationError) as info:
        await ask(server, read_model, on_request_complete=events.append)
    (event,) = events
    assert event.final_exception is info.value and event.outcome == "error"


async def long_search(client: AsyncMedplumClient) -> Any:
    # Over 8000 characters: sent as POST Patient/_search, which changes nothing.
    return await client.search_resources("Patient", {"name": "x" * 9000})


APPLIED = "; the server reported success, so it was most likely applied"


@pytest.mark.parametrize(
    ("call", "where"),
    [
        (create, "POST /fhir/R4/Patient" + APPLIED),
        (long_search, "POST /fhir/R4/Patient/_search"),
        (read, "GET /fhir/R4/Patient/{id}"),
    ],
)
async def test_an_unusable_success_answer_to_a_write_says_the_write_was_most_likely_applied(
    call: Call, where: str
) -> None:
    html = answer(200, b"<html>OK</html>", "Content-Type: text/html")
    with raw_server(html) as server, pytest.raises(MedplumError) as info:
        await ask(server, call)
    assert str(info.value) == (
        "expected a JSON response body, got text/html (15 bytes): expected value at line 1 "
        f"column 1 (HTTP 200 from {where})"
    )


async def read_if_changed(client: AsyncMedplumClient) -> Any:
    return await client.read_resource("Patient", "p1", headers={"If-None-Match": 'W/"3"'})


@pytest.mark.parametrize(
    ("call", "where"), [(read, "GET /fhir/R4/Patient/{id}"), (search, "GET /fhir/R4/Patient")]
)
async def test_an_unprompted_304_is_an_error_not_an_empty_result(call: Call, where: str) -> None:
    # Nothing was sent that a 304 could answer: read as {} it was an empty resource or a
    # search without results.
    with raw_server(answer(304)) as server, pytest.raises(MedplumError) as info:
        await ask(server, call)
    assert str(info.value) == f"expected a JSON object, got an empty body (HTTP 304 from {where})"


async def test_a_304_to_the_callers_own_if_none_match_is_an_empty_result() -> None:
    with raw_server(answer(304)) as server:
        assert await ask(server, read_if_changed) == {}


@pytest.mark.parametrize(
    ("outcome", "shown"),
    [
        ({"issue": [{"severity": 1, "code": ["invalid"]}]}, " [?/?]"),
        (
            {"issue": [{"diagnostics": "no severity, no code"}]},
            " [?/?]; the server's explanation is in exc.outcome (not shown: it may contain PHI)",
        ),
        ({"issue": {"severity": "error"}}, ""),  # not a list: no issue to show
        ({"issue": [5, None]}, ""),
        ({}, ""),
    ],
)
async def test_an_operation_outcome_with_odd_fields_still_gives_a_typed_error(
    outcome: dict[str, Any], shown: str
) -> None:
    body = json.dumps({"resourceType": "OperationOutcome", **outcome}).encode()
    with raw_server(answer(400, body)) as server, pytest.raises(BadRequestError) as info:
        await ask(server, read)
    assert str(info.value) == f"HTTP 400 Bad Request from GET /fhir/R4/Patient/{{id}}{shown}"
    assert info.value.outcome == {"resourceType": "OperationOutcome", **outcome}


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, BadRequestError), (404, NotFoundError), (500, ServerError), (502, ServerError)],
)
async def test_an_html_or_text_error_page_is_the_statuss_typed_error(
    status: int, error: type[OperationOutcomeError]
) -> None:
    page = answer(status, b"<html><h1>Bad Gateway</h1> nginx</html>", "Content-Type: text/html")
    with raw_server(page) as server, pytest.raises(error) as info:
        await ask(server, read)
    assert type(info.value) is error and info.value.outcome is None
    assert str(info.value).startswith(f"HTTP {status} ")
    assert info.value.response is not None and b"nginx" in info.value.response.content


# Nested past what json.loads reads on every supported CPython (it raised RecursionError), from
# a 2xx, from an error answer and from the token endpoint alike. How deep it reads depends on
# the interpreter: ~990 levels on 3.10 and 3.11, ~1,500 on 3.12, ~10,000 on 3.13 (where 5,000
# levels were read, and then were a list, not an unreadable body).
DEEP = b"[" * 50_000 + b"]" * 50_000


@pytest.mark.parametrize(
    "call", [read, read_model, search, pages, batch, wait_job, search_one, low_level_get]
)
async def test_json_nested_too_deeply_is_an_unreadable_answer_not_a_recursion_error(
    call: Call,
) -> None:
    with raw_server(answer(200, DEEP)) as server:
        with pytest.raises(MedplumError) as info:
            await ask(server, call)
        assert len(server.request_lines) == 1  # an answer, not a fault: not retried
    assert type(info.value) is MedplumError
    assert str(info.value).startswith("expected a JSON response body, got application/fhir+json")
    assert info.value.status_code == 200


@pytest.mark.parametrize(
    ("status", "error"), [(400, BadRequestError), (404, NotFoundError), (500, ServerError)]
)
async def test_an_error_answer_nested_too_deeply_is_the_statuss_typed_error(
    status: int, error: type[OperationOutcomeError]
) -> None:
    with raw_server(answer(status, DEEP)) as server, pytest.raises(error) as info:
        await ask(server, read)
    assert type(info.value) is error and info.value.outcome is None
    assert str(info.value).startswith(f"HTTP {status} ")


async def test_a_token_answer_nested_too_deeply_is_an_authentication_error() -> None:
    token_answer = answer(200, DEEP, "Content-Type: application/json")
    with raw_server(token_answer) as server, pytest.raises(AuthenticationError) as info:
        await ask(server, read, access_token=None, client_id="cid", client_secret="secret")
    assert str(info.value).endswith(
        f"failed: HTTP 200 without a JSON object (application/json, {len(DEEP)} bytes)"
    )


async def test_a_token_lifetime_too_large_for_a_float_is_no_lifetime() -> None:
    # float(10**400) raised OverflowError: the token is used until the server answers 401.
    token = answer(
        200,
        b'{"access_token": "t1", "expires_in": 1' + b"0" * 400 + b"}",
        "Content-Type: application/json",
    )
    patient = answer(200, b'{"resourceType": "Patient", "id": "p1"}')
    with raw_server(sequence(token, patient)) as server:
        client = connect(server.url, access_token=None, client_id="cid", client_secret="secret")
        async with client:
            assert await read(client) == {"resourceType": "Patient", "id": "p1"}
            assert await read(client) == {"resourceType": "Patient", "id": "p1"}
        assert [line.split()[1] for line in server.request_lines] == [
            "/oauth2/token",
            "/fhir/R4/Patient/p1",
            "/fhir/R4/Patient/p1",
        ]


async def test_a_ratelimit_remaining_count_with_thousands_of_digits_is_still_read(
    sleeps: list[float],
) -> None:
    # int() refuses more than 4300 digits (ValueError): "r=000...0" is 0 points left all the same.
    rate_limited = answer(429, b"", 'RateLimit: "requests";r=' + "0" * 5000 + ";t=7")
    with raw_server(sequence(rate_limited, CREATED)) as server:
        assert await ask(server, create) == {"resourceType": "Patient", "id": "p1"}
        assert len(server.request_lines) == 2
    assert sleeps == [7.0]


# An unknown element nested within what the JSON decoder reads, beyond what the models'
# recursive walk of unknown elements survives (it raised a bare RecursionError). Both depend on
# the interpreter: 3.10 and 3.11 read ~990 levels and walk ~500; 3.12 and 3.13 read ~1,500 and
# ~10,000 and walk ~1,000 (600 levels are a valid Patient there).
WALK_DEPTH = 600 if sys.version_info < (3, 12) else 1200
DEEP_PATIENT = (
    b'{"resourceType": "Patient", "id": "p1", "zz": ' + b"[" * WALK_DEPTH + b"]" * WALK_DEPTH + b"}"
)


async def test_a_resource_too_deep_for_its_model_is_a_validation_error_naming_the_answer() -> None:
    with raw_server(answer(200, DEEP_PATIENT)) as server:
        assert (await ask(server, read))["id"] == "p1"  # as a dict it is readable
        with pytest.raises(pydantic.ValidationError) as info:
            await ask(server, read_model)
    assert (
        info.value.title == "Patient (the server's answer, HTTP 200 from GET /fhir/R4/Patient/{id})"
    )
    assert [(e["type"], e["loc"]) for e in info.value.errors()] == [("too_deep", ())]


async def test_a_search_entry_too_deep_for_its_model_is_a_validation_error_at_the_entry() -> None:
    page = b'{"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": %s}]}'
    with raw_server(answer(200, page % DEEP_PATIENT)) as server:

        async def typed_pages(client: AsyncMedplumClient) -> Any:
            return [
                resource
                async for resource in client.search_resource_pages("Patient", as_fhir=Patient)
            ]

        with pytest.raises(pydantic.ValidationError) as info:
            await ask(server, typed_pages)
    assert info.value.title == "Patient (page 1 of the search)"
    assert [(e["type"], e["loc"]) for e in info.value.errors()] == [
        ("too_deep", ("entry", 0, "resource"))
    ]


async def test_a_post_on_a_pooled_connection_the_server_dropped_is_sent_once_on_a_new_one() -> None:
    # The server closes each kept-alive connection after answering (an idle timeout) before the
    # next call: the next create must not fail on the stale connection, nor reach the server
    # twice. (A close racing with the request's own sending is `hang_up`: not replayed.)
    closed = threading.Event()

    def answer_then_close(conn: socket.socket, line: str) -> bool:
        body = b'{"resourceType": "Patient", "id": "p1"}'
        conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        conn.close()  # no Connection: close header: the client pooled it
        closed.set()
        return True

    with raw_server(answer_then_close) as server:
        client = connect(server.url)
        async with client:
            for _ in range(3):
                closed.clear()
                assert await create(client) == {"resourceType": "Patient", "id": "p1"}
                assert closed.wait(5)
        assert server.request_lines == ["POST /fhir/R4/Patient HTTP/1.1"] * 3
        assert len(server._conns) == 3  # a new connection each time


async def test_an_early_413_to_a_large_upload_is_the_typed_error_not_a_network_error() -> None:
    # The server answers before reading the body, then drains it before closing (nginx's
    # lingering close; a close with the body unread would reset the connection and could
    # destroy the answer on the way): httpcore reads the answer when its write is cut short.
    def too_large(conn: socket.socket, line: str) -> bool:
        conn.sendall(
            b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        conn.settimeout(1.0)
        with contextlib.suppress(OSError):
            while conn.recv(65536):
                pass
        return True

    big = {"resourceType": "Patient", "text": {"div": "x" * 4_000_000}}

    async def create_big(client: AsyncMedplumClient) -> Any:
        return await client.create_resource(big)

    with raw_server(too_large) as server, pytest.raises(OperationOutcomeError) as info:
        server.read_bodies = False
        await ask(server, create_big)
    assert type(info.value) is OperationOutcomeError and info.value.status_code == 413
    assert str(info.value) == "HTTP 413 from POST /fhir/R4/Patient"


# Bytes that are not UTF-8 where the SDK reads text: the body, the reason phrase, a header.
NOT_UTF8 = b'{"resourceType": "Patient", "id": "p1", "name": [{"family": "M\xfcller"}]}'


async def test_a_body_that_is_not_utf8_is_an_unreadable_answer() -> None:
    with raw_server(answer(200, NOT_UTF8)) as server, pytest.raises(MedplumError) as info:
        await ask(server, read)
    assert type(info.value) is MedplumError and info.value.status_code == 200
    assert str(info.value).startswith("expected a JSON response body, got application/fhir+json")
    assert "M\xfcller" not in str(info.value)


async def test_an_error_answer_that_is_not_utf8_is_the_statuss_typed_error() -> None:
    outcome = b'{"resourceType": "OperationOutcome", "issue": [{"diagnostics": "M\xfcller"}]}'

    def not_found(conn: socket.socket, line: str) -> bool:
        head = b"HTTP/1.1 404 N\xf6t F\xc3\x28und\r\nContent-Length: %d\r\n\r\n" % len(outcome)
        conn.sendall(head + outcome)
        return False

    with raw_server(not_found) as server, pytest.raises(NotFoundError) as info:
        await ask(server, read)
    assert info.value.outcome is None  # not JSON: the bytes stay on exc.response
    assert str(info.value) == (
        "HTTP 404 Not Found from GET /fhir/R4/Patient/{id}"
        "; the id is not a UUID, and every Medplum id is one (404 for any other)"  # id "p1"
    )


async def test_a_retry_after_that_is_not_utf8_is_malformed_and_the_backoff_applies(
    sleeps: list[float],
) -> None:
    def rate_limited(conn: socket.socket, line: str) -> bool:
        conn.sendall(
            b"HTTP/1.1 429 Too Many\r\nRetry-After: \xff\xfe5\r\nContent-Length: 0\r\n\r\n"
        )
        return False

    with raw_server(sequence(rate_limited, CREATED)) as server:
        assert await ask(server, create) == {"resourceType": "Patient", "id": "p1"}
        assert len(server.request_lines) == 2
    (wait,) = sleeps
    assert 0.005 <= wait <= 0.01


STALE = answer(
    412,
    b'{"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing"}]}',
)


async def update_v5(client: AsyncMedplumClient) -> Any:
    return await client.update_resource(
        {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "5"}, "active": True}
    )


@pytest.mark.parametrize(
    ("first", "what"),
    [
        (answer(503, b"<html>Service Unavailable</html>"), "HTTP 503"),
        (stall_mid_body, "ReadTimeout"),
    ],
)
async def test_a_replayed_update_answered_412_does_not_claim_nothing_was_updated(
    first: Behaviour, what: str
) -> None:
    # The first PUT reached the origin and applied the update (version 5 -> 6); its answer was
    # lost (a gateway's 503, a timed-out read), so the SDK sent it again with the same If-Match,
    # and the replay's 412 was reported as "nothing was updated (someone else wrote it)".
    with raw_server(sequence(first, STALE)) as server:
        with pytest.raises(PreconditionFailedError) as info:
            await ask(server, update_v5, timeout=0.3)
        assert server.request_lines == ["PUT /fhir/R4/Patient/p1 HTTP/1.1"] * 2
    message = str(info.value)
    assert "nothing was updated" not in message
    assert message == (
        "HTTP 412 Precondition Failed from PUT /fhir/R4/Patient/{id} [error/processing]; "
        'If-Match W/"5" is not the current version of the resource, but this request was sent '
        f"again after an earlier attempt ended in {what}: that attempt may have applied it. Read "
        "the resource to see whether it holds the change before sending it again"
    )


async def test_a_first_update_answered_412_still_says_nothing_was_updated() -> None:
    with raw_server(STALE) as server, pytest.raises(PreconditionFailedError) as info:
        await ask(server, update_v5)
    assert "nothing was updated (someone else wrote it since it was read)" in str(info.value)

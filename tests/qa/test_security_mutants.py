"""Security rules the other tests did not pin: each test here kills a mutant of the rule (a
flipped comparison, a dropped check or redaction) that every other test let through. Both
flavours wherever the rule is reached through a client."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import httpx
import pytest

from pymedplum import (
    AsyncMedplumClient,
    AuthenticationError,
    InsecureTransportError,
    MedplumClient,
    MedplumError,
    NetworkError,
    RetryPolicy,
    UnsafeRedirectError,
)
from pymedplum.hooks import PreparedRequest, RequestEvent
from tests.qa.conftest import QA, TOKEN
from tests.qa.test_security_audit import _reachable_text

pytestmark = pytest.mark.anyio

Client = type[MedplumClient] | type[AsyncMedplumClient]
CLIENTS = [MedplumClient, AsyncMedplumClient]


async def _pages(qa: QA, client: Any) -> list[Any]:
    pages = client.search_resource_pages("Patient")
    if qa.flavour == "async":
        return [item async for item in pages]
    return list(pages)


def _two_pages(link: str) -> Any:
    """A handler answering a first page whose next link is ``link``, then a last page."""

    def handler(request: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        page = request.url.params.get("page", "1")
        body["entry"] = [{"resource": {"resourceType": "Patient", "id": page}}]
        if page == "1":
            body["link"] = [{"relation": "next", "url": link}]
        return httpx.Response(200, json=body)

    return handler


# --- https only: what counts as loopback, what a base_url may carry --------------------------


@pytest.mark.parametrize("host", ["notlocalhost", "evil-localhost", "xlocalhost"])
@pytest.mark.parametrize("cls", CLIENTS)
def test_a_name_ending_in_localhost_is_not_loopback(cls: Client, host: str) -> None:
    # Only "localhost" itself is trusted: a suffix match would send plain http:// to any
    # name ending in it.
    with pytest.raises(InsecureTransportError, match=host):
        cls(f"http://{host}/")


@pytest.mark.parametrize("cls", CLIENTS)
def test_a_base_url_with_a_user_name_but_no_password_is_refused(cls: Client) -> None:
    # user@ alone is credentials too (a token as user name is a common form).
    with pytest.raises(ValueError, match="credentials") as info:
        cls("https://tok3n@medplum.test/")
    assert "tok3n" not in str(info.value)


@pytest.mark.parametrize("url", ["https://medplum.test/?x=1", "https://medplum.test/#frag"])
@pytest.mark.parametrize("cls", CLIENTS)
def test_a_base_url_with_a_query_or_fragment_is_refused(cls: Client, url: str) -> None:
    # Every request path is appended to base_url: after a query or fragment it would be read
    # as part of it, and every call would go to the server root.
    with pytest.raises(ValueError, match="query or fragment"):
        cls(url)


@pytest.mark.parametrize("cls", CLIENTS)
def test_a_bracketed_ipvfuture_host_is_a_value_error_naming_base_url(cls: Client) -> None:
    # urlsplit accepts "[v1.x]" (RFC 3986 IPvFuture) on every Python; httpx does not, so it
    # is refused here, not at the first call with httpx's own InvalidURL.
    with pytest.raises(ValueError, match="base_url"):
        cls("https://[v1.medplum]/")


# --- same-origin: what is the same origin ----------------------------------------------------


@pytest.mark.parametrize(
    "link",
    [
        "HTTPS://Medplum.TEST/fhir/R4/Patient?page=2",
        "https://medplum.test:443/fhir/R4/Patient?page=2",
    ],
)
async def test_a_next_link_on_the_same_origin_written_differently_is_followed(
    qa: QA, link: str
) -> None:
    # Scheme and host ignore case and 443 is https's port: the same origin, which httpx sends
    # as https://medplum.test/ (a refusal here would break paging for such servers).
    qa.handler = _two_pages(link)
    items = await _pages(qa, qa.client())
    assert [i["id"] for i in items] == ["1", "2"]
    assert (qa.requests[1].url.scheme, qa.requests[1].url.host) == ("https", "medplum.test")
    assert qa.requests[1].headers["authorization"] == "Bearer " + TOKEN


async def test_a_next_link_with_userinfo_is_refused_without_repeating_it(qa: QA) -> None:
    qa.handler = _two_pages("https://alice:s3cret@medplum.test/fhir/R4/Patient?name=Doe&page=2")
    with pytest.raises(UnsafeRedirectError, match="userinfo") as info:
        await _pages(qa, qa.client())
    assert len(qa.requests) == 1
    for leaked in ("s3cret", "alice", "Doe", "/fhir/R4/Patient"):
        assert leaked not in str(info.value)


# --- On-Behalf-Of ----------------------------------------------------------------------------


async def test_re_entering_an_active_on_behalf_of_block_raises_and_the_block_ends_clean(
    qa: QA,
) -> None:
    # Entered twice, the inner exit would restore the outer value and the outer exit would
    # then have nothing to restore: the membership would stay set after the block.
    client = qa.client()
    block = client.on_behalf_of("pm-1")
    with block:
        with pytest.raises(RuntimeError, match="already active"), block:
            pass
        await qa.call(client, "read_resource", "Patient", "1")
    await qa.call(client, "read_resource", "Patient", "1")
    sent = [r.headers.get("x-medplum-on-behalf-of") for r in qa.requests]
    assert sent == ["ProjectMembership/pm-1", None]


# --- PHI out of the non-PHI event dict -------------------------------------------------------


async def test_the_non_phi_dict_names_an_attempts_exception_by_type_only(qa: QA) -> None:
    # A transport error's message is free text (a proxy's, an OS error with a host name, a
    # caller pool hook's): to_non_phi_dict gives its type name, never its message.
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused for Patient/p-secret Doe", request=request)

    qa.handler = handler
    events: list[RequestEvent] = []
    client = qa.client(on_request_complete=events.append, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(NetworkError):
        await qa.call(client, "read_resource", "Patient", "p-secret")
    shape = events[-1].to_non_phi_dict()
    assert shape["attempts"][0]["exception_type"] == "ConnectError"
    assert shape["final_exception_type"] == "NetworkError"
    text = json.dumps(shape)
    assert "p-secret" not in text and "Doe" not in text


async def test_a_failing_hook_is_logged_with_its_innermost_five_frames_only(
    qa: QA, caplog: pytest.LogCaptureFixture
) -> None:
    # One bounded line: a deep sink (an ORM, a queue client) must not flood the general log.
    def level(n: int) -> None:
        if n == 0:
            raise RuntimeError("audit sink down")
        level(n - 1)

    def hook(event: RequestEvent) -> None:
        level(12)

    async def ahook(event: RequestEvent) -> None:
        hook(event)

    client = qa.client(on_request_complete=ahook if qa.flavour == "async" else hook)
    with caplog.at_level(logging.WARNING, logger="pymedplum.hooks"):
        await qa.call(client, "read_resource", "Patient", "1")
    (record,) = [r for r in caplog.records if r.name == "pymedplum.hooks"]
    message = record.getMessage()
    assert "RuntimeError at " in message and "audit sink down" not in message
    assert message.count(" in level") == 5 and message.count(" <- ") == 4


# --- before_request: secret headers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Cookie", "session=s3cret"),
        ("Proxy-Authorization", "Basic s3cret"),
        ("Authorization", "Bearer s3cret"),
    ],
)
async def test_a_callers_secret_header_is_hidden_from_the_hook_and_still_sent(
    qa: QA, name: str, value: str
) -> None:
    # Without credentials of its own the client lets the caller send Authorization too.
    seen: list[PreparedRequest] = []

    def hook(request: PreparedRequest) -> PreparedRequest:
        seen.append(request)
        return dataclasses.replace(request, headers={**request.headers, "X-Trace": "t-1"})

    client = qa.client(access_token=None, before_request=hook)
    await qa.call(client, "read_resource", "Patient", "1", headers={name: value})
    assert "s3cret" not in repr(seen[0])
    sent = qa.requests[-1].headers
    assert sent[name] == value and sent["X-Trace"] == "t-1"


@pytest.mark.parametrize(
    ("name", "value"), [("Cookie", "session=stolen"), ("Proxy-Authorization", "Basic stolen")]
)
async def test_a_hook_adding_a_secret_header_is_discarded(
    qa: QA, name: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(request: PreparedRequest) -> PreparedRequest:
        return dataclasses.replace(request, headers={**request.headers, name: value})

    client = qa.client(before_request=hook)
    with caplog.at_level(logging.WARNING, logger="pymedplum.hooks"):
        await qa.call(client, "read_resource", "Patient", "1")
    assert name.lower() not in qa.requests[-1].headers
    assert "discarded" in caplog.text and name in caplog.text


# --- no secret in an exception: the redirect httpx prepared but did not send -------------------


def _caller_pool_client(qa: QA, handler: Any, *, hooks: bool, **kwargs: Any) -> Any:
    """A client on a caller pool; with ``hooks`` the pool has an event hook, so the SDK sends
    through ``httpx.Client.send`` (which prepares ``response.next_request`` for a 3xx)."""
    transport = httpx.MockTransport(handler)
    if qa.flavour == "async":

        async def ahook(request: httpx.Request) -> None:
            return None

        event_hooks: Any = {"request": [ahook]} if hooks else {}
        http: Any = httpx.AsyncClient(transport=transport, event_hooks=event_hooks)
        return AsyncMedplumClient("https://medplum.test/", http_client=http, **kwargs)
    event_hooks = {"request": [lambda request: None]} if hooks else {}
    http = httpx.Client(transport=transport, event_hooks=event_hooks)
    return MedplumClient("https://medplum.test/", http_client=http, **kwargs)


@pytest.mark.parametrize("hooks", [False, True], ids=["direct", "through-send"])
@pytest.mark.parametrize("location", ["/fhir/R4/Patient/2", "https://medplum.test/x"])
async def test_a_same_origin_redirect_exception_reaches_no_bearer_token(
    qa: QA, location: str, hooks: bool
) -> None:
    # httpx.Client.send keeps the redirect it did not follow as response.next_request, with
    # the Authorization header for a same-origin target.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": location})

    client = _caller_pool_client(qa, handler, hooks=hooks, access_token=TOKEN)
    with pytest.raises(MedplumError, match="302") as info:
        await qa.call(client, "read_resource", "Patient", "1")
    assert info.value.response is not None
    assert info.value.response.headers["Location"] == location  # the target stays readable
    assert TOKEN.encode() not in _reachable_text(info.value)


SECRET = "client-SEKRET-mutants"


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("location", ["/oauth2/token2", "https://evil.example/oauth2/token"])
async def test_a_redirected_token_request_exception_reaches_no_client_secret(
    qa: QA, location: str, status: int
) -> None:
    # A 307 / 308 keeps the method and body: the next_request httpx prepared holds the form
    # with the client secret, whatever the target's origin.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"Location": location})

    client = _caller_pool_client(qa, handler, hooks=False, client_id="cid", client_secret=SECRET)
    with pytest.raises(AuthenticationError, match=f"HTTP {status}") as info:
        await qa.call(client, "read_resource", "Patient", "1")
    assert SECRET.encode() not in _reachable_text(info.value)


# --- 401: one refresh, one replay ---------------------------------------------------------------


async def test_a_401_after_the_replay_is_raised_not_replayed_again(qa: QA) -> None:
    # Answers 401 five times, then 200: a client replaying more than once would end up with
    # the 200 (and against a server that always answers 401, never return).
    api: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": f"t{len(qa.requests)}"})
        api.append(request)
        if len(api) <= 5:
            return httpx.Response(401, json={"resourceType": "OperationOutcome", "issue": []})
        return httpx.Response(200, json={"resourceType": "Patient", "id": "1"})

    qa.handler = handler
    client = qa.client(access_token=None, client_id="cid", client_secret=SECRET)
    with pytest.raises(AuthenticationError) as info:
        await qa.call(client, "read_resource", "Patient", "1")
    assert info.value.status_code == 401
    assert len(api) == 2
    assert [r.url.path for r in qa.requests].count("/oauth2/token") == 2


# --- PHI out of redirect messages ----------------------------------------------------------------


@pytest.mark.parametrize(
    "location", ["https://evil.example/next?token=t", "/fhir/R4/Patient/p-other?name=Roe"]
)
async def test_a_redirect_error_names_neither_the_request_nor_the_target_path(
    qa: QA, location: str
) -> None:
    qa.handler = lambda request: httpx.Response(302, headers={"Location": location})
    client = qa.client()
    with pytest.raises(MedplumError, match="302") as info:
        await qa.call(client, "search_resources", "Patient", {"name": "Doe", "_id": "p-777"})
    message = str(info.value)
    assert "/fhir/R4/Patient" in message  # the call's template says which call it was
    for phi in ("Doe", "p-777", "p-other", "Roe", "token=t", "/next"):
        assert phi not in message


async def test_a_failed_token_request_is_logged_by_its_type_only(
    qa: QA, caplog: pytest.LogCaptureFixture
) -> None:
    qa.handler = lambda request: httpx.Response(400, json={"error": "invalid_client"})
    client = qa.client(access_token=None, client_id="cid", client_secret=SECRET)
    with (
        caplog.at_level(logging.WARNING, logger="pymedplum.auth"),
        pytest.raises(AuthenticationError),
    ):
        await qa.call(client, "read_resource", "Patient", "1")
    (record,) = [r for r in caplog.records if r.name == "pymedplum.auth"]
    assert record.getMessage().startswith("token request failed (AuthenticationError);")


@pytest.mark.parametrize("location", ["https://[medplum.test]/x", "http://[::1"])
async def test_a_redirect_to_an_unparsable_location_is_an_unsafe_redirect(
    qa: QA, location: str
) -> None:
    # A Location httpx cannot read names no origin, so not the client's: refused as unsafe.
    qa.handler = lambda request: httpx.Response(302, headers={"Location": location})
    client = qa.client()
    with pytest.raises(UnsafeRedirectError, match="302"):
        await qa.call(client, "read_resource", "Patient", "1")
    assert len(qa.requests) == 1

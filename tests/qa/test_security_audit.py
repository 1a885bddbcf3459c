"""Security audit (session 8): holes found by trying to break the transport rules, one test
each, both flavours. The origin, redirect and secret rules themselves are in the sibling files."""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import pickle
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import httpx
import pytest

from pymedplum import (
    AsyncMedplumClient,
    AuthenticationError,
    InsecureTransportError,
    MedplumClient,
    MedplumError,
    RetryPolicy,
    TokenRefreshCooldownError,
    UnsafeRedirectError,
)
from pymedplum.hooks import PreparedRequest
from tests.loopback_http import serve_on_loopback
from tests.qa.conftest import FHIR, QA, TOKEN, page_with_next

pytestmark = pytest.mark.anyio

SECRET = "client-SEKRET-audit"
ISSUED = "ISSUED-TOKEN-audit"


# --- secrets reachable from exceptions over a real connection ---------------------------------


class _Handler(BaseHTTPRequestHandler):
    """The token endpoint refuses (``token``) or the API answers ``api``."""

    answers: ClassVar[dict[str, tuple[int, bytes]]] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        key = "token" if self.path.startswith("/oauth2/token") else "api"
        status, body = self.answers[key]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def local_server() -> Iterator[str]:
    with serve_on_loopback(_Handler) as url:
        yield url


_OPAQUE = (
    types.FrameType,
    types.TracebackType,
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
)


def _reachable_text(root: object) -> bytes:
    """Every str / bytes reachable from ``root`` through object references (not through
    tracebacks, frames, modules, classes or functions), joined."""
    out: list[bytes] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            out.append(obj.encode("utf-8", "replace"))
        elif isinstance(obj, bytes | bytearray):
            out.append(bytes(obj))
        else:
            stack.extend(gc.get_referents(obj))
            if isinstance(obj, BaseException):
                stack.extend(x for x in (obj.__cause__, obj.__context__) if x is not None)
    return b"\n".join(out)


async def _call(flavour: str, base_url: str, **kwargs: Any) -> BaseException:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=1))
    try:
        if flavour == "async":
            async with AsyncMedplumClient(base_url, **kwargs) as aclient:
                await aclient.read_resource("Patient", "1")
        else:
            with MedplumClient(base_url, **kwargs) as client:
                client.read_resource("Patient", "1")
    except MedplumError as exc:
        return exc
    raise AssertionError("the call should have failed")


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("status", [400, 401, 500])
async def test_failed_token_request_exception_reaches_no_client_secret(
    flavour: str, status: int, local_server: str
) -> None:
    # The response's transport stream held httpcore's copy of the request, form body included.
    _Handler.answers = {"token": (status, b'{"error":"invalid_request"}')}
    exc = await _call(flavour, local_server, client_id="cid", client_secret=SECRET)
    assert isinstance(exc, AuthenticationError)
    assert exc.response is not None and exc.response.json() == {"error": "invalid_request"}
    assert SECRET.encode() not in _reachable_text(exc)


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(
    "answer", [(500, b"{}"), (401, b"{}"), (302, b""), (200, b"<html>")], ids=str
)
async def test_error_response_exception_reaches_no_bearer_token(
    flavour: str, answer: tuple[int, bytes], local_server: str
) -> None:
    # The response's transport stream held httpcore's copy of the request, headers included.
    _Handler.answers = {"api": answer}
    exc = await _call(flavour, local_server, access_token=ISSUED)
    assert exc.response is not None and exc.response.content == answer[1]
    assert ISSUED.encode() not in _reachable_text(exc)


# --- the token endpoint ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_token_endpoint_redirect_with_a_token_in_its_body_is_not_a_token(
    qa: QA, status: int
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(
                status,
                headers={"Location": "https://evil.example/oauth2/token"},
                json={"access_token": "from-a-redirect", "expires_in": 3600},
            )
        return httpx.Response(200, json={"resourceType": "Patient", "id": "1"})

    qa.handler = handler
    client = qa.client(access_token=None, client_id="cid", client_secret=SECRET)
    with pytest.raises(AuthenticationError, match=f"HTTP {status}.*redirect"):
        await qa.call(client, "read_resource", "Patient", "1")
    assert [r.url.path for r in qa.requests] == ["/oauth2/token"]


# --- before_request: the Host header -----------------------------------------------------------


@pytest.mark.parametrize("name", ["Host", "host", "HOST"])
async def test_hook_setting_host_is_discarded(
    qa: QA, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A Host header picks the virtual host behind a shared front end: the bearer token would
    # reach another site although the URL stayed on the client's origin.
    def hook(request: PreparedRequest) -> PreparedRequest:
        return dataclasses.replace(request, headers={**request.headers, name: "evil.example"})

    client = qa.client(before_request=hook)
    with caplog.at_level(logging.WARNING, logger="pymedplum.hooks"):
        await qa.call(client, "read_resource", "Patient", "1")
    assert qa.requests[-1].headers["host"] == "medplum.test"
    assert qa.requests[-1].headers["authorization"] == "Bearer " + TOKEN
    assert "discarded" in caplog.text and "Host" in caplog.text


# --- body framing headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    "header", [{"Content-Length": "0"}, {"content-length": "5"}, {"Transfer-Encoding": "gzip"}]
)
async def test_caller_framing_header_is_a_value_error_naming_it(
    qa: QA, header: dict[str, str]
) -> None:
    # Sent as given, a wrong Content-Length put the headers on the wire (Content-Length: 0:
    # an empty create to the server) and then failed with a bare h11 LocalProtocolError.
    client = qa.client()
    (name,) = header
    with pytest.raises(ValueError, match=f"must not set {name}"):
        await qa.call(client, "create_resource", {"resourceType": "Patient"}, headers=header)
    assert qa.requests == []


async def test_hook_setting_a_framing_header_is_discarded(
    qa: QA, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(request: PreparedRequest) -> PreparedRequest:
        return dataclasses.replace(request, headers={**request.headers, "Content-Length": "0"})

    client = qa.client(before_request=hook)
    with caplog.at_level(logging.WARNING, logger="pymedplum.hooks"):
        await qa.call(client, "create_resource", {"resourceType": "Patient", "active": True})
    sent = qa.requests[-1]
    assert json.loads(sent.content) == {"resourceType": "Patient", "active": True}
    assert sent.headers["content-length"] == str(len(sent.content))
    assert "discarded" in caplog.text and "Content-Length" in caplog.text


@pytest.mark.parametrize("cls", [MedplumClient, AsyncMedplumClient])
def test_caller_pool_with_a_framing_header_is_refused(
    cls: type[MedplumClient] | type[AsyncMedplumClient],
) -> None:
    http: Any = (httpx.AsyncClient if cls is AsyncMedplumClient else httpx.Client)(
        headers={"Content-Length": "0"}
    )
    with pytest.raises(ValueError, match="default headers must not set content-length"):
        cls("https://medplum.test/", access_token=TOKEN, http_client=http)


# --- https only: what counts as loopback ----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1%00.evil.example/",
        "http://127.0.0.1%2eevil.example/",
        "http://127.0.0.1%25.evil.example/",
    ],
)
@pytest.mark.parametrize("cls", [MedplumClient, AsyncMedplumClient])
def test_a_dns_name_starting_with_a_loopback_address_is_not_loopback(
    cls: type[MedplumClient] | type[AsyncMedplumClient], url: str
) -> None:
    # The text before "%" used to be read as the address (an IPv6 zone id rule applied to
    # every host): plain http:// to a DNS name, with no opt-in.
    with pytest.raises(InsecureTransportError):
        cls(url)


@pytest.mark.parametrize("cls", [MedplumClient, AsyncMedplumClient])
def test_garbage_after_an_ipv6_host_is_a_value_error_naming_base_url(
    cls: type[MedplumClient] | type[AsyncMedplumClient],
) -> None:
    # urlsplit read http://[::1]evil.example/ as loopback; httpx then raised its own InvalidURL.
    with pytest.raises(ValueError, match="base_url"):
        cls("http://[::1]evil.example/")


# --- URLs urlsplit reads differently from httpx --------------------------------------------


@pytest.mark.parametrize(
    "link",
    [
        "https://medplum.test\t/fhir/R4/Patient?page=2",
        "https://medplum.te\nst/fhir/R4/Patient?page=2",
        " https://medplum.test/fhir/R4/Patient?page=2",
    ],
    ids=["tab", "newline", "leading-space"],
)
async def test_next_link_with_control_characters_is_an_unsafe_redirect(qa: QA, link: str) -> None:
    # urlsplit drops tabs, line breaks and leading spaces, so the origin check saw the
    # client's origin; httpx refuses (or reads as relative) the URL actually requested, and
    # the call failed with a bare httpx exception (or a retried NetworkError).
    qa.handler = lambda request: page_with_next(link)
    client = qa.client()
    with pytest.raises(UnsafeRedirectError, match="not a valid absolute URL"):
        if qa.flavour == "async":
            async for _ in client.search_resource_pages("Patient"):  # type: ignore[union-attr]
                pass
        else:
            for _ in client.search_resource_pages("Patient"):  # type: ignore[union-attr]
                pass
    assert len(qa.requests) == 1


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("fhir/R4/Patient\r\nX-Evil: 1", ValueError),
        ("fhir/R4/Patient/1\x00", ValueError),
        (FHIR + "Patient\t/1", UnsafeRedirectError),
        ("https://medplum.te\nst/fhir/R4/Patient/1", UnsafeRedirectError),
    ],
    ids=["crlf", "nul", "absolute-tab", "absolute-newline"],
)
async def test_low_level_path_with_control_characters_is_a_typed_error(
    qa: QA, path: str, error: type[Exception]
) -> None:
    client = qa.client()
    with pytest.raises(error, match=r"control characters|not a valid absolute URL"):
        await qa.call(client, "get", path)
    assert qa.requests == []


# --- pickling ------------------------------------------------------------------------------


def test_token_refresh_cooldown_error_survives_pickling() -> None:
    # Exceptions cross process boundaries (multiprocessing, task queues): the copy was rebuilt
    # from the message alone, and float(message) failed.
    exc = TokenRefreshCooldownError(2.5)
    copy = pickle.loads(pickle.dumps(exc))
    assert isinstance(copy, TokenRefreshCooldownError)
    assert copy.retry_after == 2.5 and str(copy) == str(exc)
    assert json.dumps(copy.sanitize_for_logging())


# --- bearer tokens that cannot go in a header ----------------------------------------------

BAD_TOKENS = ["tok\r\nX-Evil: 1", "tok\n", "t\u00f6k-SEKRET", "tok\x00", "tok "]
BAD_TOKEN_IDS = ["crlf", "lf", "non-ascii", "nul", "trailing-space"]


@pytest.mark.parametrize("token", BAD_TOKENS, ids=BAD_TOKEN_IDS)
async def test_token_endpoint_answer_that_cannot_be_sent_is_an_authentication_error(
    qa: QA, token: str
) -> None:
    # It was stored and used: a line break failed every call as a (retried) NetworkError, a
    # non-ASCII character as a bare UnicodeEncodeError whose repr held "Bearer <token>".
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": token, "expires_in": 3600})
        return httpx.Response(200, json={"resourceType": "Patient", "id": "1"})

    qa.handler = handler
    client = qa.client(access_token=None, client_id="cid", client_secret=SECRET)
    with pytest.raises(AuthenticationError, match="cannot be sent in a header") as info:
        await qa.call(client, "read_resource", "Patient", "1")
    assert token not in repr(info.value) and token not in str(info.value)
    assert [r.url.path for r in qa.requests] == ["/oauth2/token"]


@pytest.mark.parametrize("token", BAD_TOKENS, ids=BAD_TOKEN_IDS)
@pytest.mark.parametrize("cls", [MedplumClient, AsyncMedplumClient])
def test_access_token_that_cannot_be_sent_is_a_value_error_not_echoing_it(
    cls: type[MedplumClient] | type[AsyncMedplumClient], token: str
) -> None:
    with pytest.raises(ValueError, match="access_token must be printable ASCII") as info:
        cls("https://medplum.test/", access_token=token)
    assert token not in str(info.value)


@pytest.mark.parametrize("token", ["Bearer s3cr3t-t0ken", "bearer s3cr3t-t0ken", "BEARER  s3cr3t"])
@pytest.mark.parametrize("cls", [MedplumClient, AsyncMedplumClient])
def test_access_token_given_with_its_bearer_scheme_is_a_value_error_not_echoing_it(
    cls: type[MedplumClient] | type[AsyncMedplumClient], token: str
) -> None:
    # fhirpy takes authorization="Bearer <token>"; passed on as access_token, it went out as
    # "Authorization: Bearer Bearer <token>" and came back as a 401.
    with pytest.raises(ValueError, match=r"access_token .*'Bearer '.*token alone") as info:
        cls("https://medplum.test/", access_token=token)
    assert "s3cr3t" not in str(info.value)
    assert cls("https://medplum.test/", access_token="Bearer.token").__class__ is cls


# --- credentials in a rejected base_url -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2@medplum.test:99999/",
        "https://user:hunter2@medplum.test/ x",
        "ftp://user:hunter2@medplum.test/",
        "https://user:hunter2@[medplum.test]/",
        "https://user:hunter2@medplum.test/",
    ],
)
@pytest.mark.parametrize("cls", [MedplumClient, AsyncMedplumClient])
def test_rejected_base_url_message_does_not_repeat_its_password(
    cls: type[MedplumClient] | type[AsyncMedplumClient], url: str
) -> None:
    # The userinfo check came after the port / scheme / whitespace checks, whose messages
    # quoted the whole base_url.
    with pytest.raises(ValueError, match="base_url") as info:
        cls(url)
    assert "hunter2" not in str(info.value) and "user:hunter2" not in str(info.value)


# --- low-level path types -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
@pytest.mark.parametrize(
    "path", [httpx.URL("https://evil.example/x"), b"https://evil.example/x", None], ids=str
)
async def test_low_level_path_that_is_not_a_str_is_a_type_error_naming_path(
    qa: QA, method: str, path: object
) -> None:
    # It failed with "'URL' object is not subscriptable" and the like.
    client = qa.client()
    with pytest.raises(TypeError, match="path must be a str"):
        await qa.call(client, method, path)
    assert qa.requests == []

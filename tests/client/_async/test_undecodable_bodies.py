"""Bodies that cannot be decoded, on a real socket (tests/client/rawserver.py): the status
decides what happens (a 401 is refreshed, a 503 or 429 retried, an error status raised as its
typed exception), only a 2xx loses its data (NetworkError). A decompression bomb is refused
before it is decoded whole; large legitimate bodies, compressed or not, are read."""

from __future__ import annotations

import gzip
import tracemalloc
from typing import Any

import httpx
import pytest
from httpx._decoders import SUPPORTED_DECODERS

from pymedplum import (
    AsyncMedplumClient,
    AuthenticationError,
    BadRequestError,
    MedplumError,
    NetworkError,
    NotFoundError,
    OperationOutcomeError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from pymedplum._async._base_client import AsyncBaseClient
from pymedplum._decoding import (
    MAX_RATIO,
    MIN_REFUSED_SIZE,
    DecompressionBombError,
    UnsupportedEncodingError,
)
from pymedplum.hooks import RequestEvent

from ..rawserver import Behaviour, answer, gzip_bomb, raw_server, searchset_json, sequence

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("error::ResourceWarning")]  # async-only

PID = "5b6f1a2e-8a4c-4d7e-9f00-3c2b1a0d9e8f"  # a UUID: no id hint in a 404's message
WHERE = "GET /fhir/R4/Patient/{id}"
PATIENT = answer(200, b'{"resourceType": "Patient", "id": "' + PID.encode() + b'"}')
TOKEN = answer(200, b'{"access_token": "t1", "expires_in": 3600}', "Content-Type: application/json")
# A gzip header, then bytes that are no deflate stream (a proxy's garbled or cut answer).
CORRUPT = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 40
UNDECODABLE = "its body could not be decoded (its Content-Encoding)"
REFUSED = (
    f"its body was refused: it decoded to over {MIN_REFUSED_SIZE >> 20} MiB at more than "
    f"{MAX_RATIO} times its compressed size (a decompression bomb)"
)


def gzipped(status: int, body: bytes, *headers: str) -> Behaviour:
    return answer(status, body, "Content-Encoding: gzip", *headers)


async def read_patient(server_url: str, events: list[RequestEvent], **options: Any) -> Any:
    settings: dict[str, Any] = {
        "access_token": "secret-token",
        "timeout": 5.0,
        "retry": RetryPolicy(max_attempts=2, backoff_base=0.01),
        "on_request_complete": events.append,
    }
    async with AsyncMedplumClient(server_url, **{**settings, **options}) as client:
        return await client.read_resource("Patient", PID)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(CORRUPT, id="corrupt-gzip"),
        pytest.param(b'{"resourceType": "OperationOutcome"}', id="not-gzip"),
    ],
)
async def test_a_401_whose_body_cannot_be_decoded_still_refreshes_the_token_once(
    body: bytes,
) -> None:
    events: list[RequestEvent] = []
    with raw_server(sequence(TOKEN, gzipped(401, body), TOKEN, PATIENT)) as server:
        patient = await read_patient(
            server.url, events, access_token=None, client_id="cid", client_secret="secret"
        )
        assert server.request_lines == [
            "POST /oauth2/token HTTP/1.1",
            f"GET /fhir/R4/Patient/{PID} HTTP/1.1",
            "POST /oauth2/token HTTP/1.1",
            f"GET /fhir/R4/Patient/{PID} HTTP/1.1",
        ]
    assert patient["id"] == PID
    call = next(e for e in events if e.resource_type == "Patient")
    assert [(a.status_code, a.exception) for a in call.attempts] == [(401, None), (200, None)]
    assert call.outcome == "success"


@pytest.mark.parametrize("status", [503, 429])
async def test_a_503_or_429_whose_body_cannot_be_decoded_is_retried(
    sleeps: list[float], status: int
) -> None:
    events: list[RequestEvent] = []
    with raw_server(sequence(gzipped(status, CORRUPT), PATIENT)) as server:
        patient = await read_patient(server.url, events)
        assert len(server.request_lines) == 2
    assert patient["id"] == PID and len(sleeps) == 1
    (event,) = events
    assert [(a.status_code, a.exception) for a in event.attempts] == [(status, None), (200, None)]


async def test_a_429_to_a_create_whose_body_cannot_be_decoded_is_retried(
    sleeps: list[float],
) -> None:
    created = answer(201, b'{"resourceType": "Patient", "id": "p1"}')
    with raw_server(sequence(gzipped(429, CORRUPT), created)) as server:
        async with AsyncMedplumClient(
            server.url, access_token="t", retry=RetryPolicy(max_attempts=2)
        ) as client:
            assert (await client.create_resource({"resourceType": "Patient"}))["id"] == "p1"
        assert len(server.request_lines) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, NotFoundError), (400, BadRequestError), (500, ServerError), (429, RateLimitError)],
)
@pytest.mark.parametrize(
    ("body", "cause", "why"),
    [
        pytest.param(CORRUPT, httpx.DecodingError, UNDECODABLE, id="corrupt-gzip"),
        pytest.param(None, DecompressionBombError, REFUSED, id="gzip-bomb"),
    ],
)
async def test_a_final_error_whose_body_cannot_be_decoded_is_the_statuss_typed_error(
    sleeps: list[float],
    status: int,
    error: type[OperationOutcomeError],
    body: bytes | None,
    cause: type[Exception],
    why: str,
) -> None:
    events: list[RequestEvent] = []
    behaviour = gzipped(status, gzip_bomb() if body is None else body)
    with raw_server(behaviour) as server:
        with pytest.raises(error) as info:
            await read_patient(server.url, events, retry=RetryPolicy(max_attempts=1))
        assert len(server.request_lines) == 1
    exc = info.value
    assert type(exc) is error and exc.status_code == status
    assert exc.outcome is None
    # A 429 also says which limit is spent and why it was not waited for (nothing is known of
    # it here: no RateLimit header).
    hint = (
        "; a limit of the server's is spent; still refused after 1 attempt "
        "(RetryPolicy.max_attempts=1): send it again after the reset, or slow down"
        if status == 429
        else ""
    )
    assert str(exc).startswith(f"HTTP {status} ")
    assert str(exc).endswith(f"from {WHERE}{hint}; {why}")
    assert "secret-token" not in str(exc) and "\ufffd" not in str(exc)
    assert isinstance(exc.__cause__, cause)
    assert "authorization" not in exc.__cause__.request.headers  # type: ignore[attr-defined]
    assert exc.response is not None and exc.response.is_closed
    assert "authorization" not in exc.response.request.headers
    (attempt,) = events[0].attempts
    assert attempt.status_code == status and attempt.exception is exc
    assert events[0].final_exception is exc


async def test_a_2xx_whose_body_cannot_be_decoded_is_still_a_network_error() -> None:
    events: list[RequestEvent] = []
    with raw_server(gzipped(200, CORRUPT)) as server:
        with pytest.raises(NetworkError) as info:
            await read_patient(server.url, events)
        assert len(server.request_lines) == 1  # the server answered: not retried
    assert str(info.value) == (
        f"{WHERE} failed: DecodingError after 1 attempt(s); the server answered, but " + UNDECODABLE
    )
    (attempt,) = events[0].attempts
    assert attempt.status_code is None and isinstance(attempt.exception, httpx.DecodingError)


async def test_a_redirect_whose_body_cannot_be_decoded_is_its_redirect_error_saying_so() -> None:
    # A 3xx is never followed and never read as a result: its own error, which (as every
    # error status) says why exc.response has no body and chains the DecodingError.
    events: list[RequestEvent] = []
    moved = gzipped(302, CORRUPT, f"Location: /fhir/R4/Patient/{PID}/moved")
    with raw_server(moved) as server:
        with pytest.raises(MedplumError) as info:
            await read_patient(server.url, events)
        assert len(server.request_lines) == 1
    exc = info.value
    assert type(exc) is MedplumError and exc.status_code == 302
    assert str(exc) == (
        f"{WHERE} answered HTTP 302 (a redirect); the SDK does not follow redirects: call the "
        f"target URL yourself; {UNDECODABLE}"
    )
    assert isinstance(exc.__cause__, httpx.DecodingError)
    assert "authorization" not in exc.__cause__.request.headers
    assert exc.response is not None and exc.response.is_closed
    (attempt,) = events[0].attempts
    assert attempt.status_code == 302 and attempt.exception is exc


async def delete_patient(server_url: str, events: list[RequestEvent]) -> None:
    retry = RetryPolicy(max_attempts=2, backoff_base=0.01)
    async with AsyncMedplumClient(
        server_url, access_token="t", retry=retry, on_request_complete=events.append
    ) as client:
        await client.delete_resource("Patient", PID)


async def test_a_replayed_deletes_410_whose_body_cannot_be_decoded_is_a_network_error(
    sleeps: list[float],
) -> None:
    # The replayed DELETE's 410 is the call's answer (the low-level delete returns its body),
    # so, as a 2xx, its undecodable body is lost data; possibly_committed says to re-read.
    events: list[RequestEvent] = []
    with raw_server(sequence(answer(503), gzipped(410, CORRUPT))) as server:
        with pytest.raises(NetworkError) as info:
            await delete_patient(server.url, events)
        assert len(server.request_lines) == 2
    assert info.value.possibly_committed
    assert str(info.value) == (
        "DELETE /fhir/R4/Patient/{id} failed: DecodingError after 2 attempt(s); the server "
        "answered, but " + UNDECODABLE
    )
    assert [a.status_code for a in events[0].attempts] == [503, None]


async def low_level(server_url: str, method: str, path: str) -> httpx.Response:
    async with AsyncBaseClient(server_url, access_token="t", timeout=10.0) as client:
        return await client._request(method, path)


def no_body(status: int, *headers: str) -> Behaviour:
    """An answer without a body, whatever its headers say (a HEAD's Content-Length)."""
    wire = "\r\n".join([f"HTTP/1.1 {status} Status", *headers]) + "\r\n\r\n"

    def behaviour(conn: Any, line: str) -> bool:
        conn.sendall(wire.encode())
        return False

    return behaviour


@pytest.mark.parametrize(
    ("method", "status", "headers"),
    [
        ("GET", 304, ["Content-Encoding: gzip"]),
        ("GET", 204, ["Content-Encoding: gzip", "Content-Length: 0"]),
        ("DELETE", 200, ["Content-Encoding: deflate, gzip", "Content-Length: 0"]),
        ("HEAD", 200, ["Content-Encoding: gzip", "Content-Length: 5000"]),
    ],
)
async def test_an_answer_without_a_body_but_with_a_content_encoding_is_read_empty(
    method: str, status: int, headers: list[str]
) -> None:
    with raw_server(no_body(status, *headers)) as server:
        response = await low_level(server.url, method, f"Patient/{PID}")
    assert response.status_code == status and response.content == b""


async def test_a_gzip_bomb_is_refused_early_and_not_retried() -> None:
    """400 MiB of zeros, about 400 KB of gzip: refused once 64 MiB are decoded, with memory
    bounded by that, not by the bomb (and, a 2xx whose data is lost, not sent again)."""
    bomb = gzip_bomb()
    events: list[RequestEvent] = []
    with raw_server(gzipped(200, bomb)) as server:
        tracemalloc.start()
        try:
            with pytest.raises(NetworkError) as info:
                await read_patient(server.url, events)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(server.request_lines) == 1
    assert str(info.value) == (
        f"{WHERE} failed: DecompressionBombError after 1 attempt(s); the server answered, but "
        + REFUSED
    )
    assert info.value.possibly_committed
    refusal = info.value.__cause__
    assert isinstance(refusal, DecompressionBombError)
    assert isinstance(refusal, httpx.DecodingError)  # what callers already tell apart
    # Stopped just past the floor: a few MiB of the 400 decoded, a fifth of the wire bytes read.
    assert MIN_REFUSED_SIZE < refusal.decoded_bytes <= MIN_REFUSED_SIZE + 8 * 2**20
    assert refusal.compressed_bytes < len(bomb) // 5
    assert peak < 200 * 2**20  # the buffer (64 MiB, grown by copies); not the 400 MiB
    (attempt,) = events[0].attempts
    assert attempt.status_code is None and attempt.exception is refusal


async def test_a_bomb_on_a_503_is_retried_as_the_status_says() -> None:
    events: list[RequestEvent] = []
    with raw_server(sequence(gzipped(503, gzip_bomb()), PATIENT)) as server:
        patient = await read_patient(server.url, events)
        assert len(server.request_lines) == 2
    assert patient["id"] == PID
    assert [a.status_code for a in events[0].attempts] == [503, 200]


async def low_level_get(server_url: str, path: str) -> httpx.Response:
    return await low_level(server_url, "GET", path)


@pytest.mark.parametrize(
    ("varied", "level"),
    [
        pytest.param(True, 6, id="varied-7x"),  # realistic: every id different
        pytest.param(False, 9, id="repeated-200x"),  # one entry, gzip -9: the most repetitive
    ],
)
async def test_a_large_compressed_searchset_is_read_whole(varied: bool, level: int) -> None:
    body = searchset_json(110_000, varied=varied)
    assert len(body) > MIN_REFUSED_SIZE  # past the floor: the ratio is checked
    wire = gzip.compress(body, level)
    with raw_server(gzipped(200, wire)) as server:
        response = await low_level_get(server.url, "Patient")
    assert response.content == body


async def test_a_large_uncompressed_body_is_read_whole() -> None:
    body = bytes(200 * 2**20)  # zeros, as a bomb decodes to, but sent as they are
    with raw_server(answer(200, body, "Content-Type: application/octet-stream")) as server:
        response = await low_level_get(server.url, "Binary/b1")
    assert len(response.content) == len(body) and not any(response.content[::4096])


# --- a coding httpx cannot decode: refused, never handed over as the body --------------------

# What Medplum's server sends a client that accepts only br ("hello" in brotli); without the
# brotli package httpx would hand these bytes over as the body.
BROTLI_HELLO = b"\x0b\x02\x80hello\x03"
NO_BROTLI_UNASKED = (
    "its body is encoded with br, which httpx cannot decode here without the brotli package: "
    "install it (the server sent it unasked: the request's Accept-Encoding is 'gzip, deflate')"
)
NO_BROTLI_ASKED = (
    "its body is encoded with br, which httpx cannot decode here without the brotli package: "
    "install it, or do not ask for br (the Accept-Encoding of your http_client, or of headers=)"
)


@pytest.fixture
def no_brotli(monkeypatch: pytest.MonkeyPatch) -> None:
    """As without the brotli package, whether or not it is installed."""
    monkeypatch.delitem(SUPPORTED_DECODERS, "br", raising=False)


def brotli_answer(status: int, content_type: str = "application/fhir+json") -> Behaviour:
    return answer(status, BROTLI_HELLO, "Content-Encoding: br", f"Content-Type: {content_type}")


@pytest.mark.usefixtures("no_brotli")
async def test_a_2xx_in_a_coding_httpx_cannot_decode_is_a_network_error_naming_it() -> None:
    events: list[RequestEvent] = []
    with raw_server(brotli_answer(200)) as server:
        with pytest.raises(NetworkError) as info:
            await read_patient(server.url, events)
        assert len(server.request_lines) == 1  # the server answered: not retried
    assert str(info.value) == (
        f"{WHERE} failed: UnsupportedEncodingError after 1 attempt(s); the server answered, "
        "but " + NO_BROTLI_UNASKED
    )
    cause = info.value.__cause__
    assert isinstance(cause, UnsupportedEncodingError) and isinstance(cause, httpx.DecodingError)
    assert (cause.encoding, cause.package) == ("br", "brotli")
    (attempt,) = events[0].attempts
    assert attempt.status_code is None and attempt.exception is cause


@pytest.mark.usefixtures("no_brotli")
async def test_a_coding_asked_for_in_headers_is_named_as_asked_for() -> None:
    """The SDK's pool asks for gzip and deflate: "do not ask for br" is said only when the
    request did ask for it, here in headers= (the default headers of a caller's http_client
    land in the same request header)."""
    with raw_server(brotli_answer(200)) as server:
        client = AsyncMedplumClient(server.url, access_token="t")
        try:
            with pytest.raises(NetworkError) as info:
                await client.read_resource("Patient", PID, headers={"Accept-Encoding": "br"})
        finally:
            await client.aclose()
    assert str(info.value).endswith("the server answered, but " + NO_BROTLI_ASKED)


@pytest.mark.usefixtures("no_brotli")
async def test_a_binary_download_in_a_coding_httpx_cannot_decode_is_not_returned_as_the_file() -> (
    None
):
    # httpx alone returns the brotli bytes as the file's content, without a word.
    with raw_server(brotli_answer(200, "text/plain")) as server:
        pool = httpx.AsyncClient(headers={"Accept-Encoding": "br"})
        client = AsyncMedplumClient(server.url, access_token="t", http_client=pool)
        try:
            assert (await pool.get(server.url + "Binary/b1")).content == BROTLI_HELLO
            with pytest.raises(NetworkError, match="encoded with br") as info:
                await client.download_binary("b1")
        finally:
            await client.aclose()
            await pool.aclose()
    assert isinstance(info.value.__cause__, UnsupportedEncodingError)


@pytest.mark.usefixtures("no_brotli")
async def test_an_empty_body_in_a_coding_httpx_cannot_decode_is_empty() -> None:
    created = answer(
        201, b"", "Content-Encoding: br", "Location: Patient/p1/_history/1", 'ETag: W/"1"'
    )
    with raw_server(created) as server:
        async with AsyncMedplumClient(server.url, access_token="t") as client:
            written = await client.create_resource({"resourceType": "Patient"})
        assert len(server.request_lines) == 1
    assert written["id"] == "p1"


@pytest.mark.usefixtures("no_brotli")
async def test_an_error_in_a_coding_httpx_cannot_decode_is_the_statuss_error_saying_so() -> None:
    events: list[RequestEvent] = []
    with raw_server(brotli_answer(404)) as server, pytest.raises(NotFoundError) as info:
        await read_patient(server.url, events)
    exc = info.value
    assert exc.outcome is None and str(exc).endswith(f"from {WHERE}; {NO_BROTLI_UNASKED}")
    assert isinstance(exc.__cause__, UnsupportedEncodingError)


# --- the token request reads its answer the same way ---------------------------------------

CREDENTIALS: dict[str, Any] = {"access_token": None, "client_id": "cid", "client_secret": "s3cr3t"}


async def test_a_token_answer_that_is_a_gzip_bomb_is_refused_not_read_whole() -> None:
    events: list[RequestEvent] = []
    with raw_server(gzipped(200, gzip_bomb(), "Content-Type: application/json")) as server:
        with pytest.raises(AuthenticationError) as info:
            await read_patient(server.url, events, **CREDENTIALS)
        assert server.request_lines == ["POST /oauth2/token HTTP/1.1"]  # not retried
        token_url = server.url + "oauth2/token"
    assert str(info.value) == (
        f"client-credentials token request to {token_url} failed: DecompressionBombError; the "
        "server answered, but " + REFUSED
    )
    refusal = info.value.__cause__
    assert isinstance(refusal, DecompressionBombError)
    assert refusal.decoded_bytes <= MIN_REFUSED_SIZE + 8 * 2**20
    assert refusal.request.content == b""  # the form with the client secret is not kept
    (attempt,) = events[0].attempts
    assert attempt.status_code is None and attempt.exception is refusal


async def test_a_503_token_answer_whose_body_cannot_be_decoded_is_retried(
    sleeps: list[float],
) -> None:
    events: list[RequestEvent] = []
    with raw_server(sequence(gzipped(503, CORRUPT), TOKEN, PATIENT)) as server:
        patient = await read_patient(server.url, events, **CREDENTIALS)
        assert [line.split()[1] for line in server.request_lines] == [
            "/oauth2/token",
            "/oauth2/token",
            f"/fhir/R4/Patient/{PID}",
        ]
    assert patient["id"] == PID and len(sleeps) == 1
    assert [(a.status_code, a.exception) for a in events[0].attempts] == [(503, None), (200, None)]


async def test_a_401_token_answer_whose_body_cannot_be_decoded_is_its_authentication_error() -> (
    None
):
    events: list[RequestEvent] = []
    with raw_server(gzipped(401, CORRUPT)) as server:
        with pytest.raises(AuthenticationError) as info:
            await read_patient(server.url, events, **CREDENTIALS)
        assert server.request_lines == ["POST /oauth2/token HTTP/1.1"]
        token_url = server.url + "oauth2/token"
    assert str(info.value) == (
        f"client-credentials token request to {token_url} failed: HTTP 401; {UNDECODABLE}; "
        "check client_id and client_secret"
    )
    assert info.value.status_code == 401 and info.value.outcome is None
    assert isinstance(info.value.__cause__, httpx.DecodingError)
    assert "s3cr3t" not in repr(info.value.__cause__.request.content)  # type: ignore[attr-defined]
    (attempt,) = events[0].attempts
    assert attempt.status_code == 401 and attempt.exception is info.value


@pytest.mark.usefixtures("no_brotli")
async def test_a_token_answer_in_a_coding_httpx_cannot_decode_is_refused() -> None:
    events: list[RequestEvent] = []
    with raw_server(brotli_answer(200, "application/json")) as server:
        with pytest.raises(AuthenticationError) as info:
            await read_patient(server.url, events, **CREDENTIALS)
        token_url = server.url + "oauth2/token"
    assert str(info.value) == (
        f"client-credentials token request to {token_url} failed: UnsupportedEncodingError; "
        "the server answered, but " + NO_BROTLI_UNASKED
    )
    assert isinstance(info.value.__cause__, UnsupportedEncodingError)

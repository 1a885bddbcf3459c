"""A JSON object that gives a key twice (``{"gender": "male", "gender": "female"}``), from the
server, through the public client: every parser keeps one value and drops the other without a
word, so every reader of server JSON refuses it (``DuplicateKeyError``, naming the key): an
unreadable 2xx answer, a token answer that is no token, an error answer whose body is not
read (its status error is raised all the same)."""

from __future__ import annotations

import pickle
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
    NotFoundError,
    OperationOutcomeError,
    RetryPolicy,
    ServerError,
)
from pymedplum._serialization import DuplicateKeyError
from pymedplum.fhir import Observation, Patient

pytestmark = pytest.mark.anyio  # async-only

BASE = "https://medplum.test/"
Call = Callable[[AsyncMedplumClient], Any]  # a coroutine function (a plain one in the sync twin)

PATIENT = b'{"resourceType":"Patient","id":"p1","gender":"male","gender":"female"}'
# The key given twice deep inside: an entry's resource, then its period.
OBSERVATION = (
    b'{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"t"},'
    b'"effectivePeriod":{"start":"2020-01-01","start":"2021-01-01"},'
    b'"valueQuantity":{"value":72.50}}'
)
SEARCHSET = (
    b'{"resourceType":"Bundle","type":"searchset","total":1,"entry":[{"fullUrl":"'
    + BASE.encode()
    + b'fhir/R4/Observation/o1","resource":'
    + OBSERVATION
    + b',"search":{"mode":"match"}}]}'
)
BATCH_RESPONSE = (
    b'{"resourceType":"Bundle","type":"batch-response","entry":'
    b'[{"response":{"status":"201 Created","status":"400 Bad Request"}}]}'
)
# Read by the standard library, not jiter: a lone UTF-16 surrogate, an exponent form, a -0.
SLOW_PATHS = [
    SEARCHSET.replace(b'"text":"t"', b'"text":"\\ud83d"'),
    SEARCHSET.replace(b"72.50", b"7.25e1"),
    SEARCHSET.replace(b"72.50", b"-0"),
]


def connect(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> Any:
    settings: dict[str, Any] = {"access_token": "tok", "retry": RetryPolicy(max_attempts=1)}
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AsyncMedplumClient(BASE, http_client=http, **{**settings, **options})


def answering(status: int, body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, content=body, headers={"Content-Type": "application/fhir+json"}
        )

    return handler


async def ask(status: int, body: bytes, call: Call, **options: Any) -> Any:
    client = connect(answering(status, body), **options)
    try:
        return await call(client)
    finally:
        await client.aclose()


async def read(client: AsyncMedplumClient) -> Any:
    return await client.read_resource("Patient", "p1")


async def read_model(client: AsyncMedplumClient) -> Any:
    return await client.read_resource("Patient", "p1", Patient)


async def search(client: AsyncMedplumClient) -> Any:
    return await client.search_resources("Observation")


async def search_bundle(client: AsyncMedplumClient) -> Any:
    return await client.search_resources("Observation", return_bundle=True)


async def search_typed(client: AsyncMedplumClient) -> Any:
    bundle = await client.search_resources("Observation", return_bundle=True, as_fhir=Observation)
    return list(bundle)


async def pages(client: AsyncMedplumClient) -> Any:
    return [resource async for resource in client.search_resource_pages("Observation")]


async def pages_typed(client: AsyncMedplumClient) -> Any:
    return [
        resource
        async for resource in client.search_resource_pages("Observation", as_fhir=Observation)
    ]


async def search_one(client: AsyncMedplumClient) -> Any:
    return await client.search_one("Observation")


async def batch(client: AsyncMedplumClient) -> Any:
    return await client.execute_batch({"resourceType": "Bundle", "type": "batch", "entry": []})


async def low_level_get(client: AsyncMedplumClient) -> Any:
    return await client.get("fhir/R4/Observation")


SEARCHES: list[tuple[Call, str]] = [
    (search, "GET /fhir/R4/Observation"),
    (search_bundle, "GET /fhir/R4/Observation"),
    (search_typed, "GET /fhir/R4/Observation"),
    (pages, "GET /fhir/R4/Observation"),
    (pages_typed, "GET /fhir/R4/Observation"),
    (search_one, "GET /fhir/R4/Observation"),
    (low_level_get, "GET /fhir/R4/Observation"),
]


def expect_unreadable(exc: MedplumError, key: str, where: str, body: bytes) -> None:
    """The error of an unreadable 2xx answer, naming the key and the call (not a value)."""
    assert type(exc) is MedplumError
    message = str(exc)
    assert message.startswith(
        f"expected a JSON response body, got application/fhir+json ({len(body)} bytes): "
        f'Detected duplicate key "{key}"'
    )
    assert message.endswith(f"(HTTP 200 from {where})")
    assert exc.status_code == 200
    assert exc.response is not None and exc.response.content == body
    assert "female" not in message and "2021" not in message
    cause = exc.__cause__
    assert isinstance(cause, DuplicateKeyError) and cause.key == key


@pytest.mark.parametrize("call", [read, read_model])
async def test_a_read_answer_with_a_key_twice_is_an_unreadable_answer(call: Call) -> None:
    # Read as it was, the patient was female (the last value won) and "male" was lost; the
    # typed read raised pydantic's json_invalid, as for the caller's own invalid input.
    with pytest.raises(MedplumError) as info:
        await ask(200, PATIENT, call)
    expect_unreadable(info.value, "gender", "GET /fhir/R4/Patient/{id}", PATIENT)
    assert str(info.value).startswith(
        "expected a JSON response body, got application/fhir+json (70 bytes): Detected duplicate "
        'key "gender" at line 1 column 62 (HTTP 200 from GET /fhir/R4/Patient/{id})'
    )


@pytest.mark.parametrize(("call", "where"), SEARCHES)
async def test_a_search_answer_with_a_key_twice_is_an_unreadable_answer(
    call: Call, where: str
) -> None:
    with pytest.raises(MedplumError) as info:
        await ask(200, SEARCHSET, call)
    expect_unreadable(info.value, "start", where, SEARCHSET)


@pytest.mark.parametrize("body", SLOW_PATHS)
@pytest.mark.parametrize(("call", "where"), SEARCHES)
async def test_a_key_twice_is_refused_by_the_standard_librarys_reading_too(
    call: Call, where: str, body: bytes
) -> None:
    with pytest.raises(MedplumError) as info:
        await ask(200, body, call)
    expect_unreadable(info.value, "start", where, body)


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (SEARCHSET, "72.50"),
        (SLOW_PATHS[0], "72.50"),
        (SLOW_PATHS[1], "7.25e1"),
        (SLOW_PATHS[2], "-0"),
    ],
)
async def test_the_same_answer_without_the_key_twice_is_read(body: bytes, value: str) -> None:
    # The refusal is of the key given twice, not of anything else in these answers; the
    # numbers keep their text.
    body = body.replace(b',"start":"2021-01-01"', b"")
    (resource,) = await ask(200, body, pages)
    assert resource["effectivePeriod"] == {"start": "2020-01-01"}
    if b"\\ud83d" not in body:  # a lone surrogate is no text a model's string can hold
        (model,) = await ask(200, body, pages_typed)
        assert model.effective_period.start == "2020-01-01"
        assert f'"valueQuantity":{{"value":{value}}}' in model.model_dump_json()


async def test_a_batch_response_with_a_key_twice_is_an_unreadable_answer() -> None:
    # Read as it was, the failed entry ("400") was a success ("201" dropped, or the reverse).
    with pytest.raises(MedplumError) as info:
        await ask(200, BATCH_RESPONSE, batch)
    where = "POST /fhir/R4/; the server reported success, so it was most likely applied"
    expect_unreadable(info.value, "status", where, BATCH_RESPONSE)


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, BadRequestError), (404, NotFoundError), (500, ServerError)],
)
async def test_an_error_answer_with_a_key_twice_is_still_the_statuss_typed_error(
    status: int, error: type[OperationOutcomeError]
) -> None:
    # As for an error page that is not JSON: the status's error, without an outcome (which of
    # the two issue lists it held cannot be told); the body stays on exc.response.
    body = (
        b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid"}],'
        b'"issue":[{"severity":"error","code":"not-found"}]}'
    )
    with pytest.raises(error) as info:
        await ask(status, body, read)
    assert type(info.value) is error and info.value.outcome is None
    assert str(info.value).startswith(f"HTTP {status} ")
    assert info.value.response is not None and info.value.response.content == body


async def test_a_token_answer_with_a_key_twice_is_an_authentication_error() -> None:
    # Which of the two tokens the server meant cannot be told; neither is shown.
    token_body = (
        b'{"access_token":"first-secret","token_type":"Bearer","expires_in":3600,'
        b'"access_token":"second-secret"}'
    )
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if request.url.path == "/oauth2/token":
            return httpx.Response(
                200, content=token_body, headers={"Content-Type": "application/json"}
            )
        return httpx.Response(200, json={"resourceType": "Patient", "id": "p1"})

    client = connect(handler, access_token=None, client_id="cid", client_secret="csecret")
    try:
        with pytest.raises(AuthenticationError) as info:
            await read(client)
    finally:
        await client.aclose()
    assert sent == ["/oauth2/token"]  # no call went out with either token
    message = str(info.value)
    assert message.startswith(
        "client-credentials token request to https://medplum.test/oauth2/token failed: HTTP 200 "
        'with a JSON object that gives a key twice (Detected duplicate key "access_token" at '
        "line 1 column 87)"
    )
    assert "secret" not in message.replace("client_secret", "")
    assert info.value.status_code == 200
    # Nor in the exception, which gets logged and pickled: no response (its body holds both
    # tokens), as for the other token answers that are objects but no usable token.
    assert info.value.response is None
    assert b"-secret" not in pickle.dumps(info.value)


class OwnPatient(pydantic.BaseModel):
    """A caller's own model: pydantic's model_validate_json keeps the last of two values."""

    resourceType: str
    gender: str


async def read_own_model(client: AsyncMedplumClient) -> Any:
    return await client.read_resource("Patient", "p1", OwnPatient)


async def create_own_model(client: AsyncMedplumClient) -> Any:
    return await client.create_resource({"resourceType": "Patient"}, as_fhir=OwnPatient)


@pytest.mark.parametrize(
    ("call", "where"),
    [
        (read_own_model, "GET /fhir/R4/Patient/{id}"),
        (
            create_own_model,
            "POST /fhir/R4/Patient; the server reported success, so it was most likely applied",
        ),
    ],
)
async def test_a_callers_own_model_gets_the_same_refusal(call: Call, where: str) -> None:
    with pytest.raises(MedplumError) as info:
        await ask(200, PATIENT, call)
    expect_unreadable(info.value, "gender", where, PATIENT)
    fine = PATIENT.replace(b',"gender":"female"', b"")
    assert (await ask(200, fine, call)) == OwnPatient(resourceType="Patient", gender="male")


async def test_a_typed_read_of_a_resource_that_does_not_fit_is_still_pydantics_error() -> None:
    # Only the unreadable text became MedplumError: a stored resource that does not fit the
    # model stays the located ValidationError.
    body = b'{"resourceType":"Patient","id":"p1","gender":["male"]}'
    with pytest.raises(pydantic.ValidationError):
        await ask(200, body, read_model)

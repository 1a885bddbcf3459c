"""HTTP status / OperationOutcome → exception mapping, safe strings, transport failures,
and the same-origin rule for server-handed URLs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import pymedplum
from pymedplum import (
    AuthenticationError,
    AuthorizationError,
    BadRequestError,
    ConflictError,
    GoneError,
    MedplumError,
    NetworkError,
    NotFoundError,
    OperationOutcomeError,
    PreconditionFailedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    UnsafeRedirectError,
    ValidationError,
)
from pymedplum._async._base_client import AsyncBaseClient

from ..fake import FakeMedplum, outcome
from .helpers import make_client

pytestmark = pytest.mark.anyio  # async-only

PHI = "Patient John Doe DOB 1970-01-01"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, outcome("processing", PHI), BadRequestError),
        (400, outcome("invalid", PHI), ValidationError),
        (400, outcome("required", PHI), ValidationError),
        (422, outcome("structure", PHI), ValidationError),
        (422, outcome("business-rule", PHI), OperationOutcomeError),
        (401, outcome("login", PHI), AuthenticationError),
        (403, outcome("forbidden", PHI), AuthorizationError),
        (404, outcome("not-found", PHI), NotFoundError),
        (410, outcome("deleted", PHI), GoneError),
        (412, outcome("conflict", PHI), PreconditionFailedError),
        (409, outcome("conflict", PHI), ConflictError),
        (405, outcome("not-supported", PHI), OperationOutcomeError),
        (429, outcome("throttled", PHI), RateLimitError),
        (500, outcome("exception", PHI), ServerError),
        (503, None, ServerError),
    ],
)
async def test_status_maps_to_the_exception_tree(
    fake: FakeMedplum, status: int, body: Any, expected: type[MedplumError]
) -> None:
    answer = (
        httpx.Response(status, json=body)
        if body
        else httpx.Response(status, text=f"<h1>{PHI}</h1>")
    )
    fake.queue("GET", "/fhir/R4/Patient/123", answer)
    client = make_client(
        fake, access_token="static", client_id=None, client_secret=None,
        retry=RetryPolicy(max_attempts=1),
    )  # fmt: skip
    with pytest.raises(expected) as info:
        await client._request("GET", "Patient/123")
    exc = info.value
    assert type(exc) is expected
    assert isinstance(exc, OperationOutcomeError) and isinstance(exc, MedplumError)
    assert exc.status_code == status
    assert exc.response is not None and exc.response.status_code == status
    assert exc.outcome == body
    for text in (str(exc), repr(exc), str(exc.sanitize_for_logging())):
        assert "John" not in text and "123" not in text.replace(str(status), "")
    assert str(status) in str(exc)
    assert exc.sanitize_for_logging()["type"] == expected.__name__


def test_every_exception_is_exported_at_the_top_level() -> None:
    names = [
        "MedplumError", "AuthenticationError", "AuthorizationError", "NotFoundError",
        "BadRequestError", "PreconditionFailedError", "RateLimitError", "ServerError",
        "OperationOutcomeError", "ValidationError", "NetworkError", "InsecureTransportError",
        "UnsafeRedirectError", "TokenRefreshCooldownError",
        "GoneError", "ConflictError", "BundleEntryError",  # beyond the contract's table
    ]  # fmt: skip
    for name in names:
        cls = getattr(pymedplum, name)
        assert cls is getattr(pymedplum.exceptions, name)
        assert issubclass(cls, pymedplum.MedplumError)
        assert name in pymedplum.__all__
        assert name in pymedplum.exceptions.__all__
    # FHIRBundle.raise_for_entry_errors raises it; its old home still re-exports it.
    assert pymedplum.bundle.BundleEntryError is pymedplum.exceptions.BundleEntryError


async def test_issue_codes_are_in_the_message_but_diagnostics_are_not(
    fake: FakeMedplum,
) -> None:
    fake.queue("POST", "/fhir/R4/Patient", httpx.Response(400, json=outcome("invalid", PHI)))
    client = make_client(fake)
    with pytest.raises(ValidationError) as info:
        await client._request("POST", "Patient", json={"resourceType": "Patient"})
    assert "error/invalid" in str(info.value)
    assert "POST /fhir/R4/Patient" in str(info.value)
    assert info.value.outcome is not None
    assert info.value.outcome["issue"][0]["diagnostics"] == PHI
    assert info.value.sanitize_for_logging()["issues"] == [{"severity": "error", "code": "invalid"}]


async def test_issue_expression_names_the_field_when_it_is_an_element_path(
    fake: FakeMedplum,
) -> None:
    # Medplum's validator puts the failing element in issue.expression ("Patient.birthDate"),
    # the text in details (which may echo the value). The message said only "[error/structure]".
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "structure", "details": {"text": PHI},
             "expression": ["Patient.name[0].given"]},
            {"severity": "error", "code": "value", "expression": ["Patient.birthDate"]},
            {"severity": "error", "code": "invariant", "diagnostics": PHI,
             "expression": ["Patient.name.where(family = 'Doe')"]},
            {"severity": "error", "code": "invalid", "expression": [PHI]},
        ],
    }  # fmt: skip
    fake.queue("POST", "/fhir/R4/Patient", httpx.Response(400, json=body))
    client = make_client(fake)
    with pytest.raises(ValidationError) as info:
        await client._request("POST", "Patient", json={"resourceType": "Patient"})
    assert str(info.value) == (
        "HTTP 400 Bad Request from POST /fhir/R4/Patient [error/structure at "
        "Patient.name[0].given, error/value at Patient.birthDate, error/invariant, error/invalid]"
        "; the server's explanation is in exc.outcome (not shown: it may contain PHI)"
    )
    assert info.value.sanitize_for_logging()["issues"] == [
        {"severity": "error", "code": "structure", "expression": "Patient.name[0].given"},
        {"severity": "error", "code": "value", "expression": "Patient.birthDate"},
        {"severity": "error", "code": "invariant"},
        {"severity": "error", "code": "invalid"},
    ]
    assert "Doe" not in repr(info.value) and "Doe" not in str(info.value.sanitize_for_logging())


async def test_server_error_keeps_the_raw_body_on_the_response(fake: FakeMedplum) -> None:
    fake.queue("GET", "/fhir/R4/Patient/abc", httpx.Response(500, text=PHI))
    client = make_client(fake)
    with pytest.raises(ServerError) as info:
        await client._request("GET", "Patient/abc")
    exc = info.value
    assert PHI not in str(exc) and "abc" not in str(exc)
    assert exc.response is not None and exc.response.text == PHI
    assert exc.path == "/fhir/R4/Patient/abc" and exc.path_template == "/fhir/R4/Patient/{id}"


async def test_rate_limit_error_carries_retry_after(fake: FakeMedplum) -> None:
    fake.queue("GET", "/fhir/R4/Patient/1", httpx.Response(429, headers={"Retry-After": "7"}))
    client = make_client(fake, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(RateLimitError) as info:
        await client._request("GET", "Patient/1")
    assert info.value.retry_after == 7.0


async def test_transport_failure_is_a_network_error_with_the_cause_chained(
    fake: FakeMedplum,
) -> None:
    cause = httpx.ConnectError("connection refused")
    fake.queue("GET", "/fhir/R4/Patient/1", cause)
    client = make_client(fake, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(NetworkError) as info:
        await client._request("GET", "Patient/1")
    assert info.value.__cause__ is cause
    assert info.value.possibly_committed is False
    assert "Authorization" not in cause.request.headers
    assert info.value.sanitize_for_logging()["cause"] == "ConnectError"


async def test_a_transport_failure_drops_every_credential_header() -> None:
    # The request inside the chained httpx error loses what a response error's request loses
    # (exceptions.drop_request_credentials), a caller's proxy credentials included.
    sent: list[dict[str, str]] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        sent.append(dict(request.headers))
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    client = AsyncBaseClient(
        "https://medplum.test/",
        access_token="tok",
        http_client=http,
        retry=RetryPolicy(max_attempts=1),
    )
    with pytest.raises(NetworkError) as info:
        await client._request("GET", "Patient/1", headers={"Proxy-Authorization": "Basic cHc="})
    assert sent[0]["authorization"] == "Bearer tok"
    assert sent[0]["proxy-authorization"] == "Basic cHc="
    cause = info.value.__cause__
    assert isinstance(cause, httpx.ConnectError)
    assert "Authorization" not in cause.request.headers
    assert "Proxy-Authorization" not in cause.request.headers
    await http.aclose()


async def test_a_read_failure_may_have_committed(fake: FakeMedplum) -> None:
    fake.queue("POST", "/fhir/R4/Patient", httpx.ReadError("reset"))
    client = make_client(fake)
    with pytest.raises(NetworkError) as info:
        await client._request("POST", "Patient", json={})
    assert info.value.possibly_committed is True


async def test_json_helper(fake: FakeMedplum) -> None:
    client = make_client(fake)
    response = await client._request("GET", "Patient/123")
    data = client._json(response)
    assert data == {"resourceType": "Patient", "id": "123"}
    assert client._json(httpx.Response(204)) is None
    with pytest.raises(MedplumError, match="JSON"):
        client._json(httpx.Response(200, text="<xml/>", headers={"Content-Type": "text/xml"}))


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.test/fhir/R4/Patient?page=2",
        "http://medplum.test/fhir/R4/Patient?page=2",
        "https://medplum.test:444/fhir/R4/Patient?page=2",
        "https://user:pw@medplum.test/fhir/R4/Patient",
        "//evil.test/fhir/R4/Patient",
    ],
)
async def test_server_handed_urls_must_be_same_origin(fake: FakeMedplum, url: str) -> None:
    client = make_client(fake)
    with pytest.raises(UnsafeRedirectError):
        await client._request("GET", url, base="absolute")
    assert fake.requests == [] and fake.token_requests == []


async def test_a_same_origin_absolute_url_is_followed(fake: FakeMedplum) -> None:
    client = make_client(fake)
    await client._request(
        "GET", "https://medplum.test:443/fhir/R4/Patient?_page=2", base="absolute"
    )
    assert str(fake.requests[0].url) == "https://medplum.test/fhir/R4/Patient?_page=2"


@pytest.mark.parametrize("url", ["https://evil.test/x", "//evil.test/x", "a\\b"])
async def test_relative_urls_cannot_escape_the_base(fake: FakeMedplum, url: str) -> None:
    client = make_client(fake)
    with pytest.raises(ValueError, match="relative"):
        await client._request("GET", url)


async def test_low_level_methods_use_the_api_base(fake: FakeMedplum) -> None:
    fake.queue("DELETE", "/admin/x", httpx.Response(204))
    client = make_client(fake)
    me = await client.get("auth/me", params={"a": "1"})
    assert me == {"resourceType": "Patient", "id": "123"}
    await client.post("admin/projects", {"name": "p"})
    await client.put("/admin/projects/1", {"name": "q"})
    assert await client.delete("admin/x") is None
    assert [(r.method, str(r.url)) for r in fake.requests] == [
        ("GET", "https://medplum.test/auth/me?a=1"),
        ("POST", "https://medplum.test/admin/projects"),
        ("PUT", "https://medplum.test/admin/projects/1"),
        ("DELETE", "https://medplum.test/admin/x"),
    ]
    assert fake.requests[1].headers["Content-Type"] == "application/json"
    assert fake.requests[1].content == b'{"name":"p"}'
    with pytest.raises(UnsafeRedirectError):
        await client.get("https://evil.test/auth/me")


async def test_json_and_content_together_are_rejected(fake: FakeMedplum) -> None:
    client = make_client(fake)
    with pytest.raises(TypeError, match="json"):
        await client._request("POST", "Binary", json={}, content=b"x")


async def test_caller_headers_replace_defaults_whatever_their_case(fake: FakeMedplum) -> None:
    client = make_client(fake, access_token="tok", client_id=None, client_secret=None)
    await client._request(
        "POST",
        "Patient/1/$ccda-export",
        json={},
        headers={"accept": "text/xml", "content-type": "application/json"},
    )
    sent = fake.requests[0]
    assert sent.headers.get_list("Accept") == ["text/xml"]
    assert sent.headers.get_list("Content-Type") == ["application/json"]
    assert sent.headers.get_list("Authorization") == ["Bearer tok"]


async def test_a_2xx_answer_that_is_not_json_carries_no_token(fake: FakeMedplum) -> None:
    fake.queue("GET", "/me", httpx.Response(200, text="<html>proxy login</html>"))
    client = make_client(fake)
    with pytest.raises(MedplumError, match="expected a JSON response body") as info:
        await client.get("me")
    assert info.value.response is not None
    assert "Authorization" not in info.value.response.request.headers
    assert "secret-token" not in repr(info.value.response.request.headers)


async def test_a_same_origin_url_with_userinfo_is_refused_saying_why(fake: FakeMedplum) -> None:
    client = make_client(fake)
    with pytest.raises(UnsafeRedirectError, match="userinfo"):
        await client.get("https://someone@medplum.test/admin/x")
    assert fake.requests == []


async def test_an_absolute_url_is_recognised_whatever_the_scheme_case(fake: FakeMedplum) -> None:
    client = make_client(fake)
    await client.get("HTTPS://medplum.test/admin/x")
    with pytest.raises(UnsafeRedirectError):
        await client.get("HTTPS://evil.example/admin/x")
    assert [r.url.host for r in fake.requests] == ["medplum.test"]


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        ("X-Medplum-On-Behalf-Of", "on_behalf_of="),
        ("x-medplum-on-behalf-of", "on_behalf_of="),
        ("Host", "Host"),
        ("authorization", "its own bearer token"),
    ],
)
async def test_headers_the_client_sets_itself_are_refused(
    fake: FakeMedplum, header: str, needle: str
) -> None:
    client = make_client(fake)
    with pytest.raises(ValueError, match=needle):
        await client.get("me", headers={header: "ProjectMembership/pm-1"}, on_behalf_of="")
    assert fake.requests == []


async def test_a_client_without_credentials_may_send_its_own_authorization(
    fake: FakeMedplum,
) -> None:
    client = make_client(fake, client_id=None, client_secret=None)
    await client.get("me", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert fake.requests[0].headers["Authorization"] == "Basic dXNlcjpwdw=="


async def test_params_add_to_a_query_already_in_the_path(fake: FakeMedplum) -> None:
    client = make_client(fake)
    await client.get("admin/x?a=1&a=2&empty=", params={"b": ["3", "4"], "c": True})
    assert fake.requests[0].url.params.multi_items() == [
        ("a", "1"),
        ("a", "2"),
        ("empty", ""),
        ("b", "3"),
        ("b", "4"),
        ("c", "true"),
    ]


async def test_a_model_body_warning_names_the_callers_line(fake: FakeMedplum) -> None:
    # The PHI-free re-issue of pydantic's warning (a dict appended to patient.name) pointed at
    # a line inside pymedplum: the developer could not see which call wrote the model, and the
    # default filter (once per line) showed it for the first call site only.
    from pymedplum.fhir import HumanName, Patient

    fake.queue("POST", "/fhir/R4/Patient", fake.json(201, {"resourceType": "Patient", "id": "1"}))
    patient = Patient(name=[HumanName(family="Roe")])
    assert patient.name is not None
    patient.name.append({"family": "Doe"})  # type: ignore[arg-type]
    client = make_client(fake)
    with pytest.warns(UserWarning, match="not validated") as caught:
        await client.post("Patient", json=patient)
    [warning] = caught
    assert warning.filename == __file__

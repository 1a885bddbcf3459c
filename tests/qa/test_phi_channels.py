"""PHI and secrets in the SDK's own output channels: its log records (rendered as a logging
handler renders them, traceback included), its exceptions' str / repr / traceback."""

from __future__ import annotations

import gc
import logging
import pickle
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from pymedplum import (
    AsyncMedplumClient,
    MedplumClient,
    MedplumError,
    NotFoundError,
    RetryPolicy,
)
from pymedplum.hooks import RequestEvent
from tests.qa.conftest import BASE, QA

pytestmark = pytest.mark.anyio

NAME = "Smith-PHI-4711"
BIRTHDATE = "1911-11-11"


def _rendered(caplog: pytest.LogCaptureFixture, logger: str) -> str:
    """Every record of ``logger`` as a handler writes it: message, then any traceback."""
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    return "\n".join(formatter.format(r) for r in caplog.records if r.name == logger)


async def test_a_failing_audit_hook_is_logged_without_its_message(
    qa: QA, caplog: pytest.LogCaptureFixture
) -> None:
    # An audit sink's error quotes what it refused (the path, the search): the SDK's WARNING
    # goes to the general logs, so it names the exception's type and where it was raised only.
    def audit_sink_down(event: RequestEvent) -> None:
        raise ValueError(f"sink refused {event.path}?{event.query_params}")

    async def audit_sink_down_async(event: RequestEvent) -> None:
        audit_sink_down(event)

    hook: Any = audit_sink_down_async if qa.flavour == "async" else audit_sink_down
    client = qa.client(on_request_complete=hook)
    with caplog.at_level(logging.DEBUG):
        result = await qa.call(
            client, "search_resources", "Patient", {"name": NAME, "birthdate": BIRTHDATE}
        )
    assert result["resourceType"] == "Patient"  # the call's result is unaffected
    text = _rendered(caplog, "pymedplum.hooks")
    assert "on_request_complete hook raised ValueError" in text
    assert "in audit_sink_down" in text  # where: the hook's own frame
    assert NAME not in text and BIRTHDATE not in text
    assert all(r.exc_info is None for r in caplog.records if r.name == "pymedplum.hooks")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # a stray tab from user input at the end of a low-level search
        (f"fhir/R4/Patient?name={NAME}&birthdate={BIRTHDATE}\t",
         r"'\\t' at index \d+ \(in its query\)"),
        (f"//other.test/fhir/R4/Patient?name={NAME}&birthdate={BIRTHDATE}",
         r"got '//other.test/fhir/R4/Patient' \(query not shown\)"),
    ],
)  # fmt: skip
async def test_a_refused_low_level_path_is_not_echoed_with_its_query(
    qa: QA, path: str, expected: str
) -> None:
    client = qa.client()
    with pytest.raises(ValueError, match=expected) as info:
        await qa.call(client, "get", path)
    assert NAME not in str(info.value) and BIRTHDATE not in str(info.value)
    assert qa.requests == []


async def test_nothing_logged_at_debug_carries_the_query_the_id_or_the_token(
    qa: QA, caplog: pytest.LogCaptureFixture
) -> None:
    # Every logger at DEBUG (the SDK's, httpx's, httpcore's): the client's requests go straight
    # to the transport, so httpx's own INFO line with the full URL is not written either.
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": "ISSUED-77", "expires_in": 3600})
        if request.url.path.endswith("/Patient"):
            return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})
        return httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "not-found", "diagnostics": f"no {NAME}"}]})  # fmt: skip

    qa.handler = handler
    client = qa.client(access_token=None, client_id="cid", client_secret="SECRET-88")
    with caplog.at_level(logging.DEBUG):
        await qa.call(client, "search_resources", "Patient", {"name": NAME, "birthdate": BIRTHDATE})
        with pytest.raises(NotFoundError):
            await qa.call(client, "read_resource", "Patient", "pid-4711")
    names = {r.name for r in caplog.records}
    assert {"pymedplum.auth", "httpx"} <= names  # both did log (httpx: the token request)
    text = "\n".join(logging.Formatter("%(name)s %(message)s").format(r) for r in caplog.records)
    for value in (NAME, BIRTHDATE, "pid-4711", "ISSUED-77", "SECRET-88"):
        assert value not in text


TOKEN_EXCHANGE = {"grant_type": "refresh_token", "refresh_token": "REFRESH-SEKRET-5",
                  "client_secret": "CLIENT-SEKRET-6"}  # fmt: skip


@pytest.mark.parametrize("answer", ["400", "500", "200-html", "connect-error"])
async def test_a_request_inside_an_exception_has_no_body(qa: QA, answer: str) -> None:
    # A form posted with the low-level post (a token exchange, a password to auth/login) holds
    # secrets the SDK cannot tell from data; exceptions get pickled (task queues) and shown.
    def handler(request: httpx.Request) -> httpx.Response:
        if answer == "connect-error":
            raise httpx.ConnectError("refused", request=request)
        if answer == "200-html":
            return httpx.Response(200, text="<html>signed in</html>")
        return httpx.Response(int(answer), json={"error": "invalid_grant"})

    qa.handler = handler
    events: list[RequestEvent] = []
    client = qa.client(on_request_complete=events.append, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(MedplumError) as info:
        await qa.call(client, "post", "oauth2/token", data=TOKEN_EXCHANGE)
    assert b"REFRESH-SEKRET-5" in qa.requests[-1].content  # it was sent
    exc = info.value
    carried = [e.request if isinstance(e, httpx.RequestError) else e.response.request
               for e in (exc, exc.__cause__, *(a.exception for a in events[-1].attempts))
               if isinstance(e, (httpx.RequestError, MedplumError)) and
               (isinstance(e, httpx.RequestError) or e.response is not None)]  # fmt: skip
    assert carried
    for request in carried:
        assert request.content == b"" and request.url.path == "/oauth2/token"
        assert "authorization" not in request.headers
    for flattened in (pickle.dumps(exc), pickle.dumps(events[-1].attempts[-1].exception)):
        assert b"SEKRET" not in flattened


MRN = "MRN|4711-0815"
ENTRY = {"policy": {"reference": "AccessPolicy/ap1"}}


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "named"),
    [
        ("read_resource", ("Patient", MRN), {}, r"^resource_id .*'\|' at index 3 not allowed"),
        ("delete_resource", ("Patient", f"{NAME} {BIRTHDATE}"), {}, r"^resource_id "),
        ("export_ccda", (f"Patient/{NAME}",), {}, r"^patient_id .*pass the id alone"),
        ("set_accounts", (f"Patient/{NAME} {BIRTHDATE}", ["Organization/o1"]), {},
         r"^resource_ref .*a reference to Patient whose id has"),
        ("create_resource", ({"resourceType": "Patient"},), {"accounts": [f"{NAME} {BIRTHDATE}"]},
         r"^accounts\[0\] "),
        ("read_resource", ("Patient", "p1"), {"on_behalf_of": f"Patient/{NAME} {BIRTHDATE}"},
         r"^on_behalf_of .*a reference to Patient whose id has"),
        ("read_resource", ("Patient", "p1"), {"on_behalf_of": MRN}, r"^on_behalf_of .*'\|'"),
        ("add_project_membership_access_entry", (f"Patient/{NAME}", ENTRY),
         {"managed_policy_ids": {"ap1"}}, r"^membership_id must reference ProjectMembership"),
        ("add_project_membership_access_entry", (f"ProjectMembership/{NAME} {BIRTHDATE}",
          ENTRY),
         {"managed_policy_ids": {"ap1"}}, r"^membership_id id must be"),
    ],
)  # fmt: skip
async def test_a_refused_id_or_reference_is_described_not_repeated(
    qa: QA, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], named: str
) -> None:
    # An MRN, a name or a birth date passed where an id belongs is PHI, and messages are logged.
    client = qa.client()
    with pytest.raises(ValueError, match=named) as info:
        await qa.call(client, method, *args, **kwargs)
    for value in (NAME, BIRTHDATE, "4711"):
        assert value not in str(info.value)
    assert qa.requests == []


@pytest.mark.parametrize(
    "reference",
    [f"Patient?identifier={MRN}", f"Patient/{MRN}", f"Patient/{NAME} {BIRTHDATE}", MRN],
)
def test_parse_reference_describes_the_reference_without_repeating_it(reference: str) -> None:
    from pymedplum import build_reference, parse_reference

    with pytest.raises(ValueError, match=r"^reference") as info:
        parse_reference(reference)
    with pytest.raises(ValueError, match=r"^resource_id") as built:
        build_reference("Patient", reference.partition("/")[2] or reference)
    for message in (str(info.value), str(built.value)):
        for value in (NAME, BIRTHDATE, "4711"):
            assert value not in message


@pytest.mark.parametrize("path", ["token", "call"])
async def test_an_httpx_error_from_a_caller_pool_hook_carries_no_secret(qa: QA, path: str) -> None:
    # A caller pool with a raise_for_status() response hook: its HTTPStatusError carried the
    # request as sent, with the client secret in the token request's form, or the bearer token.
    class Answer(httpx.SyncByteStream, httpx.AsyncByteStream):
        """An answer streamed from the network: like httpcore's, it keeps the request sent."""

        def __init__(self, request: httpx.Request) -> None:
            self.request = request

        def __iter__(self) -> Iterator[bytes]:
            yield b"{}"

        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"{}"

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        qa.requests.append(request)
        status = 401 if request.url.path == "/oauth2/token" else 404
        return httpx.Response(status, stream=Answer(request))

    def raise_for_status(response: httpx.Response) -> None:
        response.raise_for_status()

    async def araise_for_status(response: httpx.Response) -> None:
        response.raise_for_status()

    transport = httpx.MockTransport(handler)
    auth: dict[str, Any] = (
        {"client_id": "cid", "client_secret": "CLIENT-SEKRET-7"}
        if path == "token"
        else {"access_token": "BEARER-SEKRET-8"}
    )
    client: Any
    if qa.flavour == "async":
        http: Any = httpx.AsyncClient(
            transport=transport, event_hooks={"response": [araise_for_status]}
        )
        client = AsyncMedplumClient(BASE, http_client=http, **auth)
    else:
        http = httpx.Client(transport=transport, event_hooks={"response": [raise_for_status]})
        client = MedplumClient(BASE, http_client=http, **auth)
    with pytest.raises(Exception) as info:
        await qa.call(client, "read_resource", "Patient", "1")
    status_error = info.value if path == "call" else info.value.__cause__
    assert isinstance(status_error, httpx.HTTPStatusError)
    # Closed unread by httpx when the hook raised: its stream no longer leads to the request.
    assert not _reaches(status_error.response.stream, qa.requests[-1])
    for request in (status_error.request, status_error.response.request):
        assert request.content == b"" and "authorization" not in request.headers
        assert request.url.path == ("/oauth2/token" if path == "token" else "/fhir/R4/Patient/1")


def _reaches(start: object, target: object, depth: int = 6) -> bool:
    """Whether ``target`` can be reached from ``start`` by references (``depth`` steps)."""
    level = [start]
    for _ in range(depth):
        level = [r for o in level for r in gc.get_referents(o) if not isinstance(r, type)]
        if any(r is target for r in level):
            return True
    return False

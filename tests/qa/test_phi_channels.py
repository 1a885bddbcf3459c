"""PHI and secrets in the SDK's own output channels: its log records (rendered as a logging
handler renders them, traceback included), its exceptions' str / repr / traceback."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from pymedplum import NotFoundError
from pymedplum.hooks import RequestEvent
from tests.qa.conftest import QA

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

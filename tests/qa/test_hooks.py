"""before_request: what the hook sees, and which of its changes are sent."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pymedplum.hooks import PreparedRequest
from tests.qa.conftest import QA

pytestmark = pytest.mark.anyio


async def test_hook_mutating_json_body_in_place_does_not_touch_callers_resource(qa: QA) -> None:
    def hook(request: PreparedRequest) -> PreparedRequest:
        request.json_body["active"] = False
        request.json_body["name"][0]["family"] = "Hooked"
        return request

    resource = {"resourceType": "Patient", "active": True, "name": [{"family": "Doe"}]}
    client = qa.client(before_request=hook)
    await qa.call(client, "create_resource", resource)
    assert resource == {"resourceType": "Patient", "active": True, "name": [{"family": "Doe"}]}
    # the returned (mutated) request is what goes on the wire
    sent = json.loads(qa.requests[-1].content)
    assert sent["active"] is False and sent["name"][0]["family"] == "Hooked"


async def test_hook_returning_none_sends_the_original_body(qa: QA) -> None:
    def hook(request: PreparedRequest) -> None:
        request.json_body["active"] = False

    resource = {"resourceType": "Patient", "active": True}
    client = qa.client(before_request=hook)
    await qa.call(client, "create_resource", resource)
    assert json.loads(qa.requests[-1].content)["active"] is True
    assert resource["active"] is True


async def test_hook_replacing_json_body_is_sent(qa: QA) -> None:
    def hook(request: PreparedRequest) -> PreparedRequest:
        return dataclasses.replace(request, json_body={**request.json_body, "gender": "other"})

    client = qa.client(before_request=hook)
    await qa.call(client, "create_resource", {"resourceType": "Patient"})
    assert json.loads(qa.requests[-1].content) == {"resourceType": "Patient", "gender": "other"}


async def test_hook_header_with_line_break_is_discarded(
    qa: QA, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(request: PreparedRequest) -> PreparedRequest:
        return dataclasses.replace(request, headers={**request.headers, "X-A": "b\r\nX-Evil: 1"})

    client = qa.client(before_request=hook)
    await qa.call(client, "read_resource", "Patient", "1")
    assert "x-a" not in qa.requests[-1].headers
    assert "discarded" in caplog.text


async def test_async_before_request_hook_is_rejected_at_construction(qa: QA) -> None:
    async def hook(request: PreparedRequest) -> None:
        return None

    with pytest.raises(TypeError, match="before_request"):
        qa.client(before_request=hook)


async def test_event_describes_the_request_the_hook_actually_sent(qa: QA) -> None:
    from pymedplum.hooks import RequestEvent

    def hook(request: PreparedRequest) -> PreparedRequest:
        return dataclasses.replace(request, url=request.url.replace("Patient/1", "Observation/2"))

    events: list[RequestEvent] = []
    client = qa.client(before_request=hook, on_request_complete=events.append)
    await qa.call(client, "read_resource", "Patient", "1")
    assert qa.requests[-1].url.path == "/fhir/R4/Observation/2"
    event = events[-1]
    assert event.path == "/fhir/R4/Observation/2"
    assert (event.resource_type, event.resource_id) == ("Observation", "2")
    assert event.path_template == "/fhir/R4/Observation/{id}"
    assert event.action == "read"


async def test_event_after_hook_changes_method(qa: QA) -> None:
    from pymedplum.hooks import RequestEvent

    def hook(request: PreparedRequest) -> PreparedRequest:
        return dataclasses.replace(request, method="GET", json_body=None)

    events: list[RequestEvent] = []
    client = qa.client(before_request=hook, on_request_complete=events.append)
    await qa.call(client, "create_resource", {"resourceType": "Patient"})
    assert qa.requests[-1].method == "GET"
    assert events[-1].method == "GET" and events[-1].action == "search"


@pytest.mark.parametrize("edit", [False, True])
async def test_hook_keeps_decimal_text_of_the_body(qa: QA, edit: bool) -> None:
    from decimal import Decimal

    def hook(request: PreparedRequest) -> PreparedRequest:
        assert request.json_body["valueQuantity"]["value"] == Decimal("72.50")
        if edit:
            request.json_body["status"] = "amended"
        return dataclasses.replace(request, headers={**request.headers, "X-Trace": "1"})

    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "weight"},
        "valueQuantity": {"value": Decimal("72.50"), "unit": "kg"},
    }
    client = qa.client(before_request=hook)
    await qa.call(client, "create_resource", body)
    sent = qa.requests[-1].content
    assert b"72.50" in sent
    assert (b'"amended"' in sent) is edit


async def test_compartment_search_is_reported_as_a_search_of_the_searched_type(qa: QA) -> None:
    from pymedplum.hooks import RequestEvent

    events: list[RequestEvent] = []
    client = qa.client(on_request_complete=events.append)
    await qa.call(client, "get", "fhir/R4/Patient/p-1/Observation", params={"code": "x"})
    event = events[-1]
    assert (event.action, event.resource_type, event.resource_id, event.operation) == (
        "search",
        "Observation",
        None,
        None,
    )
    assert event.path_template == "/fhir/R4/Patient/{id}/Observation"
    assert event.path == "/fhir/R4/Patient/p-1/Observation"  # the compartment, for the PHI log


async def test_letter_only_path_segments_are_templated_away(qa: QA) -> None:
    import httpx

    from pymedplum import NotFoundError
    from pymedplum.hooks import RequestEvent

    qa.handler = lambda request: httpx.Response(404, json={"resourceType": "OperationOutcome"})
    events: list[RequestEvent] = []
    client = qa.client(on_request_complete=events.append)
    with pytest.raises(NotFoundError) as info:
        await qa.call(client, "get", "admin/users/janedoe")
    assert events[-1].path_template == "/admin/{id}/{id}"
    assert "janedoe" not in str(events[-1].to_non_phi_dict())
    assert "janedoe" not in str(info.value)

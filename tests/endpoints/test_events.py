"""Every endpoint method emits one RequestEvent per request, with the manifest's action, and
replay-safe requests (conditional creates, terminology POSTs) are the only POSTs retried."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pymedplum._endpoints import ENDPOINTS
from pymedplum.exceptions import ServerError

from .conftest import FHIR, json_response

pytestmark = pytest.mark.anyio

MEMBERSHIP = {
    "resourceType": "ProjectMembership",
    "id": "m1",
    "meta": {"versionId": "1"},
    "access": [],
    "accessPolicy": {"reference": "AccessPolicy/base"},
}
ENTRY = {"policy": {"reference": "AccessPolicy/p"}}

# method -> (args, kwargs, expected actions, in order)
CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any], list[str | None]]] = {
    "create_resource": (({"resourceType": "Patient"},), {}, ["create"]),
    "create_resource_if_none_exist": (({"resourceType": "Patient"}, "name=x"), {}, ["create"]),
    "read_resource": (("Patient", "1"), {}, ["read"]),
    "vread_resource": (("Patient", "1", "2"), {}, ["read"]),
    "update_resource": (({"resourceType": "Patient", "id": "1"},), {}, ["update"]),
    "patch_resource": (("Patient", "1", []), {}, ["patch"]),
    "delete_resource": (("Patient", "1"), {}, ["delete"]),
    "search_resources": (("Patient",), {}, ["search"]),
    "search_one": (("Patient",), {}, ["search"]),
    "search_with_options": (("Patient",), {"count": 1}, ["search"]),
    "searchWithOptions": (("Patient",), {"count": 1}, ["search"]),
    "execute_batch": (({"resourceType": "Bundle", "type": "batch"},), {}, ["batch_or_transaction"]),
    "execute_transaction": (({"resourceType": "Bundle"},), {}, ["batch_or_transaction"]),
    "execute_graphql": (("{ a }",), {}, ["operation"]),
    "set_accounts": (("Patient/1", "Organization/o"), {}, ["operation"]),
    "merge_project_membership_access": (
        ("m1",),
        {"managed_access": [ENTRY], "managed_policy_ids": {"p"}},
        ["read", "update"],
    ),
    "add_project_membership_access_entry": (
        ("m1", ENTRY),
        {"managed_policy_ids": {"p"}},
        ["read", "update"],
    ),
    "remove_project_membership_access_entry": (
        ("m1", ENTRY),
        {"managed_policy_ids": {"p"}, "force": True},
        ["read", "update"],
    ),
    "get_async_job_status": (("j1",), {}, ["read"]),
    "wait_for_async_job": (("j1",), {}, ["read"]),
    "upload_binary": ((b"x", "text/plain"), {}, ["create"]),
    "download_binary": (("b1",), {}, ["read"]),
    "export_ccda": (("p1",), {}, ["operation"]),
    "expand_valueset": (("http://vs",), {}, ["operation"]),
    "lookup_concept": (("c", "http://s"), {}, ["operation"]),
    "translate_concept": (("c", "http://s", "http://cm"), {}, ["operation"]),
    "get": (("admin/projects/1",), {}, [None]),
    "post": (("admin/projects/1/invite", {"a": 1}), {}, [None]),
    "put": (("admin/x", {"a": 1}), {}, [None]),
    "delete": (("admin/x",), {}, [None]),
}


def universal(request: httpx.Request) -> httpx.Response:
    """An answer every endpoint accepts."""
    if request.url.path.endswith("ProjectMembership/m1"):
        return json_response(200, {**MEMBERSHIP, "meta": {"versionId": "2"}})
    body = {
        "resourceType": "AsyncJob",
        "id": "1",
        "status": "completed",
        "meta": {"versionId": "1"},
        "entry": [],
    }
    return json_response(200, body)


@pytest.mark.parametrize("method", sorted(CALLS))
async def test_each_method_emits_one_event_per_request_with_its_action(
    make: Any, method: str
) -> None:
    args, kwargs, actions = CALLS[method]
    h = make(universal)
    await h.call(method, *args, **kwargs)
    assert [e.action for e in h.events] == actions
    assert len(h.requests) == len(actions)
    assert all(e.outcome == "success" for e in h.events)


async def test_search_pages_emit_one_event_per_page(make: Any) -> None:
    h = make(universal)
    assert await h.collect("search_resource_pages", "Patient") == []
    assert [e.action for e in h.events] == ["search"]


def test_the_table_covers_every_manifest_method() -> None:
    assert set(ENDPOINTS) - {"search_resource_pages"} <= set(CALLS)


def flaky() -> Any:
    answers = [json_response(503, {}), json_response(201, {"resourceType": "Patient", "id": "1"})]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return handler


async def test_conditional_create_is_replayed_after_a_503(make: Any, no_sleep: list[float]) -> None:
    h = make(flaky())
    created = await h.call("create_resource_if_none_exist", {"resourceType": "Patient"}, "name=x")
    assert created["id"] == "1"
    assert len(h.requests) == 2
    assert len(h.events) == 1 and len(h.events[0].attempts) == 2


async def test_plain_create_is_not_replayed(make: Any, no_sleep: list[float]) -> None:
    h = make(flaky())
    with pytest.raises(ServerError):
        await h.call("create_resource", {"resourceType": "Patient"})
    assert len(h.requests) == 1


async def test_terminology_post_is_replayed(make: Any, no_sleep: list[float]) -> None:
    h = make(flaky())
    await h.call("lookup_concept", "c", coding={"system": "s", "code": "c"})
    assert [r.method for r in h.requests] == ["POST", "POST"]
    assert str(h.last.url) == FHIR + "CodeSystem/$lookup"


def test_manifest_replay_safety() -> None:
    assert ENDPOINTS["create_resource_if_none_exist"].replay_safe is True
    assert ENDPOINTS["create_resource"].replay_safe is False
    assert ENDPOINTS["upload_binary"].replay_safe is False


@pytest.mark.parametrize("method", ["get_async_job_status", "wait_for_async_job"])
async def test_a_job_polled_by_its_url_is_described_like_one_polled_by_its_id(
    make: Any, method: str
) -> None:
    # The URL a Prefer: respond-async answer hands out used to be reported as
    # /fhir/R4/job/status (its id segment dropped) with no resource_id.
    h = make(universal)
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"diagnostics": FHIR + "job/j9/status"}],
    }
    await h.call(method, outcome)
    await h.call(method, "j9")
    by_url, by_id = h.events
    assert str(h.requests[0].url) == FHIR + "job/j9/status"
    for event in (by_url, by_id):
        assert (event.action, event.resource_type, event.resource_id) == ("read", "AsyncJob", "j9")
        assert event.path_template == "/fhir/R4/job/{id}/status"


async def test_a_bulk_data_status_url_is_not_reported_as_an_async_job(make: Any) -> None:
    h = make(lambda request: json_response(200, {"output": []}))
    await h.call("wait_for_async_job", FHIR + "bulkdata/export/e1")
    (event,) = h.events
    assert event.path == "/fhir/R4/bulkdata/export/e1"
    assert event.path_template == "/fhir/R4/bulkdata/export/{id}"
    assert (event.action, event.resource_type, event.resource_id) == ("read", None, None)
    assert "e1" not in str(event.to_non_phi_dict())

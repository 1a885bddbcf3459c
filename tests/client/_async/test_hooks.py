"""before_request sanitisation and on_request_complete delivery."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import httpx
import pytest

from pymedplum import NotFoundError, ServerError
from pymedplum.hooks import PreparedRequest, RequestEvent

from ..fake import FakeMedplum, outcome
from .helpers import make_client

pytestmark = pytest.mark.anyio  # async-only


class Recorder:
    def __init__(self, answer: Any = None) -> None:
        self.seen: list[PreparedRequest] = []
        self.answer = answer

    def __call__(self, request: PreparedRequest) -> PreparedRequest | None:
        self.seen.append(request)
        return self.answer(request) if callable(self.answer) else None


async def test_before_request_sees_a_sanitized_request(fake: FakeMedplum) -> None:
    hook = Recorder()
    client = make_client(fake, before_request=hook, default_on_behalf_of="pm-1")
    await client._request(
        "POST", "Patient", json={"resourceType": "Patient"}, params={"_pretty": "true"}
    )
    (seen,) = hook.seen
    assert seen.method == "POST"
    assert seen.url == "https://medplum.test/fhir/R4/Patient?_pretty=true"
    assert seen.json_body == {"resourceType": "Patient"}
    lowered = {k.lower() for k in seen.headers}
    assert "authorization" not in lowered and "x-medplum-on-behalf-of" not in lowered
    assert seen.headers["Content-Type"] == "application/fhir+json"
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen.url = "https://elsewhere.test/"  # type: ignore[misc]
    # ... while the wire request still carries both.
    assert fake.requests[0].headers["Authorization"].startswith("Bearer ")
    assert fake.requests[0].headers["X-Medplum-On-Behalf-Of"] == "ProjectMembership/pm-1"


async def test_a_same_origin_change_is_applied(fake: FakeMedplum) -> None:
    def adjust(request: PreparedRequest) -> PreparedRequest:
        return dataclasses.replace(
            request,
            url=request.url + "&_count=5",
            headers={**request.headers, "X-Trace": "t-1"},
            json_body={"resourceType": "Patient", "active": True},
        )

    client = make_client(fake, before_request=Recorder(adjust))
    await client._request("POST", "Patient", json={"resourceType": "Patient"}, params={"a": "1"})
    sent = fake.requests[0]
    assert sent.url.params.get_list("_count") == ["5"]
    assert sent.headers["X-Trace"] == "t-1"
    assert sent.content == b'{"resourceType":"Patient","active":true}'
    assert sent.headers["Authorization"].startswith("Bearer ")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"url": "https://evil.test/fhir/R4/Patient"}, "origin"),
        ({"url": "http://medplum.test/fhir/R4/Patient"}, "origin"),
        ({"url": "https://medplum.test:8443/fhir/R4/Patient"}, "origin"),
        ({"headers": {"Authorization": "Bearer stolen"}}, "auth"),
        ({"headers": {"x-medplum-on-behalf-of": "ProjectMembership/x"}}, "auth"),
        ({"method": "DELETE"}, "method"),
    ],
)
async def test_a_violating_hook_result_is_discarded_with_a_warning(
    fake: FakeMedplum, caplog: pytest.LogCaptureFixture, change: dict[str, Any], reason: str
) -> None:
    client = make_client(fake, before_request=Recorder(lambda r: dataclasses.replace(r, **change)))
    with caplog.at_level(logging.WARNING, logger="pymedplum.hooks"):
        await client._request("GET", "Patient/123")
    sent = fake.requests[0]
    assert str(sent.url) == "https://medplum.test/fhir/R4/Patient/123"
    assert sent.method == "GET"
    assert sent.headers["Authorization"] == "Bearer secret-token-1"
    assert "X-Medplum-On-Behalf-Of" not in sent.headers
    records = [r for r in caplog.records if r.name == "pymedplum.hooks"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert reason in records[0].getMessage()


async def test_a_safe_method_change_is_allowed(fake: FakeMedplum) -> None:
    client = make_client(
        fake, before_request=Recorder(lambda r: dataclasses.replace(r, method="HEAD"))
    )
    await client._request("GET", "Patient/123")
    assert fake.requests[0].method == "HEAD"


async def test_a_hook_returning_garbage_is_discarded(
    fake: FakeMedplum, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(fake, before_request=Recorder(lambda r: {"url": "x"}))
    with caplog.at_level(logging.WARNING, logger="pymedplum.hooks"):
        await client._request("GET", "Patient/123")
    assert str(fake.requests[0].url) == "https://medplum.test/fhir/R4/Patient/123"
    assert "PreparedRequest" in caplog.records[0].getMessage()


async def test_on_request_complete_fires_once_with_every_attempt(
    fake: FakeMedplum, sleeps: list[float]
) -> None:
    events: list[RequestEvent] = []
    fake.queue(
        "GET", "/fhir/R4/Patient/123", httpx.Response(503), httpx.Response(503), fake.json(200, {})
    )
    client = make_client(fake, on_request_complete=events.append)
    await client._request("GET", "Patient/123")
    calls = [e for e in events if e.path.startswith("/fhir")]
    assert len(calls) == 1
    assert [a.status_code for a in calls[0].attempts] == [503, 503, 200]
    assert [a.attempt_number for a in calls[0].attempts] == [1, 2, 3]
    assert calls[0].final_status_code == 200 and calls[0].outcome == "success"
    assert len(sleeps) == 2


async def test_on_request_complete_fires_once_for_a_failed_call(fake: FakeMedplum) -> None:
    events: list[RequestEvent] = []
    fake.queue("GET", "/fhir/R4/Patient/gone", httpx.Response(404, json=outcome("not-found")))
    client = make_client(fake, on_request_complete=events.append)
    with pytest.raises(NotFoundError) as info:
        await client._request("GET", "Patient/gone")
    (event,) = [e for e in events if e.path.startswith("/fhir")]
    assert event.outcome == "error" and event.final_status_code == 404
    assert event.final_exception is info.value
    assert event.attempts[-1].exception is info.value


async def test_on_request_complete_fires_when_the_call_fails_before_sending(
    fake: FakeMedplum,
) -> None:
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    with pytest.raises(ValueError):
        await client._request("GET", "Patient/1", on_behalf_of="bad value!")
    (event,) = events
    assert event.attempts == [] and isinstance(event.final_exception, ValueError)
    assert event.path == "/fhir/R4/Patient/1" and event.action == "read"
    assert event.outcome == "error"


async def test_hook_exceptions_are_logged_and_swallowed(
    fake: FakeMedplum, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: RequestEvent) -> None:
        raise RuntimeError("audit sink down")

    client = make_client(fake, on_request_complete=broken)
    with caplog.at_level(logging.WARNING, logger="pymedplum.hooks"):
        response = await client._request("GET", "Patient/123")
    assert response.status_code == 200
    records = [r for r in caplog.records if r.name == "pymedplum.hooks"]
    assert len(records) == 2  # the token request's event and the call's
    assert all(r.levelno == logging.WARNING and "RuntimeError" in r.getMessage() for r in records)


# (method, url after the FHIR base, kwargs, action, resource_type, resource_id, operation,
# path_template): what an audit log records for each FHIR URL shape.
FHIR_SHAPES = [
    ("GET", "Patient/123", {}, "read", "Patient", "123", None, "/fhir/R4/Patient/{id}"),
    ("GET", "Patient", {"params": {"name": "Doe"}}, "search", "Patient", None, None,
     "/fhir/R4/Patient"),
    ("POST", "Patient/_search", {}, "search", "Patient", None, None, "/fhir/R4/Patient/_search"),
    ("POST", "Patient", {"json": {}}, "create", "Patient", None, None, "/fhir/R4/Patient"),
    ("PUT", "Patient/123", {"json": {}}, "update", "Patient", "123", None,
     "/fhir/R4/Patient/{id}"),
    ("PATCH", "Patient/123", {"json": []}, "patch", "Patient", "123", None,
     "/fhir/R4/Patient/{id}"),
    ("DELETE", "Patient/123", {}, "delete", "Patient", "123", None, "/fhir/R4/Patient/{id}"),
    # vread, instance history, type history
    ("GET", "Patient/123/_history/4", {}, "read", "Patient", "123", None,
     "/fhir/R4/Patient/{id}/_history/{id}"),
    ("GET", "Patient/123/_history", {}, "read", "Patient", "123", None,
     "/fhir/R4/Patient/{id}/_history"),
    ("GET", "Patient/_history", {}, "search", "Patient", None, None, "/fhir/R4/Patient/_history"),
    # compartment search: the searched type, never a read of the compartment's resource
    ("GET", "Patient/p-1/Observation", {"params": {"code": "x"}}, "search", "Observation",
     None, None, "/fhir/R4/Patient/{id}/Observation"),
    ("POST", "Patient/p-1/Observation/_search", {}, "search", "Observation", None, None,
     "/fhir/R4/Patient/{id}/Observation/_search"),
    ("GET", "Encounter/e-9/Condition", {}, "search", "Condition", None, None,
     "/fhir/R4/Encounter/{id}/Condition"),
    # operations: instance, type, system
    ("POST", "Patient/123/$everything", {}, "operation", "Patient", "123", "$everything",
     "/fhir/R4/Patient/{id}/$everything"),
    ("GET", "ValueSet/$expand", {}, "operation", "ValueSet", None, "$expand",
     "/fhir/R4/ValueSet/$expand"),
    ("POST", "$graphql", {"json": {}}, "operation", None, None, "$graphql", "/fhir/R4/$graphql"),
    ("POST", "", {"json": {"resourceType": "Bundle"}}, "batch_or_transaction", None, None, None,
     "/fhir/R4/"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "action", "rtype", "rid", "operation", "template"), FHIR_SHAPES
)
async def test_event_facts_are_derived_from_the_url(
    fake: FakeMedplum,
    method: str,
    url: str,
    kwargs: dict[str, Any],
    action: str,
    rtype: str | None,
    rid: str | None,
    operation: str | None,
    template: str,
) -> None:
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    await client._request(method, url, **kwargs)
    event = events[-1]
    assert (event.action, event.resource_type, event.resource_id, event.operation) == (
        action,
        rtype,
        rid,
        operation,
    )
    assert event.path_template == template


async def test_compartment_search_through_get_is_not_a_read_of_the_patient(
    fake: FakeMedplum,
) -> None:
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    await client.get("fhir/R4/Patient/p-1/Observation", params={"code": "x"})
    event = events[-1]
    assert event.path == "/fhir/R4/Patient/p-1/Observation"
    assert (event.action, event.resource_type, event.resource_id) == (
        "search",
        "Observation",
        None,
    )
    assert event.path_template == "/fhir/R4/Patient/{id}/Observation"
    assert event.query_params == {"code": ["x"]}
    phi = event.to_phi_audit_dict()
    assert (phi["action"], phi["resource_type"], phi["resource_id"]) == (
        "search",
        "Observation",
        None,
    )
    assert "p-1" not in str(event.to_non_phi_dict())


async def test_compartment_search_of_every_type(fake: FakeMedplum) -> None:
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    await client._request("GET", "Patient/p-1/*")
    event = events[-1]
    assert (event.action, event.resource_type, event.resource_id, event.operation) == (
        "search",
        None,
        None,
        None,
    )
    assert event.path == "/fhir/R4/Patient/p-1/*"
    assert event.path_template.startswith("/fhir/R4/Patient/{id}/")
    assert "p-1" not in event.path_template


async def test_compartment_search_of_every_type_keeps_the_star_in_the_template(
    fake: FakeMedplum,
) -> None:
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    await client._request("GET", "Patient/p-1/*")
    assert events[-1].path_template == "/fhir/R4/Patient/{id}/*"


async def test_event_uses_the_facts_the_endpoint_method_passes(fake: FakeMedplum) -> None:
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    await client._request(
        "GET",
        "ValueSet/$expand",
        params={"url": "http://loinc.org/vs"},
        action="operation",
        operation="$expand",
        resource_type="ValueSet",
        path_template="{resourceType}/$expand",
    )
    event = events[-1]
    assert (event.action, event.operation, event.resource_type) == (
        "operation",
        "$expand",
        "ValueSet",
    )
    assert event.path_template == "/fhir/R4/ValueSet/$expand"
    assert event.query_params == {"url": ["http://loinc.org/vs"]}


async def test_non_fhir_calls_have_no_action_and_ids_are_templated(fake: FakeMedplum) -> None:
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    await client.get("admin/projects/8f0c2b1e-1111-4c4c-9d9d-123456789abc/members")
    event = events[-1]
    assert event.action is None
    assert event.path_template == "/admin/projects/{id}/members"


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("admin/users/janedoe", "/admin/{id}/{id}"),
        ("keyvalue/v1/jane-doe", "/keyvalue/v1/{id}"),
        ("storage/b1b2/janedoe.pdf", "/storage/{id}/{id}"),
        ("auth/me", "/auth/me"),
        ("admin/projects/8f0c2b1e-1111-4c4c-9d9d-123456789abc/invite",
         "/admin/projects/{id}/invite"),
        ("fhir/R4/metadata", "/fhir/R4/metadata"),
        ("fhir/R4/lowercase/janedoe", "/fhir/R4/{id}/{id}"),
    ],
)  # fmt: skip
async def test_non_fhir_templates_keep_only_route_words(
    fake: FakeMedplum, path: str, template: str
) -> None:
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    await client.get(path)
    assert events[-1].path_template == template


async def test_non_fhir_template_keeps_the_deployment_prefix(fake: FakeMedplum) -> None:
    events: list[RequestEvent] = []
    client = make_client(
        fake,
        base_url="https://medplum.test/medplum/",
        client_id=None,
        client_secret=None,
        access_token="token-1",
        on_request_complete=events.append,
    )
    await client.get("admin/users/janedoe")
    assert events[-1].path == "/medplum/admin/users/janedoe"
    assert events[-1].path_template == "/medplum/admin/{id}/{id}"


async def test_letter_only_segment_stays_out_of_the_error_message(fake: FakeMedplum) -> None:
    fake.queue("GET", "/admin/users/janedoe", httpx.Response(404, json=outcome("not-found")))
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)
    with pytest.raises(NotFoundError) as info:
        await client.get("admin/users/janedoe")
    assert "janedoe" not in str(info.value) and "janedoe" not in repr(info.value)
    assert "janedoe" not in str(info.value.sanitize_for_logging())
    assert "janedoe" not in str(events[-1].to_non_phi_dict())


async def test_the_non_phi_dict_carries_no_identifiers(fake: FakeMedplum) -> None:
    events: list[RequestEvent] = []
    fake.queue("POST", "/fhir/R4/Patient", httpx.Response(500, text="Doe, John"))
    client = make_client(fake, on_request_complete=events.append, default_on_behalf_of="pm-secret")
    await client._request("GET", "Patient/patient-777")
    with pytest.raises(ServerError):
        await client._request("POST", "Patient", json={"name": "Doe"}, params={"name": "Doe"})
    for event in events:
        text = str(event.to_non_phi_dict())
        for secret in ("patient-777", "Doe", "pm-secret", "John"):
            assert secret not in text
    phi = events[1].to_phi_audit_dict()
    assert phi["resource_id"] == "patient-777"
    assert phi["attempts"][0]["on_behalf_of"] == "ProjectMembership/pm-secret"
    assert "query_params" not in phi
    assert events[2].to_phi_audit_dict(include_query_params=True)["query_params"] == {
        "name": ["Doe"]
    }
    shape = events[2].to_non_phi_dict()
    assert shape["attempt_count"] == 1 and shape["final_exception_type"] == "ServerError"
    assert shape["outcome"] == "error" and shape["final_status_code"] == 500

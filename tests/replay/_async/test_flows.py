"""Representative client flows replayed from real local-server responses (see ../conftest.py).

Each test's cassette is ``tests/replay/cassettes/<test name>.yaml``, shared with its sync twin.
"""

from __future__ import annotations

from typing import Any

import pytest

from pymedplum import AsyncMedplumClient, NotFoundError, PreconditionFailedError
from pymedplum.fhir import HumanName, Identifier, Patient
from pymedplum.hooks import RequestEvent

from ..conftest import ReplayTarget

pytestmark = [pytest.mark.vcr, pytest.mark.anyio]  # async-only
# sync-only: pytestmark = pytest.mark.vcr

MRN = "https://example.org/replay/mrn"


def make_client(target: ReplayTarget, events: list[RequestEvent]) -> AsyncMedplumClient:
    return AsyncMedplumClient(
        target.base_url,
        client_id=target.client_id,
        client_secret=target.client_secret,
        on_request_complete=events.append,
    )


def statuses(events: list[RequestEvent]) -> list[tuple[str | None, int | None]]:
    return [(event.action, event.final_status_code) for event in events]


async def test_token_then_create_and_read(replay_target: ReplayTarget) -> None:
    events: list[RequestEvent] = []
    async with make_client(replay_target, events) as client:
        created = await client.create_resource(
            Patient(name=[HumanName(given=["Ada"], family="Replay")]), as_fhir=Patient
        )
        assert created.id is not None
        read = await client.read_resource("Patient", created.id, as_fhir=Patient)
    assert read.id == created.id
    assert read.name is not None and read.name[0].family == "Replay"
    assert read.meta is not None and read.meta.version_id is not None
    # One token request (its own event, action None), then the two FHIR calls on that token.
    assert statuses(events) == [(None, 200), ("create", 201), ("read", 200)]
    assert events[0].path_template == "/oauth2/token"


async def test_search_follows_next_link(replay_target: ReplayTarget) -> None:
    events: list[RequestEvent] = []
    async with make_client(replay_target, events) as client:
        for given in ("One", "Two", "Three"):
            await client.create_resource(
                Patient(name=[HumanName(given=[given], family="Pager")]), as_fhir=Patient
            )
        first_page = await client.search_resources(
            "Patient", {"family": "Pager", "_count": 2}, return_bundle=True, as_fhir=Patient
        )
        everything = [
            patient
            async for patient in client.search_resource_pages(
                "Patient", {"family": "Pager", "_count": 2}, as_fhir=Patient
            )
        ]
    next_link = first_page.get_next_link()
    assert len(first_page) == 2
    assert next_link is not None and next_link.startswith(replay_target.base_url)
    given = sorted(p.name[0].given[0] for p in everything if p.name and p.name[0].given)
    assert given == ["One", "Three", "Two"]
    # search_resources: one page; search_resource_pages: the first page and its next link.
    assert [action for action, _ in statuses(events)].count("search") == 3


async def test_conditional_create_returns_existing(replay_target: ReplayTarget) -> None:
    events: list[RequestEvent] = []
    patient = Patient(
        identifier=[Identifier(system=MRN, value="cond-1")], name=[HumanName(family="Cond")]
    )
    async with make_client(replay_target, events) as client:
        first = await client.create_resource_if_none_exist(
            patient, f"identifier={MRN}|cond-1", as_fhir=Patient
        )
        second = await client.create_resource_if_none_exist(
            patient, f"?identifier={MRN}|cond-1", as_fhir=Patient
        )
    assert first.id is not None and second.id == first.id
    assert statuses(events)[1:] == [("create", 201), ("create", 200)]


async def test_batch_reports_each_entry(replay_target: ReplayTarget) -> None:
    events: list[RequestEvent] = []
    batch: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "name": [{"family": "Batch"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": "Patient/not-there"}},
        ],
    }
    async with make_client(replay_target, events) as client:
        result = await client.execute_batch(batch)
    assert result["type"] == "batch-response"
    codes = [entry["response"]["status"].split()[0] for entry in result["entry"]]
    assert codes == ["201", "404"]
    assert result["entry"][0]["resource"]["name"] == [{"family": "Batch"}]
    # A failing entry does not fail the batch call itself.
    assert statuses(events)[-1] == ("batch_or_transaction", 200)


async def test_graphql_with_variables(replay_target: ReplayTarget) -> None:
    events: list[RequestEvent] = []
    query = "query Q($family: String) { PatientList(family: $family) { id name { family } } }"
    async with make_client(replay_target, events) as client:
        created = await client.create_resource(
            Patient(name=[HumanName(family="Graph")]), as_fhir=Patient
        )
        result = await client.execute_graphql(query, variables={"family": "Graph"})
    assert result == {"data": {"PatientList": [{"id": created.id, "name": [{"family": "Graph"}]}]}}
    assert events[-1].operation == "$graphql"


async def test_missing_resource_raises_not_found(replay_target: ReplayTarget) -> None:
    events: list[RequestEvent] = []
    async with make_client(replay_target, events) as client:
        assert events == []  # authentication is lazy: nothing sent yet
        with pytest.raises(NotFoundError) as caught:
            await client.read_resource("Patient", "does-not-exist")
    assert caught.value.status_code == 404
    assert caught.value.outcome is not None
    assert caught.value.outcome["resourceType"] == "OperationOutcome"
    assert caught.value.path_template is not None and "does-not-exist" not in str(caught.value)
    assert events[-1].outcome == "error"
    assert events[-1].final_exception is caught.value


async def test_stale_if_match_raises_precondition_failed(replay_target: ReplayTarget) -> None:
    events: list[RequestEvent] = []
    async with make_client(replay_target, events) as client:
        created = await client.create_resource(
            Patient(name=[HumanName(family="Stale")]), as_fhir=Patient
        )
        created.active = True
        with pytest.raises(PreconditionFailedError) as caught:
            await client.update_resource(created, if_match='W/"stale"')
    assert caught.value.status_code == 412
    assert statuses(events)[-1] == ("update", 412)

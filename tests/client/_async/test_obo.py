"""On-Behalf-Of: precedence, normalisation, and isolation across tasks / threads / clients."""

from __future__ import annotations

import pytest

from pymedplum import NotFoundError
from pymedplum.hooks import RequestEvent

from ..concurrency import gather_tasks
from ..fake import FakeMedplum
from .helpers import make_client

pytestmark = pytest.mark.anyio  # async-only

OBO = "X-Medplum-On-Behalf-Of"


def sent_obo(fake: FakeMedplum) -> list[str | None]:
    return [r.headers.get(OBO) for r in fake.requests]


async def test_no_obo_header_by_default(fake: FakeMedplum) -> None:
    client = make_client(fake)
    await client._request("GET", "Patient/123")
    assert sent_obo(fake) == [None]


async def test_default_on_behalf_of_is_sent_and_a_bare_id_is_normalised(
    fake: FakeMedplum,
) -> None:
    client = make_client(fake, default_on_behalf_of="pm-default")
    await client._request("GET", "Patient/123")
    assert sent_obo(fake) == ["ProjectMembership/pm-default"]


async def test_precedence_call_over_context_over_default(fake: FakeMedplum) -> None:
    client = make_client(fake, default_on_behalf_of="ProjectMembership/d")
    async with client.on_behalf_of("ProjectMembership/ctx"):
        await client._request("GET", "Patient/1")
        await client._request("GET", "Patient/1", on_behalf_of="ProjectMembership/call")
        await client._request("GET", "Patient/1", on_behalf_of="")
        async with client.on_behalf_of("inner"):
            await client._request("GET", "Patient/1")
        await client._request("GET", "Patient/1")
    await client._request("GET", "Patient/1")
    assert sent_obo(fake) == [
        "ProjectMembership/ctx",
        "ProjectMembership/call",
        None,
        "ProjectMembership/inner",
        "ProjectMembership/ctx",
        "ProjectMembership/d",
    ]


async def test_empty_string_clears_the_default_for_one_call(fake: FakeMedplum) -> None:
    client = make_client(fake, default_on_behalf_of="pm-d")
    await client._request("GET", "Patient/1", on_behalf_of="")
    await client._request("GET", "Patient/1")
    assert sent_obo(fake) == [None, "ProjectMembership/pm-d"]


async def test_membership_resources_are_accepted(fake: FakeMedplum) -> None:
    client = make_client(fake)
    async with client.on_behalf_of({"resourceType": "ProjectMembership", "id": "pm-dict"}):
        await client._request("GET", "Patient/1")

    class Membership:
        resource_type = "ProjectMembership"
        id = "pm-model"

    async with client.on_behalf_of(Membership()):  # type: ignore[arg-type]
        await client._request("GET", "Patient/1")
    assert sent_obo(fake) == ["ProjectMembership/pm-dict", "ProjectMembership/pm-model"]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "Project Membership/1",
        "a/b/c",
        "pm\r\nX-Evil: 1",
        {"resourceType": "Patient", "id": "1"},
        {"resourceType": "ProjectMembership"},
    ],
)
def test_bad_memberships_raise_value_error(fake: FakeMedplum, bad: object) -> None:
    client = make_client(fake)
    with pytest.raises(ValueError, match="membership"):
        client.on_behalf_of(bad)  # type: ignore[arg-type]


async def test_bad_per_call_value_names_the_argument(fake: FakeMedplum) -> None:
    client = make_client(fake)
    with pytest.raises(ValueError, match="on_behalf_of"):
        await client._request("GET", "Patient/1", on_behalf_of="not valid!")
    assert fake.requests == []


async def test_entering_the_context_gives_back_the_client(fake: FakeMedplum) -> None:
    client = make_client(fake)
    context = client.on_behalf_of("pm-1")
    assert context.membership == "ProjectMembership/pm-1"
    async with context as entered:
        assert entered is client
        await entered._request("GET", "Patient/1")
    assert sent_obo(fake) == ["ProjectMembership/pm-1"]


async def test_the_context_is_restored_after_an_exception(fake: FakeMedplum) -> None:
    client = make_client(fake)

    async def fail_inside() -> None:
        async with client.on_behalf_of("pm-1"):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_inside()
    await client._request("GET", "Patient/1")
    assert sent_obo(fake) == [None]


async def test_concurrent_callers_never_see_each_others_obo(fake: FakeMedplum) -> None:
    events: list[RequestEvent] = []
    client = make_client(fake, on_request_complete=events.append)

    async def call(i: int) -> str | None:
        async with client.on_behalf_of(f"pm-{i}"):
            response = await client._request("GET", f"Patient/p{i}")
            await client._request("GET", f"Patient/p{i}")
        return response.request.headers.get(OBO)

    results = await gather_tasks(30, call)
    assert results == [f"ProjectMembership/pm-{i}" for i in range(30)]
    for request in fake.requests:
        patient = request.url.path.rsplit("/", 1)[1]
        assert request.headers[OBO] == f"ProjectMembership/pm-{patient[1:]}"
    for event in events:
        if event.resource_id is not None:
            assert event.attempts[0].on_behalf_of == f"ProjectMembership/pm-{event.resource_id[1:]}"


async def test_two_clients_do_not_share_the_ambient_value(fake: FakeMedplum) -> None:
    first, second = make_client(fake), make_client(fake)
    async with first.on_behalf_of("pm-first"):
        await second._request("GET", "Patient/1")
        await first._request("GET", "Patient/1")
    assert sent_obo(fake) == [None, "ProjectMembership/pm-first"]


async def test_a_404_under_on_behalf_of_names_the_membership_as_a_possible_cause(
    fake: FakeMedplum,
) -> None:
    # Medplum reads "ProjectMembership/<id>" before routing the request (oauth/utils.ts,
    # tryAddOnBehalfOf): an unknown membership answers the notFound outcome a missing resource
    # gets, so the error says so (without the membership id, like every error message).
    not_found = {
        "resourceType": "OperationOutcome",
        "id": "not-found",
        "issue": [{"severity": "error", "code": "not-found", "details": {"text": "Not found"}}],
    }
    fake.queue("GET", "/fhir/R4/Patient/1", fake.json(404, not_found), fake.json(404, not_found))
    client = make_client(fake)
    with pytest.raises(NotFoundError) as with_obo:
        await client._request("GET", "Patient/1", on_behalf_of="pm-gone")
    assert "On-Behalf-Of ProjectMembership does not exist" in str(with_obo.value)
    assert "pm-gone" not in str(with_obo.value)
    with pytest.raises(NotFoundError) as without:
        await client._request("GET", "Patient/1")
    assert "On-Behalf-Of" not in str(without.value)

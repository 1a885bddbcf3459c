"""On-Behalf-Of through the endpoint methods of both clients: which membership the lazy pages of
``search_resource_pages`` carry, the retries and the 401 replay of a page, work handed to other
tasks or threads, and values that are not a membership."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from pymedplum import AsyncMedplumClient, MedplumClient

from .conftest import BASE, FHIR, Harness, drain, json_response, next_item, searchset

pytestmark = pytest.mark.anyio

OBO = "X-Medplum-On-Behalf-Of"
ALICE = "ProjectMembership/alice"
BOB = "ProjectMembership/bob"
DEFAULT = "ProjectMembership/default"


def two_pages(request: httpx.Request) -> httpx.Response:
    if "page=2" in str(request.url):
        return json_response(200, searchset("2"))
    return json_response(200, searchset("1", next_url=FHIR + "Patient?page=2"))


def sent(h: Harness) -> list[str | None]:
    return [r.headers.get(OBO) for r in h.requests]


async def on_behalf_of(h: Harness, membership: str) -> Any:
    """Enter ``client.on_behalf_of(membership)`` the way each flavour documents (``with`` /
    ``async with``); returns the context to leave with :func:`leave`."""
    context = h.client.on_behalf_of(membership)
    if h.is_async:
        await context.__aenter__()
    else:
        context.__enter__()
    return context


async def leave(h: Harness, context: Any) -> None:
    if h.is_async:
        await context.__aexit__(None, None, None)
    else:
        context.__exit__(None, None, None)


# --- lazy pages: the membership is the one current at the call ------------------------------


async def test_a_page_fetched_after_leaving_the_block_keeps_the_calls_membership(
    make: Any,
) -> None:
    # The second page used to go out with the ambient value of the moment: none, i.e. as the
    # client application itself (a project admin), outside alice's access policy.
    h = make(two_pages)
    context = await on_behalf_of(h, "alice")
    iterator = h.iterate("search_resource_pages", "Patient")
    assert (await next_item(iterator))["id"] == "1"
    await leave(h, context)
    assert [p["id"] for p in await drain(iterator)] == ["2"]
    assert sent(h) == [ALICE, ALICE]
    assert [e.attempts[0].on_behalf_of for e in h.events] == [ALICE, ALICE]


async def test_an_iterator_made_in_the_block_and_iterated_after_it_carries_the_membership(
    make: Any,
) -> None:
    h = make(two_pages, default_on_behalf_of="default")
    context = await on_behalf_of(h, "alice")
    iterator = h.iterate("search_resource_pages", "Patient")
    await leave(h, context)
    assert h.requests == []  # still lazy
    assert [p["id"] for p in await drain(iterator)] == ["1", "2"]
    assert sent(h) == [ALICE, ALICE]


async def test_an_iterator_made_outside_a_block_does_not_take_the_blocks_membership(
    make: Any,
) -> None:
    h = make(two_pages, default_on_behalf_of="default")
    plain = h.iterate("search_resource_pages", "Patient")
    cleared = h.iterate("search_resource_pages", "Patient", on_behalf_of="")
    explicit = h.iterate("search_resource_pages", "Patient", on_behalf_of="bob")
    context = await on_behalf_of(h, "alice")
    await drain(plain)
    await drain(cleared)
    await drain(explicit)
    await leave(h, context)
    assert sent(h) == [DEFAULT, DEFAULT, None, None, BOB, BOB]


async def test_the_per_call_empty_string_clears_every_page(make: Any) -> None:
    h = make(two_pages, default_on_behalf_of="default")
    context = await on_behalf_of(h, "alice")
    iterator = h.iterate("search_resource_pages", "Patient", on_behalf_of="")
    await next_item(iterator)
    await leave(h, context)
    await drain(iterator)
    assert sent(h) == [None, None]
    assert [e.attempts[0].on_behalf_of for e in h.events] == [None, None]


async def test_a_bad_membership_for_pages_raises_at_the_call(make: Any) -> None:
    h = make(two_pages)
    with pytest.raises(ValueError, match="on_behalf_of"):
        h.iterate("search_resource_pages", "Patient", on_behalf_of="pm\r\nX-Evil: 1")
    assert h.requests == []


# --- retries and the 401 replay of a later page ------------------------------------------------


async def test_a_retried_and_replayed_page_after_the_block_keeps_the_membership(
    make: Any, no_sleep: list[float]
) -> None:
    tokens = iter(["token-1", "token-2"])
    page_two_answers = [
        json_response(429, {}, headers={"Retry-After": "1"}),
        json_response(401, {}),
        json_response(200, searchset("2")),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return json_response(200, {"access_token": next(tokens), "expires_in": 3600})
        if "page=2" in str(request.url):
            return page_two_answers.pop(0)
        return two_pages(request)

    h = make(handler, access_token=None, client_id="cid", client_secret="secret")
    context = await on_behalf_of(h, "alice")
    iterator = h.iterate("search_resource_pages", "Patient")
    await next_item(iterator)
    await leave(h, context)
    assert [p["id"] for p in await drain(iterator)] == ["2"]

    fhir = [r for r in h.requests if r.url.path != "/oauth2/token"]
    assert [r.headers.get(OBO) for r in fhir] == [ALICE] * 4
    tokens_sent = [r for r in h.requests if r.url.path == "/oauth2/token"]
    assert len(tokens_sent) == 2 and all(OBO not in r.headers for r in tokens_sent)
    pages = [e for e in h.events if e.action == "search"]
    assert len(pages) == 2  # one event per page, its retries and replay are attempts
    assert [a.status_code for a in pages[1].attempts] == [429, 401, 200]
    assert [a.on_behalf_of for a in pages[1].attempts] == [ALICE] * 3
    assert pages[1].outcome == "success"


# --- work handed to another task or thread -----------------------------------------------------


async def test_tasks_and_pool_threads_follow_the_documented_context_rules(make: Any) -> None:
    h = make(lambda request: json_response(200, {"resourceType": "Patient", "id": "1"}))
    if h.is_async:
        client = h.client
        assert isinstance(client, AsyncMedplumClient)
        outside = asyncio.create_task(client.read_resource("Patient", "1"))
        async with client.on_behalf_of("alice"):
            # A task copies the context when it is created: it keeps alice after the block.
            inside = asyncio.create_task(client.read_resource("Patient", "1"))
        await inside
        await outside
        assert sent(h) == [None, ALICE]
    else:
        sync_client = h.client
        assert isinstance(sync_client, MedplumClient)
        with ThreadPoolExecutor(max_workers=1) as pool, sync_client.on_behalf_of("alice"):
            # The documented caveat: a pool thread does not see the submitting thread's value,
            # unless the work runs in a copy of its context.
            pool.submit(sync_client.read_resource, "Patient", "1").result()
            copied = contextvars.copy_context()
            pool.submit(copied.run, sync_client.read_resource, "Patient", "1").result()
            pool.submit(sync_client.read_resource, "Patient", "1", on_behalf_of="alice").result()
        assert sent(h) == [None, ALICE, ALICE]


# --- values that are not a membership ----------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "error"), [(False, TypeError), (0, TypeError), ({}, ValueError), ([], TypeError)]
)
async def test_a_falsy_non_str_on_behalf_of_raises_instead_of_clearing(
    make: Any, bad: object, error: type[Exception]
) -> None:
    # Only "" means "none for this call"; False / 0 / {} used to drop the membership silently.
    h = make(lambda request: json_response(200, {"resourceType": "Patient", "id": "1"}))
    context = await on_behalf_of(h, "alice")
    with pytest.raises(error, match="on_behalf_of"):
        await h.call("read_resource", "Patient", "1", on_behalf_of=bad)
    with pytest.raises(error, match="on_behalf_of"):
        h.iterate("search_resource_pages", "Patient", on_behalf_of=bad)
    await leave(h, context)
    assert h.requests == []


@pytest.mark.parametrize("bad", [False, 0])
def test_a_falsy_non_str_default_on_behalf_of_raises(bad: object) -> None:
    for cls in (MedplumClient, AsyncMedplumClient):
        with pytest.raises(TypeError, match="default_on_behalf_of"):
            cls(BASE, access_token="t", default_on_behalf_of=bad)  # type: ignore[arg-type]


def test_an_empty_default_on_behalf_of_means_none() -> None:
    for cls in (MedplumClient, AsyncMedplumClient):
        assert cls(BASE, access_token="t", default_on_behalf_of="").default_on_behalf_of is None

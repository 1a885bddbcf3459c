"""On-Behalf-Of through the endpoint methods of both clients: which membership the lazy pages of
``search_resource_pages`` carry, the retries and the 401 replay of a page, work handed to other
tasks or threads, and values that are not a membership."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pymedplum import AsyncMedplumClient, MedplumClient

from .conftest import BASE, FHIR, Harness, json_response

pytestmark = pytest.mark.anyio

OBO = "X-Medplum-On-Behalf-Of"
ALICE = "ProjectMembership/alice"
BOB = "ProjectMembership/bob"
DEFAULT = "ProjectMembership/default"


def page(*ids: str, next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": i}, "search": {"mode": "match"}}
            for i in ids
        ],
    }
    if next_url is not None:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def two_pages(request: httpx.Request) -> httpx.Response:
    if "page=2" in str(request.url):
        return json_response(200, page("2"))
    return json_response(200, page("1", next_url=FHIR + "Patient?page=2"))


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

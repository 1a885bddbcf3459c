"""search_resource_pages follows next links, but never forever."""

from __future__ import annotations

import httpx
import pytest

from pymedplum import MedplumError
from tests.qa.conftest import FHIR, QA

pytestmark = pytest.mark.anyio


async def _drain(qa: QA, client: object) -> list[object]:
    out: list[object] = []
    pages = client.search_resource_pages("Patient", {"name": "x"})  # type: ignore[attr-defined]
    if qa.flavour == "async":
        async for item in pages:
            out.append(item)
    else:
        for item in pages:
            out.append(item)
    return out


@pytest.mark.parametrize(
    "link", [FHIR + "Patient?name=x", FHIR + "Patient?name=x&page=2", "Patient?name=x&page=2"]
)
async def test_a_next_link_cycle_raises_instead_of_looping(qa: QA, link: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": {"resourceType": "Patient", "id": "1"}}],
                "link": [{"relation": "next", "url": link}],
            },
        )

    qa.handler = handler
    client = qa.client()
    with pytest.raises(MedplumError, match="next link"):
        await _drain(qa, client)
    assert len(qa.requests) <= 2


async def test_distinct_pages_are_all_followed(qa: QA) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        body: dict[str, object] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": {"resourceType": "Patient", "id": str(page)}}],
        }
        if page < 3:
            body["link"] = [{"relation": "next", "url": f"{FHIR}Patient?name=x&page={page + 1}"}]
        return httpx.Response(200, json=body)

    qa.handler = handler
    client = qa.client()
    items = await _drain(qa, client)
    assert [i["id"] for i in items] == ["1", "2", "3"]  # type: ignore[index]

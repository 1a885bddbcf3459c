"""search_resource_pages follows next links, but never forever."""

from __future__ import annotations

import httpx
import pytest

from pymedplum import MedplumError
from tests.qa.conftest import FHIR, QA, page_with_next

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
    qa.handler = lambda request: page_with_next(link)
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


async def test_a_typed_match_that_does_not_fit_is_located_by_page_and_entry(qa: QA) -> None:
    # Medplum stores gender "banana" (no terminology check): typed paging over all Patients
    # failed with only "gender", no hint which of thousands of resources it was.
    from pydantic import ValidationError

    from pymedplum.fhir import Patient

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        entries: list[dict[str, object]] = [
            {
                "resource": {"resourceType": "Organization", "id": "o"},
                "search": {"mode": "include"},
            },
            {"resource": {"resourceType": "Patient", "id": "a"}, "search": {"mode": "match"}},
        ]
        if page == 2:
            entries.append({"resource": {"resourceType": "Patient", "gender": "banana"}})
        body: dict[str, object] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        if page == 1:
            body["link"] = [{"relation": "next", "url": f"{FHIR}Patient?page=2"}]
        return httpx.Response(200, json=body)

    qa.handler = handler
    client = qa.client()
    pages = client.search_resource_pages("Patient", as_fhir=Patient)
    got: list[Patient] = []
    with pytest.raises(ValidationError) as info:
        if qa.flavour == "async":
            async for item in pages:  # type: ignore[union-attr]
                got.append(item)
        else:
            for item in pages:  # type: ignore[union-attr]
                got.append(item)
    assert [p.id for p in got] == ["a", "a"]
    assert info.value.title == "Patient (page 2 of the search)"
    assert [e["loc"] for e in info.value.errors()] == [("entry", 2, "resource", "gender")]
    assert "banana" not in str(info.value)  # server data stays out of the message

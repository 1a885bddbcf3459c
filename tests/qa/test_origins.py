"""Same-origin checks on server-handed and hook-supplied URLs, including malformed ones."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from pymedplum import UnsafeRedirectError
from pymedplum.hooks import PreparedRequest
from tests.qa.conftest import FHIR, QA, TOKEN, page_with_next

pytestmark = pytest.mark.anyio

FOREIGN = [
    "https://medplum.test:8443/fhir/R4/Patient?page=2",
    "http://medplum.test/fhir/R4/Patient?page=2",
    "https://evil.example/fhir/R4/Patient?page=2",
    "https://medplum.test@evil.example/fhir/R4/Patient?page=2",
    "https://[medplum.test]/fhir/R4/Patient?page=2",
    "https://medplum.test:99999/fhir/R4/Patient",
]


@pytest.mark.parametrize("link", FOREIGN)
async def test_foreign_next_link_raises_unsafe_redirect(qa: QA, link: str) -> None:
    qa.handler = lambda request: page_with_next(link)
    client = qa.client()
    got: list[object] = []
    with pytest.raises(UnsafeRedirectError):
        if qa.flavour == "async":
            async for item in client.search_resource_pages("Patient"):  # type: ignore[union-attr]
                got.append(item)
        else:
            for item in client.search_resource_pages("Patient"):  # type: ignore[union-attr]
                got.append(item)
    assert len(got) == 1 and len(qa.requests) == 1


@pytest.mark.parametrize("url", FOREIGN)
async def test_hook_to_foreign_or_malformed_url_is_discarded(
    qa: QA, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(request: PreparedRequest) -> PreparedRequest:
        return dataclasses.replace(request, url=url)

    client = qa.client(before_request=hook)
    with caplog.at_level(logging.WARNING, logger="pymedplum.hooks"):
        await qa.call(client, "read_resource", "Patient", "1")
    assert str(qa.requests[-1].url) == FHIR + "Patient/1"
    assert qa.requests[-1].headers["authorization"] == "Bearer " + TOKEN
    assert "discarded" in caplog.text


async def test_foreign_job_url_raises(qa: QA) -> None:
    client = qa.client()
    with pytest.raises(UnsafeRedirectError):
        await qa.call(client, "get_async_job_status", "https://[medplum.test]/fhir/R4/job/1")
    assert qa.requests == []


@pytest.mark.parametrize(
    "query",
    [
        "name:exact=Smith",
        "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|123",
        "identifier=http://hospital.org/mrn|1",
        "?code:text=diabetes",
    ],
)
async def test_if_none_exist_with_search_modifiers_is_a_query(qa: QA, query: str) -> None:
    client = qa.client()
    await qa.call(client, "create_resource_if_none_exist", {"resourceType": "Patient"}, query)
    assert qa.requests[-1].headers["if-none-exist"] == query.removeprefix("?")


@pytest.mark.parametrize(
    "url", ["https://evil.example/fhir/R4/Patient?name=x", "//evil.example/Patient?name=x"]
)
async def test_if_none_exist_foreign_url_rejected(qa: QA, url: str) -> None:
    client = qa.client()
    with pytest.raises(UnsafeRedirectError):
        await qa.call(client, "create_resource_if_none_exist", {"resourceType": "Patient"}, url)
    assert qa.requests == []

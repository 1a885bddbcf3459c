"""Both clients read the server's compressed answers (tests/server: Medplum 5.0.10's
``compression`` middleware, ``br`` when accepted, else ``gzip``, for bodies of 1 kB or more).

What the server sent is read from its request log (``requests()``: the answer's headers as they
went on the wire) or from a response event hook of a caller's own ``http_client``; what the SDK
made of it from its return values. Nothing private of the SDK is looked at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from httpx._decoders import SUPPORTED_DECODERS
from sdk_clients import Api, unique

from pymedplum import NetworkError, ValidationError
from pymedplum._decoding import UnsupportedEncodingError
from pymedplum.fhir import Patient

pytestmark = pytest.mark.anyio

PATIENTS = 12  # some 6 kB of searchset


def answered(api: Api, path: str) -> dict[str, Any]:
    """The server's record of the last request to ``path``: request and answer headers."""
    (last,) = api.server.requests(path, limit=1)
    return last


async def seed(
    api: Api, count: int = PATIENTS, family: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """``count`` Patients of one family (a new one unless given): some 500 bytes each."""
    family = family or f"Gz{unique()}"
    created = [
        await api.call(
            "create_resource",
            {"resourceType": "Patient", "name": [{"family": family, "given": [f"Given{i}"]}]},
        )
        for i in range(count)
    ]
    return family, created


def large_patient(family: str) -> dict[str, Any]:
    """A Patient whose JSON is well over 1 kB, so that its read is compressed too."""
    return {
        "resourceType": "Patient",
        "name": [{"family": family, "given": [f"Given{i}" for i in range(10)]}],
        "identifier": [{"system": "urn:example:mrn", "value": f"{family}-{i}"} for i in range(20)],
    }


@pytest.fixture
async def http_pool(flavour: str) -> AsyncIterator[Callable[..., Any]]:
    """``http_pool(**httpx_kwargs)``: a caller's own httpx client of the current flavour,
    closed after the test."""
    made: list[Any] = []

    def factory(**kwargs: Any) -> Any:
        pool = httpx.AsyncClient(**kwargs) if flavour == "async" else httpx.Client(**kwargs)
        made.append(pool)
        return pool

    yield factory
    for pool in made:
        if flavour == "async":
            await pool.aclose()
        else:
            pool.close()


async def test_the_sdk_pool_asks_for_gzip_and_reads_gzipped_searches_and_reads(api: Api) -> None:
    family, created = await seed(api)
    found = await api.call("search_resources", "Patient", {"family": family}, return_bundle=True)
    last = answered(api, "/fhir/R4/Patient")
    assert last["headers"]["accept-encoding"] == "gzip, deflate"  # never br
    assert last["responseHeaders"]["content-encoding"] == "gzip"
    assert sorted(p["id"] for p in found) == sorted(p["id"] for p in created)
    assert {p["name"][0]["given"][0] for p in found} == {f"Given{i}" for i in range(PATIENTS)}

    big = await api.call("create_resource", large_patient(family))
    assert answered(api, "/fhir/R4/Patient")["responseHeaders"]["content-encoding"] == "gzip"
    read = await api.call("read_resource", "Patient", big["id"], as_fhir=Patient)
    assert answered(api, f"/fhir/R4/Patient/{big['id']}")["responseHeaders"][
        "content-encoding"
    ] == ("gzip")
    assert read.id == big["id"] and len(read.identifier or []) == 20
    assert read.name is not None and read.name[0].given == big["name"][0]["given"]


async def test_pages_of_a_search_arrive_gzipped_and_decode(api: Api) -> None:
    family, created = await seed(api)
    query = {"family": family, "_count": 4}
    found = await api.collect("search_resource_pages", "Patient", query)
    pages = [r for r in api.server.requests("/fhir/R4/Patient") if family in r["query"]]
    codings = [r["responseHeaders"].get("content-encoding") for r in pages]
    assert codings[:3] == ["gzip"] * 3  # three full pages (an empty fourth is under 1 kB)
    assert sorted(p["id"] for p in found) == sorted(p["id"] for p in created)


async def test_a_compressed_error_answer_is_its_typed_error_with_the_outcome(api: Api) -> None:
    unknown = {f"unknownElement{i}": True for i in range(20)}
    with pytest.raises(ValidationError) as caught:
        await api.call("create_resource", {"resourceType": "Patient", **unknown})
    err = caught.value
    assert err.response is not None and err.response.headers["content-encoding"] == "gzip"
    assert err.outcome is not None and len(err.outcome["issue"]) >= 20


async def test_a_binary_download_arrives_gzipped_and_is_its_bytes(api: Api) -> None:
    # Text content is piped from storage: compressed whatever its size.
    content = "naïve café, 12 °C\n".encode() * 200
    binary = await api.call("upload_binary", content, "text/plain")
    downloaded = await api.call("download_binary", binary["id"])
    assert answered(api, f"/fhir/R4/Binary/{binary['id']}")["responseHeaders"][
        "content-encoding"
    ] == ("gzip")
    assert downloaded == content


async def test_a_callers_pool_sees_the_gzip_answer_in_its_response_hook(
    make_api: Callable[..., Api], http_pool: Callable[..., Any], flavour: str
) -> None:
    seen: list[tuple[str, str | None]] = []

    def record(response: httpx.Response) -> None:
        seen.append((response.request.url.path, response.headers.get("content-encoding")))

    async def record_async(response: httpx.Response) -> None:
        record(response)

    hook = record_async if flavour == "async" else record
    api = make_api(http_client=http_pool(event_hooks={"response": [hook]}))
    family, created = await seed(api, 6)
    found = await api.call("search_resources", "Patient", {"family": family}, return_bundle=True)
    assert seen[-1] == ("/fhir/R4/Patient", "gzip")
    assert sorted(p["id"] for p in found) == sorted(p["id"] for p in created)


async def test_a_callers_pool_accepting_only_br_gets_data_or_a_clear_error(
    make_api: Callable[..., Api],
    http_pool: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Medplum answers ``br`` to a client that accepts only ``br``. Without the brotli package
    httpx cannot decode it (and would hand the compressed bytes over as the body): the SDK
    refuses such a body with a NetworkError that says why, never returns it."""
    monkeypatch.delitem(SUPPORTED_DECODERS, "br", raising=False)  # as without brotli
    api = make_api(http_client=http_pool(headers={"Accept-Encoding": "br"}))
    family, created = await seed(api, 1)  # answers under 1 kB are not compressed: read as sent
    assert "content-encoding" not in answered(api, "/fhir/R4/Patient")["responseHeaders"]
    assert created[0]["name"][0]["family"] == family
    await seed(api, PATIENTS - 1, family)

    with pytest.raises(NetworkError) as caught:
        await api.call("search_resources", "Patient", {"family": family})
    assert answered(api, "/fhir/R4/Patient")["responseHeaders"]["content-encoding"] == "br"
    err = caught.value
    assert str(err) == (
        "GET /fhir/R4/Patient failed: UnsupportedEncodingError after 1 attempt(s); the server "
        "answered, but its body is encoded with br, which httpx cannot decode here without the "
        "brotli package: install it, or do not ask for br (the Accept-Encoding of your "
        "http_client, or of headers=)"
    )
    assert isinstance(err.__cause__, UnsupportedEncodingError) and err.possibly_committed

    # A Binary download: the brotli bytes are not returned as the file.
    binary = await api.call("upload_binary", b"tiny text", "text/plain")
    with pytest.raises(NetworkError, match="encoded with br"):
        await api.call("download_binary", binary["id"])
    assert answered(api, f"/fhir/R4/Binary/{binary['id']}")["responseHeaders"][
        "content-encoding"
    ] == ("br")

    # A write whose answer is refused was applied: the error says so (possibly_committed).
    with pytest.raises(NetworkError) as written:
        await api.call("create_resource", large_patient(family))
    assert written.value.possibly_committed
    plain = make_api()  # the SDK's own pool (gzip) sees it
    again = await plain.call("search_resources", "Patient", {"family": family, "_count": 50})
    assert len(again["entry"]) == PATIENTS + 1

"""Both clients under real-world conditions: a non-JSON 200 from a proxy, a large Binary,
and the client's life cycle (closed twice, used after close, a caller's pool left open)."""

from __future__ import annotations

import httpx
import pytest

from pymedplum import AsyncMedplumClient, MedplumClient, MedplumError
from pymedplum.fhir import Patient
from tests.qa.conftest import BASE, QA

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("error::ResourceWarning")]


def html(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "text/html"}, content=b"<html>proxy</html>")


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("read_resource", ("Patient", "1")),
        ("create_resource", ({"resourceType": "Patient"},)),
        ("update_resource", ({"resourceType": "Patient", "id": "1"},)),
    ],
)
async def test_a_non_json_200_is_a_medplum_error_with_or_without_as_fhir(
    qa: QA, method: str, args: tuple[object, ...]
) -> None:
    qa.handler = html
    client = qa.client()
    for as_fhir in (None, Patient):
        with pytest.raises(MedplumError, match="expected a JSON response body") as info:
            await qa.call(client, method, *args, as_fhir=as_fhir)
        assert info.value.status_code == 200 and info.value.response is not None


async def test_a_resource_that_does_not_fit_the_model_stays_a_pydantic_error(qa: QA) -> None:
    import pydantic

    qa.handler = lambda r: httpx.Response(200, json={"resourceType": "Patient", "active": "x"})
    with pytest.raises(pydantic.ValidationError):
        await qa.call(qa.client(), "read_resource", "Patient", "1", as_fhir=Patient)


class _Chunks(httpx.AsyncByteStream, httpx.SyncByteStream):
    """A streamed body of ``size`` bytes in 1 MiB chunks (distinct objects, as a socket gives)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.closed = False

    def _chunks(self) -> list[int]:
        step = 1 << 20
        return [min(step, self.size - i) for i in range(0, self.size, step)]

    def __iter__(self):  # type: ignore[no-untyped-def]
        for n in self._chunks():
            yield bytes(n)

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        for n in self._chunks():
            yield bytes(n)

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


async def test_download_binary_of_a_large_streamed_body_is_whole_and_closed(qa: QA) -> None:
    size = 64 * 1024 * 1024 + 3
    streams: list[_Chunks] = []

    def handler(request: httpx.Request) -> httpx.Response:
        streams.append(_Chunks(size))
        return httpx.Response(200, headers={"Content-Type": "application/pdf"}, stream=streams[-1])

    qa.handler = handler
    data = await qa.call(qa.client(), "download_binary", "b1")
    assert isinstance(data, bytes) and len(data) == size  # held in memory, as documented
    assert streams[0].closed


async def test_close_twice_then_calls_raise_runtime_error(qa: QA) -> None:
    client = qa.client()
    await qa.call(client, "read_resource", "Patient", "1")
    await qa.call(client, "close")
    await qa.call(client, "close")
    for method, args in [
        ("read_resource", ("Patient", "1")),
        ("create_resource", ({"resourceType": "Patient"},)),
    ]:
        with pytest.raises(RuntimeError, match="closed"):
            await qa.call(client, method, *args)
    assert len(qa.requests) == 1


async def test_paging_resumed_after_close_raises_runtime_error(qa: QA) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": {"resourceType": "Patient", "id": "1"}}],
            "link": [{"relation": "next", "url": BASE + "fhir/R4/Patient?page=2"}],
        })  # fmt: skip

    qa.handler = handler
    client = qa.client()
    pages = client.search_resource_pages("Patient")
    if isinstance(client, AsyncMedplumClient):
        assert (await pages.__anext__())["id"] == "1"  # type: ignore[union-attr]
        await client.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await pages.__anext__()  # type: ignore[union-attr]
    else:
        assert next(pages)["id"] == "1"  # type: ignore[call-overload]
        client.close()
        with pytest.raises(RuntimeError, match="closed"):
            next(pages)  # type: ignore[call-overload]
    assert len(qa.requests) == 1


async def test_a_caller_supplied_pool_is_left_open_and_an_owned_one_closed() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={}))
    async with httpx.AsyncClient(transport=transport) as mine:
        async with AsyncMedplumClient(BASE, access_token="t", http_client=mine) as client:
            await client.read_resource("Patient", "1")
        assert not mine.is_closed
        assert (await mine.get(BASE)).status_code == 200
    with httpx.Client(transport=transport) as own:
        with MedplumClient(BASE, access_token="t", http_client=own) as sync_client:
            sync_client.read_resource("Patient", "1")
        assert not own.is_closed
    owned = MedplumClient(BASE, access_token="t")
    owned.close()
    assert owned._http.is_closed

"""search_resources, search_one, search_resource_pages, search_with_options on both clients."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from pymedplum import AsyncMedplumClient, FHIRBundle, MedplumClient
from pymedplum.exceptions import UnsafeRedirectError, ValidationError

from .conftest import FHIR, Patient, drain, json_response, next_item

pytestmark = pytest.mark.anyio


def bundle(*ids: str, next_url: str | None = None, include: tuple[str, ...] = ()) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {"resource": {"resourceType": "Patient", "id": i}, "search": {"mode": "match"}} for i in ids
    ]
    entries += [
        {"resource": {"resourceType": "Organization", "id": i}, "search": {"mode": "include"}}
        for i in include
    ]
    data: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    data["total"] = len(ids)
    if next_url is not None:
        data["link"] = [{"relation": "next", "url": next_url}]
    return data


def query_of(request: httpx.Request) -> list[tuple[str, str]]:
    return parse_qsl(request.url.query.decode(), keep_blank_values=True)


async def test_search_resources_returns_the_bundle_dict(make: Any) -> None:
    h = make(lambda request: json_response(200, bundle("1", "2")))
    result = await h.call("search_resources", "Patient", {"family": "Smith"})
    assert [e["resource"]["id"] for e in result["entry"]] == ["1", "2"]
    assert h.last.url.path == "/fhir/R4/Patient"
    assert query_of(h.last) == [("family", "Smith")]


async def test_search_query_forms(make: Any) -> None:
    h = make(lambda request: json_response(200, bundle()))
    await h.call(
        "search_resources",
        "Patient",
        {"name": ["a", "b"], "active": True, "_count": 5, "gone": None},
    )
    assert query_of(h.last) == [("name", "a"), ("name", "b"), ("active", "true"), ("_count", "5")]
    await h.call("search_resources", "Patient", [("name", "a"), ("name", "b")])
    assert query_of(h.last) == [("name", "a"), ("name", "b")]
    await h.call("search_resources", "Patient", "birthdate=ge2000-01-01&_sort=-_lastUpdated")
    assert query_of(h.last) == [("birthdate", "ge2000-01-01"), ("_sort", "-_lastUpdated")]


async def test_search_rejects_a_malformed_query(make: Any) -> None:
    h = make(lambda request: json_response(200, bundle()))
    with pytest.raises(TypeError, match="query"):
        await h.call("search_resources", "Patient", 42)
    with pytest.raises(TypeError, match=r"query\[0\] must be a \(name, value\) pair"):
        await h.call("search_resources", "Patient", [("a", "b", "c")])
    with pytest.raises(TypeError, match="search parameter 'a' values"):
        await h.call("search_resources", "Patient", {"a": object()})
    assert h.requests == []


@pytest.mark.parametrize("method", ["search_resources", "search_one", "search_with_options"])
@pytest.mark.parametrize(
    ("query", "error", "message"),
    [
        # bytes is a Sequence of ints: it was read as pairs ("... pairs, got 102").
        (
            b"family=x",
            TypeError,
            r"^query must be a mapping, a list of \(name, value\) pairs or a str, got bytes$",
        ),
        (bytearray(b"family=x"), TypeError, r"^query must be .* got bytearray$"),
        # An empty name would be sent as "?=x".
        ({"": "x"}, ValueError, r"^query: search parameter names must not be empty, got ''$"),
        ([("", "x")], ValueError, r"^query: search parameter names must not be empty"),
        ("=x&family=y", ValueError, r"^query: search parameter names must not be empty"),
        # A whitespace-only query str is one blank name: the message did not name query.
        ("  ", ValueError, r"^query: search parameter names must not be empty, got '  '$"),
        ({1: "x"}, TypeError, r"^query: search parameter names must be str, got int$"),
    ],
)
async def test_search_query_errors_name_the_query(
    make: Any, method: str, query: Any, error: type[Exception], message: str
) -> None:
    h = make(lambda request: json_response(200, bundle()))
    with pytest.raises(error, match=message):
        await h.call(method, "Patient", query)
    with pytest.raises(error, match=message):
        await drain(h.iterate("search_resource_pages", "Patient", query))
    assert h.requests == []


async def test_search_returns_a_typed_fhir_bundle(make: Any) -> None:
    h = make(lambda request: json_response(200, bundle("1", "2")))
    result = await h.call("search_resources", "Patient", None, True)
    assert isinstance(result, FHIRBundle)
    assert [p["id"] for p in result] == ["1", "2"]
    typed = await h.call(
        "search_resources", "Patient", {"family": "Smith"}, return_bundle=True, as_fhir=Patient
    )
    patients = typed.get_resources_typed(Patient)
    assert [p.id for p in patients] == ["1", "2"]
    assert all(isinstance(p, Patient) for p in typed)


async def test_search_one_sends_count_1_and_returns_the_first_match(make: Any) -> None:
    h = make(lambda request: json_response(200, bundle("7", include=("o",))))
    found = await h.call("search_one", "Patient", {"identifier": "MRN|12345", "_count": 50})
    assert found == {"resourceType": "Patient", "id": "7"}
    assert query_of(h.last) == [("identifier", "MRN|12345"), ("_count", "1")]


async def test_search_one_keeps_summary_count_last(make: Any) -> None:
    # Its _count=1 went after _summary=count, which Medplum reads as "bring one resource back".
    h = make(lambda request: json_response(200, bundle()))
    await h.call("search_one", "Patient", {"_summary": "count", "active": True})
    assert query_of(h.last) == [("active", "true"), ("_count", "1"), ("_summary", "count")]


async def test_search_one_returns_none_without_a_match(make: Any) -> None:
    h = make(lambda request: json_response(200, bundle(include=("o",))))
    assert await h.call("search_one", "Patient") is None


# --- pagination -----------------------------------------------------------------------------


def pages(second_url: str) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if "page=2" in str(request.url):
            return json_response(200, bundle("3"))
        return json_response(200, bundle("1", "2", next_url=second_url, include=("org",)))

    return handler


async def test_pages_follow_same_origin_next_links(make: Any) -> None:
    h = make(pages(FHIR + "Patient?page=2"))
    ids = [p["id"] for p in await h.collect("search_resource_pages", "Patient", {"active": True})]
    assert ids == ["1", "2", "3"]  # the _include'd Organization is not yielded
    assert [str(r.url) for r in h.requests] == [
        FHIR + "Patient?active=true",
        FHIR + "Patient?page=2",
    ]
    assert [e.action for e in h.events] == ["search", "search"]
    # Every page is labelled like the first one in the audit event.
    assert [e.path_template for e in h.events] == ["/fhir/R4/Patient", "/fhir/R4/Patient"]


async def test_pages_are_lazy(make: Any) -> None:
    h = make(pages(FHIR + "Patient?page=2"))
    iterator = h.iterate("search_resource_pages", "Patient")
    assert h.requests == []  # nothing is sent before the first item is asked for
    await next_item(iterator)
    await next_item(iterator)
    assert len(h.requests) == 1
    await next_item(iterator)
    assert len(h.requests) == 2


async def test_pages_refuse_a_cross_origin_next_link(make: Any) -> None:
    h = make(pages("https://evil.example/fhir/R4/Patient?page=2"))
    iterator = h.iterate("search_resource_pages", "Patient")
    assert (await next_item(iterator))["id"] == "1"
    assert (await next_item(iterator))["id"] == "2"
    with pytest.raises(UnsafeRedirectError):
        await next_item(iterator)
    assert len(h.requests) == 1


async def test_pages_refuse_another_port_or_scheme(make: Any) -> None:
    for url in ("https://medplum.test:8443/fhir/R4/Patient?page=2", "http://medplum.test/x?page=2"):
        h = make(pages(url))
        with pytest.raises(UnsafeRedirectError):
            await drain(h.iterate("search_resource_pages", "Patient"))


async def test_pages_resolve_a_relative_next_link(make: Any) -> None:
    h = make(pages("Patient?page=2"))
    ids = [p["id"] for p in await h.collect("search_resource_pages", "Patient")]
    assert ids == ["1", "2", "3"]
    assert str(h.requests[1].url) == FHIR + "Patient?page=2"


async def test_pages_yield_models(make: Any) -> None:
    h = make(pages(FHIR + "Patient?page=2"))
    patients = await h.collect("search_resource_pages", "Patient", None, Patient)
    assert [type(p) for p in patients] == [Patient, Patient, Patient]


async def test_pages_returns_an_iterator_on_sync_and_an_async_iterator_on_async(
    make: Any,
) -> None:
    import inspect

    h = make(pages(FHIR + "Patient?page=2"))
    iterator = h.iterate("search_resource_pages", "Patient")
    assert not inspect.isawaitable(iterator)
    if h.is_async:
        assert isinstance(h.client, AsyncMedplumClient)
        assert hasattr(iterator, "__anext__") and not hasattr(iterator, "__next__")
    else:
        assert isinstance(h.client, MedplumClient)
        assert hasattr(iterator, "__next__") and not hasattr(iterator, "__anext__")
    assert h.requests == []


# --- search_with_options --------------------------------------------------------------------


async def test_every_option_maps_to_its_parameter(make: Any) -> None:
    h = make(lambda request: json_response(200, bundle("1")))
    await h.call(
        "search_with_options",
        "Observation",
        {"patient": "Patient/123"},
        summary="true",
        elements=["id", "status"],
        total="accurate",
        at="2024-01-01T00:00:00Z",
        count=50,
        offset=100,
        sort=["-date", "code"],
        include=["Observation:patient", "Observation:performer"],
        include_iterate="Patient:organization",
        revinclude="Provenance:target",
        revinclude_iterate=["Observation:has-member"],
    )
    assert query_of(h.last) == [
        ("patient", "Patient/123"),
        ("_summary", "true"),
        ("_elements", "id,status"),
        ("_total", "accurate"),
        ("_at", "2024-01-01T00:00:00Z"),
        ("_count", "50"),
        ("_offset", "100"),
        ("_sort", "-date,code"),
        ("_include", "Observation:patient"),
        ("_include", "Observation:performer"),
        ("_include:iterate", "Patient:organization"),
        ("_revinclude", "Provenance:target"),
        ("_revinclude:iterate", "Observation:has-member"),
    ]


@pytest.mark.parametrize(
    ("at", "sent"),
    [
        # str() of a datetime has a space ("2024-01-01 00:00:00"); FHIR wants ISO 8601.
        (datetime(2024, 1, 1), "2024-01-01T00:00:00"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2024-01-02T03:04:05+00:00"),
        (date(2024, 1, 1), "2024-01-01"),
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
    ],
)
async def test_at_dates_are_sent_in_iso_format(make: Any, at: Any, sent: str) -> None:
    h = make(lambda request: json_response(200, bundle()))
    await h.call("search_with_options", "Patient", at=at)
    assert query_of(h.last) == [("_at", sent)]


async def test_a_single_str_is_one_value(make: Any) -> None:
    h = make(lambda request: json_response(200, bundle()))
    await h.call("search_with_options", "Patient", elements="name", sort="-date", include="A:b")
    assert query_of(h.last) == [("_elements", "name"), ("_sort", "-date"), ("_include", "A:b")]
    await h.call("search_with_options", "Patient", elements=("id", "name"), revinclude=("X:y",))
    assert query_of(h.last) == [("_elements", "id,name"), ("_revinclude", "X:y")]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        # Empty options were sent as "_elements=", "_sort=", "_include=".
        ({"elements": []}, ValueError, r"^elements must not be empty; pass None to leave it out$"),
        ({"sort": []}, ValueError, r"^sort must not be empty"),
        ({"include": ""}, ValueError, r"^include must be a non-empty str, got ''"),
        ({"include": []}, ValueError, r"^include must not be empty"),
        ({"include_iterate": [""]}, ValueError, r"^include_iterate\[0\] must be a non-empty str"),
        ({"revinclude": " "}, ValueError, r"^revinclude must be a non-empty str"),
        ({"revinclude_iterate": []}, ValueError, r"^revinclude_iterate must not be empty"),
        ({"elements": ""}, ValueError, r"^elements must be a non-empty str"),
        ({"at": ""}, ValueError, r"^at must be a non-empty str"),
        # ",".join() of a non-str said "sequence item 0: expected str instance, int found".
        ({"elements": [1]}, TypeError, r"^elements\[0\] must be a str, got int$"),
        ({"elements": b"id"}, TypeError, r"^elements must be a str or a list of str, got bytes$"),
        ({"sort": 5}, TypeError, r"^sort must be a str or a list of str, got int$"),
        ({"include": {"A:b": 1}}, TypeError, r"^include must be a str or a list of str, got dict$"),
        (
            {"at": 20240101},
            TypeError,
            r"^at must be an ISO date/datetime str, a date or a datetime, got int$",
        ),
        ({"count": -1}, ValueError, r"^count must be a non-negative int, got -1$"),
        ({"count": "10"}, TypeError, r"^count must be a non-negative int, got str$"),
        ({"count": True}, TypeError, r"^count must be a non-negative int, got bool$"),
        ({"offset": 1.5}, TypeError, r"^offset must be a non-negative int, got float$"),
        ({"offset": -5}, ValueError, r"^offset must be a non-negative int, got -5$"),
    ],
)
async def test_bad_options_are_named_and_nothing_is_sent(
    make: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    h = make(lambda request: json_response(200, bundle()))
    with pytest.raises(error, match=message):
        await h.call("search_with_options", "Patient", **kwargs)
    assert h.requests == []


async def test_options_left_out_send_nothing(make: Any) -> None:
    h = make(lambda request: json_response(200, bundle("1")))
    result = await h.call("search_with_options", "Patient", {"family": "Smith"}, summary="count")
    assert query_of(h.last) == [("family", "Smith"), ("_summary", "count")]
    assert result["total"] == 1


async def test_options_return_a_typed_bundle(make: Any) -> None:
    h = make(lambda request: json_response(200, bundle("1")))
    result = await h.call(
        "search_with_options", "Patient", total="accurate", return_bundle=True, as_fhir=Patient
    )
    assert isinstance(result, FHIRBundle)
    assert result.total == 1
    assert [p.id for p in result.get_resources_typed(Patient)] == ["1"]


async def test_an_option_given_twice_is_rejected(make: Any) -> None:
    h = make(lambda request: json_response(200, bundle()))
    with pytest.raises(ValueError, match="_count"):
        await h.call("search_with_options", "Patient", {"_count": "5"}, count=10)
    assert h.requests == []


async def test_search_with_options_alias(make: Any) -> None:
    h = make(lambda request: json_response(200, bundle("1")))
    await h.call("searchWithOptions", "Patient", {"family": "Smith"}, count=1)
    assert query_of(h.last) == [("family", "Smith"), ("_count", "1")]
    cls = type(h.client)
    assert cls.searchWithOptions is cls.search_with_options


def offset_refused(next_url: str) -> Any:
    """Medplum 5.0.10 past its maxSearchOffset: the next link's page answers 400."""
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "details": {"text": "Search offset exceeds maximum (got 10200, max 10000)"},
            }
        ],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if "_offset" in str(request.url):
            return json_response(400, outcome)
        return json_response(200, bundle("1", "2", next_url=next_url))

    return handler


async def test_pages_past_the_servers_offset_limit_say_how_to_read_on(make: Any) -> None:
    # Seen on a real Medplum 5.0.10: 10,500 Observations paged by 300 stop after 10,200 with
    # a bare 400; the error names the refused offset and the cursor paging that has no limit.
    h = make(offset_refused(FHIR + "Patient?_count=300&_offset=10200"))
    iterator = h.iterate("search_resource_pages", "Patient", {"_count": 300})
    assert [(await next_item(iterator))["id"] for _ in range(2)] == ["1", "2"]
    with pytest.raises(ValidationError) as caught:
        await next_item(iterator)
    message = str(caught.value)
    assert message.startswith("HTTP 400 Bad Request from GET /fhir/R4/Patient [error/invalid]")
    assert "next link at _offset=10,200" in message
    assert "maxSearchOffset" in message and "_sort=_lastUpdated" in message
    assert "Search offset exceeds" not in message  # the server's text stays on exc.outcome
    assert caught.value.outcome is not None


async def test_a_400_on_a_next_link_without_an_offset_says_nothing_of_offsets(make: Any) -> None:
    h = make(offset_refused(FHIR + "Patient?_count=300&_offset=0&page=2"))
    with pytest.raises(ValidationError) as caught:
        await drain(h.iterate("search_resource_pages", "Patient"))
    assert "maxSearchOffset" not in str(caught.value)


async def test_a_400_on_a_next_link_for_another_reason_says_nothing_of_offsets(make: Any) -> None:
    # The outcome says why, and it is not the offset: no advice about maxSearchOffset.
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": "Unknown search parameter"}
        ],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if "_offset" in str(request.url):
            return json_response(400, outcome)
        return json_response(200, bundle("1", next_url=FHIR + "Patient?_count=1&_offset=1"))

    h = make(handler)
    with pytest.raises(ValidationError) as caught:
        await drain(h.iterate("search_resource_pages", "Patient"))
    assert "maxSearchOffset" not in str(caught.value)

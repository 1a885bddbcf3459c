"""The exact wire form of search values (both clients), ``_summary=count`` ordering, and the
POST ``_search`` a query too long for a URL is sent as."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from pymedplum import escape_search_value
from pymedplum._request_builders.search import MAX_SEARCH_QUERY_CHARS
from pymedplum.exceptions import MedplumError

from .conftest import FHIR, json_response, searchset

pytestmark = pytest.mark.anyio


def raw_query(request: httpx.Request) -> str:
    # httpx writes a space in a query as '+' since 0.28 and as '%20' before (pyproject allows
    # 0.27): both mean a space to every server, so the expected strings use '+'.
    return request.url.query.decode("ascii").replace("%20", "+")


@pytest.mark.parametrize(
    ("query", "sent"),
    [
        # token forms: '|' and ':' are percent-encoded, the server decodes them back
        ({"identifier": "http://x.org/mrn|123"}, "identifier=http%3A%2F%2Fx.org%2Fmrn%7C123"),
        ({"identifier": "|123"}, "identifier=%7C123"),
        ({"identifier": "urn:sys|"}, "identifier=urn%3Asys%7C"),
        # a list repeats the parameter (AND); a comma in one value is FHIR's OR
        (
            {"birthdate": ["ge2020-01-01", "lt2021-01-01"]},
            "birthdate=ge2020-01-01&birthdate=lt2021-01-01",
        ),
        ({"code": "urn:a|1,urn:a|2"}, "code=urn%3Aa%7C1%2Curn%3Aa%7C2"),
        # an escaped comma (and backslash) reaches the server as \, and \\
        ({"family": "Smith\\, Jr"}, "family=Smith%5C%2C+Jr"),
        ({"family": escape_search_value("a\\b,c")}, "family=a%5C%5Cb%5C%2Cc"),
        # modifiers, chains and _has keep their ':' (encoded) and '.'
        ({"name:exact": "Ann"}, "name%3Aexact=Ann"),
        ({"subject:Patient.name": "Ann"}, "subject%3APatient.name=Ann"),
        ({"_has:Observation:subject:code": "1234-5"}, "_has%3AObservation%3Asubject%3Acode=1234-5"),
        ({"gender:missing": True}, "gender%3Amissing=true"),
        # non-ASCII text is UTF-8, a space is '+', '&' '=' '+' '%' '#' are escaped
        ({"name": "Zoë 日本"}, "name=Zo%C3%AB+%E6%97%A5%E6%9C%AC"),
        ({"name": "a&b=c+d%e#f"}, "name=a%26b%3Dc%2Bd%25e%23f"),
        # a datetime's '+hh:mm' offset is kept (a bare '+' would decode to a space)
        (
            {"_lastUpdated": "gt" + datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc).isoformat()},
            "_lastUpdated=gt2024-01-02T03%3A04%3A05%2B00%3A00",
        ),
        (
            {"date": datetime(2024, 1, 2, tzinfo=timezone(timedelta(hours=-5)))},
            "date=2024-01-02T00%3A00%3A00-05%3A00",
        ),
        # the list parameters are joined with commas
        (
            {"_sort": ["-date", "_id"], "_elements": ["id", "name"]},
            "_sort=-date%2C_id&_elements=id%2Cname",
        ),
        ({"_include:iterate": "Patient:organization"}, "_include%3Aiterate=Patient%3Aorganization"),
    ],
)
async def test_search_values_on_the_wire(make: Any, query: Any, sent: str) -> None:
    h = make(lambda request: json_response(200, searchset()))
    await h.call("search_resources", "Observation", query)
    assert raw_query(h.last) == sent


def test_escape_search_value() -> None:
    assert escape_search_value("Smith, Jr") == "Smith\\, Jr"
    assert escape_search_value("a\\,b") == "a\\\\\\,b"
    assert escape_search_value("plain") == "plain"
    assert ",".join(map(escape_search_value, ["a,b", "c"])) == "a\\,b,c"  # two values, OR-ed
    with pytest.raises(TypeError, match="value must be a str"):
        escape_search_value(1)  # type: ignore[arg-type]


# --- _summary=count -------------------------------------------------------------------------------


async def test_summary_count_goes_after_count(make: Any) -> None:
    # Medplum reads parameters in order: "_summary=count&_count=5" answers five resources.
    h = make(lambda request: json_response(200, searchset()))
    await h.call("search_with_options", "Patient", {"family": "x"}, summary="count", count=5)
    assert parse_qsl(raw_query(h.last)) == [("family", "x"), ("_count", "5"), ("_summary", "count")]
    await h.call("search_resources", "Patient", {"_summary": "count", "_count": 5, "family": "x"})
    assert parse_qsl(raw_query(h.last)) == [("_count", "5"), ("family", "x"), ("_summary", "count")]
    await h.call("search_resources", "Patient", "_summary=count&_count=5")
    assert parse_qsl(raw_query(h.last)) == [("_count", "5"), ("_summary", "count")]
    # Other _summary modes and the rest of the order are left alone.
    await h.call("search_resources", "Patient", {"_summary": "true", "_count": 5})
    assert parse_qsl(raw_query(h.last)) == [("_summary", "true"), ("_count", "5")]
    await h.call("search_with_options", "Patient", {"_summary": "count"}, count=5)
    assert parse_qsl(raw_query(h.last)) == [("_count", "5"), ("_summary", "count")]


# --- long queries ---------------------------------------------------------------------------------


def long_ids(chars: int) -> str:
    return ",".join(f"id-{i:08d}" for i in range(chars // 12 + 1))


@pytest.mark.parametrize("method", ["search_resources", "search_one", "search_with_options"])
async def test_a_long_query_is_posted_to_search_as_a_form(make: Any, method: str) -> None:
    h = make(lambda request: json_response(200, searchset("1")))
    ids = long_ids(MAX_SEARCH_QUERY_CHARS)
    await h.call(method, "Patient", {"_id": ids, "name": "Zoë"})
    request = h.last
    assert (request.method, str(request.url)) == ("POST", FHIR + "Patient/_search")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qsl(request.content.decode("ascii"))
    assert form[:2] == [("_id", ids), ("name", "Zoë")]
    # The audit event still carries the search parameters and the search action.
    (event,) = h.events
    assert (event.method, event.action, event.query_params["name"]) == ("POST", "search", ["Zoë"])


async def test_a_query_at_the_limit_stays_a_get(make: Any) -> None:
    h = make(lambda request: json_response(200, searchset()))
    value = "x" * (MAX_SEARCH_QUERY_CHARS - len("_id="))
    await h.call("search_resources", "Patient", {"_id": value})
    assert h.last.method == "GET" and len(raw_query(h.last)) == MAX_SEARCH_QUERY_CHARS
    await h.call("search_resources", "Patient", {"_id": value + "x"})
    assert h.last.method == "POST"


async def test_pages_of_a_long_query_follow_long_next_links_by_post(make: Any) -> None:
    ids = long_ids(70_000)  # past httpx's 65,536-character limit for a URL's query

    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode("ascii")))
        if form.get("_offset") == "2":
            return json_response(200, searchset("3"))
        return json_response(200, searchset("1", "2", next_url=f"Patient?_id={ids}&_offset=2"))

    h = make(handler)
    found = [p["id"] for p in await h.collect("search_resource_pages", "Patient", {"_id": ids})]
    assert found == ["1", "2", "3"]
    # The relative next link is resolved against the page's GET form, not .../_search.
    assert [(r.method, str(r.url)) for r in h.requests] == [("POST", FHIR + "Patient/_search")] * 2
    assert parse_qsl(h.requests[1].content.decode("ascii")) == [("_id", ids), ("_offset", "2")]


async def test_a_long_next_link_pointing_back_is_a_paging_loop(make: Any) -> None:
    ids = long_ids(70_000)
    h = make(
        lambda request: json_response(200, searchset("1", next_url=f"{FHIR}Patient?_id={ids}"))
    )
    with pytest.raises(MedplumError, match="already fetched"):
        await h.collect("search_resource_pages", "Patient", {"_id": ids})
    assert len(h.requests) == 1


async def test_a_long_next_link_with_raw_non_ascii_is_encoded_in_the_form(make: Any) -> None:
    ids = long_ids(MAX_SEARCH_QUERY_CHARS)

    def handler(request: httpx.Request) -> httpx.Response:
        if b"_offset=1" in request.content:
            return json_response(200, searchset("2"))
        return json_response(200, searchset("1", next_url=f"Patient?name=Zoë&_id={ids}&_offset=1"))

    h = make(handler)
    found = [p["id"] for p in await h.collect("search_resource_pages", "Patient", {"_id": ids})]
    assert found == ["1", "2"]
    assert parse_qsl(h.requests[1].content.decode("ascii"))[0] == ("name", "Zoë")

"""search_one, search_with_options and the lazy, same-origin pagination of search_resource_pages."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from pymedplum._async._overrides._dispatch import Dispatch
from pymedplum._endpoints import ENDPOINTS
from pymedplum._request_builders.paths import check_resource_type, is_absolute_url
from pymedplum._request_builders.search import (
    build_search_params,
    search_option_params,
    summary_count_last,
)
from pymedplum._request_builders.searchset import match_entries, matches, next_link
from pymedplum._security import check_same_origin
from pymedplum.bundle import FHIRBundle, validate_entry
from pymedplum.endpoint_types import ModelT, SearchQuery, SummaryMode, TotalMode
from pymedplum.exceptions import BadRequestError, issue_texts

# Pages in a row that may yield nothing while still linking a next one. An iteration that
# yields nothing never hands control back, so a server handing out a new next link with every
# empty page (a paging bug) would hold the caller forever: past this many it is an error.
MAX_EMPTY_PAGES = 10

# Options that take one value: given both in ``query`` and as an argument is ambiguous.
_SINGLE_VALUED = frozenset({"_summary", "_elements", "_total", "_at", "_count", "_offset", "_sort"})


def _page_url(request: httpx.Request) -> str:
    """The GET URL of a search page: a long query went as ``POST .../_search`` with a body."""
    url = str(request.url)
    if request.method == "POST" and url.endswith("/_search"):
        return url.removesuffix("/_search") + "?" + request.content.decode("ascii")
    return url


def _page_key(url: str) -> bytes:
    """``url`` as the server reads it: the same page whatever its percent-encoding (a form body
    and a next link encode the same query differently), and whatever its length. A 16-byte
    digest, not the URL: every page fetched stays in the iteration's ``seen`` set, which
    would otherwise grow by the full URL and its decoded query (~0.6 KB a page) for as long as
    a long export runs."""
    parts = urlsplit(url)
    where = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    return hashlib.blake2b(repr((where, query)).encode(), digest_size=16).digest()


def _say_offset_refused(exc: BadRequestError, url: str) -> None:
    """A next link that pages by ``_offset`` refused with 400 (the first page, same search, was
    accepted): Medplum refuses an offset above its maxSearchOffset. Say so, and how to page on."""
    offsets = [v for k, v in parse_qsl(urlsplit(url).query) if k == "_offset"]
    if not offsets or not offsets[-1].isdigit() or int(offsets[-1]) == 0:
        return
    texts = issue_texts(exc.outcome)
    if texts and not any("offset" in text.lower() for text in texts):
        return  # the server said why, and it is not the offset
    exc.args = (
        f"{exc}; the refused page is the Bundle's next link at _offset={int(offsets[-1]):,}: "
        "Medplum refuses an _offset above its maxSearchOffset (10,000 by default), and pages "
        "by offset unless the search is sorted by _lastUpdated ascending alone. To read "
        "every result, pass _sort=_lastUpdated (with _count of at least 20), which pages by "
        "cursor without that limit, or split the search (by _lastUpdated ranges, for example)",
        *exc.args[1:],
    )


class SearchOverrides(Dispatch):
    """Bodies of search_one, search_resource_pages and search_with_options."""

    async def _search_one(
        self, *, resource_type: str, query: SearchQuery | None, on_behalf_of: str | None
    ) -> dict[str, Any] | None:
        # Only one resource is wanted: the caller's _count (if any) is replaced by 1.
        params = [p for p in build_search_params(query) if p[0] != "_count"]
        # _summary=count stays last: Medplum would let the _count after it return a resource.
        params = summary_count_last([*params, ("_count", "1")])
        page = await self._call_endpoint(
            ENDPOINTS["search_one"],
            {"resourceType": resource_type},
            params=params,
            on_behalf_of=on_behalf_of,
            convert=self._searchset,
        )
        found = matches(page)
        return found[0] if found else None

    def _search_resource_pages(
        self,
        *,
        resource_type: str,
        query: SearchQuery | None,
        as_fhir: type[ModelT] | None,
        on_behalf_of: str | None,
    ) -> AsyncIterator[dict[str, Any] | ModelT]:
        # The type and the query are checked now, at the call, as as_fhir is: a generator's
        # body runs only when the first page is wanted, away from the call that was wrong.
        check_resource_type("resource_type", resource_type)
        params = build_search_params(query)
        # The On-Behalf-Of is resolved now, at the call: a page fetched later, once the
        # caller has left its ``with client.on_behalf_of(...)`` block (or from another task),
        # must not go out as someone else (the client's own, wider, access).
        return self._search_pages(
            resource_type=resource_type,
            params=params,
            as_fhir=as_fhir,
            on_behalf_of=self._bind_on_behalf_of(on_behalf_of),
        )

    async def _search_pages(
        self,
        *,
        resource_type: str,
        params: list[tuple[str, str]],
        as_fhir: type[ModelT] | None,
        on_behalf_of: str,
    ) -> AsyncIterator[dict[str, Any] | ModelT]:
        endpoint = ENDPOINTS["search_resource_pages"]
        values = {"resourceType": resource_type}

        def read_page(response: httpx.Response) -> tuple[httpx.Response, dict[str, Any]]:
            return response, self._searchset(response, exact_decimals=as_fhir is not None)

        response, page = await self._call_endpoint(
            endpoint,
            values,
            params=params,
            on_behalf_of=on_behalf_of,
            convert=read_page,
        )
        seen = {_page_key(_page_url(response.request))}
        page_number = 1
        empty_pages = 0
        while True:
            found = match_entries(page)
            empty_pages = 0 if found else empty_pages + 1
            for index, resource in found:
                if as_fhir is None:
                    yield resource
                else:
                    # A stored resource that does not fit (Medplum accepts gender "banana")
                    # is located: its page and entry, as in a FHIRBundle, not just "gender".
                    where = f" (page {page_number} of the search)"
                    yield validate_entry(as_fhir, resource, index, where)
            link = next_link(page)
            if link is None:
                return
            # A relative link is resolved against the page it came from.
            base = _page_url(response.request)
            url = link if is_absolute_url(link) else urljoin(base, link)
            check_same_origin(self._origin, url, what="the Bundle's next link")
            key = _page_key(url)
            if key in seen:  # a server paging bug must not loop forever
                raise self._unreadable(
                    response, "the Bundle's next link points at a page already fetched"
                )
            if empty_pages >= MAX_EMPTY_PAGES:
                raise self._unreadable(
                    response,
                    f"{empty_pages} search pages in a row had no results but a next link; "
                    "stopped following them (a server paging bug would never end)",
                )
            seen.add(key)
            page_number += 1
            # The page just read is not kept while the next one is fetched and decoded.
            del response, page, found
            try:
                response, page = await self._call_endpoint(
                    endpoint, values, url=url, on_behalf_of=on_behalf_of, convert=read_page
                )
            except BadRequestError as exc:
                _say_offset_refused(exc, url)
                raise

    async def _search_with_options(
        self,
        *,
        resource_type: str,
        query: SearchQuery | None,
        summary: SummaryMode | None,
        elements: Sequence[str] | None,
        total: TotalMode | None,
        at: str | None,
        count: int | None,
        offset: int | None,
        sort: str | Sequence[str] | None,
        include: str | Sequence[str] | None,
        include_iterate: str | Sequence[str] | None,
        revinclude: str | Sequence[str] | None,
        revinclude_iterate: str | Sequence[str] | None,
        return_bundle: bool,
        as_fhir: type[ModelT] | None,
        on_behalf_of: str | None,
    ) -> dict[str, Any] | FHIRBundle[Any]:
        params = build_search_params(query)
        options = search_option_params(
            summary=summary,
            elements=elements,
            total=total,
            at=at,
            count=count,
            offset=offset,
            sort=sort,
            include=include,
            include_iterate=include_iterate,
            revinclude=revinclude,
            revinclude_iterate=revinclude_iterate,
        )
        in_query = {name for name, _ in params}
        for name, _ in options:
            if name in _SINGLE_VALUED and name in in_query:
                raise ValueError(f"{name} is given both in query and as an argument; give it once")
        return await self._call_endpoint(
            ENDPOINTS["search_with_options"],
            {"resourceType": resource_type},
            params=summary_count_last(params + options),
            on_behalf_of=on_behalf_of,
            convert=lambda response: self._bundle_response(response, return_bundle, as_fhir),
        )

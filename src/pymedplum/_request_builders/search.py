"""Search queries: the ``query`` of a search as ``(name, value)`` pairs in FHIR's wire form,
the low-level ``params=`` checked, the ``_`` result parameters of ``search_with_options``, and
the ``POST _search`` form of a query too long for a GET.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence, Set
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from pymedplum._request_builders.arguments import (
    check_date,
    check_non_negative_int,
    check_str_list,
    describe_type,
)
from pymedplum._serialization import ExponentDecimal


def wire_value(value: object, name: str = "") -> str | None:
    """FHIR wire form of one query value (a search's, or a terminology GET's); None means
    "leave the parameter out". ``name`` (the parameter's) is for the error messages."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        # str() would send "nan" or "inf", which no FHIR number or date is.
        raise ValueError(f"search parameter {name!r} must be a finite number, got {value!r}")
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, Decimal):
        # The decimals the models and decoded responses hold (Quantity.value, ...). Medplum
        # reads a number search value with PostgreSQL (as its DOUBLE PRECISION column), which
        # takes every finite decimal text, exponent forms included ("1E-7"), and "NaN" and
        # "Infinity" as well: those match no stored number, so they are refused here.
        if not value.is_finite():
            raise ValueError(f"search parameter {name!r} must be a finite number, got {value!r}")
        # An ExponentDecimal keeps the text it was read from ("1e-7"); str() of any other is
        # its exact digits ("5.40", "1E-7").
        return value.text if isinstance(value, ExponentDecimal) else str(value)
    # By type only: a search value is often PHI, and a resource put here would be printed whole.
    raise TypeError(
        f"search parameter {name!r} values must be str, int, float, Decimal, bool, date or "
        f"datetime, got {type(value).__name__}"
    )


def _check_name(name: object) -> str:
    # Named "query:" like the other query errors: a whitespace-only query str ("  ") is one
    # blank name, and "search parameter names ..." alone did not say which argument was wrong.
    if not isinstance(name, str):
        raise TypeError(f"query: search parameter names must be str, got {type(name).__name__}")
    if not name.strip():
        raise ValueError(f"query: search parameter names must not be empty, got {name!r}")
    return name


def _pairs(arg: str, query: object) -> list[tuple[Any, Any]]:
    """The (name, value) pairs of a mapping or a list of pairs (a search ``query``, a low-level
    ``params``); TypeError naming ``arg`` otherwise. A str is the caller's to parse."""
    if isinstance(query, Mapping):
        return list(query.items())
    if not isinstance(query, Sequence) or isinstance(query, str | bytes | bytearray):
        raise TypeError(
            f"{arg} must be a mapping, a list of (name, value) pairs or a str, "
            f"got {describe_type(query)}"
        )
    for index, item in enumerate(query):
        if not (isinstance(item, tuple | list) and len(item) == 2):
            # Described, not repr'd: search values are often PHI (a name, a birth date),
            # and a resource put here by mistake would be printed whole.
            got = (
                f"a {type(item).__name__} of {len(item)} items"
                if isinstance(item, tuple | list)
                else type(item).__name__
            )
            raise TypeError(f"{arg}[{index}] must be a (name, value) pair, got {got}")
    return [(item[0], item[1]) for item in query]


# Result parameters whose value is a comma-separated list (FHIR search, 3.1.1.5): a list value
# is joined, where every other parameter repeats (name=a&name=b, an AND).
_COMMA_SEPARATED = frozenset({"_elements", "_sort", "_type"})


def build_search_params(query: object) -> list[tuple[str, str]]:
    """Search parameters as ``(name, value)`` pairs, order kept, list values repeated (joined
    with commas for ``_elements``, ``_sort`` and ``_type``, which FHIR defines as one list).

    An empty parameter name (``{"": "x"}``, ``"=x"``) is a ValueError: it would send ``?=x``.
    """
    if query is None:
        return []
    if isinstance(query, str):
        parsed = parse_qsl(query.removeprefix("?"), keep_blank_values=True)
        return summary_count_last([(_check_name(name), value) for name, value in parsed])
    pairs = _pairs("query", query)
    out: list[tuple[str, str]] = []
    for name, value in pairs:
        _check_name(name)
        many = isinstance(value, Sequence | Set) and not isinstance(value, str | bytes | bytearray)
        values = value if many else [value]
        if many and name in _COMMA_SEPARATED:
            # FHIR defines these as one comma-separated list: repeated, a server keeps one.
            joined = ",".join(w for w in (wire_value(v, name) for v in values) if w is not None)
            if joined:
                out.append((name, joined))
            continue
        for item in values:
            wire = wire_value(item, name)
            if wire is not None:
                out.append((name, wire))
    return summary_count_last(out)


def check_query_params(params: object) -> Any:
    """The low-level methods' ``params=`` as given, once checked: None, a query str, a mapping
    (a list or tuple value repeats the name) or a list of (name, value) pairs, each value a
    str, int, finite float or bool (None: httpx sends ``name=``). TypeError / ValueError
    naming ``params`` otherwise: httpx would send ``str()`` of anything else (a model's repr,
    ``b'x'``, ``nan``) or fail inside with an AttributeError or IndexError."""
    if params is None or isinstance(params, str):
        return params
    if type(params) is list:
        # Per request: the typed methods' (str, str) pairs (build_search_params) take this
        # exact-type path (~0.5 µs for 4 pairs; the ABC checks below cost ~1 µs a pair).
        for item in params:
            if type(item) is not tuple or len(item) != 2:
                break
            if type(item[0]) is not str or type(item[1]) is not str:
                break
        else:
            return params
    repeats = isinstance(params, Mapping)  # only a mapping's list value repeats its name
    items = _pairs("params", params)
    for name, value in items:
        if not isinstance(name, str):
            raise TypeError(f"params names must be str, got {type(name).__name__}")
        values: Iterable[object] = value if repeats and isinstance(value, list | tuple) else [value]
        for item in values:
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"params[{name!r}] must be a finite number, got {item!r}")
            if item is not None and not isinstance(item, str | int | float):
                # By type only: the value could be a resource, printed whole.
                raise TypeError(
                    f"params[{name!r}] must be a str, int, float or bool, got {type(item).__name__}"
                )
    return params


# A search whose encoded query is longer than this goes as ``POST {type}/_search`` with the
# query as a form body: Medplum's server (Node) answers 431 once the request line and headers
# pass 16 KiB, proxies often cap a request line at 8 KiB, and httpx refuses a query over 65,536
# characters outright. Shorter queries stay GETs (cacheable, readable in access logs).
MAX_SEARCH_QUERY_CHARS = 8000


def search_as_post(
    target: str, params: Sequence[tuple[str, str]] | None
) -> tuple[str, bytes] | None:
    """``(target/_search, form body)`` when a search's query is too long for a GET, else None.

    ``target`` is the type path (the query in ``params``) or a server's next link (the query,
    already encoded, in the URL). Medplum reads a ``_search`` POST's parameters from the body
    only, so the whole query moves there.
    """
    path, _, url_query = target.partition("?")
    # A link's query is encoded already; raw non-ASCII in it is encoded as httpx would for a GET.
    url_query = "".join(c if c.isascii() else quote(c, safe="") for c in url_query)
    query = "&".join(q for q in (url_query, urlencode(list(params or []))) if q)
    if len(query) <= MAX_SEARCH_QUERY_CHARS:
        return None
    return path.rstrip("/") + "/_search", query.encode("ascii")


def summary_count_last(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``params`` with ``_summary=count`` moved to the end, the rest in order.

    Medplum reads search parameters in order and ``_summary=count`` sets the page size to 0: a
    ``_count`` after it would bring the entries back (``_summary=count&_count=5`` answers five
    resources). FHIR's ``_summary=count`` means "the total, no resources" wherever it stands.
    """
    counts = [p for p in params if p == ("_summary", "count")]
    if not counts:
        return params
    return [p for p in params if p != ("_summary", "count")] + counts[:1]


def _repeat(name: str, arg: str, value: object) -> list[tuple[str, str]]:
    return [(name, v) for v in check_str_list(arg, value) or []]


def _joined(arg: str, value: object) -> str | None:
    items = check_str_list(arg, value)
    return None if items is None else ",".join(items)


_SUMMARY_MODES = ("true", "text", "data", "count", "false")
_TOTAL_MODES = ("none", "estimate", "accurate")


def _check_mode(arg: str, value: object, modes: Sequence[str]) -> None:
    """ValueError naming ``arg`` unless ``value`` is None or one of ``modes``; another type is
    described by its type only (a model's repr would print its content)."""
    if value is None or value in modes:
        return
    got = repr(value) if isinstance(value, str) else type(value).__name__
    raise ValueError(f"{arg} must be one of {', '.join(modes)}; got {got}")


def search_option_params(
    *,
    summary: str | None = None,
    elements: str | Sequence[str] | None = None,
    total: str | None = None,
    at: str | date | None = None,
    count: int | None = None,
    offset: int | None = None,
    sort: str | Sequence[str] | None = None,
    include: str | Sequence[str] | None = None,
    include_iterate: str | Sequence[str] | None = None,
    revinclude: str | Sequence[str] | None = None,
    revinclude_iterate: str | Sequence[str] | None = None,
) -> list[tuple[str, str]]:
    """The ``_`` parameters of ``search_with_options``.

    ``_elements`` and ``_sort`` take one comma-separated value (FHIR's list syntax; a repeated
    ``_elements`` would keep only the last on Medplum). The include family repeats. A str is one
    value; an empty str or list is a ValueError (``_elements=`` is never what was meant). ``at``
    may be a ``date`` / ``datetime``: it is sent in ISO format, as in search queries.
    """
    _check_mode("summary", summary, _SUMMARY_MODES)
    _check_mode("total", total, _TOTAL_MODES)
    check_non_negative_int("count", count)
    check_non_negative_int("offset", offset)
    out: list[tuple[str, str]] = []
    for name, value in (
        ("_summary", summary),
        ("_elements", _joined("elements", elements)),
        ("_total", total),
        ("_at", check_date("at", at)),
        ("_count", None if count is None else str(count)),
        ("_offset", None if offset is None else str(offset)),
        ("_sort", _joined("sort", sort)),
    ):
        if value is not None:
            out.append((name, value))
    out += _repeat("_include", "include", include)
    out += _repeat("_include:iterate", "include_iterate", include_iterate)
    out += _repeat("_revinclude", "revinclude", revinclude)
    out += _repeat("_revinclude:iterate", "revinclude_iterate", revinclude_iterate)
    return out

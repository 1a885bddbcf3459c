"""The pure request-building rules shared by both clients (properties and edge cases)."""

from __future__ import annotations

import copy
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymedplum._request_builders.accounts import stamp_accounts, stamp_bundle_accounts
from pymedplum._request_builders.conditional import resolve_if_match
from pymedplum._request_builders.headers import merge_headers
from pymedplum._request_builders.jobs import job_locator
from pymedplum._request_builders.paths import (
    check_id,
    check_resource_type,
    fill_path,
    is_absolute_url,
)
from pymedplum._request_builders.search import build_search_params, search_option_params
from pymedplum._serialization import Deferred, ExponentDecimal

# The result parameters whose list value is joined with commas (_elements, _sort, _type) have
# their own tests (test_search_params.py, test_search_wire.py): Hypothesis drew "_type" here.
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_:", min_size=1, max_size=12).filter(
    lambda name: name not in {"_elements", "_sort", "_type"}
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))
values = st.one_of(scalars, st.lists(scalars, max_size=4))


@given(st.dictionaries(names, values, max_size=6))
def test_search_params_keep_order_repeat_lists_and_skip_none(query: dict[str, Any]) -> None:
    expected: list[tuple[str, str]] = []
    for name, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            wire = ("true" if item else "false") if isinstance(item, bool) else str(item)
            expected.append((name, wire))
    assert build_search_params(query) == expected
    assert build_search_params(list(expected)) == expected


def test_search_params_dates_and_strings() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert build_search_params({"date": [date(2024, 1, 2), when]}) == [
        ("date", "2024-01-02"),
        ("date", "2024-01-02T03:04:05+00:00"),
    ]
    assert build_search_params("?a=1&b=x%7Cy&c=") == [("a", "1"), ("b", "x|y"), ("c", "")]


def test_search_params_decimals_are_sent_with_their_digits() -> None:
    # Quantity.value and the decoded responses' decimals are Decimals: sent as their exact text
    # (trailing zeros, exponent forms: PostgreSQL, which reads the value on Medplum, takes them),
    # an ExponentDecimal as the text it was read from.
    values = [Decimal("5.40"), Decimal("-0.001"), Decimal("-0"), Decimal("1E+2")]
    values += [Decimal("0.0000001"), ExponentDecimal("1e-7"), Decimal("66.899999999999991")]
    assert build_search_params({"value-quantity": values}) == [
        ("value-quantity", text)
        for text in ["5.40", "-0.001", "-0", "1E+2", "1E-7", "1e-7", "66.899999999999991"]
    ]
    # A prefix or a unit goes in a str: the Decimal's text is what to put after the prefix.
    assert build_search_params({"probability": f"gt{Decimal('0.80')}"}) == [
        ("probability", "gt0.80")
    ]


@pytest.mark.parametrize(
    "bad", [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Inf")]
)
def test_search_params_refuse_a_decimal_that_is_no_number(bad: Decimal) -> None:
    # PostgreSQL would read "NaN" / "Infinity" (matching no stored value, or every one for ne).
    with pytest.raises(
        ValueError, match=r"^search parameter 'probability' must be a finite number"
    ):
        build_search_params({"probability": [Decimal("0.5"), bad]})


def test_search_options_order_and_joining() -> None:
    assert search_option_params() == []
    assert search_option_params(count=0, offset=0) == [("_count", "0"), ("_offset", "0")]
    assert search_option_params(sort="-date", include="A:b") == [
        ("_sort", "-date"),
        ("_include", "A:b"),
    ]


@given(
    st.lists(st.sampled_from(["Organization/a", "Organization/b", "Practitioner/c"]), max_size=3),
    st.lists(st.sampled_from(["Organization/a", "Organization/d"]), min_size=1, max_size=3),
)
def test_stamping_is_idempotent_and_never_mutates(existing: list[str], accounts: list[str]) -> None:
    resource = {
        "resourceType": "Patient",
        "meta": {"accounts": [{"reference": r} for r in existing]},
    }
    before = copy.deepcopy(resource)
    once = stamp_accounts(resource, accounts)
    assert stamp_accounts(once, accounts) == once
    assert resource == before
    refs = [a["reference"] for a in once["meta"]["accounts"]]
    assert refs[: len(existing)] == existing
    assert set(refs) == set(existing) | set(accounts)
    assert len(set(refs) - set(existing)) == len(refs) - len(existing)


def test_bundle_stamping_leaves_entries_without_resource() -> None:
    bundle = {"resourceType": "Bundle", "entry": [{"request": {"method": "DELETE"}}, "odd"]}
    assert stamp_bundle_accounts(bundle, "Organization/a") == bundle


@pytest.mark.parametrize(
    ("request_", "stamped"),
    [
        ({"method": "POST"}, True),
        ({"method": "PUT"}, True),
        ({"method": "put"}, True),
        ({"method": "PATCH"}, False),
        ({"method": "GET"}, False),
        ({"method": "DELETE"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_bundle_stamping_only_touches_the_resource_being_written(
    request_: Any, stamped: bool
) -> None:
    entry: dict[str, Any] = {"resource": {"resourceType": "Binary"}}
    if request_ is not None:
        entry["request"] = request_
    [out] = stamp_bundle_accounts({"entry": [entry]}, "Organization/a")["entry"]
    # A stamped entry is built when the body is written (not held for the whole batch).
    assert isinstance(out, Deferred) is stamped
    if isinstance(out, Deferred):
        out = out.build()
    assert ("meta" in out["resource"]) is stamped
    assert stamp_bundle_accounts({"resourceType": "Bundle"}, "Organization/a") == {
        "resourceType": "Bundle"
    }


@pytest.mark.parametrize(
    ("resource", "if_match", "expected"),
    [
        ({"meta": {"versionId": "3"}}, True, 'W/"3"'),
        ({"meta": {}}, True, None),
        ({}, True, None),
        ({"meta": {"versionId": "3"}}, False, None),
        ({"meta": {"versionId": "3"}}, "*", "*"),
    ],
)
def test_resolve_if_match(resource: dict[str, Any], if_match: Any, expected: str | None) -> None:
    assert resolve_if_match(resource, if_match) == expected


def test_resolve_if_match_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="if_match"):
        resolve_if_match({}, None)


def test_merge_headers_caller_wins_case_blind() -> None:
    assert merge_headers({"If-Match": "a", "X": "1"}, {"if-match": "b"}) == {
        "X": "1",
        "if-match": "b",
    }
    assert merge_headers({}, None) is None


@pytest.mark.parametrize("bad", ["", "..", "a/b", "a?b", "x" * 65, "a b", "%2e%2e"])
def test_ids_that_could_leave_the_path_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="resource_id"):
        check_id("resource_id", bad)


def test_resource_types_and_paths() -> None:
    assert check_resource_type("t", "MedicationRequest") == "MedicationRequest"
    with pytest.raises(ValueError, match="t must be"):
        check_resource_type("t", "../x")
    args = {"resourceType": "resource_type", "id": "valueset_id"}
    assert fill_path("ValueSet/{id}/$expand", {"id": None}, args, ("id",)) == "ValueSet/$expand"
    assert (
        fill_path("{resourceType}/{id}", {"resourceType": "Patient", "id": "p.1"}, args)
        == "Patient/p.1"
    )


def test_job_locator_shapes() -> None:
    url = "https://m.test/fhir/R4/job/1/status"
    assert job_locator(" j-1 ") == "j-1"
    assert job_locator({"issue": [{"diagnostics": url}]}) == url
    with pytest.raises(ValueError):
        job_locator({"issue": [{"code": "x"}]})
    with pytest.raises(ValueError, match="job must not be empty"):
        job_locator("")
    with pytest.raises(TypeError, match="job must be"):
        job_locator(None)
    with pytest.raises(ValueError, match="'AsyncJob'; pass its id"):
        job_locator({"resourceType": "AsyncJob", "id": "abc", "status": "accepted"})
    assert is_absolute_url(url) and is_absolute_url("//evil.example/x")
    assert not is_absolute_url("identifier=http://x|1")

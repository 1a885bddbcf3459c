"""Pure pieces of the runtime: URL rules, Retry-After, retry policy, OBO normalisation,
exception helpers, the lazy package namespace."""

from __future__ import annotations

import dataclasses
import email.utils
import json
import subprocess
import sys
import time
from datetime import datetime, timezone

import httpx
import pytest

from pymedplum import (
    InsecureTransportError,
    OperationOutcomeError,
    RetryPolicy,
    TokenRefreshCooldownError,
    UnsafeRedirectError,
)
from pymedplum._obo import normalize_membership
from pymedplum._request_builders.conditional import normalize_if_none_exist
from pymedplum._request_builders.jobs import bulk_data_done
from pymedplum._retry import parse_retry_after, rate_limit_reset
from pymedplum._security import (
    check_same_origin,
    is_loopback_host,
    normalize_base_url,
    origin_of,
)
from pymedplum.exceptions import error_for_status
from pymedplum.hooks import RequestAttempt, RequestEvent, serialize_exception


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True), ("LOCALHOST", True), ("127.0.0.1", True), ("127.255.0.9", True),
        ("::1", True), ("[::1]", True), ("128.0.0.1", False), ("localhost.evil.test", False),
        ("10.0.0.1", False), ("medplum.test", False), ("::1%25lo", True),
        ("127.0.0.1%00.evil.test", False), ("127.0.0.1%2eevil.test", False),
    ],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_base_url_rules() -> None:
    assert normalize_base_url("https://Medplum.TEST", allow_insecure_http=False) == (
        "https://medplum.test/"
    )
    with pytest.raises(InsecureTransportError):
        normalize_base_url("http://10.0.0.1/", allow_insecure_http=False)
    with pytest.raises(ValueError, match="credentials"):
        normalize_base_url("https://u:p@medplum.test/", allow_insecure_http=False)


def test_same_origin_compares_scheme_host_and_port_exactly() -> None:
    origin = origin_of("http://127.0.0.1:8103/")
    assert check_same_origin(origin, "http://127.0.0.1:8103/fhir/R4/Patient?_page=2")
    for other in ("http://localhost:8103/x", "https://127.0.0.1:8103/x", "http://127.0.0.1/x"):
        with pytest.raises(UnsafeRedirectError) as info:
            check_same_origin(origin, other)
        assert "/x" not in str(info.value)  # paths can hold PHI


def test_a_bracketed_host_must_be_an_ipv6_address_on_every_python() -> None:
    # Python 3.10's urlsplit reads https://[medplum.test]/ as the host medplum.test (3.11.4+
    # refuses it): the same origin as the client, sent on to httpx, which raised InvalidURL.
    origin = origin_of("https://medplum.test/")
    assert origin_of("https://[medplum.test]/fhir/R4/x") == ("", "", -1)
    with pytest.raises(UnsafeRedirectError):
        check_same_origin(origin, "https://[medplum.test]/fhir/R4/x")
    with pytest.raises(ValueError, match="absolute http"):
        normalize_base_url("https://[medplum.test]/", allow_insecure_http=False)
    assert origin_of("https://[::1]:8103/x") == ("https", "::1", 8103)
    assert origin_of("https://[fe80::1%25eth0]/x")[1] == "fe80::1%25eth0"
    assert normalize_base_url("http://[::1]:8103", allow_insecure_http=False) == (
        "http://[::1]:8103/"
    )


def test_if_none_exist_values(caplog: pytest.LogCaptureFixture) -> None:
    origin = origin_of("https://medplum.test/")
    assert normalize_if_none_exist("identifier=a|1", origin) == "identifier=a|1"
    assert normalize_if_none_exist("?identifier=a|1", origin) == "identifier=a|1"
    with pytest.warns(UserWarning, match="absolute URL") as warned:
        assert (
            normalize_if_none_exist("https://medplum.test/fhir/R4/Patient?identifier=a|1", origin)
            == "identifier=a|1"
        )
    assert warned[0].filename == __file__  # the caller's line, not pymedplum's
    assert "absolute URL" in caplog.text
    # A query whose value holds "://" is a query, not a URL (the contract's own example).
    mrn = "identifier=http://hospital.org/mrn|12345"
    assert normalize_if_none_exist(mrn, origin) == mrn
    with pytest.raises(UnsafeRedirectError):
        normalize_if_none_exist("https://evil.test/fhir/R4/Patient?identifier=a|1", origin)


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-4") is None  # invalid: the backoff applies, not "at once"
    assert parse_retry_after("1_0") is None and parse_retry_after("1e3") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_retry_after_dates_without_a_zone_are_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    # An HTTP date is GMT; a server omitting the zone must not be read in local time.
    monkeypatch.setenv("TZ", "JST-9")  # POSIX form, no tzdata needed: UTC+9
    time.tzset()
    try:
        when = email.utils.formatdate(time.time() + 30, usegmt=True).removesuffix(" GMT")
        seconds = parse_retry_after(when)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert seconds is not None and 25 <= seconds <= 30


def test_an_outcome_with_thousands_of_issues_gives_a_bounded_message() -> None:
    issue = {"severity": "error", "code": "processing", "diagnostics": "x" * 100}
    body = {"resourceType": "OperationOutcome", "issue": [issue] * 5000}
    exc = error_for_status(
        400, body=body, response=None, method="GET", path="/x", path_template="/x"
    )
    assert len(str(exc)) < 400 and len(repr(exc)) < 400
    assert str(exc).endswith(
        "error/processing, +4990 more]; the server's explanation is in exc.outcome "
        "(not shown: it may contain PHI)"
    )
    assert exc.outcome is not None and len(exc.outcome["issue"]) == 5000  # all kept


def test_retry_policy_decisions() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.delay_for_status(503, None, 1, replay_safe=False) is None
    assert policy.delay_for_status(503, 4.0, 1, replay_safe=True) == 4.0
    assert policy.delay_for_status(429, 2.0, 1, replay_safe=False) == 2.0
    assert policy.delay_for_status(429, 2.0, 3, replay_safe=True) is None
    assert policy.delay_for_status(500, None, 1, replay_safe=True) is None
    assert policy.delay_for_error(httpx.ConnectError("x"), 1, replay_safe=False) is not None
    assert policy.delay_for_error(httpx.ReadError("x"), 1, replay_safe=False) is None
    assert RetryPolicy.is_replay_safe("PUT") and not RetryPolicy.is_replay_safe("POST")
    assert RetryPolicy(retry_statuses=frozenset({500})).delay_for_status(
        500, None, 1, replay_safe=True
    )


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("max_attempts", 0, ValueError),
        ("max_attempts", 1.5, TypeError),
        ("max_attempts", True, TypeError),
        ("backoff_base", -1, ValueError),
        ("backoff_base", float("inf"), ValueError),
        ("max_backoff", float("nan"), ValueError),
        ("max_retry_after", "x", TypeError),
        ("max_retry_after", None, TypeError),
        # A str or str codes never match a status: retries were silently off.
        ("retry_statuses", 503, TypeError),
        ("retry_statuses", "503", TypeError),
        ("retry_statuses", {"503"}, TypeError),
        ("retry_statuses", {True}, TypeError),
        ("retry_statuses", {5030}, ValueError),
        ("retry_statuses", None, TypeError),
    ],
)
def test_retry_policy_validates(field: str, value: object, error: type) -> None:
    # TypeError for a wrong type, ValueError for a wrong value, as everywhere in the SDK.
    with pytest.raises(error, match=rf"^RetryPolicy\.{field} must be "):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]


def test_retry_policy_seconds_read_like_every_other_seconds_argument() -> None:
    with pytest.raises(
        ValueError,
        match=r"^RetryPolicy\.backoff_base must be a finite number of seconds >= 0, got -1$",
    ):
        RetryPolicy(backoff_base=-1)


def test_membership_normalisation() -> None:
    assert normalize_membership("abc") == "ProjectMembership/abc"
    assert normalize_membership(" ProjectMembership/abc ") == "ProjectMembership/abc"
    assert normalize_membership("Practitioner/p1") == "Practitioner/p1"
    assert normalize_membership({"resourceType": "ProjectMembership", "id": "x"}) == (
        "ProjectMembership/x"
    )
    with pytest.raises(TypeError, match="membership"):
        normalize_membership(42)


def test_serialize_exception() -> None:
    assert serialize_exception(None) is None
    assert serialize_exception(KeyError("k")) == {"type": "KeyError", "message": "'k'"}
    cooldown = TokenRefreshCooldownError(retry_after=1.25)
    assert serialize_exception(cooldown) == {
        "type": "TokenRefreshCooldownError",
        "status_code": None,
        "retry_after": 1.25,
    }
    assert "1.25" in str(cooldown)


def test_error_mapping_ignores_non_outcome_bodies() -> None:
    exc = error_for_status(
        418, body={"error": "teapot"}, response=None, method="GET", path="/x", path_template="/x"
    )
    assert type(exc) is OperationOutcomeError and exc.outcome is None
    assert str(exc) == "HTTP 418 from GET /x"


def test_events_serialise_to_json() -> None:
    now = datetime.now(timezone.utc)
    event = RequestEvent(
        method="GET",
        path="/fhir/R4/Patient/1",
        path_template="/fhir/R4/Patient/{id}",
        query_params={"a": ["1"]},
        resource_type="Patient",
        resource_id="1",
        operation=None,
        started_at=now,
        ended_at=now,
        attempts=[RequestAttempt(1, None, 0.1, "ProjectMembership/x", httpx.ConnectError("x"))],
        final_status_code=None,
        final_exception=TokenRefreshCooldownError(2.0),
        action="read",
    )
    assert event.outcome == "error"
    json.dumps(event.to_phi_audit_dict(include_query_params=True))
    json.dumps(event.to_non_phi_dict())
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.method = "POST"  # type: ignore[misc]


def test_hook_aliases_are_exported() -> None:
    import pymedplum.hooks as hooks

    for name in (
        "BeforeRequestHook", "OnRequestCompleteHook", "AsyncOnRequestCompleteHook",
        "RequestAction", "RequestOutcome", "PreparedRequest", "RequestAttempt", "RequestEvent",
        "serialize_exception",
    ):  # fmt: skip
        assert hasattr(hooks, name) and name in hooks.__all__


def test_importing_the_package_loads_no_http_stack() -> None:
    code = (
        "import sys, pymedplum; print(sorted(m for m in ('httpx', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (['"requests";r=0;t=42'], 42.0),
        (['"requests";r=3;t=42'], None),  # not exhausted: says nothing about this 429
        (['"requests";r=0;t=42, "fhirInteractions";r=0;t=50'], 50.0),
        (['"requests";r=9;t=60', '"fhirInteractions";r=0;t=7'], 7.0),
        (["garbage", '"requests";r=x;t=1', '"requests";t=5'], None),
        # only ASCII digits, as for Retry-After
        (['"requests";r=0;t=+5', '"requests";r=0;t=1_0', '"requests";r=0;t=\uff15'], None),
        (['"requests";r=-1;t=5', '"requests";r=0;t=-5'], None),
        # too many digits for a float (inf): unreadable, as parse_retry_after has it
        (['"requests";r=0;t=' + "9" * 400], None),
        ([], None),
    ],
)
def test_rate_limit_reset_reads_medplums_ratelimit_header(
    values: list[str], expected: float | None
) -> None:
    assert rate_limit_reset(values) == expected


@pytest.mark.parametrize(
    ("status_code", "body", "done"),
    [
        (200, {"transactionTime": "2026-01-01T00:00:00Z", "request": "x", "output": []}, True),
        (202, {}, False),  # the export still runs
        (200, {"resourceType": "AsyncJob", "status": "accepted"}, False),
        (200, {"status": "accepted"}, False),  # job-like, not a manifest: keep polling
    ],
)
def test_bulk_data_done_only_for_a_finished_export_manifest(
    status_code: int, body: dict[str, object], done: bool
) -> None:
    assert bulk_data_done(status_code, body) is done

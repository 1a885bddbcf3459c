"""Bundles, GraphQL, $set-accounts, async jobs, Binary, C-CDA and terminology on both clients."""

from __future__ import annotations

import copy
import json
import math
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from pymedplum import RetryPolicy
from pymedplum._async._overrides import jobs as async_jobs
from pymedplum._sync._overrides import jobs as sync_jobs
from pymedplum.exceptions import NotFoundError, UnsafeRedirectError
from pymedplum.fhir import Bundle as FhirBundle
from pymedplum.fhir import BundleEntry, BundleEntryRequest, Patient

from .conftest import BASE, FHIR, OperationOutcome, json_response, outcome

pytestmark = pytest.mark.anyio


def query_of(request: httpx.Request) -> list[tuple[str, str]]:
    return parse_qsl(request.url.query.decode(), keep_blank_values=True)


def ok(body: Any = None) -> Any:
    return lambda request: json_response(
        200, body if body is not None else {"resourceType": "Parameters"}
    )


# --- bundles --------------------------------------------------------------------------------

BATCH = {
    "resourceType": "Bundle",
    "type": "batch",
    "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {
            "resource": {
                "resourceType": "Observation",
                "meta": {"accounts": [{"reference": "Organization/a"}]},
            },
            "request": {"method": "POST", "url": "Observation"},
        },
        {"request": {"method": "DELETE", "url": "Patient/9"}},
    ],
}


async def test_batch_posts_to_the_fhir_base_and_stamps_every_entry(make: Any) -> None:
    h = make(ok({"resourceType": "Bundle", "type": "batch-response"}))
    before = copy.deepcopy(BATCH)
    result = await h.call("execute_batch", BATCH, accounts=["Organization/a", "Organization/b"])
    assert result == {"resourceType": "Bundle", "type": "batch-response"}
    assert (h.last.method, str(h.last.url)) == ("POST", FHIR)
    sent = h.body()
    assert sent["entry"][0]["resource"]["meta"]["accounts"] == [
        {"reference": "Organization/a"},
        {"reference": "Organization/b"},
    ]
    assert sent["entry"][1]["resource"]["meta"]["accounts"] == [
        {"reference": "Organization/a"},
        {"reference": "Organization/b"},
    ]
    assert sent["entry"][2] == BATCH["entry"][2]
    assert before == BATCH
    assert h.events[-1].action == "batch_or_transaction"


PATCH_BINARY = {
    "resourceType": "Binary",
    "contentType": "application/json-patch+json",
    "data": "W3sib3AiOiAiYWRkIiwgInBhdGgiOiAiL2dlbmRlciIsICJ2YWx1ZSI6ICJtYWxlIn1d",
}


async def test_batch_accounts_stamp_only_post_and_put_entries(make: Any) -> None:
    # A PATCH entry's resource is the patch document (a Binary): stamping it would not reach
    # the patched resource, so it is sent as given.
    h = make(ok({"resourceType": "Bundle", "type": "batch-response"}))
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": PATCH_BINARY, "request": {"method": "PATCH", "url": "Patient/1"}},
            {
                "resource": {"resourceType": "Patient", "id": "2"},
                "request": {"method": "PUT", "url": "Patient/2"},
            },
            {
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {"resourceType": "Patient"},
                "request": {"method": "GET", "url": "Patient/3"},
            },
            {"resource": {"resourceType": "Patient"}},
        ],
    }
    before = copy.deepcopy(bundle)
    await h.call("execute_batch", bundle, accounts="Organization/a")
    sent = h.body()["entry"]
    stamped = {"accounts": [{"reference": "Organization/a"}]}
    assert sent[0] == before["entry"][0]
    assert sent[1]["resource"]["meta"] == stamped
    assert sent[2]["resource"]["meta"] == stamped
    assert sent[3:] == before["entry"][3:]
    assert bundle == before


async def test_batch_accounts_stamp_models_inside_a_dict_bundle(make: Any) -> None:
    # The body encoder writes a model in a dict as its JSON, but the stamping looked at dicts
    # only: a Patient model (or a BundleEntry model) was sent without the accounts.
    h = make(ok({"resourceType": "Bundle", "type": "batch-response"}))
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": Patient(gender="male"), "request": {"method": "POST", "url": "Patient"}},
            BundleEntry(resource=Patient(gender="female"), request={"method": "POST", "url": "x"}),
            {
                "resource": {"resourceType": "Patient"},
                "request": BundleEntryRequest(method="PUT", url="Patient/1"),
            },
            {"resource": Patient(), "request": BundleEntryRequest(method="GET", url="Patient/2")},
        ],
    }
    await h.call("execute_batch", bundle, accounts="Organization/a")
    sent = h.body()["entry"]
    stamped = {"accounts": [{"reference": "Organization/a"}]}
    assert [entry["resource"].get("meta") for entry in sent] == [stamped] * 3 + [None]
    assert sent[0]["resource"]["gender"] == "male"
    assert sent[1]["resource"]["gender"] == "female"
    assert sent[2]["request"] == {"method": "PUT", "url": "Patient/1"}


async def test_batch_accounts_on_a_malformed_entry_meta_names_the_entry(make: Any) -> None:
    h = make(ok())
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {"resourceType": "Patient", "meta": {"accounts": "Organization/x"}},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    with pytest.raises(
        TypeError, match=r"^bundle\.entry\[1\]\.resource\.meta\.accounts must be a list"
    ):
        await h.call("execute_batch", bundle, accounts="Organization/a")
    assert h.requests == []


async def test_batch_without_accounts_is_sent_as_given(make: Any) -> None:
    h = make(ok({"resourceType": "Bundle"}))
    await h.call("execute_batch", BATCH)
    assert h.body() == BATCH


async def test_batch_rejects_another_resource(make: Any) -> None:
    h = make(ok())
    with pytest.raises(ValueError, match="Bundle"):
        await h.call("execute_batch", {"resourceType": "Patient"})


SUBSETTED_TAG = {"system": "http://hl7.org/fhir/v3/ObservationValue", "code": "SUBSETTED"}
SUBSET = {"resourceType": "Patient", "id": "7", "meta": {"tag": [SUBSETTED_TAG]}}


@pytest.mark.parametrize("method", ["execute_batch", "execute_transaction"])
@pytest.mark.parametrize("form", ["dicts", "model entry", "model resource", "model bundle"])
async def test_bundles_refuse_a_subsetted_put(make: Any, method: str, form: str) -> None:
    # A PUT entry replaces the stored resource, as update_resource does: one read with
    # _elements or _summary would erase every element it lacks.
    request = {"method": "PUT", "url": "Patient/7"}
    entry: Any = {"resource": SUBSET, "request": request}
    if form == "model entry":
        entry = BundleEntry.model_validate(entry)
    elif form == "model resource":
        entry = {"resource": Patient.model_validate(SUBSET), "request": request}
    get = {"request": {"method": "GET", "url": "Patient/1"}}
    bundle: Any = {"resourceType": "Bundle", "type": "batch", "entry": [get, entry]}
    if form == "model bundle":
        bundle = FhirBundle.model_validate(
            {**bundle, "entry": [get, {"resource": SUBSET, "request": request}]}
        )
    h = make(ok({"resourceType": "Bundle"}))
    with pytest.raises(
        ValueError, match=r"^bundle\.entry\[1\]\.resource is tagged SUBSETTED in meta\.tag"
    ):
        await h.call(method, bundle)
    assert h.requests == []


@pytest.mark.parametrize("verb", ["POST", "PATCH", "GET"])
async def test_bundles_send_a_subsetted_resource_that_is_not_a_put(make: Any, verb: str) -> None:
    # Only a PUT replaces a stored resource with the subset.
    entry = {"resource": SUBSET, "request": {"method": verb, "url": "Patient"}}
    h = make(ok({"resourceType": "Bundle"}))
    await h.call("execute_batch", {"resourceType": "Bundle", "type": "batch", "entry": [entry]})
    assert h.body()["entry"] == [entry]


async def test_transaction_coerces_the_type(make: Any) -> None:
    h = make(ok({"resourceType": "Bundle", "type": "transaction-response"}))
    given = {"resourceType": "Bundle", "entry": []}
    await h.call("execute_transaction", given)
    assert h.body() == {"resourceType": "Bundle", "type": "transaction", "entry": []}
    assert "type" not in given
    await h.call("execute_transaction", {**given, "type": "batch"})
    assert h.body()["type"] == "transaction"
    assert str(h.last.url) == FHIR


# --- GraphQL --------------------------------------------------------------------------------


async def test_graphql_posts_query_and_variables(make: Any) -> None:
    h = make(ok({"data": {"Patient": {"id": "123"}}}))
    query = "query GetPatient($id: ID!) { Patient(id: $id) { id } }"
    result = await h.call("execute_graphql", query, variables={"id": "123"})
    assert result == {"data": {"Patient": {"id": "123"}}}
    assert (h.last.method, str(h.last.url)) == ("POST", FHIR + "$graphql")
    assert h.body() == {"query": query, "variables": {"id": "123"}}
    await h.call("execute_graphql", "{ PatientList { id } }")
    assert h.body() == {"query": "{ PatientList { id } }", "variables": {}}
    assert h.events[-1].action == "operation"


# --- $set-accounts --------------------------------------------------------------------------


async def test_set_accounts_posts_parameters(make: Any) -> None:
    answer = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resourcesUpdated", "valueInteger": 3}],
    }
    h = make(ok(answer))
    result = await h.call(
        "set_accounts", "Patient/123", ["Organization/org-456", "Practitioner/p-7"], propagate=True
    )
    assert result == answer
    assert (h.last.method, str(h.last.url)) == ("POST", FHIR + "Patient/123/$set-accounts")
    assert h.body() == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "accounts", "valueReference": {"reference": "Organization/org-456"}},
            {"name": "accounts", "valueReference": {"reference": "Practitioner/p-7"}},
            {"name": "propagate", "valueBoolean": True},
        ],
    }
    assert "Prefer" not in h.last.headers


async def test_set_accounts_sends_each_account_once_in_the_given_order(make: Any) -> None:
    # ["Organization/o", "Organization/o"] sent the account twice; stamp_accounts
    # (accounts= on writes) already de-duplicates.
    h = make(ok({"resourceType": "Parameters"}))
    refs = ["Organization/o", "Practitioner/p", "Organization/o", "Practitioner/p"]
    await h.call("set_accounts", "Patient/123", refs)
    assert h.body()["parameter"] == [
        {"name": "accounts", "valueReference": {"reference": "Organization/o"}},
        {"name": "accounts", "valueReference": {"reference": "Practitioner/p"}},
    ]


async def test_set_accounts_async_returns_the_outcome_with_the_job_url(make: Any) -> None:
    job = outcome("informational", FHIR + "job/j-1/status")
    h = make(lambda request: json_response(202, job))
    result = await h.call(
        "set_accounts", "Patient/123", "Organization/o", propagate=True, prefer_async=True
    )
    assert result == job
    assert h.last.headers["Prefer"] == "respond-async"
    assert h.body()["parameter"][0] == {
        "name": "accounts",
        "valueReference": {"reference": "Organization/o"},
    }


async def test_set_accounts_prefer_async_without_propagate_still_sends_the_header(
    make: Any,
) -> None:
    # The contract: "If True, send Prefer: respond-async. Only takes effect when propagate is
    # also True" (the server's side); the call is not refused.
    h = make(lambda request: json_response(200, {"resourceType": "Parameters"}))
    result = await h.call("set_accounts", "Patient/1", "Organization/o", prefer_async=True)
    assert result == {"resourceType": "Parameters"}
    assert h.last.headers["Prefer"] == "respond-async"
    assert [p["name"] for p in h.body()["parameter"]] == ["accounts"]


@pytest.mark.parametrize(("ref", "accounts"), [("Patient", "Organization/o"), ("Patient/1", "o")])
async def test_set_accounts_rejects_malformed_references(
    make: Any, ref: str, accounts: str
) -> None:
    h = make(ok())
    with pytest.raises(ValueError):
        await h.call("set_accounts", ref, accounts)
    assert h.requests == []


# --- async jobs -----------------------------------------------------------------------------

JOB_URL = FHIR + "job/j-1/status"


async def test_job_status_by_id_url_and_outcome(make: Any) -> None:
    job = {"resourceType": "AsyncJob", "id": "j-1", "status": "active"}
    h = make(ok(job))
    for reference in (
        "j-1",
        JOB_URL,
        outcome("informational", JOB_URL),
        OperationOutcome(
            issue=[{"severity": "information", "code": "informational", "diagnostics": JOB_URL}]
        ),
    ):
        assert await h.call("get_async_job_status", reference) == job
        assert (h.last.method, str(h.last.url)) == ("GET", JOB_URL)
    assert {e.action for e in h.events} == {"read"}


async def test_job_status_refuses_another_origin(make: Any) -> None:
    h = make(ok())
    with pytest.raises(UnsafeRedirectError):
        await h.call("get_async_job_status", "https://evil.example/fhir/R4/job/j-1/status")
    with pytest.raises(UnsafeRedirectError):
        await h.call("get_async_job_status", outcome("informational", "https://evil.example/job"))
    assert h.requests == []


async def test_job_status_needs_a_url_in_the_outcome(make: Any) -> None:
    h = make(ok())
    with pytest.raises(ValueError, match="diagnostics"):
        await h.call("get_async_job_status", {"resourceType": "OperationOutcome", "issue": []})
    with pytest.raises(TypeError, match="job"):
        await h.call("get_async_job_status", 42)


@pytest.mark.parametrize(
    ("job", "error", "message"),
    [
        # The AsyncJob resource itself is not a job reference: say what is, and how to get one.
        (
            {"resourceType": "AsyncJob", "id": "abc", "status": "accepted"},
            ValueError,
            r"^job must be a job id, a status URL, or the OperationOutcome .*"
            r"got a resource of type 'AsyncJob'; pass its id instead$",
        ),
        ({"resourceType": "Patient"}, ValueError, r"got a resource of type 'Patient'$"),
        ("", ValueError, r"^job must not be empty: pass a job id"),
        ("   ", ValueError, r"^job must not be empty"),
        (None, TypeError, r"^job must be a job id, .* got NoneType$"),
    ],
)
async def test_job_status_says_what_a_job_is(
    make: Any, job: Any, error: type[Exception], message: str
) -> None:
    h = make(ok())
    for method in ("get_async_job_status", "wait_for_async_job"):
        with pytest.raises(error, match=message):
            await h.call(method, job)
    assert h.requests == []


class FakeClock:
    """Replaces the jobs module's sleep and monotonic clock: sleeping advances time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    for module, sleeper in ((async_jobs, fake.async_sleep), (sync_jobs, fake.sleep)):
        monkeypatch.setattr(module, "sleep", sleeper)
        monkeypatch.setattr(module.time, "monotonic", fake.monotonic)
    return fake


def statuses(*values: str) -> Any:
    remaining = list(values)

    def handler(request: httpx.Request) -> httpx.Response:
        status = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return json_response(
            200, {"resourceType": "AsyncJob", "status": status, "output": {"n": 1}}
        )

    return handler


async def test_wait_polls_until_completed(make: Any, clock: FakeClock) -> None:
    h = make(statuses("accepted", "active", "completed"))
    job = await h.call("wait_for_async_job", outcome("informational", JOB_URL), poll_interval=0.5)
    assert job["status"] == "completed"
    assert len(h.requests) == 3
    assert clock.sleeps == [0.5, 0.5]


@pytest.mark.parametrize("terminal", ["error", "cancelled"])
async def test_wait_stops_at_any_terminal_status(
    make: Any, clock: FakeClock, terminal: str
) -> None:
    h = make(statuses("active", terminal))
    assert (await h.call("wait_for_async_job", "j-1"))["status"] == terminal
    assert clock.sleeps == [1.0]


async def test_wait_on_a_real_job_url_sees_202_then_200(make: Any, clock: FakeClock) -> None:
    # Medplum's job.ts answers 202 (with the AsyncJob) until completed / error, then 200.
    answers = iter([(202, "accepted"), (202, "active"), (200, "completed")])

    def handler(request: httpx.Request) -> httpx.Response:
        code, status = next(answers)
        return json_response(code, {"resourceType": "AsyncJob", "status": status})

    h = make(handler)
    assert (await h.call("wait_for_async_job", JOB_URL))["status"] == "completed"
    assert len(h.requests) == 3


async def test_wait_follows_a_bulk_data_export_status_url(make: Any, clock: FakeClock) -> None:
    # Medplum's $export hands out fhir/R4/bulkdata/export/{id} (bulkdata.ts): 202 with no body
    # while running, then 200 with the manifest, which has no status field.
    manifest = {"transactionTime": "2025-01-01T00:00:00Z", "request": "x", "output": []}
    answers = iter([httpx.Response(202), httpx.Response(202), json_response(200, manifest)])
    h = make(lambda request: next(answers))
    url = FHIR + "bulkdata/export/e-1"
    assert await h.call("wait_for_async_job", outcome("informational", url)) == manifest
    assert [str(r.url) for r in h.requests] == [url] * 3
    assert clock.sleeps == [1.0, 1.0]


# How Medplum 5.0.10 answers for a job that failed or was cancelled (fhir/job.ts, bulkdata.ts).
NOT_FOUND = {  # @medplum/core notFound
    "resourceType": "OperationOutcome",
    "id": "not-found",
    "issue": [{"severity": "error", "code": "not-found", "details": {"text": "Not found"}}],
}
FAILED_OUTPUTS = {
    # AsyncJobExecutor.failJob of an OperationOutcomeError: the outcome in output.
    "outcome": {
        "resourceType": "Parameters",
        "parameter": [{"name": "outcome", "resource": outcome("not-found")}],
    },
    # failJob of any other Error: its message and stack.
    "error": {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "error", "valueString": "Cannot search on Binary resource type"},
            {"name": "stack", "valueString": "Error: Cannot search...\n    at reindex.ts:1"},
        ],
    },
}


@pytest.mark.parametrize("kind", sorted(FAILED_OUTPUTS))
async def test_wait_returns_a_failed_job_at_once(make: Any, clock: FakeClock, kind: str) -> None:
    # job.ts: 202 with the AsyncJob while accepted / active, 200 once it is error (a final
    # status there, like completed). The wait ends on that first 200 and returns the AsyncJob,
    # failure details included, as for a completed one (the contract: the final status).
    failed = {
        "resourceType": "AsyncJob",
        "id": "j-1",
        "status": "error",
        "request": "x",
        "output": FAILED_OUTPUTS[kind],
    }
    answers = iter(
        [
            json_response(202, {**failed, "status": "accepted", "output": None}),
            json_response(202, {**failed, "status": "active", "output": None}),
            json_response(200, failed),
        ]
    )
    h = make(lambda request: next(answers))
    assert await h.call("wait_for_async_job", JOB_URL, timeout=60) == failed
    assert len(h.requests) == 3
    assert clock.sleeps == [1.0, 1.0]


async def test_wait_stops_at_a_cancelled_job_although_medplum_answers_202(
    make: Any, clock: FakeClock
) -> None:
    # job.ts counts only completed and error as final: a cancelled AsyncJob still answers 202,
    # for ever (Medplum's own client would poll on). Its status is final all the same.
    job = {"resourceType": "AsyncJob", "id": "j-1", "status": "accepted", "request": "x"}
    answers = iter([json_response(202, job), json_response(202, {**job, "status": "cancelled"})])
    h = make(lambda request: next(answers))
    done = await h.call("wait_for_async_job", JOB_URL, timeout=60)
    assert done["status"] == "cancelled"
    assert len(h.requests) == 2


async def test_a_cancelled_bulk_data_export_raises_not_found_at_once(
    make: Any, clock: FakeClock
) -> None:
    # bulkdata.ts answers 404 with notFound once the export's job is cancelled (DELETE on the
    # status URL), as for an unknown id: no manifest will come, so the wait ends there.
    url = FHIR + "bulkdata/export/e-1"
    answers = iter([httpx.Response(202), json_response(404, NOT_FOUND)])
    h = make(lambda request: next(answers))
    with pytest.raises(NotFoundError) as info:
        await h.call("wait_for_async_job", outcome("informational", url), timeout=60)
    assert type(info.value) is NotFoundError and info.value.status_code == 404
    assert info.value.outcome == NOT_FOUND
    assert str(info.value) == (
        "HTTP 404 Not Found from GET /fhir/R4/bulkdata/export/{id} [error/not-found]; Medplum "
        "answers 404 on a Bulk Data status URL once the export is cancelled (or when no export "
        "has that id)"
    )
    assert len(h.requests) == 2 and clock.sleeps == [1.0]
    h = make(lambda request: json_response(404, NOT_FOUND))
    with pytest.raises(NotFoundError, match="once the export is cancelled"):
        await h.call("get_async_job_status", url)
    # A job URL's 404 (no such AsyncJob) keeps the plain message.
    h = make(lambda request: json_response(404, NOT_FOUND))
    with pytest.raises(NotFoundError) as info:
        await h.call("wait_for_async_job", JOB_URL)
    assert "cancelled" not in str(info.value)


async def test_a_bulk_data_wait_that_times_out_says_it_is_still_running(
    make: Any, clock: FakeClock
) -> None:
    # A Bulk Data status URL answers 202 with no body (no status field) while the export runs:
    # the timeout must not read "still None".
    h = make(lambda request: httpx.Response(202))
    url = FHIR + "bulkdata/export/e-1"
    with pytest.raises(TimeoutError) as info:
        await h.call("wait_for_async_job", outcome("informational", url), 1.0, 2.0)
    # On Medplum 5.0.10 a failed export answers the same 202 for ever: the message says so.
    assert str(info.value) == (
        "async job still running (HTTP 202) after 2.0 seconds; a Medplum Bulk Data status URL "
        "answers 202 for an export that failed too (the failure is only in the server's log)"
    )


async def test_a_timeout_shows_the_job_status_only_when_it_is_a_code(
    make: Any, clock: FakeClock
) -> None:
    # The message quoted whatever the answer's status held; an exception message is logged.
    h = make(statuses("export of Smith, John 1970-01-01"))
    with pytest.raises(TimeoutError) as info:
        await h.call("wait_for_async_job", "j-1", 2.0, 5.0)
    assert str(info.value) == (
        "async job still in a state that is not a status code after 5.0 seconds"
    )


async def test_wait_times_out(make: Any, clock: FakeClock) -> None:
    h = make(statuses("active"))
    with pytest.raises(TimeoutError, match=r"^async job still 'active' after 5.0 seconds$"):
        await h.call("wait_for_async_job", "j-1", 2.0, 5.0)
    assert sum(clock.sleeps) == pytest.approx(5.0)
    assert len(h.requests) == 4  # t=0, 2, 4, then the last poll at the deadline


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        # A zero interval polled in a tight loop (155 requests in 50 ms).
        (
            {"poll_interval": 0},
            ValueError,
            r"^poll_interval must be a finite number of seconds > 0, got 0$",
        ),
        ({"poll_interval": -1}, ValueError, r"^poll_interval must be .* got -1$"),
        ({"poll_interval": math.nan}, ValueError, r"^poll_interval must be .* got nan$"),
        ({"poll_interval": math.inf}, ValueError, r"^poll_interval must be .* got inf$"),
        ({"poll_interval": 10**400}, ValueError, r"^poll_interval must be a finite"),
        ({"poll_interval": "1"}, TypeError, r"^poll_interval must be .* got str$"),
        ({"poll_interval": True}, TypeError, r"^poll_interval must be .* got bool$"),
        ({"poll_interval": None}, TypeError, r"^poll_interval must be .* got NoneType$"),
        (
            {"timeout": 0},
            ValueError,
            r"^timeout must be a finite number of seconds > 0 or None, got 0$",
        ),
        ({"timeout": -1}, ValueError, r"^timeout must be .* got -1$"),
        ({"timeout": math.nan}, ValueError, r"^timeout must be .* got nan$"),
        ({"timeout": math.inf}, ValueError, r"^timeout must be .* got inf$"),
        ({"timeout": "soon"}, TypeError, r"^timeout must be .* got str$"),
    ],
)
async def test_wait_rejects_bad_intervals_before_polling(
    make: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    h = make(statuses("active"))
    with pytest.raises(error, match=message):
        await h.call("wait_for_async_job", "j-1", **kwargs)
    assert h.requests == []


async def test_wait_accepts_small_positive_intervals(make: Any, clock: FakeClock) -> None:
    h = make(statuses("active", "completed"))
    job = await h.call("wait_for_async_job", "j-1", poll_interval=0.001, timeout=1)
    assert job["status"] == "completed"
    assert clock.sleeps == [0.001]


# --- Binary & C-CDA -------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 4 + b"\x00\xff%PDF-1.7\r\n"


async def test_binary_round_trip_keeps_bytes_and_content_type(make: Any) -> None:
    stored: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            stored["content"] = request.content
            stored["type"] = request.headers["Content-Type"]
            return json_response(
                201, {"resourceType": "Binary", "id": "b-1", "contentType": stored["type"]}
            )
        assert request.headers["Accept"] == "*/*"
        return httpx.Response(
            200, content=stored["content"], headers={"Content-Type": stored["type"]}
        )

    h = make(handler)
    binary = await h.call("upload_binary", PAYLOAD, "application/pdf")
    assert binary == {"resourceType": "Binary", "id": "b-1", "contentType": "application/pdf"}
    assert (h.last.method, str(h.last.url)) == ("POST", FHIR + "Binary")
    assert stored == {"content": PAYLOAD, "type": "application/pdf"}
    assert await h.call("download_binary", "b-1") == PAYLOAD
    assert str(h.last.url) == FHIR + "Binary/b-1"
    assert [e.action for e in h.events] == ["create", "read"]


async def test_export_ccda_returns_the_xml_text(make: Any) -> None:
    xml = '<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3">é</ClinicalDocument>'
    h = make(
        lambda request: httpx.Response(
            200, content=xml.encode(), headers={"Content-Type": "application/xml; charset=utf-8"}
        )
    )
    assert await h.call("export_ccda", "patient-123") == xml
    assert str(h.last.url) == FHIR + "Patient/patient-123/$ccda-export"
    assert h.events[-1].action == "operation"


# --- terminology ----------------------------------------------------------------------------


async def test_expand_by_url_sends_query_parameters(make: Any) -> None:
    h = make(ok({"resourceType": "ValueSet", "expansion": {"contains": []}}))
    result = await h.call(
        "expand_valueset",
        valueset_url="http://hl7.org/fhir/ValueSet/condition-code",
        filter="diabetes",
        count=20,
        offset=0,
        include_designations=True,
        active_only=False,
        exclude_not_for_ui=True,
        display_language="en",
        property=["parent", "child"],
    )
    assert result["resourceType"] == "ValueSet"
    assert h.last.method == "GET"
    assert h.last.url.path == "/fhir/R4/ValueSet/$expand"
    assert query_of(h.last) == [
        ("url", "http://hl7.org/fhir/ValueSet/condition-code"),
        ("filter", "diabetes"),
        ("offset", "0"),
        ("count", "20"),
        ("includeDesignations", "true"),
        ("activeOnly", "false"),
        ("excludeNotForUI", "true"),
        ("displayLanguage", "en"),
        ("property", "parent"),
        ("property", "child"),
    ]


VALUE_SET = {
    "resourceType": "ValueSet",
    "id": "my-custom-valueset",
    "url": "http://example.org/vs",
    "status": "active",
}


async def test_expand_by_id_reads_the_valueset_and_posts_it(make: Any) -> None:
    # Medplum 5.0.10 routes $expand at the type level only (packages/server/src/fhir/routes.ts):
    # GET ValueSet/{id}/$expand answers 404 there.
    expanded = {**VALUE_SET, "expansion": {"contains": [{"code": "a"}]}}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return json_response(200, VALUE_SET)
        return json_response(200, expanded)

    h = make(handler)
    result = await h.call(
        "expand_valueset",
        valueset_id="my-custom-valueset",
        filter="diab",
        count=5,
        active_only=True,
        display_language="en",
    )
    assert result == expanded
    read, post = h.requests
    assert (read.method, str(read.url)) == ("GET", FHIR + "ValueSet/my-custom-valueset")
    assert (post.method, str(post.url)) == ("POST", FHIR + "ValueSet/$expand")
    assert post.headers["Content-Type"] == "application/fhir+json"
    assert h.body() == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "valueSet", "resource": VALUE_SET},
            {"name": "filter", "valueString": "diab"},
            {"name": "count", "valueInteger": 5},
            {"name": "activeOnly", "valueBoolean": True},
            {"name": "displayLanguage", "valueCode": "en"},
        ],
    }
    assert [(e.action, e.method, e.operation) for e in h.events] == [
        ("read", "GET", None),
        ("operation", "POST", "$expand"),
    ]


async def test_expand_by_id_is_retried_like_a_read(make: Any) -> None:
    # The POST only reads: a 503 is retried although POST is not replay-safe by default.
    answers = iter([503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return json_response(200, VALUE_SET)
        return json_response(next(answers), VALUE_SET)

    h = make(handler, retry=RetryPolicy(backoff_base=0))
    assert await h.call("expand_valueset", valueset_id="my-custom-valueset") == VALUE_SET
    assert [r.method for r in h.requests] == ["GET", "POST", "POST"]


async def test_expand_by_a_bad_id_names_the_argument_and_sends_nothing(make: Any) -> None:
    h = make(ok())
    with pytest.raises(ValueError, match=r"^valueset_id must be a FHIR id"):
        await h.call("expand_valueset", valueset_id="a/b")
    assert h.requests == []


async def test_expand_by_url_and_id_together_is_refused_before_sending(make: Any) -> None:
    # By id the ValueSet itself is POSTed; a url beside it (sent as url=) could name another.
    h = make(ok())
    with pytest.raises(ValueError, match="not both"):
        await h.call("expand_valueset", valueset_url="http://x/vs", valueset_id="vs-1")
    assert h.requests == []


@pytest.mark.parametrize(("query", "error"), [("", ValueError), ("  ", ValueError), (5, TypeError)])
async def test_graphql_query_errors(make: Any, query: object, error: type[Exception]) -> None:
    # A wrong type is a TypeError, a bad value (an empty query) a ValueError, as everywhere.
    h = make(ok())
    with pytest.raises(error, match=r"^query must be"):
        await h.call("execute_graphql", query)
    assert h.requests == []


async def test_expand_by_an_unknown_id_raises_not_found(make: Any) -> None:
    h = make(lambda request: json_response(404, outcome("not-found")))
    with pytest.raises(NotFoundError):
        await h.call("expand_valueset", valueset_id="missing")
    assert len(h.requests) == 1


async def test_expand_needs_a_url_or_an_id(make: Any) -> None:
    h = make(ok())
    with pytest.raises(ValueError, match="valueset_url"):
        await h.call("expand_valueset")


async def test_lookup_get_and_post(make: Any) -> None:
    h = make(
        ok(
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "display", "valueString": "Heart rate"}],
            }
        )
    )
    result = await h.call("lookup_concept", "8867-4", "http://loinc.org", property=["parent"])
    assert result["parameter"][0]["valueString"] == "Heart rate"
    assert (h.last.method, h.last.url.path) == ("GET", "/fhir/R4/CodeSystem/$lookup")
    assert query_of(h.last) == [
        ("code", "8867-4"),
        ("system", "http://loinc.org"),
        ("property", "parent"),
    ]
    await h.call("lookup_concept", "8867-4", codesystem_id="loinc")
    assert h.last.url.path == "/fhir/R4/CodeSystem/loinc/$lookup"
    coding = {"system": "http://loinc.org", "code": "8867-4"}
    await h.call("lookup_concept", "8867-4", coding=coding, display_language="de")
    assert (h.last.method, h.last.url.path) == ("POST", "/fhir/R4/CodeSystem/$lookup")
    assert h.body() == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "coding", "valueCoding": coding},
            {"name": "displayLanguage", "valueCode": "de"},
        ],
    }
    with pytest.raises(ValueError, match="contradicts"):
        await h.call("lookup_concept", "other", coding=coding)


async def test_translate_get_and_post(make: Any) -> None:
    h = make(
        ok({"resourceType": "Parameters", "parameter": [{"name": "result", "valueBoolean": True}]})
    )
    await h.call(
        "translate_concept",
        code="final",
        system="http://hl7.org/fhir/observation-status",
        conceptmap_url="http://example.org/ConceptMap/status-mapping",
        target_system="http://example.org/local-codes",
        reverse=False,
    )
    assert (h.last.method, h.last.url.path) == ("GET", "/fhir/R4/ConceptMap/$translate")
    assert query_of(h.last) == [
        ("url", "http://example.org/ConceptMap/status-mapping"),
        ("code", "final"),
        ("system", "http://hl7.org/fhir/observation-status"),
        ("targetsystem", "http://example.org/local-codes"),
        ("reverse", "false"),
    ]
    await h.call("translate_concept", code="active", system="s", conceptmap_id="my-status-map")
    assert h.last.url.path == "/fhir/R4/ConceptMap/my-status-map/$translate"
    concept = {"coding": [{"system": "s", "code": "c"}], "text": "t"}
    await h.call("translate_concept", conceptmap_id="m", codeable_concept=concept, version="2")
    assert h.last.method == "POST"
    assert h.body() == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "conceptMapVersion", "valueString": "2"},
            {"name": "codeableConcept", "valueCodeableConcept": concept},
        ],
    }
    with pytest.raises(ValueError, match="not both"):
        await h.call("translate_concept", code="c", coding={"code": "c"})


async def test_property_given_as_one_str_is_one_value(make: Any) -> None:
    # A str is a Sequence[str]: it was split into property=s&property=t&...
    h = make(ok())
    await h.call("expand_valueset", valueset_url="http://vs", property="status")
    assert query_of(h.last) == [("url", "http://vs"), ("property", "status")]
    await h.call("lookup_concept", "8867-4", "http://loinc.org", property="parent")
    assert query_of(h.last) == [
        ("code", "8867-4"),
        ("system", "http://loinc.org"),
        ("property", "parent"),
    ]
    coding = {"system": "http://loinc.org", "code": "8867-4"}
    await h.call("lookup_concept", "8867-4", coding=coding, property="parent")
    assert h.body()["parameter"][1] == {"name": "property", "valueCode": "parent"}
    await h.call("expand_valueset", valueset_url="http://vs", property=("a", "b"))
    assert query_of(h.last)[1:] == [("property", "a"), ("property", "b")]


async def test_expand_leaves_an_empty_filter_out(make: Any) -> None:
    h = make(ok())
    await h.call("expand_valueset", valueset_url="http://vs", filter="")
    assert query_of(h.last) == [("url", "http://vs")]


async def test_lookup_dates_are_sent_in_iso_format(make: Any) -> None:
    h = make(ok())
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    await h.call("lookup_concept", "c", "http://s", date=when)
    assert ("date", "2024-01-02T03:04:05+00:00") in query_of(h.last)
    await h.call(
        "lookup_concept", "c", coding={"system": "http://s", "code": "c"}, date=date(2024, 1, 2)
    )
    assert {"name": "date", "valueDateTime": "2024-01-02"} in h.body()["parameter"]


async def test_lookup_needs_a_system_unless_the_instance_or_coding_has_one(make: Any) -> None:
    h = make(ok())
    # The contract: system is "required unless using codesystem_id".
    with pytest.raises(
        ValueError,
        match=r"^lookup_concept needs system \(or codesystem_id\) to look up code '8867-4'$",
    ):
        await h.call("lookup_concept", "8867-4")
    with pytest.raises(ValueError, match=r"^lookup_concept needs a system: coding has none"):
        await h.call("lookup_concept", None, coding={"code": "8867-4"})
    with pytest.raises(ValueError, match=r"^lookup_concept needs a code: coding has none"):
        await h.call("lookup_concept", "", coding={"system": "http://loinc.org"})
    assert h.requests == []
    await h.call("lookup_concept", "8867-4", codesystem_id="loinc")
    assert query_of(h.last) == [("code", "8867-4")]
    await h.call("lookup_concept", None, coding={"code": "8867-4"}, codesystem_id="loinc")
    assert h.last.url.path == "/fhir/R4/CodeSystem/loinc/$lookup"
    # code and system fill in what the Coding lacks ("" is the positional code left empty).
    await h.call("lookup_concept", "", system="http://loinc.org", coding={"code": "8867-4"})
    assert h.body()["parameter"] == [
        {"name": "coding", "valueCoding": {"code": "8867-4", "system": "http://loinc.org"}}
    ]
    await h.call("lookup_concept", "8867-4", coding={"system": "http://loinc.org"})
    assert h.body()["parameter"][0]["valueCoding"] == {
        "system": "http://loinc.org",
        "code": "8867-4",
    }


async def test_translate_takes_exactly_one_source(make: Any) -> None:
    h = make(ok())
    with pytest.raises(ValueError, match=r"^translate_concept needs system to translate code 'a'$"):
        await h.call("translate_concept", code="a", conceptmap_id="m")
    with pytest.raises(ValueError, match=r"^translate_concept needs code and system, coding"):
        await h.call("translate_concept", system="http://s", conceptmap_id="m")
    with pytest.raises(
        ValueError, match=r"^translate_concept takes coding or codeable_concept, not both$"
    ):
        await h.call(
            "translate_concept",
            coding={"system": "s", "code": "a"},
            codeable_concept={"coding": [{"system": "s", "code": "a"}]},
        )
    assert h.requests == []


TERMINOLOGY_ERRORS: list[tuple[str, tuple[Any, ...], dict[str, Any], type[Exception], str]] = [
    (
        "expand_valueset",
        (),
        {"count": -1},
        ValueError,
        r"^count must be a non-negative int, got -1$",
    ),
    (
        "expand_valueset",
        (),
        {"offset": -5},
        ValueError,
        r"^offset must be a non-negative int, got -5$",
    ),
    (
        "expand_valueset",
        (),
        {"count": "abc"},
        TypeError,
        r"^count must be a non-negative int, got str$",
    ),
    (
        "expand_valueset",
        (),
        {"count": 2.0},
        TypeError,
        r"^count must be a non-negative int, got float$",
    ),
    (
        "expand_valueset",
        (),
        {"offset": True},
        TypeError,
        r"^offset must be a non-negative int, got bool$",
    ),
    (
        "expand_valueset",
        (),
        {"active_only": "no"},
        TypeError,
        r"^active_only must be a bool, got str$",
    ),
    (
        "expand_valueset",
        (),
        {"include_designations": 1},
        TypeError,
        r"^include_designations must be a bool, got int$",
    ),
    (
        "expand_valueset",
        (),
        {"exclude_nested": "true"},
        TypeError,
        r"^exclude_nested must be a bool",
    ),
    (
        "expand_valueset",
        (),
        {"exclude_not_for_ui": 0},
        TypeError,
        r"^exclude_not_for_ui must be a bool",
    ),
    (
        "expand_valueset",
        (),
        {"exclude_post_coordinated": "x"},
        TypeError,
        r"^exclude_post_coordinated must be a bool",
    ),
    ("expand_valueset", (), {"filter": 5}, TypeError, r"^filter must be a str, got int$"),
    (
        "expand_valueset",
        (),
        {"display_language": ""},
        ValueError,
        r"^display_language must be a non-empty str",
    ),
    ("expand_valueset", (), {"property": []}, ValueError, r"^property must not be empty"),
    (
        "expand_valueset",
        (),
        {"property": [1]},
        TypeError,
        r"^property\[0\] must be a str, got int$",
    ),
    (
        "expand_valueset",
        (),
        {"property": 5},
        TypeError,
        r"^property must be a str or a list of str, got int$",
    ),
    (
        "expand_valueset",
        (),
        {"property": b"status"},
        TypeError,
        r"^property must be a str or a list of str, got bytes$",
    ),
    (
        "expand_valueset",
        (),
        {"valueset_url": 5},
        TypeError,
        r"^valueset_url must be a str, got int$",
    ),
    (
        "lookup_concept",
        ("c", "http://s"),
        {"property": ""},
        ValueError,
        r"^property must be a non-empty str",
    ),
    (
        "lookup_concept",
        ("c", "http://s"),
        {"property": {"parent": 1}},
        TypeError,
        r"^property must be a str or a list of str, got dict$",
    ),
    (
        "lookup_concept",
        ("c", "http://s"),
        {"version": 2},
        TypeError,
        r"^version must be a str, got int$",
    ),
    (
        "lookup_concept",
        ("c", "http://s"),
        {"date": 20240101},
        TypeError,
        r"^date must be an ISO date/datetime str",
    ),
    (
        "lookup_concept",
        ("c", "http://s"),
        {"display_language": 1},
        TypeError,
        r"^display_language must be a str",
    ),
    ("lookup_concept", ("c", 5), {}, TypeError, r"^system must be a str, got int$"),
    ("lookup_concept", (5, "http://s"), {}, TypeError, r"^code must be a str, got int$"),
    ("lookup_concept", ("", "http://s"), {}, ValueError, r"^code must be a non-empty str"),
    (
        "lookup_concept",
        (None,),
        {"coding": [{"system": "s", "code": "a"}]},
        TypeError,
        r"^coding must be a dict or a pydantic model \(a FHIR Coding\), got list$",
    ),
    (
        "lookup_concept",
        (None,),
        {"coding": "s|a"},
        TypeError,
        r"^coding must be a dict .* got str$",
    ),
    (
        "translate_concept",
        (),
        {"code": "a", "system": "s", "reverse": "yes"},
        TypeError,
        r"^reverse must be a bool, got str$",
    ),
    (
        "translate_concept",
        (),
        {"coding": "s|a"},
        TypeError,
        r"^coding must be a dict or a pydantic model \(a FHIR Coding\), got str$",
    ),
    (
        "translate_concept",
        (),
        {"codeable_concept": [{"system": "s"}]},
        TypeError,
        r"^codeable_concept must be a dict or a pydantic model "
        r"\(a FHIR CodeableConcept\), got list$",
    ),
    (
        "translate_concept",
        (),
        {"code": "a", "system": "s", "conceptmap_url": 5},
        TypeError,
        r"^conceptmap_url must be a str",
    ),
    (
        "translate_concept",
        (),
        {"code": "a", "system": "s", "version": ""},
        ValueError,
        r"^version must be a non-empty str",
    ),
    (
        "translate_concept",
        (),
        {"code": "a", "system": "s", "source": 1},
        TypeError,
        r"^source must be a str",
    ),
    (
        "translate_concept",
        (),
        {"code": "a", "system": "s", "target": 1},
        TypeError,
        r"^target must be a str",
    ),
    (
        "translate_concept",
        (),
        {"code": "a", "system": "s", "target_system": ""},
        ValueError,
        r"^target_system must be a non-empty str",
    ),
    (
        "translate_concept",
        (),
        {"code": 1, "system": "s"},
        TypeError,
        r"^code must be a str, got int$",
    ),
]


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "error", "message"),
    TERMINOLOGY_ERRORS,
    ids=[f"{c[0]}-{'-'.join(c[2]) or 'args'}-{i}" for i, c in enumerate(TERMINOLOGY_ERRORS)],
)
async def test_terminology_arguments_are_checked_before_sending(
    make: Any,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    h = make(ok())
    if method == "expand_valueset":
        kwargs = {"valueset_url": "http://vs", **kwargs}
    with pytest.raises(error, match=message):
        await h.call(method, *args, **kwargs)
    assert h.requests == []


# --- low-level HTTP -------------------------------------------------------------------------


async def test_low_level_methods_forward_to_the_api_base(make: Any) -> None:
    h = make(ok({"ok": True}))
    assert await h.call("get", "admin/projects/p1", params={"a": "1"}) == {"ok": True}
    assert str(h.last.url) == BASE + "admin/projects/p1?a=1"
    await h.call("post", "admin/projects/p1/invite", {"email": "x@example.com"})
    assert (h.last.method, json.loads(h.last.content)) == ("POST", {"email": "x@example.com"})
    await h.call("put", "admin/x", json={"b": 2}, headers={"X-A": "1"})
    assert (h.last.method, h.last.headers["X-A"]) == ("PUT", "1")
    await h.call("delete", "admin/x")
    assert h.last.method == "DELETE"
    with pytest.raises(TypeError):
        await h.call("get", "admin/x", bogus=1)


async def test_low_level_events_take_the_action_from_the_path(make: Any) -> None:
    # docs/client.md: None outside the FHIR base, else the FHIR interaction of the path.
    h = make(ok({"resourceType": "Patient", "id": "p1"}))
    await h.call("get", "admin/projects/p1")
    await h.call("get", "fhir/R4/Patient/p1")
    await h.call("post", "fhir/R4/Patient", {"resourceType": "Patient"})
    assert [(e.action, e.resource_type, e.path_template) for e in h.events] == [
        (None, None, "/admin/projects/{id}"),
        ("read", "Patient", "/fhir/R4/Patient/{id}"),
        ("create", "Patient", "/fhir/R4/Patient"),
    ]

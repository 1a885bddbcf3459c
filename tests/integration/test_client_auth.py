"""Authentication, On-Behalf-Of and the on_request_complete hook of both clients against the live
local server.

Token counts come from the server (``token_request_count``), headers from what the server
received (``last_headers`` / ``requests``): the assertions are about the wire, not the SDK's
own bookkeeping. The OAuth2 endpoint and the On-Behalf-Of check are harness code following
Medplum's server (tests/server/README.md).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from sdk_clients import TOKEN_PATH, Api, event_summary, unique

from pymedplum import (
    AuthenticationError,
    AuthorizationError,
    NotFoundError,
    RetryPolicy,
    TokenRefreshCooldownError,
    make_project_membership_access,
)
from pymedplum.hooks import RequestEvent

pytestmark = pytest.mark.anyio

OBO = "x-medplum-on-behalf-of"


async def new_patient(api: Api) -> str:
    created = await api.call(
        "create_resource", {"resourceType": "Patient", "name": [{"family": unique("Auth")}]}
    )
    return str(created["id"])


def reads(api: Api, pid: str, n: int) -> list[Callable[[], Any]]:
    return [lambda: api.client.read_resource("Patient", pid) for _ in range(n)]


# --- tokens ---------------------------------------------------------------------------------------


async def test_token_is_fetched_lazily_once_and_reused(make_api: Callable[..., Api]) -> None:
    api = make_api()
    start = api.server.token_request_count()
    assert api.server.token_request_count() == start  # constructing the client sent nothing
    pid = await new_patient(api)
    for _ in range(5):
        await api.call("read_resource", "Patient", pid)
    assert api.server.token_request_count() == start + 1
    token_events = [e for e in api.events if e.path == TOKEN_PATH]
    assert [(e.action, e.outcome, e.final_status_code) for e in token_events] == [
        (None, "success", 200)
    ]


async def test_refresh_before_expiry_is_one_token_request_under_concurrency(
    make_api: Callable[..., Api],
) -> None:
    probe = make_api()
    pid = await new_patient(probe)
    probe.server.set_token_lifetime(4)  # the client refreshes after half of it
    api = make_api()
    start = api.server.token_request_count()
    results = await api.concurrently(reads(api, pid, 8))
    assert all(r["id"] == pid for r in results)
    assert api.server.token_request_count() == start + 1  # single flight on the first token
    await anyio.sleep(2.1)
    results = await api.concurrently(reads(api, pid, 8))
    assert all(r["id"] == pid for r in results)
    assert api.server.token_request_count() == start + 2  # one refresh for the expiry
    assert not any(e.final_status_code == 401 for e in api.fhir_events())  # proactive


async def test_server_side_expiry_mid_run_refreshes_once_under_concurrency(
    make_api: Callable[..., Api],
) -> None:
    api = make_api()
    pid = await new_patient(api)
    start = api.server.token_request_count()
    api.server.expire_tokens()  # the client's token is now rejected with 401
    results = await api.concurrently(reads(api, pid, 8))
    assert all(r["id"] == pid for r in results)
    assert api.server.token_request_count() == start + 1
    rejected = [e for e in api.fhir_events() if e.attempts[0].status_code == 401]
    assert rejected and all([a.status_code for a in e.attempts] == [401, 200] for e in rejected)
    assert all(e.outcome == "success" for e in api.fhir_events())


async def test_paging_survives_token_expiry_between_pages(make_api: Callable[..., Api]) -> None:
    api = make_api()
    family = unique("Pages")
    for _ in range(5):
        await api.call("create_resource", {"resourceType": "Patient", "name": [{"family": family}]})
    start = api.server.token_request_count()
    iterator = api.iterate("search_resource_pages", "Patient", {"family": family, "_count": 2})
    seen = []
    if api.is_async:
        async for patient in iterator:
            seen.append(patient["id"])
            if len(seen) == 1:
                api.server.expire_tokens()
    else:
        for patient in iterator:
            seen.append(patient["id"])
            if len(seen) == 1:
                api.server.expire_tokens()
    assert len(set(seen)) == 5
    assert api.server.token_request_count() == start + 1


async def test_bad_secret_is_authentication_error(make_api: Callable[..., Api]) -> None:
    api = make_api(client_secret="not-the-secret")
    with pytest.raises(AuthenticationError) as bad:
        await api.call("read_resource", "Patient", "anything")
    assert bad.value.status_code == 400
    assert "not-the-secret" not in str(bad.value)
    unknown = make_api(client_id=unique("no-client-"), client_secret="x")
    with pytest.raises(AuthenticationError):
        await unknown.call("search_resources", "Patient")


async def test_failed_refresh_cools_down_then_recovers(make_api: Callable[..., Api]) -> None:
    api = make_api(failed_refresh_cooldown=1.0)
    api.server.fail_token_endpoint(status=503, error="temporarily_unavailable")
    start = api.server.token_request_count()
    with pytest.raises(AuthenticationError):
        await api.call("search_resources", "Patient", {"_count": 1})
    with pytest.raises(TokenRefreshCooldownError) as cooling:
        await api.call("search_resources", "Patient", {"_count": 1})
    assert 0 < cooling.value.retry_after <= 1.0
    # The 503 was retried (RetryPolicy's 3 attempts); the cooldown sent nothing.
    assert api.server.token_request_count() == start + 3
    api.server.restore_token_endpoint()
    await anyio.sleep(cooling.value.retry_after + 0.05)
    result = await api.call("search_resources", "Patient", {"_count": 1})
    assert result["resourceType"] == "Bundle"


async def test_rate_limited_token_endpoint_as_medplum_answers_it(
    make_api: Callable[..., Api],
) -> None:
    # Medplum 5.0.10's limiter (ratelimit.ts; 160 auth requests a minute by default) answers a
    # 429 OperationOutcome with `RateLimit: "requests";r=0;t=<s>` and no Retry-After, as a real
    # 5.0.10 did when pymedplum went over it. A reset beyond max_retry_after is not waited for:
    # AuthenticationError (status 429), then a cooldown of the reset capped at max_retry_after.
    api = make_api(retry=RetryPolicy(max_retry_after=1.0), failed_refresh_cooldown=0.1)
    api.server.fail_token_endpoint(status=429, rate_limit_reset=40)
    start = api.server.token_request_count()
    with pytest.raises(AuthenticationError) as limited:
        await api.call("search_resources", "Patient", {"_count": 1})
    assert limited.value.status_code == 429
    assert api.server.token_request_count() == start + 1  # 40 s > max_retry_after: no retry
    with pytest.raises(TokenRefreshCooldownError) as cooling:
        await api.call("search_resources", "Patient", {"_count": 1})
    assert 0.5 < cooling.value.retry_after <= 1.0  # the reset (40 s), capped at 1 s, not 0.1 s
    # Once the cooldown is over and the endpoint answers again, a call gets its token.
    api.server.restore_token_endpoint()
    await anyio.sleep(cooling.value.retry_after + 0.05)
    patient = await new_patient(api)
    assert patient


async def test_rate_limited_token_endpoint_within_max_retry_after_is_waited_for(
    make_api: Callable[..., Api],
) -> None:
    # A reset (t=1) within max_retry_after is waited for before each new token request, up to
    # max_attempts; the last 429 is the AuthenticationError.
    api = make_api(retry=RetryPolicy(max_retry_after=2.0, max_attempts=3))
    api.server.fail_token_endpoint(status=429, rate_limit_reset=1)
    start = api.server.token_request_count()
    began = time.monotonic()
    try:
        with pytest.raises(AuthenticationError) as limited:
            await api.call("search_resources", "Patient", {"_count": 1})
    finally:
        api.server.restore_token_endpoint()
    assert limited.value.status_code == 429
    assert api.server.token_request_count() == start + 3
    assert time.monotonic() - began >= 1.9  # two waits of the 1 s reset


async def test_given_access_token_is_used_until_rejected(make_api: Callable[..., Api]) -> None:
    server = make_api().server
    token = server.access_token()
    api = make_api(client_id=None, client_secret=None, access_token=token)
    start = server.token_request_count()
    assert (await api.call("search_resources", "Patient", {"_count": 1}))["resourceType"]
    assert server.last_headers("/fhir/")["authorization"] == f"Bearer {token}"
    server.expire_tokens()
    with pytest.raises(AuthenticationError) as expired:
        await api.call("search_resources", "Patient", {"_count": 1})
    assert expired.value.status_code == 401
    assert server.token_request_count() == start  # nothing to refresh with


# --- On-Behalf-Of ---------------------------------------------------------------------------------


async def test_on_behalf_of_precedence(make_api: Callable[..., Api]) -> None:
    server = make_api().server
    m1, m2, m3 = (server.create_membership() for _ in range(3))
    ids = [m["membership"]["id"] for m in (m1, m2, m3)]
    ref1, ref2, ref3 = (f"ProjectMembership/{i}" for i in ids)
    api = make_api(default_on_behalf_of=ids[0])  # a bare id is normalized
    pid = await new_patient(api)

    async def sent(**kwargs: Any) -> str | None:
        await api.call("read_resource", "Patient", pid, **kwargs)
        return server.last_headers("/fhir/").get(OBO)

    assert await sent() == ref1  # client default
    async with api.on_behalf_of(ref2) as entered:
        assert entered is api.client  # the block hands back the client
        assert await sent() == ref2  # context manager beats the default
        assert await sent(on_behalf_of=ref3) == ref3  # per-call beats the context manager
        assert await sent(on_behalf_of="") is None  # "" clears it for one call
        assert await sent() == ref2
    assert await sent() == ref1  # the block restored the default
    assert await sent(on_behalf_of="") is None
    attempts = [e.attempts[-1].on_behalf_of for e in api.fhir_events() if e.action == "read"]
    assert attempts == [ref1, ref2, ref3, None, ref2, ref1, None]


async def test_on_behalf_of_of_later_pages_is_the_one_of_the_call(
    make_api: Callable[..., Api],
) -> None:
    # A page fetched after leaving the block went out without the header: as the client
    # application itself (a project admin), outside the member's access policy.
    api = make_api()
    member = api.server.create_membership()["membership"]["id"]
    family = unique("OboPages")
    for _ in range(3):
        await api.call("create_resource", {"resourceType": "Patient", "name": [{"family": family}]})
    api.server.reset()
    async with api.on_behalf_of(member):
        iterator = api.iterate("search_resource_pages", "Patient", {"family": family, "_count": 1})
        seen = [await anext(iterator) if api.is_async else next(iterator)]
    if api.is_async:
        seen += [patient async for patient in iterator]
    else:
        seen += list(iterator)
    assert len({p["id"] for p in seen}) == 3
    pages = api.server.requests("/fhir/R4/Patient")
    assert len(pages) == 3
    assert all(r["headers"][OBO] == f"ProjectMembership/{member}" for r in pages)


async def test_on_behalf_of_acts_as_the_member(make_api: Callable[..., Api]) -> None:
    server = make_api().server
    member = server.create_membership()
    reader = server.create_membership(read_only=True)
    api = make_api()
    created = await api.call(
        "create_resource",
        {"resourceType": "Patient", "name": [{"family": unique("Obo")}]},
        on_behalf_of=member["membership"]["id"],
    )
    stored = await api.call("read_resource", "Patient", created["id"])
    assert stored["meta"]["onBehalfOf"]["reference"] == f"Practitioner/{member['profile']['id']}"
    assert stored["meta"]["author"]["reference"] == f"ClientApplication/{server.client_id}"
    # The read-only member may read but not write: its AccessPolicy applies.
    async with api.on_behalf_of(reader["membership"]):
        assert (await api.call("read_resource", "Patient", created["id"]))["id"] == created["id"]
        with pytest.raises(AuthorizationError) as denied:
            await api.call("create_resource", {"resourceType": "Patient"})
        # The policy is checked before the id is looked up (Repository.checkResourcePermissions,
        # repo.ts:748 at v5.0.10): an update of an id never created is 403 too, not 404.
        with pytest.raises(AuthorizationError):
            await api.call("update_resource", {"resourceType": "Patient", "id": str(uuid.uuid4())})
    assert denied.value.status_code == 403
    # As tryAddOnBehalfOf (packages/server/src/oauth/utils.ts): an unknown ProjectMembership/<id>
    # is read and answers 404; a profile reference no membership has answers 403.
    with pytest.raises(NotFoundError):
        await api.call("search_resources", "Patient", on_behalf_of=unique("no-membership-"))
    with pytest.raises(AuthorizationError):
        await api.call(
            "search_resources", "Patient", on_behalf_of=f"Practitioner/{unique('nobody-')}"
        )


async def test_on_behalf_of_is_checked_on_non_fhir_routes_too(api: Api) -> None:
    # attachRequestContext (packages/server/src/context.ts) resolves On-Behalf-Of for every
    # authenticated route; auth/me (auth/me.ts) then still describes the caller's membership.
    member = api.server.create_membership()["membership"]["id"]
    me = await api.call("get", "auth/me", on_behalf_of=member)
    assert me["membership"]["admin"] is True and me["profile"]["id"] == api.server.client_id
    with pytest.raises(NotFoundError):
        await api.call("get", "auth/me", on_behalf_of=unique("no-membership-"))


async def test_on_behalf_of_is_never_sent_to_the_token_endpoint(
    make_api: Callable[..., Api],
) -> None:
    server = make_api().server
    member = server.create_membership()["membership"]["id"]
    server.reset()  # empties the request log
    api = make_api(default_on_behalf_of=member)
    async with api.on_behalf_of(member):
        await api.call("search_resources", "Patient", {"_count": 1})  # first call: token fetch
    server.expire_tokens()
    await api.call("search_resources", "Patient", {"_count": 1}, on_behalf_of=member)  # refresh
    token_requests = server.requests(TOKEN_PATH)
    assert len(token_requests) == 2
    assert all(OBO not in r["headers"] for r in token_requests)
    fhir_requests = server.requests("/fhir/")
    assert fhir_requests and all(
        r["headers"][OBO] == f"ProjectMembership/{member}" for r in fhir_requests
    )
    token_events = [e for e in api.events if e.path == TOKEN_PATH]
    assert len(token_events) == 2
    assert all(a.on_behalf_of is None for e in token_events for a in e.attempts)


async def test_on_behalf_of_contexts_stay_per_task_or_thread(
    make_api: Callable[..., Api],
) -> None:
    api = make_api()
    members = [api.server.create_membership()["membership"]["id"] for _ in range(4)]
    patients = [await new_patient(api) for _ in members]

    def worker(member: str, pid: str) -> Callable[[], Any]:
        if api.is_async:

            async def run_async() -> Any:
                async with api.client.on_behalf_of(member):
                    await anyio.sleep(0.01)  # let the other tasks enter their blocks
                    return await api.client.read_resource("Patient", pid)

            return run_async

        def run_sync() -> Any:
            with api.client.on_behalf_of(member):
                time.sleep(0.01)
                return api.client.read_resource("Patient", pid)

        return run_sync

    await api.concurrently([worker(m, p) for m, p in zip(members, patients, strict=True)])
    for member, pid in zip(members, patients, strict=True):
        (request,) = api.server.requests(f"/fhir/R4/Patient/{pid}")
        assert request["headers"][OBO] == f"ProjectMembership/{member}"


# --- on_request_complete --------------------------------------------------------------------------


async def test_on_request_complete_fires_once_per_call_with_its_action(
    make_api: Callable[..., Api],
) -> None:
    api = make_api()
    pid = await new_patient(api)
    patient = await api.call("read_resource", "Patient", pid)
    other = await new_patient(api)
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Patient/{pid}"}}],
    }
    binary = await api.call("upload_binary", b"x", "text/plain")
    job = await api.call(
        "set_accounts", f"Patient/{pid}", "Organization/o-2", propagate=True, prefer_async=True
    )
    concept_map = await api.call(
        "create_resource",
        {"resourceType": "ConceptMap", "status": "active", "url": f"urn:{unique()}", "group": []},
    )
    membership = api.server.create_membership(read_only=True)["membership"]["id"]
    policy = (await api.call("create_resource", {"resourceType": "AccessPolicy"}))["id"]
    access = make_project_membership_access(policy, {"org": "Organization/o-1"})
    # (method, args, kwargs, the actions of the events it must emit, in order)
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any], list[str | None]]] = [
        ("create_resource", ({"resourceType": "Patient"},), {}, ["create"]),
        (
            "create_resource_if_none_exist",
            ({"resourceType": "Patient"},),
            {"if_none_exist": f"_id={pid}"},
            ["create"],
        ),
        ("read_resource", ("Patient", pid), {}, ["read"]),
        ("vread_resource", ("Patient", pid, patient["meta"]["versionId"]), {}, ["read"]),
        ("update_resource", (patient,), {"if_match": False}, ["update"]),
        (
            "patch_resource",
            ("Patient", pid, [{"op": "add", "path": "/active", "value": True}]),
            {},
            ["patch"],
        ),
        ("search_resources", ("Patient", {"_id": pid}), {}, ["search"]),
        ("search_one", ("Patient", {"_id": pid}), {}, ["search"]),
        ("search_with_options", ("Patient", {"_id": pid}), {"summary": "count"}, ["search"]),
        ("searchWithOptions", ("Patient", {"_id": pid}), {}, ["search"]),
        ("execute_batch", (batch,), {}, ["batch_or_transaction"]),
        ("execute_transaction", ({**batch, "type": "transaction"},), {}, ["batch_or_transaction"]),
        ("execute_graphql", ("{ PatientList(_count: 1) { id } }",), {}, ["operation"]),
        ("set_accounts", (f"Patient/{pid}", "Organization/o-1"), {}, ["operation"]),
        ("get_async_job_status", (job,), {}, ["read"]),
        ("wait_for_async_job", (job,), {"poll_interval": 0.05, "timeout": 10}, None),
        ("upload_binary", (b"x", "text/plain"), {}, ["create"]),
        ("download_binary", (binary["id"],), {}, ["read"]),
        ("export_ccda", (pid,), {}, ["operation"]),
        (
            "expand_valueset",
            (),
            {"valueset_url": "http://hl7.org/fhir/ValueSet/administrative-gender"},
            ["operation"],
        ),
        ("lookup_concept", ("8867-4", "http://loinc.org"), {}, ["operation"]),
        (
            "translate_concept",
            (),
            {"code": "a", "system": "urn:s", "conceptmap_id": concept_map["id"]},
            ["operation"],
        ),
        (
            "merge_project_membership_access",
            (membership,),
            {"managed_access": [access], "managed_policy_ids": {policy}},
            ["read", "update"],
        ),
        (
            "add_project_membership_access_entry",
            (membership, access),
            {"managed_policy_ids": {policy}},
            ["read"],  # already there: no PUT
        ),
        (
            "remove_project_membership_access_entry",
            (membership, access),
            {"managed_policy_ids": {policy}},
            ["read", "update"],
        ),
        ("get", ("auth/me",), {}, [None]),
        ("get", (f"fhir/R4/Patient/{pid}",), {}, ["read"]),
        ("post", ("fhir/R4/Patient", {"resourceType": "Patient"}), {}, ["create"]),
        (
            "put",
            (f"fhir/R4/Patient/{other}", {"resourceType": "Patient", "id": other}),
            {},
            ["update"],
        ),
        ("delete", (f"fhir/R4/Patient/{other}",), {}, ["delete"]),
        ("delete_resource", ("Patient", pid), {}, ["delete"]),
    ]
    for method, args, kwargs, actions in calls:
        api.events.clear()
        await api.call(method, *args, **kwargs)
        events = api.fhir_events()
        if actions is None:  # polling: one read per poll
            actions = ["read"] * max(1, len(events))
        assert [(e.action, e.outcome) for e in events] == [(a, "success") for a in actions], (
            method,
            event_summary(events),
        )
    api.events.clear()
    with pytest.raises(NotFoundError):
        await api.call("read_resource", "Patient", pid)  # deleted: 410
    (failed,) = api.fhir_events()
    assert (failed.action, failed.outcome, failed.final_status_code) == ("read", "error", 410)
    assert isinstance(failed.final_exception, NotFoundError)
    assert failed.path_template == "/fhir/R4/Patient/{id}" and failed.resource_id == pid


async def test_search_pages_emit_one_event_per_page(make_api: Callable[..., Api]) -> None:
    api = make_api()
    family = unique("Ev")
    for _ in range(3):
        await api.call("create_resource", {"resourceType": "Patient", "name": [{"family": family}]})
    api.events.clear()
    found = await api.collect("search_resource_pages", "Patient", {"family": family, "_count": 1})
    assert len(found) == 3
    assert [e.action for e in api.fhir_events()] == ["search"] * 3


async def test_on_request_complete_hook_failures_never_reach_the_caller(
    make_api: Callable[..., Api], caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str | None] = []

    def broken(event: RequestEvent) -> None:
        calls.append(event.action)
        raise RuntimeError("audit sink down")

    api = make_api(on_request_complete=broken)
    with caplog.at_level(logging.WARNING, logger="pymedplum.hooks"):
        pid = await new_patient(api)
        assert (await api.call("read_resource", "Patient", pid))["id"] == pid
    assert calls == [None, "create", "read"]  # the token request, then both calls
    warnings = [r for r in caplog.records if r.name == "pymedplum.hooks"]
    assert len(warnings) == 3 and all(r.levelno == logging.WARNING for r in warnings)


async def test_async_client_awaits_a_coroutine_hook(make_api: Callable[..., Api]) -> None:
    api = make_api()
    if not api.is_async:
        with pytest.raises(TypeError, match="on_request_complete"):

            async def hook(event: RequestEvent) -> None: ...

            make_api(on_request_complete=hook)
        return
    seen: list[str | None] = []

    async def record(event: RequestEvent) -> None:
        await anyio.sleep(0)
        seen.append(event.action)

    hooked = make_api(on_request_complete=record)
    await new_patient(hooked)
    assert seen == [None, "create"]  # the token request, then the call

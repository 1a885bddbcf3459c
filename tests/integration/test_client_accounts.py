"""Multi-tenant accounts, async jobs, the medplum_* model properties and ProjectMembership access
of both clients against the live local server.

``$set-accounts`` and its async job are harness stand-ins for Medplum's operation (see
tests/server/README.md, "What the harness adds or fakes"); the ProjectMembership reads and
writes go through Medplum's own FhirRouter and repository.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sdk_clients import Api, MedplumServer, unique

from pymedplum import (
    AuthorizationError,
    GoneError,
    NotFoundError,
    PreconditionFailedError,
    UnsafeRedirectError,
    extract_account_references,
    get_resource_accounts,
    make_project_membership_access,
    resource_has_account,
)
from pymedplum.fhir import Observation, Patient
from pymedplum.hooks import PreparedRequest

pytestmark = pytest.mark.anyio


async def new_org(api: Api) -> str:
    org = await api.call("create_resource", {"resourceType": "Organization", "name": unique("Org")})
    return f"Organization/{org['id']}"


async def patient_with_observations(api: Api, count: int = 2) -> tuple[str, list[str]]:
    patient = await api.call(
        "create_resource", {"resourceType": "Patient", "name": [{"family": unique("Acc")}]}
    )
    observations = [
        (
            await api.call(
                "create_resource",
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "hr"},
                    "subject": {"reference": f"Patient/{patient['id']}"},
                },
            )
        )["id"]
        for _ in range(count)
    ]
    return patient["id"], observations


def resources_updated(parameters: dict[str, Any]) -> int:
    assert parameters["resourceType"] == "Parameters"
    (value,) = [
        p["valueInteger"] for p in parameters["parameter"] if p["name"] == "resourcesUpdated"
    ]
    return int(value)


# --- set_accounts ---------------------------------------------------------------------------------


async def test_set_accounts_without_propagate(api: Api) -> None:
    pid, obs_ids = await patient_with_observations(api)
    org = await new_org(api)
    result = await api.call("set_accounts", f"Patient/{pid}", org)
    assert resources_updated(result) == 1
    patient = await api.call("read_resource", "Patient", pid)
    assert get_resource_accounts(patient) == [org]
    observation = await api.call("read_resource", "Observation", obs_ids[0])
    assert get_resource_accounts(observation) == []  # not propagated


async def test_set_accounts_with_propagate(api: Api) -> None:
    pid, obs_ids = await patient_with_observations(api)
    org_a, org_b = await new_org(api), await new_org(api)
    result = await api.call("set_accounts", f"Patient/{pid}", [org_a, org_b], propagate=True)
    assert resources_updated(result) == 1 + len(obs_ids)
    for obs_id in obs_ids:
        observation = await api.call("read_resource", "Observation", obs_id, as_fhir=Observation)
        assert observation.medplum_accounts == [org_a, org_b]
        assert resource_has_account(observation, org_b)
    # Replacing the set removes the dropped account from the compartment as well.
    await api.call("set_accounts", f"Patient/{pid}", [org_b], propagate=True)
    observation = await api.call("read_resource", "Observation", obs_ids[0])
    assert get_resource_accounts(observation) == [org_b]
    assert not resource_has_account(observation, org_a)


async def test_set_accounts_prefer_async_then_wait_for_job(api: Api) -> None:
    pid, obs_ids = await patient_with_observations(api)
    org = await new_org(api)
    api.server.set_job_delay(1500)  # long enough to see the job still running
    outcome = await api.call(
        "set_accounts", f"Patient/{pid}", org, propagate=True, prefer_async=True
    )
    assert outcome["resourceType"] == "OperationOutcome"
    job_url = outcome["issue"][0]["diagnostics"]
    assert job_url.startswith(f"{api.server.fhir_url}job/") and job_url.endswith("/status")
    job = await api.call("get_async_job_status", outcome)
    assert job["resourceType"] == "AsyncJob" and job["status"] in ("accepted", "active")
    done = await api.call("wait_for_async_job", outcome, poll_interval=0.1, timeout=15)
    assert done["status"] == "completed"
    assert resources_updated(done["output"]) == 1 + len(obs_ids)
    observation = await api.call("read_resource", "Observation", obs_ids[1])
    assert get_resource_accounts(observation) == [org]
    # The job can be named by its full URL or its bare id, too.
    job_id = job_url.rsplit("/", 2)[1]
    assert (await api.call("get_async_job_status", job_url))["status"] == "completed"
    assert (await api.call("get_async_job_status", job_id))["id"] == job_id


async def test_prefer_async_without_propagate_is_sent_and_answered_synchronously(api: Api) -> None:
    # The contract: prefer_async sends Prefer: respond-async, which takes effect only with
    # propagate. Medplum then answers the operation synchronously.
    pid, _ = await patient_with_observations(api, count=1)
    org = await new_org(api)
    result = await api.call("set_accounts", f"Patient/{pid}", org, prefer_async=True)
    assert result["resourceType"] == "Parameters"
    assert api.server.last_headers(f"/fhir/R4/Patient/{pid}/$set-accounts")["prefer"] == (
        "respond-async"
    )
    patient = await api.call("read_resource", "Patient", pid)
    assert {"reference": org} in patient["meta"]["accounts"]


async def test_wait_for_async_job_times_out(api: Api) -> None:
    pid, _ = await patient_with_observations(api, count=1)
    api.server.set_job_delay(10_000)
    outcome = await api.call(
        "set_accounts", f"Patient/{pid}", await new_org(api), propagate=True, prefer_async=True
    )
    with pytest.raises(TimeoutError):
        await api.call("wait_for_async_job", outcome, poll_interval=0.05, timeout=0.3)


async def test_a_write_without_meta_joins_the_accounts_of_its_patient(api: Api) -> None:
    # Repository.getAccounts (packages/server/src/fhir/repo.ts): without meta in the request (or
    # without the right to set accounts) a resource takes the accounts of the patients of its
    # compartment; a project admin who sends meta keeps exactly the accounts it sends.
    pid, _ = await patient_with_observations(api, count=0)
    org = await new_org(api)
    await api.call("set_accounts", f"Patient/{pid}", org)
    subject = {"reference": f"Patient/{pid}"}
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "bp"}}
    inherited = await api.call("create_resource", {**observation, "subject": subject})
    assert get_resource_accounts(inherited) == [org]
    other = await new_org(api)
    explicit = await api.call(
        "create_resource", {**observation, "subject": subject}, accounts=other
    )
    assert get_resource_accounts(explicit) == [other]
    tagged = {**observation, "subject": subject, "meta": {"tag": [{"code": "t"}]}}
    assert get_resource_accounts(await api.call("create_resource", tagged)) == []
    # A Patient updated without meta keeps its accounts.
    patient = await api.call("read_resource", "Patient", pid)
    patient.pop("meta")
    updated = await api.call("update_resource", patient, if_match=False)
    assert get_resource_accounts(updated) == [org]


async def test_a_members_accounts_are_its_patients_when_any_else_the_ones_it_sent(
    api: Api,
) -> None:
    # Repository.updateResourceImpl (repo.ts at v5.0.10) starts from the request's meta and
    # replaces meta.accounts only when getAccounts computes some; a non-admin member may not
    # set accounts (canWriteAccount), so for it the patient's accounts win, and without any the
    # sent ones are stored (as a real Medplum 5.0.10 answered, docs/on-behalf-of.md).
    member = api.server.create_membership()["membership"]["id"]
    org, sent = await new_org(api), await new_org(api)
    pid, _ = await patient_with_observations(api, count=0)
    await api.call("set_accounts", f"Patient/{pid}", org)
    bare, _ = await patient_with_observations(api, count=0)
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "bp"}}

    async def accounts_of(subject: str | None) -> list[str]:
        body = {**observation, "subject": {"reference": subject}} if subject else observation
        created = await api.call("create_resource", body, accounts=sent, on_behalf_of=member)
        assert created["meta"]["onBehalfOf"]["reference"].startswith("Practitioner/")
        return get_resource_accounts(created)

    assert await accounts_of(f"Patient/{pid}") == [org]
    assert await accounts_of(f"Patient/{bare}") == [sent]
    assert await accounts_of(None) == [sent]


async def test_set_accounts_needs_a_project_admin(api: Api) -> None:
    # set-accounts.ts (setResourceAccounts): 403 unless the effective membership (the
    # On-Behalf-Of one when given, getRepoForLogin's projectAdmin) is a project admin.
    pid, _ = await patient_with_observations(api, count=1)
    org = await new_org(api)
    member = api.server.create_membership()["membership"]["id"]
    with pytest.raises(AuthorizationError) as denied:
        async with api.on_behalf_of(member):
            await api.call("set_accounts", f"Patient/{pid}", org)
    assert denied.value.status_code == 403
    admin = api.server.create_membership(admin=True)["membership"]["id"]
    async with api.on_behalf_of(admin):
        assert resources_updated(await api.call("set_accounts", f"Patient/{pid}", org)) == 1


async def test_async_set_accounts_on_behalf_of_a_member_runs_as_the_calling_client(
    api: Api,
) -> None:
    # set-accounts.ts at v5.0.10: with Prefer: respond-async and propagate the handler only
    # queues the job (no admin check); workers/set-accounts.ts builds its repo from the login's
    # own membership (getRepoForLogin without onBehalfOfMembership), so the job runs as the
    # client, an admin: accepted and completed where the synchronous call is 403 (as a real
    # Medplum 5.0.10 answered; docs/on-behalf-of.md).
    pid, observations = await patient_with_observations(api, count=1)
    org = await new_org(api)
    member = api.server.create_membership()["membership"]["id"]
    async with api.on_behalf_of(member):
        outcome = await api.call(
            "set_accounts", f"Patient/{pid}", org, propagate=True, prefer_async=True
        )
        job = await api.call("wait_for_async_job", outcome, poll_interval=0.05, timeout=30)
    assert job["status"] == "completed"
    for reference in (f"Patient/{pid}", f"Observation/{observations[0]}"):
        resource_type, resource_id = reference.split("/")
        stored = await api.call("read_resource", resource_type, resource_id)
        assert get_resource_accounts(stored) == [org]


async def test_async_set_accounts_of_an_unknown_target_ends_the_job_in_error(api: Api) -> None:
    # The async path queues the job without reading the target (set-accounts.ts); the worker's
    # failure is the job's: status "error", the OperationOutcome in its output.
    outcome = await api.call(
        "set_accounts",
        f"Patient/{unique('missing-')}",
        await new_org(api),
        propagate=True,
        prefer_async=True,
    )
    assert outcome["resourceType"] == "OperationOutcome"
    job = await api.call("wait_for_async_job", outcome, poll_interval=0.05, timeout=15)
    assert job["status"] == "error"
    (failure,) = job["output"]["parameter"]
    assert failure["name"] == "outcome"
    assert failure["resource"]["issue"][0]["code"] == "not-found"
    # The wait ended on the first answer of the failed job (200, as job.ts answers a job in
    # error), after the 202s of the queued one: it neither raised nor polled on.
    polls = [e.final_status_code for e in api.fhir_events() if "/job/" in e.path]
    assert polls[-1] == 200 and set(polls[:-1]) <= {202}


async def test_set_accounts_rejects_a_malformed_reference(api: Api) -> None:
    with pytest.raises(ValueError, match="resource_ref"):
        await api.call("set_accounts", "not-a-reference", "Organization/x")


# --- read-back helpers and model properties -------------------------------------------------------


async def test_account_helpers_and_medplum_properties_on_read_back(api: Api) -> None:
    org_a, org_b = await new_org(api), await new_org(api)
    created = await api.call(
        "create_resource",
        {"resourceType": "Patient", "name": [{"family": unique("Meta")}]},
        accounts=[org_a, org_b],
    )
    stored = await api.call("read_resource", "Patient", created["id"])
    assert get_resource_accounts(stored) == [org_a, org_b]
    assert extract_account_references(stored["meta"]) == [org_a, org_b]
    assert resource_has_account(stored, org_b) and not resource_has_account(
        stored, "Organization/x"
    )
    model = await api.call("read_resource", "Patient", created["id"], as_fhir=Patient)
    assert model.medplum_accounts == [org_a, org_b]
    assert model.medplum_account == org_a
    assert model.medplum_author == f"ClientApplication/{api.server.client_id}"
    project = stored["meta"]["project"]
    assert project and model.medplum_project == project
    # Medplum computes meta.compartment on every write (Repository.getCompartments): the
    # project, the accounts and the patient itself.
    assert model.medplum_compartment is not None
    assert [c.reference for c in model.medplum_compartment] == [
        f"Project/{project}",
        org_a,
        org_b,
        f"Patient/{created['id']}",
    ]
    assert get_resource_accounts(model) == [org_a, org_b]


# --- ProjectMembership access ---------------------------------------------------------------------


async def access_policy(api: Api) -> str:
    policy = await api.call(
        "create_resource",
        {
            "resourceType": "AccessPolicy",
            "name": unique("practice-policy"),
            "resource": [{"resourceType": "Patient", "criteria": "Patient?_compartment=%org"}],
        },
    )
    return str(policy["id"])


def entry(policy_id: str, org: str) -> dict[str, Any]:
    return make_project_membership_access(f"AccessPolicy/{policy_id}", {"org": org})


def membership_puts(api: Api) -> int:
    return sum(
        1 for e in api.fhir_events() if e.method == "PUT" and e.resource_type == "ProjectMembership"
    )


async def test_merge_add_remove_against_a_real_membership(api: Api) -> None:
    # A read-only membership has an accessPolicy, so emptying the managed slice is allowed.
    membership_id = api.server.create_membership(read_only=True)["membership"]["id"]
    policy, other = await access_policy(api), await access_policy(api)
    managed = {policy}
    orgs = [await new_org(api) for _ in range(4)]

    # An entry of a policy we do not manage, written by someone else: never touched.
    membership = await api.call("read_resource", "ProjectMembership", membership_id)
    foreign = entry(other, orgs[0])
    await api.call("update_resource", {**membership, "access": [foreign]})

    result = await api.call(
        "merge_project_membership_access",
        membership_id,
        managed_access=[entry(policy, o) for o in orgs[:3]],
        managed_policy_ids=managed,
    )
    assert (result.updated, result.managed_count, result.untouched_count) == (True, 3, 1)
    stored = await api.call("read_resource", "ProjectMembership", membership_id)
    assert result.version_id == stored["meta"]["versionId"]
    assert stored["access"] == [foreign] + [entry(policy, o) for o in orgs[:3]]

    # Idempotence: the same desired list sends no PUT and keeps the version.
    puts = membership_puts(api)
    again = await api.call(
        "merge_project_membership_access",
        f"ProjectMembership/{membership_id}",
        managed_access=[entry(policy, o) for o in orgs[:3]],
        managed_policy_ids=managed,
    )
    assert (again.updated, again.version_id) == (False, result.version_id)
    assert membership_puts(api) == puts
    forced = await api.call(
        "merge_project_membership_access",
        membership_id,
        managed_access=[entry(policy, o) for o in orgs[:3]],
        managed_policy_ids=managed,
        force=True,
    )
    assert forced.updated and membership_puts(api) == puts + 1

    added = await api.call(
        "add_project_membership_access_entry",
        membership_id,
        entry(policy, orgs[3]),
        managed_policy_ids=managed,
    )
    assert added.updated and added.managed_count == 4 and added.version_id != forced.version_id
    puts = membership_puts(api)
    added_again = await api.call(
        "add_project_membership_access_entry",
        membership_id,
        entry(policy, orgs[3]),
        managed_policy_ids=managed,
    )
    assert not added_again.updated and membership_puts(api) == puts

    removed = await api.call(
        "remove_project_membership_access_entry",
        membership_id,
        entry(policy, orgs[1]),
        managed_policy_ids=managed,
    )
    assert removed.updated and removed.managed_count == 3
    removed_again = await api.call(
        "remove_project_membership_access_entry",
        membership_id,
        entry(policy, orgs[1]),
        managed_policy_ids=managed,
    )
    assert not removed_again.updated and removed_again.version_id == removed.version_id
    stored = await api.call("read_resource", "ProjectMembership", membership_id)
    assert stored["access"] == [foreign] + [entry(policy, o) for o in (orgs[0], orgs[2], orgs[3])]
    assert stored["meta"]["versionId"] == removed.version_id

    # [] removes the whole managed slice; the foreign entry stays.
    cleared = await api.call(
        "merge_project_membership_access",
        membership_id,
        managed_access=[],
        managed_policy_ids=managed,
    )
    assert (cleared.managed_count, cleared.untouched_count) == (0, 1)
    stored = await api.call("read_resource", "ProjectMembership", membership_id)
    assert stored["access"] == [foreign]


async def test_membership_access_rejects_bad_input(api: Api) -> None:
    membership_id = api.server.create_membership(read_only=True)["membership"]["id"]
    policy = await access_policy(api)
    with pytest.raises(ValueError, match="managed_policy_ids"):
        await api.call(
            "merge_project_membership_access",
            membership_id,
            managed_access=[],
            managed_policy_ids=set(),
        )
    with pytest.raises(ValueError):
        await api.call(
            "add_project_membership_access_entry",
            membership_id,
            entry("someone-elses-policy", "Organization/o"),
            managed_policy_ids={policy},
        )


def _concurrent_writer(server: MedplumServer, membership_id: str, org: str, policy: str) -> Any:
    """A before_request hook that, before each PUT of the membership, lets another writer
    (raw httpx with its own token) append an entry first: the SDK's PUT then meets a 412."""
    headers = {"Authorization": f"Bearer {server.access_token()}"}
    url = f"{server.fhir_url}ProjectMembership/{membership_id}"
    state = {"interferences": 0, "limit": 1}

    def hook(request: PreparedRequest) -> None:
        if request.method != "PUT" or state["interferences"] >= state["limit"]:
            return
        state["interferences"] += 1
        current = httpx.get(url, headers=headers).json()
        extra = make_project_membership_access(
            f"AccessPolicy/{policy}", {"org": f"{org}-{state['interferences']}"}
        )
        written = httpx.put(
            url, headers=headers, json={**current, "access": [*current.get("access", []), extra]}
        )
        assert written.status_code == 200, written.text

    hook.state = state  # type: ignore[attr-defined]
    return hook


async def test_membership_access_retries_after_a_concurrent_write(make_api: Any) -> None:
    probe = make_api()
    server = probe.server
    membership_id = server.create_membership(read_only=True)["membership"]["id"]
    mine, theirs = await access_policy(probe), await access_policy(probe)
    hook = _concurrent_writer(server, membership_id, "Organization/theirs", theirs)
    api = make_api(before_request=hook)

    result = await api.call(
        "add_project_membership_access_entry",
        membership_id,
        entry(mine, "Organization/mine"),
        managed_policy_ids={mine},
    )
    assert hook.state["interferences"] == 1
    assert result.updated and result.managed_count == 1 and result.untouched_count == 1
    statuses = [
        e.final_status_code for e in api.fhir_events() if e.resource_type == "ProjectMembership"
    ]
    assert statuses == [200, 412, 200, 200]  # read, PUT (stale), re-read, PUT
    stored = await api.call("read_resource", "ProjectMembership", membership_id)
    policies = [a["policy"]["reference"] for a in stored["access"]]
    assert policies == [f"AccessPolicy/{theirs}", f"AccessPolicy/{mine}"]  # both writes kept

    # Without retries, the same interference is a PreconditionFailedError.
    hook.state["limit"] += 1
    with pytest.raises(PreconditionFailedError):
        await api.call(
            "add_project_membership_access_entry",
            membership_id,
            entry(mine, "Organization/mine-2"),
            managed_policy_ids={mine},
            max_retries=0,
        )


async def test_job_url_on_another_origin_is_refused(make_api: Any) -> None:
    # The server names the job with the address it listens on (127.0.0.1); to a client of
    # http://localhost:<port>/ that is another origin, and the poll would carry its token there.
    server = make_api().server
    port = httpx.URL(server.base_url).port
    api = make_api(base_url=f"http://localhost:{port}/")
    pid, _ = await patient_with_observations(api, count=1)
    outcome = await api.call(
        "set_accounts", f"Patient/{pid}", await new_org(api), propagate=True, prefer_async=True
    )
    requests_before = len(server.requests("/fhir/R4/job/"))
    with pytest.raises(UnsafeRedirectError):
        await api.call("get_async_job_status", outcome)
    with pytest.raises(UnsafeRedirectError):
        await api.call("wait_for_async_job", outcome, poll_interval=0.05, timeout=5)
    assert len(server.requests("/fhir/R4/job/")) == requests_before  # never polled


async def test_membership_access_runs_as_the_caller_not_on_behalf_of(make_api: Any) -> None:
    # A read-only member as the ambient On-Behalf-Of: membership administration must not act
    # as that member (it could not write, and a member must not edit its own access).
    server = make_api().server
    reader = server.create_membership(read_only=True)["membership"]["id"]
    api = make_api(default_on_behalf_of=reader)
    policy = (await api.call("create_resource", {"resourceType": "AccessPolicy"}, on_behalf_of=""))[
        "id"
    ]
    server.reset()  # empties the request log
    result = await api.call(
        "add_project_membership_access_entry",
        reader,
        entry(policy, "Organization/o-1"),
        managed_policy_ids={policy},
    )
    assert result.updated
    sent = server.requests("/fhir/R4/ProjectMembership/")
    assert [r["method"] for r in sent] == ["GET", "PUT"]
    assert all("x-medplum-on-behalf-of" not in r["headers"] for r in sent)


async def test_hidden_and_readonly_fields_of_an_access_entry_apply_on_behalf_of_the_member(
    api: Api,
) -> None:
    """A policy given with the access helpers, as Medplum 5.0.10's Repository applies it
    (removeHiddenFields / restoreReadonlyFields, repo.ts:2194-2248): the member never sees a
    hidden field and cannot set it or a read-only one; a create leaves both out, an update
    keeps the stored values."""
    policy = (
        await api.call(
            "create_resource",
            {
                "resourceType": "AccessPolicy",
                "name": unique("fields"),
                "resource": [
                    {
                        "resourceType": "Patient",
                        "readonlyFields": ["active"],
                        "hiddenFields": ["birthDate"],
                    }
                ],
            },
        )
    )["id"]
    member = api.server.create_membership()["membership"]["id"]
    await api.call(
        "add_project_membership_access_entry",
        member,
        entry(policy, await new_org(api)),
        managed_policy_ids={policy},
    )
    created = await api.call(
        "create_resource",
        {"resourceType": "Patient", "active": True, "birthDate": "1990-01-01"},
    )
    async with api.on_behalf_of(member):
        seen = await api.call("read_resource", "Patient", created["id"])
        assert seen["active"] is True and "birthDate" not in seen
        found = await api.call("search_resources", "Patient", {"_id": created["id"]})
        assert [e["resource"].get("birthDate") for e in found["entry"]] == [None]
        updated = await api.call(
            "update_resource",
            {**seen, "active": False, "birthDate": "2000-01-01", "gender": "female"},
        )
        assert updated["gender"] == "female" and updated["active"] is True
        assert "birthDate" not in updated
        # A patch of a read-only field changes nothing: the same version.
        patched = await api.call(
            "patch_resource",
            "Patient",
            created["id"],
            [{"op": "replace", "path": "/active", "value": False}],
        )
        assert patched["active"] is True
        assert patched["meta"]["versionId"] == updated["meta"]["versionId"]
        new = await api.call(
            "create_resource",
            {"resourceType": "Patient", "active": True, "birthDate": "1990-01-01"},
        )
        assert "active" not in new and "birthDate" not in new
        # The policy allows Patients only.
        with pytest.raises(AuthorizationError):
            await api.call("create_resource", {"resourceType": "Organization"})
    stored = await api.call("read_resource", "Patient", created["id"])
    assert (stored["active"], stored["birthDate"], stored["gender"]) == (
        True,
        "1990-01-01",
        "female",
    )
    stored_new = await api.call("read_resource", "Patient", new["id"])
    assert "active" not in stored_new and "birthDate" not in stored_new


async def test_a_project_admin_cannot_move_a_membership_to_another_user(api: Api) -> None:
    # applyProjectAdminAccessPolicy (accesspolicy.ts:247-303 at v5.0.10): for a project admin,
    # ProjectMembership.project and .user are read-only; an update keeps the stored ones.
    made = api.server.create_membership()
    membership = await api.call("read_resource", "ProjectMembership", made["membership"]["id"])
    other = await api.call("create_resource", {"resourceType": "Practitioner"})
    moved = await api.call(
        "update_resource",
        {
            **membership,
            "user": {"reference": f"Practitioner/{other['id']}"},
            "admin": True,
        },
    )
    assert moved["user"] == membership["user"] and moved["admin"] is True


async def test_the_criteria_of_an_access_entry_restrict_what_the_member_reads_and_writes(
    api: Api,
) -> None:
    """A policy given with the access helpers, as Medplum 5.0.10's Repository enforces its
    criteria (packages/server/src/fhir/repo.ts): reads and searches see only the resources some
    entry of the type allows (addAccessPolicyFilters, 1556-1611: any other is 404, as if it did
    not exist); writes need an entry allowing the interaction on the stored version
    (canPerformInteraction, 773-778, 1266-1268) and on the resource written (isResourceWriteable,
    823-826): 403."""
    policy = (
        await api.call(
            "create_resource",
            {
                "resourceType": "AccessPolicy",
                "name": unique("criteria"),
                "resource": [
                    {"resourceType": "Observation", "criteria": "Observation?status=final"},
                    {
                        "resourceType": "Observation",
                        "criteria": "Observation?status=preliminary",
                        "readonly": True,
                    },
                    {"resourceType": "Patient", "criteria": "Patient?_compartment=%org"},
                ],
            },
        )
    )["id"]
    org = await new_org(api)
    member = api.server.create_membership()["membership"]["id"]
    await api.call(
        "add_project_membership_access_entry",
        member,
        entry(policy, org),
        managed_policy_ids={policy},
    )
    code = {"text": unique("criteria")}

    async def observation(status: str) -> str:
        made = await api.call(
            "create_resource", {"resourceType": "Observation", "status": status, "code": code}
        )
        return str(made["id"])

    final, preliminary, registered = [
        await observation(s) for s in ("final", "preliminary", "registered")
    ]
    registered_version = (await api.call("read_resource", "Observation", registered))["meta"][
        "versionId"
    ]
    in_org = (
        await api.call(
            "create_resource",
            {"resourceType": "Patient", "meta": {"accounts": [{"reference": org}]}},
        )
    )["id"]
    elsewhere = (await api.call("create_resource", {"resourceType": "Patient"}))["id"]

    async with api.on_behalf_of(member):
        # Reads and searches: only what some entry's criteria match.
        seen = await api.call("read_resource", "Observation", final)
        assert (await api.call("read_resource", "Observation", preliminary))["id"] == preliminary
        with pytest.raises(NotFoundError):
            await api.call("read_resource", "Observation", registered)
        with pytest.raises(NotFoundError):
            await api.call("vread_resource", "Observation", registered, registered_version)
        found = await api.call(
            "search_resources", "Observation", {"code:text": code["text"], "_count": "10"}
        )
        assert sorted(e["resource"]["id"] for e in found["entry"]) == sorted([final, preliminary])
        assert (await api.call("read_resource", "Patient", in_org))["id"] == in_org
        with pytest.raises(NotFoundError):
            await api.call("read_resource", "Patient", elsewhere)
        patients = await api.call("search_resources", "Patient", {"_id": f"{in_org},{elsewhere}"})
        assert [e["resource"]["id"] for e in patients["entry"]] == [in_org]

        # Writes: inside the criteria of an entry allowing them, else 403 (404 when unreadable).
        noted = await api.call("update_resource", {**seen, "valueString": "ok"})
        assert noted["valueString"] == "ok"
        with pytest.raises(AuthorizationError):  # the result leaves the criteria
            await api.call("update_resource", {**noted, "status": "amended"})
        with pytest.raises(AuthorizationError):  # the read-only entry's resource
            await api.call(
                "patch_resource",
                "Observation",
                preliminary,
                [{"op": "add", "path": "/valueString", "value": "x"}],
            )
        with pytest.raises(AuthorizationError):
            await api.call("delete_resource", "Observation", preliminary)
        with pytest.raises(AuthorizationError):
            await api.call(
                "create_resource",
                {"resourceType": "Observation", "status": "preliminary", "code": code},
            )
        with pytest.raises(NotFoundError):
            await api.call(
                "update_resource",
                {
                    "resourceType": "Observation",
                    "id": registered,
                    "status": "final",
                    "code": code,
                },
            )
        with pytest.raises(NotFoundError):
            await api.call("delete_resource", "Observation", registered)
        created = await api.call(
            "create_resource", {"resourceType": "Observation", "status": "final", "code": code}
        )
        await api.call("delete_resource", "Observation", created["id"])
        # The deleted row keeps no search column but its compartments (repo.ts:1286-1293): the
        # criteria no longer matches it, so the member gets 404 where an admin gets 410.
        with pytest.raises(NotFoundError) as hidden:
            await api.call("read_resource", "Observation", created["id"])
        assert type(hidden.value) is NotFoundError  # not its subclass GoneError
    with pytest.raises(GoneError):
        await api.call("read_resource", "Observation", created["id"])

    stored = {
        i: (await api.call("read_resource", "Observation", i))
        for i in (final, preliminary, registered)
    }
    assert [stored[i]["status"] for i in (final, preliminary, registered)] == [
        "final",
        "preliminary",
        "registered",
    ]
    assert stored[final]["valueString"] == "ok" and "valueString" not in stored[preliminary]

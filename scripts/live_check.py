"""Run pymedplum's public API end to end against a Medplum server and report what works.

    MEDPLUM_BASE_URL=https://api.example.org/ MEDPLUM_CLIENT_ID=... MEDPLUM_CLIENT_SECRET=... \\
        python scripts/live_check.py [-k NAME]

The client's ProjectMembership must be a project admin (On-Behalf-Of, inviting a member and
editing its access need it). **It creates test data and deletes it again**: patients,
observations, organizations, a Binary, a ConceptMap, two AccessPolicies and an invited project
member (a Practitioner with a User and ProjectMembership; the membership is removed, Medplum
keeps the User). Everything carries a random run tag; run it against a test project, never a
production one. Deleted resources stay in the server's history, as every FHIR delete does.

It prints one line per scenario, ``PASS name`` or ``FAIL name: reason``, and exits 1 when any
scenario failed (2 when a setting is missing or refused; 130 on Ctrl-C, after deleting what
the run created, which a second Ctrl-C would cut short). The expectations are those of a real
Medplum 5.0.10 server with default settings (no terminology loaded beyond the seeded HL7 sets; the
project with or without the ``transaction-bundles`` feature); each scenario is a function below.
``-k NAME`` runs the scenarios whose name contains NAME.

A run spends about half of Medplum's default FHIR quota (50,000 points a minute per membership:
a write costs 100, a search 20): a second run within the minute may wait for the quota to reset
(the SDK waits on a 429; a batch whose entries were throttled is sent again after 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from check_runner import CheckFailed, check, registrar, run_checks, settings_from_env

from pymedplum import (
    AsyncMedplumClient,
    MedplumClient,
    make_project_membership_access,
)
from pymedplum.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BadRequestError,
    GoneError,
    MedplumError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from pymedplum.fhir import Observation, Patient

LOINC = "http://loinc.org"


class SettingRefused(Exception):
    """The client refused a setting (MEDPLUM_BASE_URL, ...); the message names it."""


@contextlib.contextmanager
def expect_error(kind: type[BaseException], what: str) -> Iterator[None]:
    """The block must raise ``kind`` (a subclass counts); another outcome fails the scenario."""
    try:
        yield
    except kind:
        return
    except MedplumError as exc:
        raise CheckFailed(
            f"{what}: expected {kind.__name__}, got {type(exc).__name__} "
            f"(HTTP {getattr(exc, 'status_code', '?')})"
        ) from exc
    raise CheckFailed(f"{what}: expected {kind.__name__}, got no error")


def resources(bundle: dict[str, Any], mode: str | None = "match") -> list[dict[str, Any]]:
    """The resources of a search Bundle (``mode=None``: every entry)."""
    return [
        e["resource"]
        for e in bundle.get("entry", [])
        if mode is None or e.get("search", {}).get("mode", "match") == mode
    ]


class Run:
    """State shared by the scenarios: the clients, the run tag, what to delete at the end."""

    def __init__(self, base_url: str, client_id: str, client_secret: str) -> None:
        self.base_url = base_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.client = MedplumClient(base_url, client_id=client_id, client_secret=client_secret)
        self.tag = uuid.uuid4().hex[:12]
        self.system = f"https://pymedplum.test/live-check/{self.tag}"
        self.created: list[tuple[str, str]] = []
        self.memberships: list[str] = []
        self.project_id = ""
        self.membership_id = ""
        self.cache: dict[str, Any] = {}

    def create(self, resource: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """``create_resource`` and remember it for cleanup."""
        created: dict[str, Any] = self.client.create_resource(resource, **kwargs)
        self.created.append((created["resourceType"], created["id"]))
        return created

    def track(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Remember a resource created another way for cleanup."""
        self.created.append((resource["resourceType"], resource["id"]))
        return resource

    def batch(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """``execute_batch``; the entries Medplum's FHIR quota throttled are sent again (once,
        after a minute): over the quota a batch answers 200 with those entries 429 while the
        others were applied (the SDK retries a request answered 429, not the entries of a 200),
        and a run right after another may hit it."""
        result: dict[str, Any] = self.client.execute_batch(bundle)
        entries = result.get("entry", [])
        throttled = [i for i, e in enumerate(entries) if e["response"]["status"].startswith("429")]
        if throttled:
            print(
                f"note: {len(throttled)} batch entries answered 429 (FHIR quota); waiting 60 s",
                file=sys.stderr,
            )
            time.sleep(60)
            again = self.client.execute_batch(
                {**bundle, "entry": [bundle["entry"][i] for i in throttled]}
            )
            for i, entry in zip(throttled, again.get("entry", []), strict=True):
                entries[i] = entry
        return result

    def tagged(self, resource_type: str, **fields: Any) -> dict[str, Any]:
        """A resource body with an identifier of this run's system (findable if left behind)."""
        identifier = [{"system": self.system, "value": uuid.uuid4().hex}]
        return {"resourceType": resource_type, "identifier": identifier, **fields}

    def patient(self, family: str = "Livecheck", **extra: Any) -> dict[str, Any]:
        """A Patient tagged with this run's identifier system."""
        body = {
            "resourceType": "Patient",
            "identifier": [{"system": self.system, "value": uuid.uuid4().hex}],
            "name": [{"given": ["Ada"], "family": family}],
            **extra,
        }
        return self.create(body)

    def cleanup(self) -> list[str]:
        """Delete everything created, newest first; returns what could not be deleted."""
        failures: list[str] = []
        for membership in self.memberships:
            try:
                self.client.delete(f"admin/projects/{self.project_id}/members/{membership}")
            except NotFoundError:
                pass
            except MedplumError as exc:
                failures.append(f"ProjectMembership/{membership}: {type(exc).__name__}")
        for resource_type, resource_id in reversed(self.created):
            try:
                self.client.delete_resource(resource_type, resource_id)
            except NotFoundError:  # GoneError included: already deleted by its scenario
                pass
            except MedplumError as exc:
                failures.append(f"{resource_type}/{resource_id}: {type(exc).__name__}")
        return failures


Scenario = Callable[[Run], None]
SCENARIOS: list[tuple[str, Scenario]] = []


# Registers a scenario under a name (run in registration order).
scenario = registrar(SCENARIOS)


# --- authentication ---------------------------------------------------------------------------


@scenario("auth.client_credentials")
def auth_client_credentials(run: Run) -> None:
    me = run.client.get("auth/me")
    check(isinstance(me, dict), "auth/me did not answer an object")
    project = me.get("project", {})
    membership = me.get("membership", {})
    check(project.get("resourceType") == "Project", "auth/me has no project")
    check(membership.get("resourceType") == "ProjectMembership", "auth/me has no membership")
    run.project_id = project["id"]
    run.membership_id = membership["id"]
    check(membership.get("admin") is True, "the client's membership is not a project admin")


@scenario("auth.wrong_secret_is_AuthenticationError")
def auth_wrong_secret(run: Run) -> None:
    with (
        MedplumClient(run.base_url, client_id=run.client_id, client_secret="wrong") as bad,
        expect_error(AuthenticationError, "a wrong client secret"),
    ):
        bad.read_resource("Patient", str(uuid.uuid4()))


@scenario("auth.bad_token_is_401")
def auth_bad_token(run: Run) -> None:
    with (
        MedplumClient(run.base_url, access_token="not-a-token") as bad,
        expect_error(AuthenticationError, "an invalid bearer token"),
    ):
        bad.read_resource("Patient", str(uuid.uuid4()))


# --- resources --------------------------------------------------------------------------------


@scenario("crud.create_read_meta")
def crud_create_read(run: Run) -> None:
    created = run.patient(gender="female")
    meta = created.get("meta", {})
    check(meta.get("versionId"), "create: no meta.versionId")
    check(meta.get("lastUpdated"), "create: no meta.lastUpdated")
    check(meta.get("project") == run.project_id, "create: meta.project is not the project")
    author = meta.get("author", {}).get("reference")
    check(author == f"ClientApplication/{run.client_id}", f"create: meta.author is {author!r}")
    compartments = [c.get("reference") for c in meta.get("compartment", [])]
    check(f"Project/{run.project_id}" in compartments, f"meta.compartment is {compartments}")
    check(f"Patient/{created['id']}" in compartments, "a Patient is not in its own compartment")
    read = run.client.read_resource("Patient", created["id"])
    check(read == created, "read differs from the created resource")
    run.cache["patient"] = created


@scenario("crud.update_if_match_vread_history")
def crud_update(run: Run) -> None:
    first = run.patient()
    changed = {**first, "gender": "male"}
    second = run.client.update_resource(changed)  # If-Match from meta.versionId
    check(second["meta"]["versionId"] != first["meta"]["versionId"], "update kept the version")
    with expect_error(PreconditionFailedError, "update with a stale If-Match"):
        run.client.update_resource({**first, "gender": "other"})
    third = run.client.update_resource({**first, "gender": "other"}, if_match=False)
    check(third["gender"] == "other", "update with if_match=False did not apply")
    old = run.client.vread_resource("Patient", first["id"], first["meta"]["versionId"])
    check(old.get("gender") is None, "vread of the first version is not the first version")
    history = run.client.get(f"fhir/R4/Patient/{first['id']}/_history")
    check(history["type"] == "history", f"_history answered a {history.get('type')} bundle")
    versions = [e["resource"]["meta"]["versionId"] for e in history["entry"]]
    check(len(versions) == 3, f"_history has {len(versions)} versions, expected 3")
    check(versions[0] == third["meta"]["versionId"], "_history is not newest first")


@scenario("crud.patch")
def crud_patch(run: Run) -> None:
    created = run.patient()
    patched = run.client.patch_resource(
        "Patient", created["id"], [{"op": "add", "path": "/gender", "value": "female"}]
    )
    check(patched["gender"] == "female", "patch did not apply")
    # Medplum 5.0.10 ignores If-Match on PATCH; the SDK enforces it with a JSON Patch test of
    # meta.versionId, so a stale one is PreconditionFailedError and patches nothing.
    stale = created["meta"]["versionId"]
    with expect_error(PreconditionFailedError, "patch with a stale If-Match"):
        run.client.patch_resource(
            "Patient",
            created["id"],
            [{"op": "replace", "path": "/gender", "value": "male"}],
            headers={"If-Match": f'W/"{stale}"'},
        )
    current = patched["meta"]["versionId"]
    again = run.client.patch_resource(
        "Patient",
        created["id"],
        [{"op": "replace", "path": "/gender", "value": "male"}],
        headers={"If-Match": f'W/"{current}"'},
    )
    check(again["gender"] == "male", "patch with the current If-Match did not apply")
    with expect_error(BadRequestError, "a patch whose test op fails"):
        run.client.patch_resource(
            "Patient", created["id"], [{"op": "test", "path": "/gender", "value": "female"}]
        )


@scenario("crud.delete_then_410")
def crud_delete(run: Run) -> None:
    created = run.patient()
    run.client.delete_resource("Patient", created["id"])
    with expect_error(GoneError, "read after delete"):
        run.client.read_resource("Patient", created["id"])
    with expect_error(NotFoundError, "read of an unknown id"):
        run.client.read_resource("Patient", str(uuid.uuid4()))
    with expect_error(NotFoundError, "type-level _history"):
        run.client.get("fhir/R4/Patient/_history")


@scenario("crud.create_if_none_exist")
def crud_conditional_create(run: Run) -> None:
    value = uuid.uuid4().hex
    body = {"resourceType": "Patient", "identifier": [{"system": run.system, "value": value}]}
    query = f"identifier={run.system}|{value}"
    first = run.track(run.client.create_resource_if_none_exist(body, query))
    again = run.client.create_resource_if_none_exist(body, f"?{query}")
    check(again["id"] == first["id"], "a second conditional create made a new resource")
    run.create(body)  # now two match
    with expect_error(PreconditionFailedError, "conditional create with two matches"):
        run.client.create_resource_if_none_exist(body, query)


@scenario("crud.invalid_resource_is_ValidationError")
def crud_invalid(run: Run) -> None:
    with expect_error(ValidationError, "a Patient with an unknown element"):
        run.create(run.tagged("Patient", unknownElement=True))
    with expect_error(ValidationError, "a Patient whose birthDate is not a date"):
        run.create(run.tagged("Patient", birthDate="not-a-date"))


# --- search -----------------------------------------------------------------------------------


def _observations(run: Run) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """Five Observations (values 1..5 mg, dates 2020-01-01..05) of one Patient, once per run."""
    if "observations" not in run.cache:
        code = f"live-{run.tag}"
        patient = run.patient(family=f"Obsfamily{run.tag}")
        observations = [
            run.create(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": run.system, "code": code}]},
                    "subject": {"reference": f"Patient/{patient['id']}"},
                    "effectiveDateTime": f"2020-01-0{i}T00:00:00Z",
                    "valueQuantity": {
                        "value": i,
                        "unit": "mg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mg",
                    },
                }
            )
            for i in range(1, 6)
        ]
        run.cache["observations"] = (patient, observations, code)
    result: tuple[dict[str, Any], list[dict[str, Any]], str] = run.cache["observations"]
    return result


@scenario("search.basic_and_one")
def search_basic(run: Run) -> None:
    _, observations, code = _observations(run)
    bundle = run.client.search_resources("Observation", {"code": f"{run.system}|{code}"})
    check(bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset", "not a searchset")
    ids = {r["id"] for r in resources(bundle)}
    check(ids == {o["id"] for o in observations}, f"search found {len(ids)} of 5")
    one = run.client.search_one("Observation", {"code": f"{run.system}|{code}"})
    check(one is not None and one["id"] in ids, "search_one found nothing")
    none = run.client.search_one("Observation", {"code": f"{run.system}|absent"})
    check(none is None, "search_one of nothing is not None")
    typed = run.client.search_resources(
        "Observation", {"code": code}, return_bundle=True, as_fhir=Observation
    )
    check(len(list(typed)) == 5, "FHIRBundle did not hold 5 typed Observations")


@scenario("search.pages")
def search_pages(run: Run) -> None:
    _, observations, code = _observations(run)
    seen = [
        r["id"]
        for r in run.client.search_resource_pages("Observation", {"code": code, "_count": "2"})
    ]
    check(len(seen) == 5 and set(seen) == {o["id"] for o in observations}, f"paged {len(seen)}")
    sorted_ids = [
        r["id"]
        for r in run.client.search_resource_pages(
            "Observation", [("code", code), ("_count", "2"), ("_sort", "_lastUpdated")]
        )
    ]
    check(len(sorted_ids) == 5, f"_sort=_lastUpdated paging gave {len(sorted_ids)}")
    typed = list(
        run.client.search_resource_pages("Observation", {"code": code}, as_fhir=Observation)
    )
    check(all(isinstance(o, Observation) for o in typed), "as_fhir pages are not models")


@scenario("search.cursor_pages")
def search_cursor_pages(run: Run) -> None:
    # 45 resources: with _count >= 20 and _sort=_lastUpdated Medplum pages by cursor; the
    # default page (20) by offset. Both must yield every resource once.
    value = f"cursor-{run.tag}"
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": run.system, "value": value}],
                },
                "request": {"method": "POST", "url": "Patient"},
            }
            for _ in range(45)
        ],
    }
    entries = run.batch(batch)["entry"]
    created = [run.track(e["resource"])["id"] for e in entries if "resource" in e]
    check(len(created) == 45, f"the batch created {len(created)} of 45 patients")
    query = {"identifier": f"{run.system}|{value}"}
    by_cursor = [
        r["id"]
        for r in run.client.search_resource_pages(
            "Patient", {**query, "_count": "20", "_sort": "_lastUpdated"}
        )
    ]
    check(sorted(by_cursor) == sorted(created), f"cursor paging yielded {len(by_cursor)} of 45")
    first = run.client.search_resources(
        "Patient", {**query, "_count": "20", "_sort": "_lastUpdated"}
    )
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    check("_cursor=" in next_url, "a _sort=_lastUpdated page of 20 has no cursor next link")
    by_offset = [r["id"] for r in run.client.search_resource_pages("Patient", query)]
    check(sorted(by_offset) == sorted(created), f"offset paging yielded {len(by_offset)} of 45")


@scenario("search.options_count_total_sort_summary_elements")
def search_options(run: Run) -> None:
    _, _, code = _observations(run)
    bundle = run.client.search_with_options(
        "Observation", {"code": code}, count=2, total="accurate"
    )
    check(bundle.get("total") == 5, f"total=accurate gave total {bundle.get('total')}")
    check(len(resources(bundle)) == 2, "count=2 did not limit the page")
    check(any(link["relation"] == "next" for link in bundle.get("link", [])), "no next link")
    ordered = run.client.search_with_options("Observation", {"code": code}, sort="-date")
    dates = [r["effectiveDateTime"] for r in resources(ordered)]
    check(dates == sorted(dates, reverse=True), "sort=-date is not descending")
    counted = run.client.search_with_options("Observation", {"code": code}, summary="count")
    check(counted.get("total") == 5 and not counted.get("entry"), "summary=count")
    offset = run.client.search_with_options("Observation", {"code": code}, sort="date", offset=3)
    check(
        [r["effectiveDateTime"][:10] for r in resources(offset)] == ["2020-01-04", "2020-01-05"],
        "offset=3",
    )
    subset = run.client.search_with_options("Observation", {"code": code}, elements=["status"])
    first = resources(subset)[0]
    check("valueQuantity" not in first and first.get("status") == "final", "elements=[status]")
    tags = [t.get("code") for t in first.get("meta", {}).get("tag", [])]
    check("SUBSETTED" in tags, f"an _elements result is not tagged SUBSETTED (tags {tags})")


@scenario("search.include_revinclude")
def search_include(run: Run) -> None:
    patient, _, code = _observations(run)
    included = run.client.search_with_options(
        "Observation", {"code": code}, include="Observation:subject"
    )
    check([r["id"] for r in resources(included, "include")] == [patient["id"]], "_include")
    reverse = run.client.search_with_options(
        "Patient", {"_id": patient["id"]}, revinclude="Observation:subject"
    )
    check(len(resources(reverse, "include")) == 5, "_revinclude did not add the 5 Observations")


@scenario("search.chained_has_missing_exact")
def search_modifiers(run: Run) -> None:
    patient, _, code = _observations(run)
    family = f"Obsfamily{run.tag}"
    chained = run.client.search_resources("Observation", {"subject:Patient.family": family})
    check(len(resources(chained)) == 5, "chained subject:Patient.family")
    has = run.client.search_resources("Patient", {"_has:Observation:subject:code": code})
    check([r["id"] for r in resources(has)] == [patient["id"]], "_has:Observation:subject:code")
    run.create(
        {"resourceType": "Observation", "status": "final", "code": {"coding": [{"code": code}]}}
    )
    missing = run.client.search_resources("Observation", {"code": code, "subject:missing": "true"})
    check(len(resources(missing)) == 1, "subject:missing=true")
    present = run.client.search_resources("Observation", {"code": code, "subject:missing": "false"})
    check(len(resources(present)) == 5, "subject:missing=false")
    exact = run.client.search_resources("Patient", {"family:exact": family})
    check(len(resources(exact)) == 1, "family:exact with the exact case")
    lower = run.client.search_resources("Patient", {"family:exact": family.lower()})
    check(len(resources(lower)) == 0, "family:exact is case-sensitive")
    contains = run.client.search_resources("Patient", {"family:contains": run.tag})
    check(len(resources(contains)) == 1, "family:contains")


@scenario("search.prefixes_and_decimal")
def search_prefixes(run: Run) -> None:
    _, _, code = _observations(run)

    def count(query: dict[str, Any]) -> int:
        bundle = run.client.search_resources(
            "Observation", {"code": code, "subject:missing": "false", **query}
        )
        return len(resources(bundle))

    check(count({"value-quantity": "gt3"}) == 2, "value-quantity=gt3")
    check(count({"value-quantity": "le2"}) == 2, "value-quantity=le2")
    check(count({"value-quantity": Decimal("2.5")}) == 0, "value-quantity=2.5 (eq)")
    check(count({"value-quantity": f"gt{Decimal('2.5')}"}) == 3, "value-quantity=gt2.5")
    check(count({"value-quantity": "3||mg"}) == 1, "value-quantity=3||mg")
    check(count({"date": "ge2020-01-03"}) == 3, "date=ge2020-01-03")
    check(count({"date": "lt2020-01-02"}) == 1, "date=lt2020-01-02")
    check(count({"date": ["ge2020-01-02", "le2020-01-04"]}) == 3, "date range (two params)")
    check(count({"status": "final,amended"}) == 5, "token OR list")
    check(count({"code": f"{run.system}|{code}", "status:not": "final"}) == 0, "status:not")


@scenario("search.errors_are_400")
def search_errors(run: Run) -> None:
    with expect_error(BadRequestError, "an unknown search parameter"):
        run.client.search_resources("Patient", {"not-a-param": "x"})
    with expect_error(BadRequestError, "an invalid date"):
        run.client.search_resources("Patient", {"birthdate": "not-a-date"})


# --- bundles ----------------------------------------------------------------------------------


@scenario("bundle.batch_with_failure")
def bundle_batch(run: Run) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": run.system, "value": "b1"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": f"Patient/{uuid.uuid4()}"}},
            {"request": {"method": "GET", "url": f"Patient?identifier={run.system}|b1"}},
        ],
    }
    result = run.batch(bundle)
    check(result["type"] == "batch-response", f"batch answered {result.get('type')}")
    statuses = [e["response"]["status"] for e in result["entry"]]
    if "resource" in result["entry"][0]:
        run.track(result["entry"][0]["resource"])  # before the checks, so it is deleted
    check(statuses[0].startswith("201"), f"batch create answered {statuses[0]}")
    check(statuses[1].startswith("404"), f"batch read of an unknown id answered {statuses[1]}")
    check(statuses[2].startswith("200"), f"batch search answered {statuses[2]}")
    outcome = result["entry"][1]["response"].get("outcome", {})
    check(outcome.get("resourceType") == "OperationOutcome", "failed batch entry has no outcome")


@scenario("bundle.transaction")
def bundle_transaction(run: Run) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:5f2c1c70-0000-4000-8000-000000000001",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": run.system, "value": "t1"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": run.system, "code": "transaction"}]},
                    "subject": {"reference": "urn:uuid:5f2c1c70-0000-4000-8000-000000000001"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    result = run.client.execute_transaction(bundle)
    patient, observation = [run.track(e["resource"]) for e in result["entry"]]
    check(result["type"] == "transaction-response", f"transaction answered {result.get('type')}")
    check(
        observation["subject"]["reference"] == f"Patient/{patient['id']}",
        "urn:uuid reference was not resolved",
    )


@scenario("bundle.transaction_with_failure")
def bundle_transaction_failure(run: Run) -> None:
    target = run.patient()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": run.system, "value": "t2"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {**target, "gender": "male"},
                "request": {
                    "method": "PUT",
                    "url": f"Patient/{target['id']}",
                    "ifMatch": 'W/"stale"',
                },
            },
        ],
    }
    try:
        result = run.client.execute_transaction(bundle)
    except PreconditionFailedError:
        # With the project feature `transaction-bundles`, Medplum 5.0.10 runs a transaction
        # atomically: the failing entry's 412 fails it whole and nothing is committed.
        left = run.client.search_resources("Patient", {"identifier": f"{run.system}|t2"})
        check(not resources(left), "a failed atomic transaction committed its create")
        check(
            run.client.read_resource("Patient", target["id"]).get("gender") is None,
            "update committed",
        )
        return
    # Without that feature it runs the transaction as a batch: the good entry is committed and
    # the failing one answers its own status.
    statuses = [e["response"]["status"] for e in result["entry"]]
    if "resource" in result["entry"][0]:
        run.track(result["entry"][0]["resource"])  # before the checks, so it is deleted
    check(statuses[0].startswith("201"), f"transaction create answered {statuses[0]}")
    check(statuses[1].startswith("412"), f"stale ifMatch entry answered {statuses[1]}")


# --- GraphQL ----------------------------------------------------------------------------------


@scenario("graphql.query_and_error")
def graphql(run: Run) -> None:
    patient = run.cache.get("patient") or run.patient()
    result = run.client.execute_graphql(
        "query Q($id: ID!) { Patient(id: $id) { id name { family } } }", {"id": patient["id"]}
    )
    check(result.get("data", {}).get("Patient", {}).get("id") == patient["id"], "graphql read")
    listed = run.client.execute_graphql(
        "{ PatientList(identifier: $ident) { id } }".replace(
            "$ident", f'"{run.system}|{patient["identifier"][0]["value"]}"'
        )
    )
    check(len(listed.get("data", {}).get("PatientList", [])) == 1, "graphql PatientList search")
    with expect_error(BadRequestError, "a GraphQL query with an unknown field"):
        run.client.execute_graphql("{ PatientList { notAField } }")


# --- On-Behalf-Of and access ------------------------------------------------------------------


def _member(run: Run) -> dict[str, Any]:
    """A Practitioner invited into the project (admin API), once per run."""
    if "member" not in run.cache:
        membership: dict[str, Any] = run.client.post(
            f"admin/projects/{run.project_id}/invite",
            json={
                "resourceType": "Practitioner",
                "firstName": "Live",
                "lastName": f"Check{run.tag}",
                "email": f"live-check-{run.tag}@example.com",
                "sendEmail": False,
            },
        )
        check(
            membership.get("resourceType") == "ProjectMembership",
            "invite did not answer a membership",
        )
        run.memberships.append(membership["id"])
        profile_type, profile_id = membership["profile"]["reference"].split("/", 1)
        run.created.append((profile_type, profile_id))
        run.cache["member"] = membership
    member: dict[str, Any] = run.cache["member"]
    return member


@scenario("obo.create_as_member")
def obo_create(run: Run) -> None:
    member = _member(run)
    ref = f"ProjectMembership/{member['id']}"
    created = run.create(
        {"resourceType": "Patient", "identifier": [{"system": run.system, "value": "obo"}]},
        on_behalf_of=ref,
    )
    meta = created["meta"]
    check(
        meta.get("author", {}).get("reference") == f"ClientApplication/{run.client_id}",
        f"meta.author {meta.get('author')}",
    )
    check(
        meta.get("onBehalfOf", {}).get("reference") == member["profile"]["reference"],
        f"meta.onBehalfOf {meta.get('onBehalfOf')}",
    )
    with run.client.on_behalf_of(ref):
        read = run.client.read_resource("Patient", created["id"])
    check(read["id"] == created["id"], "read On-Behalf-Of")
    with expect_error(NotFoundError, "On-Behalf-Of an unknown membership"):
        run.client.read_resource(
            "Patient", created["id"], on_behalf_of=f"ProjectMembership/{uuid.uuid4()}"
        )


@scenario("access.helpers_restrict_member")
def access_helpers(run: Run) -> None:
    member = _member(run)
    ref = f"ProjectMembership/{member['id']}"
    policy = run.create(
        {
            "resourceType": "AccessPolicy",
            "name": f"live check read-only {run.tag}",
            "resource": [
                {"resourceType": "Patient", "readonly": True},
                {"resourceType": "Observation"},
            ],
        }
    )
    entry = make_project_membership_access(f"AccessPolicy/{policy['id']}", {"tag": run.tag})
    added = run.client.add_project_membership_access_entry(
        member["id"], entry, managed_policy_ids={policy["id"]}
    )
    check(added.updated and added.managed_count == 1, f"add entry: {added}")
    again = run.client.add_project_membership_access_entry(
        member["id"], entry, managed_policy_ids={policy["id"]}
    )
    check(not again.updated, "adding the same entry twice wrote again")
    with expect_error(AuthorizationError, "a create of a read-only type On-Behalf-Of the member"):
        run.create(run.tagged("Patient"), on_behalf_of=ref)
    patient = run.cache.get("patient") or run.patient()
    check(
        run.client.read_resource("Patient", patient["id"], on_behalf_of=ref)["id"] == patient["id"],
        "read",
    )
    with expect_error(AuthorizationError, "a create of a type the policy does not name"):
        run.create(run.tagged("Organization", name="x"), on_behalf_of=ref)
    # Replace the read-only entry by one granting every type (emptying `access` of a membership
    # without an accessPolicy is refused by the SDK: Medplum would grant it everything).
    full = run.create(
        {
            "resourceType": "AccessPolicy",
            "name": f"live check all {run.tag}",
            "resource": [{"resourceType": "*"}],
        }
    )
    managed = {policy["id"], full["id"]}
    full_entry = make_project_membership_access(f"AccessPolicy/{full['id']}", {"tag": run.tag})
    merged = run.client.merge_project_membership_access(
        member["id"], managed_access=[full_entry], managed_policy_ids=managed
    )
    check(merged.updated and merged.managed_count == 1, f"merge: {merged}")
    check(
        run.create(run.tagged("Organization", name="y"), on_behalf_of=ref)["id"],
        "create after the merge",
    )
    removed = run.client.remove_project_membership_access_entry(
        member["id"], entry, managed_policy_ids=managed
    )
    check(not removed.updated, "removing an entry that is no longer there wrote")


# --- accounts and async jobs ------------------------------------------------------------------


@scenario("accounts.set_accounts_propagate_and_async")
def accounts(run: Run) -> None:
    org = run.create({"resourceType": "Organization", "name": f"Live check {run.tag}"})
    org2 = run.create({"resourceType": "Organization", "name": f"Live check 2 {run.tag}"})
    patient = run.patient()
    obs = run.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": run.system, "code": "accounts"}]},
            "subject": {"reference": f"Patient/{patient['id']}"},
        }
    )
    result = run.client.set_accounts(
        f"Patient/{patient['id']}", f"Organization/{org['id']}", propagate=True
    )
    updated = {p["name"]: p.get("valueInteger") for p in result.get("parameter", [])}
    check(updated.get("resourcesUpdated") == 2, f"set_accounts answered {updated}")
    accounts_now = [
        a["reference"]
        for a in run.client.read_resource("Observation", obs["id"])["meta"].get("accounts", [])
    ]
    check(accounts_now == [f"Organization/{org['id']}"], f"propagated accounts {accounts_now}")
    outcome = run.client.set_accounts(
        f"Patient/{patient['id']}",
        [f"Organization/{org2['id']}"],
        propagate=True,
        prefer_async=True,
    )
    check(
        outcome.get("resourceType") == "OperationOutcome",
        "prefer_async did not answer an OperationOutcome",
    )
    status = run.client.get_async_job_status(outcome)
    check(status.get("resourceType") == "AsyncJob", "get_async_job_status is not an AsyncJob")
    job = run.client.wait_for_async_job(outcome, poll_interval=0.5, timeout=60)
    check(job["status"] == "completed", f"async set_accounts ended {job['status']}")
    accounts_now = [
        a["reference"]
        for a in run.client.read_resource("Observation", obs["id"])["meta"].get("accounts", [])
    ]
    check(accounts_now == [f"Organization/{org2['id']}"], f"accounts after async {accounts_now}")
    created = run.create(run.tagged("Patient"), accounts=f"Organization/{org['id']}")
    check(
        [a["reference"] for a in created["meta"].get("accounts", [])]
        == [f"Organization/{org['id']}"],
        "create with accounts=",
    )


@scenario("jobs.bulk_export")
def bulk_export(run: Run) -> None:
    outcome = run.client.post(
        "fhir/R4/Patient/$export",
        headers={"Prefer": "respond-async"},
        params={"_type": "Patient", "_since": "2999-01-01T00:00:00Z"},
    )
    check(
        isinstance(outcome, dict) and outcome.get("resourceType") == "OperationOutcome",
        "$export kick-off",
    )
    manifest = run.client.wait_for_async_job(outcome, poll_interval=0.5, timeout=120)
    check(
        "output" in manifest and "transactionTime" in manifest,
        f"export manifest keys {sorted(manifest)}",
    )


# --- binary, C-CDA, terminology ---------------------------------------------------------------


@scenario("binary.upload_download")
def binary(run: Run) -> None:
    content = b"%PDF-1.4 live check " + run.tag.encode() + bytes(range(256))
    created = run.track(run.client.upload_binary(content, "application/pdf"))
    check(
        created["resourceType"] == "Binary" and created["contentType"] == "application/pdf",
        "upload",
    )
    check(run.client.download_binary(created["id"]) == content, "download differs from the upload")


@scenario("ccda.export")
def ccda(run: Run) -> None:
    patient = run.cache.get("patient") or run.patient()
    xml = run.client.export_ccda(patient["id"])
    check(isinstance(xml, str) and "ClinicalDocument" in xml, "export_ccda is not a C-CDA document")


@scenario("terminology.expand_lookup_translate")
def terminology(run: Run) -> None:
    expansion = run.client.expand_valueset(
        valueset_url="http://hl7.org/fhir/ValueSet/observation-status"
    )
    codes = {c.get("code") for c in expansion.get("expansion", {}).get("contains", [])}
    check("final" in codes, f"$expand observation-status has {sorted(codes)[:5]}")
    filtered = run.client.expand_valueset(
        valueset_url="http://hl7.org/fhir/ValueSet/observation-status", filter="amend"
    )
    check(
        {c["code"] for c in filtered["expansion"].get("contains", [])} == {"amended"},
        "$expand filter",
    )
    lookup = run.client.lookup_concept("final", system="http://hl7.org/fhir/observation-status")
    params = {p["name"]: p for p in lookup.get("parameter", [])}
    check(
        params.get("display", {}).get("valueString") == "Final",
        f"$lookup display {params.get('display')}",
    )
    with expect_error(NotFoundError, "$lookup of an unknown code"):
        run.client.lookup_concept("no-such-code", system="http://hl7.org/fhir/observation-status")
    cmap = run.create(
        {
            "resourceType": "ConceptMap",
            "status": "active",
            "url": f"{run.system}/ConceptMap",
            "group": [
                {
                    "source": "http://hl7.org/fhir/observation-status",
                    "target": f"{run.system}/local",
                    "element": [
                        {"code": "final", "target": [{"code": "F", "equivalence": "equivalent"}]}
                    ],
                }
            ],
        }
    )
    translated = run.client.translate_concept(
        code="final", system="http://hl7.org/fhir/observation-status", conceptmap_id=cmap["id"]
    )
    tparams = {p["name"]: p for p in translated.get("parameter", [])}
    check(tparams.get("result", {}).get("valueBoolean") is True, "$translate found no match")
    match = [p for p in translated["parameter"] if p["name"] == "match"]
    concept = next(q for q in match[0]["part"] if q["name"] == "concept")["valueCoding"]
    check(concept.get("code") == "F", f"$translate mapped to {concept}")
    by_url = run.client.translate_concept(
        code="final",
        system="http://hl7.org/fhir/observation-status",
        conceptmap_url=f"{run.system}/ConceptMap",
    )
    check(
        {p["name"]: p for p in by_url["parameter"]}["result"]["valueBoolean"] is True,
        "$translate by url",
    )


# --- low level and typed models ---------------------------------------------------------------


@scenario("lowlevel.get_post_put_delete")
def low_level(run: Run) -> None:
    created = run.client.post(
        "fhir/R4/Patient",
        json={"resourceType": "Patient", "identifier": [{"system": run.system, "value": "ll"}]},
    )
    run.track(created)
    read = run.client.get(f"fhir/R4/Patient/{created['id']}")
    check(read["id"] == created["id"], "low-level get")
    updated = run.client.put(f"fhir/R4/Patient/{created['id']}", json={**read, "gender": "unknown"})
    check(updated["gender"] == "unknown", "low-level put")
    searched = run.client.get("fhir/R4/Patient", params={"identifier": f"{run.system}|ll"})
    check(len(resources(searched)) == 1, "low-level search with params=")
    deleted = run.client.delete(f"fhir/R4/Patient/{created['id']}")
    check(deleted is None or deleted.get("resourceType") == "OperationOutcome", "low-level delete")
    with expect_error(GoneError, "low-level get after delete"):
        run.client.get(f"fhir/R4/Patient/{created['id']}")
    with expect_error(NotFoundError, "a path outside the FHIR base"):
        run.client.get("Patient")


@scenario("typed.round_trip_meta")
def typed(run: Run) -> None:
    created = run.client.create_resource(
        Patient(identifier=[{"system": run.system, "value": "typed"}], birth_date="1990-01-02"),
        as_fhir=Patient,
    )
    check(isinstance(created, Patient) and created.id, "create as_fhir=Patient")
    assert created.id is not None
    run.created.append(("Patient", created.id))
    check(created.medplum_project == run.project_id, f"medplum_project {created.medplum_project}")
    check(created.medplum_author == f"ClientApplication/{run.client_id}", "medplum_author")
    check(created.medplum_compartment, "medplum_compartment is empty")
    read = run.client.read_resource("Patient", created.id, as_fhir=Patient)
    check(
        read.birth_date is not None and str(read.birth_date) == "1990-01-02", "birthDate round trip"
    )
    read.gender = "female"
    updated = run.client.update_resource(read, as_fhir=Patient)
    check(updated.gender == "female", "typed update")
    obs = run.client.read_resource(
        "Observation", _observations(run)[1][0]["id"], as_fhir=Observation
    )
    check(
        obs.value_quantity is not None and obs.value_quantity.value == Decimal("1"), "Decimal value"
    )
    bundle = run.client.search_with_options(
        "Observation", {"code": _observations(run)[2]}, return_bundle=True, as_fhir=Observation
    )
    check(len(list(bundle)) >= 5, "FHIRBundle from search_with_options")


# --- the async client -------------------------------------------------------------------------


@scenario("async.crud_search_batch_graphql")
def async_client(run: Run) -> None:
    async def main() -> None:
        async with AsyncMedplumClient(
            run.base_url, client_id=run.client_id, client_secret=run.client_secret
        ) as client:
            created = await client.create_resource(
                {
                    "resourceType": "Patient",
                    "identifier": [{"system": run.system, "value": "async"}],
                }
            )
            run.track(created)
            updated = await client.update_resource({**created, "gender": "male"})
            with expect_error(PreconditionFailedError, "async stale update"):
                await client.update_resource({**created, "gender": "female"})
            read = await client.read_resource("Patient", created["id"], as_fhir=Patient)
            check(
                read.meta is not None and read.meta.version_id == updated["meta"]["versionId"],
                "async read",
            )
            code = _observations(run)[2]
            seen = [
                r["id"]
                async for r in client.search_resource_pages(
                    "Observation", {"code": code, "_count": "2"}
                )
            ]
            check(len(seen) == len(set(seen)) >= 5, f"async paging gave {len(seen)}")
            batch = await client.execute_batch(
                {
                    "resourceType": "Bundle",
                    "type": "batch",
                    "entry": [{"request": {"method": "GET", "url": f"Patient/{created['id']}"}}],
                }
            )
            check(batch["entry"][0]["response"]["status"].startswith("200"), "async batch")
            gql = await client.execute_graphql(
                "query Q($id: ID!) { Patient(id: $id) { id } }", {"id": created["id"]}
            )
            check(gql["data"]["Patient"]["id"] == created["id"], "async graphql")
            await client.delete_resource("Patient", created["id"])
            with expect_error(GoneError, "async read after delete"):
                await client.read_resource("Patient", created["id"])

    asyncio.run(main())


# --- runner -----------------------------------------------------------------------------------


def run_all(
    base_url: str, client_id: str, client_secret: str, pattern: str = ""
) -> tuple[int, int]:
    """Run the scenarios, print one line each, clean up; (passed, failed) counts."""
    try:
        run = Run(base_url, client_id, client_secret)
    except ValueError as exc:  # its message starts with the argument's name
        names = {"base_url": "MEDPLUM_BASE_URL", "client_id": "MEDPLUM_CLIENT_ID"}
        names["client_secret"] = "MEDPLUM_CLIENT_SECRET"
        setting = next((env for arg, env in names.items() if str(exc).startswith(arg)), "settings")
        raise SettingRefused(f"{setting}: {exc}") from exc

    def finish() -> str | None:
        try:
            leftovers = run.cleanup()
        finally:
            run.client.close()
        return f"could not delete {', '.join(leftovers)}" if leftovers else None

    return run_checks(
        SCENARIOS,
        run,
        pattern=pattern,
        always="auth.client_credentials",
        stop_if_fails=False,
        finish=finish,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-k", dest="pattern", default="", help="run scenarios whose name contains this"
    )
    args = parser.parse_args(argv)
    settings = settings_from_env()
    if settings is None:
        return 2
    base_url, client_id, client_secret = settings
    try:
        passed, failures = run_all(base_url, client_id, client_secret, pattern=args.pattern)
    except SettingRefused as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"{passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

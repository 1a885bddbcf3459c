"""Put pymedplum under load against a Medplum server: volume, paging, concurrency, bulk export.

    MEDPLUM_BASE_URL=https://api.example.org/ MEDPLUM_CLIENT_ID=... MEDPLUM_CLIENT_SECRET=... \\
        python scripts/load_check.py [--patients 100] [--tasks 20] [--seconds 10]

**It creates test data and deletes it again**: ``--patients`` Patients, each with three
Observations and an Encounter (so 5 x ``--patients`` resources), every one tagged with the
run's tag (``meta.tag`` system ``https://pymedplum.test/load-check``); run it against a test
project. The phases, each printed as ``PASS name (seconds): figures`` or ``FAIL name: reason``:

- ``load``: the resources created by batches of up to 200 entries (sync client).
- ``paging``: ``search_resource_pages`` over the run's Observations, ``_count`` 1000 and 20,
  ``_sort=_lastUpdated`` (cursor paging), as dicts and as models, sync and async: every one
  yielded exactly once; the tracemalloc peak of each.
- ``revinclude``: the run's Patients with ``_revinclude=Observation:subject``, 50 a page.
- ``concurrency``: ``--tasks`` tasks on one async client for ``--seconds`` seconds, its pool
  holding half as many connections (a quarter of those kept alive): reads, searches,
  ``update_resource`` with If-Match on three shared Patients (``PreconditionFailedError``
  expected and counted), and searches cancelled mid-request. No other error may surface (a
  connection slot lost to a cancellation would soon end calls in ``PoolTimeout``), and
  afterwards ``--tasks`` concurrent reads must all answer.
- ``export``: ``$export`` of Patient, Observation and Encounter since the run started,
  ``wait_for_async_job``, every NDJSON output downloaded with ``download_binary``: the run's
  resources in them must be exactly those created.

The Bulk Data ``$export`` needs a project admin. Exit status 1 when a phase failed, 2 when a
setting is missing or refused, 130 on Ctrl-C (after deleting what the run created).

Medplum's FHIR quota (50,000 points a minute per membership by default; a write costs 100)
allows about 500 writes a minute: the default 100 patients (500 creates, 500 deletes) spend
two minutes of it, and the SDK waits when a request is answered 429; batch entries answered
429 are sent again after a minute, and a phase over the quota takes that much longer (on a
real 5.0.10 at the default quota, 150 patients: load 62 s, the 10 s concurrency phase 59 s,
every phase passing). Raise the project's ``userFhirQuota`` system setting for larger runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
from check_runner import CheckFailed, check, registrar, run_checks, settings_from_env

from pymedplum import AsyncMedplumClient, MedplumClient
from pymedplum.exceptions import MedplumError, PreconditionFailedError
from pymedplum.fhir import Observation

TAG_SYSTEM = "https://pymedplum.test/load-check"
BATCH = 200


class Run:
    """The settings, the sync client, the run tag and what the run created."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, args: Any) -> None:
        self.base_url = base_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.args = args
        self.client = MedplumClient(
            base_url, client_id=client_id, client_secret=client_secret, timeout=120
        )
        self.tag = uuid.uuid4().hex[:12]
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.created: dict[str, list[str]] = {"Patient": [], "Observation": [], "Encounter": []}

    def async_client(self, **kwargs: Any) -> AsyncMedplumClient:
        return AsyncMedplumClient(
            self.base_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            timeout=120,
            **kwargs,
        )

    def meta(self) -> dict[str, Any]:
        return {"tag": [{"system": TAG_SYSTEM, "code": self.tag}]}

    def tag_query(self, **extra: str) -> dict[str, str]:
        return {"_tag": f"{TAG_SYSTEM}|{self.tag}", **extra}

    def batch(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The entries' responses, in order; those Medplum's FHIR quota throttled (answered 429
        inside a 200 batch) are sent again after a minute, up to three times."""
        responses: list[dict[str, Any] | None] = [None] * len(entries)
        pending = list(range(len(entries)))
        for attempt in range(4):
            bundle = {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [entries[i] for i in pending],
            }
            answer = self.client.execute_batch(bundle)
            throttled = []
            for i, entry in zip(pending, answer.get("entry", []), strict=True):
                responses[i] = entry
                if entry["response"]["status"].startswith("429"):
                    throttled.append(i)
            if not throttled or attempt == 3:
                break
            print(f"note: {len(throttled)} entries throttled (FHIR quota); waiting 60 s")
            time.sleep(60)
            pending = throttled
        return [r for r in responses if r is not None]

    def create_all(self, resources: list[dict[str, Any]]) -> None:
        for start in range(0, len(resources), BATCH):
            chunk = resources[start : start + BATCH]
            entries = [
                {"request": {"method": "POST", "url": r["resourceType"]}, "resource": r}
                for r in chunk
            ]
            failed = []
            for body, entry in zip(chunk, self.batch(entries), strict=True):
                # Tracked before checked: a failed check leaves nothing behind.
                if entry["response"]["status"].startswith("201"):
                    self.created[body["resourceType"]].append(entry["resource"]["id"])
                else:
                    failed.append(entry["response"]["status"])
            check(not failed, f"{len(failed)} batch entries not created: {failed[:3]}")

    def cleanup(self) -> int:
        """Delete what the run created; return how many deletes failed."""
        entries = [
            {"request": {"method": "DELETE", "url": f"{resource_type}/{resource_id}"}}
            for resource_type in ("Observation", "Encounter", "Patient")
            for resource_id in self.created[resource_type]
        ]
        failed = 0
        for start in range(0, len(entries), BATCH):
            for entry in self.batch(entries[start : start + BATCH]):
                if not entry["response"]["status"].startswith(("200", "204", "404", "410")):
                    failed += 1
        return failed


Phase = Callable[[Run], str]
PHASES: list[tuple[str, Phase]] = []


# Registers a phase under a name (run in registration order).
phase = registrar(PHASES)


@phase("load")
def load(run: Run) -> str:
    n = run.args.patients
    patients = [
        {
            "resourceType": "Patient",
            "meta": run.meta(),
            "name": [{"family": f"Loadcheck{i:05d}", "given": ["Test"]}],
            "birthDate": f"19{50 + i % 50}-01-{1 + i % 28:02d}",
        }
        for i in range(n)
    ]
    run.create_all(patients)
    check(len(run.created["Patient"]) == n, f"{len(run.created['Patient'])} of {n} Patients")
    others: list[dict[str, Any]] = []
    for i, patient_id in enumerate(run.created["Patient"]):
        subject = {"reference": f"Patient/{patient_id}"}
        others.append(
            {
                "resourceType": "Encounter",
                "meta": run.meta(),
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": subject,
            }
        )
        others += [
            {
                "resourceType": "Observation",
                "meta": run.meta(),
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": subject,
                "valueQuantity": {"value": 60 + (i + k) % 40, "unit": "/min"},
            }
            for k in range(3)
        ]
    run.create_all(others)
    counts = {t: len(ids) for t, ids in run.created.items()}
    check(counts == {"Patient": n, "Observation": 3 * n, "Encounter": n}, f"created {counts}")
    return f"{5 * n} resources in batches of up to {BATCH}"


def measured(iterate: Callable[[], list[str]]) -> tuple[list[str], float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        ids = iterate()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return ids, time.perf_counter() - started, peak


def async_ids(run: Run, query: dict[str, str], as_fhir: Any = None) -> list[str]:
    async def collect() -> list[str]:
        async with run.async_client() as client:
            return [
                r["id"] if isinstance(r, dict) else r.id
                async for r in client.search_resource_pages("Observation", query, as_fhir)
            ]

    return asyncio.run(collect())


@phase("paging")
def paging(run: Run) -> str:
    expected = sorted(run.created["Observation"])
    figures = []
    for label, count, sort, model, flavour in [
        ("1000", "1000", None, None, "sync"),
        ("20 cursor", "20", "_lastUpdated", None, "sync"),
        ("1000 cursor models", "1000", "_lastUpdated", Observation, "sync"),
        ("1000", "1000", None, None, "async"),
        ("100 cursor models", "100", "_lastUpdated", Observation, "async"),
    ]:
        query = run.tag_query(_count=count)
        if sort:
            query["_sort"] = sort

        def iterate(
            query: dict[str, str] = query, model: Any = model, flavour: str = flavour
        ) -> list[str]:
            if flavour == "async":
                return async_ids(run, query, model)
            pages = run.client.search_resource_pages("Observation", query, model)
            return [r["id"] if isinstance(r, dict) else r.id for r in pages]

        ids, seconds, peak = measured(iterate)
        check(
            sorted(ids) == expected,
            f"{flavour} _count={label}: {len(ids)} yielded, {len(set(ids))} distinct, "
            f"{len(expected)} expected",
        )
        figures.append(f"{flavour} {label}: {seconds:.1f} s, peak {peak / 1e6:.1f} MB")
    return f"{len(expected)} Observations each way; " + "; ".join(figures)


@phase("revinclude")
def revinclude(run: Run) -> str:
    query = run.tag_query(_count="50", _revinclude="Observation:subject")
    matches = 0
    included = 0
    page: dict[str, Any] | None = run.client.search_resources("Patient", query)
    while page is not None:
        for entry in page.get("entry", []):
            if entry.get("search", {}).get("mode") == "include":
                included += 1
            else:
                matches += 1
        nxt = next((x["url"] for x in page.get("link", []) if x["relation"] == "next"), None)
        page = run.client.get(nxt) if nxt else None
    yielded = list(
        run.client.search_resource_pages(
            "Patient", run.tag_query(_count="50", _revinclude="Observation:subject")
        )
    )
    n = len(run.created["Patient"])
    check(matches == n and len(yielded) == n, f"{matches} / {len(yielded)} Patients of {n}")
    check(included == 3 * n, f"{included} Observations included, {3 * n} expected")
    return f"{n} Patients and {included} included Observations, 50 Patients a page"


@phase("concurrency")
def concurrency(run: Run) -> str:
    return asyncio.run(concurrent(run))


async def concurrent(run: Run) -> str:
    tasks = run.args.tasks
    # Fewer connections than tasks (requests queue for the pool, as under any real load) and
    # fewer kept alive (connections are opened all along, as httpx's default pool does past 20
    # in use): a slot lost to a cancellation shows (PoolTimeout) instead of hiding among many.
    slots = max(4, tasks // 2)
    pool = httpx.AsyncClient(
        follow_redirects=False,
        limits=httpx.Limits(max_connections=slots, max_keepalive_connections=slots // 4),
        timeout=httpx.Timeout(60.0, pool=10.0),
    )
    counts = {"read": 0, "search": 0, "update": 0, "412": 0, "cancelled": 0}
    errors: list[str] = []
    patients = run.created["Patient"]
    shared = patients[:3]
    async with pool, run.async_client(http_client=pool) as client:
        stop = time.perf_counter() + run.args.seconds

        async def worker(seed: int) -> None:
            step = seed
            while time.perf_counter() < stop:
                step += 7
                kind = step % 10
                try:
                    if kind < 4:
                        await client.read_resource("Patient", patients[step % len(patients)])
                        counts["read"] += 1
                    elif kind < 6:
                        query = {"subject": f"Patient/{patients[step % len(patients)]}"}
                        await client.search_resources("Observation", query)
                        counts["search"] += 1
                    elif kind < 9:
                        patient = await client.read_resource("Patient", shared[step % 3])
                        patient["gender"] = ("male", "female", "other")[step % 3]
                        try:
                            await client.update_resource(patient)  # If-Match: its versionId
                            counts["update"] += 1
                        except PreconditionFailedError:
                            counts["412"] += 1
                    else:
                        search = asyncio.ensure_future(
                            client.search_resources("Observation", run.tag_query(_count="1000"))
                        )
                        await asyncio.sleep((step % 50) / 1000)
                        search.cancel()
                        try:
                            await search
                        except asyncio.CancelledError:
                            counts["cancelled"] += 1
                except MedplumError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(tasks)))
        seconds = time.perf_counter() - started
        check(not errors, f"{len(errors)} errors, first: {errors[:1]}")
        try:
            await asyncio.gather(
                *(
                    client.read_resource("Patient", patients[i % len(patients)])
                    for i in range(tasks)
                )
            )
        except MedplumError as exc:
            raise CheckFailed(
                f"{tasks} concurrent reads after the run failed ({type(exc).__name__}): "
                "connection slots were lost"
            ) from exc
    calls = counts["read"] + counts["search"] + counts["update"] + counts["412"]
    return f"{tasks} tasks, {seconds:.0f} s: {calls / seconds:.0f} calls/s, " + ", ".join(
        f"{k} {v}" for k, v in counts.items()
    )


@phase("export")
def export(run: Run) -> str:
    started = time.perf_counter()
    outcome = run.client.post(
        "fhir/R4/$export",
        headers={"Prefer": "respond-async"},
        params={"_type": "Patient,Observation,Encounter", "_since": run.started},
    )
    manifest = run.client.wait_for_async_job(outcome, poll_interval=1, timeout=600)
    waited = time.perf_counter() - started
    found: dict[str, set[str]] = {"Patient": set(), "Observation": set(), "Encounter": set()}
    size = 0
    for output in manifest.get("output", []):
        # Medplum's output url is <base>storage/<Binary id>/<version>?Expires=...&Signature=...
        binary_id = urlsplit(output["url"]).path.split("/storage/", 1)[1].split("/", 1)[0]
        data = run.client.download_binary(binary_id)
        size += len(data)
        for line in data.splitlines():
            if run.tag.encode() in line:
                resource = json.loads(line)
                found[resource["resourceType"]].add(resource["id"])
    for resource_type, ids in run.created.items():
        check(
            found[resource_type] == set(ids),
            f"{resource_type}: {len(found[resource_type])} in the export, {len(ids)} created",
        )
    return (
        f"{sum(len(v) for v in found.values())} run resources in "
        f"{len(manifest.get('output', []))} NDJSON files ({size / 1e6:.1f} MB); "
        f"export {waited:.1f} s, download {time.perf_counter() - started - waited:.1f} s"
    )


def run_all(run: Run, pattern: str) -> tuple[int, int]:
    """Run the phases (``load`` first: the others need its data), clean up; (passed, failed)."""

    def finish() -> str | None:
        try:
            failed_deletes = run.cleanup()
        finally:
            run.client.close()
        return f"{failed_deletes} deletes failed (tag {run.tag})" if failed_deletes else None

    return run_checks(
        PHASES, run, pattern=pattern, always="load", stop_if_fails=True, finish=finish
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--patients", type=int, default=100, help="Patients to create (x5 resources)"
    )
    parser.add_argument("--tasks", type=int, default=20, help="concurrent async tasks")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="length of the concurrency phase"
    )
    parser.add_argument(
        "-k", dest="pattern", default="", help="run phases whose name contains this"
    )
    args = parser.parse_args(argv)
    if args.patients < 3 or args.tasks < 1 or args.seconds <= 0:
        print("--patients must be >= 3, --tasks >= 1, --seconds > 0", file=sys.stderr)
        return 2
    settings = settings_from_env()
    if settings is None:
        return 2
    try:
        run = Run(settings[0], settings[1], settings[2], args)
    except (ValueError, TypeError, MedplumError) as exc:
        print(f"MEDPLUM_BASE_URL: {exc}", file=sys.stderr)
        return 2
    try:
        passed, failures = run_all(run, args.pattern)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"{passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""pymedplum quickstart: the typed client end to end against a Medplum server.

Run it with ``make demo`` (which starts a local Medplum-compatible server and passes its
address and credentials in the environment), or against a real Medplum project:

    MEDPLUM_BASE_URL=https://api.medplum.com/ \\
    MEDPLUM_CLIENT_ID=... MEDPLUM_CLIENT_SECRET=... python examples/quickstart.py

What it shows, one short section each: typed Patient and Observation models (a decimal that
keeps its text), conditional create, typed search parameters with paging, a transaction bundle
with ``urn:uuid`` references, a GraphQL query with variables, and an audit hook that prints
``RequestEvent.to_non_phi_dict()`` for every call. It prints ids, counts and one of its own
made-up weights, never names. The Patients it creates carry a per-run identifier, its
Observations reference them, and everything is deleted again in one batch at the end.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

from pymedplum import MedplumClient
from pymedplum.fhir import (
    Bundle,
    BundleEntry,
    BundleEntryRequest,
    CodeableConcept,
    Coding,
    HumanName,
    Identifier,
    Observation,
    Patient,
    Quantity,
    Reference,
)
from pymedplum.hooks import RequestEvent
from pymedplum.search_params import ObservationSearchParams

# A demo-only identifier system: every run tags its resources with a fresh value.
DEMO_SYSTEM = "https://example.org/pymedplum-quickstart/run"
LOINC_BODY_WEIGHT = Coding(system="http://loinc.org", code="29463-7", display="Body weight")
WEIGHTS_KG = ["72.50", "72.10", "71.80", "71.25", "70.90"]
PAGE_SIZE = 2


class AuditLog:
    """``on_request_complete`` hook: one line per SDK call, built from ``to_non_phi_dict()``.

    ``to_non_phi_dict()`` holds the shape of a call only (method, path template, status,
    timings, attempt count, exception type names): no ids, query values or bodies, so it can go
    to ordinary logs. A HIPAA audit sink would use ``to_phi_audit_dict()`` instead.
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: RequestEvent) -> None:
        record = event.to_non_phi_dict()
        self.events.append(record)
        millis = record["duration_seconds"] * 1000
        print(
            f"    audit | {record['method']:<6} {record['path_template']:<24} "
            f"action={record['action'] or '-':<20} {record['final_status_code']} "
            f"{record['outcome']:<7} attempts={record['attempt_count']} {millis:5.0f} ms"
        )


def section(number: int, title: str) -> None:
    print(f"\n{number}. {title}")


def settings() -> tuple[str, str, str]:
    """Base URL and client credentials from the environment (``make demo`` sets them)."""
    names = ("MEDPLUM_BASE_URL", "MEDPLUM_CLIENT_ID", "MEDPLUM_CLIENT_SECRET")
    values = [os.environ.get(name, "") for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        sys.exit(
            f"error: {', '.join(missing)} not set. Run `make demo` (starts a local server and "
            "sets them), or set all three for a real Medplum project."
        )
    return values[0], values[1], values[2]


def main() -> int:
    base_url, client_id, client_secret = settings()
    run_id = uuid.uuid4().hex[:12]
    audit = AuditLog()
    started = time.monotonic()
    print("pymedplum quickstart")
    print(f"  server : {base_url}")
    print(f"  run id : {run_id} (identifier system {DEMO_SYSTEM})")

    with MedplumClient(
        base_url,
        client_id=client_id,
        client_secret=client_secret,
        on_request_complete=audit,
    ) as client:
        # --- 1. typed models --------------------------------------------------------------
        section(1, "Create a typed Patient and Observations")
        patient = client.create_resource(
            Patient(
                identifier=[Identifier(system=DEMO_SYSTEM, value=run_id)],
                name=[HumanName(given=["Ada"], family="Lovelace")],
                birth_date="1970-01",  # partial dates are valid FHIR and stay as given
            ),
            as_fhir=Patient,
        )
        assert patient.id is not None
        patient_ref = f"Patient/{patient.id}"
        print(f"  created {patient_ref}")

        observations: list[Observation] = []
        for day, weight in enumerate(WEIGHTS_KG, start=1):
            observation = Observation(
                status="final",
                code=CodeableConcept(coding=[LOINC_BODY_WEIGHT]),
                subject=Reference(reference=patient_ref),
                effective_date_time=f"2025-01-{day:02d}",
                value_quantity=Quantity(
                    value=Decimal(weight),
                    unit="kg",
                    system="http://unitsofmeasure.org",
                    code="kg",
                ),
            )
            if day == 1:
                wire = observation.model_dump_json(exclude_none=True)
                value_text = wire[wire.index('"value":') :].split(",")[0]
                print(f"  the model's JSON keeps the decimal's text: {value_text}  (not 72.5)")
            observations.append(client.create_resource(observation, as_fhir=Observation))
        print(f"  created {len(observations)} Observations: {_ids(observations)}")

        # --- 2. conditional create ------------------------------------------------------
        section(2, "Conditional create (If-None-Exist), twice")
        criteria = f"identifier={DEMO_SYSTEM}|{run_id}-conditional"
        candidate = Patient(
            identifier=[Identifier(system=DEMO_SYSTEM, value=f"{run_id}-conditional")],
            name=[HumanName(given=["Grace"], family="Hopper")],
        )
        first = client.create_resource_if_none_exist(candidate, criteria, as_fhir=Patient)
        second = client.create_resource_if_none_exist(candidate, criteria, as_fhir=Patient)
        verdict = "same resource" if first.id == second.id else "DIFFERENT resources"
        print(f"  first call  -> Patient/{first.id}")
        print(f"  second call -> Patient/{second.id}  ({verdict})")

        # --- 3. typed search with paging ------------------------------------------------
        section(3, f"Typed search, {PAGE_SIZE} per page, every page followed")
        query: ObservationSearchParams = {
            "subject": patient_ref,
            "code": "http://loinc.org|29463-7",
            "_sort": "date",
            "_count": PAGE_SIZE,
        }
        pages_before = _searches(audit)
        found = list(client.search_resource_pages("Observation", query, as_fhir=Observation))
        pages = _searches(audit) - pages_before
        print(f"  {len(found)} Observations over {pages} pages (search_resource_pages)")
        first_value = found[0].value_quantity.value if found[0].value_quantity else None
        print(f"  oldest first (_sort=date): {found[0].effective_date_time}, {first_value} kg")

        # --- 4. transaction -------------------------------------------------------------
        section(4, "Transaction bundle with urn:uuid references")
        patient_urn = f"urn:uuid:{uuid.uuid4()}"
        transaction = Bundle(
            type="transaction",
            entry=[
                BundleEntry(
                    full_url=patient_urn,
                    resource=Patient(
                        identifier=[Identifier(system=DEMO_SYSTEM, value=f"{run_id}-tx")],
                        name=[HumanName(given=["Alan"], family="Turing")],
                    ),
                    request=BundleEntryRequest(method="POST", url="Patient"),
                ),
                *(
                    BundleEntry(
                        full_url=f"urn:uuid:{uuid.uuid4()}",
                        resource=Observation(
                            status="final",
                            code=CodeableConcept(coding=[LOINC_BODY_WEIGHT]),
                            subject=Reference(reference=patient_urn),
                            value_quantity=Quantity(value=Decimal(weight), unit="kg"),
                        ),
                        request=BundleEntryRequest(method="POST", url="Observation"),
                    )
                    for weight in ("64.0", "63.5")
                ),
            ],
        )
        result = client.execute_transaction(transaction)
        response = Bundle.model_validate(result)
        statuses = Counter(e.response.status for e in response.entry or [] if e.response)
        created_refs = [
            e.response.location.split("/_history")[0]
            for e in response.entry or []
            if e.response and e.response.location
        ]
        print(f"  {response.type}: {dict(statuses)}")
        tx_patient = created_refs[0]
        tx_observation = client.read_resource(
            "Observation", created_refs[1].split("/")[1], as_fhir=Observation
        )
        subject = tx_observation.subject.reference if tx_observation.subject else None
        print(f"  {_short(created_refs[1])} subject: {patient_urn[:17]}... -> {_short(subject)}")

        # --- 5. GraphQL -----------------------------------------------------------------
        section(5, "GraphQL query with variables")
        graphql = """
            query Weights($id: ID!) {
              Patient(id: $id) {
                id
                ObservationList(_reference: subject, _sort: "date") {
                  id
                  valueQuantity { value unit }
                }
              }
            }
        """
        answer = client.execute_graphql(graphql, variables={"id": patient.id})
        gql_patient = answer["data"]["Patient"]
        gql_observations = gql_patient["ObservationList"]
        print(f"  Patient/{gql_patient['id']} has {len(gql_observations)} Observations via GraphQL")

        # --- 6. clean up in one batch ---------------------------------------------------
        section(6, "Clean up: one batch of DELETEs")
        doomed = [
            patient_ref,
            *(f"Observation/{o.id}" for o in observations),
            f"Patient/{first.id}",
            *created_refs[1:],
            tx_patient,
        ]
        batch = client.execute_batch(
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{"request": {"method": "DELETE", "url": ref}} for ref in doomed],
            }
        )
        deleted = Counter(e.get("response", {}).get("status") for e in batch.get("entry", []))
        print(f"  batch-response for {len(doomed)} DELETEs: {dict(deleted)}")

    # --- summary ------------------------------------------------------------------------
    actions = Counter(record["action"] or "token" for record in audit.events)
    errors = sum(record["outcome"] != "success" for record in audit.events)
    print("\nSummary")
    elapsed = time.monotonic() - started
    print(f"  {len(audit.events)} SDK calls audited, {errors} errors, {elapsed:.1f} s")
    print("  by action: " + ", ".join(f"{name} {count}" for name, count in sorted(actions.items())))
    print("  one full to_non_phi_dict(), for the record:")
    example = dict(audit.events[1])
    example["attempts"] = f"[{len(example['attempts'])} attempt(s)]"
    for key, value in example.items():
        print(f"    {key:<20} {value}")
    return 0 if errors == 0 else 1


def _ids(resources: list[Observation]) -> str:
    return ", ".join(str(resource.id)[:8] + "..." for resource in resources)


def _short(reference: str | None) -> str:
    """``Observation/5f626caf...``: enough of an id to tell resources apart in the output."""
    kind, _, ident = (reference or "?/?").partition("/")
    return f"{kind}/{ident[:8]}..."


def _searches(audit: AuditLog) -> int:
    return sum(record["action"] == "search" for record in audit.events)


if __name__ == "__main__":
    sys.exit(main())

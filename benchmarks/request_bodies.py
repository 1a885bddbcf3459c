"""Memory and time of large request bodies: one command, prints one table.

    PYTHONPATH=src .venv/bin/python benchmarks/request_bodies.py
    PYTHONPATH=src .venv/bin/python benchmarks/request_bodies.py --entries 1000   # quicker

Each case sends one request through the sync client to an ``httpx.MockTransport`` that answers
a small Bundle, so what is measured is the SDK building and encoding the body. Columns:

- ``peak / body``: tracemalloc's peak during the call over the size of the JSON body sent
  (the caller's own data, built before the measurement, is not counted);
- ``ms``: wall time of the call, best of ``--repeats`` (tracemalloc off).
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from pymedplum import MedplumClient
from pymedplum.fhir import Bundle, Observation, Patient

ANSWER = b'{"resourceType":"Bundle","type":"batch-response","entry":[]}'


def patient(i: int) -> dict[str, Any]:
    """A Patient of ~600 bytes of JSON: names with non-ASCII text, an address, decimals."""
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": f"MRN{i:08d}"}],
        "active": True,
        "name": [{"use": "official", "family": "Müller-Lüdenscheidt", "given": ["Zoë", "Ané"]}],
        "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work"}],
        "gender": "female",
        "birthDate": "1974-12-25",
        "address": [{"line": ["534 Erewhon St"], "city": "PleasantVille", "postalCode": "3999"}],
        "extension": [
            {"url": "urn:example:weight", "valueDecimal": Decimal("72.50")},
            {"url": "urn:example:score", "valueDecimal": 0.125},
        ],
    }


def entry(resource: Any, i: int) -> dict[str, Any]:
    method = "PUT" if i % 2 else "POST"
    url = f"Patient/p{i}" if method == "PUT" else "Patient"
    return {"resource": resource, "request": {"method": method, "url": url}}


def dict_bundle(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [entry(patient(i), i) for i in range(n)],
    }


def model_entries_bundle(n: int) -> dict[str, Any]:
    """A dict Bundle whose resources are models (how a batch is often built)."""
    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [entry(Patient.model_validate(patient(i)), i) for i in range(n)],
    }


def model_bundle(n: int) -> Bundle:
    return Bundle.model_validate(dict_bundle(n))


def big_observation(n: int) -> Observation:
    """One resource with ``n`` components (a large create / update body)."""
    return Observation.model_validate(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "panel"},
            "component": [
                {
                    "code": {"coding": [{"system": "urn:x", "code": f"c{i}", "display": "Größe"}]},
                    "valueQuantity": {"value": Decimal("1.50"), "unit": "mg"},
                }
                for i in range(n)
            ],
        }
    )


def client(sent: list[int]) -> MedplumClient:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(len(request.read()))
        return httpx.Response(
            201, content=ANSWER, headers={"Content-Type": "application/fhir+json"}
        )

    return MedplumClient(
        "https://medplum.bench/",
        access_token="t",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def measure(call: Callable[[], object], sent: list[int], repeats: int) -> tuple[float, float]:
    call()  # warm-up: class caches, schema builds
    gc.collect()
    sent.clear()
    tracemalloc.start()
    try:
        call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    body = sent[-1]
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return peak / body, best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n = args.entries
    sent: list[int] = []
    medplum = client(sent)
    accounts = ["Organization/a", "Organization/b"]
    data, with_models, as_model = dict_bundle(n), model_entries_bundle(n), model_bundle(n)
    observation = big_observation(n)
    observation_dict = observation.model_dump(by_alias=True, exclude_none=True)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("execute_batch(dict)", lambda: medplum.execute_batch(data)),
        ("execute_batch(dict, accounts=)", lambda: medplum.execute_batch(data, accounts=accounts)),
        ("execute_batch(dict of models)", lambda: medplum.execute_batch(with_models)),
        (
            "execute_batch(dict of models, accounts=)",
            lambda: medplum.execute_batch(with_models, accounts=accounts),
        ),
        ("execute_batch(Bundle model)", lambda: medplum.execute_batch(as_model)),
        (
            "execute_batch(Bundle model, accounts=)",
            lambda: medplum.execute_batch(as_model, accounts=accounts),
        ),
        ("execute_transaction(dict)", lambda: medplum.execute_transaction(data)),
        ("create_resource(dict)", lambda: medplum.create_resource(observation_dict)),
        ("create_resource(model)", lambda: medplum.create_resource(observation)),
        (
            "create_resource(model, accounts=)",
            lambda: medplum.create_resource(observation, accounts=accounts),
        ),
    ]
    print(
        f"request bodies: Python {platform.python_version()}, {n} entries / components, "
        f"peak = tracemalloc peak during the call, ms = best of {args.repeats}"
    )
    print(f"{'case':<44} {'body':>9} {'peak / body':>11} {'ms':>9}")
    print(f"{'-' * 44} {'-' * 9} {'-' * 11} {'-' * 9}")
    for name, call in cases:
        ratio, ms = measure(call, sent, args.repeats)
        print(f"{name:<44} {sent[-1] / 1e6:>7.2f}MB {ratio:>10.2f}x {ms:>9.1f}")


if __name__ == "__main__":
    main()

"""Search a Medplum server with every key of the search-parameter TypedDicts, one search each.

A check to run when the pinned definitions (specs/) or the Medplum version the SDK targets
change: a key the TypedDicts offer but the server refuses is a trap handed to users by
autocomplete (docs/typed-search.md). It needs a server, so it is not part of the test suite.

    python scripts/probe_search_params.py --env /path/credentials.env   # a real Medplum
    python scripts/probe_search_params.py --test-server                 # tests/server
    ... [--types Patient Observation] [--out results.json] [--per-minute 2000]

The env file has ``MEDPLUM_BASE_URL``, ``MEDPLUM_CLIENT_ID`` and ``MEDPLUM_CLIENT_SECRET`` lines.
Each key is searched with a value valid for its parameter type and modifier (a second value is
tried when the server refuses the first one's format, e.g. a boolean token); the output is one
line per refused key with its class and the server's text, then the counts per class:

- ``unknown``: the server does not know the parameter ("Unknown search parameter");
- ``modifier``: the modifier is not implemented for that parameter ("Invalid modifier", ...);
- ``value``: every value tried was refused as a value (fix the candidates here);
- ``other``: anything else (server errors, an unsearchable resource type, ...).

Medplum counts 20 quota points a search (50,000 a minute): ``--per-minute`` keeps under it, and
a 429 waits.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "scripts")]

import pymedplum.search_params as sp  # noqa: E402
from codegen.search_params import RESULT_PARAMETERS, parameters_by_type  # noqa: E402

VALUES: dict[str, list[str]] = {
    "token": ["http://x|a", "a", "true", "00000000-0000-0000-0000-000000000000"],
    "reference": ["Patient/x", "http://x", "x"],
    "date": ["2020-01-01", "ge2020-01-01"],
    "number": ["1"],
    "quantity": ["1", "1|http://unitsofmeasure.org|mg"],
    "uri": ["http://x"],
    "string": ["a"],
    "composite": ["http://x|a$1", "a$1"],
    "special": ["1|1|1|km", "a"],
}
MODIFIER_VALUES: dict[str, list[str]] = {
    "missing": ["true"],
    "present": ["true"],
    "identifier": ["http://x|a"],
    "contains": ["a"],
    "exact": ["a"],
    "text": ["a", "true"],
    "in": ["http://hl7.org/fhir/ValueSet/administrative-gender"],
    "not-in": ["http://hl7.org/fhir/ValueSet/administrative-gender"],
    "above": ["http://x"],
    "below": ["http://x"],
}
VALUE_ERRORS = ("Boolean search value", "Invalid format for", "Invalid cursor", "Invalid include")
MODIFIER_ERRORS = (
    "Invalid modifier",
    "Unsupported string search operator",
    "Unknown FHIR operator",
)


def candidates(resource_type: str, key: str, params: dict[str, str]) -> list[str]:
    """The values to try for one key, best first."""
    if key in RESULT_PARAMETERS and key not in params:
        reference = next((c for c, t in sorted(params.items()) if t == "reference"), "x")
        return {
            "_count": ["1"],
            "_cursor": ["x"],
            "_elements": ["id"],
            "_filter": ["_id eq 00000000-0000-0000-0000-000000000000"],
            "_include": [f"{resource_type}:{reference}"],
            "_include:iterate": [f"{resource_type}:{reference}"],
            "_offset": ["0"],
            "_revinclude": ["Provenance:target"],
            "_revinclude:iterate": ["Provenance:target"],
            "_sort": ["_lastUpdated"],
            "_summary": ["true"],
            "_total": ["accurate"],
            "_compartment": ["Patient/00000000-0000-0000-0000-000000000000"],
        }.get(key, ["x"])
    code, _, modifier = key.partition(":")
    kind = params.get(code, "string")
    if modifier in MODIFIER_VALUES:
        return MODIFIER_VALUES[modifier]
    return VALUES[kind]


def classify(key: str, status: int, text: str) -> str:
    """The class of one refusal (see the module docstring)."""
    if "Unknown search parameter" in text:
        return "unknown"
    if any(m in text for m in MODIFIER_ERRORS) or (":" in key and "Invalid date value" in text):
        return "modifier"
    if status == 400 and any(m in text for m in VALUE_ERRORS):
        return "value"
    return "other"


# Transport errors in a row before a search gives up (15 s apart: a restart takes less).
TRANSPORT_RETRIES = 20


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines (an ``export`` prefix, quotes and ``#`` comment lines allowed)."""
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip().removeprefix("export ").strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        env[name.strip()] = value.strip().strip("'\"")
    missing = {"MEDPLUM_BASE_URL", "MEDPLUM_CLIENT_ID", "MEDPLUM_CLIENT_SECRET"} - env.keys()
    if missing:
        raise SystemExit(f"{path}: no {', '.join(sorted(missing))} line")
    return env


class Limiter:
    """At most ``per_minute`` requests a minute, across threads."""

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute
        self.lock = threading.Lock()
        self.next = time.monotonic()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.interval
        time.sleep(max(0.0, start - now))


def outcome_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        return "; ".join(
            str(i.get("details", {}).get("text") or i.get("diagnostics", ""))
            for i in body.get("issue", [])
        )
    except ValueError:
        return response.text[:300]


def probe(
    base_url: str, client_id: str, secret: str, types: list[str], per_minute: float
) -> list[dict[str, Any]]:
    """One result per key: the type, the key and every attempt (value, status, text)."""
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    answer = httpx.post(
        base_url + "oauth2/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=60,
    )
    if answer.status_code != 200:  # the body is the server's error; it never holds the secret
        raise SystemExit(f"token request to {base_url}oauth2/token: HTTP {answer.status_code}")
    token = answer.json()["access_token"]
    client = httpx.Client(
        base_url=base_url + "fhir/R4/", headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    params = parameters_by_type(types)
    limiter = Limiter(per_minute)
    jobs = [(t, key) for t in types for key in sp.search_params_for(t).__annotations__]

    def run(job: tuple[str, str]) -> dict[str, Any]:
        resource_type, key = job
        attempts: list[dict[str, Any]] = []
        for value in candidates(resource_type, key, params[resource_type]):
            # _count=1: with _count=0 Medplum runs no query, so accepts any filter.
            query = {key: value} if key == "_count" else {key: value, "_count": "1"}
            failures = 0
            while True:  # a 429 (quota) or a server restarting: wait and send again
                limiter.wait()
                try:
                    response = client.get(resource_type, params=query)
                except httpx.TransportError as exc:
                    failures += 1
                    if failures == TRANSPORT_RETRIES:  # the server is gone, not restarting
                        raise SystemExit(f"{resource_type}?{key}: {type(exc).__name__}") from exc
                    time.sleep(15)
                    continue
                if response.status_code != 429:
                    break
                time.sleep(10)
            text = outcome_text(response) if response.status_code >= 400 else ""
            attempts.append({"value": value, "status": response.status_code, "text": text})
            if response.status_code < 400 or classify(key, response.status_code, text) != "value":
                break
        return {"type": resource_type, "key": key, "attempts": attempts}

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(run, jobs))


def report(results: list[dict[str, Any]]) -> Counter[str]:
    """Print the refused keys and return the counts per class."""
    counts: Counter[str] = Counter()
    for result in results:
        last = result["attempts"][-1]
        if last["status"] < 400:
            counts["accepted"] += 1
            continue
        kind = classify(result["key"], last["status"], last["text"])
        counts[kind] += 1
        print(
            f"{kind}\t{result['type']}?{result['key']}={last['value']}\t{last['status']}\t{last['text']}"
        )
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--env", type=Path, help="a MEDPLUM_* credentials file of a real server")
    where.add_argument("--test-server", action="store_true", help="start tests/server")
    parser.add_argument("--types", nargs="*", help="resource types (default: all)")
    parser.add_argument("--out", type=Path, help="write every attempt as JSON")
    parser.add_argument("--per-minute", type=float, default=2000.0)
    args = parser.parse_args(argv)
    types = sorted(args.types or sp.RESOURCE_TYPES)
    server = None
    if args.env:
        env = read_env_file(args.env)
        base_url, client_id = env["MEDPLUM_BASE_URL"], env["MEDPLUM_CLIENT_ID"]
        secret = env["MEDPLUM_CLIENT_SECRET"]
    else:
        import medplum_server

        server = medplum_server.start(warm_graphql=False)
        base_url, client_id, secret = server.base_url, server.client_id, server.client_secret
    try:
        results = probe(base_url, client_id, secret, types, args.per_minute)
    finally:
        if server is not None:
            server.stop()
    if args.out:
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    counts = report(results)
    print(f"{len(results)} keys: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
    return 0 if counts["accepted"] == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

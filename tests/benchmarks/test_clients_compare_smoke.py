"""benchmarks/clients_compare.py runs end to end in its quick mode and prints every row.

The server it starts listens on 127.0.0.1 only (no network). fhirpy, fhir.resources and
fhirclient come with the ``bench`` extra, which ``make test`` installs. Only the table's shape is
checked, never a speed: figures are measured by ``make bench``, not asserted in tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

OPERATIONS = ("read", "read typed", "search 50", "search 50 typed", "create", "create typed")


def test_clients_compare_quick_run_prints_every_row() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/clients_compare.py", "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    header = done.stdout.splitlines()[0]
    assert "fhirpy 2.3.1" in header
    assert "fhirclient 4.4.0" in header
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in done.stdout.splitlines()
        if line.startswith("| ") and not line.startswith(("| operation", "| ---"))
    ]
    seen: dict[tuple[str, str], list[str]] = {}
    for operation, flavour, variant, _returns, micros, ratio in rows:
        assert re.fullmatch(r"\d+", micros), micros
        assert re.fullmatch(r"\d+\.\d\dx", ratio), ratio
        seen.setdefault((operation, flavour), []).append(variant)
    # fhirclient (sync only): one row per operation, typed rows on its own models.
    for operation in OPERATIONS:
        fc_rows = [
            r for r in rows if r[:2] == [operation, "sync"] and r[2].startswith("fhirclient")
        ]
        assert len(fc_rows) == 1, (operation, fc_rows)
        typed = operation.endswith("typed")
        assert fc_rows[0][3].startswith("fhirclient model") == typed, fc_rows[0]
        assert fc_rows[0][3].startswith("dict") == (not typed), fc_rows[0]
    assert not [r for r in rows if r[1] == "async" and "fhirclient" in r[2]]
    assert not [r for r in rows if r[0] == "50 in flight" and "fhirclient" in r[2]]
    for flavour in ("sync", "async"):
        for operation in (*OPERATIONS, "50 in flight"):
            variants = seen.pop((operation, flavour))
            # The first row of each operation is pymedplum's: the ratios are to it.
            assert variants[0].startswith("pymedplum"), variants
            assert any(v.startswith("fhirpy") and "shared session" in v for v in variants)
    assert seen == {}
    as_shipped = [r for r in rows if "as shipped" in r[2]]
    assert {(r[0], r[1]) for r in as_shipped} == {
        ("read", "sync"),
        ("read", "async"),
        ("50 in flight", "sync"),
        ("50 in flight", "async"),
    }
    for operation in OPERATIONS:
        on_aiohttp = [r for r in rows if r[:2] == [operation, "async"] and "httpx-aiohttp" in r[2]]
        assert len(on_aiohttp) == 1, operation

"""benchmarks/models.py runs end to end in its quick mode and prints every row of its tables.

Only the shape of the report is checked (and that Bundle entries come out typed and lossless),
never a speed: figures are measured by `make bench`, not asserted in tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_models_benchmark_quick_run_prints_the_expected_rows() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/models.py", "--quick", "--without-fhir-resources"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()

    def row(*cells: str) -> str:
        """The one report line starting with these cells (separated by table padding)."""
        pattern = re.compile(r"\s{2,}".join(map(re.escape, cells)) + r"(\s{2,}|$)")
        found = [line for line in lines if pattern.match(line)]
        assert len(found) == 1, (cells, done.stdout)
        return found[0]

    # Parse / serialize: the big Bundle with every entry typed per resource, and a Patient.
    bundle = row("Bundle all (100)", "pymedplum")
    assert re.search(r"\b100/100 \((Patient|Observation)\)\s+yes$", bundle)
    assert row("Patient", "pymedplum").endswith("yes")
    # The floor (pydantic twins without FHIR's rules) on the same data: entries typed the same
    # way, decimals read as floats (the quick Bundle holds Observations with decimals).
    floor = row("Bundle all (100)", "plain pydantic")
    assert re.search(r"\b100/100 \((Patient|Observation)\)\s+no$", floor)
    row("Patient", "plain pydantic")
    # Memory, in fresh processes.
    assert re.search(r"\s\S+ [kM]B\s+\d+\.\d+x\s+-\s+-$", row("Bundle all", "pymedplum"))
    row("Patient x266", "pymedplum")  # 1 MB worth of copies in quick mode
    row("Patient x266", "plain pydantic")
    # Cold imports.
    row("pymedplum", "from pymedplum.fhir import Patient")
    row("pymedplum", "import pymedplum")
    row("pymedplum", "... then Patient.model_validate_json (first use)")
    first_bundle = re.compile(
        r"pymedplum\s{2,}\.\.\. Bundle\.model_validate_json, one entry of each of \d+ types"
        r" \(first use\)\s{2,}\d+(\.\d+)? [mµ]?s$"
    )
    assert len([line for line in lines if first_bundle.match(line)]) == 1, done.stdout
    # Targets beside the measured figures and the reference ones.
    parse = row("parse (x orjson.loads)")
    assert "<= 3x" in parse
    # pymedplum's range, its big Bundle, the count that meet, then the floor's range.
    assert re.search(r"\s\d+/2\s{2,}\d+\.\d+x-\d+\.\d+x\s", parse), parse
    assert "<= 5x" in row("serialize (x dumps)")
    assert "<= 1.5x" in row("memory, RSS (x dicts)")
    assert "<= 150 ms" in row("cold import")
    assert "fhir.resources: not run (--without-fhir-resources)." in done.stdout

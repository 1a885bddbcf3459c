"""benchmarks/models.py runs end to end in its quick mode and prints every row of its tables.

Only the shape of the report is checked (and that Bundle entries come out typed, and which
library's round trip is lossless), never a speed: figures are measured by `make bench`, not
asserted in tests.
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
    # fhirclient (its own venv): entries typed by its element factory; not lossless, as its
    # decimals are floats and it drops primitives' extensions (the Patient's `_birthDate`).
    fhirclient = row("Bundle all (100)", "fhirclient")
    assert re.search(r"\b100/100 \((Patient|Observation)\)\s+no$", fhirclient)
    assert row("Patient", "fhirclient").endswith("no")
    assert re.search(
        r"fhirclient's R4 models parse \d+ of the \d+ documents pymedplum was given; "
        r"they reject \d+.*, so they are measured on Bundle all\.",
        done.stdout,
    ), done.stdout
    # Memory, in fresh processes.
    assert re.search(r"\s\S+ [kM]B\s+\d+\.\d+x\s+-\s+-$", row("Bundle all", "pymedplum"))
    row("Patient x266", "pymedplum")  # 1 MB worth of copies in quick mode
    row("Patient x266", "plain pydantic")
    assert re.search(r"\s\S+ [kM]B\s+\d+\.\d+x\s+-\s+-$", row("Bundle all", "fhirclient"))
    row("Patient x266", "fhirclient")
    # Cold imports.
    row("pymedplum", "from pymedplum.fhir import Patient")
    row("pymedplum", "import pymedplum")
    row("pymedplum", "... then Patient.model_validate_json (first use)")
    for lib, call in (
        ("pymedplum", "Bundle.model_validate_json"),
        ("fhirclient", "Bundle(json.loads(text))"),
    ):
        first_bundle = re.compile(
            re.escape(lib)
            + r"\s{2,}\.\.\. "
            + re.escape(call)
            + r", one entry of each of \d+ types \(first use\)\s{2,}\d+(\.\d+)? [mµ]?s$"
        )
        assert len([line for line in lines if first_bundle.match(line)]) == 1, done.stdout
    row("fhirclient", "from fhirclient.models.patient import Patient")
    row("fhirclient", "... then Patient(json.loads(text)) (first use)")
    # Targets beside the measured figures and the reference ones.
    parse = row("parse (x orjson.loads)")
    assert "<= 3x" in parse
    # pymedplum's range, its big Bundle, the count that meet, then the floor's range.
    assert re.search(r"\s\d+/2\s{2,}\d+\.\d+x-\d+\.\d+x\s", parse), parse
    # Last, fhir.resources (not run), its reference figure, and fhirclient's range.
    assert re.search(r"\s{2,}n/a\s{2,}21\.9x\s{2,}\d+\.\d+x-\d+\.\d+x$", parse), parse
    serialize = row("serialize (x dumps)")
    assert "<= 5x" in serialize
    assert re.search(r"\s{2,}n/a\s{2,}289x\s{2,}\d+\.\d+x-\d+\.\d+x$", serialize), serialize
    assert "<= 1.5x" in row("memory, RSS (x dicts)")
    cold = row("cold import")
    assert "<= 150 ms" in cold
    assert re.search(r"\s{2,}n/a\s{2,}379 ms\s{2,}\d+(\.\d+)? ms$", cold), cold
    assert "fhir.resources: not run (--without-fhir-resources)." in done.stdout

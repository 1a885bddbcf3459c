"""examples/quickstart.py, examples/concurrent_updates.py and scripts/demo.py, run as a user
runs them, against the session's local Medplum server, or with ``pytest --external-medplum``
the Medplum the ``MEDPLUM_*`` variables name (the ``example_server`` fixture of
tests/conftest.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import medplum_server as harness  # scripts/, put on sys.path by tests/conftest.py
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / script)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def server_env(server: harness.ServerSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDPLUM_")}
    env.update(
        MEDPLUM_BASE_URL=server.base_url,
        MEDPLUM_CLIENT_ID=server.client_id,
        MEDPLUM_CLIENT_SECRET=server.client_secret,
    )
    return env


@pytest.fixture(scope="module")
def quickstart(example_server: harness.ServerSettings) -> subprocess.CompletedProcess[str]:
    """One run of the quickstart against the session server, shared by the checks below."""
    return run("examples/quickstart.py", server_env(example_server))


def test_quickstart_runs_end_to_end(
    example_server: harness.ServerSettings, quickstart: subprocess.CompletedProcess[str]
) -> None:
    result = quickstart
    out = result.stdout
    assert result.returncode == 0, f"stdout:\n{out}\nstderr:\n{result.stderr}"
    assert result.stderr == ""
    # Every section ran, in order.
    headings = re.findall(r"^(\d)\. ", out, re.MULTILINE)
    assert headings == ["1", "2", "3", "4", "5", "6"]
    assert f"server : {example_server.base_url}" in out
    assert "the model's JSON keeps the decimal's text: \"value\":72.50" in out
    assert re.search(r"created 5 Observations: ", out)
    # Conditional create twice: the same id both times.
    first = re.search(r"first call  -> Patient/(\S+)", out)
    second = re.search(r"second call -> Patient/(\S+)  \(same resource\)", out)
    assert first and second and first.group(1) == second.group(1)
    assert "5 Observations over 3 pages (search_resource_pages)" in out
    assert "oldest first (_sort=date): 2025-01-01, 72.5 kg" in out
    assert "transaction-response: {'201': 3}" in out
    assert re.search(r"Observation/\S+ subject: urn:uuid:\S+ -> Patient/[0-9a-f]{8}\.\.\.", out)
    assert re.search(r"Patient/\S+ has 5 Observations via GraphQL", out)
    assert "batch-response for 10 DELETEs: {'200': 10}" in out
    # The audit hook printed one line per SDK call, and the summary counted them.
    audit_lines = [line for line in out.splitlines() if line.lstrip().startswith("audit |")]
    summary = re.search(r"(\d+) SDK calls audited, 0 errors", out)
    assert summary and int(summary.group(1)) == len(audit_lines) == 16
    assert (
        "by action: batch_or_transaction 2, create 8, operation 1, read 1, search 3, token 1" in out
    )
    assert re.search(r"^    final_exception_type +None$", out, re.MULTILINE)


def test_quickstart_prints_no_secrets_or_patient_data(
    example_server: harness.ServerSettings, quickstart: subprocess.CompletedProcess[str]
) -> None:
    result = quickstart
    assert result.returncode == 0, result.stdout + result.stderr
    assert example_server.client_secret not in result.stdout
    assert "eyJ" not in result.stdout  # no JWT access token
    for name in ("Ada", "Lovelace", "Grace", "Hopper", "Alan", "Turing"):  # the demo's patients
        assert name not in result.stdout


def test_quickstart_without_settings_says_what_to_do() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDPLUM_")}
    result = run("examples/quickstart.py", env)
    assert result.returncode == 1
    assert "MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET not set" in result.stderr
    assert "make demo" in result.stderr


def test_demo_uses_a_configured_server_instead_of_starting_one(
    example_server: harness.ServerSettings,
) -> None:
    result = run("scripts/demo.py", server_env(example_server))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"== using the Medplum at {example_server.base_url}")
    assert "starting the local" not in result.stdout
    assert "0 errors" in result.stdout


def test_demo_refuses_partial_settings() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDPLUM_")}
    env["MEDPLUM_BASE_URL"] = "https://api.medplum.com/"
    result = run("scripts/demo.py", env)
    assert result.returncode == 2
    assert "MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET not" in result.stdout


def test_concurrent_updates_keeps_every_writers_note(
    example_server: harness.ServerSettings,
) -> None:
    result = run("examples/concurrent_updates.py", server_env(example_server))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert "notes kept: 20 of 20" in result.stdout
    counts = re.search(r"20 writers, (\d+) update attempts, (\d+) got 412", result.stdout)
    assert counts, result.stdout
    # Every attempt but the 20 that succeeded was a 412 that the hook saw.
    assert int(counts.group(1)) - int(counts.group(2)) == 20


def test_concurrent_updates_without_settings_says_what_to_do() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDPLUM_")}
    result = run("examples/concurrent_updates.py", env)
    assert result.returncode == 1
    assert "set MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET" in result.stderr

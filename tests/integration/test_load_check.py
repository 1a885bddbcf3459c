"""scripts/load_check.py, the load run users point at their own Medplum, passes every phase
against the local test server in a small run (so the script does not rot), and reports its
settings' mistakes with exit status 2.

Its figures were taken on a real Medplum 5.0.10 (docs/performance.md); there its concurrency
phase failed before the client gave back the connection slots cancelled requests left in
httpx's pool (PoolTimeout within 20 s, 20 tasks).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import medplum_server as harness  # scripts/medplum_server.py, put on sys.path by conftest.py

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "load_check.py"
TAG_SYSTEM = "https://pymedplum.test/load-check"


def run_load_check(
    server: harness.MedplumServer | None, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDPLUM_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    if server is not None:
        env.update(
            {
                "MEDPLUM_BASE_URL": server.base_url,
                "MEDPLUM_CLIENT_ID": server.client_id,
                "MEDPLUM_CLIENT_SECRET": server.client_secret,
            }
        )
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_every_phase_passes_and_cleans_up(medplum_server: harness.MedplumServer) -> None:
    result = run_load_check(medplum_server, "--patients", "8", "--tasks", "6", "--seconds", "2")
    lines = result.stdout.splitlines()
    names = [line.split()[1] for line in lines if line.startswith(("PASS", "FAIL"))]
    assert names == ["load", "paging", "revinclude", "concurrency", "export", "cleanup"], (
        result.stdout + result.stderr
    )
    assert all(line.startswith("PASS") for line in lines[:-1]), result.stdout + result.stderr
    assert lines[-1] == "6 passed, 0 failed"
    assert result.returncode == 0
    assert "PASS load" in lines[0] and "40 resources" in lines[0]
    assert "24 Observations each way" in lines[1]
    # Nothing of the run is left: no resource of a type it created carries its tag system.
    headers = {"Authorization": f"Bearer {medplum_server.access_token()}"}
    for resource_type in ("Patient", "Observation", "Encounter"):
        found = httpx.get(
            f"{medplum_server.base_url}fhir/R4/{resource_type}",
            params={"_count": 1000},
            headers=headers,
            timeout=30,
        ).json()
        tags = [
            tag.get("system")
            for entry in found.get("entry", [])
            for tag in entry["resource"].get("meta", {}).get("tag", [])
        ]
        assert TAG_SYSTEM not in tags, resource_type


def test_settings_mistakes_exit_2() -> None:
    missing = run_load_check(None)
    assert missing.returncode == 2
    assert "MEDPLUM_BASE_URL" in missing.stderr
    bad = run_load_check(None, "--patients", "1")
    assert bad.returncode == 2
    assert "--patients must be >= 3" in bad.stderr

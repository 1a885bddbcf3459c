"""``pytest --external-medplum``: tests/examples against the Medplum the ``MEDPLUM_*`` variables
name instead of the local server (tests/conftest.py ``example_server``), checked by running
pytest on the README's block with the variables set to the session's server."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import medplum_server as harness  # scripts/, put on sys.path by tests/conftest.py
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run_readme_block(settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDPLUM_")}
    env.update(settings)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/examples/test_doc_snippets.py",
            "-k",
            "runs_against_the_server and README",
            "--external-medplum",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def as_env(settings: harness.ServerSettings) -> dict[str, str]:
    return {
        "MEDPLUM_BASE_URL": settings.base_url,
        "MEDPLUM_CLIENT_ID": settings.client_id,
        "MEDPLUM_CLIENT_SECRET": settings.client_secret,
    }


def test_the_blocks_run_against_the_named_server(example_server: harness.ServerSettings) -> None:
    result = run_readme_block(as_env(example_server))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    # With a wrong secret the same run fails: it used the named server, not a local one.
    wrong = dataclasses.replace(example_server, client_secret="not-the-secret")
    result = run_readme_block(as_env(wrong))
    assert result.returncode != 0
    assert "AuthenticationError" in result.stdout


def test_a_missing_variable_fails_and_names_it() -> None:
    result = run_readme_block(
        {"MEDPLUM_BASE_URL": "http://127.0.0.1:9/", "MEDPLUM_CLIENT_ID": "client"}
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "--external-medplum: MEDPLUM_CLIENT_SECRET not set" in result.stdout
    assert "skipped" not in result.stdout

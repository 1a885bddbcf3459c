"""scripts/live_check.py's runner, without a server: what a user sees on a wrong
MEDPLUM_BASE_URL, a non-admin client or Ctrl-C, and that what a scenario created is deleted
even when the scenario's checks fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import live_check  # scripts/, put on sys.path by tests/conftest.py
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "live_check.py"


class FakeClient:
    """Stands in for MedplumClient: records deletes, answers what a test sets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.deleted: list[tuple[str, str]] = []
        self.answers: dict[str, Any] = {}
        self.counter = 0

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.answers[path]

    def create_resource(self, resource: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        self.counter += 1
        return {**resource, "id": f"id{self.counter}", "meta": {"versionId": "1"}}

    def execute_batch(self, bundle: dict[str, Any]) -> dict[str, Any]:
        return self.answers["batch"]  # type: ignore[no-any-return]

    def execute_transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        return self.answers["transaction"]  # type: ignore[no-any-return]

    def delete_resource(self, resource_type: str, resource_id: str) -> None:
        self.deleted.append((resource_type, resource_id))

    def delete(self, path: str) -> None:
        self.deleted.append(("path", path))

    def close(self) -> None:
        pass


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    client = FakeClient()
    monkeypatch.setattr(live_check, "MedplumClient", lambda *a, **k: client)
    return client


def test_a_malformed_base_url_names_the_setting_and_exits_2() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDPLUM_")}
    env.update(
        {
            "MEDPLUM_BASE_URL": "ftp://medplum.example",
            "MEDPLUM_CLIENT_ID": "id",
            "MEDPLUM_CLIENT_SECRET": "s3cret-value",
        }
    )
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "MEDPLUM_BASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret-value" not in result.stdout + result.stderr


def test_ctrl_c_still_cleans_up_and_reports_it(
    fake: FakeClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def creates_then_interrupted(run: live_check.Run) -> None:
        run.create({"resourceType": "Patient"})
        raise KeyboardInterrupt

    monkeypatch.setattr(live_check, "SCENARIOS", [("interrupted", creates_then_interrupted)])
    with pytest.raises(KeyboardInterrupt):
        live_check.run_all("https://medplum.example/", "id", "secret")
    assert fake.deleted == [("Patient", "id1")]
    out = capsys.readouterr().out
    assert "interrupted" in out
    assert "PASS cleanup" in out


def test_main_answers_130_on_ctrl_c(
    fake: FakeClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(run: live_check.Run) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(live_check, "SCENARIOS", [("interrupted", interrupted)])
    for name, value in (
        ("MEDPLUM_BASE_URL", "https://medplum.example/"),
        ("MEDPLUM_CLIENT_ID", "id"),
        ("MEDPLUM_CLIENT_SECRET", "secret"),
    ):
        monkeypatch.setenv(name, value)
    assert live_check.main([]) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_a_non_admin_client_still_records_its_project(fake: FakeClient) -> None:
    # The admin check fails the scenario, but the project id is known: the scenarios comparing
    # meta.project fail for their own reason, not because the project id was left empty.
    fake.answers["auth/me"] = {
        "project": {"resourceType": "Project", "id": "p1"},
        "membership": {"resourceType": "ProjectMembership", "id": "m1", "admin": False},
    }
    run = live_check.Run("https://medplum.example/", "id", "secret")
    with pytest.raises(live_check.CheckFailed, match="not a project admin"):
        live_check.auth_client_credentials(run)
    assert (run.project_id, run.membership_id) == ("p1", "m1")


def test_a_batch_whose_checks_fail_still_has_its_create_deleted(fake: FakeClient) -> None:
    fake.answers["batch"] = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [
            {"response": {"status": "201"}, "resource": {"resourceType": "Patient", "id": "b1"}},
            {"response": {"status": "200"}},  # expected 404: the scenario's check fails
            {"response": {"status": "200"}},
        ],
    }
    run = live_check.Run("https://medplum.example/", "id", "secret")
    with pytest.raises(live_check.CheckFailed):
        live_check.bundle_batch(run)
    assert ("Patient", "b1") in run.created


def test_a_transaction_whose_checks_fail_still_has_its_creates_deleted(fake: FakeClient) -> None:
    fake.answers["transaction"] = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {"response": {"status": "201"}, "resource": {"resourceType": "Patient", "id": "t1"}},
            {
                "response": {"status": "201"},
                "resource": {
                    "resourceType": "Observation",
                    "id": "o1",
                    "subject": {"reference": "urn:uuid:not-resolved"},
                },
            },
        ],
    }
    run = live_check.Run("https://medplum.example/", "id", "secret")
    with pytest.raises(live_check.CheckFailed):
        live_check.bundle_transaction(run)
    assert {("Patient", "t1"), ("Observation", "o1")} <= set(run.created)


def test_a_batch_like_transaction_whose_checks_fail_still_has_its_create_deleted(
    fake: FakeClient,
) -> None:
    fake.answers["transaction"] = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {"response": {"status": "201"}, "resource": {"resourceType": "Patient", "id": "t2"}},
            {"response": {"status": "200"}},  # expected 412: the check fails
        ],
    }
    run = live_check.Run("https://medplum.example/", "id", "secret")
    with pytest.raises(live_check.CheckFailed):
        live_check.bundle_transaction_failure(run)
    assert ("Patient", "t2") in run.created


def test_cursor_pages_tracks_every_created_patient_even_when_one_entry_failed(
    fake: FakeClient,
) -> None:
    ok = {"response": {"status": "201"}}
    fake.answers["batch"] = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [
            {**ok, "resource": {"resourceType": "Patient", "id": "c1"}},
            {"response": {"status": "500"}},  # no resource
            {**ok, "resource": {"resourceType": "Patient", "id": "c3"}},
        ],
    }
    run = live_check.Run("https://medplum.example/", "id", "secret")
    with pytest.raises(live_check.CheckFailed, match="created 2 of 45"):
        live_check.search_cursor_pages(run)
    assert {("Patient", "c1"), ("Patient", "c3")} <= set(run.created)

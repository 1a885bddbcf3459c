"""Pure request-building steps of the endpoint methods (no I/O, shared by both clients).

Each function turns a method's arguments into one piece of a request: query parameters,
headers, a stamped body, a FHIR Parameters resource. The async methods and their unasync'd
sync twins call these, so the rules live in one place and are tested without a server.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence, Set
from datetime import date, datetime
from typing import Any, ParamSpec
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
from pydantic import BaseModel

from pymedplum._fhir_rules import (
    ID_PATTERN,
    ID_RULE,
    RESOURCE_TYPE_RULE,
    describe_not_id,
    describe_not_reference,
    is_fhir_id,
    is_relative_reference,
    is_resource_type,
)
from pymedplum._security import Origin, check_same_origin
from pymedplum._serialization import (
    Deferred,
    decode_wire,
    dump_quietly,
    to_fhir_json,
    wire_dict,
)
from pymedplum._warnings import warn_caller
from pymedplum.bundle import describe_non_model_class, model_resource_type

P = ParamSpec("P")

logger = logging.getLogger("pymedplum.client")


# --- paths ------------------------------------------------------------------------------------


def check_resource_type(arg: str, value: object) -> str:
    """``value`` if it is a resource type name; else TypeError / ValueError naming ``arg``.

    Like :func:`check_id`, it keeps a path segment free of "/", "?", "#" and "..", so an
    argument cannot walk to another endpoint."""
    if isinstance(value, type) and issubclass(value, BaseModel):
        # read_resource(Patient, ...) with the model class: its type name is wanted.
        name = model_resource_type(value) or value.__name__
        raise TypeError(f"{arg} must be a str, got the {value.__name__} class: pass {name!r}")
    if not isinstance(value, str):
        raise TypeError(f"{arg} must be a str, got {type(value).__name__}")
    if not is_resource_type(value):
        raise ValueError(f"{arg} must be {RESOURCE_TYPE_RULE} such as 'Patient', got {value!r}")
    return value


def check_id(arg: str, value: object) -> str:
    """``value`` if it is a FHIR id usable as a URL path segment; else TypeError / ValueError."""
    # Stricter than the FHIR id on purpose: "." and ".." are FHIR ids, but as a path segment
    # they would name the parent endpoint (Patient/.. is the server root).
    if not isinstance(value, str):
        raise TypeError(f"{arg} must be a str, got {type(value).__name__}")
    if not is_fhir_id(value) or set(value) == {"."}:
        # Described, not shown: an MRN or a name passed as an id is PHI (see describe_not_id).
        raise ValueError(f"{arg} must be {ID_RULE}, not only dots, got {describe_not_id(value)}")
    return value


def fill_path(
    path: str,
    values: Mapping[str, str | None],
    args: Mapping[str, str],
    optional: Iterable[str] = (),
) -> str:
    """Fill ``{resourceType}``-style placeholders.

    ``args`` maps each placeholder to the argument name used in error messages. A placeholder
    in ``optional`` bound to None drops its segment; any other one bound to None is a TypeError
    (dropping it would turn ``DELETE Patient/{id}`` into a conditional delete of every Patient).
    """
    segments: list[str] = []
    for segment in path.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            key = segment[1:-1]
            value = values.get(key)
            arg = args.get(key, key)
            if value is None:
                if key in optional:
                    continue
                raise TypeError(f"{arg} is required, got None")
            if key == "resourceType":
                segments.append(check_resource_type(arg, value))
            else:
                segments.append(check_id(arg, value))
        elif segment:
            segments.append(segment)
    return "/".join(segments)


def split_reference(arg: str, reference: object) -> tuple[str, str]:
    """``"Patient/123"`` → ``("Patient", "123")``; TypeError / ValueError naming ``arg``
    otherwise."""
    if not isinstance(reference, str):
        # By type only: a resource passed here (set_accounts(patient, ...)) would put its whole
        # repr, PHI included, in the message.
        raise TypeError(
            f"{arg} must be a reference str like 'Patient/123', got {type(reference).__name__}"
        )
    if not is_relative_reference(reference):
        raise ValueError(
            f"{arg} must be a reference like 'Patient/123', got {describe_not_reference(reference)}"
        )
    resource_type, resource_id = reference.split("/")
    return check_resource_type(arg, resource_type), check_id(arg, resource_id)


def warn_as_fhir_without_bundle(as_fhir: type[BaseModel] | None, return_bundle: bool) -> None:
    """A UserWarning at the caller's line when a search is given ``as_fhir`` but not
    ``return_bundle=True``: the contract applies ``as_fhir`` to the FHIRBundle only, so the
    Bundle dict comes back and the model class would be ignored without a word."""
    if as_fhir is not None and not return_bundle:
        name = as_fhir.__name__
        warn_caller(
            f"as_fhir={name} has no effect without return_bundle=True: the Bundle dict is "
            f"returned. Pass return_bundle=True for a FHIRBundle of {name} models, or iterate "
            f"search_resource_pages(..., as_fhir={name})"
        )


def check_model_class(arg: str, value: object, target: object = None) -> None:
    """TypeError naming ``arg`` unless ``value`` is None or a pydantic model class; ValueError
    when the model is for another resource type than ``target`` (a resource type name, or the
    resource about to be sent). Checked before a request is sent, so that a create is not
    applied and then fails on its answer."""
    if value is None:
        return
    if not (isinstance(value, type) and issubclass(value, BaseModel)):
        raise TypeError(
            f"{arg} must be a pydantic model class (e.g. Patient) or None, "
            f"got {describe_non_model_class(value)}"
        )
    expected = model_resource_type(value)
    if expected is None or target is None:
        return  # a model of no fixed type (a user's own, Resource) fits any answer
    if isinstance(target, str):
        actual: object = target
    elif isinstance(target, Mapping):
        actual = target.get("resourceType")
    else:
        actual = getattr(target, "resource_type", None) or getattr(target, "resourceType", None)
    if isinstance(actual, str) and actual != expected:
        raise ValueError(
            f"{arg}={value.__name__} reads {expected} resources, but this request is for "
            f"{actual}; pass as_fhir={actual} (from pymedplum.fhir) or leave it out"
        )


_PATCH_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})
_PATCH_VALUE_OPS = frozenset({"add", "replace", "test"})
_PATCH_FROM_OPS = frozenset({"move", "copy"})


def patch_operations(operations: object) -> list[Any]:
    """``operations`` as a JSON Patch list, each one checked: a mapping (or model) with an
    ``op`` of RFC 6902, a ``path`` string, and the ``value`` (add, replace, test) or ``from``
    string (move, copy) that op needs. A single dict or a str is a TypeError."""
    if isinstance(operations, str | bytes | Mapping | BaseModel) or not isinstance(
        operations, Sequence
    ):
        raise TypeError(
            "operations must be a list of JSON Patch operations such as "
            "[{'op': 'replace', 'path': '/active', 'value': False}], "
            f"got {type(operations).__name__}"
        )
    out: list[Any] = []
    for index, op in enumerate(operations):
        data = to_fhir_json(op) if isinstance(op, BaseModel) else op
        if not isinstance(data, Mapping):
            raise TypeError(f"operations[{index}] must be a mapping, got {type(op).__name__}")
        if data.get("op") not in _PATCH_OPS:
            raise ValueError(
                f"operations[{index}]['op'] must be one of {sorted(_PATCH_OPS)}, "
                f"got {data.get('op')!r}"
            )
        if not isinstance(data.get("path"), str):
            raise ValueError(f"operations[{index}] needs a 'path' string, got {data.get('path')!r}")
        # RFC 6902 requires these members; Medplum reads a missing value as undefined, so a
        # replace without one would silently delete the element.
        if data["op"] in _PATCH_VALUE_OPS and "value" not in data:
            raise ValueError(f"operations[{index}] ({data['op']!r}) needs a 'value'")
        if data["op"] in _PATCH_FROM_OPS and not isinstance(data.get("from"), str):
            raise ValueError(
                f"operations[{index}] ({data['op']!r}) needs a 'from' string, "
                f"got {data.get('from')!r}"
            )
        out.append(op)
    return out


# --- scalar arguments -----------------------------------------------------------------------------


def check_str(arg: str, value: object) -> str | None:
    """``value`` if it is None or a non-empty str: else TypeError / ValueError naming ``arg``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{arg} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{arg} must be a non-empty str, got {value!r}; pass None to leave it out")
    return value


def is_finite_number(value: object) -> bool:
    """An int or a float that is finite: never a bool, NaN, an infinity, or an int too large
    for a float (seconds, waits and intervals are compared and slept on as floats)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_seconds(
    arg: str, value: object, *, allow_zero: bool = False, alternative: str | None = None
) -> float:
    """``value`` as a float if it is a finite number of seconds > 0 (>= 0 with ``allow_zero``).

    TypeError for another type, ValueError for a bad number, both naming ``arg``.
    ``alternative`` names what else the caller accepts and checked itself (``"None"``), for the
    message. A zero timeout or poll interval would spin, and NaN compares False with everything
    (it would never expire)."""
    expected = f"a finite number of seconds {'>= 0' if allow_zero else '> 0'}"
    if alternative:
        expected += f" or {alternative}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{arg} must be {expected}, got {type(value).__name__}")
    if not is_finite_number(value) or not (value >= 0 if allow_zero else value > 0):
        raise ValueError(f"{arg} must be {expected}, got {value!r}")
    return float(value)


def check_bool(arg: str, value: object) -> bool | None:
    """``value`` if it is None or a bool (``"no"`` or ``0`` is not): else TypeError."""
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{arg} must be a bool, got {type(value).__name__}")
    return value


def check_flag(arg: str, value: object) -> bool:
    """``value`` if it is a bool; else TypeError naming ``arg``. A flag is read by its truth
    value, so ``"false"`` would mean True and ``None`` or ``0`` False, without a word."""
    if not isinstance(value, bool):
        raise TypeError(f"{arg} must be True or False, got {type(value).__name__}")
    return value


def check_non_negative_int(arg: str, value: object) -> int | None:
    """``value`` if it is None or an int >= 0 (a bool is not an int here)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{arg} must be a non-negative int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{arg} must be a non-negative int, got {value}")
    return value


def check_str_list(arg: str, value: object) -> list[str] | None:
    """One str or an iterable of them as a list (a str is one value, never its characters).

    None stays None. An empty list, an empty str or a non-str item is refused: an empty
    ``_elements=`` or ``property=`` is never what was meant (pass None to leave it out).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return [check_str(arg, value) or ""]
    if isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{arg} must be a str or a list of str, got {type(value).__name__}")
    items = list(value)
    if not items:
        raise ValueError(f"{arg} must not be empty; pass None to leave it out")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{arg}[{index}] must be a str, got {type(item).__name__}")
        if not item.strip():
            raise ValueError(f"{arg}[{index}] must be a non-empty str, got {item!r}")
    return items


def check_date(arg: str, value: object) -> str | None:
    """An ISO date/datetime str as given, or a ``date`` / ``datetime`` in ISO format."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"{arg} must be an ISO date/datetime str, a date or a datetime, "
            f"got {type(value).__name__}"
        )
    return check_str(arg, value)


# --- origins ------------------------------------------------------------------------------------


def is_absolute_url(value: str) -> bool:
    """True for ``scheme://...`` and protocol-relative ``//host`` strings. A bare
    ``scheme:`` prefix is not enough: ``name:exact=Smith`` is a search query (urlsplit reads
    ``name`` as its scheme)."""
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:  # unparsable yet URL-shaped: the same-origin check will reject it
        return "://" in text
    if parts.netloc:
        return True
    return bool(parts.scheme) and text[len(parts.scheme) :].startswith("://")


# --- headers ------------------------------------------------------------------------------------


def check_headers(headers: object) -> Mapping[str, str] | None:
    """``headers`` if it is None or a mapping; else TypeError (a str, a list of pairs or a model
    failed deep inside with an AttributeError, and ``""`` or ``[]`` was taken as no headers).
    Its names and values are checked where the request is prepared."""
    if headers is not None and not isinstance(headers, Mapping):
        raise TypeError(
            "headers must be a mapping of header names to str values, such as "
            f"{{'X-Request-Id': 'abc'}}, or None, got {type(headers).__name__}"
        )
    return headers


def has_header(headers: Mapping[str, str] | None, name: str) -> bool:
    """Case-insensitive presence of ``name`` in ``headers``."""
    headers = check_headers(headers)
    return headers is not None and any(
        isinstance(k, str) and k.lower() == name.lower() for k in headers
    )


def merge_headers(
    base: Mapping[str, str], extra: Mapping[str, str] | None
) -> dict[str, str] | None:
    """``base`` overlaid with the caller's ``extra`` (caller wins, names compared case-blind)."""
    extra = check_headers(extra)
    merged = {k: v for k, v in base.items() if not has_header(extra, k)}
    if extra:
        merged.update(extra)
    return merged or None


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


# An entity tag naming one version: W/"<id>" (Medplum's form) or "<id>".
_VERSION_TAG = re.compile(f'(?:W/)?"({ID_PATTERN})"')


def if_match_version(headers: Mapping[str, str] | None) -> str | None:
    """The version id an ``If-Match`` in ``headers`` names (``W/"3"`` or ``"3"`` → ``"3"``);
    ``None`` without one, or for a value naming no single version (``*``, a list)."""
    headers = check_headers(headers)
    if headers is None:
        return None
    for key, value in headers.items():
        if key.lower() == "if-match" and isinstance(value, str):
            match = _VERSION_TAG.fullmatch(value)
            return match.group(1) if match else None
    return None


def version_test_operation(version: str) -> dict[str, Any]:
    """The JSON Patch op that fails the patch unless the resource is at ``version``."""
    return {"op": "test", "path": "/meta/versionId", "value": version}


def failed_version_test(outcome: Mapping[str, Any] | None, version: str) -> bool:
    """Whether a 400 OperationOutcome reports the failure of :func:`version_test_operation`:
    Medplum's JSON Patch (rfc6902) answers ``Test failed: <actual> != <expected>``, one line per
    failed operation, in ``details.text`` (or ``diagnostics``)."""
    if outcome is None:
        return False
    suffix = f" != {version}"
    for issue in outcome.get("issue") or []:
        if not isinstance(issue, Mapping):
            continue
        details = issue.get("details")
        texts = [
            issue.get("diagnostics"),
            details.get("text") if isinstance(details, Mapping) else None,
        ]
        for text in texts:
            if isinstance(text, str) and any(
                line.startswith("Test failed: ") and line.endswith(suffix)
                for line in text.splitlines()
            ):
                return True
    return False


def normalize_if_none_exist(value: object, expected: Origin) -> str:
    """The If-None-Exist query of a conditional create.

    A leading ``?`` is stripped. A same-origin absolute URL is reduced to its query (with a
    WARNING log record and a UserWarning: pass the query alone); another origin raises
    UnsafeRedirectError.
    """
    if not isinstance(value, str):
        raise TypeError(f"if_none_exist must be a str, got {type(value).__name__}")
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


# --- bodies ---------------------------------------------------------------------------------------


def resource_json(arg: str, resource: object) -> dict[str, Any]:
    """A resource argument as a FHIR-JSON dict (models by their lossless JSON, dicts as given)."""
    if isinstance(resource, BaseModel):
        return wire_dict(resource)
    if isinstance(resource, Mapping):
        return resource if isinstance(resource, dict) else dict(resource)
    got = type(resource).__name__
    if isinstance(resource, type) and issubclass(resource, BaseModel):
        got = f"the {resource.__name__} class itself: pass a resource, {resource.__name__}(...)"
    raise TypeError(f"{arg} must be a dict or a pydantic model, got {got}")


def require_fields(arg: str, resource: Mapping[str, Any], *fields: str) -> None:
    """Each of ``fields`` must be a non-empty str in ``resource``: ValueError when it is missing
    or empty, TypeError when it is another type (both name ``arg.field``)."""
    for field in fields:
        value = resource.get(field)
        if value is None:
            raise ValueError(f"{arg} has no {field}; a non-empty str is required here")
        if not isinstance(value, str):
            raise TypeError(f"{arg}.{field} must be a non-empty str, got {type(value).__name__}")
        if not value.strip():
            raise ValueError(f"{arg}.{field} must be a non-empty str, got {value!r}")


# FHIR tags a resource read with _summary or _elements SUBSETTED (v3 ObservationValue; Medplum
# 5 still writes the system's pre-THO URL). Writing it back replaces the stored resource with
# the subset: every element left out of the read would be erased.
_SUBSETTED_SYSTEMS = frozenset(
    {
        "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "http://hl7.org/fhir/v3/ObservationValue",
    }
)


def refuse_subsetted(arg: str, resource: Mapping[str, Any]) -> None:
    """ValueError when ``resource`` (FHIR JSON, at least its ``meta``) is tagged SUBSETTED."""
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, Mapping) else None
    if not isinstance(tags, list):
        return
    for tag in tags:
        if (
            isinstance(tag, Mapping)
            and tag.get("code") == "SUBSETTED"
            and tag.get("system") in _SUBSETTED_SYSTEMS
        ):
            raise ValueError(
                f"{arg} is tagged SUBSETTED in meta.tag: it was read with _summary or _elements "
                "and lacks elements, which an update would erase on the server. Read it whole "
                "(read_resource) and update that, or remove the tag to write it as it is"
            )


def _entry_method(entry: Mapping[str, Any]) -> str | None:
    """A bundle entry's ``request.method``, upper-cased (its request a dict or a model)."""
    request = entry.get("request")
    if isinstance(request, BaseModel):
        request = wire_dict(request)
    method = request.get("method") if isinstance(request, Mapping) else None
    return method.upper() if isinstance(method, str) else None


def refuse_subsetted_entries(bundle: Mapping[str, Any]) -> None:
    """``refuse_subsetted`` for the resource of each PUT entry of a batch or transaction: the
    server replaces the stored resource with it, as ``update_resource`` would."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return
    for index, entry in enumerate(entries):
        # A dict bundle may hold models (a BundleEntry, its request or resource).
        if isinstance(entry, BaseModel):
            entry = wire_dict(entry)
        if not isinstance(entry, Mapping) or _entry_method(entry) != "PUT":
            continue
        resource = entry.get("resource")
        if isinstance(resource, BaseModel):
            # Only the tags matter: dump the meta, not the whole resource.
            meta = getattr(resource, "meta", None)
            resource = {"meta": wire_dict(meta) if isinstance(meta, BaseModel) else meta}
        if isinstance(resource, Mapping):
            refuse_subsetted(f"bundle.entry[{index}].resource", resource)


def account_references(accounts: str | Iterable[str], arg: str = "accounts") -> list[str]:
    """Validate account references ("Organization/abc"), one or several, order kept; the errors
    name ``arg`` (set_accounts' argument is account_refs)."""
    if isinstance(accounts, str):
        refs = [accounts]
    elif isinstance(accounts, Iterable) and not isinstance(accounts, Mapping | bytes | BaseModel):
        # A pydantic model iterates over its (field, value) pairs: not a list of references.
        refs = list(accounts)
    else:
        raise TypeError(
            f"{arg} must be a reference like 'Organization/abc' or a list of them, "
            f"got {type(accounts).__name__}"
        )
    for index, ref in enumerate(refs):
        if not isinstance(ref, str):
            # By type only: the repr of a resource or Reference would put its content here.
            raise TypeError(
                f"{arg}[{index}] must be a reference str like 'Organization/abc', "
                f"got {type(ref).__name__}"
            )
        resource_type, _, resource_id = ref.partition("/")
        # Both parts checked: 'a/b' or 'Organization/a b' would be written as a dangling
        # reference (Medplum stores meta.accounts as given).
        if not is_resource_type(resource_type) or not is_fhir_id(resource_id):
            raise ValueError(
                f"{arg}[{index}] must be a reference like 'Organization/abc', got "
                + describe_not_reference(ref)
            )
    return refs


def stamp_accounts(
    resource: Mapping[str, Any], accounts: str | Iterable[str], *, arg: str = "resource"
) -> dict[str, Any]:
    """A copy of ``resource`` whose meta.accounts also lists ``accounts`` (no duplicates).

    The caller's dict, its meta and its accounts list are left untouched. A ``meta`` that is
    not a mapping, or ``meta.accounts`` that is not a list of References, is a TypeError
    naming ``arg.meta`` / ``arg.meta.accounts`` (a str would otherwise be split into
    characters).
    """
    return _stamped(resource, account_references(accounts), arg)


def _stamped(resource: Mapping[str, Any], refs: list[str], arg: str) -> dict[str, Any]:
    """``stamp_accounts`` with ``refs`` already checked (a batch checks them once)."""
    if not refs:
        # Nothing to add: "accounts": [] would be written where there was no element (FHIR
        # allows no empty arrays).
        return dict(resource)
    raw_meta = resource.get("meta")
    if isinstance(raw_meta, BaseModel):
        raw_meta = wire_dict(raw_meta)
    if raw_meta is not None and not isinstance(raw_meta, Mapping):
        raise TypeError(
            f"{arg}.meta must be a mapping (a FHIR Meta), got {type(raw_meta).__name__}"
        )
    meta = dict(raw_meta or {})
    raw_accounts = meta.get("accounts")
    if raw_accounts is not None and not isinstance(raw_accounts, list | tuple):
        raise TypeError(
            f"{arg}.meta.accounts must be a list of References, got {type(raw_accounts).__name__}"
        )
    existing: list[Any] = []
    for index, account in enumerate(raw_accounts or []):
        if isinstance(account, BaseModel):
            account = wire_dict(account)
        if not isinstance(account, Mapping):
            raise TypeError(
                f"{arg}.meta.accounts[{index}] must be a Reference such as "
                f"{{'reference': 'Organization/abc'}}, got {type(account).__name__}"
            )
        existing.append(account)
    present = {a.get("reference") for a in existing}
    for ref in refs:
        if ref not in present:
            existing.append({"reference": ref})
            present.add(ref)
    meta["accounts"] = existing
    return {**resource, "meta": meta}


_STAMPED_METHODS = frozenset({"POST", "PUT"})


def stamp_bundle_accounts(
    bundle: Mapping[str, Any], accounts: str | Iterable[str]
) -> dict[str, Any]:
    """A copy of ``bundle`` whose POST and PUT entries' resources are stamped by
    ``stamp_accounts``.

    Only those entries carry the resource being written. A PATCH entry's resource is the patch
    document (a Binary), so stamping it would not reach the patched resource: it is left as
    given, like entries without a resource (GET, DELETE).

    Each stamped entry is checked here (the errors of ``stamp_accounts``) but built only when
    the body is written (a :class:`Deferred`): its copies, and the dict of a model resource,
    are then held one entry at a time instead of all together (11.6x the body of a
    5,000-entry batch of models).
    """
    refs = account_references(accounts)
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return dict(bundle)
    stamped: list[Any] = []
    for index, entry in enumerate(entries):
        if _stamp_entry(entry, refs, index, check_only=True) is not entry:
            entry = Deferred(functools.partial(_stamp_entry, entry, refs, index))
        stamped.append(entry)
    return {**bundle, "entry": stamped}


def _stamp_entry(entry: Any, refs: list[str], index: int, *, check_only: bool = False) -> Any:
    """One entry of ``stamp_bundle_accounts``: ``entry`` itself when it is not stamped, else
    its stamped copy (with ``check_only``: the checks alone, and any other object)."""
    # A dict bundle may hold models (a BundleEntry, its resource or request), which the
    # body encoder writes as their JSON: stamp them too, not only dicts.
    given = entry
    if isinstance(entry, BaseModel):
        entry = wire_dict(entry)
    if not isinstance(entry, Mapping):
        return given
    resource = entry.get("resource")
    if isinstance(resource, BaseModel):
        # The checks read only its meta: the whole resource is dumped when it is written.
        resource = _meta_of(resource) if check_only else wire_dict(resource)
    if not isinstance(resource, Mapping) or _entry_method(entry) not in _STAMPED_METHODS:
        return given
    arg = f"bundle.entry[{index}].resource"
    if check_only:
        _stamped({"meta": resource.get("meta")}, refs, arg)
        return object()
    return {**entry, "resource": _stamped(resource, refs, arg)}


def _meta_of(resource: BaseModel) -> dict[str, Any]:
    """``{"meta": ...}`` as ``wire_dict(resource)`` holds it (or ``{}``), without the rest."""
    meta: dict[str, Any] = decode_wire(
        dump_quietly(resource.model_dump_json, by_alias=True, exclude_none=True, include={"meta"})
    )
    return meta


# --- search -------------------------------------------------------------------------------------


def _wire_value(value: object, name: str = "") -> str | None:
    """FHIR wire form of one search value; None means "leave the parameter out". ``name``
    (the parameter's) is for the error messages."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        # str() would send "nan" or "inf", which no FHIR number or date is.
        raise ValueError(f"search parameter {name!r} must be a finite number, got {value!r}")
    if isinstance(value, str | int | float):
        return str(value)
    # By type only: a search value is often PHI, and a resource put here would be printed whole.
    raise TypeError(
        f"search parameter {name!r} values must be str, int, float, bool, date or datetime, "
        f"got {type(value).__name__}"
    )


def _check_name(name: object) -> str:
    # Named "query:" like the other query errors: a whitespace-only query str ("  ") is one
    # blank name, and "search parameter names ..." alone did not say which argument was wrong.
    if not isinstance(name, str):
        raise TypeError(f"query: search parameter names must be str, got {type(name).__name__}")
    if not name.strip():
        raise ValueError(f"query: search parameter names must not be empty, got {name!r}")
    return name


def _pairs(arg: str, query: object) -> list[tuple[Any, Any]]:
    """The (name, value) pairs of a mapping or a list of pairs (a search ``query``, a low-level
    ``params``); TypeError naming ``arg`` otherwise. A str is the caller's to parse."""
    if isinstance(query, Mapping):
        return list(query.items())
    if not isinstance(query, Sequence) or isinstance(query, str | bytes | bytearray):
        raise TypeError(
            f"{arg} must be a mapping, a list of (name, value) pairs or a str, "
            f"got {type(query).__name__}"
        )
    for index, item in enumerate(query):
        if not (isinstance(item, tuple | list) and len(item) == 2):
            # Described, not repr'd: search values are often PHI (a name, a birth date),
            # and a resource put here by mistake would be printed whole.
            got = (
                f"a {type(item).__name__} of {len(item)} items"
                if isinstance(item, tuple | list)
                else type(item).__name__
            )
            raise TypeError(f"{arg}[{index}] must be a (name, value) pair, got {got}")
    return [(item[0], item[1]) for item in query]


def build_search_params(query: object) -> list[tuple[str, str]]:
    """Search parameters as ``(name, value)`` pairs, order kept, list values repeated (joined
    with commas for ``_elements``, ``_sort`` and ``_type``, which FHIR defines as one list).

    An empty parameter name (``{"": "x"}``, ``"=x"``) is a ValueError: it would send ``?=x``.
    """
    if query is None:
        return []
    if isinstance(query, str):
        parsed = parse_qsl(query.removeprefix("?"), keep_blank_values=True)
        return summary_count_last([(_check_name(name), value) for name, value in parsed])
    pairs = _pairs("query", query)
    out: list[tuple[str, str]] = []
    for name, value in pairs:
        _check_name(name)
        many = isinstance(value, Sequence | Set) and not isinstance(value, str | bytes | bytearray)
        values = value if many else [value]
        if many and name in _COMMA_SEPARATED:
            # FHIR defines these as one comma-separated list: repeated, a server keeps one.
            joined = ",".join(w for w in (_wire_value(v, name) for v in values) if w is not None)
            if joined:
                out.append((name, joined))
            continue
        for item in values:
            wire = _wire_value(item, name)
            if wire is not None:
                out.append((name, wire))
    return summary_count_last(out)


def check_query_params(params: object) -> Any:
    """The low-level methods' ``params=`` as given, once checked: None, a query str, a mapping
    (a list or tuple value repeats the name) or a list of (name, value) pairs, each value a
    str, int, finite float or bool (None: httpx sends ``name=``). TypeError / ValueError
    naming ``params`` otherwise: httpx would send ``str()`` of anything else (a model's repr,
    ``b'x'``, ``nan``) or fail inside with an AttributeError or IndexError."""
    if params is None or isinstance(params, str):
        return params
    if type(params) is list:
        # Per request: the typed methods' (str, str) pairs (build_search_params) take this
        # exact-type path (~0.5 µs for 4 pairs; the ABC checks below cost ~1 µs a pair).
        for item in params:
            if type(item) is not tuple or len(item) != 2:
                break
            if type(item[0]) is not str or type(item[1]) is not str:
                break
        else:
            return params
    repeats = isinstance(params, Mapping)  # only a mapping's list value repeats its name
    items = _pairs("params", params)
    for name, value in items:
        if not isinstance(name, str):
            raise TypeError(f"params names must be str, got {type(name).__name__}")
        values: Iterable[object] = value if repeats and isinstance(value, list | tuple) else [value]
        for item in values:
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"params[{name!r}] must be a finite number, got {item!r}")
            if item is not None and not isinstance(item, str | int | float):
                # By type only: the value could be a resource, printed whole.
                raise TypeError(
                    f"params[{name!r}] must be a str, int, float or bool, got {type(item).__name__}"
                )
    return params


# A search whose encoded query is longer than this goes as ``POST {type}/_search`` with the
# query as a form body: Medplum's server (Node) answers 431 once the request line and headers
# pass 16 KiB, proxies often cap a request line at 8 KiB, and httpx refuses a query over 65,536
# characters outright. Shorter queries stay GETs (cacheable, readable in access logs).
MAX_SEARCH_QUERY_CHARS = 8000


def search_as_post(
    target: str, params: Sequence[tuple[str, str]] | None
) -> tuple[str, bytes] | None:
    """``(target/_search, form body)`` when a search's query is too long for a GET, else None.

    ``target`` is the type path (the query in ``params``) or a server's next link (the query,
    already encoded, in the URL). Medplum reads a ``_search`` POST's parameters from the body
    only, so the whole query moves there.
    """
    path, _, url_query = target.partition("?")
    # A link's query is encoded already; raw non-ASCII in it is encoded as httpx would for a GET.
    url_query = "".join(c if c.isascii() else quote(c, safe="") for c in url_query)
    query = "&".join(q for q in (url_query, urlencode(list(params or []))) if q)
    if len(query) <= MAX_SEARCH_QUERY_CHARS:
        return None
    return path.rstrip("/") + "/_search", query.encode("ascii")


def summary_count_last(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``params`` with ``_summary=count`` moved to the end, the rest in order.

    Medplum reads search parameters in order and ``_summary=count`` sets the page size to 0: a
    ``_count`` after it would bring the entries back (``_summary=count&_count=5`` answers five
    resources). FHIR's ``_summary=count`` means "the total, no resources" wherever it stands.
    """
    counts = [p for p in params if p == ("_summary", "count")]
    if not counts:
        return params
    return [p for p in params if p != ("_summary", "count")] + counts[:1]


# Result parameters whose value is a comma-separated list (FHIR search, 3.1.1.5): a list value
# is joined, where every other parameter repeats (name=a&name=b, an AND).
_COMMA_SEPARATED = frozenset({"_elements", "_sort", "_type"})


def _repeat(name: str, arg: str, value: object) -> list[tuple[str, str]]:
    return [(name, v) for v in check_str_list(arg, value) or []]


def _joined(arg: str, value: object) -> str | None:
    items = check_str_list(arg, value)
    return None if items is None else ",".join(items)


_SUMMARY_MODES = ("true", "text", "data", "count", "false")
_TOTAL_MODES = ("none", "estimate", "accurate")


def _check_mode(arg: str, value: object, modes: Sequence[str]) -> None:
    """ValueError naming ``arg`` unless ``value`` is None or one of ``modes``; another type is
    described by its type only (a model's repr would print its content)."""
    if value is None or value in modes:
        return
    got = repr(value) if isinstance(value, str) else type(value).__name__
    raise ValueError(f"{arg} must be one of {', '.join(modes)}; got {got}")


def graphql_body(query: object, variables: object) -> dict[str, Any]:
    """The ``$graphql`` request body; TypeError / ValueError naming a bad argument."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a GraphQL query str, got {type(query).__name__}")
    if not query.strip():
        raise ValueError(f"query must be a non-empty GraphQL query, got {query!r:.40}")
    if variables is not None and not isinstance(variables, Mapping):
        raise TypeError(f"variables must be a mapping or None, got {type(variables).__name__}")
    return {"query": query, "variables": dict(variables) if variables is not None else {}}


def binary_content(arg: str, value: object) -> bytes:
    """``value`` as bytes when it is bytes-like; else TypeError naming ``arg``. httpx would take
    a str (encoded as UTF-8), ``None`` (an empty body) or a file (read once: a 401 replay would
    send it empty), each uploading something else than the caller's bytes without an error."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    hint = ""
    if isinstance(value, str):
        hint = " (encode a str first, e.g. content.encode())"
    elif hasattr(value, "read"):
        hint = " (pass the file's bytes, e.g. f.read())"
    raise TypeError(f"{arg} must be bytes, got {type(value).__name__}{hint}")


# Request bodies larger than this are handed to the transport in slices of this size.
BODY_CHUNK = 256 * 1024


class ChunkedBody(httpx.ByteStream):
    """A request body sent in ``BODY_CHUNK`` slices. httpx hands a ``bytes`` body to the
    transport whole, and h11 copies what it is handed into one ``bytes`` with its framing: a
    50 MB Binary upload took another 50-85 MB while it was sent. Slices of a memoryview copy
    256 KB at a time. The request keeps its ``content`` (the same bytes, not a copy) and its
    Content-Length; like ``httpx.ByteStream`` it can be sent again (a retry, a 401 replay)."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        view = memoryview(self._body)
        for start in range(0, len(view), BODY_CHUNK):
            yield bytes(view[start : start + BODY_CHUNK])

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk


def mime_type(arg: str, value: object) -> str:
    """``value`` if it looks like a MIME type (``type/subtype``); else ValueError naming ``arg``."""
    if not isinstance(value, str):
        # By type only: a resource passed here by mistake would be printed whole.
        raise TypeError(
            f"{arg} must be a MIME type str such as 'application/pdf', got {type(value).__name__}"
        )
    if "/" not in value or "\n" in value or "\r" in value:
        raise ValueError(f"{arg} must be a MIME type such as 'application/pdf', got {value!r}")
    return value


def search_option_params(
    *,
    summary: str | None = None,
    elements: str | Sequence[str] | None = None,
    total: str | None = None,
    at: str | date | None = None,
    count: int | None = None,
    offset: int | None = None,
    sort: str | Sequence[str] | None = None,
    include: str | Sequence[str] | None = None,
    include_iterate: str | Sequence[str] | None = None,
    revinclude: str | Sequence[str] | None = None,
    revinclude_iterate: str | Sequence[str] | None = None,
) -> list[tuple[str, str]]:
    """The ``_`` parameters of ``search_with_options``.

    ``_elements`` and ``_sort`` take one comma-separated value (FHIR's list syntax; a repeated
    ``_elements`` would keep only the last on Medplum). The include family repeats. A str is one
    value; an empty str or list is a ValueError (``_elements=`` is never what was meant). ``at``
    may be a ``date`` / ``datetime``: it is sent in ISO format, as in search queries.
    """
    _check_mode("summary", summary, _SUMMARY_MODES)
    _check_mode("total", total, _TOTAL_MODES)
    check_non_negative_int("count", count)
    check_non_negative_int("offset", offset)
    out: list[tuple[str, str]] = []
    for name, value in (
        ("_summary", summary),
        ("_elements", _joined("elements", elements)),
        ("_total", total),
        ("_at", check_date("at", at)),
        ("_count", None if count is None else str(count)),
        ("_offset", None if offset is None else str(offset)),
        ("_sort", _joined("sort", sort)),
    ):
        if value is not None:
            out.append((name, value))
    out += _repeat("_include", "include", include)
    out += _repeat("_include:iterate", "include_iterate", include_iterate)
    out += _repeat("_revinclude", "revinclude", revinclude)
    out += _repeat("_revinclude:iterate", "revinclude_iterate", revinclude_iterate)
    return out


def match_entries(bundle: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """``(index in entry, resource)`` of the primary matches of a searchset page (entries
    included by _include are left out)."""
    found: list[tuple[int, dict[str, Any]]] = []
    for index, entry in enumerate(bundle.get("entry") or []):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("resource"), dict):
            continue
        search = entry.get("search")
        mode = search.get("mode") if isinstance(search, Mapping) else None
        if mode in (None, "match"):
            found.append((index, entry["resource"]))
    return found


def matches(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The primary matches of a searchset page (entries included by _include are left out)."""
    return [resource for _, resource in match_entries(bundle)]


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The URL of the Bundle's ``next`` link, if any."""
    for link in bundle.get("link") or []:
        if isinstance(link, Mapping) and link.get("relation") == "next":
            url = link.get("url")
            if isinstance(url, str) and url:
                return url
    return None


# --- async jobs -----------------------------------------------------------------------------------


def job_locator(job: object) -> str:
    """A job id or status URL out of ``get_async_job_status``'s argument.

    An OperationOutcome (dict or model) carries the URL in ``issue[0].diagnostics``. Another
    resource (an AsyncJob, say) or an empty str is a ValueError saying what is accepted.
    """
    accepted = (
        "a job id, a status URL, or the OperationOutcome answered by a Prefer: respond-async "
        "call (its issue[0].diagnostics is the job URL)"
    )
    if isinstance(job, BaseModel):
        job = to_fhir_json(job)
    if isinstance(job, Mapping):
        kind = job.get("resourceType", "OperationOutcome")
        if kind != "OperationOutcome":
            hint = "; pass its id instead" if kind == "AsyncJob" else ""
            raise ValueError(f"job must be {accepted}, got a resource of type {kind!r}{hint}")
        issues = job.get("issue")
        first = issues[0] if isinstance(issues, list) and issues else None
        url = first.get("diagnostics") if isinstance(first, Mapping) else None
        if not isinstance(url, str) or not url.strip():
            raise ValueError("job is an OperationOutcome without a job URL in issue[0].diagnostics")
        return url.strip()
    if isinstance(job, str):
        if not job.strip():
            raise ValueError(f"job must not be empty: pass {accepted}")
        return job.strip()
    raise TypeError(f"job must be {accepted}, got {type(job).__name__}")


TERMINAL_JOB_STATUSES = frozenset({"completed", "error", "cancelled"})


def bulk_data_done(status_code: int, body: Mapping[str, Any]) -> bool:
    """Whether a job status answer is a finished FHIR Bulk Data export. Its status URL
    (Medplum's $export hands out ``fhir/R4/bulkdata/export/{id}``) has no AsyncJob: it answers
    202 with an empty body while the export runs and 200 with the export manifest, which has no
    ``status``, once done. (Kept out of the async module: unasync would rename "AsyncJob".)"""
    return status_code == 200 and body.get("resourceType") != "AsyncJob" and "status" not in body


# --- terminology ------------------------------------------------------------------------------


def _coded(arg: str, value: object, kind: str) -> dict[str, Any]:
    """A Coding / CodeableConcept argument as FHIR JSON; TypeError naming ``arg`` otherwise."""
    if isinstance(value, BaseModel):
        return wire_dict(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(
        f"{arg} must be a dict or a pydantic model (a FHIR {kind}), got {type(value).__name__}"
    )


def _query_and_parameters(
    items: Sequence[tuple[str, str, str | int | bool | list[str] | None]],
) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """(query pairs, Parameters.parameter) for ``(name, value[x] key, checked value)`` items."""
    query: list[tuple[str, str]] = []
    parameters: list[dict[str, Any]] = []
    for name, value_key, value in items:
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            query.append((name, _wire_value(item) or ""))
            parameters.append({"name": name, value_key: item})
    return query, parameters


def _has_str(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    return isinstance(value, str) and bool(value.strip())


def expand_params(
    *,
    valueset_url: str | None,
    filter: str | None,
    offset: int | None,
    count: int | None,
    include_designations: bool | None,
    active_only: bool | None,
    exclude_nested: bool | None,
    exclude_not_for_ui: bool | None,
    exclude_post_coordinated: bool | None,
    display_language: str | None,
    property: str | Sequence[str] | None,
) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """``ValueSet/$expand`` inputs (FHIR names; unset options left out) as (query pairs for a
    GET, ``Parameters.parameter`` entries for a POST).

    Every option is checked (TypeError / ValueError naming it). An empty ``filter`` means no
    filter and is left out; ``property`` is one str or a list of them.
    """
    if isinstance(filter, str) and not filter.strip():
        filter = None
    return _query_and_parameters(
        [
            ("url", "valueUri", check_str("valueset_url", valueset_url)),
            ("filter", "valueString", check_str("filter", filter)),
            ("offset", "valueInteger", check_non_negative_int("offset", offset)),
            ("count", "valueInteger", check_non_negative_int("count", count)),
            (
                "includeDesignations",
                "valueBoolean",
                check_bool("include_designations", include_designations),
            ),
            ("activeOnly", "valueBoolean", check_bool("active_only", active_only)),
            ("excludeNested", "valueBoolean", check_bool("exclude_nested", exclude_nested)),
            (
                "excludeNotForUI",
                "valueBoolean",
                check_bool("exclude_not_for_ui", exclude_not_for_ui),
            ),
            (
                "excludePostCoordinated",
                "valueBoolean",
                check_bool("exclude_post_coordinated", exclude_post_coordinated),
            ),
            ("displayLanguage", "valueCode", check_str("display_language", display_language)),
            ("property", "valueString", check_str_list("property", property)),
        ]
    )


def lookup_request(
    *,
    code: str | None,
    system: str | None,
    codesystem_id: str | None,
    version: str | None,
    coding: Mapping[str, Any] | BaseModel | None,
    date: str | None,
    display_language: str | None,
    property: str | Sequence[str] | None,
) -> tuple[list[tuple[str, str]], dict[str, Any] | None]:
    """``CodeSystem/$lookup``: (query, None) for a GET, or ([], Parameters) when a Coding is given.

    A code needs its system: ``system``, the instance's (``codesystem_id``) or the Coding's.
    With a Coding, ``code`` and ``system`` may repeat its values or fill in the ones it lacks,
    but must not contradict them (``code=""`` counts as not given there: the argument is
    positional and required by the signature).
    """
    if coding is not None and code == "":
        code = None
    code = check_str("code", code)
    system = check_str("system", system)
    items: list[tuple[str, str, str | int | bool | list[str] | None]] = [
        ("version", "valueString", check_str("version", version)),
        ("date", "valueDateTime", check_date("date", date)),
        ("displayLanguage", "valueCode", check_str("display_language", display_language)),
        ("property", "valueCode", check_str_list("property", property)),
    ]
    if coding is None:
        if code is None:
            raise ValueError("lookup_concept needs code (with system or codesystem_id) or coding")
        if system is None and codesystem_id is None:
            raise ValueError(
                f"lookup_concept needs system (or codesystem_id) to look up code {code!r}"
            )
        query, _ = _query_and_parameters(
            [("code", "valueCode", code), ("system", "valueUri", system), *items]
        )
        return query, None
    coding_json = _coded("coding", coding, "Coding")
    for arg, value in (("code", code), ("system", system)):
        if value is None:
            continue
        if coding_json.get(arg) is None:
            coding_json[arg] = value
        elif coding_json[arg] != value:
            raise ValueError(f"lookup_concept: {arg}={value!r} contradicts coding.{arg}")
    if not _has_str(coding_json, "code"):
        raise ValueError("lookup_concept needs a code: coding has none and code is not given")
    if not _has_str(coding_json, "system") and codesystem_id is None:
        raise ValueError(
            "lookup_concept needs a system: coding has none, and neither system nor "
            "codesystem_id is given"
        )
    _, parameters = _query_and_parameters(items)
    return [], {
        "resourceType": "Parameters",
        "parameter": [{"name": "coding", "valueCoding": coding_json}, *parameters],
    }


def translate_request(
    *,
    code: str | None,
    system: str | None,
    conceptmap_url: str | None,
    version: str | None,
    source: str | None,
    target: str | None,
    coding: Mapping[str, Any] | BaseModel | None,
    codeable_concept: Mapping[str, Any] | BaseModel | None,
    target_system: str | None,
    reverse: bool | None,
) -> tuple[list[tuple[str, str]], dict[str, Any] | None]:
    """``ConceptMap/$translate``: (query, None) for a GET, or ([], Parameters) for a POST.

    A Coding or CodeableConcept cannot travel as a query parameter, so either one makes the
    request a POST of a Parameters resource carrying every given input. As FHIR's $translate
    says, exactly one of code + system, coding and codeable_concept is the source.
    """
    code = check_str("code", code)
    system = check_str("system", system)
    query, parameters = _query_and_parameters(
        [
            ("url", "valueUri", check_str("conceptmap_url", conceptmap_url)),
            ("conceptMapVersion", "valueString", check_str("version", version)),
            ("code", "valueCode", code),
            ("system", "valueUri", system),
            ("source", "valueUri", check_str("source", source)),
            ("target", "valueUri", check_str("target", target)),
            ("targetsystem", "valueUri", check_str("target_system", target_system)),
            ("reverse", "valueBoolean", check_bool("reverse", reverse)),
        ]
    )
    coding_json = None if coding is None else _coded("coding", coding, "Coding")
    concept_json = (
        None
        if codeable_concept is None
        else _coded("codeable_concept", codeable_concept, "CodeableConcept")
    )
    if coding_json is None and concept_json is None:
        if code is None:
            raise ValueError("translate_concept needs code and system, coding or codeable_concept")
        if system is None:
            raise ValueError(f"translate_concept needs system to translate code {code!r}")
        return query, None
    if code is not None or system is not None:
        raise ValueError(
            "translate_concept takes code + system, or coding / codeable_concept, not both"
        )
    if coding_json is not None and concept_json is not None:
        raise ValueError("translate_concept takes coding or codeable_concept, not both")
    if coding_json is not None:
        parameters.append({"name": "coding", "valueCoding": coding_json})
    if concept_json is not None:
        parameters.append({"name": "codeableConcept", "valueCodeableConcept": concept_json})
    return [], {"resourceType": "Parameters", "parameter": parameters}


def check_hook_arity(arg: str, hook: Callable[..., Any], what: str) -> None:
    """TypeError naming ``arg`` unless ``hook`` can be called with one positional argument
    (``what`` it receives). Checked at construction: a hook of another shape fails at every
    request, and a failing on_request_complete is only logged, so the audit trail would be
    lost without an error. A callable whose signature cannot be read is taken as it is."""
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(None)
    except TypeError:
        # Names and kinds only: a default (or a functools.partial's bound keyword) may be a
        # credential, e.g. partial(send_audit, api_key=KEY); annotations are left out too.
        bare = signature.replace(
            parameters=[
                p.replace(default=inspect.Parameter.empty, annotation=inspect.Parameter.empty)
                for p in signature.parameters.values()
            ],
            return_annotation=inspect.Signature.empty,
        )
        raise TypeError(
            f"{arg} must take one positional argument (the {what}), got a callable with "
            f"parameters {bare}"
        ) from None


def named_constructor(init: Callable[P, None]) -> Callable[P, None]:
    """``init`` (a client ``__init__``), whose argument errors name the class the caller wrote.

    Python would name the base class that defines ``__init__`` (``SyncBaseClient.__init__() got
    an unexpected keyword argument``), which the caller never wrote, and suggest nothing. The
    arguments are bound against ``init``'s signature before it runs, so a TypeError raised by
    the checks inside it is not rewritten. ``functools.wraps`` keeps the signature for
    ``inspect.signature`` and IDEs; the ParamSpec keeps it for type checkers.
    """
    signature = inspect.signature(init)
    names = list(signature.parameters)[1:]  # without self
    positional = [
        n for n in names if signature.parameters[n].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]

    @functools.wraps(init)
    def checked(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            called = type(args[0]).__name__ if args else init.__qualname__
            raise TypeError(_argument_error(called, exc, args, kwargs, names, positional)) from None
        init(*args, **kwargs)

    return checked


def _argument_error(
    called: str,
    exc: TypeError,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
    names: list[str],
    positional: list[str],
) -> str:
    """The message of a constructor call that does not fit the signature."""
    unknown = [k for k in kwargs if k not in names]
    if unknown:
        message = f"{called}() got an unexpected keyword argument {unknown[0]!r}"
        close = difflib.get_close_matches(unknown[0], names, n=1)
        return message + (f"; did you mean {close[0]!r}?" if close else "")
    if len(args) - 1 > len(positional):
        plural = "" if len(positional) == 1 else "s"
        return (
            f"{called}() takes at most {len(positional)} positional argument{plural} "
            f"({', '.join(positional)}) but {len(args) - 1} were given; the others are "
            "keyword-only"
        )
    return f"{called}(): {exc}"

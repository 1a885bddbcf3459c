"""The FHIR R4 syntax rules the SDK checks, written once.

Every module that validates or parses an id or a resource type name builds on these patterns,
so ``read_resource``, ``build_reference``, ``parse_reference``, On-Behalf-Of memberships, the
access helpers and the response parsers all agree on what an id and a type name are.
:func:`known_resource_types` is the set of types the models know (a misspelt type's hint, the
path templates of request events).
"""

from __future__ import annotations

import functools
import re
from typing import TypeGuard

# FHIR R4 `id` datatype (datatypes.html#id): 1 to 64 of A-Z a-z 0-9 - .
ID_PATTERN = r"[A-Za-z0-9\-.]{1,64}"
# A resource type name: every R4 (and Medplum) resource type is an upper-case letter then
# letters; 255 at most, as the R4 name invariant ([A-Z][A-Za-z0-9_]{0,254}) bounds names.
RESOURCE_TYPE_PATTERN = r"[A-Z][A-Za-z]{0,254}"
# A relative literal reference, "Type/id".
REFERENCE_PATTERN = f"{RESOURCE_TYPE_PATTERN}/{ID_PATTERN}"

ID_RULE = "a FHIR id (1 to 64 of A-Z, a-z, 0-9, '-', '.')"
RESOURCE_TYPE_RULE = "a resource type name (an upper-case letter, then letters)"

# The Type/id[/_history/vid] a location ends with (a Location header, a batch entry's
# response.location; after a base URL or alone). Groups: the type, the id, the version or None.
LOCATION_TAIL = re.compile(
    f"(?:^|/)({RESOURCE_TYPE_PATTERN})/({ID_PATTERN})(?:/_history/({ID_PATTERN}))?/?\\Z"
)

_ID = re.compile(ID_PATTERN)
_RESOURCE_TYPE = re.compile(RESOURCE_TYPE_PATTERN)
_REFERENCE = re.compile(REFERENCE_PATTERN)
# A FHIR code as an issue's severity and code or AsyncJob.status hold one (invalid, not-found,
# active): short and lower-case.
_LOGGABLE_CODE = re.compile(r"[a-z][a-z-]{0,39}")


def is_fhir_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a str that is a FHIR R4 id."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_resource_type(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a str that is a resource type name."""
    return isinstance(value, str) and _RESOURCE_TYPE.fullmatch(value) is not None


def is_relative_reference(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a str of the form ``Type/id`` (no version, no base URL)."""
    return isinstance(value, str) and _REFERENCE.fullmatch(value) is not None


def loggable_code(value: object) -> str | None:
    """``value`` if it is a FHIR code (``invalid``, ``not-found``, ...), else None: a server
    could put anything in these fields, and only short lower-case codes are safe to log."""
    return value if isinstance(value, str) and _LOGGABLE_CODE.fullmatch(value) else None


@functools.cache
def known_resource_types() -> frozenset[str]:
    """The FHIR R4 and Medplum resource types the models know. Any name of the right shape may
    be sent; this set tells a known type from a misspelt one or a path segment that is data."""
    # At first use, not at import: the registry is a small generated dict, but the client and
    # the hooks module do not need it to load.
    from pymedplum.fhir._registry import RESOURCE_MODULES

    return frozenset(RESOURCE_MODULES)


# --- describing a value that breaks a rule, without showing it ------------------------------
# A value passed as an id or reference by mistake is often an identifier (an MRN), a name or a
# search (PHI), and exception messages end up in logs: the messages say what is wrong with it
# (its length, the first character not allowed) and never repeat it.

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")
_ID_HINTS = {
    "/": ": pass the id alone, not a 'Type/id' reference",
    "|": ": an identifier (system|value) is found by a search (identifier=...), not by id",
    "?": ": a search query is not an id",
}


def _characters(value: str) -> str:
    return "1 character" if len(value) == 1 else f"{len(value)} characters"


def describe_not_id(value: str) -> str:
    """Why ``value`` is not a FHIR id (its length and first character not allowed, with a hint
    for the usual mistakes), never the value."""
    if not value:
        return "an empty str"
    if set(value) == {"."}:
        return f"{len(value)} dots only"
    if value[:8].lower().startswith(("http://", "https://")):  # schemes ignore case
        return (
            f"{_characters(value)}, a URL: pass the id it names (in Medplum's "
            "storage/<id>/<version> URLs, such as a $export manifest's output urls, the "
            "segment after storage/ is the Binary id)"
        )
    for index, char in enumerate(value):
        if char not in _ID_CHARS:
            hint = _ID_HINTS.get(char, "")
            return f"{_characters(value)}, {char!r} at index {index} not allowed{hint}"
    return f"{_characters(value)} (64 at most)"


def describe_not_type(value: str) -> str:
    """Why ``value`` is not a resource type name, never the value (the type part of a broken
    reference may be anything)."""
    if not value:
        return "an empty str"
    if not ("A" <= value[0] <= "Z"):
        return f"{_characters(value)}, not starting with an upper-case letter"
    for index, char in enumerate(value):
        if not (char.isascii() and char.isalpha()):
            return f"{_characters(value)}, {char!r} at index {index} not allowed"
    return f"{_characters(value)} (255 at most)"


def describe_not_reference(value: str) -> str:
    """Why ``value`` is not a ``Type/id`` reference, never the value: its type is named only
    when it is a resource type name, its id described as :func:`describe_not_id` does."""
    resource_type, slash, resource_id = value.partition("/")
    if not value:
        return "an empty str"
    if not slash:
        return f"{_characters(value)} without a '/'"
    if not is_resource_type(resource_type):
        return f"a type part that is not a resource type name ({describe_not_type(resource_type)})"
    if not resource_id:
        return f"a reference to {resource_type} without an id"
    if "/" in resource_id:
        return f"a reference to {resource_type} with more than one '/'"
    return f"a reference to {resource_type} whose id has {describe_not_id(resource_id)}"

"""The FHIR R4 syntax rules the SDK checks, written once.

Every module that validates or parses an id or a resource type name builds on these patterns,
so ``read_resource``, ``build_reference``, ``parse_reference``, On-Behalf-Of memberships, the
access helpers and the response parsers all agree on what an id and a type name are.
"""

from __future__ import annotations

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

_ID = re.compile(ID_PATTERN)
_RESOURCE_TYPE = re.compile(RESOURCE_TYPE_PATTERN)
_REFERENCE = re.compile(REFERENCE_PATTERN)


def is_fhir_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a str that is a FHIR R4 id."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_resource_type(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a str that is a resource type name."""
    return isinstance(value, str) and _RESOURCE_TYPE.fullmatch(value) is not None


def is_relative_reference(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a str of the form ``Type/id`` (no version, no base URL)."""
    return isinstance(value, str) and _REFERENCE.fullmatch(value) is not None

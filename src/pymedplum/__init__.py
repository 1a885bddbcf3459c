"""pymedplum: the typed Python SDK for Medplum.

``from pymedplum import MedplumClient`` for the sync client,
``from pymedplum import AsyncMedplumClient`` for the async one, and
``from pymedplum.fhir import Patient`` for the FHIR R4 models.

Public names are loaded on first use, so ``import pymedplum`` stays cheap: no
pydantic models, no httpx until needed. The guides are the pages under ``docs/``
of the pymedplum repository (start with ``docs/quickstart.md``; they are not in
the installed package); every method's docstring gives its arguments, what it
raises and the request it sends.
"""

# To add a public name: one line in _LAZY (which maps each name to its module) and the name in
# the matching TYPE_CHECKING import (tests/helpers/test_lazy_init.py checks they agree). Kept
# out of the docstring, which help(pymedplum) shows to users.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pymedplum._version import __version__

if TYPE_CHECKING:
    from pymedplum._obo import OnBehalfOfContext as OnBehalfOfContext
    from pymedplum._retry import RetryPolicy as RetryPolicy
    from pymedplum._serialization import to_fhir_json as to_fhir_json
    from pymedplum.access import MergeResult as MergeResult
    from pymedplum.access import build_merged_access as build_merged_access
    from pymedplum.access import (
        get_project_membership_access_parameter as get_project_membership_access_parameter,
    )
    from pymedplum.access import (
        get_project_membership_access_policy_id as get_project_membership_access_policy_id,
    )
    from pymedplum.access import make_project_membership_access as make_project_membership_access
    from pymedplum.access import merged_equals_remote as merged_equals_remote
    from pymedplum.access import normalize_access_entry as normalize_access_entry
    from pymedplum.access import normalize_access_policy_id as normalize_access_policy_id
    from pymedplum.access import (
        normalize_access_policy_reference as normalize_access_policy_reference,
    )
    from pymedplum.access import partition_access as partition_access
    from pymedplum.access import validate_managed_access as validate_managed_access
    from pymedplum.async_client import AsyncMedplumClient as AsyncMedplumClient
    from pymedplum.bundle import BundleEntryResult as BundleEntryResult
    from pymedplum.bundle import FHIRBundle as FHIRBundle
    from pymedplum.client import MedplumClient as MedplumClient
    from pymedplum.exceptions import AuthenticationError as AuthenticationError
    from pymedplum.exceptions import AuthorizationError as AuthorizationError
    from pymedplum.exceptions import BadRequestError as BadRequestError
    from pymedplum.exceptions import BundleEntryError as BundleEntryError
    from pymedplum.exceptions import ConflictError as ConflictError
    from pymedplum.exceptions import GoneError as GoneError
    from pymedplum.exceptions import InsecureTransportError as InsecureTransportError
    from pymedplum.exceptions import MedplumError as MedplumError
    from pymedplum.exceptions import NetworkError as NetworkError
    from pymedplum.exceptions import NotFoundError as NotFoundError
    from pymedplum.exceptions import OperationOutcomeError as OperationOutcomeError
    from pymedplum.exceptions import PreconditionFailedError as PreconditionFailedError
    from pymedplum.exceptions import RateLimitError as RateLimitError
    from pymedplum.exceptions import ServerError as ServerError
    from pymedplum.exceptions import TokenRefreshCooldownError as TokenRefreshCooldownError
    from pymedplum.exceptions import UnsafeRedirectError as UnsafeRedirectError
    from pymedplum.exceptions import ValidationError as ValidationError
    from pymedplum.helpers.accounts import extract_account_references as extract_account_references
    from pymedplum.helpers.accounts import get_resource_accounts as get_resource_accounts
    from pymedplum.helpers.accounts import resource_has_account as resource_has_account
    from pymedplum.helpers.codings import coding_parts as coding_parts
    from pymedplum.helpers.codings import get_code_by_system as get_code_by_system
    from pymedplum.helpers.codings import get_code_display as get_code_display
    from pymedplum.helpers.names import extract_identifier as extract_identifier
    from pymedplum.helpers.names import get_patient_display_name as get_patient_display_name
    from pymedplum.helpers.references import build_reference as build_reference
    from pymedplum.helpers.references import parse_reference as parse_reference
    from pymedplum.helpers.references import resolve_id as resolve_id
    from pymedplum.helpers.search import escape_search_value as escape_search_value

# name -> module that defines it. One line per public name; keep each group sorted.
_LAZY: dict[str, str] = {
    # Clients
    "AsyncMedplumClient": "pymedplum.async_client",
    "MedplumClient": "pymedplum.client",
    "OnBehalfOfContext": "pymedplum._obo",
    # Exceptions and retry policy
    "AuthenticationError": "pymedplum.exceptions",
    "AuthorizationError": "pymedplum.exceptions",
    "BadRequestError": "pymedplum.exceptions",
    "BundleEntryError": "pymedplum.exceptions",
    "ConflictError": "pymedplum.exceptions",
    "GoneError": "pymedplum.exceptions",
    "InsecureTransportError": "pymedplum.exceptions",
    "MedplumError": "pymedplum.exceptions",
    "NetworkError": "pymedplum.exceptions",
    "NotFoundError": "pymedplum.exceptions",
    "OperationOutcomeError": "pymedplum.exceptions",
    "PreconditionFailedError": "pymedplum.exceptions",
    "RateLimitError": "pymedplum.exceptions",
    "ServerError": "pymedplum.exceptions",
    "TokenRefreshCooldownError": "pymedplum.exceptions",
    "UnsafeRedirectError": "pymedplum.exceptions",
    "ValidationError": "pymedplum.exceptions",
    "RetryPolicy": "pymedplum._retry",
    # FHIR helpers
    "build_reference": "pymedplum.helpers.references",
    "parse_reference": "pymedplum.helpers.references",
    "escape_search_value": "pymedplum.helpers.search",
    "resolve_id": "pymedplum.helpers.references",
    "extract_identifier": "pymedplum.helpers.names",
    "get_patient_display_name": "pymedplum.helpers.names",
    "coding_parts": "pymedplum.helpers.codings",
    "get_code_by_system": "pymedplum.helpers.codings",
    "get_code_display": "pymedplum.helpers.codings",
    "extract_account_references": "pymedplum.helpers.accounts",
    "get_resource_accounts": "pymedplum.helpers.accounts",
    "resource_has_account": "pymedplum.helpers.accounts",
    "to_fhir_json": "pymedplum._serialization",
    # ProjectMembership access
    "MergeResult": "pymedplum.access",
    "build_merged_access": "pymedplum.access",
    "get_project_membership_access_parameter": "pymedplum.access",
    "get_project_membership_access_policy_id": "pymedplum.access",
    "make_project_membership_access": "pymedplum.access",
    "merged_equals_remote": "pymedplum.access",
    "normalize_access_entry": "pymedplum.access",
    "normalize_access_policy_id": "pymedplum.access",
    "normalize_access_policy_reference": "pymedplum.access",
    "partition_access": "pymedplum.access",
    "validate_managed_access": "pymedplum.access",
    # Bundles
    "BundleEntryResult": "pymedplum.bundle",
    "FHIRBundle": "pymedplum.bundle",
}

# Spelt out, not built from _LAZY: type checkers read a literal __all__ only, and without it
# `from pymedplum import *` defines nothing for mypy (test_lazy_init checks the two agree).
__all__ = [
    "AsyncMedplumClient",
    "AuthenticationError",
    "AuthorizationError",
    "BadRequestError",
    "BundleEntryError",
    "BundleEntryResult",
    "ConflictError",
    "FHIRBundle",
    "GoneError",
    "InsecureTransportError",
    "MedplumClient",
    "MedplumError",
    "MergeResult",
    "NetworkError",
    "NotFoundError",
    "OnBehalfOfContext",
    "OperationOutcomeError",
    "PreconditionFailedError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "TokenRefreshCooldownError",
    "UnsafeRedirectError",
    "ValidationError",
    "__version__",
    "build_merged_access",
    "build_reference",
    "coding_parts",
    "escape_search_value",
    "extract_account_references",
    "extract_identifier",
    "get_code_by_system",
    "get_code_display",
    "get_patient_display_name",
    "get_project_membership_access_parameter",
    "get_project_membership_access_policy_id",
    "get_resource_accounts",
    "make_project_membership_access",
    "merged_equals_remote",
    "normalize_access_entry",
    "normalize_access_policy_id",
    "normalize_access_policy_reference",
    "parse_reference",
    "partition_access",
    "resolve_id",
    "resource_has_account",
    "to_fhir_json",
    "validate_managed_access",
]


# Public submodules reachable as attributes (``import pymedplum; pymedplum.fhir.Patient``,
# ``pymedplum.exceptions.NotFoundError``) without importing them first, as an eagerly-importing
# package would allow; each is imported on first access only, so ``import pymedplum`` stays cheap.
_SUBMODULES = frozenset(
    {
        "access",
        "async_client",
        "bundle",
        "client",
        "endpoint_types",
        "exceptions",
        "fhir",
        "helpers",
        "hooks",
        "payloads",
        "search_params",
    }
)


if not TYPE_CHECKING:
    # Hidden from type checkers, which would otherwise accept any name through it
    # (``from pymedplum import MedplumClent`` type-checked); they see the imports above.

    def __getattr__(name: str) -> object:
        """Import a public name from its module on first access, then cache it here."""
        if name in _SUBMODULES:
            # import_module binds the submodule on this package, so this runs once per name.
            return importlib.import_module(f"pymedplum.{name}")
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'pymedplum' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBMODULES})

"""Pure FHIR helpers: no client, no I/O. Every reader accepts a dict or a Pydantic model."""

from pymedplum._serialization import to_fhir_json
from pymedplum.helpers.accounts import (
    extract_account_references,
    get_resource_accounts,
    resource_has_account,
)
from pymedplum.helpers.codings import coding_parts, get_code_by_system, get_code_display
from pymedplum.helpers.names import extract_identifier, get_patient_display_name
from pymedplum.helpers.references import build_reference, parse_reference, resolve_id
from pymedplum.helpers.search import escape_search_value

__all__ = [
    "build_reference",
    "coding_parts",
    "escape_search_value",
    "extract_account_references",
    "extract_identifier",
    "get_code_by_system",
    "get_code_display",
    "get_patient_display_name",
    "get_resource_accounts",
    "parse_reference",
    "resolve_id",
    "resource_has_account",
    "to_fhir_json",
]

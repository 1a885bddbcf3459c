"""pymedplum: the typed Python SDK for Medplum.

``from pymedplum import MedplumClient`` for the sync client,
``from pymedplum import AsyncMedplumClient`` for the async one, and
``from pymedplum.fhir import Patient`` for the FHIR R4 models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pymedplum._version import __version__

# Public names → the module defining them, imported on first access so `import pymedplum`
# stays cheap (no httpx, no pydantic until a name that needs them is used).
_LAZY: dict[str, str] = {
    "AuthenticationError": "pymedplum.exceptions",
    "AuthorizationError": "pymedplum.exceptions",
    "BadRequestError": "pymedplum.exceptions",
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
}

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "BadRequestError",
    "GoneError",
    "InsecureTransportError",
    "MedplumError",
    "NetworkError",
    "NotFoundError",
    "OperationOutcomeError",
    "PreconditionFailedError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "TokenRefreshCooldownError",
    "UnsafeRedirectError",
    "ValidationError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pymedplum' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:
    from pymedplum._retry import RetryPolicy
    from pymedplum.exceptions import (
        AuthenticationError,
        AuthorizationError,
        BadRequestError,
        GoneError,
        InsecureTransportError,
        MedplumError,
        NetworkError,
        NotFoundError,
        OperationOutcomeError,
        PreconditionFailedError,
        RateLimitError,
        ServerError,
        TokenRefreshCooldownError,
        UnsafeRedirectError,
        ValidationError,
    )

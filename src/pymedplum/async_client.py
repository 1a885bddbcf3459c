"""The contract's import path of the async client: ``from pymedplum.async_client import
AsyncMedplumClient``."""

from __future__ import annotations

from pymedplum._async.client import AsyncMedplumClient

__all__ = ["AsyncMedplumClient"]

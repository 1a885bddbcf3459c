"""get / post / put / delete with the contract's ``(path, **kwargs)`` signatures.

The runtime implements them (``AsyncBaseClient.get`` etc., with typed keywords); the generated
client exposes the contract's signatures and forwards here, so unknown keywords still raise
``TypeError`` from the runtime's method.
"""

from __future__ import annotations

from typing import Any

from pymedplum._async._overrides._dispatch import Dispatch


class LowLevelOverrides(Dispatch):
    """Bodies of get, post, put and delete."""

    async def _get(self, *, path: str, **kwargs: Any) -> Any:
        return await super().get(path, **kwargs)

    async def _post(self, *, path: str, json: Any, **kwargs: Any) -> Any:
        return await super().post(path, json, **kwargs)

    async def _put(self, *, path: str, json: Any, **kwargs: Any) -> Any:
        return await super().put(path, json, **kwargs)

    async def _delete(self, *, path: str, **kwargs: Any) -> Any:
        return await super().delete(path, **kwargs)

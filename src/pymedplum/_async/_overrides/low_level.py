"""get / post / put / delete with the contract's ``(path, **kwargs)`` signatures.

The runtime implements them (``AsyncBaseClient.get`` etc., with typed keywords); the generated
client exposes the contract's signatures (the keywords typed by ``RequestOptions`` /
``BodyRequestOptions``) and forwards here. An unknown keyword is refused here, so that the
``TypeError`` names the method the user called (``AsyncMedplumClient.get()``), not the
runtime's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymedplum._async._overrides._dispatch import Dispatch
from pymedplum.endpoint_types import BodyRequestOptions, RequestOptions


def _keys(options: type) -> frozenset[str]:
    # The TypedDict's keys (read from the class dict: mypy 2.4 crashes on the attribute).
    return frozenset(vars(options)["__optional_keys__"] | vars(options)["__required_keys__"])


_KEYWORDS = _keys(RequestOptions)
_BODY_KEYWORDS = _keys(BodyRequestOptions)


def _check_keywords(
    client: object, method: str, given: Mapping[str, Any], allowed: frozenset[str]
) -> None:
    unknown = [name for name in given if name not in allowed]
    if unknown:
        raise TypeError(
            f"{type(client).__name__}.{method}() got an unexpected keyword argument"
            f" {unknown[0]!r} (it takes {', '.join(sorted(allowed))})"
        )


class LowLevelOverrides(Dispatch):
    """Bodies of get, post, put and delete."""

    async def _get(self, *, path: str, **kwargs: Any) -> Any:
        _check_keywords(self, "get", kwargs, _KEYWORDS)
        return await super().get(path, **kwargs)

    async def _post(self, *, path: str, json: Any, **kwargs: Any) -> Any:
        _check_keywords(self, "post", kwargs, _BODY_KEYWORDS)
        return await super().post(path, json, **kwargs)

    async def _put(self, *, path: str, json: Any, **kwargs: Any) -> Any:
        _check_keywords(self, "put", kwargs, _BODY_KEYWORDS)
        return await super().put(path, json, **kwargs)

    async def _delete(self, *, path: str, **kwargs: Any) -> Any:
        _check_keywords(self, "delete", kwargs, _KEYWORDS)
        return await super().delete(path, **kwargs)

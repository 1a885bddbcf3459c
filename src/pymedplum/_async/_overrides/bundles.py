"""execute_batch (with per-entry account stamping) and execute_transaction (type coercion)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from pymedplum._async._overrides._dispatch import Dispatch
from pymedplum._endpoints import ENDPOINTS
from pymedplum._request_builders.accounts import stamp_bundle_accounts
from pymedplum._request_builders.bodies import refuse_subsetted_entries, resource_json
from pymedplum._serialization import model_parts


def _bundle_json(bundle: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    # A model's entries are kept as models, written one at a time: not dumped to a dict tree.
    parts = model_parts(bundle, min_length=1) if isinstance(bundle, BaseModel) else None
    data = parts or resource_json("bundle", bundle)
    if data.get("resourceType", "Bundle") != "Bundle":
        raise ValueError(f"bundle must be a Bundle, got resourceType {data.get('resourceType')!r}")
    refuse_subsetted_entries(data)
    return data


class BundleOverrides(Dispatch):
    """Bodies of execute_batch and execute_transaction."""

    async def _execute_batch(
        self,
        *,
        bundle: Mapping[str, Any] | BaseModel,
        accounts: str | Sequence[str] | None,
        on_behalf_of: str | None,
    ) -> dict[str, Any]:
        data = _bundle_json(bundle)
        if accounts is not None:
            data = stamp_bundle_accounts(data, accounts)
        # A Bundle without a type cannot be processed; "batch" is what this method means.
        data = {"resourceType": "Bundle", "type": "batch", **data}
        return await self._call_endpoint(
            ENDPOINTS["execute_batch"],
            {},
            json=data,
            on_behalf_of=on_behalf_of,
            convert=self._dict_response,
        )

    async def _execute_transaction(
        self, *, bundle: Mapping[str, Any] | BaseModel, on_behalf_of: str | None
    ) -> dict[str, Any]:
        data = {**_bundle_json(bundle), "resourceType": "Bundle", "type": "transaction"}
        return await self._call_endpoint(
            ENDPOINTS["execute_transaction"],
            {},
            json=data,
            on_behalf_of=on_behalf_of,
            convert=self._dict_response,
        )

"""set_accounts: Medplum's ``$set-accounts`` operation as a FHIR Parameters POST."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymedplum._async._overrides._dispatch import Dispatch
from pymedplum._endpoints import ENDPOINTS
from pymedplum._request_builders import account_references, split_reference


class AccountOverrides(Dispatch):
    """Body of set_accounts."""

    async def _set_accounts(
        self,
        *,
        resource_ref: str,
        account_refs: str | Sequence[str],
        propagate: bool,
        prefer_async: bool,
    ) -> dict[str, Any]:
        resource_type, resource_id = split_reference("resource_ref", resource_ref)
        if prefer_async and not propagate:
            # Medplum honours respond-async only with propagate: the answer would be the
            # synchronous Parameters, and a later wait_for_async_job would find no job.
            raise ValueError(
                "prefer_async=True needs propagate=True (Medplum ignores it otherwise)"
            )
        parameter: list[dict[str, Any]] = [
            {"name": "accounts", "valueReference": {"reference": ref}}
            for ref in account_references(account_refs)
        ]
        if propagate:
            parameter.append({"name": "propagate", "valueBoolean": True})
        response = await self._call_endpoint(
            ENDPOINTS["set_accounts"],
            {"resourceType": resource_type, "id": resource_id},
            json={"resourceType": "Parameters", "parameter": parameter},
            headers={"Prefer": "respond-async"} if prefer_async else None,
        )
        return self._dict_response(response)

"""set_accounts: Medplum's ``$set-accounts`` operation as a FHIR Parameters POST."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymedplum._async._overrides._dispatch import Dispatch
from pymedplum._endpoints import ENDPOINTS
from pymedplum._request_builders.accounts import account_references
from pymedplum._request_builders.paths import split_reference


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
        # The contract sends Prefer: respond-async whenever prefer_async is set; Medplum honours
        # it only with propagate, and otherwise answers synchronously with Parameters.
        # Exact duplicates sent once, order kept (as stamp_accounts does for accounts=).
        refs = dict.fromkeys(account_references(account_refs, "account_refs"))
        parameter: list[dict[str, Any]] = [
            {"name": "accounts", "valueReference": {"reference": ref}} for ref in refs
        ]
        if propagate:
            parameter.append({"name": "propagate", "valueBoolean": True})
        return await self._call_endpoint(
            ENDPOINTS["set_accounts"],
            {"resourceType": resource_type, "id": resource_id},
            json={"resourceType": "Parameters", "parameter": parameter},
            headers={"Prefer": "respond-async"} if prefer_async else None,
            convert=self._dict_response,
        )

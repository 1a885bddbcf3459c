"""create / conditional create / update: account stamping, If-None-Exist and If-Match rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from pymedplum._async._overrides._dispatch import Dispatch
from pymedplum._endpoints import ENDPOINTS
from pymedplum._request_builders import (
    has_header,
    merge_headers,
    normalize_if_none_exist,
    require_fields,
    resolve_if_match,
    resource_json,
    stamp_accounts,
)
from pymedplum.endpoint_types import ModelT


def _prepared(
    resource: Mapping[str, Any] | BaseModel, accounts: str | Sequence[str] | None
) -> dict[str, Any]:
    """The body to send: FHIR JSON, stamped with ``accounts`` on a copy."""
    data = resource_json("resource", resource)
    require_fields("resource", data, "resourceType")
    return data if accounts is None else stamp_accounts(data, accounts)


class ResourceOverrides(Dispatch):
    """Bodies of create_resource, create_resource_if_none_exist and update_resource."""

    async def _create_resource(
        self,
        *,
        resource: Mapping[str, Any] | BaseModel,
        headers: Mapping[str, str] | None,
        accounts: str | Sequence[str] | None,
        as_fhir: type[ModelT] | None,
        on_behalf_of: str | None,
    ) -> dict[str, Any] | ModelT:
        data = _prepared(resource, accounts)
        response = await self._call_endpoint(
            ENDPOINTS["create_resource"],
            {"resourceType": data["resourceType"]},
            json=data,
            headers=headers,
            on_behalf_of=on_behalf_of,
        )
        return self._model_response(response, as_fhir)

    async def _create_resource_if_none_exist(
        self,
        *,
        resource: Mapping[str, Any] | BaseModel,
        if_none_exist: str,
        headers: Mapping[str, str] | None,
        accounts: str | Sequence[str] | None,
        as_fhir: type[ModelT] | None,
        on_behalf_of: str | None,
    ) -> dict[str, Any] | ModelT:
        query = normalize_if_none_exist(if_none_exist, self._origin)
        data = _prepared(resource, accounts)
        response = await self._call_endpoint(
            ENDPOINTS["create_resource_if_none_exist"],
            {"resourceType": data["resourceType"]},
            json=data,
            headers=merge_headers({"If-None-Exist": query}, headers),
            on_behalf_of=on_behalf_of,
        )
        return self._model_response(response, as_fhir)

    async def _update_resource(
        self,
        *,
        resource: Mapping[str, Any] | BaseModel,
        headers: Mapping[str, str] | None,
        accounts: str | Sequence[str] | None,
        as_fhir: type[ModelT] | None,
        on_behalf_of: str | None,
        if_match: bool | str,
    ) -> dict[str, Any] | ModelT:
        data = resource_json("resource", resource)
        require_fields("resource", data, "resourceType", "id")
        version_tag = resolve_if_match(data, if_match)
        if accounts is not None:
            data = stamp_accounts(data, accounts)
        own = (
            {}
            if version_tag is None or has_header(headers, "If-Match")
            else {"If-Match": version_tag}
        )
        response = await self._call_endpoint(
            ENDPOINTS["update_resource"],
            {"resourceType": data["resourceType"], "id": data["id"]},
            json=data,
            headers=merge_headers(own, headers),
            on_behalf_of=on_behalf_of,
        )
        return self._model_response(response, as_fhir)

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

# The top-level elements the client reads from a resource before sending it.
_HEAD_FIELDS = {"resource_type", "resourceType", "id", "meta"}


def _prepared(
    resource: Mapping[str, Any] | BaseModel,
    accounts: str | Sequence[str] | None,
    *fields: str,
) -> tuple[dict[str, Any], dict[str, Any] | BaseModel]:
    """``(head, body)``: the resource's ``fields`` (checked) and ``meta``, and the body to send.

    A model sent as it is goes out as its own JSON (``model_dump_json``), without a detour
    through a dict (5x the cost on a large Bundle); only ``accounts`` needs the dict, to stamp
    a copy.
    """
    if isinstance(resource, BaseModel) and accounts is None:
        head: dict[str, Any] = resource.model_dump(
            mode="json", by_alias=True, exclude_none=True, include=_HEAD_FIELDS
        )
        require_fields("resource", head, *fields)
        return head, resource
    data = resource_json("resource", resource)
    require_fields("resource", data, *fields)
    return data, data if accounts is None else stamp_accounts(data, accounts)


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
        head, body = _prepared(resource, accounts, "resourceType")
        return await self._call_endpoint(
            ENDPOINTS["create_resource"],
            {"resourceType": head["resourceType"]},
            json=body,
            headers=headers,
            on_behalf_of=on_behalf_of,
            convert=lambda response: self._model_response(response, as_fhir),
        )

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
        head, body = _prepared(resource, accounts, "resourceType")
        return await self._call_endpoint(
            ENDPOINTS["create_resource_if_none_exist"],
            {"resourceType": head["resourceType"]},
            json=body,
            headers=merge_headers({"If-None-Exist": query}, headers),
            on_behalf_of=on_behalf_of,
            convert=lambda response: self._model_response(response, as_fhir),
        )

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
        head, body = _prepared(resource, accounts, "resourceType", "id")
        # An If-Match in headers wins: meta.versionId is then not read (nor checked).
        explicit = has_header(headers, "If-Match")
        version_tag = resolve_if_match(head, False if explicit and if_match is True else if_match)
        own = {} if version_tag is None or explicit else {"If-Match": version_tag}
        return await self._call_endpoint(
            ENDPOINTS["update_resource"],
            {"resourceType": head["resourceType"], "id": head["id"]},
            json=body,
            headers=merge_headers(own, headers),
            on_behalf_of=on_behalf_of,
            convert=lambda response: self._model_response(response, as_fhir),
        )

"""$expand, $lookup, $translate: GET with query parameters, or POST Parameters for objects.

All three only read, so their POST form is replay-safe too (``replay_safe: true`` in
specs/operations.yaml): a 503 on it is retried like the GET."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from pymedplum._async._overrides._dispatch import Dispatch
from pymedplum._endpoints import ENDPOINTS
from pymedplum._request_builders.paths import check_id
from pymedplum._request_builders.terminology import expand_params, lookup_request, translate_request


class TerminologyOverrides(Dispatch):
    """Bodies of expand_valueset, lookup_concept and translate_concept."""

    async def _expand_valueset(
        self,
        *,
        valueset_url: str | None,
        valueset_id: str | None,
        filter: str | None,
        offset: int | None,
        count: int | None,
        include_designations: bool | None,
        active_only: bool | None,
        exclude_nested: bool | None,
        exclude_not_for_ui: bool | None,
        exclude_post_coordinated: bool | None,
        display_language: str | None,
        property: Sequence[str] | None,
    ) -> dict[str, Any]:
        if valueset_url is None and valueset_id is None:
            raise ValueError("expand_valueset needs valueset_url or valueset_id")
        if valueset_url is not None and valueset_id is not None:
            # By id the ValueSet itself is sent; a url beside it could name another one.
            raise ValueError("expand_valueset takes valueset_url or valueset_id, not both")
        params, parameters = expand_params(
            valueset_url=valueset_url,
            filter=filter,
            offset=offset,
            count=count,
            include_designations=include_designations,
            active_only=active_only,
            exclude_nested=exclude_nested,
            exclude_not_for_ui=exclude_not_for_ui,
            exclude_post_coordinated=exclude_post_coordinated,
            display_language=display_language,
            property=property,
        )
        endpoint = ENDPOINTS["expand_valueset"]
        if valueset_id is None:
            return await self._call_endpoint(
                endpoint, {}, params=params, convert=self._dict_response
            )
        # Medplum routes $expand at the type level only: ValueSet/{id}/$expand answers 404
        # (packages/server/src/fhir/routes.ts). So the ValueSet is read and POSTed as the
        # valueSet parameter, which expands exactly that resource (a url could match another).
        valueset = await self._call_endpoint(
            ENDPOINTS["read_resource"],
            {"resourceType": "ValueSet", "id": check_id("valueset_id", valueset_id)},
            convert=self._dict_response,
        )
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": "valueSet", "resource": valueset}, *parameters],
        }
        return await self._call_endpoint(
            endpoint, {}, method="POST", json=body, convert=self._dict_response
        )

    async def _lookup_concept(
        self,
        *,
        code: str,
        system: str | None,
        codesystem_id: str | None,
        version: str | None,
        coding: Mapping[str, Any] | BaseModel | None,
        date: str | None,
        display_language: str | None,
        property: Sequence[str] | None,
    ) -> dict[str, Any]:
        params, body = lookup_request(
            code=code,
            system=system,
            codesystem_id=codesystem_id,
            version=version,
            coding=coding,
            date=date,
            display_language=display_language,
            property=property,
        )
        return await self._call_endpoint(
            ENDPOINTS["lookup_concept"],
            {"id": codesystem_id},
            method="GET" if body is None else "POST",
            params=params,
            json=body,
            convert=self._dict_response,
        )

    async def _translate_concept(
        self,
        *,
        code: str | None,
        system: str | None,
        conceptmap_url: str | None,
        conceptmap_id: str | None,
        version: str | None,
        source: str | None,
        target: str | None,
        coding: Mapping[str, Any] | BaseModel | None,
        codeable_concept: Mapping[str, Any] | BaseModel | None,
        target_system: str | None,
        reverse: bool | None,
    ) -> dict[str, Any]:
        params, body = translate_request(
            code=code,
            system=system,
            conceptmap_url=conceptmap_url,
            version=version,
            source=source,
            target=target,
            coding=coding,
            codeable_concept=codeable_concept,
            target_system=target_system,
            reverse=reverse,
        )
        return await self._call_endpoint(
            ENDPOINTS["translate_concept"],
            {"id": conceptmap_id},
            method="GET" if body is None else "POST",
            params=params,
            json=body,
            convert=self._dict_response,
        )

"""create / conditional create / update / patch / delete: account stamping, If-None-Exist and
If-Match rules."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from pymedplum._async._overrides._dispatch import Dispatch
from pymedplum._endpoints import ENDPOINTS
from pymedplum._request_builders.accounts import (
    account_references,
    stamp_accounts,
    stamp_model_accounts,
)
from pymedplum._request_builders.bodies import refuse_subsetted, require_fields, resource_json
from pymedplum._request_builders.conditional import (
    failed_version_test,
    if_match_version,
    normalize_if_none_exist,
    resolve_if_match,
    version_test_operation,
)
from pymedplum._request_builders.headers import has_header, header_value, merge_headers
from pymedplum._request_builders.patch import patch_operations
from pymedplum.endpoint_types import ModelT, PatchOperation
from pymedplum.exceptions import (
    MedplumError,
    NetworkError,
    OperationOutcomeError,
    PreconditionFailedError,
    TokenRefreshCooldownError,
)

# The top-level elements the client reads from a resource before sending it.
_HEAD_FIELDS = {"resource_type", "resourceType", "id", "meta"}


def _prepared(
    resource: Mapping[str, Any] | BaseModel,
    accounts: str | Sequence[str] | None,
    *fields: str,
) -> tuple[dict[str, Any], dict[str, Any] | BaseModel]:
    """``(head, body)``: the resource's ``fields`` (checked) and ``meta``, and the body to send.

    A model goes out as its own JSON (``model_dump_json``), without a detour through a dict (5x
    the cost on a large Bundle); with ``accounts``, as a shallow copy whose meta lists them.
    """
    if isinstance(resource, BaseModel):
        head: dict[str, Any] = resource.model_dump(
            mode="json", by_alias=True, exclude_none=True, include=_HEAD_FIELDS
        )
        require_fields("resource", head, *fields)
        if accounts is None:
            return head, resource
        stamped = stamp_model_accounts(resource, account_references(accounts))
        if stamped is not None:
            return head, stamped
    data = resource_json("resource", resource)
    require_fields("resource", data, *fields)
    return data, data if accounts is None else stamp_accounts(data, accounts)


def _precondition_failed(error: OperationOutcomeError, message: str) -> PreconditionFailedError:
    """``error`` (the server's answer) as a PreconditionFailedError saying what it means."""
    return PreconditionFailedError(
        message,
        outcome=error.outcome,
        status_code=error.status_code,
        response=error.response,
        method=error.method,
        path_template=error.path_template,
    )


def _stale_patch(error: OperationOutcomeError, *, version: str) -> OperationOutcomeError:
    """The 400 of a patch whose version test failed, as the PreconditionFailedError it means."""
    if error.status_code != 400 or not failed_version_test(error.outcome, version):
        return error
    return _precondition_failed(
        error,
        f"If-Match {version!r} is not the current version of the resource: nothing was patched "
        f"(HTTP 400 from {error.method} {error.path_template} for the JSON Patch test of "
        "/meta/versionId the SDK adds, as Medplum does not check If-Match on PATCH)",
    )


def _stale_update(error: OperationOutcomeError, *, if_match: str) -> OperationOutcomeError:
    """The 412 of an update, saying what it means: Medplum's own issue is only
    ``error/processing``."""
    if error.status_code != 412:
        return error
    return _precondition_failed(
        error,
        f"{error}; If-Match {if_match} is not the current version of the resource: nothing was "
        "updated (someone else wrote it since it was read). Read it again, re-apply the change "
        "and update that",
    )


class ResourceOverrides(Dispatch):
    """Bodies of create_resource, create_resource_if_none_exist, update_resource,
    patch_resource and delete_resource."""

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
        refuse_subsetted("resource", head)
        # An If-Match in headers wins: meta.versionId is then not read (nor checked).
        explicit = has_header(headers, "If-Match")
        version_tag = resolve_if_match(head, False if explicit and if_match is True else if_match)
        own = {} if version_tag is None or explicit else {"If-Match": version_tag}
        sent = merge_headers(own, headers)
        if_match_sent = header_value(sent, "If-Match")
        return await self._call_endpoint(
            ENDPOINTS["update_resource"],
            {"resourceType": head["resourceType"], "id": head["id"]},
            json=body,
            headers=sent,
            on_behalf_of=on_behalf_of,
            refine_error=None
            if if_match_sent is None
            else functools.partial(_stale_update, if_match=if_match_sent),
            convert=lambda response: self._model_response(response, as_fhir),
        )

    async def _patch_resource(
        self,
        *,
        resource_type: str,
        resource_id: str,
        operations: Sequence[PatchOperation | Mapping[str, Any]],
        headers: Mapping[str, str] | None,
        as_fhir: type[ModelT] | None,
        on_behalf_of: str | None,
    ) -> dict[str, Any] | ModelT:
        ops = patch_operations(operations)
        version = if_match_version(headers)
        refine = None
        if version is not None:
            # Medplum ignores If-Match on PATCH. A JSON Patch test of the version is the same
            # precondition, checked by the server atomically with the patch; the If-Match is
            # still sent, for servers that check it (they answer 412 first).
            ops = [version_test_operation(version), *ops]
            refine = functools.partial(_stale_patch, version=version)
        return await self._call_endpoint(
            ENDPOINTS["patch_resource"],
            {"resourceType": resource_type, "id": resource_id},
            json=ops,
            headers=merge_headers({"Content-Type": "application/json-patch+json"}, headers),
            on_behalf_of=on_behalf_of,
            refine_error=refine,
            convert=lambda response: self._model_response(response, as_fhir),
        )

    async def _delete_resource(
        self,
        *,
        resource_type: str,
        resource_id: str,
        headers: Mapping[str, str] | None,
        on_behalf_of: str | None,
    ) -> None:
        values = {"resourceType": resource_type, "id": resource_id}
        version = if_match_version(headers)
        check = None
        if version is not None:

            async def check() -> None:
                # Medplum ignores If-Match on DELETE and has no atomic alternative: read the
                # current version first (a write between this read and the delete goes unseen).
                # Run inside the delete's own call, so that its RequestEvent records the refusal.
                current = await self._current_version(values, headers, on_behalf_of)
                if current is not None and current != version:
                    raise PreconditionFailedError(
                        f"If-Match {version!r} is not the current version ({current!r}) of the "
                        "resource: nothing was deleted (Medplum does not check If-Match on "
                        "DELETE, so the SDK compares the version it reads first)",
                        method="DELETE",
                        path_template=f"{self._fhir_prefix}{resource_type}/{{id}}",
                    )

        await self._call_endpoint(
            ENDPOINTS["delete_resource"],
            values,
            headers=headers,
            on_behalf_of=on_behalf_of,
            precondition=check,
        )

    async def _current_version(
        self,
        values: Mapping[str, str],
        headers: Mapping[str, str] | None,
        on_behalf_of: str | None,
    ) -> str | None:
        """The ``meta.versionId`` the server has for a resource, read with the caller's headers
        (but If-Match) and On-Behalf-Of; ``None`` when the read answers an error or no version
        (the DELETE then goes out, and the server answers it as it does)."""
        others = {k: v for k, v in (headers or {}).items() if k.lower() != "if-match"}
        try:
            # Read inside the call, as every endpoint's answer is: one it cannot use is the
            # read's RequestEvent's final_exception, not a success.
            body = await self._call_endpoint(
                ENDPOINTS["read_resource"],
                values,
                headers=others or None,
                on_behalf_of=on_behalf_of,
                convert=self._dict_response,
            )
        except (NetworkError, TokenRefreshCooldownError):
            raise  # the DELETE could not go out either
        except MedplumError:  # an error answer, a redirect, a body that is no JSON object
            return None
        meta = body.get("meta")
        version = meta.get("versionId") if isinstance(meta, Mapping) else None
        return version if isinstance(version, str) else None

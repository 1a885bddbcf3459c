"""ProjectMembership.access merge / add / remove: read, plan, PUT with If-Match, bounded 412 loop.

The plans are the pure ``plan_merge`` / ``plan_add`` / ``plan_remove`` of ``pymedplum.access``;
this module adds the I/O and the retry loop. Each attempt re-reads the membership and re-plans,
so a concurrent writer's change is kept. Membership administration runs as the calling
credential (On-Behalf-Of is cleared for these requests): acting as the member would let a
membership edit its own access.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from pymedplum._async._overrides._dispatch import Dispatch
from pymedplum._endpoints import ENDPOINTS
from pymedplum._request_builders.paths import check_id
from pymedplum.access import (
    AccessPlan,
    MergeResult,
    _validate_managed_entry,
    merged_equals_remote,
    normalize_project_membership_id,
    plan_add,
    plan_merge,
    plan_remove,
    require_version_id,
    validate_managed_access,
    would_grant_unrestricted_access,
)
from pymedplum.endpoint_types import ProjectMembershipAccessLike
from pymedplum.exceptions import PreconditionFailedError

Planner = Callable[[Sequence[Any] | None], AccessPlan]


def _check_max_retries(max_retries: int) -> None:
    # managed_policy_ids is checked by the pure validators of pymedplum.access, called next.
    if isinstance(max_retries, bool) or not isinstance(max_retries, int):
        # By type only: a resource passed here by mistake would be printed whole.
        raise TypeError(f"max_retries must be an int >= 0, got {type(max_retries).__name__}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries}")


class AccessOverrides(Dispatch):
    """Bodies of merge_project_membership_access and the add/remove entry methods."""

    async def _sync_membership_access(
        self, membership_id: str, plan: Planner, *, force: bool, max_retries: int
    ) -> MergeResult:
        """Read, plan, write back with If-Match; on 412 re-read and re-plan, max_retries times."""
        bare_id = check_id("membership_id", normalize_project_membership_id(membership_id))
        values = {"resourceType": "ProjectMembership", "id": bare_id}
        conflicts = 0
        while True:
            membership = await self._call_endpoint(
                ENDPOINTS["read_resource"], values, on_behalf_of="", convert=self._dict_response
            )
            version = require_version_id(membership)
            remote = membership.get("access")
            merged, managed_count, untouched_count = plan(remote)
            if not force and merged_equals_remote(merged, remote):
                return MergeResult(False, version, managed_count, untouched_count)
            if would_grant_unrestricted_access(membership, merged):
                # Medplum gives a membership with neither access nor accessPolicy the whole
                # project: this "lockout" would widen access instead of revoking it.
                raise ValueError(
                    f"refusing to empty the access of ProjectMembership/{bare_id}: it has no "
                    "accessPolicy, and Medplum grants such a membership unrestricted project "
                    "access. Set an accessPolicy on it first."
                )
            try:
                written = await self._call_endpoint(
                    ENDPOINTS["merge_project_membership_access"],
                    values,
                    json={**membership, "access": merged},
                    headers={"If-Match": f'W/"{version}"'},
                    on_behalf_of="",
                    convert=self._dict_response,
                )
            except PreconditionFailedError:
                if conflicts >= max_retries:
                    raise
                conflicts += 1
                continue
            new_version = require_version_id(written)
            return MergeResult(True, new_version, managed_count, untouched_count)

    async def _merge_project_membership_access(
        self,
        *,
        membership_id: str,
        managed_access: Sequence[ProjectMembershipAccessLike],
        managed_policy_ids: AbstractSet[str],
        force: bool,
        max_retries: int,
    ) -> MergeResult:
        _check_max_retries(max_retries)
        validate_managed_access(managed_access, managed_policy_ids)
        return await self._sync_membership_access(
            membership_id,
            lambda remote: plan_merge(remote, managed_access, managed_policy_ids),
            force=force,
            max_retries=max_retries,
        )

    async def _add_project_membership_access_entry(
        self,
        *,
        membership_id: str,
        entry: ProjectMembershipAccessLike,
        managed_policy_ids: AbstractSet[str],
        force: bool,
        max_retries: int,
    ) -> MergeResult:
        _check_max_retries(max_retries)
        _validate_managed_entry(entry, managed_policy_ids)
        return await self._sync_membership_access(
            membership_id,
            lambda remote: plan_add(remote, entry, managed_policy_ids),
            force=force,
            max_retries=max_retries,
        )

    async def _remove_project_membership_access_entry(
        self,
        *,
        membership_id: str,
        entry: ProjectMembershipAccessLike,
        managed_policy_ids: AbstractSet[str],
        force: bool,
        max_retries: int,
    ) -> MergeResult:
        _check_max_retries(max_retries)
        _validate_managed_entry(entry, managed_policy_ids)
        return await self._sync_membership_access(
            membership_id,
            lambda remote: plan_remove(remote, entry, managed_policy_ids),
            force=force,
            max_retries=max_retries,
        )

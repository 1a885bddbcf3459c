"""ProjectMembership access merge / add / remove on both clients: reads, If-Match PUTs,
idempotence, force, the bounded 412 loop, and argument checks before any request."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pymedplum import MergeResult, make_project_membership_access
from pymedplum.exceptions import PreconditionFailedError

from .conftest import FHIR, json_response, outcome

pytestmark = pytest.mark.anyio

A = make_project_membership_access(
    "AccessPolicy/practice-policy", {"organization": "Organization/a"}
)
B = make_project_membership_access(
    "AccessPolicy/practice-policy", {"organization": "Organization/b"}
)
ADMIN = make_project_membership_access("AccessPolicy/admin-edit", {})
IDS = {"practice-policy"}


class Membership:
    """A fake server holding one ProjectMembership; ``conflicts`` PUTs answer 412 first."""

    def __init__(self, access: list[Any], *, conflicts: int = 0, policy: bool = True) -> None:
        self.resource: dict[str, Any] = {
            "resourceType": "ProjectMembership",
            "id": "alice",
            "meta": {"versionId": "1"},
            "access": access,
        }
        if policy:
            self.resource["accessPolicy"] = {"reference": "AccessPolicy/base"}
        self.conflicts = conflicts
        self.puts: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/fhir/R4/ProjectMembership/alice"
        assert "X-Medplum-On-Behalf-Of" not in request.headers
        if request.method == "GET":
            return json_response(200, self.resource)
        assert request.method == "PUT"
        body = json.loads(request.content)
        self.puts.append({"if_match": request.headers.get("If-Match"), "body": body})
        if self.conflicts:
            self.conflicts -= 1
            # Someone else wrote meanwhile: the version moves on.
            version = str(int(self.resource["meta"]["versionId"]) + 1)
            self.resource = {**self.resource, "meta": {"versionId": version}}
            return json_response(412, outcome("conflict"))
        version = str(int(self.resource["meta"]["versionId"]) + 1)
        self.resource = {**body, "meta": {"versionId": version}}
        return json_response(200, self.resource)


async def test_merge_replaces_the_managed_slice_and_keeps_the_rest(make: Any) -> None:
    server = Membership([ADMIN, A])
    h = make(server)
    result = await h.call(
        "merge_project_membership_access",
        "alice",
        managed_access=[A, B],
        managed_policy_ids=IDS,
    )
    assert result == MergeResult(updated=True, version_id="2", managed_count=2, untouched_count=1)
    assert server.puts[0]["if_match"] == 'W/"1"'
    assert server.puts[0]["body"]["access"] == [ADMIN, A, B]
    assert server.puts[0]["body"]["accessPolicy"] == {"reference": "AccessPolicy/base"}
    assert [r.method for r in h.requests] == ["GET", "PUT"]


async def test_merge_skips_the_put_when_nothing_changes(make: Any) -> None:
    server = Membership([ADMIN, A])
    h = make(server)
    result = await h.call(
        "merge_project_membership_access",
        "ProjectMembership/alice",
        managed_access=[A],
        managed_policy_ids=IDS,
    )
    assert result == MergeResult(updated=False, version_id="1", managed_count=1, untouched_count=1)
    assert [r.method for r in h.requests] == ["GET"]


async def test_merge_force_writes_anyway(make: Any) -> None:
    server = Membership([A])
    h = make(server)
    result = await h.call(
        "merge_project_membership_access",
        "alice",
        managed_access=[A],
        managed_policy_ids=IDS,
        force=True,
    )
    assert result.updated and result.version_id == "2"
    assert len(server.puts) == 1


async def test_merge_retries_after_a_412_with_a_fresh_read(make: Any) -> None:
    server = Membership([A], conflicts=1)
    h = make(server)
    result = await h.call(
        "merge_project_membership_access", "alice", managed_access=[B], managed_policy_ids=IDS
    )
    assert result.updated and result.version_id == "3"
    assert [r.method for r in h.requests] == ["GET", "PUT", "GET", "PUT"]
    assert [p["if_match"] for p in server.puts] == ['W/"1"', 'W/"2"']


@pytest.mark.parametrize("max_retries", [0, 1, 2])
async def test_merge_gives_up_after_max_retries(make: Any, max_retries: int) -> None:
    server = Membership([A], conflicts=10)
    h = make(server)
    with pytest.raises(PreconditionFailedError):
        await h.call(
            "merge_project_membership_access",
            "alice",
            managed_access=[B],
            managed_policy_ids=IDS,
            max_retries=max_retries,
        )
    assert len(server.puts) == max_retries + 1


async def test_merge_clears_on_behalf_of(make: Any) -> None:
    server = Membership([A])
    h = make(server, default_on_behalf_of="ProjectMembership/other")
    await h.call(
        "merge_project_membership_access", "alice", managed_access=[], managed_policy_ids=IDS
    )
    assert server.puts[0]["body"]["access"] == []


async def test_merge_refuses_to_empty_a_membership_without_access_policy(make: Any) -> None:
    server = Membership([A], policy=False)
    h = make(server)
    with pytest.raises(ValueError, match="accessPolicy"):
        await h.call(
            "merge_project_membership_access", "alice", managed_access=[], managed_policy_ids=IDS
        )
    assert server.puts == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"managed_access": [A], "managed_policy_ids": set()}, "managed_policy_ids"),
        ({"managed_access": [ADMIN], "managed_policy_ids": IDS}, "not in managed_policy_ids"),
        ({"managed_access": [A], "managed_policy_ids": IDS, "max_retries": -1}, "max_retries"),
    ],
)
async def test_merge_rejects_bad_arguments_before_any_request(
    make: Any, kwargs: dict[str, Any], message: str
) -> None:
    h = make(Membership([A]))
    with pytest.raises(ValueError, match=message):
        await h.call("merge_project_membership_access", "alice", **kwargs)
    assert h.requests == []


@pytest.mark.parametrize(
    "method",
    [
        "merge_project_membership_access",
        "add_project_membership_access_entry",
        "remove_project_membership_access_entry",
    ],
)
@pytest.mark.parametrize("ids", ["practice-policy", None])
async def test_managed_policy_ids_of_the_wrong_type_is_a_type_error(
    make: Any, method: str, ids: Any
) -> None:
    # The same TypeError as pymedplum.access.validate_managed_access gives (a str is not a
    # set of ids), not a ValueError from a second, client-side check.
    h = make(Membership([A]))
    args = {"managed_access": [A]} if method.startswith("merge") else {"entry": A}
    with pytest.raises(TypeError, match=r"^managed_policy_ids must be a set of AccessPolicy ids"):
        await h.call(method, "alice", **args, managed_policy_ids=ids)
    assert h.requests == []


async def test_merge_rejects_a_bad_membership_id(make: Any) -> None:
    h = make(Membership([A]))
    with pytest.raises(ValueError, match="membership_id"):
        await h.call(
            "merge_project_membership_access",
            "Patient/alice",
            managed_access=[],
            managed_policy_ids=IDS,
        )
    assert h.requests == []


async def test_merge_needs_the_remote_version(make: Any) -> None:
    resource = {"resourceType": "ProjectMembership", "id": "alice", "access": []}
    h = make(lambda request: json_response(200, resource))
    with pytest.raises(ValueError, match="versionId"):
        await h.call(
            "merge_project_membership_access", "alice", managed_access=[A], managed_policy_ids=IDS
        )
    assert [r.method for r in h.requests] == ["GET"]


async def test_add_appends_once(make: Any) -> None:
    server = Membership([ADMIN, A])
    h = make(server)
    result = await h.call("add_project_membership_access_entry", "alice", B, managed_policy_ids=IDS)
    assert result == MergeResult(True, "2", 2, 1)
    assert server.resource["access"] == [ADMIN, A, B]
    again = await h.call("add_project_membership_access_entry", "alice", B, managed_policy_ids=IDS)
    assert again == MergeResult(False, "2", 2, 1)
    assert len(server.puts) == 1


async def test_add_keeps_a_concurrent_writers_entry(make: Any) -> None:
    server = Membership([A], conflicts=1)
    original_call = server.__call__

    def handler(request: httpx.Request) -> httpx.Response:
        response = original_call(request)
        if response.status_code == 412:
            # The concurrent writer added B; our retry must keep it.
            server.resource = {**server.resource, "access": [A, B]}
        return response

    h = make(handler)
    c = make_project_membership_access("practice-policy", {"organization": "Organization/c"})
    await h.call("add_project_membership_access_entry", "alice", c, managed_policy_ids=IDS)
    assert server.resource["access"] == [A, B, c]
    assert [r.method for r in h.requests] == ["GET", "PUT", "GET", "PUT"]


async def test_remove_drops_only_managed_matches(make: Any) -> None:
    foreign_twin = {**A, "policy": {"reference": "AccessPolicy/admin-edit"}}
    server = Membership([foreign_twin, A, B])
    h = make(server)
    result = await h.call(
        "remove_project_membership_access_entry", "alice", A, managed_policy_ids=IDS
    )
    assert result == MergeResult(True, "2", 1, 1)
    assert server.resource["access"] == [foreign_twin, B]
    again = await h.call(
        "remove_project_membership_access_entry", "alice", A, managed_policy_ids=IDS
    )
    assert again.updated is False
    assert len(server.puts) == 1


async def test_remove_rejects_an_unmanaged_entry(make: Any) -> None:
    h = make(Membership([ADMIN]))
    with pytest.raises(ValueError):
        await h.call(
            "remove_project_membership_access_entry", "alice", ADMIN, managed_policy_ids=IDS
        )
    assert h.requests == []


@pytest.mark.parametrize(
    "method", ["add_project_membership_access_entry", "remove_project_membership_access_entry"]
)
@pytest.mark.parametrize(
    ("entry", "error", "message"),
    [
        (ADMIN, ValueError, r"^entry references AccessPolicy/admin-edit, which is not in"),
        ({"parameter": []}, ValueError, r"^entry has no AccessPolicy reference"),
        ("AccessPolicy/practice-policy", TypeError, r"^entry must be a dict or a pydantic model"),
        ({"policy": {"reference": object()}}, TypeError, r"^entry\.policy\.reference "),
    ],
)
async def test_entry_errors_name_the_entry_argument(
    make: Any, method: str, entry: Any, error: type[Exception], message: str
) -> None:
    # These methods take one ``entry``: the messages must not name ``managed_access[0]``.
    h = make(Membership([A]))
    with pytest.raises(error, match=message):
        await h.call(method, "alice", entry, managed_policy_ids=IDS)
    assert h.requests == []


async def test_membership_url(make: Any) -> None:
    server = Membership([])
    h = make(server)
    await h.call("add_project_membership_access_entry", "alice", A, managed_policy_ids=IDS)
    assert str(h.last.url) == FHIR + "ProjectMembership/alice"

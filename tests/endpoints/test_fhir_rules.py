"""The FHIR id and resource type rules are one rule (pymedplum._fhir_rules): every entry point
that takes or parses an id or a type name accepts and refuses exactly the same strings."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from pymedplum import access
from pymedplum._obo import normalize_membership
from pymedplum.helpers.references import build_reference, parse_reference

from .conftest import FHIR, json_response

pytestmark = pytest.mark.anyio

VALID_IDS = ["a", "0", "A-b.9", "x" * 64, "urn-uuid-1.2"]
INVALID_IDS = ["x" * 65, "a b", "a/b", "a_b", "é", "a?b", "a#b", "a%20", "a\nb", "a:b"]
VALID_TYPES = ["Patient", "P", "ProjectMembership", "MedicinalProductAuthorization"]
INVALID_TYPES = ["patient", "Patient1", "Pat_ient", "1Patient", "Pati ent", "P" * 256, "Pätient"]


async def read_accepts(make: Any, resource_type: str, resource_id: str) -> bool:
    h = make(lambda request: json_response(200, {"resourceType": resource_type, "id": "x"}))
    try:
        await h.call("read_resource", resource_type, resource_id)
    except ValueError:
        assert h.requests == []  # refused before sending
        return False
    assert str(h.last.url) == f"{FHIR}{resource_type}/{resource_id}"
    return True


def reference_accepts(resource_type: str, resource_id: str) -> bool:
    try:
        built = build_reference(resource_type, resource_id)
    except ValueError:
        with pytest.raises(ValueError):
            parse_reference(f"{resource_type}/{resource_id}")
        return False
    assert parse_reference(built) == (resource_type, resource_id)
    return True


def obo_accepts(resource_type: str, resource_id: str) -> bool:
    reference = f"{resource_type}/{resource_id}"
    try:
        assert normalize_membership(reference) == reference
    except ValueError:
        return False
    return True


def location_accepts(resource_type: str, resource_id: str) -> bool:
    from pymedplum._async._overrides._dispatch import _from_location as async_parse
    from pymedplum._sync._overrides._dispatch import _from_location as sync_parse

    request = httpx.Request("POST", FHIR + resource_type)
    # Percent-encoded as a server would send it; the client parses the decoded path.
    segment = quote(resource_id, safe="")
    location = f"{FHIR}{quote(resource_type, safe='')}/{segment}/_history/{segment}"
    response = httpx.Response(201, headers={"Location": location}, request=request)
    parsed = async_parse(response)
    assert sync_parse(response) == parsed
    if not parsed:
        return False
    assert parsed == {
        "resourceType": resource_type,
        "id": resource_id,
        "meta": {"versionId": resource_id},
    }
    return True


@pytest.mark.parametrize("resource_id", VALID_IDS + INVALID_IDS)
async def test_one_id_rule_everywhere(make: Any, resource_id: str) -> None:
    expected = resource_id in VALID_IDS
    assert await read_accepts(make, "Patient", resource_id) is expected
    assert reference_accepts("Patient", resource_id) is expected
    assert obo_accepts("Practitioner", resource_id) is expected
    assert location_accepts("Patient", resource_id) is expected
    for check in (access.normalize_project_membership_id, access.normalize_access_policy_id):
        if expected:
            assert check(resource_id) == resource_id
        else:
            with pytest.raises(ValueError):
                check(resource_id)
    if expected:
        assert normalize_membership(resource_id) == f"ProjectMembership/{resource_id}"
    else:
        with pytest.raises(ValueError, match="membership"):
            normalize_membership(resource_id)


@pytest.mark.parametrize("resource_type", VALID_TYPES + INVALID_TYPES)
async def test_one_resource_type_rule_everywhere(make: Any, resource_type: str) -> None:
    expected = resource_type in VALID_TYPES
    assert await read_accepts(make, resource_type, "1") is expected
    assert reference_accepts(resource_type, "1") is expected
    assert obo_accepts(resource_type, "1") is expected
    assert location_accepts(resource_type, "1") is expected


@pytest.mark.parametrize("resource_id", [".", "..", "..."])
async def test_an_all_dots_id_is_a_fhir_id_but_never_a_path_segment(
    make: Any, resource_id: str
) -> None:
    # On purpose: "Patient/.." is a valid reference string, but as a URL it is the server root.
    assert reference_accepts("Patient", resource_id)
    assert obo_accepts("ProjectMembership", resource_id)
    assert not await read_accepts(make, "Patient", resource_id)


@pytest.mark.parametrize("bad", [123, None, b"1", ["1"]])
async def test_an_id_or_type_of_the_wrong_type_is_a_type_error_everywhere(
    make: Any, bad: object
) -> None:
    h = make(lambda request: json_response(200, {"resourceType": "Patient", "id": "1"}))
    with pytest.raises(TypeError, match=r"^resource_id "):
        await h.call("read_resource", "Patient", bad)
    with pytest.raises(TypeError, match=r"^resource_type "):
        await h.call("read_resource", bad, "1")
    with pytest.raises(TypeError, match=r"^resource_id "):
        build_reference("Patient", bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^membership_id "):
        access.normalize_project_membership_id(bad)  # type: ignore[arg-type]
    assert h.requests == []

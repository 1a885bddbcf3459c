"""Bad arguments fail before anything is sent, with a TypeError / ValueError naming them."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest

from tests.qa.conftest import QA

pytestmark = pytest.mark.anyio

PATIENT = {"resourceType": "Patient", "id": "1"}

AS_FHIR_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("read_resource", ("Patient", "1"), {}),
    ("vread_resource", ("Patient", "1", "2"), {}),
    ("create_resource", ({"resourceType": "Patient"},), {}),
    ("create_resource_if_none_exist", ({"resourceType": "Patient"}, "identifier=a|b"), {}),
    ("update_resource", (PATIENT,), {}),
    ("patch_resource", ("Patient", "1", []), {}),
    ("search_resources", ("Patient",), {"return_bundle": True}),
    ("search_with_options", ("Patient",), {"return_bundle": True}),
]


@pytest.mark.parametrize("bad", [dict, "Patient", 42])
@pytest.mark.parametrize(
    ("method", "args", "kwargs"), AS_FHIR_CALLS, ids=[c[0] for c in AS_FHIR_CALLS]
)
async def test_as_fhir_must_be_a_model_class_checked_before_sending(
    qa: QA, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], bad: Any
) -> None:
    client = qa.client()
    with pytest.raises(TypeError, match="as_fhir"):
        await qa.call(client, method, *args, as_fhir=bad, **kwargs)
    assert qa.requests == []  # a create must not be sent and then fail on the answer


@pytest.mark.parametrize(
    ("method", "args", "kwargs"), AS_FHIR_CALLS, ids=[c[0] for c in AS_FHIR_CALLS]
)
async def test_as_fhir_given_a_resource_names_its_class_not_its_content(
    qa: QA, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    # as_fhir=patient (the instance, not the class) put the whole resource's repr, names and
    # identifiers included, in the message.
    from pymedplum.fhir import HumanName, Patient

    client = qa.client()
    patient = Patient(id="1", name=[HumanName(family="Secretname")])
    with pytest.raises(TypeError) as info:
        await qa.call(client, method, *args, as_fhir=patient, **kwargs)
    assert "got a Patient instance; pass the class itself (Patient)" in str(info.value)
    assert "Secretname" not in str(info.value)
    assert qa.requests == []


def test_fhir_bundle_as_fhir_given_a_resource_names_its_class_not_its_content() -> None:
    from pymedplum import FHIRBundle
    from pymedplum.fhir import HumanName, Patient

    patient = Patient(id="1", name=[HumanName(family="Secretname")])
    with pytest.raises(TypeError, match="got a Patient instance") as info:
        FHIRBundle({"resourceType": "Bundle"}, as_fhir=patient)  # type: ignore[arg-type]
    assert "Secretname" not in str(info.value)


async def test_as_fhir_for_search_resource_pages(qa: QA) -> None:
    client = qa.client()
    with pytest.raises(TypeError, match="as_fhir"):  # at the call, before iterating
        client.search_resource_pages("Patient", as_fhir=dict)  # type: ignore[call-overload]
    assert qa.requests == []


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("patient",), ValueError, "resource_type must be a resource type name"),
        (("Patient", 5), TypeError, "query must be a mapping"),
        (("Patient", {"": "x"}), ValueError, "search parameter names must not be empty"),
        (("Patient", {"family": object()}), TypeError, "search parameter 'family' values"),
    ],
)
async def test_search_resource_pages_checks_its_type_and_query_at_the_call(
    qa: QA, args: tuple[object, ...], error: type[Exception], message: str
) -> None:
    # The docs say its arguments are checked when it is called; the type and the query were
    # checked only when the first page was fetched, away from the call that was wrong.
    client = qa.client()
    with pytest.raises(error, match=message):
        client.search_resource_pages(*args)  # type: ignore[call-overload]
    assert qa.requests == []


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("read_resource", ("Patient?name=Secretname", "1")),
        ("read_resource", ("Patient/Secretname", "1")),
        ("read_resource", ("secretname-123", "1")),
        ("search_resources", ("Patient?name=Secretname",)),
        ("delete_resource", ("Patient/Secretname", "1")),
    ],
)
async def test_a_resource_type_that_is_no_type_name_is_described_not_shown(
    qa: QA, method: str, args: tuple[object, ...]
) -> None:
    # A search or an identifier passed as the resource type (the type and the id swapped, a
    # query for a type) is PHI: the message says what is wrong with it, as for an id, and
    # never repeats it.
    client = qa.client()
    with pytest.raises(ValueError, match="resource_type must be a resource type name") as info:
        await qa.call(client, method, *args)
    assert "ecretname" not in str(info.value)
    assert "not allowed" in str(info.value) or "upper-case letter" in str(info.value)
    assert qa.requests == []


async def test_search_resource_pages_as_fhir_of_another_type(qa: QA) -> None:
    # It yields only the matches, all of the searched type: a model of another type failed on
    # the first page with pydantic's "resourceType: Input should be 'Patient'".
    from pymedplum.fhir import Observation, Patient

    client = qa.client()
    message = r"as_fhir=Patient reads Patient resources, but this request is for Observation"
    with pytest.raises(ValueError, match=message):  # at the call, before iterating
        client.search_resource_pages("Observation", as_fhir=Patient)
    assert qa.requests == []
    qa.handler = lambda request: httpx.Response(200, json={"resourceType": "Bundle"})
    items = client.search_resource_pages("Observation", as_fhir=Observation)
    if qa.flavour == "async":
        assert [x async for x in items] == []  # type: ignore[union-attr]
    else:
        assert list(items) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "operations",
    [
        {"op": "replace", "path": "/active", "value": False},
        "[{'op': 'remove'}]",
        [{"path": "/active"}],
        [{"op": "replace"}],
        ["replace"],
    ],
)
async def test_patch_operations_are_checked(qa: QA, operations: Any) -> None:
    client = qa.client()
    with pytest.raises((TypeError, ValueError), match="operations"):
        await qa.call(client, "patch_resource", "Patient", "1", operations)
    assert qa.requests == []


@pytest.mark.parametrize(
    ("operation", "needs"),
    [
        ({"op": "replace", "path": "/active"}, "'value'"),
        ({"op": "add", "path": "/name/-"}, "'value'"),
        ({"op": "test", "path": "/meta/versionId"}, "'value'"),
        ({"op": "move", "path": "/a"}, "'from'"),
        ({"op": "copy", "path": "/a", "from": 1}, "'from'"),
    ],
)
async def test_patch_operation_missing_its_value_or_from(
    qa: QA, operation: dict[str, Any], needs: str
) -> None:
    # Medplum applies {"op": "replace", "path": "/active"} as a removal of `active`: a typo
    # must not delete data, so the member RFC 6902 requires is checked before sending.
    client = qa.client()
    ops = [{"op": "replace", "path": "/active", "value": True}, operation]
    message = rf"operations\[1\] \('{operation['op']}'\) needs a {needs}"
    with pytest.raises(ValueError, match=message):
        await qa.call(client, "patch_resource", "Patient", "1", ops)
    assert qa.requests == []


async def test_patch_operations_with_null_value_and_remove_are_sent(qa: QA) -> None:
    client = qa.client()
    ops = [
        {"op": "remove", "path": "/active"},
        {"op": "add", "path": "/extension", "value": None},
        {"op": "move", "path": "/b", "from": "/a"},
    ]
    await qa.call(client, "patch_resource", "Patient", "1", ops)
    assert len(qa.requests) == 1


async def test_patch_operations_sent_as_given(qa: QA) -> None:
    import json

    client = qa.client()
    ops = ({"op": "replace", "path": "/active", "value": False},)
    await qa.call(client, "patch_resource", "Patient", "1", ops)
    assert json.loads(qa.requests[-1].content) == [ops[0]]
    assert qa.requests[-1].headers["Content-Type"].startswith("application/json-patch+json")


BAD_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any], str]] = [
    ("execute_graphql", (123,), {}, "query"),
    ("execute_graphql", ("",), {}, "query"),
    ("execute_graphql", ("{ x }",), {"variables": "a=1"}, "variables"),
    ("search_with_options", ("Patient",), {"summary": "bogus"}, "summary"),
    ("search_with_options", ("Patient",), {"total": "bogus"}, "total"),
    ("search_with_options", ("Patient",), {"count": "x"}, "count"),
    ("search_with_options", ("Patient",), {"count": -1}, "count"),
    ("search_with_options", ("Patient",), {"offset": 1.5}, "offset"),
    ("create_resource", ({"resourceType": "Patient"},), {"accounts": 5}, "accounts"),
    ("upload_binary", (b"x", ""), {}, "content_type"),
    ("upload_binary", (b"x", None), {}, "content_type"),
    # httpx takes these as content: None uploaded an empty Binary, a str its UTF-8.
    ("upload_binary", (None, "text/plain"), {}, "content must be bytes, got NoneType"),
    ("upload_binary", ("text", "text/plain"), {}, r"content must be bytes, got str \(encode"),
    ("upload_binary", ({"a": 1}, "text/plain"), {}, "content must be bytes, got dict"),
    ("upload_binary", (io.BytesIO(b"x"), "text/plain"), {}, r"got BytesIO \(pass the file's"),
    ("wait_for_async_job", ("job1",), {"timeout": "soon"}, "timeout"),
    ("wait_for_async_job", ("job1",), {"poll_interval": "1"}, "poll_interval"),
]


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "argument"),
    BAD_CALLS,
    ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(BAD_CALLS)],
)
async def test_bad_argument_named_and_nothing_sent(
    qa: QA, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], argument: str
) -> None:
    client = qa.client()
    with pytest.raises((TypeError, ValueError), match=argument):
        await qa.call(client, method, *args, **kwargs)
    assert qa.requests == []


@pytest.mark.parametrize("content", [b"%PDF\x00\xff", bytearray(b"%PDF\x00\xff")])
async def test_upload_binary_sends_bytes_like_content_unchanged(qa: QA, content: Any) -> None:
    # A bytearray failed inside httpx ("object of type 'int' has no len()").
    client = qa.client()
    await qa.call(client, "upload_binary", content, "application/pdf")
    await qa.call(client, "upload_binary", memoryview(content), "application/pdf")
    assert [r.content for r in qa.requests] == [b"%PDF\x00\xff"] * 2


async def test_set_accounts_given_a_resource_names_its_type_not_its_content(qa: QA) -> None:
    # set_accounts(patient, ...) put the resource's whole repr (names included) in a ValueError.
    from pymedplum.fhir import HumanName, Patient

    client = qa.client()
    patient = Patient(id="1", name=[HumanName(family="Secretname")])
    for bad, shown in (
        (patient, "Patient"),
        (None, "NoneType"),
        ({"reference": "Patient/1"}, "dict"),
    ):
        with pytest.raises(TypeError) as info:
            await qa.call(client, "set_accounts", bad, "Organization/o")
        assert str(info.value) == (
            f"resource_ref must be a reference str like 'Patient/123', got {shown}"
        )
    assert qa.requests == []


async def test_accounts_given_models_or_dicts_names_their_type_not_their_content(qa: QA) -> None:
    # accounts=org (a model iterates over its fields) and accounts=[org] gave ValueErrors
    # showing a (field, value) pair or the whole resource's repr.
    from pymedplum.fhir import Organization, Reference

    client = qa.client()
    org = Organization(id="o", name="Secret Clinic")
    cases = [
        (org, "accounts must be a reference like 'Organization/abc' or a list of them, "
              "got Organization"),
        (Reference(reference="Organization/o"), "accounts must be a reference like "
              "'Organization/abc' or a list of them, got Reference"),
        ([org], "accounts[0] must be a reference str like 'Organization/abc', got Organization"),
        (["Organization/a", {"reference": "Organization/o"}],
         "accounts[1] must be a reference str like 'Organization/abc', got dict"),
    ]  # fmt: skip
    for accounts, message in cases:
        with pytest.raises(TypeError) as info:
            await qa.call(client, "create_resource", {"resourceType": "Patient"}, accounts=accounts)
        assert str(info.value) == message
    assert qa.requests == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ([("family", "Secretname", "x")], "query[0] must be a (name, value) pair, got a tuple of 3"
                                          " items"),
        ([("_count", 1), "family=Secretname"], "query[1] must be a (name, value) pair, got str"),
        ([{"family": "Secretname"}], "query[0] must be a (name, value) pair, got dict"),
    ],
)  # fmt: skip
async def test_a_query_item_that_is_not_a_pair_is_described_not_printed(
    qa: QA, query: Any, message: str
) -> None:
    # The whole item was printed: search values are PHI (a name, a birth date).
    client = qa.client()
    with pytest.raises(TypeError) as info:
        await qa.call(client, "search_resources", "Patient", query)
    assert str(info.value) == message
    assert qa.requests == []


async def test_update_with_a_version_id_that_is_not_a_str_is_not_sent_without_if_match(
    qa: QA,
) -> None:
    # meta.versionId 5 (an int, in a hand-built dict) silently sent no If-Match: the update
    # became last-write-wins without a word.
    client = qa.client()
    with pytest.raises(TypeError, match=r"resource.meta.versionId must be a str, got int"):
        await qa.call(client, "update_resource", {**PATIENT, "meta": {"versionId": 5}})
    with pytest.raises(TypeError, match=r"resource.meta must be a mapping, got str"):
        await qa.call(client, "update_resource", {**PATIENT, "meta": "v5"})
    assert qa.requests == []
    # Opting out, or an explicit If-Match header, does not read meta.versionId.
    await qa.call(client, "update_resource", {**PATIENT, "meta": {"versionId": 5}}, if_match=False)
    headers = {"If-Match": 'W/"5"'}
    await qa.call(client, "update_resource", {**PATIENT, "meta": {"versionId": 5}}, headers=headers)
    assert [r.headers.get("If-Match") for r in qa.requests] == [None, 'W/"5"']


async def test_search_with_options_accepts_the_documented_values(qa: QA) -> None:
    client = qa.client()
    for summary in ("true", "text", "data", "count", "false"):
        await qa.call(client, "search_with_options", "Patient", summary=summary)
    for total in ("none", "estimate", "accurate"):
        await qa.call(client, "search_with_options", "Patient", total=total, count=0, offset=0)
    assert len(qa.requests) == 8

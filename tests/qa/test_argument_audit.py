"""Findings of the argument audit (every public callable, each argument given None, another type,
blank, control characters, NaN...): each raised something untyped, named no argument, printed a
resource's content, or was accepted and sent as something else. Both clients."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pymedplum import AsyncMedplumClient, MedplumClient, MedplumError
from tests.qa.conftest import BASE, QA

pytestmark = pytest.mark.anyio

PATIENT = {"resourceType": "Patient", "id": "1", "meta": {"versionId": "1"}}
ENTRY = {"policy": {"reference": "AccessPolicy/p1"}}


def membership_handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "resourceType": "ProjectMembership",
            "id": "m1",
            "meta": {"versionId": "1"},
            "accessPolicy": {"reference": "AccessPolicy/base"},
            "access": [ENTRY],
        },
    )


def phi_model() -> Any:
    from pymedplum.fhir import HumanName, Patient

    return Patient(id="1", name=[HumanName(family="Secretname")])


# --- headers ------------------------------------------------------------------------------------

HEADER_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("read_resource", ("Patient", "1")),
    ("vread_resource", ("Patient", "1", "2")),
    ("create_resource", ({"resourceType": "Patient"},)),
    ("create_resource_if_none_exist", ({"resourceType": "Patient"}, "identifier=a|b")),
    ("update_resource", (PATIENT,)),
    ("patch_resource", ("Patient", "1", [{"op": "remove", "path": "/active"}])),
    ("delete_resource", ("Patient", "1")),
    ("get", ("Patient/1",)),
    ("post", ("Patient", {"resourceType": "Patient"})),
]


@pytest.mark.parametrize("bad", ["X-A: b", ["X-A", "b"], [("X-A", "b")], 5, "", []])
@pytest.mark.parametrize(("method", "args"), HEADER_CALLS, ids=[c[0] for c in HEADER_CALLS])
async def test_headers_that_are_not_a_mapping_are_named(
    qa: QA, method: str, args: tuple[Any, ...], bad: Any
) -> None:
    # An AttributeError ('str' object has no attribute 'items') or a dict() error naming no
    # argument; "" and [] were taken as no headers.
    client = qa.client()
    with pytest.raises(TypeError, match="headers must be a mapping of header names"):
        await qa.call(client, method, *args, headers=bad)
    assert qa.requests == []


async def test_headers_given_a_resource_names_its_type_only(qa: QA) -> None:
    client = qa.client()
    with pytest.raises(TypeError, match="got Patient") as info:
        await qa.call(client, "read_resource", "Patient", "1", headers=phi_model())
    assert "Secretname" not in str(info.value)


# --- flags --------------------------------------------------------------------------------------

FLAG_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any], str]] = [
    ("search_resources", ("Patient",), {}, "return_bundle"),
    ("search_with_options", ("Patient",), {}, "return_bundle"),
    ("set_accounts", ("Patient/1", "Organization/o1"), {}, "propagate"),
    ("set_accounts", ("Patient/1", "Organization/o1"), {}, "prefer_async"),
    ("merge_project_membership_access", ("m1",), {"managed_access": []}, "force"),
    ("add_project_membership_access_entry", ("m1", ENTRY), {}, "force"),
    ("remove_project_membership_access_entry", ("m1", ENTRY), {}, "force"),
]


@pytest.mark.parametrize("bad", ["false", 0, 1, None])
@pytest.mark.parametrize(
    ("method", "args", "kwargs", "flag"),
    FLAG_CALLS,
    ids=[f"{c[0]}-{c[3]}" for c in FLAG_CALLS],
)
async def test_a_flag_must_be_a_bool(
    qa: QA, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], flag: str, bad: Any
) -> None:
    # Read by truth value: return_bundle="false" answered a FHIRBundle, propagate="no" sent
    # propagate=true, force=None skipped the write.
    if method.endswith("access") or method.endswith("entry"):
        kwargs = {**kwargs, "managed_policy_ids": {"p1"}}
    client = qa.client()
    with pytest.raises(TypeError, match=f"{flag} must be True or False, got {type(bad).__name__}"):
        await qa.call(client, method, *args, **kwargs, **{flag: bad})
    assert qa.requests == []


# --- access -------------------------------------------------------------------------------------


async def test_managed_access_none_is_not_taken_as_remove_everything(qa: QA) -> None:
    # None was read as [] and the PUT removed every managed entry (the documented lockout).
    qa.handler = membership_handler
    client = qa.client()
    with pytest.raises(TypeError, match=r"managed_access must be a list .* got None; pass \[\]"):
        await qa.call(
            client,
            "merge_project_membership_access",
            "m1",
            managed_access=None,
            managed_policy_ids={"p1"},
        )
    assert qa.requests == []
    result = await qa.call(
        client,
        "merge_project_membership_access",
        "m1",
        managed_access=[],
        managed_policy_ids={"p1"},
    )
    assert result.managed_count == 0
    assert json.loads(qa.requests[-1].content)["access"] == []


@pytest.mark.parametrize(("bad", "error"), [([5], TypeError), (["Patient/p1"], ValueError)])
async def test_managed_policy_ids_entries_are_named(qa: QA, bad: Any, error: type) -> None:
    # The message said "policy must be ...": there is no argument called policy here.
    client = qa.client()
    with pytest.raises(error, match="managed_policy_ids entry"):
        await qa.call(
            client, "add_project_membership_access_entry", "m1", ENTRY, managed_policy_ids=bad
        )
    assert qa.requests == []


async def test_managed_policy_ids_given_a_model_is_refused(qa: QA) -> None:
    # A model iterates over its (field, value) pairs: "got tuple" named nothing useful.
    from pymedplum.fhir import Reference

    client = qa.client()
    with pytest.raises(TypeError, match="managed_policy_ids must be a set of AccessPolicy ids"):
        await qa.call(
            client,
            "add_project_membership_access_entry",
            "m1",
            ENTRY,
            managed_policy_ids=Reference(reference="AccessPolicy/p1"),
        )


def test_validate_managed_access_refuses_none_but_server_lists_may_be_absent() -> None:
    from pymedplum import merged_equals_remote, partition_access, validate_managed_access

    with pytest.raises(TypeError, match="managed_access must be a list"):
        validate_managed_access(None, {"p1"})  # type: ignore[arg-type]
    assert partition_access(None, {"p1"}) == ([], [])  # a membership without access
    assert merged_equals_remote([], None)


# --- values printed whole -----------------------------------------------------------------------

LEAK_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any], str]] = [
    ("search_with_options", ("Patient",), {}, "summary"),
    ("search_with_options", ("Patient",), {}, "total"),
    ("upload_binary", (b"x",), {}, "content_type"),
    ("merge_project_membership_access", ("m1",), {"managed_access": []}, "max_retries"),
]


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "argument"),
    LEAK_CALLS,
    ids=[f"{c[0]}-{c[3]}" for c in LEAK_CALLS],
)
async def test_a_resource_given_as_an_argument_is_not_printed(
    qa: QA, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], argument: str
) -> None:
    if method.startswith("merge"):
        kwargs = {**kwargs, "managed_policy_ids": {"p1"}}
    client = qa.client()
    with pytest.raises((TypeError, ValueError), match=argument) as info:
        await qa.call(client, method, *args, **kwargs, **{argument: phi_model()})
    assert "Secretname" not in str(info.value)
    assert "Patient" in str(info.value)  # described by its type
    assert qa.requests == []


async def test_a_search_parameter_name_that_is_a_model_is_not_printed(qa: QA) -> None:
    client = qa.client()
    with pytest.raises(
        TypeError, match=r"^query: search parameter names must be str, got Patient"
    ) as info:
        await qa.call(client, "search_resources", "Patient", [(phi_model(), "x")])
    assert "Secretname" not in str(info.value)


# --- accounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a/b", "Organization/a b", "Organization/", "/abc"])
async def test_set_accounts_names_account_refs(qa: QA, bad: str) -> None:
    # The message named "accounts", which set_accounts does not take.
    client = qa.client()
    with pytest.raises(ValueError, match=r"account_refs\[0\] must be a reference like"):
        await qa.call(client, "set_accounts", "Patient/1", [bad])
    with pytest.raises(TypeError, match="account_refs must be a reference"):
        await qa.call(client, "set_accounts", "Patient/1", None)
    assert qa.requests == []


@pytest.mark.parametrize("bad", ["a/b", "organization/abc", "Organization/a b"])
async def test_an_account_reference_is_checked_whole(qa: QA, bad: str) -> None:
    # Only the '/' was counted: 'a/b' was written into meta.accounts as a dangling reference.
    client = qa.client()
    with pytest.raises(ValueError, match=r"accounts\[1\] must be a reference like"):
        await qa.call(
            client, "create_resource", {"resourceType": "Patient"}, accounts=["Organization/o", bad]
        )
    assert qa.requests == []


async def test_no_accounts_writes_no_empty_accounts_array(qa: QA) -> None:
    # accounts=[] wrote "meta": {"accounts": []}: an empty array is not FHIR JSON.
    qa.handler = lambda request: httpx.Response(201, json={"resourceType": "Patient", "id": "1"})
    client = qa.client()
    await qa.call(client, "create_resource", {"resourceType": "Patient"}, accounts=[])
    assert json.loads(qa.requests[-1].content) == {"resourceType": "Patient"}


# --- search values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), [1.0, float("-inf")], Decimal("NaN"), Decimal("-Infinity")]
)
async def test_a_search_value_that_is_no_number_is_refused(qa: QA, bad: Any) -> None:
    # str() sent "nan" / "inf" / "-inf" to the server.
    client = qa.client()
    with pytest.raises(ValueError, match="search parameter 'value-quantity' must be a finite"):
        await qa.call(client, "search_resources", "Observation", {"value-quantity": bad})
    assert qa.requests == []


async def test_a_search_value_of_another_type_names_its_parameter(qa: QA) -> None:
    client = qa.client()
    with pytest.raises(TypeError, match="search parameter 'subject' values must be str"):
        await qa.call(client, "search_resources", "Observation", {"subject": phi_model()})
    assert qa.requests == []


# --- conditional headers ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ['W/"1"\r\nX-Evil: 1', 'W/"é"'])
async def test_if_match_with_control_or_non_ascii_characters_is_named(qa: QA, bad: str) -> None:
    # The error named the header If-Match, not the argument.
    client = qa.client()
    with pytest.raises(ValueError, match="if_match must be printable ASCII"):
        await qa.call(client, "update_resource", PATIENT, if_match=bad)
    assert qa.requests == []


async def test_if_none_exist_control_characters_are_not_echoed(qa: QA) -> None:
    client = qa.client()
    with pytest.raises(ValueError, match="if_none_exist must not hold") as info:
        await qa.call(
            client, "create_resource_if_none_exist", {"resourceType": "Patient"}, "mrn=123\x00"
        )
    assert "123" not in str(info.value)  # a conditional create's query is often an MRN


# --- low-level params ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        (5, TypeError, "params must be a mapping, a list of"),
        (["a"], TypeError, r"params\[0\] must be a \(name, value\) pair, got str"),
        ({"a": b"x"}, TypeError, r"params\['a'\] must be a str, int, float or bool, got bytes"),
        ({"a": {"b": 1}}, TypeError, r"params\['a'\] must be a str, int, float or bool, got dict"),
        ({"a": float("nan")}, ValueError, r"params\['a'\] must be a finite number"),
        ({1: "x"}, TypeError, "params names must be str, got int"),
    ],
)
@pytest.mark.parametrize("method", ["get", "delete", "post", "put"])
async def test_low_level_params_are_checked(
    qa: QA, method: str, params: Any, error: type, message: str
) -> None:
    # httpx sent str() of anything (b'x', a dict's repr, nan) or failed inside with an
    # AttributeError / IndexError.
    client = qa.client()
    with pytest.raises(error, match=message):
        await qa.call(client, method, "admin/x", params=params)
    assert qa.requests == []


async def test_low_level_params_given_a_resource_do_not_put_it_in_the_url(qa: QA) -> None:
    client = qa.client()
    with pytest.raises(TypeError, match="got Patient") as info:
        await qa.call(client, "get", "admin/x", params={"q": phi_model()})
    assert "Secretname" not in str(info.value)
    assert qa.requests == []


async def test_low_level_params_accepted_forms_still_go_out(qa: QA) -> None:
    client = qa.client()
    await qa.call(client, "get", "admin/x", params={"a": [1, True], "b": None, "c": 1.5})
    await qa.call(client, "get", "admin/x", params=[("a", "1")])
    await qa.call(client, "get", "admin/x", params="a=1")
    assert [r.url.query for r in qa.requests] == [b"a=1&a=true&b=&c=1.5", b"a=1", b"a=1"]


# --- request bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "error", "message"),
    [
        (
            {"resourceType": "Observation", "valueQuantity": {"value": float("nan")}},
            ValueError,
            r"request body\.valueQuantity\.value is nan, which JSON cannot hold",
        ),
        (
            {"resourceType": "Observation", "note": [{"text": b"Secretname"}]},
            TypeError,
            r"request body\.note\[0\]\.text is a bytes, which is not JSON serializable",
        ),
    ],
)
async def test_a_body_json_cannot_hold_is_named_by_its_path(
    qa: QA, resource: dict[str, Any], error: type, message: str
) -> None:
    # "Out of range float values are not JSON compliant" said neither where nor which call.
    client = qa.client()
    with pytest.raises(error, match=message) as info:
        await qa.call(client, "create_resource", resource)
    assert "Secretname" not in str(info.value)
    assert qa.requests == []


@pytest.mark.parametrize("method", ["post", "put"])
@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (
            {"resourceType": "Observation", "valueQuantity": {"value": float("nan")}},
            ValueError,
            r"^json\.valueQuantity\.value is nan, which JSON cannot hold",
        ),
        ({"note": [{"text": b"Secretname"}]}, TypeError, r"^json\.note\[0\]\.text is a bytes"),
        ({"x": Decimal("NaN")}, ValueError, r"^json: NaN is not a JSON number$"),
        ({"name": ["\ud83c"]}, ValueError, r"^json\.name\[0\] holds a lone UTF-16 surrogate"),
        ({"when": datetime(2020, 1, 1)}, ValueError, r"^json\.when is a datetime without a time"),
    ],
)
async def test_a_low_level_body_json_cannot_hold_is_named_after_the_json_argument(
    qa: QA, method: str, body: dict[str, Any], error: type, message: str
) -> None:
    # "request body..." named no argument of post(path, json=...).
    client = qa.client()
    with pytest.raises(error, match=message) as info:
        await qa.call(client, method, "admin/x", body)
    assert "Secretname" not in str(info.value)
    assert qa.requests == []


# --- constructor --------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", [MedplumClient, AsyncMedplumClient])
@pytest.mark.parametrize("argument", ["client_id", "client_secret", "project_id"])
def test_blank_credentials_are_refused_without_echo(flavour: Any, argument: str) -> None:
    # "  " was accepted and failed only at the first token request, as a 401.
    options = {"client_id": "cid", "client_secret": "secret", argument: " \t "}
    with pytest.raises(ValueError, match=f"{argument} must be a non-empty str or None") as info:
        flavour(BASE, **options)
    assert "\t" not in str(info.value)


@pytest.mark.parametrize("flavour", [MedplumClient, AsyncMedplumClient])
@pytest.mark.parametrize("hook", ["before_request", "on_request_complete"])
@pytest.mark.parametrize("bad", [lambda: None, lambda request, extra: None])
def test_a_hook_that_cannot_take_its_one_argument_is_refused(
    flavour: Any, hook: str, bad: Any
) -> None:
    # Accepted, then failed at every request; a failing on_request_complete is only logged,
    # so no audit event was ever recorded.
    with pytest.raises(TypeError, match=f"{hook} must take one positional argument"):
        flavour(BASE, access_token="t", **{hook: bad})


@pytest.mark.parametrize("flavour", [MedplumClient, AsyncMedplumClient])
@pytest.mark.parametrize("hook", ["before_request", "on_request_complete"])
def test_a_refused_hook_is_described_without_its_defaults(flavour: Any, hook: str) -> None:
    # The message printed the signature, defaults included: a partial's bound api_key, or a
    # default holding a secret, ended up in the exception (and in any log of it).
    import functools

    def send(url: str, event: Any, *, api_key: str) -> None: ...

    bad = [
        functools.partial(send, "u", None, api_key="SECRET-KEY"),
        lambda event, key="SECRET-KEY", *, y: None,
    ]
    for candidate in bad:
        with pytest.raises(TypeError, match=f"{hook} must take one positional") as info:
            flavour(BASE, access_token="t", **{hook: candidate})
        assert "SECRET-KEY" not in str(info.value)
    with pytest.raises(TypeError, match=r"parameters \(event, key, \*, y\)"):
        flavour(BASE, access_token="t", **{hook: bad[1]})


@pytest.mark.parametrize("flavour", [MedplumClient, AsyncMedplumClient])
def test_hooks_of_the_usual_shapes_are_accepted(flavour: Any) -> None:
    events: list[Any] = []

    class Recorder:
        def __call__(self, event: Any, *rest: Any) -> None:
            events.append(event)

    flavour(BASE, access_token="t", on_request_complete=events.append)  # no readable signature
    flavour(BASE, access_token="t", on_request_complete=Recorder())
    flavour(BASE, access_token="t", before_request=lambda request, **options: request)


# --- FHIRBundle ---------------------------------------------------------------------------------


@pytest.mark.parametrize("total", ["5", -1, 2.5, True])
def test_fhir_bundle_refuses_a_total_it_cannot_read(total: Any) -> None:
    # Passed over: bundle.total counted the page's entries instead (0 for a "_summary=count"
    # answer whose total was "5").
    from pymedplum import FHIRBundle

    with pytest.raises(ValueError, match=r"data\.total must be a non-negative int"):
        FHIRBundle({"resourceType": "Bundle", "type": "searchset", "total": total})
    assert FHIRBundle({"resourceType": "Bundle", "total": 0}).total == 0


async def test_a_search_answer_with_an_unreadable_total_is_not_read_as_a_count(qa: QA) -> None:
    qa.handler = lambda request: httpx.Response(
        200, json={"resourceType": "Bundle", "type": "searchset", "total": "5"}
    )
    client = qa.client()
    # The server's answer is at fault, not an argument: a MedplumError naming the call.
    with pytest.raises(MedplumError, match=r"^expected a Bundle, but its total must be a non-neg"):
        await qa.call(client, "search_resources", "Patient", return_bundle=True)
    plain = await qa.call(client, "search_resources", "Patient")
    assert plain["total"] == "5"  # the dict is the server's answer as sent


# --- payload models -----------------------------------------------------------------------------


def test_payload_validation_errors_do_not_print_the_input() -> None:
    # input_value={...} printed the whole token response, refresh_token included.
    import pydantic

    from pymedplum.payloads import AsyncJobStatus, TokenResponse

    with pytest.raises(pydantic.ValidationError) as info:
        TokenResponse.model_validate({"token_type": "Bearer", "refresh_token": "SECRET-REFRESH"})
    assert "access_token" in str(info.value)
    assert "SECRET-REFRESH" not in str(info.value)
    with pytest.raises(pydantic.ValidationError) as info:
        AsyncJobStatus.model_validate({"resourceType": "AsyncJob", "status": "Secretname"})
    assert "status" in str(info.value)
    assert "Secretname" not in str(info.value)


@pytest.mark.parametrize("as_fhir", [False, True])
@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"resourceType": "Bundle", "type": "searchset", "total": "5"}, "total"),
        ({"resourceType": "Patient", "id": "1"}, "resourceType"),
    ],
)
async def test_a_search_answer_fhir_bundle_refuses_is_a_medplum_error(
    qa: QA, body: dict[str, Any], where: str, as_fhir: bool
) -> None:
    # The FHIRBundle total check (a caller's bad argument: ValueError) reached callers of
    # search_resources(return_bundle=True) as a bare ValueError for the server's answer.
    from pymedplum import MedplumError
    from pymedplum.fhir import Patient

    qa.handler = lambda request: httpx.Response(200, json=body)
    client = qa.client()
    kwargs: dict[str, Any] = {"return_bundle": True}
    if as_fhir:
        kwargs["as_fhir"] = Patient
    with pytest.raises(
        MedplumError, match=f"^expected a Bundle, but its {where} .*HTTP 200 from GET"
    ) as info:
        await qa.call(client, "search_resources", "Patient", **kwargs)
    assert info.value.response is not None

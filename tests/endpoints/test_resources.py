"""create / conditional create / read / vread / update / patch / delete, on both clients."""

from __future__ import annotations

import copy
import logging
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from pymedplum.exceptions import (
    BadRequestError,
    MedplumError,
    NotFoundError,
    PreconditionFailedError,
    UnsafeRedirectError,
)
from pymedplum.exceptions import ValidationError as FhirValidationError
from pymedplum.fhir import Meta as FhirMeta
from pymedplum.fhir import Patient as FhirPatient

from .conftest import FHIR, Patient, echo, json_response, outcome

pytestmark = pytest.mark.anyio


# --- create ---------------------------------------------------------------------------------


async def test_create_posts_the_resource_to_its_type(make: Any) -> None:
    h = make(echo(201))
    created = await h.call("create_resource", {"resourceType": "Patient", "active": True})
    assert h.last.method == "POST"
    assert str(h.last.url) == FHIR + "Patient"
    assert h.body() == {"resourceType": "Patient", "active": True}
    assert created == {
        "id": "new-id",
        "resourceType": "Patient",
        "active": True,
        "meta": {"versionId": "2"},
    }


async def test_create_returns_the_model_given_as_fhir(make: Any) -> None:
    h = make(echo(201))
    created = await h.call("create_resource", Patient(active=True), as_fhir=Patient)
    assert isinstance(created, Patient)
    assert created.id == "new-id" and created.active is True
    assert h.body() == {"resourceType": "Patient", "active": True}


class Observation(Patient):
    resourceType: str = "Observation"


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("create_resource", ({"resourceType": "Patient"},)),
        ("create_resource", (Patient(),)),
        ("create_resource_if_none_exist", ({"resourceType": "Patient"}, "identifier=a|1")),
        ("update_resource", ({"resourceType": "Patient", "id": "p1"},)),
        ("read_resource", ("Patient", "p1")),
        ("vread_resource", ("Patient", "p1", "1")),
        ("patch_resource", ("Patient", "p1", [{"op": "remove", "path": "/active"}])),
    ],
)
async def test_as_fhir_of_another_resource_type_is_refused_before_sending(
    make: Any, method: str, args: tuple[Any, ...]
) -> None:
    h = make(echo(201))
    with pytest.raises(ValueError, match="as_fhir=Observation reads Observation resources"):
        await h.call(method, *args, as_fhir=Observation)
    assert h.requests == []  # nothing was written


async def test_return_minimal_gives_the_id_and_version_from_location(make: Any) -> None:
    location = FHIR + "Patient/new-id/_history/3"
    h = make(lambda request: httpx.Response(201, headers={"Location": location}))
    minimal = {"Prefer": "return=minimal"}
    created = await h.call("create_resource", {"resourceType": "Patient"}, headers=minimal)
    assert created == {"resourceType": "Patient", "id": "new-id", "meta": {"versionId": "3"}}
    typed = await h.call("create_resource", Patient(), headers=minimal, as_fhir=Patient)
    assert isinstance(typed, Patient) and typed.id == "new-id"


async def test_an_empty_update_answer_names_the_resource_by_its_url_and_etag(make: Any) -> None:
    # Medplum answers an update or patch with Prefer: return=minimal with an ETag, no Location.
    h = make(lambda request: httpx.Response(200, headers={"ETag": 'W/"7"'}))
    minimal = {"Prefer": "return=minimal"}
    updated = await h.call(
        "update_resource", {"resourceType": "Patient", "id": "p1"}, headers=minimal
    )
    assert updated == {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "7"}}
    patched = await h.call(
        "patch_resource", "Patient", "p1", [{"op": "remove", "path": "/active"}],
        headers=minimal, as_fhir=Patient,
    )  # fmt: skip
    assert isinstance(patched, Patient) and patched.id == "p1"


async def test_an_empty_answer_naming_no_resource_is_a_clear_error_for_as_fhir(make: Any) -> None:
    h = make(lambda request: httpx.Response(200))
    assert await h.call("create_resource", {"resourceType": "Patient"}) == {}
    with pytest.raises(MedplumError, match="empty body naming no resource") as caught:
        await h.call("create_resource", {"resourceType": "Patient"}, as_fhir=Patient)
    # Like every unusable 2xx: which call got it, and that the create was most likely applied
    # (not a failed create to send again).
    assert "(HTTP 200 from POST /fhir/R4/Patient; the server reported success" in str(caught.value)


@pytest.mark.parametrize(
    ("accounts", "expected"),
    [
        ("Organization/org-456", [{"reference": "Organization/org-456"}]),
        (
            ["Organization/org-456", "Organization/org-789"],
            [{"reference": "Organization/org-456"}, {"reference": "Organization/org-789"}],
        ),
    ],
)
async def test_create_stamps_accounts_on_a_copy(make: Any, accounts: Any, expected: Any) -> None:
    h = make(echo(201))
    patient = {"resourceType": "Patient", "meta": {"tag": [{"code": "x"}]}}
    before = copy.deepcopy(patient)
    await h.call("create_resource", patient, accounts=accounts)
    assert h.body()["meta"] == {"tag": [{"code": "x"}], "accounts": expected}
    assert patient == before  # the caller's dict (and its meta) is untouched


async def test_create_does_not_duplicate_an_existing_account(make: Any) -> None:
    h = make(echo(201))
    patient = {"resourceType": "Patient", "meta": {"accounts": [{"reference": "Organization/a"}]}}
    await h.call("create_resource", patient, accounts=["Organization/a", "Organization/b"])
    assert h.body()["meta"]["accounts"] == [
        {"reference": "Organization/a"},
        {"reference": "Organization/b"},
    ]


async def test_create_rejects_a_malformed_account_before_sending(make: Any) -> None:
    h = make(echo(201))
    with pytest.raises(ValueError, match="accounts"):
        await h.call("create_resource", {"resourceType": "Patient"}, accounts="org-1")
    assert h.requests == []


async def test_create_without_resource_type_names_the_field(make: Any) -> None:
    h = make(echo(201))
    with pytest.raises(ValueError, match="resourceType"):
        await h.call("create_resource", {"active": True})
    assert h.requests == []


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        # A str meta.accounts was split into characters and sent; a str meta failed with
        # "dictionary update sequence element #0 ...".
        (
            {"accounts": "Organization/a"},
            r"^resource\.meta\.accounts must be a list of References, got str$",
        ),
        ("x", r"^resource\.meta must be a mapping \(a FHIR Meta\), got str$"),
        (["a"], r"^resource\.meta must be a mapping .* got list$"),
        (
            {"accounts": ["Organization/a"]},
            r"^resource\.meta\.accounts\[0\] must be a Reference .* got str$",
        ),
    ],
)
@pytest.mark.parametrize(
    "method", ["create_resource", "create_resource_if_none_exist", "update_resource"]
)
async def test_accounts_on_a_malformed_meta_is_a_type_error_naming_it(
    make: Any, method: str, meta: Any, message: str
) -> None:
    h = make(echo(201))
    args: tuple[Any, ...] = ({"resourceType": "Patient", "id": "1", "meta": meta},)
    if method == "create_resource_if_none_exist":
        args += ("identifier=a|b",)
    with pytest.raises(TypeError, match=message):
        await h.call(method, *args, accounts="Organization/b")
    assert h.requests == []


async def test_accounts_are_added_to_a_meta_model_and_reference_models(make: Any) -> None:
    from pydantic import BaseModel, ConfigDict

    class Reference(BaseModel):
        model_config = ConfigDict(extra="allow")
        reference: str

    class Meta(BaseModel):
        model_config = ConfigDict(extra="allow")
        accounts: list[Reference] | None = None

    h = make(echo(201))
    meta = Meta(accounts=[Reference(reference="Organization/a")])
    await h.call(
        "create_resource",
        {"resourceType": "Patient", "meta": meta},
        accounts=["Organization/a", "Organization/b"],
    )
    assert h.body()["meta"] == {
        "accounts": [{"reference": "Organization/a"}, {"reference": "Organization/b"}]
    }


@pytest.mark.parametrize("method", ["create_resource", "update_resource"])
@pytest.mark.parametrize(
    ("resource", "error", "message"),
    [
        (
            {"resourceType": 5, "id": "1"},
            TypeError,
            r"^resource\.resourceType must be a non-empty str, got int$",
        ),
        (
            {"resourceType": "", "id": "1"},
            ValueError,
            r"^resource\.resourceType must be a non-empty str, got ''$",
        ),
        (
            {"id": "1"},
            ValueError,
            r"^resource has no resourceType; a non-empty str is required here$",
        ),
    ],
)
async def test_resource_type_must_be_a_non_empty_str(
    make: Any, method: str, resource: Any, error: type[Exception], message: str
) -> None:
    h = make(echo(201))
    with pytest.raises(error, match=message):
        await h.call(method, resource)
    assert h.requests == []


async def test_create_sends_extra_headers(make: Any) -> None:
    h = make(echo(201))
    await h.call("create_resource", {"resourceType": "Patient"}, headers={"X-Trace": "abc"})
    assert h.last.headers["X-Trace"] == "abc"


# --- conditional create ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["identifier=http://hospital.org/mrn|12345", "?identifier=http://hospital.org/mrn|12345"],
)
async def test_if_none_exist_header_strips_a_leading_question_mark(make: Any, query: str) -> None:
    h = make(echo(201))
    await h.call("create_resource_if_none_exist", {"resourceType": "Patient"}, query)
    assert h.last.headers["If-None-Exist"] == "identifier=http://hospital.org/mrn|12345"
    assert str(h.last.url) == FHIR + "Patient"


async def test_if_none_exist_same_origin_url_is_reduced_to_its_query_with_a_warning(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    h = make(echo(201))
    with caplog.at_level(logging.WARNING), pytest.warns(UserWarning, match="if_none_exist") as w:
        await h.call(
            "create_resource_if_none_exist",
            {"resourceType": "Patient"},
            FHIR + "Patient?identifier=sys|1",
        )
    assert h.last.headers["If-None-Exist"] == "identifier=sys|1"
    # Both kinds of warning: a log record, and a UserWarning pointing at the caller's code.
    assert any("if_none_exist" in r.getMessage() for r in caplog.records)
    assert len(w) == 1 and "/pymedplum/" not in w[0].filename.replace("\\", "/")


async def test_if_none_exist_cross_origin_url_is_refused_without_a_request(make: Any) -> None:
    h = make(echo(201))
    with pytest.raises(UnsafeRedirectError):
        await h.call(
            "create_resource_if_none_exist",
            {"resourceType": "Patient"},
            "https://evil.example/fhir/R4/Patient?identifier=sys|1",
        )
    assert h.requests == []


async def test_if_none_exist_empty_query_is_rejected(make: Any) -> None:
    h = make(echo(201))
    with pytest.raises(ValueError, match="if_none_exist"):
        await h.call("create_resource_if_none_exist", {"resourceType": "Patient"}, "?")
    assert h.requests == []


async def test_if_none_exist_returns_the_existing_resource_on_200(make: Any) -> None:
    existing = {"resourceType": "Patient", "id": "existing-1"}
    h = make(lambda request: json_response(200, existing))
    found = await h.call(
        "create_resource_if_none_exist", {"resourceType": "Patient"}, "identifier=s|1"
    )
    assert found == existing
    typed = await h.call(
        "create_resource_if_none_exist",
        {"resourceType": "Patient"},
        "identifier=s|1",
        as_fhir=Patient,
    )
    assert isinstance(typed, Patient) and typed.id == "existing-1"


async def test_if_none_exist_several_matches_raise_precondition_failed(make: Any) -> None:
    h = make(lambda request: json_response(412, outcome("duplicate")))
    with pytest.raises(PreconditionFailedError):
        await h.call("create_resource_if_none_exist", {"resourceType": "Patient"}, "name=x")


async def test_if_none_exist_with_accounts_and_caller_headers(make: Any) -> None:
    h = make(echo(201))
    await h.call(
        "create_resource_if_none_exist",
        {"resourceType": "Patient"},
        "identifier=s|1",
        accounts="Organization/o",
        headers={"X-Trace": "t"},
    )
    assert h.body()["meta"]["accounts"] == [{"reference": "Organization/o"}]
    assert h.last.headers["X-Trace"] == "t"
    assert h.last.headers["If-None-Exist"] == "identifier=s|1"


# --- read / vread ---------------------------------------------------------------------------


async def test_a_resource_holding_a_lone_surrogate_escape_can_be_read(make: Any) -> None:
    # A JavaScript client saving a string cut inside an emoji leaves "\ud83d" in the resource;
    # Medplum stores it and answers it escaped. pydantic-core's parser refused the whole body
    # ("expected a JSON response body"), so the resource, and every search page holding it,
    # could not be read at all, not even to repair it.
    resource = b'{"resourceType":"Patient","id":"1","name":[{"given":["Ann\\ud83d"]}]}'
    page = b'{"resourceType":"Bundle","type":"searchset","entry":[{"resource":%s}]}' % resource

    def handler(request: httpx.Request) -> httpx.Response:
        body = page if request.url.path.endswith("/Patient") else resource
        return httpx.Response(200, content=body, headers={"Content-Type": "application/fhir+json"})

    h = make(handler)
    read = await h.call("read_resource", "Patient", "1")
    assert read["name"][0]["given"] == ["Ann\ud83d"]
    found = await h.call("search_resources", "Patient", {"name": "Ann"})
    assert [e["resource"]["name"] for e in found["entry"]] == [[{"given": ["Ann\ud83d"]}]]
    # A typed read names the element (UTF-8 cannot hold it, so the model refuses it).
    with pytest.raises(ValidationError) as info:
        await h.call("read_resource", "Patient", "1", as_fhir=FhirPatient)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [
        (("name", 0, "given", 0), "string_unicode")
    ]


async def test_read_and_vread_paths_and_models(make: Any) -> None:
    h = make(lambda request: json_response(200, {"resourceType": "Patient", "id": "123"}))
    assert await h.call("read_resource", "Patient", "123") == {
        "resourceType": "Patient",
        "id": "123",
    }
    assert str(h.last.url) == FHIR + "Patient/123"
    typed = await h.call("read_resource", "Patient", "123", Patient)
    assert isinstance(typed, Patient)
    await h.call("vread_resource", "Patient", "123", "1", as_fhir=Patient)
    assert str(h.last.url) == FHIR + "Patient/123/_history/1"
    await h.call("read_resource", "Patient", "123", headers={"X-A": "1"})
    assert h.last.headers["X-A"] == "1"


@pytest.mark.parametrize(
    ("args", "arg_name"),
    [
        (("Patient", "../oauth2/token"), "resource_id"),
        (("patient", "1"), "resource_type"),
        (("Patient", ""), "resource_id"),
        (("Patient/x", "1"), "resource_type"),
    ],
)
async def test_read_rejects_path_breaking_arguments(make: Any, args: Any, arg_name: str) -> None:
    h = make(echo())
    with pytest.raises(ValueError, match=arg_name):
        await h.call("read_resource", *args)
    assert h.requests == []


# --- update ---------------------------------------------------------------------------------


VERSIONED = {"resourceType": "Patient", "id": "123", "meta": {"versionId": "5"}, "active": False}


async def test_update_attaches_if_match_from_the_version_id(make: Any) -> None:
    h = make(echo())
    await h.call("update_resource", VERSIONED)
    assert h.last.method == "PUT"
    assert str(h.last.url) == FHIR + "Patient/123"
    assert h.last.headers["If-Match"] == 'W/"5"'
    assert h.body() == VERSIONED


async def test_update_attaches_if_match_from_a_model(make: Any) -> None:
    h = make(echo())
    await h.call("update_resource", Patient(id="123", meta={"versionId": "9"}), as_fhir=Patient)
    assert h.last.headers["If-Match"] == 'W/"9"'


async def test_update_attaches_if_match_from_a_meta_model_in_a_dict(make: Any) -> None:
    # The body is written with the Meta model's JSON, but If-Match looked for a dict meta:
    # the update went out without it, and a stale write was not caught.
    h = make(echo())
    resource = {"resourceType": "Patient", "id": "123", "meta": FhirMeta(version_id="7")}
    await h.call("update_resource", resource)
    assert h.last.headers["If-Match"] == 'W/"7"'
    assert h.body()["meta"] == {"versionId": "7"}


async def test_update_without_version_id_sends_no_if_match(make: Any) -> None:
    h = make(echo())
    await h.call("update_resource", {"resourceType": "Patient", "id": "123"})
    assert "If-Match" not in h.last.headers


async def test_update_if_match_false_opts_out(make: Any) -> None:
    h = make(echo())
    await h.call("update_resource", VERSIONED, if_match=False)
    assert "If-Match" not in h.last.headers


async def test_update_if_match_string_is_sent_verbatim(make: Any) -> None:
    h = make(echo())
    await h.call("update_resource", VERSIONED, if_match='W/"7"')
    assert h.last.headers["If-Match"] == 'W/"7"'


@pytest.mark.parametrize("name", ["If-Match", "if-match"])
async def test_update_explicit_if_match_header_wins(make: Any, name: str) -> None:
    h = make(echo())
    await h.call("update_resource", VERSIONED, headers={name: 'W/"1"'}, if_match='W/"7"')
    assert h.last.headers.get_list("If-Match") == ['W/"1"']


async def test_update_rejects_an_if_match_of_another_type(make: Any) -> None:
    h = make(echo())
    with pytest.raises(TypeError, match="if_match"):
        await h.call("update_resource", VERSIONED, if_match=5)
    assert h.requests == []


@pytest.mark.parametrize(
    ("kwargs", "sent"),
    [
        ({}, 'W/"5"'),
        ({"if_match": 'W/"4"'}, 'W/"4"'),
        ({"headers": {"if-match": 'W/"3"'}}, 'W/"3"'),
    ],
)
async def test_a_stale_update_says_which_version_it_sent(
    make: Any, kwargs: dict[str, Any], sent: str
) -> None:
    # Medplum's 412 to a PUT carries only error/processing: the message said nothing more
    # than "HTTP 412 ... [error/processing]".
    h = make(lambda request: json_response(412, outcome("processing", diagnostics="secret")))
    with pytest.raises(PreconditionFailedError) as caught:
        await h.call("update_resource", VERSIONED, **kwargs)
    message = str(caught.value)
    assert message.startswith(
        "HTTP 412 Precondition Failed from PUT /fhir/R4/Patient/{id} [error/processing]; "
        f"If-Match {sent} is not the current version of the resource: nothing was updated"
    )
    assert "Read it again, re-apply the change" in message
    assert "secret" not in message and "123" not in message
    assert caught.value.status_code == 412 and caught.value.outcome == outcome(
        "processing", diagnostics="secret"
    )
    assert caught.value.sanitize_for_logging()["path_template"] == "/fhir/R4/Patient/{id}"


async def test_an_update_without_if_match_keeps_the_servers_412(make: Any) -> None:
    h = make(lambda request: json_response(412, outcome("processing")))
    with pytest.raises(PreconditionFailedError) as caught:
        await h.call("update_resource", VERSIONED, if_match=False)
    assert str(caught.value).endswith("[error/processing]")


async def test_an_update_answered_409_is_not_reworded(make: Any) -> None:
    h = make(lambda request: json_response(409, outcome("conflict")))
    with pytest.raises(MedplumError) as caught:
        await h.call("update_resource", VERSIONED)
    assert "If-Match" not in str(caught.value)


SUBSETTED_SYSTEMS = [
    "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "http://hl7.org/fhir/v3/ObservationValue",  # what Medplum 5 writes
]


@pytest.mark.parametrize("system", SUBSETTED_SYSTEMS)
@pytest.mark.parametrize("as_model", [False, True])
@pytest.mark.parametrize("accounts", [None, "Organization/o1"])
async def test_update_refuses_a_subsetted_resource(
    make: Any, system: str, as_model: bool, accounts: str | None
) -> None:
    # Read with _elements / _summary, the resource lacks elements: the update replaced the
    # stored resource with that subset (the elements left out were erased on the server).
    data = {
        "resourceType": "Patient",
        "id": "123",
        "meta": {"versionId": "5", "tag": [{"system": system, "code": "SUBSETTED"}]},
        "name": [{"family": "Doe"}],
    }
    resource = FhirPatient.model_validate(data) if as_model else data
    h = make(echo())
    with pytest.raises(ValueError, match=r"^resource is tagged SUBSETTED in meta.tag: .*_elements"):
        await h.call("update_resource", resource, accounts=accounts)
    assert h.requests == []


@pytest.mark.parametrize(
    "tag",
    [
        {"system": "http://example.org/tags", "code": "SUBSETTED"},
        {"system": SUBSETTED_SYSTEMS[0], "code": "UNSUBSETTED"},
        {"code": "SUBSETTED"},
        "SUBSETTED",
    ],
)
async def test_update_sends_a_resource_with_other_tags(make: Any, tag: Any) -> None:
    h = make(echo())
    await h.call("update_resource", {"resourceType": "Patient", "id": "1", "meta": {"tag": [tag]}})
    assert h.last.method == "PUT"


@pytest.mark.parametrize("empty", ["", "  "])
async def test_update_rejects_an_empty_if_match(make: Any, empty: str) -> None:
    # An empty If-Match header was sent; False is the way to send none.
    h = make(echo())
    with pytest.raises(ValueError, match=r"^if_match must not be an empty str; pass False"):
        await h.call("update_resource", VERSIONED, if_match=empty)
    assert h.requests == []


@pytest.mark.parametrize(
    ("resource", "error", "message"),
    [
        (
            {"resourceType": "Patient", "id": 5},
            TypeError,
            r"^resource\.id must be a non-empty str, got int$",
        ),
        (
            {"resourceType": "Patient", "id": ""},
            ValueError,
            r"^resource\.id must be a non-empty str, got ''$",
        ),
    ],
)
async def test_update_id_must_be_a_non_empty_str(
    make: Any, resource: Any, error: type[Exception], message: str
) -> None:
    h = make(echo())
    with pytest.raises(error, match=message):
        await h.call("update_resource", resource)
    assert h.requests == []


@pytest.mark.parametrize(
    ("resource", "missing"),
    [({"resourceType": "Patient"}, "id"), ({"id": "1"}, "resourceType")],
)
async def test_update_names_the_missing_field(make: Any, resource: Any, missing: str) -> None:
    h = make(echo())
    with pytest.raises(ValueError, match=missing):
        await h.call("update_resource", resource)
    assert h.requests == []


async def test_update_stale_version_raises_precondition_failed(make: Any) -> None:
    h = make(lambda request: json_response(412, outcome("conflict")))
    with pytest.raises(PreconditionFailedError):
        await h.call("update_resource", VERSIONED)


async def test_update_stamps_accounts_and_returns_a_model(make: Any) -> None:
    h = make(echo())
    before = copy.deepcopy(VERSIONED)
    updated = await h.call("update_resource", VERSIONED, accounts="Organization/o", as_fhir=Patient)
    assert isinstance(updated, Patient)
    assert h.body()["meta"] == {"versionId": "5", "accounts": [{"reference": "Organization/o"}]}
    assert before == VERSIONED


# --- patch / delete -------------------------------------------------------------------------


async def test_patch_sends_a_json_patch(make: Any) -> None:
    h = make(lambda request: json_response(200, {"resourceType": "Patient", "id": "123"}))
    ops = [{"op": "replace", "path": "/active", "value": False}]
    patched = await h.call("patch_resource", "Patient", "123", ops, as_fhir=Patient)
    assert isinstance(patched, Patient)
    assert h.last.method == "PATCH"
    assert h.last.headers["Content-Type"] == "application/json-patch+json"
    assert h.body() == ops
    await h.call("patch_resource", "Patient", "123", ops, headers={"If-Match": 'W/"3"'})
    assert h.last.headers["If-Match"] == 'W/"3"'


# Medplum ignores If-Match on PATCH and DELETE; the contract promises PreconditionFailedError for
# a stale one. The SDK checks it: a JSON Patch test of the version, a read before a delete.
_VERSION_TEST = {"op": "test", "path": "/meta/versionId", "value": "3"}


@pytest.mark.parametrize("tag", ['W/"3"', '"3"'])
async def test_patch_with_if_match_tests_the_version_in_the_patch(make: Any, tag: str) -> None:
    h = make(lambda request: json_response(200, {"resourceType": "Patient", "id": "123"}))
    ops = [{"op": "replace", "path": "/active", "value": False}]
    await h.call("patch_resource", "Patient", "123", ops, headers={"if-match": tag})
    assert h.body() == [_VERSION_TEST, *ops]
    assert h.last.headers["If-Match"] == tag  # still sent, for servers that check it
    assert ops == [{"op": "replace", "path": "/active", "value": False}]  # caller's list kept


@pytest.mark.parametrize("tag", ["*", 'W/"1", W/"2"', "3"])
async def test_patch_with_an_if_match_naming_no_one_version_adds_no_test(
    make: Any, tag: str
) -> None:
    h = make(lambda request: json_response(200, {"resourceType": "Patient", "id": "123"}))
    ops = [{"op": "remove", "path": "/active"}]
    await h.call("patch_resource", "Patient", "123", ops, headers={"If-Match": tag})
    assert h.body() == ops


def _failed_test(text: str) -> httpx.Response:
    issue = {"severity": "error", "code": "invalid", "details": {"text": text}}
    return json_response(400, {"resourceType": "OperationOutcome", "issue": [issue]})


async def test_a_stale_if_match_on_patch_raises_precondition_failed(make: Any) -> None:
    # What Medplum (rfc6902) answers when the version test fails.
    h = make(lambda request: _failed_test("Test failed: 7 != 3"))
    ops = [{"op": "replace", "path": "/active", "value": False}]
    with pytest.raises(PreconditionFailedError) as caught:
        await h.call("patch_resource", "Patient", "123", ops, headers={"If-Match": 'W/"3"'})
    err = caught.value
    assert err.status_code == 400 and err.response is not None
    assert err.path_template == "/fhir/R4/Patient/{id}" and "'3'" in str(err)
    assert "Test failed" not in str(err)  # the outcome's text stays on exc.outcome
    # The audit event records the same exception the caller got.
    assert h.events[-1].final_exception is err
    assert h.events[-1].attempts[-1].exception is err


@pytest.mark.parametrize(
    "text",
    [
        "Test failed: true != false",  # the caller's own test op, not the version's
        "Value required at path: /nope",
    ],
)
async def test_other_patch_failures_stay_bad_requests(make: Any, text: str) -> None:
    h = make(lambda request: _failed_test(text))
    ops = [{"op": "test", "path": "/active", "value": False}]
    with pytest.raises(BadRequestError) as caught:
        await h.call("patch_resource", "Patient", "123", ops, headers={"If-Match": 'W/"3"'})
    assert not isinstance(caught.value, PreconditionFailedError)


async def test_a_stale_version_test_without_if_match_is_a_bad_request(make: Any) -> None:
    h = make(lambda request: _failed_test("Test failed: 7 != 3"))
    with pytest.raises(BadRequestError) as caught:
        await h.call("patch_resource", "Patient", "123", [_VERSION_TEST])
    assert not isinstance(caught.value, PreconditionFailedError)


async def test_delete_returns_none_and_ignores_the_outcome_body(make: Any) -> None:
    h = make(lambda request: json_response(200, outcome("informational")))
    assert await h.call("delete_resource", "Patient", "123") is None
    assert (h.last.method, str(h.last.url)) == ("DELETE", FHIR + "Patient/123")
    assert len(h.requests) == 1  # no If-Match: nothing read first


def _versioned(version: str) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return json_response(
                200, {"resourceType": "Patient", "id": "123", "meta": {"versionId": version}}
            )
        return json_response(200, outcome("informational"))

    return handler


async def test_delete_replayed_after_a_504_that_finds_it_gone_returns_none(
    make: Any, no_sleep: list[float]
) -> None:
    # The first DELETE was applied behind a gateway that answered 504; the replay's 410 was
    # raised as GoneError although the resource was deleted as asked.
    answers = iter([httpx.Response(504), json_response(410, outcome("deleted"))])
    h = make(lambda request: next(answers))
    assert await h.call("delete_resource", "Patient", "123") is None
    assert [r.method for r in h.requests] == ["DELETE", "DELETE"]
    assert h.events[-1].outcome == "success"


async def test_delete_with_the_current_if_match_reads_then_deletes(make: Any) -> None:
    h = make(_versioned("2"))
    headers = {"If-Match": 'W/"2"', "X-Trace": "t"}
    assert await h.call("delete_resource", "Patient", "123", headers=headers) is None
    read, delete = h.requests
    assert (read.method, str(read.url)) == ("GET", FHIR + "Patient/123")
    assert "If-Match" not in read.headers and read.headers["X-Trace"] == "t"
    assert (delete.method, delete.headers["If-Match"]) == ("DELETE", 'W/"2"')
    assert [e.action for e in h.events] == ["read", "delete"]


async def test_delete_with_a_stale_if_match_raises_and_deletes_nothing(make: Any) -> None:
    h = make(_versioned("5"))
    with pytest.raises(PreconditionFailedError) as caught:
        await h.call("delete_resource", "Patient", "123", headers={"If-Match": 'W/"2"'})
    assert [r.method for r in h.requests] == ["GET"]
    assert caught.value.method == "DELETE"
    assert caught.value.path_template == "/fhir/R4/Patient/{id}"
    assert caught.value.status_code is None  # the SDK's verdict: no DELETE was sent
    # The refused delete has its own event: no attempts, the exception the caller got.
    read, delete = h.events
    assert (read.action, read.outcome) == ("read", "success")
    assert (delete.action, delete.method, delete.outcome) == ("delete", "DELETE", "error")
    assert delete.final_exception is caught.value and delete.attempts == []
    assert delete.path_template == "/fhir/R4/Patient/{id}" and delete.resource_id == "123"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(204),  # a server (or mock) answering every request without a body
        json_response(200, outcome("informational")),  # a body that is not the resource
        json_response(403, outcome("forbidden")),  # allowed to delete, not to read
        httpx.Response(200, text="<html>"),  # not JSON
    ],
    ids=["204", "no-version", "403", "not-json"],
)
async def test_delete_with_if_match_goes_ahead_when_no_version_can_be_read(
    make: Any, answer: httpx.Response
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return answer if request.method == "GET" else httpx.Response(204)

    h = make(handler)
    assert await h.call("delete_resource", "Patient", "123", headers={"If-Match": 'W/"2"'}) is None
    assert h.last.method == "DELETE" and h.last.headers["If-Match"] == 'W/"2"'
    # The read's event says when it got nothing usable (it reads the answer inside its call).
    read, delete = h.events
    usable = answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    assert read.action == "read" and read.outcome == ("success" if usable else "error")
    assert usable or isinstance(read.final_exception, MedplumError)
    assert delete.outcome == "success"


async def test_delete_with_if_match_on_behalf_of_reads_as_that_membership(make: Any) -> None:
    h = make(_versioned("2"))
    await h.call(
        "delete_resource", "Patient", "123", headers={"If-Match": 'W/"2"'}, on_behalf_of="m-1"
    )
    assert {r.headers["X-Medplum-On-Behalf-Of"] for r in h.requests} == {"ProjectMembership/m-1"}


async def test_delete_accepts_204(make: Any) -> None:
    h = make(lambda request: httpx.Response(204))
    assert await h.call("delete_resource", "Patient", "123") is None


async def test_as_fhir_of_an_included_type_types_those_entries_of_a_search(make: Any) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "Observation", "id": "o1"}, "search": {"mode": "match"}},
            {"resource": {"resourceType": "Patient", "id": "p1"}, "search": {"mode": "include"}},
        ],
    }
    h = make(lambda request: json_response(200, bundle))
    found = await h.call(
        "search_resources",
        "Observation",
        {"_include": "Observation:subject"},
        return_bundle=True,
        as_fhir=Patient,
    )
    assert [type(r).__name__ for r in found] == ["dict", "Patient"]


# --- Medplum's JSON body limit ------------------------------------------------------------------

# What Medplum answers a body over its parser's limit (maxJsonSize, 1 MB by default): its
# errorHandler's badRequest('File too large') (packages/server/src/app.ts).
_TOO_LARGE = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "invalid", "details": {"text": "File too large"}}],
}


async def test_medplums_file_too_large_names_the_body_size_and_maxjsonsize(make: Any) -> None:
    harness = make(lambda request: json_response(400, _TOO_LARGE))
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [{"fullUrl": "x" * 50}]}
    with pytest.raises(BadRequestError) as caught:
        await harness.call("execute_batch", bundle)
    size = len(harness.last.content)
    message = str(caught.value)
    assert f"the request body is {size:,} bytes" in message
    assert "maxJsonSize, 1 MB by default" in message
    assert caught.value.outcome == _TOO_LARGE


async def test_other_bad_requests_do_not_mention_the_body_size(make: Any) -> None:
    other = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "details": {"text": "Invalid JSON"}}],
    }
    harness = make(lambda request: json_response(400, other))
    with pytest.raises(BadRequestError) as caught:
        await harness.call("create_resource", {"resourceType": "Patient"})
    assert "maxJsonSize" not in str(caught.value)
    # Without a body (a search), a 'File too large' answer gets no size either.
    harness = make(lambda request: json_response(400, _TOO_LARGE))
    with pytest.raises(BadRequestError) as caught:
        await harness.call("search_resources", "Patient", {"name": "a"})
    assert "maxJsonSize" not in str(caught.value)


async def test_a_search_too_long_even_for_post_search_says_so(make: Any) -> None:
    # A query over 8,000 characters goes as POST _search with a form body, which Medplum parses
    # up to express.urlencoded's 100 KB (packages/server/src/app.ts:192).
    harness = make(lambda request: json_response(400, _TOO_LARGE))
    with pytest.raises(BadRequestError) as caught:
        await harness.call("search_resources", "Patient", {"name": "n" * 120_000})
    assert harness.last.url.path.endswith("/Patient/_search")
    message = str(caught.value)
    assert "limit for form bodies (Medplum: 100 KB)" in message
    assert "maxJsonSize" not in message


# --- hints for Medplum 5.0.10's answers on ids ------------------------------------------------

MISSING_ID = "3f2c1e9a-6b7d-4c8e-9f01-23456789abcd"


async def test_a_404_for_an_id_that_is_not_a_uuid_says_medplum_ids_are_uuids(make: Any) -> None:
    # Medplum 5.0.10 answers 404 for any id that is not a UUID (Repository.readResourceImpl).
    h = make(lambda request: json_response(404, outcome("not-found")))
    with pytest.raises(NotFoundError) as info:
        await h.call("read_resource", "Patient", "mrn-12345")
    assert str(info.value).endswith(
        "; the id is not a UUID, and every Medplum id is one (404 for any other)"
    )
    assert "mrn-12345" not in str(info.value)
    with pytest.raises(NotFoundError) as deleting:
        await h.call("delete_resource", "Patient", "mrn-12345")
    assert "not a UUID" in str(deleting.value)
    with pytest.raises(NotFoundError) as plain:
        await h.call("read_resource", "Patient", MISSING_ID)
    assert "UUID" not in str(plain.value)


async def test_a_vread_of_the_deletion_version_says_medplum_cannot_read_it(make: Any) -> None:
    # Medplum 5.0.10 stores a delete as a version with no content; readVersion parses it and
    # the FHIR router answers JSON.parse's error as 400 (repo.ts:693-695, fhirrouter.ts:353-357).
    empty_row = outcome("invalid", "Unexpected end of JSON input")
    h = make(lambda request: json_response(400, empty_row))
    with pytest.raises(BadRequestError) as info:
        await h.call("vread_resource", "Patient", MISSING_ID, MISSING_ID)
    assert (
        "{vid} [error/invalid]; this version is the resource's deletion, which Medplum 5.0.10 "
        "cannot read (it stores no content for it; the instance history lists it as a 410 "
        "entry): vread an earlier version"
    ) in str(info.value)
    # Another 400 of a vread, or the same text on a read, gets no such hint.
    h = make(lambda request: json_response(400, outcome("invalid", "Bad")))
    with pytest.raises(BadRequestError) as other:
        await h.call("vread_resource", "Patient", MISSING_ID, MISSING_ID)
    assert "deletion" not in str(other.value)
    h = make(lambda request: json_response(400, empty_row))
    with pytest.raises(BadRequestError) as read:
        await h.call("read_resource", "Patient", MISSING_ID)
    assert "deletion" not in str(read.value)


async def test_an_update_answered_404_says_medplum_does_not_create_on_update(make: Any) -> None:
    # Medplum 5.0.10: PUT of an id never created is 404 (Repository.checkExistingResource), and
    # of an id that is not a UUID 400 'Invalid id' (checkResourcePermissions).
    h = make(
        lambda request: (
            json_response(404, outcome("not-found"))
            if request.url.path.endswith(MISSING_ID)
            else json_response(400, outcome("invalid"))
        )
    )
    with pytest.raises(NotFoundError) as missing:
        await h.call("update_resource", {"resourceType": "Patient", "id": MISSING_ID})
    assert "; Medplum does not create a resource on update" in str(missing.value)
    with pytest.raises(FhirValidationError) as invalid:
        await h.call("update_resource", {"resourceType": "Patient", "id": "my-id"})
    assert "; the id is not a UUID: Medplum writes UUID ids only" in str(invalid.value)

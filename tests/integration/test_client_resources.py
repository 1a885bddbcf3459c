"""Resource operations of both clients against the live local server: CRUD with models and
dicts, vread, patch, delete (410 / 404), If-Match rules, conditional create and conditional
reads (304 Not Modified)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import anyio
import pytest
from sdk_clients import Api, unique

from pymedplum import (
    BadRequestError,
    GoneError,
    MedplumError,
    NotFoundError,
    PreconditionFailedError,
    UnsafeRedirectError,
    ValidationError,
)
from pymedplum.fhir import HumanName, Identifier, Patient

pytestmark = pytest.mark.anyio

MRN = "http://hospital.example/mrn"


def _patient(family: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": ["Ada"]}], **extra}


async def test_crud_with_models(api: Api) -> None:
    family = unique("Model")
    created = await api.call(
        "create_resource",
        Patient(name=[HumanName(family=family, given=["Ada"])], active=True),
        as_fhir=Patient,
    )
    assert isinstance(created, Patient)
    assert created.id and created.meta is not None and created.meta.version_id
    assert created.name is not None and created.name[0].family == family

    read = await api.call("read_resource", "Patient", created.id, as_fhir=Patient)
    assert isinstance(read, Patient)
    assert read.id == created.id and read.active is True

    read.active = False
    updated = await api.call("update_resource", read, as_fhir=Patient)
    assert isinstance(updated, Patient) and updated.active is False
    assert updated.meta is not None and updated.meta.version_id != created.meta.version_id

    again = await api.call("read_resource", "Patient", created.id)
    assert again["active"] is False
    assert again["meta"]["versionId"] == updated.meta.version_id


async def test_crud_with_dicts(api: Api) -> None:
    family = unique("Dict")
    created = await api.call("create_resource", _patient(family))
    assert isinstance(created, dict) and created["resourceType"] == "Patient"
    pid = created["id"]
    read = await api.call("read_resource", "Patient", pid)
    assert read["name"][0]["family"] == family
    read["birthDate"] = "1990-02-03"
    updated = await api.call("update_resource", read)
    assert updated["birthDate"] == "1990-02-03"
    assert (await api.call("read_resource", "Patient", pid))["birthDate"] == "1990-02-03"
    assert await api.call("delete_resource", "Patient", pid) is None


async def test_vread_returns_each_version(api: Api) -> None:
    created = await api.call("create_resource", _patient(unique("V"), active=True))
    v1 = created["meta"]["versionId"]
    updated = await api.call("update_resource", {**created, "active": False})
    v2 = updated["meta"]["versionId"]
    assert v1 != v2
    old = await api.call("vread_resource", "Patient", created["id"], v1)
    assert old["active"] is True and old["meta"]["versionId"] == v1
    new = await api.call("vread_resource", "Patient", created["id"], v2, as_fhir=Patient)
    assert isinstance(new, Patient) and new.active is False
    with pytest.raises(NotFoundError):
        await api.call("vread_resource", "Patient", created["id"], "no-such-version")


async def test_patch_json_patch_operations(api: Api) -> None:
    created = await api.call("create_resource", _patient(unique("P"), active=True))
    operations = [
        {"op": "replace", "path": "/active", "value": False},
        {"op": "add", "path": "/telecom", "value": [{"system": "email", "value": "a@b.example"}]},
    ]
    patched = await api.call("patch_resource", "Patient", created["id"], operations)
    assert patched["active"] is False
    assert patched["telecom"] == [{"system": "email", "value": "a@b.example"}]
    assert patched["meta"]["versionId"] != created["meta"]["versionId"]
    typed = await api.call(
        "patch_resource",
        "Patient",
        created["id"],
        [{"op": "replace", "path": "/active", "value": True}],
        as_fhir=Patient,
    )
    assert isinstance(typed, Patient) and typed.active is True
    headers = api.server.last_headers("/fhir/R4/Patient")
    assert headers["content-type"].startswith("application/json-patch+json")
    stored = await api.call("read_resource", "Patient", created["id"])
    assert stored["active"] is True and stored["telecom"][0]["value"] == "a@b.example"


async def test_delete_then_read_is_gone_and_unknown_is_not_found(api: Api) -> None:
    created = await api.call("create_resource", _patient(unique("D")))
    assert await api.call("delete_resource", "Patient", created["id"]) is None
    with pytest.raises(GoneError) as gone:
        await api.call("read_resource", "Patient", created["id"])
    assert gone.value.status_code == 410
    assert isinstance(gone.value, NotFoundError)  # one except clause covers both
    # A second delete of the same resource succeeds on Medplum 5.0.10 (Repository.deleteResource
    # returns quietly for a deleted resource), and the resource stays gone.
    assert await api.call("delete_resource", "Patient", created["id"]) is None
    with pytest.raises(GoneError):
        await api.call("read_resource", "Patient", created["id"])
    with pytest.raises(NotFoundError) as missing:
        await api.call("read_resource", "Patient", unique("missing-"))
    assert missing.value.status_code == 404
    assert not isinstance(missing.value, GoneError)
    assert missing.value.outcome is not None
    assert missing.value.outcome["resourceType"] == "OperationOutcome"


# --- If-Match -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        ({"resourceType": "Patient", "active": "yes"}, "Patient.active"),
        ({"resourceType": "Patient", "birthDate": "not-a-date"}, "Patient.birthDate"),
        ({"resourceType": "Patient", "nickname": "Ada"}, "Patient.nickname"),
        ({"resourceType": "Observation"}, "Observation.status"),
    ],
)
async def test_an_invalid_resource_raises_validation_error(
    api: Api, resource: dict[str, Any], expression: str
) -> None:
    # The contract: ValidationError for a 400 that carries the server's validation outcome.
    with pytest.raises(ValidationError) as caught:
        await api.call("create_resource", resource)
    err = caught.value
    assert isinstance(err, BadRequestError) and err.status_code == 400
    assert err.outcome is not None and f"at {expression}" in str(err)


async def test_an_invalid_update_raises_validation_error(api: Api) -> None:
    created = await api.call("create_resource", {"resourceType": "Patient"})
    with pytest.raises(ValidationError):
        await api.call("update_resource", {**created, "active": "yes"})
    with pytest.raises(ValidationError):  # a patch's result is validated as well
        await api.call(
            "patch_resource",
            "Patient",
            created["id"],
            [{"op": "add", "path": "/active", "value": "yes"}],
        )


async def test_update_sends_if_match_from_meta_version_and_stale_is_412(api: Api) -> None:
    created = await api.call("create_resource", _patient(unique("IM")), as_fhir=Patient)
    v1 = created.meta.version_id
    created.active = True
    updated = await api.call("update_resource", created)
    assert api.server.last_headers("/fhir/R4/Patient")["if-match"] == f'W/"{v1}"'
    assert updated["meta"]["versionId"] != v1

    created.active = False  # still carries v1: stale now
    with pytest.raises(PreconditionFailedError) as stale:
        await api.call("update_resource", created)
    assert stale.value.status_code == 412
    assert f'If-Match W/"{v1}" is not the current version of the resource' in str(stale.value)
    current = await api.call("read_resource", "Patient", created.id)
    assert current["active"] is True  # the stale write did not land
    assert current["meta"]["versionId"] == updated["meta"]["versionId"]


async def test_update_without_version_sends_no_if_match(api: Api) -> None:
    created = await api.call("create_resource", _patient(unique("NV")))
    body = {k: v for k, v in created.items() if k != "meta"}
    body["active"] = True
    updated = await api.call("update_resource", body)
    assert "if-match" not in api.server.last_headers("/fhir/R4/Patient")
    assert updated["active"] is True


async def test_if_match_false_is_last_write_wins(api: Api) -> None:
    created = await api.call("create_resource", _patient(unique("LWW")))
    await api.call("update_resource", {**created, "active": True})
    stale = {**created, "gender": "female"}  # meta.version_id is the first version
    updated = await api.call("update_resource", stale, if_match=False)
    assert "if-match" not in api.server.last_headers("/fhir/R4/Patient")
    assert updated["gender"] == "female"
    assert "active" not in updated  # last write wins: the whole resource was replaced


async def test_if_match_string_is_sent_verbatim(api: Api) -> None:
    created = await api.call("create_resource", _patient(unique("STR")))
    version = created["meta"]["versionId"]
    with pytest.raises(PreconditionFailedError):
        await api.call("update_resource", {**created, "active": True}, if_match='W/"nope"')
    assert api.server.last_headers("/fhir/R4/Patient")["if-match"] == 'W/"nope"'
    bare = {k: v for k, v in created.items() if k != "meta"}
    updated = await api.call("update_resource", {**bare, "active": True}, if_match=f'W/"{version}"')
    assert updated["active"] is True
    with pytest.raises(TypeError, match="if_match"):
        await api.call("update_resource", created, if_match=1)


async def test_explicit_if_match_header_wins(api: Api) -> None:
    created = await api.call("create_resource", _patient(unique("HDR")))
    version = created["meta"]["versionId"]
    # The header is right, the keyword wrong: the header is what goes out, and it succeeds.
    updated = await api.call(
        "update_resource",
        {**created, "active": True},
        headers={"If-Match": f'W/"{version}"'},
        if_match='W/"wrong"',
    )
    assert api.server.last_headers("/fhir/R4/Patient")["if-match"] == f'W/"{version}"'
    assert updated["active"] is True
    # The header is stale, meta.version_id current: the header still wins, so 412.
    with pytest.raises(PreconditionFailedError):
        await api.call(
            "update_resource", {**updated, "active": False}, headers={"if-match": 'W/"x"'}
        )
    assert api.server.last_headers("/fhir/R4/Patient")["if-match"] == 'W/"x"'


async def test_update_requires_resource_type_and_id(api: Api) -> None:
    with pytest.raises(ValueError, match="id"):
        await api.call("update_resource", {"resourceType": "Patient"})
    with pytest.raises(ValueError, match="resourceType"):
        await api.call("update_resource", {"id": "x"})


# --- conditional create ---------------------------------------------------------------------------


async def test_conditional_create_returns_existing(api: Api) -> None:
    mrn = unique("mrn")
    patient = Patient(
        identifier=[Identifier(system=MRN, value=mrn)],
        name=[HumanName(family="Cond", given=["Ada"])],
    )
    first = await api.call(
        "create_resource_if_none_exist", patient, if_none_exist=f"identifier={MRN}|{mrn}"
    )
    assert api.server.last_headers("/fhir/R4/Patient")["if-none-exist"] == f"identifier={MRN}|{mrn}"
    second = await api.call(
        "create_resource_if_none_exist",
        patient,
        if_none_exist=f"identifier={MRN}|{mrn}",
        as_fhir=Patient,
    )
    assert isinstance(second, Patient) and second.id == first["id"]
    third = await api.call(
        "create_resource_if_none_exist", patient, if_none_exist=f"?identifier={MRN}|{mrn}"
    )
    assert third["id"] == first["id"]
    assert api.server.last_headers("/fhir/R4/Patient")["if-none-exist"] == f"identifier={MRN}|{mrn}"
    found = await api.call("search_resources", "Patient", {"identifier": f"{MRN}|{mrn}"})
    assert [e["resource"]["id"] for e in found["entry"]] == [first["id"]]


async def test_conditional_create_with_several_matches_is_412(api: Api) -> None:
    mrn = unique("dup")
    for _ in range(2):
        await api.call(
            "create_resource", _patient("Dup", identifier=[{"system": MRN, "value": mrn}])
        )
    with pytest.raises(PreconditionFailedError) as several:
        await api.call(
            "create_resource_if_none_exist",
            _patient("Dup", identifier=[{"system": MRN, "value": mrn}]),
            if_none_exist=f"identifier={MRN}|{mrn}",
        )
    assert several.value.status_code == 412


async def test_conditional_create_accepts_same_origin_absolute_url(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    mrn = unique("abs")
    first = await api.call(
        "create_resource_if_none_exist",
        _patient("Abs", identifier=[{"system": MRN, "value": mrn}]),
        if_none_exist=f"identifier={MRN}|{mrn}",
    )
    with (
        caplog.at_level(logging.WARNING, logger="pymedplum"),
        pytest.warns(UserWarning, match="absolute URL"),
    ):
        again = await api.call(
            "create_resource_if_none_exist",
            _patient("Abs", identifier=[{"system": MRN, "value": mrn}]),
            if_none_exist=f"{api.server.fhir_url}Patient?identifier={MRN}|{mrn}",
        )
    assert again["id"] == first["id"]
    assert api.server.last_headers("/fhir/R4/Patient")["if-none-exist"] == f"identifier={MRN}|{mrn}"
    assert any("absolute URL" in record.getMessage() for record in caplog.records)


async def test_conditional_create_rejects_cross_origin_url(api: Api) -> None:
    await api.call("create_resource", _patient("X"))
    before = api.server.requests("/", limit=1)
    with pytest.raises(UnsafeRedirectError):
        await api.call(
            "create_resource_if_none_exist",
            _patient("Evil"),
            if_none_exist="https://evil.example/fhir/R4/Patient?identifier=a|b",
        )
    assert api.server.requests("/", limit=1) == before  # nothing was sent


async def test_create_with_accounts_stamps_meta_accounts(api: Api) -> None:
    org = await api.call("create_resource", {"resourceType": "Organization", "name": unique("Org")})
    ref = f"Organization/{org['id']}"
    created = await api.call("create_resource", _patient("Acct"), accounts=ref)
    stored = await api.call("read_resource", "Patient", created["id"], as_fhir=Patient)
    assert stored.medplum_accounts == [ref]
    assert stored.medplum_account == ref
    updated = await api.call("update_resource", stored, accounts=[ref, "Practitioner/p-1"])
    assert [a["reference"] for a in updated["meta"]["accounts"]] == [ref, "Practitioner/p-1"]


async def test_a_resource_holding_a_lone_surrogate_can_be_read_and_repaired(api: Api) -> None:
    # A JavaScript client that cuts a string inside an emoji saves "\ud83d"; Medplum stores it
    # and answers it escaped. The client used to refuse the body, and every search page with it.
    family = unique("Surrogate")
    body = b'{"resourceType":"Patient","name":[{"family":"%s","given":["Ann\\ud83d"]}]}' % (
        family.encode()
    )
    created = await api.call(
        "post", "fhir/R4/Patient", content=body, headers={"Content-Type": "application/fhir+json"}
    )
    read = await api.call("read_resource", "Patient", created["id"])
    assert read["name"][0]["given"] == ["Ann\ud83d"]
    page = await api.call("search_resources", "Patient", {"family": family})
    assert [e["resource"]["id"] for e in page["entry"]] == [created["id"]]
    read["name"][0]["given"] = ["Ann"]
    repaired = await api.call("update_resource", read, as_fhir=Patient)
    assert repaired.name is not None and repaired.name[0].given == ["Ann"]


async def test_a_subsetted_search_result_is_not_written_back(api: Api) -> None:
    # Medplum tags an _elements result SUBSETTED and would store it in place of the whole
    # resource (gender and birthDate erased); the client refuses before sending.
    created = await api.call(
        "create_resource",
        Patient(name=[HumanName(family=unique("Sub"))], gender="female", birth_date="1990-01-01"),
        as_fhir=Patient,
    )
    bundle = await api.call(
        "search_with_options",
        "Patient",
        {"_id": created.id},
        elements=["name"],
        return_bundle=True,
        as_fhir=Patient,
    )
    (subset,) = list(bundle)
    assert isinstance(subset, Patient) and subset.gender is None
    subset.active = False
    with pytest.raises(ValueError, match="SUBSETTED"):
        await api.call("update_resource", subset)
    stored = await api.call("read_resource", "Patient", created.id, as_fhir=Patient)
    assert stored.gender == "female" and stored.birth_date == "1990-01-01"
    assert stored.meta is not None and stored.meta.version_id == created.meta.version_id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "names",
    [
        # _given shorter than given: the second name has no extensions.
        [{"given": ["Ann", "Bea"], "_given": [{"id": "g0"}]}],
        # _given longer than given: its second entry has extensions and no value.
        [
            {
                "given": ["Ann"],
                "_given": [
                    None,
                    {"extension": [{"url": "http://x.example/e", "valueString": "v"}]},
                ],
            }
        ],
    ],
    ids=["ext-shorter", "ext-longer"],
)
async def test_misaligned_primitive_extension_lists_are_stored_and_kept(
    api: Api, names: list[dict[str, Any]]
) -> None:
    # FHIR JSON wants given and _given of the same length. Medplum's validateResource does not
    # check it (getTypedPropertyValue pairs them up to the longer one) and the server stores
    # the arrays as sent; the models keep them as read, so a read-modify-write loses nothing.
    family = unique("Misaligned")
    sent = [{**names[0], "family": family}]
    created = await api.call("create_resource", {"resourceType": "Patient", "name": sent})
    assert created["name"] == sent
    read = await api.call("read_resource", "Patient", created["id"], as_fhir=Patient)
    assert read.name is not None
    read.active = True
    updated = await api.call("update_resource", read, as_fhir=Patient)
    assert updated.active is True
    stored = await api.call("read_resource", "Patient", created["id"])
    assert stored["name"] == sent
    assert stored["meta"]["versionId"] == updated.meta.version_id  # type: ignore[union-attr]


async def test_a_conditional_update_ignores_if_match_as_medplum_does(api: Api) -> None:
    # Medplum 5.0.10's FHIR router passes If-Match to a plain update only: a conditional update
    # (PUT Patient?identifier=...) ignores it (packages/fhir-router/src/fhirrouter.ts:243 at
    # v5.0.10), so a stale version does not stop it. The SDK has no endpoint method for it; the
    # low-level put sends the header as given.
    mrn = unique("mrn")
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": mrn}]}
    created = await api.call("create_resource", patient)
    await api.call("update_resource", {**created, "active": True})
    updated = await api.call(
        "put",
        "fhir/R4/Patient",
        {**patient, "active": False},
        params={"identifier": f"urn:test|{mrn}"},
        headers={"If-Match": f'W/"{created["meta"]["versionId"]}"'},  # stale: version 1
    )
    assert updated["id"] == created["id"] and updated["active"] is False


# --- Medplum 5.0.10's Repository on ids, deletes, history and meta -------------------------------
# (packages/server/src/fhir/repo.ts at v5.0.10; the memory repository the local server is built on
# answered each of these differently before tests/server/lib/repo.mjs aligned it.)


async def test_update_of_an_id_never_created_is_not_found(api: Api) -> None:
    # PUT does not create: Repository.checkExistingResource answers 404 for an unknown id unless
    # the writer is a super admin (canSetId, repo.ts:1121-1134); the id must be a UUID (400
    # 'Invalid id', checkResourcePermissions, repo.ts:730-737).
    new_id = str(uuid.uuid4())
    with pytest.raises(NotFoundError) as missing:
        await api.call("update_resource", {"resourceType": "Patient", "id": new_id, "active": True})
    assert missing.value.status_code == 404 and not isinstance(missing.value, GoneError)
    assert "; Medplum does not create a resource on update" in str(missing.value)  # SDK hint
    with pytest.raises(NotFoundError):
        await api.call("read_resource", "Patient", new_id)
    with pytest.raises(BadRequestError) as invalid:
        await api.call("update_resource", {"resourceType": "Patient", "id": "my-own-id"})
    assert invalid.value.status_code == 400
    assert invalid.value.outcome is not None
    assert invalid.value.outcome["issue"][0]["details"]["text"] == "Invalid id"
    assert "; the id is not a UUID: Medplum writes UUID ids only" in str(invalid.value)


async def test_ids_that_are_not_uuids_are_not_found_and_unknown_types_are_bad_requests(
    api: Api,
) -> None:
    # Repository.readResourceImpl (repo.ts:427-431): a non-UUID id is 404 first, then an unknown
    # type with a UUID id is 400 'Unknown resource type'; delete reads the same way.
    created = await api.call("create_resource", _patient(unique("U")))
    for method, args in [
        ("read_resource", ("Patient", "not-a-uuid")),
        ("delete_resource", ("Patient", "not-a-uuid")),
        ("vread_resource", ("Patient", created["id"], "not-a-uuid")),
        (
            "patch_resource",
            ("Patient", "not-a-uuid", [{"op": "add", "path": "/active", "value": True}]),
        ),
    ]:
        with pytest.raises(NotFoundError) as missing:
            await api.call(method, *args)
        assert missing.value.status_code == 404, method
        if method != "vread_resource":  # the hint is about the id, not the version id
            assert "the id is not a UUID" in str(missing.value), method  # the SDK's hint
    for method in ("read_resource", "delete_resource"):
        with pytest.raises(BadRequestError) as bad:
            await api.call(method, "Patinet", created["id"])
        assert bad.value.status_code == 400
        assert "did you mean 'Patient'?" in str(bad.value)  # the SDK's hint, on the real answer
    assert (await api.call("read_resource", "Patient", created["id"]))["id"] == created["id"]


async def test_patch_of_a_missing_or_deleted_resource(api: Api) -> None:
    # Repository.patchResource reads first (repo.ts:1340): 404 for an unknown id, 410 for a
    # deleted one (the memory repository answered 400 'Value required at path').
    operations = [{"op": "replace", "path": "/active", "value": True}]
    with pytest.raises(NotFoundError) as missing:
        await api.call("patch_resource", "Patient", str(uuid.uuid4()), operations)
    assert missing.value.status_code == 404 and not isinstance(missing.value, GoneError)
    created = await api.call("create_resource", _patient(unique("PD"), active=False))
    await api.call("delete_resource", "Patient", created["id"])
    with pytest.raises(GoneError):
        await api.call("patch_resource", "Patient", created["id"], operations)


async def test_a_deleted_resource_keeps_its_versions_and_can_be_written_again(api: Api) -> None:
    created = await api.call("create_resource", _patient(unique("H"), active=True))
    pid, v1 = created["id"], created["meta"]["versionId"]
    v2 = (await api.call("update_resource", {**created, "active": False}))["meta"]["versionId"]
    await api.call("delete_resource", "Patient", pid)
    # readVersion tolerates a deleted resource (repo.ts:674-682): old versions stay readable.
    old = await api.call("vread_resource", "Patient", pid, v1, as_fhir=Patient)
    assert isinstance(old, Patient) and old.active is True
    # readHistory too (repo.ts:567-660): newest first, the deletion an entry without resource
    # answering 410, `total`, and `_count` / `_offset` paging.
    history = await api.call("get", f"fhir/R4/Patient/{pid}/_history")
    assert history["type"] == "history" and history["total"] == 3
    entries = history["entry"]
    assert [e["response"]["status"] for e in entries] == ["410", "200", "200"]
    assert "resource" not in entries[0]
    assert entries[0]["response"]["outcome"]["issue"][0]["code"] == "deleted"
    assert [e["resource"]["meta"]["versionId"] for e in entries[1:]] == [v2, v1]
    assert entries[1]["request"]["url"] == f"Patient/{pid}/_history/{v2}"
    assert all(e["fullUrl"].endswith(f"/fhir/R4/Patient/{pid}") for e in entries)
    page = await api.call(
        "get", f"fhir/R4/Patient/{pid}/_history", params={"_count": "1", "_offset": "1"}
    )
    assert page["total"] == 3
    assert [e["resource"]["meta"]["versionId"] for e in page["entry"]] == [v2]
    # The deletion's own version has no content on Medplum 5.0.10: readVersion parses the empty
    # row (repo.ts:693-695) and the router answers JSON.parse's error as a 400.
    deletion = entries[0]["request"]["url"].rsplit("/", 1)[1]
    with pytest.raises(BadRequestError) as unreadable:
        await api.call("vread_resource", "Patient", pid, deletion)
    assert unreadable.value.status_code == 400
    assert "this version is the resource's deletion" in str(unreadable.value)
    # An update of the deleted id writes a new version (checkExistingResource allows 'gone'),
    # whatever version its If-Match names (there is no current version to compare with).
    restored = await api.call("update_resource", {**created, "active": True})  # If-Match: v1
    assert api.server.last_headers("/fhir/R4/Patient")["if-match"] == f'W/"{v1}"'
    assert restored["id"] == pid and restored["meta"]["versionId"] not in (v1, v2)
    assert (await api.call("read_resource", "Patient", pid))["active"] is True


async def test_meta_project_author_and_compartment_are_the_servers(api: Api) -> None:
    # Only a super admin may set meta.project, meta.author or meta.lastUpdated
    # (Repository.getProjectId / getAuthor / getLastUpdated, repo.ts:1933-2004), and
    # meta.compartment is computed on every write (getCompartments, repo.ts:1711-1750).
    project = (await api.call("create_resource", _patient(unique("M"))))["meta"]["project"]
    other = str(uuid.uuid4())
    created = await api.call(
        "create_resource",
        _patient(
            unique("M"),
            meta={
                "project": other,
                "author": {"reference": f"Practitioner/{other}"},
                "lastUpdated": "2001-01-01T00:00:00.000Z",
                "compartment": [{"reference": f"Patient/{other}"}],
            },
        ),
    )
    meta = created["meta"]
    assert meta["project"] == project
    assert meta["author"] == {"reference": f"ClientApplication/{api.server.client_id}"}
    assert not meta["lastUpdated"].startswith("2001")
    assert meta["compartment"] == [
        {"reference": f"Project/{project}"},
        {"reference": f"Patient/{created['id']}"},
    ]
    observation = await api.call(
        "create_resource",
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "weight"},
            "subject": {"reference": f"Patient/{created['id']}"},
        },
    )
    assert observation["meta"]["compartment"] == [
        {"reference": f"Project/{project}"},
        {"reference": f"Patient/{created['id']}"},
    ]
    moved = await api.call(
        "update_resource",
        {**created, "active": True, "meta": {**meta, "project": other}},
        if_match=False,
    )
    assert moved["active"] is True and moved["meta"]["project"] == project


async def test_an_unchanged_update_keeps_its_version_unless_another_member_sends_it(
    make_api: Any,
) -> None:
    """Repository.isNotModified (repo.ts:1149-1160 at v5.0.10): the stored version and the one
    about to be written are compared, meta.versionId, lastUpdated and author aside. An update
    that changes nothing answers the stored version; the same update sent on behalf of
    another member changes meta.onBehalfOf, so it is a new version."""
    api = make_api()
    first = api.server.create_membership()
    second = api.server.create_membership()
    created = await api.call("create_resource", _patient(unique("Same")))
    v1 = created["meta"]["versionId"]
    same = await api.call("update_resource", created)
    assert same["meta"]["versionId"] == v1
    by_first = await api.call("update_resource", created, on_behalf_of=first["membership"]["id"])
    v2 = by_first["meta"]["versionId"]
    assert v2 != v1
    assert by_first["meta"]["onBehalfOf"]["reference"] == f"Practitioner/{first['profile']['id']}"
    # Sent again on behalf of the same member: nothing changed, the same version.
    again = await api.call("update_resource", by_first, on_behalf_of=first["membership"]["id"])
    assert again["meta"]["versionId"] == v2
    # The same content on behalf of another member: a new version naming that member.
    by_second = await api.call("update_resource", again, on_behalf_of=second["membership"]["id"])
    assert by_second["meta"]["versionId"] not in (v1, v2)
    assert by_second["meta"]["onBehalfOf"]["reference"] == (
        f"Practitioner/{second['profile']['id']}"
    )
    # And without On-Behalf-Of again: meta.onBehalfOf goes away, another version.
    by_client = await api.call("update_resource", by_second)
    assert "onBehalfOf" not in by_client["meta"]
    history = await api.call("get", f"fhir/R4/Patient/{created['id']}/_history")
    assert len(history["entry"]) == 4


def _last_status(api: Api, pid: str) -> int:
    status: int = api.server.requests(f"/fhir/R4/Patient/{pid}", limit=1)[-1]["status"]
    return status


async def test_a_read_with_a_matching_if_none_match_is_304_until_the_resource_changes(
    api: Api,
) -> None:
    """Medplum's Express answers 304 (no body) to a read whose If-None-Match matches the ETag
    (weak comparison): read_resource returns {} for it, with as_fhir raises saying 304; after an
    update the same header gets the new version."""
    created = await api.call("create_resource", _patient(unique("Etag")))
    pid, v1 = created["id"], created["meta"]["versionId"]
    for etag in (f'W/"{v1}"', f'"{v1}"', f'W/"other", W/"{v1}"', "*"):
        read = await api.call("read_resource", "Patient", pid, headers={"If-None-Match": etag})
        assert read == {}
        assert _last_status(api, pid) == 304
    with pytest.raises(MedplumError, match="304 Not Modified") as caught:
        await api.call(
            "read_resource", "Patient", pid, headers={"If-None-Match": f'W/"{v1}"'}, as_fhir=Patient
        )
    assert caught.value.status_code == 304

    stale = await api.call("read_resource", "Patient", pid, headers={"If-None-Match": 'W/"other"'})
    assert stale["id"] == pid and _last_status(api, pid) == 200
    updated = await api.call("update_resource", {**created, "active": True})
    read = await api.call("read_resource", "Patient", pid, headers={"If-None-Match": f'W/"{v1}"'})
    assert read["active"] is True and read["meta"]["versionId"] == updated["meta"]["versionId"]
    model = await api.call(
        "read_resource", "Patient", pid, headers={"If-None-Match": f'W/"{v1}"'}, as_fhir=Patient
    )
    assert isinstance(model, Patient) and model.active is True


async def test_a_read_with_if_modified_since_is_304_until_the_resource_changes(api: Api) -> None:
    """If-Modified-Since against Last-Modified (whole seconds): 304 while the resource was not
    modified after it, the resource once it was; an If-None-Match that does not match wins."""
    created = await api.call("create_resource", _patient(unique("Since")))
    pid = created["id"]
    last_modified = api.server.requests("/fhir/R4/Patient", limit=1)[-1]["responseHeaders"][
        "last-modified"
    ]
    since = {"If-Modified-Since": last_modified}
    assert await api.call("read_resource", "Patient", pid, headers=since) == {}
    assert _last_status(api, pid) == 304
    # If-None-Match takes precedence (fresh@2.0.0): a stale ETag is a 200 whatever the date.
    both = {**since, "If-None-Match": 'W/"other"'}
    assert (await api.call("read_resource", "Patient", pid, headers=both))["id"] == pid
    old = {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
    assert (await api.call("read_resource", "Patient", pid, headers=old))["id"] == pid
    assert _last_status(api, pid) == 200

    await anyio.sleep(1.1)  # Last-Modified has whole seconds: the update must land in a later one
    updated = await api.call("update_resource", {**created, "active": True})
    read = await api.call("read_resource", "Patient", pid, headers=since)
    assert read["active"] is True and read["meta"]["versionId"] == updated["meta"]["versionId"]

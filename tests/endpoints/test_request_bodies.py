"""Large request bodies: written as one json.dumps would write them, without holding copies of
the body (execute_batch, accounts= stamping, models), caller's data untouched (both clients)."""

from __future__ import annotations

import copy
import functools
import gc
import json
import tracemalloc
import warnings
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pymedplum._serialization import ExponentDecimal, ModelList, encode_json, model_parts
from pymedplum.fhir import Bundle, Observation, ObservationComponent, Patient

from .conftest import call, client_of, reference_encoding

pytestmark = pytest.mark.anyio

ANSWER = b'{"resourceType":"Bundle","type":"batch-response","entry":[]}'


def patient(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": f"MRN{i:08d}"}],
        "name": [{"family": "Müller-Lüdenscheidt", "given": ["Zoë", "李", "🙂"]}],
        "birthDate": "1974-12-25",
        "extension": [
            {"url": "urn:weight", "valueDecimal": Decimal("72.50")},
            {"url": "urn:tiny", "valueDecimal": ExponentDecimal("1e-7")},
            {"url": "urn:score", "valueDecimal": 0.125},
        ],
    }


def batch(n: int, resource: Any = patient) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": resource(i),
                "request": {"method": "PUT" if i % 2 else "POST", "url": "Patient"},
            }
            for i in range(n)
        ],
    }


def test_a_body_is_the_bytes_one_json_dumps_writes() -> None:
    # Written piece by piece (each entry of a Bundle, each element of the top two levels):
    # keys in order, non-ASCII as UTF-8 (not \\u escapes), U+2028 and controls as json writes
    # them, exact decimals, and the containers json.dumps writes its own way kept whole.
    body: dict[Any, Any] = batch(50)
    body["entry"].extend([{}, [], (), [[], {}], {"x": ("\u2028\x00\x7f", 1e16, -0.0, 10**30)}])
    body["entry"].append({2: "int key", None: "null key", 1.5: "float key", False: "bool key"})
    body["tuple"] = ("a", Decimal("1.50"), {"b": [Decimal("-0.0")]})
    assert encode_json(body) == reference_encoding(body)
    body[7] = "a non-str key at the top"
    assert encode_json(body) == reference_encoding(body)
    for part in (body["entry"], body["entry"][0], [], {}, "é", 3, Decimal("1.0")):
        assert encode_json(part) == reference_encoding(part)


def test_a_marker_lookalike_string_stays_a_string_beside_a_decimal() -> None:
    # The decimals' internal mark was a fixed string: a caller's string equal to a mark was
    # sent as a number whenever the body also held a Decimal.
    body = {"note": "\x00fhir-number:12", "value": Decimal("1.50")}
    assert encode_json(body) == b'{"note":"\\u0000fhir-number:12","value":1.50}'


def counting_client(flavour: str, sent: list[int]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(len(request.content))
        return httpx.Response(201, content=ANSWER, headers={"Content-Type": "application/json"})

    return client_of(flavour, handler)


async def peak_ratio(flavour: str, send: Any, warm_up: Any) -> float:
    """tracemalloc's peak while ``send(client)`` runs, over the size of the body sent."""
    sent: list[int] = []
    client = counting_client(flavour, sent)
    await call(warm_up(client))  # class caches, schema builds: outside the measurement
    gc.collect()
    tracemalloc.start()
    try:
        await call(send(client))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak / sent[-1]


@functools.cache
def large_batch(models: bool) -> dict[str, Any]:
    # The ratio does not depend on the count: models (slow to build) are 1,000 entries.
    if models:
        return batch(1000, lambda i: Patient.model_validate(patient(i)))
    return batch(5000)


@pytest.mark.parametrize("models", [False, True], ids=["dicts", "models"])
@pytest.mark.parametrize("accounts", [None, ["Organization/a", "Organization/b"]])
async def test_a_5000_entry_batch_is_sent_without_copies_of_its_body(
    flavour: str, models: bool, accounts: Any
) -> None:
    # json.dumps built the body as a str (4 bytes a character once one is outside the BMP,
    # here an emoji), then its UTF-8 copy: 12.5x the body at the peak; accounts= held a
    # stamped copy of every entry, and the dict of every model resource, until the body was
    # written (14.7x dicts, 21.4x models). Now 1.2-2.2x (a 1,000-entry body counts the
    # per-entry bookkeeping more than a 5,000-entry one: 1.2-1.6x there).
    data = large_batch(models)
    small = {**data, "entry": data["entry"][:2]}
    ratio = await peak_ratio(
        flavour,
        lambda c: c.execute_batch(data, accounts=accounts),
        lambda c: c.execute_batch(small, accounts=accounts),
    )
    assert ratio < 2.5, f"peak {ratio:.2f}x the body"


async def test_a_large_dict_resource_is_sent_without_copies_of_its_body(flavour: str) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "panel"},
        "component": [
            {"code": {"text": f"c{i} Größe"}, "valueQuantity": {"value": Decimal("1.50")}}
            for i in range(5000)
        ],
    }
    ratio = await peak_ratio(
        flavour,
        lambda c: c.create_resource(observation),
        lambda c: c.create_resource({**observation, "component": []}),
    )
    assert ratio < 2.5, f"peak {ratio:.2f}x the body"


async def test_a_stamped_batch_leaves_the_callers_data_unchanged(flavour: str) -> None:
    data = batch(20)
    data["entry"][3]["resource"]["meta"] = {"accounts": [{"reference": "Organization/x"}]}
    data["entry"][4]["resource"] = Patient.model_validate(
        {**patient(4), "meta": {"accounts": [{"reference": "Organization/x"}]}}
    )
    before = copy.deepcopy(data)
    sent: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(201, content=ANSWER)

    client = client_of(flavour, handler)
    await call(client.execute_batch(data, accounts="Organization/a"))
    assert data == before
    entries = json.loads(sent[-1])["entry"]
    assert [a["reference"] for a in entries[3]["resource"]["meta"]["accounts"]] == [
        "Organization/x",
        "Organization/a",
    ]
    assert [a["reference"] for a in entries[4]["resource"]["meta"]["accounts"]] == [
        "Organization/x",
        "Organization/a",
    ]
    assert entries[0]["resource"]["meta"] == {"accounts": [{"reference": "Organization/a"}]}
    # The stamped body is the one a copy stamped by hand encodes to, decimals exact.
    expected = copy.deepcopy(before)
    expected["entry"][4]["resource"] = json.loads(
        before["entry"][4]["resource"].model_dump_json(by_alias=True, exclude_none=True),
        parse_float=ExponentDecimal,
    )
    for entry in expected["entry"]:
        meta = entry["resource"].setdefault("meta", {})
        if {"reference": "Organization/a"} not in meta.setdefault("accounts", []):
            meta["accounts"].append({"reference": "Organization/a"})
    assert sent[-1] == reference_encoding(expected)


# Bundle and resource models: sent as their own JSON, entry by entry for a Bundle, stamped on
# shallow copies. The bytes must be those the client sent when it dumped the model to a dict
# (wire_dict), stamped that dict and encoded it: reference_encoding of that dict, stamped by hand.

ACCOUNTS = ["Organization/a", "Organization/b"]


def wire_json(model: Any) -> Any:
    return json.loads(
        model.model_dump_json(by_alias=True, exclude_none=True), parse_float=ExponentDecimal
    )


def stamp_by_hand(resource: dict[str, Any], accounts: list[str]) -> None:
    """meta.accounts extended in place as the dict stamping does: a new key goes last."""
    meta = resource.setdefault("meta", {})
    existing = meta.setdefault("accounts", [])
    for ref in accounts:
        if {"reference": ref} not in existing:
            existing.append({"reference": ref})


def sending_client(flavour: str, sent: list[bytes]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(201, content=ANSWER, headers={"Content-Type": "application/json"})

    return client_of(flavour, handler)


def varied_resources() -> list[dict[str, Any]]:
    """Resources whose meta is in each state stamping meets, with decimals and non-ASCII."""
    after_accounts = {
        "versionId": "3",
        "tag": [{"code": "x"}],
        "compartment": [{"reference": "Patient/c"}],
    }
    return [
        patient(0),  # no meta
        {**patient(1), "meta": {"accounts": [{"reference": "Organization/b"}]}},  # one present
        {**patient(2), "meta": after_accounts},  # accounts goes after compartment
        {**patient(3), "meta": None},  # stored as None: not written, so the new meta goes last
        {**patient(4), "meta": {"versionId": "1", "accounts": None}},
        {
            **patient(5),
            "meta": {
                "accounts": [{"reference": "Organization/a"}, {"reference": "Organization/b"}]
            },
        },
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "Größe 🙂"},
            "valueQuantity": {"value": Decimal("1.50"), "unit": "µg"},
            "component": [
                {"code": {"text": "c"}, "valueQuantity": {"value": ExponentDecimal("1e-7")}}
            ],
        },
    ]


@pytest.mark.parametrize("accounts", [None, ACCOUNTS], ids=["plain", "accounts"])
async def test_a_bundle_model_is_sent_as_the_bytes_of_its_dict(flavour: str, accounts: Any) -> None:
    entries: list[dict[str, Any]] = [
        {"resource": resource, "request": {"method": "PUT" if i % 2 else "POST", "url": "Patient"}}
        for i, resource in enumerate(varied_resources())
    ]
    entries += [
        {"fullUrl": "urn:uuid:1", "request": {"method": "GET", "url": "Patient/x"}},
        {"request": {"method": "DELETE", "url": "Patient/y"}, "unknownElement": {"n": 1.50}},
        {
            "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json"},
            "request": {"method": "PATCH", "url": "Patient/z"},
        },
        {"resource": patient(9), "request": {"method": "POST", "url": "Patient"}},
    ]
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "id": "b1",
            "meta": {"tag": [{"code": "é"}]},
            "type": "batch",
            "entry": entries,
            "signature": {
                "type": [{"code": "1.2"}],
                "when": "2024-01-01T00:00:00Z",
                "who": {"reference": "Practitioner/p"},
            },
        }
    )
    before = bundle.model_dump_json()
    expected = {"resourceType": "Bundle", "type": "batch", **wire_json(bundle)}
    if accounts is not None:
        for entry in expected["entry"]:
            method = entry.get("request", {}).get("method", "").upper()
            if "resource" in entry and method in ("POST", "PUT"):
                stamp_by_hand(entry["resource"], accounts)
    sent: list[bytes] = []
    client = sending_client(flavour, sent)
    await call(client.execute_batch(bundle, accounts=accounts))
    assert sent[-1] == reference_encoding(expected)
    await call(client.execute_transaction(bundle))
    assert sent[-1] == reference_encoding({**wire_json(bundle), "type": "transaction"})
    assert bundle.model_dump_json() == before  # the caller's model is not changed


@pytest.mark.parametrize("index", range(len(varied_resources())))
async def test_a_stamped_model_is_sent_as_the_bytes_of_its_stamped_dict(
    flavour: str, index: int
) -> None:
    data = varied_resources()[index]
    model: Any = Observation if data["resourceType"] == "Observation" else Patient
    resource = model.model_validate({**data, "id": "r1"})
    before = resource.model_dump_json()
    expected = wire_json(resource)
    stamp_by_hand(expected, ACCOUNTS)
    sent: list[bytes] = []
    client = sending_client(flavour, sent)
    await call(client.create_resource(resource, accounts=ACCOUNTS))
    assert sent[-1] == reference_encoding(expected)
    await call(client.update_resource(resource, accounts=ACCOUNTS[:1]))
    expected = wire_json(resource)
    stamp_by_hand(expected, ACCOUNTS[:1])
    assert sent[-1] == reference_encoding(expected)
    assert resource.model_dump_json() == before  # the caller's model is not changed


@functools.cache
def large_bundle_model() -> Bundle:
    return Bundle.model_validate(batch(1000))


@pytest.mark.parametrize("accounts", [None, ACCOUNTS], ids=["plain", "accounts"])
async def test_a_bundle_model_is_sent_entry_by_entry(flavour: str, accounts: Any) -> None:
    # The Bundle model was dumped to one dict tree, then encoded: 12.0x the body (9.9x with
    # accounts=; an emoji in each entry). Now its entries are written in runs: 1.3x (1.9x with
    # accounts=, which holds a deferred stamping per entry).
    bundle = large_bundle_model()
    small = Bundle.model_validate(batch(2))
    ratio = await peak_ratio(
        flavour,
        lambda c: c.execute_batch(bundle, accounts=accounts),
        lambda c: c.execute_batch(small, accounts=accounts),
    )
    assert ratio < 2.5, f"peak {ratio:.2f}x the body"


async def test_a_large_model_is_stamped_without_its_dict(flavour: str) -> None:
    # accounts= dumped the model to a dict to stamp it: 14.3x the body. Now a shallow copy with
    # the new meta is sent as its own JSON, its components written in runs: 1.5x.
    observation = Observation.model_validate(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "panel"},
            "component": [
                {"code": {"text": f"c{i} Größe"}, "valueQuantity": {"value": Decimal("1.50")}}
                for i in range(5000)
            ],
        }
    )
    small = Observation.model_validate(
        {"resourceType": "Observation", "status": "final", "code": {}}
    )
    ratio = await peak_ratio(
        flavour,
        lambda c: c.create_resource(observation, accounts=ACCOUNTS),
        lambda c: c.create_resource(small, accounts=ACCOUNTS),
    )
    assert ratio < 2.5, f"peak {ratio:.2f}x the body"


def test_a_large_model_is_written_list_by_list_as_its_own_json() -> None:
    # A model's long lists are written in runs of elements (model_parts): the bytes are
    # those of the model's own JSON, written whole.
    component = {
        "code": {"coding": [{"system": "urn:x", "code": "c", "display": "Größe 🙂"}]},
        "valueQuantity": {"value": Decimal("1.50"), "unit": "µg"},
        "unknownElement": {"n": Decimal("2.50"), "s": "\u2028\x00"},
    }
    observation = Observation.model_validate(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "panel"},
            "note": [{"text": f"note {i} é"} for i in range(70)],
            "component": [
                {**component, "valueQuantity": {"value": ExponentDecimal("1e-7")}},
                *([component] * 999),
            ],
            "valueQuantity": {"value": Decimal("0.10")},
            "unknownList": [{"n": i} for i in range(100)],  # an unknown element: written whole
        }
    )
    parts = model_parts(observation)
    assert parts is not None
    assert [key for key, value in parts.items() if type(value) is ModelList] == [
        "note",
        "component",
    ]
    whole = observation.model_dump_json(by_alias=True, exclude_none=True).encode()
    assert encode_json(observation) == whole
    # The model's own serializer writes each run: an element of a user's subclass is written
    # as the model writes it. A dict appended without validation, which pydantic writes its
    # own way ("1.50" as a string), leaves the list to the model's JSON written whole.

    class Component(ObservationComponent):
        extra_field: str = "x"

    observation.component = [*observation.component[:-2], Component.model_validate(component)]
    assert encode_json(observation) == observation.model_dump_json().encode()
    observation.component.append(component)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic's, about the dict
        lists = [k for k, v in (model_parts(observation) or {}).items() if type(v) is ModelList]
        assert lists == ["note"]
        whole = observation.model_dump_json(by_alias=True, exclude_none=True).encode()
        assert b'"value":"1.50"' in whole
        assert encode_json(observation) == whole
    bundle = large_bundle_model()
    assert encode_json(bundle) == bundle.model_dump_json(by_alias=True, exclude_none=True).encode()

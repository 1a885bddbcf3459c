"""Model request bodies, differentially: the bytes the client sends for a FHIR model are those
it sent before large models were written in runs (``model_parts``) and stamped on copies
(``stamp_model_accounts``).

- ``encode_json(model)`` == ``model_json_bytes(model)`` (the model's own JSON, written whole);
- ``create_resource(model, accounts=...)``'s body == the model's JSON decoded to a dict, stamped
  by the dict path (``stamp_accounts``), encoded by one ``json.dumps``;
- ``execute_batch(bundle_model, accounts=...)``'s body == the same, each POST / PUT entry's
  resource stamped in the Bundle's dict.

On the examples of ``hl7.fhir.r4.examples@4.0.1`` (the 5,032 of at most 64 KB the models
accept, every resource type among them: see LARGEST), each made "large": every list of models
at any depth, reached from the resource, padded to at least ``_MODEL_RUN`` items (so the
top-level ones take the run path, but those of 1..* elements, which model_parts leaves to the
whole model), and on batch Bundles of them; then on models built by hand for what the
examples lack (decimals, text, unknown elements, subclasses, unvalidated list items), and
through both clients.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import warnings
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field, field_serializer
from pydantic_core import PydanticSerializationError

import pymedplum.fhir as fhir
from codegen.fhir_packages import ensure
from codegen.roundtrip import KNOWN_INVALID, as_text_numbers, example_documents
from pymedplum._async._overrides.bundles import _bundle_json
from pymedplum._async._overrides.resources import _prepared
from pymedplum._request_builders.accounts import stamp_accounts, stamp_bundle_accounts
from pymedplum._serialization import (
    _MODEL_RUN,
    ExponentDecimal,
    ModelList,
    encode_json,
    model_json_bytes,
    model_parts,
    wire_dict,
)
from pymedplum.fhir import (
    Bundle,
    BundleEntry,
    BundleEntryRequest,
    Meta,
    Observation,
    ObservationComponent,
    Patient,
    Questionnaire,
    Reference,
)

from .conftest import call, client_of, reference_encoding

pytestmark = pytest.mark.anyio

PACKAGE = "hl7.fhir.r4.examples@4.0.1"
ACCOUNTS = ["Organization/a", "Organization/b"]

# --- the expected bytes: the old way ------------------------------------------------------------


def old_stamped(model: BaseModel, accounts: list[str]) -> bytes:
    """The model's JSON as a dict, stamped by the dict path, encoded."""
    return reference_encoding(stamp_accounts(wire_dict(model), accounts))


def old_batch(bundle: BaseModel, accounts: list[str] | None) -> bytes:
    """execute_batch's body as it was: the Bundle's dict, each POST / PUT entry's resource
    stamped by the dict path."""
    data = wire_dict(bundle)
    if accounts is not None and isinstance(data.get("entry"), list):
        entries = []
        for entry in data["entry"]:
            request = entry.get("request") if isinstance(entry, dict) else None
            method = request.get("method") if isinstance(request, dict) else None
            if method in ("POST", "PUT") and isinstance(entry.get("resource"), dict):
                entry = {**entry, "resource": stamp_accounts(entry["resource"], accounts)}
            entries.append(entry)
        data = {**data, "entry": entries}
    return reference_encoding({"resourceType": "Bundle", "type": "batch", **data})


# --- the bytes sent now -------------------------------------------------------------------------


def new_stamped(model: BaseModel, accounts: list[str]) -> bytes:
    """create_resource(model, accounts=...)'s body: _prepared's body, encoded (the client's
    _call_endpoint encodes it with encode_json)."""
    _, body = _prepared(model, accounts)
    return encode_json(body)


def new_batch(bundle: BaseModel, accounts: list[str] | None) -> bytes:
    """execute_batch(bundle, accounts=...)'s body, built as ``_execute_batch`` builds it (the
    client tests below check the clients send these bytes)."""
    data = _bundle_json(bundle)
    if accounts is not None:
        data = stamp_bundle_accounts(data, accounts)
    return encode_json({"resourceType": "Bundle", "type": "batch", **data})


def first_difference(new: bytes, old: bytes) -> str:
    at = next(
        (i for i, (a, b) in enumerate(zip(new, old, strict=False)) if a != b),
        min(len(new), len(old)),
    )
    start = max(0, at - 60)
    return f"at byte {at}: sent {new[start : at + 60]!r}, expected {old[start : at + 60]!r}"


def assert_same(new: bytes, old: bytes, label: str) -> None:
    assert new == old, f"{label}: {first_difference(new, old)}"


# --- inflating the examples ---------------------------------------------------------------------


def model_lists(model: BaseModel) -> Iterator[tuple[str, list[Any]]]:
    """The elements of ``model`` that are lists holding models (None items allowed)."""
    for name, value in model.__dict__.items():
        if type(value) is list and any(isinstance(item, BaseModel) for item in value):
            yield name, value


def padded(items: list[Any], run: int) -> list[Any]:
    """``items`` repeated (cyclically) up to ``run`` items."""
    return [*items, *itertools.islice(itertools.cycle(items), max(0, run - len(items)))]


def inflate(model: Any, run: int = _MODEL_RUN) -> Any:
    """A copy of ``model`` in which every list of models, at any depth, holds ``run`` items or
    more: its items (inflated the same way), then its items again (as they are) up to ``run``.

    A repeating primitive and its ``_x`` list (``given`` / ``given_ext``) are padded together,
    so that they stay aligned. The padding repeats items as they were, so the size grows by
    about ``run`` times each list's items rather than ``run`` to the power of the depth; every
    list of the example is still ``run`` long in the inflated copies (see :func:`short_lists`).
    """
    if not isinstance(model, BaseModel):
        return model
    update: dict[str, Any] = {}
    stored = model.__dict__
    for name, value in stored.items():
        if isinstance(value, BaseModel):
            update[name] = inflate(value, run)
    for name, items in model_lists(model):
        update[name] = [inflate(item, run) for item in items] + padded(items, run)[len(items) :]
        partner = stored.get(name.removesuffix("_ext")) if name.endswith("_ext") else None
        if type(partner) is list:
            assert len(partner) == len(items), name
            update[name.removesuffix("_ext")] = padded(partner, run)
    return model.model_copy(update=update) if update else model


def all_models(model: Any, found: set[int]) -> set[int]:
    """The ids of ``model`` and of every model in it."""
    if isinstance(model, BaseModel) and id(model) not in found:
        found.add(id(model))
        for value in model.__dict__.values():
            for item in value if type(value) is list else [value]:
                all_models(item, found)
    return found


def short_lists(model: Any, originals: set[int], path: str, counted: list[int]) -> list[str]:
    """The lists of models shorter than _MODEL_RUN in the inflated copies of ``model`` (models
    not in ``originals``), each list counted in ``counted``."""
    if not isinstance(model, BaseModel) or id(model) in originals:
        return []
    short = []
    for name, value in model.__dict__.items():
        if type(value) is list and any(isinstance(item, BaseModel) for item in value):
            counted.append(1)
            if len(value) < _MODEL_RUN:
                short.append(f"{path}.{name}")
            # The copies are first; the padding repeats originals.
            for index, item in enumerate(value):
                short += short_lists(item, originals, f"{path}.{name}[{index}]", counted)
        elif isinstance(value, BaseModel):
            short += short_lists(value, originals, f"{path}.{name}", counted)
    return short


def list_count(model: Any, seen: set[int]) -> int:
    """How many lists of models ``model`` holds, at any depth (each model counted once)."""
    if not isinstance(model, BaseModel) or id(model) in seen:
        return 0
    seen.add(id(model))
    count = 0
    for value in model.__dict__.values():
        if type(value) is list and any(isinstance(item, BaseModel) for item in value):
            count += 1
        for item in value if type(value) is list else [value]:
            count += list_count(item, seen)
    return count


def run_keys(model: BaseModel) -> list[str]:
    """The JSON keys of ``model``'s elements that encode_json writes in runs."""
    parts = model_parts(model)
    return [key for key, value in (parts or {}).items() if type(value) is ModelList]


def expected_run_keys(model: BaseModel) -> list[str]:
    """The declared top-level lists of ``_MODEL_RUN`` models or more (no None or dict items)."""
    fields = type(model).__pydantic_fields__
    return [
        fields[name].alias or name
        for name, value in model.__dict__.items()
        if name in fields
        and type(value) is list
        and len(value) >= _MODEL_RUN
        and all(isinstance(item, BaseModel) for item in value)
    ]


# The examples are sampled by size: 5,032 of the 5,293 the models accept are 64 KB or less
# (22 MB), every resource type among them; the 261 larger ones (165 MB: StructureDefinitions,
# CodeSystems, ValueSets, up to 20 MB) would make the test minutes long once inflated.
LARGEST = 64_000


@functools.cache
def examples() -> list[tuple[str, Any]]:
    """(member name, model) of every example of at most LARGEST bytes that the models accept
    (the others are listed, with the reason, in codegen.roundtrip.KNOWN_INVALID)."""
    known = KNOWN_INVALID[PACKAGE]
    found = []
    for name, raw in example_documents(ensure(PACKAGE)):
        if name in known or len(raw) > LARGEST:
            continue
        resource_type = json.loads(raw)["resourceType"]
        found.append((name, fhir.get_model(resource_type).model_validate_json(raw)))
    return found


def with_accounts(model: Any, index: int) -> Any:
    """``model`` with its meta in one of the states stamping meets, by ``index``: as it is (no
    meta, or the example's), one of ACCOUNTS already there, another account there."""
    present = [None, ACCOUNTS[1], "Organization/x"][index % 3]
    if present is None:
        return model
    meta = model.meta or Meta()
    accounts = [Reference(reference=present)]
    return model.model_copy(update={"meta": meta.model_copy(update={"accounts": accounts})})


@pytest.mark.examples
def test_every_example_inflated_is_sent_as_its_own_json() -> None:
    models = examples()
    assert len(models) == 5032
    types: collections.Counter[str] = collections.Counter()
    runs = 0
    checked_valid: set[str] = set()
    for index, (name, model) in enumerate(models):
        resource_type = model.resource_type
        types[resource_type] += 1
        big = inflate(with_accounts(model, index))
        # Every list of models of the example is _MODEL_RUN long in the inflated copy.
        counted: list[int] = []
        assert short_lists(big, all_models(model, set()), resource_type, counted) == [], name
        assert len(counted) == list_count(with_accounts(model, index), set()), name
        # The top-level lists of models take the run path (not those of 1..* elements, whose
        # MinLen metadata model_parts leaves to the whole model).
        keys = run_keys(big)
        assert set(keys) <= set(expected_run_keys(big)), name
        runs += len(keys)
        assert_same(encode_json(big), model_json_bytes(big), name)
        # create_resource(model, accounts=...): the model path (a stamped copy) is taken.
        assert isinstance(_prepared(big, ACCOUNTS)[1], BaseModel), name
        assert_same(new_stamped(big, ACCOUNTS), old_stamped(big, ACCOUNTS), f"{name} accounts")
        if resource_type not in checked_valid:
            # The inflated data is still valid: one example of each type read back.
            checked_valid.add(resource_type)
            text = model_json_bytes(big)
            again = model_json_bytes(type(model).model_validate_json(text))
            # The same content (a meta added by with_accounts moves to its place in the order).
            assert as_text_numbers(again) == as_text_numbers(text), name
    assert len(types) == 140  # every resourceType of the package
    assert runs > 5000  # most examples have top-level lists of models


def with_requests(bundle: Bundle) -> Bundle:
    """``bundle`` as a batch whose entries carry requests: POST and PUT (stamped), and GET,
    DELETE, PATCH, HEAD (not stamped), in turn."""
    methods = ["POST", "PUT", "GET", "POST", "DELETE", "PUT", "PATCH", "HEAD"]
    entries = [
        entry.model_copy(
            update={
                "request": BundleEntryRequest(
                    method=methods[index % len(methods)],  # type: ignore[arg-type]
                    url=entry.resource.resource_type if entry.resource is not None else "x",
                )
            }
        )
        for index, entry in enumerate(bundle.entry or [])
    ]
    return bundle.model_copy(update={"type": "batch", "entry": entries})


def assert_batch_bytes(bundle: Bundle, label: str) -> None:
    for accounts in (None, ACCOUNTS):
        assert_same(new_batch(bundle, accounts), old_batch(bundle, accounts), f"{label} {accounts}")


@pytest.mark.examples
def test_every_bundle_example_is_sent_as_its_stamped_dict() -> None:
    # Each Bundle example, its entries given requests (some stamped) and padded to _MODEL_RUN
    # or more, every list in them too.
    bundles = [(name, m) for name, m in examples() if m.resource_type == "Bundle"]
    assert len(bundles) == 25  # of the 44, those of at most LARGEST bytes
    stamped = 0
    for index, (name, bundle) in enumerate(bundles):
        if not bundle.entry:
            continue
        big = inflate(with_accounts(with_requests(bundle), index))
        assert "entry" in run_keys(big)
        assert_batch_bytes(big, name)
        stamped += sum(1 for e in big.entry if e.resource and e.request.method in ("POST", "PUT"))
    assert stamped > 1000


@pytest.mark.examples
def test_every_example_in_a_batch_is_sent_as_its_stamped_dict() -> None:
    # Every example as the resource of a batch entry (Bundles too), in batches of 512 entries:
    # each resource type stamped in an entry, its meta in each state.
    models = examples()
    methods = ["POST", "PUT", "POST", "DELETE"]
    for start in range(0, len(models), 512):
        entries = [
            BundleEntry(
                resource=with_accounts(model, index),
                request=BundleEntryRequest(
                    method=methods[index % len(methods)],  # type: ignore[arg-type]
                    url=model.resource_type,
                ),
            )
            for index, (_, model) in enumerate(models[start : start + 512], start)
        ]
        bundle = Bundle(type="batch", entry=entries)
        assert_batch_bytes(bundle, f"batch of examples {start}..")


# --- models built by hand: what the examples lack -----------------------------------------------


def component(i: int, value: Decimal = Decimal("1.50")) -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": "urn:x", "code": f"c{i}", "display": "Größe 🙂\u2028"}]},
        "valueQuantity": {"value": value, "unit": "µg"},
    }


DECIMALS = [
    Decimal("1.50"),
    ExponentDecimal("1e-7"),
    ExponentDecimal("1.0E+2"),
    Decimal("-0"),
    Decimal("-0.0"),
    Decimal("66.899999999999991"),
    Decimal("100"),
    Decimal("0.000000000000000000001"),
]


def observation(**extra: Any) -> Observation:
    return Observation.model_validate(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": 'panel \x00\x1f\x7f\u2029\ufeff "\\/ 李 🙂'},
            "component": [component(i, DECIMALS[i % len(DECIMALS)]) for i in range(70)],
            **extra,
        }
    )


class DeclaredList(Observation):
    """A user's subclass with a list element of its own, under another JSON name."""

    mine: list[ObservationComponent] | None = Field(default=None, serialization_alias="theirs")


class ExcludedList(Observation):
    """A user's subclass with a list element it does not write."""

    hidden: list[ObservationComponent] | None = Field(default=None, exclude=True)


class ExcludedIfList(Observation):
    hidden: list[ObservationComponent] | None = Field(default=None, exclude_if=lambda v: True)


class SerializedStatus(Observation):
    @field_serializer("status")
    def _status(self, value: Any) -> str:
        return "amended"


class ComponentSubclass(ObservationComponent):
    extra_field: str = "x"


class DefaultReference(Reference):
    kind: str = "default"


class DefaultMeta(Meta):
    flag: str = "default"
    accounts: list[DefaultReference] | None = None


class PatientOwnMeta(Patient):
    """A user's subclass whose meta and references write defaults of their own."""

    meta: DefaultMeta | None = None


class PatientNoMeta(Patient):
    """A user's subclass that does not write its meta."""

    meta: Meta | None = Field(default=None, exclude=True)


class PatientMetaAlias(Patient):
    meta: Meta | None = Field(default=None, serialization_alias="metaX")


class SerializedMeta(Meta):
    @field_serializer("accounts")
    def _accounts(self, value: Any) -> None:
        return None


class PatientSerializedMeta(Patient):
    meta: SerializedMeta | None = None


def set_stored(model: BaseModel, name: str, value: Any) -> BaseModel:
    """``model`` with ``value`` stored as element ``name``, not validated (as a user's
    ``model.__dict__`` or ``list.append`` does)."""
    model.__dict__[name] = value
    return model


def odd_models() -> dict[str, Callable[[], BaseModel]]:
    patients = [
        {"resourceType": "Patient", "id": f"p{i}", "name": [{"family": "Ü"}]} for i in range(70)
    ]
    unknown_json = (
        json.dumps({"resourceType": "Observation", "status": "final", "code": {}})[:-1]
        + ',"component":['
        + ",".join(
            '{"code":{},"valueQuantity":{"value":1.50},"unknownInItem":-0.0}' for _ in range(70)
        )
        + '],"unknownList":['
        + ",".join('{"n":1.50,"e":1E400}' for _ in range(70))
        + '],"unknownNumber":1e-7,"meta":{"tag":[{"code":"t"}],"unknownMeta":0.10}}'
    )
    given = {"given": ["a", None, "c"], "_given": [None, {"id": "x"}, None]}
    return {
        "decimals and text": lambda: observation(valueQuantity={"value": Decimal("-0")}),
        "decimals in extensions": lambda: Patient.model_validate(
            {
                "resourceType": "Patient",
                "extension": [
                    {"url": "urn:d", "valueDecimal": DECIMALS[i % len(DECIMALS)]} for i in range(80)
                ],
                "_birthDate": {"extension": [{"url": "u", "valueString": "é"}]},
            }
        ),
        "floats assigned": lambda: set_stored(observation(), "unknownFloat", [1e16, 0.1 + 0.2]),
        "unknown elements from JSON": lambda: Observation.model_validate_json(unknown_json),
        "unknown list of dicts with decimals": lambda: set_stored(
            observation(), "zzz", [{"a": Decimal("1.50"), "b": "🙂"}] * 70
        ),
        "_x siblings with nulls": lambda: Patient.model_validate(
            {"resourceType": "Patient", "name": [given] * 70}
        ),
        "top-level _x list with nulls": lambda: Questionnaire.model_validate(
            {
                "resourceType": "Questionnaire",
                "status": "active",
                "subjectType": ["Patient", None] * 40,
                "_subjectType": [None, {"extension": [{"url": "u", "valueDecimal": 1.5}]}] * 40,
            }
        ),
        "top-level _x list of models": lambda: Questionnaire.model_validate(
            {
                "resourceType": "Questionnaire",
                "status": "active",
                "subjectType": ["Patient"] * 70,
                "_subjectType": [{"id": f"s{i}"} for i in range(70)],
            }
        ),
        "contained": lambda: observation(contained=patients),
        "None in a list": lambda: set_stored(
            observation(), "component", [None, *observation().component]
        ),
        "dict in a list": lambda: set_stored(
            observation(), "component", [*observation().component, component(1)]
        ),
        "another model class in a list": lambda: set_stored(
            observation(), "component", [*observation().component, Patient(id="p")]
        ),
        "None element in an item": lambda: set_stored(
            observation(),
            "component",
            [
                set_stored(
                    ObservationComponent.model_validate(component(1)), "value_quantity", None
                ),
                *observation().component,
            ],
        ),
        "item subclass": lambda: observation(
            component=[ComponentSubclass.model_validate(component(i)) for i in range(70)]
        ),
        "subclass list, serialization alias": lambda: DeclaredList.model_validate(
            {**wire_dict(observation()), "mine": [component(i) for i in range(70)]}
        ),
        "subclass list, excluded": lambda: ExcludedList.model_validate(
            {**wire_dict(observation()), "hidden": [component(i) for i in range(70)]}
        ),
        "subclass list, exclude_if": lambda: ExcludedIfList.model_validate(
            {**wire_dict(observation()), "hidden": [component(i) for i in range(70)]}
        ),
        "subclass field serializer": lambda: SerializedStatus.model_validate(
            wire_dict(observation())
        ),
        "subclass meta and reference with defaults, no meta": lambda: PatientOwnMeta(
            name=[{"family": "x"}] * 70
        ),
        "subclass meta and reference with defaults, meta": lambda: PatientOwnMeta.model_validate(
            {"meta": {"versionId": "1", "accounts": [{"reference": "Organization/q"}]}}
        ),
        "subclass meta excluded": lambda: PatientNoMeta.model_validate(
            {"meta": {"versionId": "1"}}
        ),
        "subclass meta excluded, no meta": lambda: PatientNoMeta(id="x"),
        "subclass meta alias": lambda: PatientMetaAlias.model_validate(
            {"meta": {"versionId": "1"}}
        ),
        "subclass meta alias, no meta": lambda: PatientMetaAlias(id="x"),
        "subclass meta serializer": lambda: PatientSerializedMeta.model_validate(
            {"meta": {"versionId": "1"}}
        ),
        "meta stored as None": lambda: set_stored(observation(), "meta", None),
        "meta accounts holding a dict": meta_accounts_holding_a_dict,
    }


def meta_accounts_holding_a_dict() -> BaseModel:
    model = observation(meta={"versionId": "1"})
    set_stored(model.meta, "accounts", [{"reference": "Organization/q"}])
    return model


@pytest.mark.parametrize("case", list(odd_models()))
def test_odd_models_are_sent_as_their_json(case: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic's and dump_quietly's, about unvalidated items
        model = odd_models()[case]()
        assert_same(encode_json(model), model_json_bytes(model), case)
        assert_same(new_stamped(model, ACCOUNTS), old_stamped(model, ACCOUNTS), f"{case} accounts")
        entries = [
            BundleEntry(request=BundleEntryRequest(method=method, url="x"))  # type: ignore[arg-type]
            for method in ("POST", "PUT", "GET")
        ]
        for entry in entries:
            entry.__dict__["resource"] = model  # as it is: validation would make it a Observation
        bundle = Bundle(type="batch", entry=entries * 30)
        assert_batch_bytes(bundle, f"{case} in a batch")


def test_the_odd_models_take_the_run_path_where_they_can() -> None:
    # The cases above test the run path, not only the whole-model fallback.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        taken = {case: run_keys(make()) for case, make in odd_models().items()}
    assert taken["decimals and text"] == ["component"]
    assert taken["unknown elements from JSON"] == ["component"]  # not unknownList
    assert taken["top-level _x list of models"] == ["_subjectType"]
    assert taken["top-level _x list with nulls"] == []
    assert taken["contained"] == ["contained", "component"]
    assert taken["None in a list"] == taken["dict in a list"] == []
    assert taken["item subclass"] == ["component"]
    assert taken["subclass list, serialization alias"] == ["component", "theirs"]
    # Left out of the model's JSON: not written in runs (it was, as "hidden":[,]).
    assert taken["subclass list, excluded"] == taken["subclass list, exclude_if"] == ["component"]
    assert taken["subclass field serializer"] == []


def test_a_string_json_cannot_hold_fails_alike() -> None:
    # A lone surrogate (half an emoji): written in runs or whole, the same error.
    model = observation()
    set_stored(model.component[3].code, "text", "\ud83d")
    with pytest.raises(PydanticSerializationError, match="surrogates not allowed"):
        model_json_bytes(model)
    with pytest.raises(PydanticSerializationError, match="surrogates not allowed"):
        encode_json(model)


class EntryWithoutResource(BundleEntry):
    """A user's entry subclass that does not write its resource."""

    resource: Any = Field(default=None, exclude=True)


def test_odd_bundle_entries_are_sent_as_their_stamped_dict() -> None:
    def entries() -> list[BundleEntry]:
        return [
            BundleEntry.model_validate(
                {
                    "resource": {
                        "resourceType": "Patient",
                        "id": f"p{i}",
                        "name": [{"family": "Ü🙂"}],
                    },
                    "request": {
                        "method": ["POST", "PUT", "GET", "DELETE"][i % 4],
                        "url": "Patient",
                    },
                }
            )
            for i in range(70)
        ]

    def bundle(items: list[Any]) -> Bundle:
        model = Bundle(type="batch")
        model.__dict__["entry"] = items  # as it is
        return model

    cases: dict[str, list[Any]] = {"plain": entries()}
    odd = cases["meta accounts holding a dict"] = entries()
    odd[0].resource.meta = Meta(versionId="1")
    odd[0].resource.meta.__dict__["accounts"] = [{"reference": "Organization/q"}]
    odd = cases["meta as a dict"] = entries()
    odd[1].resource.__dict__["meta"] = {"versionId": "1", "unknown": Decimal("1.50")}
    odd = cases["meta as None"] = entries()
    odd[0].resource.__dict__["meta"] = None
    odd = cases["unknown elements"] = entries()
    odd[1].__dict__["zz"] = Decimal("1.50")
    odd[0].resource.__dict__["zz"] = [Decimal("1e-7")]
    odd = cases["a dict entry"] = entries()
    odd.append({"request": {"method": "POST", "url": "x"}, "resource": {"resourceType": "Patient"}})
    odd = cases["a dict request"] = entries()
    odd[0].__dict__["request"] = {"method": "POST", "url": "x"}
    odd = cases["None entry"] = [*entries(), None]
    odd = cases["subclassed meta"] = entries()
    odd[0].__dict__["resource"] = PatientOwnMeta.model_validate({"meta": {"versionId": "1"}})
    odd[1].__dict__["resource"] = PatientNoMeta.model_validate({"meta": {"versionId": "1"}})
    odd[4].__dict__["resource"] = PatientMetaAlias(id="p")
    odd = cases["entry not writing its resource"] = [
        EntryWithoutResource.model_validate(entry.model_dump()) for entry in entries()
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case, items in cases.items():
            assert_batch_bytes(bundle(items), case)
        # Written by the class the Bundle declares for its entries: here, without resources.
        own = BundleOfEntriesWithoutResource(type="batch")
        own.__dict__["entry"] = cases["entry not writing its resource"]
        assert b'"resource"' not in new_batch(own, ACCOUNTS)
        assert_batch_bytes(own, "entries declared without resources")


class BundleOfEntriesWithoutResource(Bundle):
    entry: list[EntryWithoutResource] | None = None  # type: ignore[assignment]


# --- through the clients ------------------------------------------------------------------------

ANSWER = b'{"resourceType":"Bundle","type":"batch-response","entry":[]}'


def recording_client(flavour: str, sent: list[bytes]) -> Any:
    """A client whose transport records each request body and answers with it (a resource
    written is answered with itself), or with an empty batch-response for a Bundle."""

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        bundle = request.url.path.rstrip("/").endswith("/R4")
        answer = ANSWER if bundle else request.content
        return httpx.Response(201, content=answer, headers={"Content-Type": "application/json"})

    return client_of(flavour, handler)


CLIENT_RESOURCES = [
    "package/Observation-bgpanel.json",
    "package/Patient-example.json",
    "package/Questionnaire-3141.json",
    "package/Composition-example.json",
]
CLIENT_BUNDLES = ["package/Bundle-bundle-transaction.json", "package/Bundle-bundle-response.json"]


@pytest.mark.examples
@pytest.mark.parametrize("example", CLIENT_RESOURCES)
async def test_the_clients_send_an_inflated_example_as_before(flavour: str, example: str) -> None:
    model = inflate(dict(examples())[example])
    assert run_keys(model)
    before = model_json_bytes(model)
    sent: list[bytes] = []
    client = recording_client(flavour, sent)
    await call(client.create_resource(model, accounts=ACCOUNTS))
    assert_same(sent[-1], old_stamped(model, ACCOUNTS), example)
    await call(client.create_resource(model))
    assert_same(sent[-1], before, example)
    await call(client.update_resource(model, accounts=ACCOUNTS[:1]))
    assert_same(sent[-1], old_stamped(model, ACCOUNTS[:1]), example)
    assert model_json_bytes(model) == before  # the caller's model is not changed


@pytest.mark.examples
@pytest.mark.parametrize("example", CLIENT_BUNDLES)
async def test_the_clients_send_an_inflated_bundle_example_as_before(
    flavour: str, example: str
) -> None:
    bundle = inflate(with_requests(dict(examples())[example]))
    before = model_json_bytes(bundle)
    sent: list[bytes] = []
    client = recording_client(flavour, sent)
    for accounts in (ACCOUNTS, None):
        await call(client.execute_batch(bundle, accounts=accounts))
        assert_same(sent[-1], old_batch(bundle, accounts), f"{example} {accounts}")
        assert sent[-1] == new_batch(bundle, accounts)  # what the examples above check
    await call(client.execute_transaction(bundle))
    expected = {**wire_dict(bundle), "resourceType": "Bundle", "type": "transaction"}
    assert_same(sent[-1], reference_encoding(expected), f"{example} transaction")
    assert model_json_bytes(bundle) == before

"""How a model instance stores its elements (docs/models.md, "Only present elements are stored").

Instances keep only the elements present (unknown ones under their JSON name) in ``__dict__``;
the pydantic API around that storage must behave as pydantic users expect.
"""

from __future__ import annotations

import copy
import json
import pickle
from decimal import Decimal

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from codegen.roundtrip import as_text_numbers
from pymedplum.fhir import (
    AccessPolicyResource,
    Bundle,
    Extension,
    HumanName,
    Meta,
    Observation,
    Patient,
    Quantity,
)
from pymedplum.fhir._base import SharedFieldsSet

PATIENT = (
    '{"resourceType":"Patient","id":"p1","active":true,"name":[{"family":"Chalmers",'
    '"given":["Peter"],"x-name-note":{"n":1.50}}],"x-server":{"nested":[1,2.50,"a"]},'
    '"birthDate":"1974-12"}'
)


def parsed() -> Patient:
    return Patient.model_validate_json(PATIENT)


def same_json(a: str, b: str) -> bool:
    """Equal JSON, numbers compared as text (key order is not part of JSON)."""
    return bool(as_text_numbers(a) == as_text_numbers(b))


def test_only_present_elements_are_stored() -> None:
    patient = parsed()
    assert set(patient.__dict__) == {
        "resource_type", "id", "active", "name", "x-server", "birth_date"
    }  # fmt: skip
    assert patient.gender is None  # absent, not stored, still reads as None
    assert patient.name is not None
    assert set(patient.name[0].__dict__) == {"family", "given", "x-name-note"}


def test_resource_type_is_written_first() -> None:
    # FHIR JSON puts resourceType first; it is declared after the inherited id/meta/... though.
    text = '{"meta":{"versionId":"2"},"id":"p1","gender":"male","resourceType":"Patient"}'
    for patient in (
        Patient.model_validate_json(text),
        Patient.model_validate(json.loads(text)),
        Patient(id="p1", meta=Meta(version_id="2"), gender="male"),
        Patient.model_construct(id="p1", meta=Meta(version_id="2"), gender="male"),
    ):
        assert list(json.loads(patient.model_dump_json(exclude_none=True))) == [
            "resourceType", "id", "meta", "gender"
        ]  # fmt: skip
        assert next(iter(patient.model_dump(by_alias=True))) == "resourceType"
    # A resourceType without a model is a generic Resource; it still comes first.
    bundle = Bundle.model_validate_json(
        '{"resourceType":"Bundle","type":"collection","entry":[{"resource":'
        '{"id":"f1","meta":{"versionId":"1"},"resourceType":"FutureThing","x":1.50}}]}'
    )
    dumped = bundle.model_dump_json(exclude_none=True)
    assert '"resource":{"resourceType":"FutureThing","id":"f1","meta":' in dumped
    assert dumped.endswith('"x":1.50}}]}')
    # Not a resource: an element named resourceType keeps its FHIR position.
    rule = AccessPolicyResource(readonly=True, resource_type="Patient", id="r1")
    assert list(json.loads(rule.model_dump_json(exclude_none=True))) == [
        "id", "resourceType", "readonly"
    ]  # fmt: skip


def test_unknown_elements_are_extras_and_survive_every_dump() -> None:
    patient = parsed()
    assert patient.model_extra == {"x-server": {"nested": [1, Decimal("2.50"), "a"]}}
    assert patient.name is not None
    assert patient.name[0].model_extra == {"x-name-note": {"n": Decimal("1.50")}}
    assert same_json(patient.model_dump_json(by_alias=True, exclude_none=True), PATIENT)
    dumped = patient.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["x-server"] == {"nested": [1, 2.5, "a"]}
    assert patient.model_dump(by_alias=True)["name"][0]["x-name-note"] == {"n": Decimal("1.50")}


def test_fields_set_is_the_present_elements() -> None:
    patient = parsed()
    assert patient.model_fields_set == set(patient.__dict__)
    built = Patient(gender="male")
    assert built.model_fields_set == {"resource_type", "gender"}


def test_exclude_unset_keeps_everything_present() -> None:
    patient = parsed()
    assert same_json(patient.model_dump_json(by_alias=True, exclude_unset=True), PATIENT)
    constructed = Patient.model_construct(_fields_set={"id"}, id="a", gender="male")
    assert constructed.model_dump(exclude_unset=True) == {"id": "a"}


def test_instances_share_one_read_only_fields_set() -> None:
    a = HumanName.model_validate({"family": "A"})
    b = HumanName.model_validate({"given": ["B"]})
    assert type(a.__pydantic_fields_set__) is SharedFieldsSet
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    with pytest.raises(TypeError, match="read-only"):
        a.__pydantic_fields_set__.add("text")
    a.text = "A"  # assignment gives the instance a set of its own
    assert a.model_fields_set == {"family", "text"}
    assert b.model_fields_set == {"given"}
    assert a.model_dump() == {"family": "A", "text": "A"}


def test_assigning_and_deleting() -> None:
    patient = parsed()
    patient.gender = "female"
    patient.x_local = [1]  # an unknown element set by the program is kept too
    del patient.active
    assert patient.active is None
    assert "active" not in patient.model_fields_set
    dumped = patient.model_dump(by_alias=True, exclude_none=True)
    assert dumped["gender"] == "female"
    assert dumped["x_local"] == [1]
    assert "active" not in dumped


def test_copies_are_independent() -> None:
    patient = parsed()
    deep = copy.deepcopy(patient)
    shallow = copy.copy(patient)
    assert deep == patient
    assert shallow == patient
    assert deep.name is not None
    deep.name[0].family = "Other"
    assert patient.name is not None
    assert patient.name[0].family == "Chalmers"
    shallow.gender = "male"
    assert patient.gender is None


def test_model_copy_update_known_and_unknown() -> None:
    patient = parsed()
    updated = patient.model_copy(update={"gender": "male", "x-added": True})
    assert updated.gender == "male"
    assert json.loads(updated.model_dump_json(by_alias=True))["x-added"] is True
    assert {"gender", "x-added"} <= updated.model_fields_set
    assert patient.gender is None
    assert "x-added" not in patient.__dict__


def test_model_copy_update_is_not_validated_but_assignment_after_it_is() -> None:
    # docs/models.md: model_copy(update=...) stores its values as given (pydantic's rule);
    # copying and then assigning validates.
    patient = parsed()
    unchecked = patient.model_copy(update={"gender": "banana", "name": [{"family": "Doe"}]})
    assert unchecked.gender == "banana"  # type: ignore[comparison-overlap]
    assert unchecked.name == [{"family": "Doe"}]  # type: ignore[comparison-overlap]
    checked = patient.model_copy()
    with pytest.raises(ValidationError, match="gender"):
        checked.gender = "banana"  # type: ignore[assignment]
    checked.name = [{"family": "Doe"}]  # type: ignore[list-item]
    assert checked.name == [HumanName(family="Doe")]


def test_pickle_round_trip() -> None:
    patient = parsed()
    again = pickle.loads(pickle.dumps(patient))
    assert again == patient
    assert same_json(again.model_dump_json(by_alias=True), PATIENT)
    assert again.model_fields_set == patient.model_fields_set


def test_equality_ignores_none_versus_absent_but_sees_extras() -> None:
    assert Patient(gender=None) == Patient()
    assert Patient(gender="male") != Patient()
    a = Patient.model_validate({"resourceType": "Patient", "x": 1})
    b = Patient.model_validate({"resourceType": "Patient", "x": 2})
    assert a != b
    assert Patient() != HumanName()


def test_model_construct_takes_python_or_fhir_names() -> None:
    built = Patient.model_construct(birthDate="2020", multiple_birth_integer=2, extra_thing=1)
    assert built.birth_date == "2020"
    assert built.multiple_birth_integer == 2
    assert built.resource_type == "Patient"
    assert built.model_dump(by_alias=True) == {
        "birthDate": "2020",
        "multipleBirthInteger": 2,
        "extra_thing": 1,
        "resourceType": "Patient",
    }


def test_model_construct_stores_the_elements_in_fhirs_order() -> None:
    # They were stored, and written, in the order given (pydantic's model_construct follows
    # the fields' order, and validation FHIR's).
    values = {"x_note": 1, "birthDate": "1970", "name": [HumanName(family="Doe")], "id": "p"}
    built = Patient.model_construct(**values)
    assert built.model_dump_json() == (
        '{"resourceType":"Patient","id":"p","name":[{"family":"Doe"}],"birthDate":"1970",'
        '"x_note":1}'
    )
    assert built.model_dump_json() == Patient(**values).model_dump_json()


def test_repr_shows_present_and_unknown_elements() -> None:
    text = repr(parsed())
    assert "birth_date='1974-12'" in text
    assert "x-server" in text
    assert "gender" not in text


def test_choice_check_runs_on_construction_parse_and_nested() -> None:
    with pytest.raises(ValidationError, match="At most one of value"):
        Extension(url="u", value_string="a", value_integer=1)
    with pytest.raises(ValidationError) as caught:
        Observation.model_validate(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "extension": [{"url": "u", "valueString": "a", "valueBoolean": True}],
            }
        )
    assert caught.value.errors()[0]["loc"] == ("extension", 0)
    # A choice element given as null beside a real one is not two values.
    ext = Extension.model_validate({"url": "u", "valueString": "a", "valueInteger": None})
    assert ext.value_string == "a"


def test_models_inside_other_pydantic_types() -> None:
    class Wrapper(BaseModel):
        patient: Patient
        quantities: list[Quantity]

    wrapped = Wrapper.model_validate(
        {"patient": json.loads(PATIENT), "quantities": [{"value": 1.5, "unit": "kg"}]}
    )
    assert wrapped.patient.model_extra == {"x-server": {"nested": [1, 2.5, "a"]}}
    assert json.loads(wrapped.model_dump_json(by_alias=True, exclude_unset=True))["patient"][
        "x-server"
    ] == {"nested": [1, 2.5, "a"]}
    listed = TypeAdapter(list[Patient]).validate_python([{"resourceType": "Patient", "id": "1"}])
    assert listed[0].id == "1"


def test_json_schema_still_describes_the_fields() -> None:
    schema = Patient.model_json_schema(by_alias=True)
    properties = schema["properties"]
    assert "birthDate" in properties
    assert "_birthDate" in properties
    assert properties["resourceType"]["const"] == "Patient"


def test_a_string_that_looks_like_a_decimal_mark_is_kept() -> None:
    # Decimals that a float would not reproduce are written through a marked string; a string
    # value holding NUL characters must never be taken for one.
    text = (
        '{"resourceType":"Observation","status":"final","code":{"text":"\\u0000\\u001f12"},'
        '"valueQuantity":{"value":1.50},"note":[{"text":"\\u00001.50"}]}'
    )
    observation = Observation.model_validate_json(text)
    assert same_json(observation.model_dump_json(by_alias=True, exclude_none=True), text)


def test_user_subclasses_keep_the_storage_and_their_validators() -> None:
    from pydantic import PrivateAttr, field_validator, model_validator

    class TaggedPatient(Patient):
        tag: str | None = None
        _seen: int = PrivateAttr(default=0)

        @field_validator("tag")
        @classmethod
        def upper_tag(cls, value: str | None) -> str | None:
            return None if value is None else value.upper()

        @model_validator(mode="after")
        def count(self) -> TaggedPatient:
            self._seen += 1
            return self

    tagged = TaggedPatient.model_validate(
        {"resourceType": "Patient", "tag": "vip", "x-extra": [1], "gender": "male"}
    )
    assert tagged.tag == "VIP"
    assert tagged._seen == 1
    assert set(tagged.__dict__) == {"resource_type", "tag", "x-extra", "gender"}
    assert tagged.model_extra == {"x-extra": [1]}
    assert tagged.birth_date is None
    copied = copy.copy(tagged)
    deep = copy.deepcopy(tagged)
    assert copied._seen == deep._seen == 1
    assert deep.model_dump(by_alias=True) == {
        "resourceType": "Patient",
        "tag": "VIP",
        "x-extra": [1],
        "gender": "male",
    }
    with pytest.raises(ValidationError):
        TaggedPatient.model_validate({"resourceType": "Patient", "tag": 5})


def test_subclasses_are_not_kept_alive_by_the_models_caches() -> None:
    # Assignment caches per class (Python names, element validators, null pairs) were
    # module-level dicts keyed by class: every subclass a program made stayed alive for good.
    import gc
    import weakref

    from pymedplum.fhir import Patient

    def use_a_subclass() -> weakref.ref[type[Patient]]:
        class PerRequest(Patient):
            pass

        patient = PerRequest(name=[{"family": "Doe"}])  # type: ignore[list-item]
        patient.birthDate = "1970"  # by FHIR name: the Python-names cache
        patient.name = [{"given": ["A"]}]  # type: ignore[list-item]  # element validator, null pair
        assert patient.model_dump_json() == (
            '{"resourceType":"Patient","name":[{"given":["A"]}],"birthDate":"1970"}'
        )
        return weakref.ref(PerRequest)

    refs = [use_a_subclass() for _ in range(3)]
    gc.collect()
    assert [ref() for ref in refs] == [None, None, None]

"""The models used the way a pydantic v2 user uses any model (docs/models.md).

JSON schemas in both modes, the models inside the user's own models, subclasses with their own
config, and the BaseModel API around the models' storage.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import jiter
import pytest
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    computed_field,
    field_serializer,
    model_validator,
    root_validator,
)
from pydantic.warnings import PydanticDeprecatedSince20
from pydantic_core import PydanticSerializationError

from pymedplum.fhir import Bundle, Observation, Parameters, Patient, Quantity

ROOT = Path(__file__).resolve().parents[2]


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a ``$ref`` (alone or as the first of an ``anyOf``) resolved."""
    if "anyOf" in node:
        node = node["anyOf"][0]
    ref = node.get("$ref")
    if ref is None:
        return node
    resolved: dict[str, Any] = schema["$defs"][ref.rsplit("/", 1)[1]]
    return resolved


# --- JSON schema -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["validation", "serialization"])
def test_json_schema_of_resource_fields_in_both_modes(mode: Any) -> None:
    # FastAPI asks for the serialization schema of a response model: it failed with
    # PydanticInvalidForJsonSchema for every resource (DomainResource.contained is
    # Resource-typed), and the validation schema said nothing (`{}`) about such a field.
    schema = Bundle.model_json_schema(mode=mode)
    entry = schema["$defs"]["BundleEntry"]["properties"]["resource"]
    assert resolve(schema, entry)["title"] == "Resource"
    observation = Observation.model_json_schema(mode=mode)
    contained = observation["properties"]["contained"]["anyOf"][0]["items"]
    assert "implicitRules" in resolve(observation, contained)["properties"]
    parameters = Parameters.model_json_schema(mode=mode)
    parameter = parameters["$defs"]["ParametersParameter"]["properties"]["resource"]
    assert resolve(parameters, parameter)["title"] == "Resource"


@pytest.mark.parametrize("mode", ["validation", "serialization"])
def test_json_schema_of_a_decimal_is_a_number_in_both_modes(mode: Any) -> None:
    # The serialization schema of a decimal was `{}` (the serializer's return type is Any).
    schema = Quantity.model_json_schema(mode=mode)
    quantity = resolve(schema, schema)  # Quantity refers to itself (through Extension)
    assert quantity["properties"]["value"]["anyOf"][0] == {"type": "number"}


@pytest.mark.parametrize("mode", ["validation", "serialization"])
def test_json_schema_of_models_inside_user_types(mode: Any) -> None:
    class Page(BaseModel):
        items: list[Observation]
        bundle: Bundle | None = None

    schema = Page.model_json_schema(mode=mode)
    assert {"Observation", "Bundle", "Resource"} <= set(schema["$defs"])
    adapter = TypeAdapter(list[Patient])
    assert adapter.json_schema(mode=mode)["items"]["$ref"] == "#/$defs/Patient"
    json.dumps(schema)  # plain JSON


def test_json_schema_of_the_output_requires_resource_type() -> None:
    # A resource always writes its resourceType, but the serialization schema (FastAPI's for a
    # response model) said it might be missing: OpenAPI asks that a discriminator property be
    # required. Input may leave it out (Patient(id="x")).
    assert Observation.model_json_schema(mode="serialization")["required"] == [
        "resourceType",
        "status",
        "code",
    ]
    assert Observation.model_json_schema(mode="validation")["required"] == ["status", "code"]
    assert "required" not in Patient.model_json_schema(mode="validation")
    by_name = Patient.model_json_schema(mode="serialization", by_alias=False)
    assert by_name["required"] == ["resource_type"]
    union = TypeAdapter(
        list[Annotated[Patient | Observation, Field(discriminator="resource_type")]]
    )
    schema = union.json_schema(mode="serialization")
    assert schema["items"]["discriminator"]["propertyName"] == "resourceType"
    assert all("resourceType" in schema["$defs"][n]["required"] for n in ("Patient", "Observation"))
    # The abstract Resource (contained, Bundle.entry.resource) declares no resourceType.
    assert "required" not in Bundle.model_json_schema(mode="serialization")["$defs"]["Resource"]


@pytest.mark.parametrize("first", ["OperationOutcome", "Patient", "Bundle"])
def test_json_schema_does_not_depend_on_which_model_was_built_first(first: str) -> None:
    # A fresh interpreter: the models a process builds first hand their schemas to the others.
    # With OperationOutcome (one Resource field) first, pydantic inlined the Resource model
    # everywhere and "$defs" had no "Resource" (tests/fhir alone failed; the full suite not).
    code = f"""
import json
from pydantic import BaseModel
from pymedplum.fhir import Bundle, get_model
get_model({first!r}).model_rebuild()

class Page(BaseModel):
    bundle: Bundle | None = None

for mode in ("validation", "serialization"):
    schema = Page.model_json_schema(mode=mode)
    entry = schema["$defs"]["BundleEntry"]["properties"]["resource"]["anyOf"][0]
    print(mode, entry, "Resource" in schema["$defs"])
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{mode} {{'$ref': '#/$defs/Resource'}} True" for mode in ("validation", "serialization")
    ]


# --- readable errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "loc", "error_type", "hint"),
    [
        ({"language": "en  US"}, ("language",), "fhir_code", "whitespace"),
        ({"implicitRules": "a b"}, ("implicitRules",), "fhir_uri", "without whitespace"),
        ({"meta": {"profile": ["x y"]}}, ("meta", "profile", 0), "fhir_canonical", "whitespace"),
        ({"meta": {"versionId": "a/b"}}, ("meta", "versionId"), "fhir_id", "64 letters"),
        ({"photo": [{"data": "a b!"}]}, ("photo", 0, "data"), "fhir_base64_binary", "b64encode"),
        (
            {"identifier": [{"system": "urn:ietf:rfc:3986", "value": "x"}], "photo": [{"url": 5}]},
            ("photo", 0, "url"),
            "fhir_url",
            "without whitespace",
        ),
    ],
)
def test_pattern_errors_say_what_fhir_expects(
    data: dict[str, object], loc: tuple[object, ...], error_type: str, hint: str
) -> None:
    # Not pydantic's "String should match pattern '<the FHIR regex>'".
    with pytest.raises(ValidationError) as info:
        Patient.model_validate({"resourceType": "Patient", **data})
    (error,) = info.value.errors()
    assert (error["loc"], error["type"]) == (loc, error_type)
    assert hint in error["msg"] and "pattern" not in error["msg"]


# --- numbers in unknown elements and beyond a float ------------------------------------------


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), {"a": [float("-inf")]}, Decimal("NaN"), (Decimal("Inf"),)]
)
def test_non_finite_numbers_in_unknown_elements_are_refused(value: object) -> None:
    # They are not JSON: a float one was written back as null, a Decimal one failed to write.
    with pytest.raises(ValidationError) as info:
        Patient.model_validate({"resourceType": "Patient", "x-note": value})
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("x-note",), "finite_number")]


def test_non_finite_numbers_read_by_pydantics_parser_are_refused() -> None:
    # Inside the user's model pydantic's own JSON parser reads the text, and it accepts Infinity.
    class Wrapper(BaseModel):
        patient: Patient

    with pytest.raises(ValidationError) as info:
        Wrapper.model_validate_json('{"patient":{"resourceType":"Patient","x-note":Infinity}}')
    assert info.value.errors()[0]["type"] == "finite_number"


def test_a_tuple_in_an_unknown_element_is_a_json_array_of_numbers() -> None:
    # Decimals in a tuple were written as strings ("1.50").
    patient = Patient.model_validate({"resourceType": "Patient", "x-pair": (1, Decimal("1.50"))})
    assert patient.model_dump_json().endswith('"x-pair":[1,1.50]}')
    patient.x_other = (Decimal("2.50"),)  # assigned, not validated
    assert json.loads(patient.model_dump_json(), parse_float=Decimal)["x_other"] == [
        Decimal("2.50")
    ]


class UncheckedQuantity(Quantity):
    """Assignment not validated (pydantic's default, which the FHIR models turn on)."""

    model_config = ConfigDict(validate_assignment=False)


def test_a_non_finite_decimal_assigned_is_refused() -> None:
    quantity = Quantity(value=Decimal("1"))
    with pytest.raises(ValidationError) as info:
        quantity.value = Decimal("NaN")
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("value",), "decimal_finite")]
    assert quantity.value == Decimal("1")  # unchanged
    # Without validation (a subclass's choice), writing it says what is wrong.
    unchecked = UncheckedQuantity(value=Decimal("1"))
    unchecked.value = Decimal("NaN")
    with pytest.raises(PydanticSerializationError, match="finite number"):
        unchecked.model_dump_json()


def test_a_decimal_beyond_float_range_stays_a_number() -> None:
    # float("1e400") is infinite: mode="json" gave None and other serializers wrote null.
    quantity = Quantity.model_validate_json('{"value":1e400}')
    assert quantity.model_dump_json() == '{"value":1e400}'
    assert quantity.model_dump(mode="json") == {"value": 10**400}
    written = TypeAdapter(list[Quantity]).dump_json([quantity])
    assert json.loads(written) == [{"value": 10**400}]


def test_pydantic_v1_methods_write_and_read_fhir_json() -> None:
    # Code written for fhir.resources calls .json(), .dict() and parse_raw(): pydantic's
    # deprecated versions wrote the Python names ({"resource_type":"Patient","birth_date":...},
    # not FHIR) and read numbers as floats (1.50 became 1.5).
    text = (
        '{"resourceType":"Observation","status":"final","code":{},"valueQuantity":{"value":1.50}}'
    )
    with pytest.warns(PydanticDeprecatedSince20, match="model_validate_json") as caught:
        observation = Observation.parse_raw(text)
    assert caught[0].filename == __file__  # the warning points at the caller
    with pytest.warns(PydanticDeprecatedSince20, match="model_dump_json"):
        assert observation.json() == text
    with pytest.warns(PydanticDeprecatedSince20, match="model_dump"):
        dumped = observation.dict(exclude={"status"})
    assert dumped == {
        "resourceType": "Observation",
        "code": {},
        "valueQuantity": {"value": Decimal("1.50")},
    }
    with pytest.warns(PydanticDeprecatedSince20):
        assert observation.dict(by_alias=False)["value_quantity"] == {"value": Decimal("1.50")}
    with pytest.warns(PydanticDeprecatedSince20):
        assert Observation.parse_raw(text.encode()).value_quantity.value == Decimal("1.50")


def test_pydantic_v1_parse_file_reads_fhir_json_exactly(tmp_path: Path) -> None:
    # fhir.resources' README reads examples with Model.parse_file(path); pydantic's version
    # read numbers as floats, so 1.50 came back (and was written back) as 1.5.
    text = (
        '{"resourceType":"Observation","status":"final","code":{},"valueQuantity":{"value":1.50}}'
    )
    path = tmp_path / "observation.json"
    path.write_text(text, encoding="utf-8")
    with pytest.warns(PydanticDeprecatedSince20, match="model_validate_json") as caught:
        observation = Observation.parse_file(path)
    assert caught[0].filename == __file__  # the warning points at the caller
    assert observation.model_dump_json() == text
    with pytest.warns(PydanticDeprecatedSince20):
        assert Observation.parse_file(str(path), content_type="application/json") == observation
    latin = tmp_path / "patient.txt"  # no .json suffix; another encoding
    latin.write_bytes('{"resourceType":"Patient","name":[{"family":"Müller"}]}'.encode("latin-1"))
    with pytest.warns(PydanticDeprecatedSince20):
        patient = Patient.parse_file(latin, encoding="latin-1")
    assert patient.name is not None and patient.name[0].family == "Müller"
    other = tmp_path / "patient.json"
    other.write_text('{"resourceType":"Patient"}', encoding="utf-8")
    with pytest.warns(PydanticDeprecatedSince20), pytest.raises(ValidationError) as info:
        Observation.parse_file(other)  # a Patient read as an Observation
    assert info.value.errors()[0]["loc"] == ("resourceType",)


def test_reading_an_element_by_its_fhir_name_says_which_attribute_to_read() -> None:
    # Code ported from fhir.resources (whose attributes are the FHIR names) reads
    # patient.birthDate; assignment and the constructor take that name, reading did not say
    # what to use instead ("'Patient' object has no attribute 'birthDate'").
    patient = Patient(birthDate="1970-01-01")
    with pytest.raises(AttributeError, match=r"'birthDate'.*\.birth_date\b") as info:
        _ = patient.birthDate  # type: ignore[attr-defined]
    assert (info.value.name, info.value.obj) == ("birthDate", patient)
    assert "1970" not in str(info.value)  # the message names the attribute, never the value
    observation = Observation(status="final", code={})
    with pytest.raises(AttributeError, match=r"'valueQuantity'.*\.value_quantity\b"):
        _ = observation.valueQuantity  # type: ignore[attr-defined]
    # fhir.resources' name of the primitive's extension sibling, and the FHIR JSON one.
    with pytest.raises(AttributeError, match=r"'birthDate__ext'.*\.birth_date_ext\b"):
        _ = patient.birthDate__ext  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match=r"'_birthDate'.*\.birth_date_ext\b"):
        _ = patient._birthDate
    # Names that are no element keep pydantic's message; getattr's default still works.
    with pytest.raises(AttributeError, match=r"^'Patient' object has no attribute 'brith_date'$"):
        _ = patient.brith_date  # type: ignore[attr-defined]
    assert getattr(patient, "birthDate", "absent") == "absent"
    assert not hasattr(patient, "birthDate")


def test_pydantic_v1_copy_keeps_the_resource_type_and_a_true_fields_set() -> None:
    # copy(include={"id"}) wrote {"id": "p"}: no resourceType, which FHIR JSON always has.
    patient = Patient(id="p", active=True, name=[{"family": "F", "given": ["A"]}])
    with pytest.warns(PydanticDeprecatedSince20, match="model_copy") as caught:
        picked = patient.copy(include={"id"})
    assert caught[0].filename == __file__  # the warning points at the caller
    assert picked.model_dump_json() == '{"resourceType":"Patient","id":"p"}'
    assert picked.model_fields_set == {"resource_type", "id"}
    with pytest.warns(PydanticDeprecatedSince20):
        nested = patient.copy(include={"name": {0: {"family"}}}, update={"birthDate": "1970"})
    assert nested.model_dump(exclude_unset=True) == {
        "resourceType": "Patient",
        "name": [{"family": "F"}],
        "birthDate": "1970",
    }
    with pytest.warns(PydanticDeprecatedSince20):
        assert patient.copy(exclude={"active"}, deep=True).model_dump() == {
            "resourceType": "Patient",
            "id": "p",
            "name": [{"family": "F", "given": ["A"]}],
        }


# --- a user's subclass with its own config ---------------------------------------------------


def test_a_subclass_can_forbid_or_ignore_unknown_elements() -> None:
    # Unknown elements were kept whatever the subclass said.
    class StrictPatient(Patient):
        model_config = ConfigDict(extra="forbid")

    class TrimmedPatient(Patient):
        model_config = ConfigDict(extra="ignore")

    data = {"resourceType": "Patient", "id": "p", "x-note": 1}
    with pytest.raises(ValidationError) as info:
        StrictPatient.model_validate(data)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [
        (("x-note",), "extra_forbidden")
    ]
    with pytest.raises(ValueError, match="no field"):
        StrictPatient(id="p").x_note = 1
    assert TrimmedPatient.model_validate(data).model_dump() == {
        "resourceType": "Patient",
        "id": "p",
    }
    assert Patient.model_validate(data).model_extra == {"x-note": 1}  # the models keep them


def test_a_subclass_can_validate_assignment() -> None:
    # Every assignment raised "TypeError: validate_assignment is not supported for typed-dict".
    class CheckedPatient(Patient):
        model_config = ConfigDict(validate_assignment=True)

    patient = CheckedPatient(id="p")
    patient.birth_date = "1970-03"
    patient.birthDate = "1971"
    patient.name = [{"family": "Doe"}]  # validated: becomes a HumanName
    assert patient.model_dump_json() == (  # elements in the order they were first set
        '{"resourceType":"Patient","id":"p","birthDate":"1971","name":[{"family":"Doe"}]}'
    )
    assert type(patient.name[0]).__name__ == "HumanName"
    assert {"birth_date", "name"} <= patient.model_fields_set
    with pytest.raises(ValidationError) as info:
        patient.birth_date = "03/1970"
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("birth_date",), "fhir_date")]
    assert patient.birth_date == "1971"  # unchanged


def test_an_undeclared_private_attribute_is_not_an_element() -> None:
    # pydantic keeps `model._note = ...` as a plain attribute, outside the data; here it went into
    # the storage and was written (and sent to the server) as an unknown element "_note".
    import copy
    import pickle

    patient = Patient(gender="male")
    patient._note = "kept for the app"
    assert patient._note == "kept for the app"
    assert patient.model_extra == {}
    assert patient.model_dump() == {"resourceType": "Patient", "gender": "male"}
    assert patient.model_fields_set == {"resource_type", "gender"}
    for copied in (
        copy.copy(patient),
        copy.deepcopy(patient),
        pickle.loads(pickle.dumps(patient)),
        patient.model_copy(),
    ):
        assert copied._note == "kept for the app"
    del patient._note
    with pytest.raises(AttributeError):
        _ = patient._note
    # An unknown `_x` element read from FHIR JSON is data, and assigning it replaces it.
    read = Patient.model_validate({"_nickname": {"id": "a"}})
    read._nickname = {"id": "b"}
    assert read.model_dump() == {"resourceType": "Patient", "_nickname": {"id": "b"}}


def test_a_subclass_with_a_before_model_validator_keeps_the_storage() -> None:
    # A model_validator(mode="before") sits between the model and its fields in pydantic's
    # schema: the storage was not put in, so every absent element was stored as None and
    # written as null (`{"id":null,"meta":null,...}`, 37 of them) and resourceType came after
    # the inherited elements.
    seen: list[object] = []

    class RenamingPatient(Patient):
        @model_validator(mode="before")
        @classmethod
        def nickname_is_the_id(cls, data: Any) -> Any:
            seen.append(data)
            if isinstance(data, dict) and "nick" in data:
                data = {k: v for k, v in data.items() if k != "nick"} | {"id": data["nick"]}
            return data

    text = '{"resourceType":"Patient","nick":"p1","birthDate":"1970","valueX":1.50}'
    patient = RenamingPatient.model_validate_json(text)
    assert len(seen) == 1
    assert patient.id == "p1"
    assert patient.__dict__.keys() == {"resource_type", "id", "birth_date", "valueX"}
    assert patient.model_fields_set == {"resource_type", "id", "birth_date", "valueX"}
    assert patient.model_dump_json() == (
        '{"resourceType":"Patient","id":"p1","birthDate":"1970","valueX":1.50}'
    )
    assert RenamingPatient(gender="male").model_dump() == {
        "resourceType": "Patient",
        "gender": "male",
    }
    patient.gender = "female"  # assignment runs the validator over the whole model
    assert len(seen) == 3
    assert patient.model_dump(exclude={"valueX"}) == {
        "resourceType": "Patient",
        "id": "p1",
        "birthDate": "1970",
        "gender": "female",
    }


def test_a_subclass_with_a_deprecated_root_validator_keeps_the_storage() -> None:
    # pydantic v1's @root_validator puts a function around the fields' schema (before or
    # after): the subclass wrote every absent element as null, as above.
    with pytest.warns(PydanticDeprecatedSince20):

        class CheckedPatient(Patient):
            @root_validator(skip_on_failure=True)
            @classmethod
            def activate(cls, values: dict[str, Any]) -> dict[str, Any]:
                # Only the present elements are given (v1 gave every field, None if absent).
                assert "name" not in values
                return {**values, "active": True}

            @root_validator(pre=True)
            @classmethod
            def nothing(cls, values: dict[str, Any]) -> dict[str, Any]:
                return values

    patient = CheckedPatient.model_validate({"id": "p"})
    assert patient.model_dump() == {"resourceType": "Patient", "id": "p", "active": True}
    # With an unknown element the instance has a fields set of its own: what the validator
    # added was missing from it, so exclude_unset dropped it.
    unknown = CheckedPatient.model_validate({"id": "p", "xNote": 1})
    assert unknown.model_fields_set == {"resource_type", "id", "xNote", "active"}
    assert unknown.model_dump(exclude_unset=True) == {
        "resourceType": "Patient",
        "id": "p",
        "xNote": 1,
        "active": True,
    }


def test_a_frozen_subclass_refuses_every_change() -> None:
    # Unknown elements could be added and elements deleted on a frozen instance.
    class FrozenPatient(Patient):
        model_config = ConfigDict(frozen=True)

    patient = FrozenPatient(id="p")
    for change in (
        lambda: setattr(patient, "id", "q"),
        lambda: setattr(patient, "x_note", 1),
        lambda: delattr(patient, "id"),
    ):
        with pytest.raises(ValidationError, match="frozen") as info:
            change()
        assert [e["type"] for e in info.value.errors()] == ["frozen_instance"]
        # pydantic's own frozen error showed the value assigned (PHI) in its text.
        assert "input_value" not in str(info.value)
    assert patient.model_dump() == {"resourceType": "Patient", "id": "p"}


def test_a_frozen_subclass_hashes_as_it_compares() -> None:
    # pydantic's hash of a frozen model took every declared field, an absent one as a
    # placeholder: equal models (an element None or absent is the same content) hashed apart,
    # so a set kept both.
    class FrozenPatient(Patient):
        model_config = ConfigDict(frozen=True)

    given_none, absent = FrozenPatient(id="p", active=None), FrozenPatient(id="p")
    assert given_none == absent
    assert hash(given_none) == hash(absent)
    assert len({given_none, absent, FrozenPatient.model_validate({"id": "p"})}) == 1
    assert hash(FrozenPatient(id="q")) != hash(absent)
    with pytest.raises(TypeError, match="unhashable type: 'list'"):  # as in pydantic
        hash(FrozenPatient(name=[{"family": "Doe"}]))
    with pytest.raises(TypeError, match="unhashable"):
        hash(Patient(id="p"))  # mutable

    class OwnHash(FrozenPatient):
        def __hash__(self) -> int:
            return 7

    assert hash(OwnHash(id="p")) == 7


# --- Resource-typed elements -----------------------------------------------------------------


@pytest.mark.parametrize("resource_type", ["Resource", "DomainResource", "NotAType"])
def test_resource_type_is_written_first_in_generic_and_abstract_resources(
    resource_type: str,
) -> None:
    # The abstract Resource and DomainResource declare no resourceType: it was written last.
    entry = {"resource": {"id": "x", "resourceType": resource_type}}
    bundle = Bundle.model_validate(
        {"resourceType": "Bundle", "type": "collection", "entry": [entry]}
    )
    assert bundle.model_dump_json().endswith(
        f'"resource":{{"resourceType":"{resource_type}","id":"x"}}}}]}}'
    )


# --- inside the user's models (docs/models.md, "With pydantic") ------------------------------


def test_decimal_text_inside_a_users_model_needs_lossless_numbers() -> None:
    class Scored(BaseModel):
        observation: Observation
        score: float

    text = (
        '{"observation":{"resourceType":"Observation","status":"final","code":{},'
        '"valueQuantity":{"value":1.50}},"score":0.5}'
    )
    # pydantic's own parser reads a float: the text of the decimal is lost ...
    parsed = Scored.model_validate_json(text).observation.value_quantity
    assert parsed is not None and str(parsed.value) == "1.5"
    # ... the documented recipe keeps it, and other numbers still validate as usual.
    scored = Scored.model_validate(jiter.from_json(text.encode(), float_mode="lossless-float"))
    assert scored.observation.value_quantity is not None
    assert str(scored.observation.value_quantity.value) == "1.50"
    assert scored.score == 0.5
    assert scored.observation.model_dump_json().endswith('"valueQuantity":{"value":1.50}}')


def test_a_subclass_keeps_its_field_serializers_and_field_settings() -> None:
    # The storage's schema dropped them: field_serializer did nothing, Field(exclude=True) was
    # written, and descriptions were missing from the JSON schema.
    class MyPatient(Patient):
        internal: str | None = Field(default=None, exclude=True)
        note: str | None = Field(default=None, description="a note")

        @field_serializer("gender")
        def shout(self, value: str | None) -> str | None:
            return None if value is None else value.upper()

    patient = MyPatient(gender="male", internal="kept here", note="n")
    assert patient.model_dump_json() == '{"resourceType":"Patient","gender":"MALE","note":"n"}'
    assert patient.model_dump() == {"resourceType": "Patient", "gender": "MALE", "note": "n"}
    assert patient.internal == "kept here"
    schema = MyPatient.model_json_schema()
    assert schema["properties"]["note"]["description"] == "a note"


def test_a_computed_field_on_a_subclass_is_a_clear_error() -> None:
    # It was left out of every dump without a word (pydantic-core reads a typed dict's computed
    # fields from the dict, not from the model).
    class Named(Patient):
        @computed_field  # type: ignore[prop-decorator]
        @property
        def display(self) -> str:
            return "x"

    with pytest.raises(TypeError, match=r"computed_field \(display\) is not supported"):
        Named(id="p")


def test_a_datatype_can_be_subclassed_before_it_is_used() -> None:
    # class MyName(HumanName) failed with "not fully defined ... define Extension" unless
    # HumanName had been used before (Element's "list[Extension]" is a forward reference).
    # A fresh interpreter: in this one HumanName is built already.
    code = """
from pymedplum.fhir import HumanName, Patient

class MyName(HumanName):
    def full(self) -> str:
        return " ".join([*(self.given or []), self.family or ""])

class Extension:  # the user's own name wins in the user's module
    pass

class MyPatient(Patient):
    name: list[MyName] | None = None
    other: Extension | None = None
    model_config = {"arbitrary_types_allowed": True}

patient = MyPatient.model_validate(
    {"name": [{"given": ["J"], "family": "Doe", "extension": [{"url": "u", "valueCode": "c"}]}]}
)
assert patient.name[0].full() == "J Doe", patient
assert MyPatient.model_fields["other"].annotation == Extension | None
print(patient.model_dump_json())
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        '{"resourceType":"Patient","name":[{"extension":[{"url":"u","valueCode":"c"}],'
        '"family":"Doe","given":["J"]}]}'
    )


@pytest.mark.parametrize(
    ("assigned", "written"),
    [
        (1.5, "1.5"),
        (2, "2"),
        (1e-7, "0.0000001"),
        (0.1 + 0.2, "0.30000000000000004"),
        (Decimal("72.50"), "72.50"),
    ],
)
def test_a_number_assigned_to_a_decimal_is_written_as_that_number(
    assigned: object, written: str
) -> None:
    # Assignment is not validated, and a float or int reached format(value, "f"): 1.5 was
    # written as 1.500000, 2 as 2.000000, and 1e-7 as 0.000000 (a changed value).
    observation = Observation.model_validate_json(
        '{"resourceType":"Observation","status":"final","code":{"text":"x"},'
        '"valueQuantity":{"value":1.50}}'
    )
    assert observation.value_quantity is not None
    observation.value_quantity.value = assigned  # type: ignore[assignment]
    text = observation.model_dump_json(by_alias=True, exclude_none=True)
    assert text.endswith('"valueQuantity":{"value":' + written + "}}")
    assert observation.model_dump(mode="json")["valueQuantity"]["value"] == json.loads(written)


@pytest.mark.parametrize(
    ("assigned", "problem"),
    [("3.0", "not str"), (True, "not bool"), (float("nan"), "finite number")],
)
def test_a_wrong_value_assigned_to_a_decimal_names_the_problem(
    assigned: object, problem: str
) -> None:
    # Refused where it is assigned, with the element's name.
    quantity = Quantity(value=Decimal("1"))
    with pytest.raises(ValidationError, match=f"value\n.*{problem}"):
        quantity.value = assigned  # type: ignore[assignment]
    # Without validation (a subclass's choice): a str failed with "Unknown format code 'f'" and
    # True was written as 1.000000; writing it now says what is wrong.
    unchecked = UncheckedQuantity(value=Decimal("1"))
    unchecked.value = assigned  # type: ignore[assignment]
    with pytest.raises(PydanticSerializationError, match=f"FHIR decimal .*{problem}"):
        unchecked.model_dump_json()

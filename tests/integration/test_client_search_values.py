"""FHIR search values as applications write them, with both clients against the live local
server (Medplum's own search parsing and matching): token forms, date prefixes, number and
quantity prefixes, AND / OR, escaped commas, non-ASCII text, modifiers, chains, meta
parameters, ``_summary=count``, queries too long for a URL, and paging while the data changes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sdk_clients import Api, unique

from pymedplum import FHIRBundle, ValidationError, escape_search_value
from pymedplum.fhir import RiskAssessment
from pymedplum.search_params import (
    GroupSearchParams,
    MedicationRequestSearchParams,
    ObservationSearchParams,
    PatientSearchParams,
    RiskAssessmentSearchParams,
)

pytestmark = pytest.mark.anyio


async def patient(api: Api, **fields: Any) -> dict[str, Any]:
    created: dict[str, Any] = await api.call(
        "create_resource", {"resourceType": "Patient", **fields}
    )
    return created


async def found(api: Api, resource_type: str, query: Any, **kwargs: Any) -> set[str]:
    """The ids of the matches (``search.mode`` match) of one search."""
    bundle = await api.call("search_resources", resource_type, query, **kwargs)
    return {
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match"
    }


def sent(api: Api) -> dict[str, list[str]]:
    """The parameters of the last request, as the server received them (decoded; the exact
    encoding is checked in tests/endpoints/test_search_wire.py)."""
    return api.fhir_events()[-1].query_params or {}


async def test_token_system_and_code_forms(api: Api) -> None:
    value = unique("v")
    a = await patient(api, identifier=[{"system": "urn:sys-a", "value": value}])
    b = await patient(api, identifier=[{"system": "urn:sys-b", "value": value}])
    bare = await patient(api, identifier=[{"value": value}])
    query: PatientSearchParams = {"identifier": f"urn:sys-a|{value}"}
    assert await found(api, "Patient", query) == {a["id"]}
    assert sent(api) == {"identifier": [f"urn:sys-a|{value}"]}
    assert await found(api, "Patient", {"identifier": value}) == {a["id"], b["id"], bare["id"]}
    # "|code": the code with no system at all.
    assert await found(api, "Patient", {"identifier": f"|{value}"}) == {bare["id"]}
    # "system|": any code of that system.
    other = await patient(api, identifier=[{"system": "urn:sys-b", "value": unique("w")}])
    by_system = await found(api, "Patient", {"identifier": "urn:sys-b|", "_count": 1000})
    assert {b["id"], other["id"]} <= by_system and a["id"] not in by_system


async def test_date_prefixes_and_and_or(api: Api) -> None:
    family = unique("Date")
    dates = ["1965-03-01", "1975-06-15", "1985-09-30", "1995-12-31"]
    ids = {d: (await patient(api, name=[{"family": family}], birthDate=d))["id"] for d in dates}

    async def born(value: Any) -> set[str]:
        return {d for d, i in ids.items() if i in await found(api, "Patient", q(value))}

    def q(value: Any) -> PatientSearchParams:
        return {"family": family, "birthdate": value}

    assert await born("ge1985-09-30") == {"1985-09-30", "1995-12-31"}
    assert await born("lt1975-06-15") == {"1965-03-01"}
    assert await born("gt1975-06-15") == {"1985-09-30", "1995-12-31"}
    assert await born("le1975-06-15") == {"1965-03-01", "1975-06-15"}
    assert await born("ne1975-06-15") == {"1965-03-01", "1985-09-30", "1995-12-31"}
    # Medplum 5.0.10 has no `ap` for dates (fhirOperatorToSqlOperator, search.ts:1530-1550).
    with pytest.raises(ValidationError) as ap:
        await born("ap1975-06-15")
    assert issue_text(ap.value) == "Unknown FHIR operator: ap"
    # A list repeats the parameter: AND (a range).
    assert await born(["ge1970-01-01", "lt1990-01-01"]) == {"1975-06-15", "1985-09-30"}
    assert sent(api)["birthdate"] == ["ge1970-01-01", "lt1990-01-01"]
    # A comma inside one value is FHIR's OR, but Medplum parses a date value as one date:
    # 400 "Invalid format for date search parameter" (documented in docs/typed-search.md).
    with pytest.raises(ValidationError):  # a BadRequestError: issue code "invalid"
        await born("1965-03-01,1995-12-31")
    # OR on a token parameter works.
    either = await found(api, "Patient", {"family": family, "_id": f"{ids['1965-03-01']},x"})
    assert either == {ids["1965-03-01"]}
    assert sent(api)["_id"] == [f"{ids['1965-03-01']},x"]


async def test_dates_compare_one_stored_instant_as_medplum_does(api: Api) -> None:
    """Medplum 5.0.10's date search (repo.ts:1837-1848, search.ts:1389-1438), checked against a
    real 5.0.10 server: one value per resource (the start of a partial date or Period, a day
    for a FHIR `date`, else an instant) compared with the prefix's SQL operator. So equality
    is one instant, not FHIR's range; a search value needs year, month and day; `ne` never
    matches a resource without the element."""
    family = unique("Dates")
    born = {
        d: (await patient(api, name=[{"family": family}], birthDate=d))["id"]
        for d in ["1990-01-02", "1990-01", "1990"]
    }
    none = (await patient(api, name=[{"family": family}]))["id"]

    async def births(value: str) -> set[str]:
        got = await found(api, "Patient", {"family": family, "birthdate": value})
        return {d for d, i in born.items() if i in got} | ({"none"} if none in got else set())

    assert await births("1990-01-02") == {"1990-01-02"}
    assert await births("gt1990-01-01") == {
        "1990-01-02"
    }  # 1990-01 and 1990 are stored as 1990-01-01
    assert await births("lt1990-01-03") == {"1990-01-02", "1990-01", "1990"}
    assert await births("ne1990-01-02") == {"1990-01", "1990"}  # not the Patient without one
    assert await births("eb1990-01-02") == {"1990-01", "1990"}
    for partial in ["1990", "1990-01", "ge1990-01"]:
        with pytest.raises(ValidationError) as error:
            await births(partial)
        assert issue_text(error.value) == f"Invalid date value: {partial.removeprefix('ge')}"

    code = unique("when")
    observations = {
        label: (
            await api.call(
                "create_resource",
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "when"},
                    "identifier": [{"system": "https://pymedplum.test/when", "value": code}],
                    **effective,
                },
            )
        )["id"]
        for label, effective in {
            "10:00": {"effectiveDateTime": "2020-01-02T10:00:00Z"},
            "day": {"effectiveDateTime": "2020-01-02"},
            "period": {
                "effectivePeriod": {"start": "2020-01-01T00:00:00Z", "end": "2020-01-03T00:00:00Z"}
            },
        }.items()
    }

    async def observed(value: str) -> set[str]:
        got = await found(
            api, "Observation", {"identifier": f"https://pymedplum.test/when|{code}", "date": value}
        )
        return {label for label, i in observations.items() if i in got}

    assert await observed("2020-01-02") == {"day"}  # midnight UTC, exactly
    assert await observed("2020-01-02T10:00:00Z") == {"10:00"}
    assert await observed("gt2020-01-02") == {"10:00"}
    assert await observed("le2020-01-02") == {"day", "period"}  # a Period is its start


async def test_filter_expressions_as_medplum_runs_them(api: Api) -> None:
    """`_filter` (search.ts:1152-1203 at v5.0.10): each comparison searched as its parameter,
    joined with and / or / not; under `not`, a date comparison leaves out a resource without
    the date (SQL's NULL). Each answer is the one a real Medplum 5.0.10 gave."""
    tag = unique("F")
    ids = {
        label: (await patient(api, name=[{"family": f"{label}{tag}"}], **fields))["id"]
        for label, fields in {
            "ann": {"gender": "female", "birthDate": "1990-05-05"},
            "bob": {"gender": "male", "birthDate": "2005-05-05"},
            "cat": {"gender": "female"},
        }.items()
    }

    async def matching(expression: str) -> set[str]:
        got = await found(api, "Patient", {"family:contains": tag, "_filter": expression})
        return {label for label, i in ids.items() if i in got}

    assert await matching(f"family eq ann{tag}") == {"ann"}  # eq is :exact
    assert await matching(f"family eq ann{tag}x") == set()
    assert await matching("gender eq female and birthdate ge 2000-01-01") == set()
    assert await matching("gender eq male or birthdate lt 2000-01-01") == {"ann", "bob"}
    assert await matching("not (gender eq male)") == {"ann", "cat"}
    assert await matching("not (birthdate ge 2000-01-01)") == {"ann"}
    with pytest.raises(ValidationError) as unknown:
        await matching("foo eq x")
    assert issue_text(unknown.value) == "Unknown search parameter: foo"


async def test_token_equality_is_case_sensitive_as_medplum_matches_it(api: Api) -> None:
    """Token equality on Medplum 5.0.10 (fhir/token-column.ts, fhir/tokens.ts): exact, case
    included, for codes, identifiers and systems (only ContactPoint values are indexed in lower
    case); a value without a system also finds a coding's display or a concept's text. Each
    answer is the one a real 5.0.10 gave."""
    tag = unique("Tok")
    system = f"http://codes.test/{tag}"
    ids = {
        label: (
            await api.call(
                "create_resource",
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": code,
                    "identifier": [{"system": "https://pymedplum.test/tok", "value": tag}],
                },
            )
        )["id"]
        for label, code in {
            "hr": {
                "coding": [{"system": system, "code": "8867-4", "display": "Heart rate"}],
                "text": "HR",
            },
            "abc": {"coding": [{"system": system, "code": "abc"}]},
        }.items()
    }

    async def matching(query: dict[str, str]) -> set[str]:
        got = await found(
            api, "Observation", {"identifier": f"https://pymedplum.test/tok|{tag}", **query}
        )
        return {label for label, i in ids.items() if i in got}

    assert await matching({"code": f"{system}|abc"}) == {"abc"}
    assert await matching({"code": f"{system}|ABC"}) == set()
    assert await matching({"code": f"{system.upper()}|abc"}) == set()
    assert await matching({"code": "Heart rate"}) == {"hr"}
    assert await matching({"code": "HR"}) == {"hr"}
    assert await matching({"code:not": "8867-4"}) == {"abc"}
    assert await matching({"status": "FINAL"}) == set()
    assert await matching({"status": "final"}) == {"hr", "abc"}


def issue_text(error: ValidationError) -> str:
    """The first issue's ``details.text`` of the server's OperationOutcome."""
    return str((error.outcome or {})["issue"][0]["details"]["text"])


async def test_number_prefixes_compare_the_stored_value_exactly(api: Api) -> None:
    """``probability`` (a number): Medplum 5.0.10 compares the stored value (a decimal, or a
    Range's low) with the prefix's SQL operator, exactly: no implicit precision range."""
    tag = unique("num")

    async def risk(*probabilities: Any) -> str:
        predictions = [
            {"probabilityDecimal": p} if not isinstance(p, dict) else {"probabilityRange": p}
            for p in probabilities
        ] or [{"rationale": "none given"}]
        created: dict[str, Any] = await api.call(
            "create_resource",
            {
                "resourceType": "RiskAssessment",
                "status": "final",
                "identifier": [{"system": "urn:num", "value": tag}],
                "subject": {"reference": f"Patient/{tag}"},
                "prediction": predictions,
            },
        )
        return str(created["id"])

    pct = {"system": "http://unitsofmeasure.org", "code": "%"}
    ids = {
        "high": await risk(Decimal("0.90"), 0.2),
        "half": await risk(Decimal("0.50")),
        "negative": await risk(-0.25),
        "tiny": await risk(1e-7),
        "range": await risk({"low": {"value": 40, **pct}, "high": {"value": 60, **pct}}),
        "none": await risk(),
    }

    async def matching(value: Any, **more: Any) -> set[str]:
        query: RiskAssessmentSearchParams = {"identifier": f"urn:num|{tag}", "probability": value}
        got = await found(api, "RiskAssessment", {**query, **more})
        return {name for name, i in ids.items() if i in got}

    assert await matching("0.5") == {"half"}
    assert sent(api)["probability"] == ["0.5"]
    assert await matching("0.50") == {"half"}  # 0.50 and 0.5 are the same number
    assert await matching(Decimal("0.500")) == {"half"}
    assert sent(api)["probability"] == ["0.500"]
    assert await matching(0.5) == {"half"}
    assert await matching("eq0.9") == {"high"}
    assert await matching("0.49") == set()  # exact: no precision range around 0.5
    assert await matching("gt0.8") == {"high", "range"}
    assert await matching("sa0.8") == {"high", "range"}  # sa is gt, eb is lt, on Medplum
    assert await matching(f"ge{Decimal('0.50')}") == {"high", "half", "range"}
    assert await matching("lt0") == {"negative"}
    assert await matching("eb0.2") == {"negative", "tiny"}
    assert await matching("le0.2") == {"high", "negative", "tiny"}  # any of the predictions
    assert await matching("ne0.9") == {"high", "half", "negative", "tiny", "range"}
    assert await matching(-0.25) == {"negative"}
    assert await matching("-2.5e-1") == {"negative"}
    assert await matching("40") == {"range"}  # a Range is stored as its low
    assert await matching("60") == set()
    # Exponent forms: Python's str() of 1e-07, a Decimal's 1E-7, the text a model read.
    assert await matching(1e-7) == {"tiny"}
    assert sent(api)["probability"] == ["1e-07"]
    assert await matching(Decimal("0.0000001")) == {"tiny"}
    assert sent(api)["probability"] == ["1E-7"]
    # The decimal of a resource read back: the server wrote 1e-7, the model keeps that text.
    read = await api.call("read_resource", "RiskAssessment", ids["tiny"], as_fhir=RiskAssessment)
    assert read.prediction is not None
    value = read.prediction[0].probability_decimal
    assert isinstance(value, Decimal)
    assert await matching(value) == {"tiny"}
    assert sent(api)["probability"] == ["1e-7"]
    assert await matching("0.0000001") == {"tiny"}
    # OR within one value, AND across a list.
    assert await matching("0.2,0.5") == {"high", "half"}
    assert await matching(["gt0", "lt0.6"]) == {"high", "half", "tiny"}
    assert await matching(None, **{"probability:missing": True}) == {"none"}
    assert await matching(None, **{"probability:missing": False}) == set(ids) - {"none"}
    # What Medplum refuses is a 400, not an empty result: ap on a number parameter, and a
    # value PostgreSQL cannot read as a number.
    for bad, text in [
        ("ap0.5", "Unknown FHIR operator: ap"),
        ("0.5mg", 'invalid input syntax for type double precision: "0.5mg"'),
        ("1e400", '"1e400" is out of range for type double precision'),
    ]:
        with pytest.raises(ValidationError) as caught:
            await matching(bad)
        assert caught.value.status_code == 400
        assert issue_text(caught.value) == text


async def test_quantity_searches_compare_the_value_and_ignore_the_unit(api: Api) -> None:
    """``value-quantity``: Medplum 5.0.10 stores a Quantity's value only, so the system and
    code after ``|`` are not compared; ``ap`` is within 10% of the value."""
    tag = unique("qty")
    ucum = "http://unitsofmeasure.org"

    async def observe(**value: Any) -> str:
        created: dict[str, Any] = await api.call(
            "create_resource",
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "urn:qty", "code": tag}]},
                **value,
            },
        )
        return str(created["id"])

    ids = {
        "mg": await observe(
            valueQuantity={"value": Decimal("5.40"), "unit": "mg", "system": ucum, "code": "mg"}
        ),
        "g": await observe(valueQuantity={"value": 5.4, "unit": "g", "system": ucum, "code": "g"}),
        "negative": await observe(valueQuantity={"value": -2.5, "unit": "mmol/L"}),
        "tiny": await observe(valueQuantity={"value": Decimal("1E-7")}),
        "text": await observe(valueString="n/a"),
        "components": await observe(
            component=[
                {"code": {"text": "a"}, "valueQuantity": {"value": 1.5}},
                {"code": {"text": "b"}, "valueQuantity": {"value": 3}},
            ]
        ),
    }

    async def matching(key: str, value: Any) -> set[str]:
        query: ObservationSearchParams = {"code": f"urn:qty|{tag}"}
        got = await found(api, "Observation", {**query, key: value})
        return {name for name, i in ids.items() if i in got}

    assert await matching("value-quantity", "5.4") == {"mg", "g"}
    assert await matching("value-quantity", Decimal("5.40")) == {"mg", "g"}
    assert sent(api)["value-quantity"] == ["5.40"]
    assert await matching("value-quantity", f"5.4|{ucum}|mg") == {"mg", "g"}  # unit ignored
    assert await matching("value-quantity", f"gt5.4|{ucum}|mg") == set()
    assert await matching("value-quantity", f"ge5.4|{ucum}|mg") == {"mg", "g"}
    assert await matching("value-quantity", "lt0") == {"negative"}
    assert await matching("value-quantity", -2.5) == {"negative"}
    assert await matching("value-quantity", "ne5.4") == {"negative", "tiny"}
    assert await matching("value-quantity", "ap5") == {"mg", "g"}  # 4.5 to 5.5
    assert await matching("value-quantity", "ap4.8") == set()  # 4.32 to 5.28
    # 0.9 x -2.5 is above 1.1 x -2.5: ap of a negative value matches nothing on Medplum.
    assert await matching("value-quantity", "ap-2.5") == set()
    assert await matching("value-quantity", 1e-7) == {"tiny"}
    assert await matching("value-quantity", "1e-7|http://unitsofmeasure.org|") == {"tiny"}
    assert await matching("value-quantity:missing", True) == {"text", "components"}
    assert await matching("value-quantity:missing", False) == {"mg", "g", "negative", "tiny"}
    assert await matching("component-value-quantity:missing", False) == {"components"}
    # A chain ends in a quantity too.
    patient_id = (await patient(api, name=[{"family": tag}]))["id"]
    linked = await api.call(
        "create_resource",
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": tag},
            "subject": {"reference": f"Patient/{patient_id}"},
            "valueQuantity": {"value": 120, "unit": "mm[Hg]"},
        },
    )
    assert linked["id"]
    key = "_has:Observation:subject:value-quantity"
    assert await found(api, "Patient", {"family": tag, key: "gt100"}) == {patient_id}
    assert await found(api, "Patient", {"family": tag, key: "lt100"}) == set()
    # What Medplum refuses is a 400: no OR on a quantity (the whole text is the number), an
    # empty number, a prefix it has no SQL for, and any value of component-value-quantity,
    # whose column is an array that Medplum 5.0.10 compares with the value as a whole.
    for key, bad, text in [
        ("value-quantity", "5.4,6", 'invalid input syntax for type double precision: "5.4,6"'),
        ("value-quantity", f"|{ucum}|mg", f"Invalid quantity value: |{ucum}|mg"),
        ("value-quantity", "sw5", "Unknown FHIR operator: sw"),
        ("value-quantity", "five", 'invalid input syntax for type double precision: "five"'),
        ("component-value-quantity", "1.5", 'malformed array literal: "1.5"'),
    ]:
        with pytest.raises(ValidationError) as caught:
            await matching(key, bad)
        assert caught.value.status_code == 400
        assert issue_text(caught.value) == text


async def test_missing_on_a_name_or_address_is_a_word_search(api: Api) -> None:
    """Medplum 5.0.10 searches names and addresses in lookup tables that have no presence
    check: ``name:missing=true`` looks for a name with a word starting with "true"."""
    tag = unique("Miss")
    trueman = await patient(api, name=[{"family": f"Trueman{tag}"}])
    smith = await patient(api, name=[{"family": f"Smith{tag}"}], address=[{"city": "Falsetown"}])
    nameless = await patient(api, identifier=[{"system": "urn:miss", "value": tag}])
    ids = f"{trueman['id']},{smith['id']},{nameless['id']}"
    assert await found(api, "Patient", {"_id": ids, "name:missing": True}) == {trueman["id"]}
    assert sent(api)["name:missing"] == ["true"]
    assert await found(api, "Patient", {"_id": ids, "family:missing": "true"}) == {trueman["id"]}
    assert await found(api, "Patient", {"_id": ids, "name:missing": False}) == set()
    assert await found(api, "Patient", {"_id": ids, "address:missing": False}) == {smith["id"]}
    assert await found(api, "Patient", {"_id": ids, "address-city:missing": True}) == set()
    # A plain string column has a real presence check: Patient has no other string parameter
    # outside the lookup tables, so an Organization's name shows it.
    named = await api.call("create_resource", {"resourceType": "Organization", "name": tag})
    bare = await api.call(
        "create_resource",
        {"resourceType": "Organization", "identifier": [{"system": "urn:miss", "value": tag}]},
    )
    orgs = f"{named['id']},{bare['id']}"
    assert await found(api, "Organization", {"_id": orgs, "name:missing": True}) == {bare["id"]}


async def test_a_comma_in_a_value_is_escaped_with_a_backslash(api: Api) -> None:
    family = unique("Comma")
    jr = await patient(api, name=[{"family": f"{family}, Jr"}])
    plain = await patient(api, name=[{"family": family}])
    slash = await patient(api, name=[{"family": f"{family}\\Sr"}])
    # Unescaped, the comma splits the value: family OR " Jr" (a string search matches a
    # prefix), so all three match.
    split = await found(api, "Patient", {"family": f"{family}, Jr", "_count": 1000})
    assert {jr["id"], plain["id"], slash["id"]} <= split
    escaped = escape_search_value(f"{family}, Jr")
    assert escaped == f"{family}\\, Jr"
    assert await found(api, "Patient", {"family": escaped}) == {jr["id"]}
    assert sent(api) == {"family": [f"{family}\\, Jr"]}
    # A backslash is escaped too; escaped values OR-ed with a plain comma.
    either = ",".join(map(escape_search_value, [f"{family}\\Sr", f"{family}, Jr"]))
    assert await found(api, "Patient", {"family": either}) == {slash["id"], jr["id"]}


async def test_non_ascii_values_round_trip(api: Api) -> None:
    tag = unique("nx")
    p = await patient(
        api,
        name=[{"family": f"Straße{tag}", "given": ["Zoë", "日本"]}],
        address=[{"city": f"Zürich{tag}"}],
    )
    assert await found(api, "Patient", {"family": f"Straße{tag}"}) == {p["id"]}
    assert sent(api) == {"family": [f"Straße{tag}"]}
    assert await found(api, "Patient", {"address-city": f"Zürich{tag}"}) == {p["id"]}
    by_given = await found(api, "Patient", [("given", "日本"), ("family", f"Straße{tag}")])
    assert by_given == {p["id"]}


async def test_string_modifiers_missing_and_not(api: Api) -> None:
    family = unique("Mod")
    smith = await patient(api, name=[{"family": f"{family}smith"}], gender="female")
    bare = await patient(api, name=[{"family": family}])
    q: PatientSearchParams = {"family": family}
    # :exact is Medplum's case-sensitive whole-value match; the default search a prefix.
    assert await found(api, "Patient", {"family:exact": family}) == {bare["id"]}
    assert sent(api)["family:exact"] == [family]
    assert await found(api, "Patient", {"family": family}) == {smith["id"], bare["id"]}
    assert await found(api, "Patient", {"family:contains": f"{family[3:]}smi"}) == {smith["id"]}
    assert await found(api, "Patient", {**q, "gender:missing": True}) == {bare["id"]}
    assert sent(api)["gender:missing"] == ["true"]
    assert await found(api, "Patient", {**q, "gender:missing": False}) == {smith["id"]}
    assert await found(api, "Patient", {**q, "gender:not": "female"}) == {bare["id"]}


async def test_in_not_in_above_and_below_as_medplum_5_0_10_takes_them(api: Api) -> None:
    # None of these is a key of the TypedDicts (docs/typed-search.md): Medplum implements neither
    # token :in / :not-in nor uri :above / :below. Sent in a plain dict, they answer as there.
    tag = unique("Mem")
    p = await patient(api, gender="female", identifier=[{"system": "urn:sys", "value": tag}])
    refused = {  # key: (value, the server's text)
        # a coded, identifier or telecom token: the parameter's id
        "identifier:in": ("urn:sys|x", "Invalid modifier :in for Patient-identifier"),
        "email:not-in": ("a@example.org", "Invalid modifier :not-in for individual-email"),
        "active:in": ("true", "Invalid modifier :in for active"),  # a boolean
        "general-practitioner:in": (
            "Practitioner/x",
            "Invalid modifier :in for general-practitioner",
        ),
        "birthdate:not-in": ("2020-01-01", "Invalid modifier :not-in for birthdate"),
        "_id:in": ("x", "Invalid modifier :in for _id"),
    }
    for key, (value, text) in refused.items():
        with pytest.raises(ValidationError) as caught:
            await found(api, "Patient", {key: value})
        assert caught.value.status_code == 400
        assert issue_text(caught.value) == text
    # On a plain code parameter the modifier is ignored: :not-in finds the code it names.
    assert await found(api, "Patient", {"_id": p["id"], "gender:not-in": "female"}) == {p["id"]}
    assert await found(api, "Patient", {"_id": p["id"], "gender:in": "male"}) == set()
    # A uri parameter's :below / :above is an equality.
    url = f"http://example.org/{tag}/a/b"
    vs = await api.call(
        "create_resource", {"resourceType": "ValueSet", "status": "active", "url": url}
    )
    assert await found(api, "ValueSet", {"url:below": f"http://example.org/{tag}/a"}) == set()
    assert await found(api, "ValueSet", {"url:above": f"{url}/c"}) == set()
    assert await found(api, "ValueSet", {"url:below": url}) == {vs["id"]}


async def test_a_date_on_a_repeating_element_answers_400_but_missing_works(api: Api) -> None:
    # MedicationRequest?date is dosageInstruction.timing.event: an array column, which
    # Medplum 5.0.10 compares with the value as a whole. The TypedDict offers only date:missing.
    tag = unique("Arr")
    with_event = await api.call(
        "create_resource",
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "subject": {"display": tag},
            "medicationCodeableConcept": {"text": tag},
            "dosageInstruction": [{"timing": {"event": ["2024-05-01T10:00:00Z"]}}],
        },
    )
    for value in ("2024-05-01", "ge2024-01-01"):
        with pytest.raises(ValidationError) as caught:
            await found(api, "MedicationRequest", {"date": value})
        assert caught.value.status_code == 400
        assert issue_text(caught.value) == f'malformed array literal: "{value.removeprefix("ge")}"'
    query: MedicationRequestSearchParams = {"_id": with_event["id"], "date:missing": False}
    assert await found(api, "MedicationRequest", query) == {with_event["id"]}
    assert await found(api, "MedicationRequest", {**query, "date:missing": True}) == set()


async def test_boolean_values_and_a_boolean_on_a_repeating_element(api: Api) -> None:
    # A boolean parameter takes only true / false (400 otherwise, as on Medplum 5.0.10);
    # Group?exclude is characteristic.exclude, an array column: any value answers 400 and
    # only exclude:missing (the one key GroupSearchParams offers) works.
    for key, value in [("active", "yes"), ("active", "true,false"), ("deceased", "1")]:
        with pytest.raises(ValidationError) as caught:
            await found(api, "Patient", {key: value})
        assert issue_text(caught.value) == "Boolean search value must be 'true' or 'false'"
    group = await api.call(
        "create_resource",
        {
            "resourceType": "Group",
            "type": "person",
            "actual": True,
            "characteristic": [
                {"code": {"text": unique("c")}, "valueBoolean": True, "exclude": False}
            ],
        },
    )
    for key in ("exclude", "exclude:not"):
        with pytest.raises(ValidationError) as caught:
            await found(api, "Group", {key: "false"})
        assert caught.value.status_code == 400
        assert issue_text(caught.value) == 'malformed array literal: "false"'
    query: GroupSearchParams = {"_id": group["id"], "exclude:missing": False}
    assert await found(api, "Group", query) == {group["id"]}


async def test_string_search_is_a_prefix_and_exact_a_case_sensitive_whole_value(
    api: Api,
) -> None:
    tag = unique("Ex")
    p = await patient(
        api,
        name=[{"family": f"{tag}Smithson", "given": ["Anna", "Maria"]}],
        address=[{"city": f"Port {tag}"}],
        meta={"profile": [f"http://example.org/{tag}/Profile"]},
    )
    org = await api.call("create_resource", {"resourceType": "Organization", "name": f"{tag}Acme"})
    # The default string search: a case-insensitive prefix (of a word, for names and
    # addresses), never a substring.
    assert await found(api, "Patient", {"family": f"{tag}smith".upper()}) == {p["id"]}
    assert await found(api, "Patient", {"family": f"{tag[2:]}Smithson"}) == set()
    assert await found(api, "Patient", {"address-city": tag.lower()}) == {p["id"]}
    assert await found(api, "Patient", {"name": f"mari {tag}"}) == {p["id"]}  # every word
    assert await found(api, "Organization", {"name": f"{tag}ac"}) == {org["id"]}
    assert await found(api, "Organization", {"name": "Acme", "_id": org["id"]}) == set()
    # :exact: the whole value, case-sensitive; `given` is the given names joined by a space.
    assert await found(api, "Patient", {"family:exact": f"{tag}Smithson"}) == {p["id"]}
    assert await found(api, "Patient", {"family:exact": f"{tag}smithson"}) == set()
    assert await found(api, "Patient", {"family:exact": f"{tag}Smith"}) == set()
    assert await found(api, "Patient", {"given:exact": "Anna", "family": tag}) == set()
    assert await found(api, "Patient", {"given:exact": "Anna Maria", "family": tag}) == {p["id"]}
    assert await found(api, "Organization", {"name:exact": f"{tag}Acme"}) == {org["id"]}
    assert await found(api, "Organization", {"name:exact": f"{tag}ACME"}) == set()
    # A uri parameter compares the whole value, case-sensitive.
    profile = f"http://example.org/{tag}/Profile"
    assert await found(api, "Patient", {"_profile": profile}) == {p["id"]}
    assert await found(api, "Patient", {"_profile": f"http://example.org/{tag}"}) == set()
    assert await found(api, "Patient", {"_profile": profile.upper()}) == set()
    # Through a chain too.
    obs = await api.call(
        "create_resource",
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": tag},
            "subject": {"reference": f"Patient/{p['id']}"},
        },
    )
    chained = {"subject:Patient.family:exact": f"{tag}Smithson"}
    assert await found(api, "Observation", chained) == {obs["id"]}
    assert await found(api, "Observation", {"subject:Patient.family:exact": tag}) == set()


async def test_has_reverse_chaining(api: Api) -> None:
    """``_has:Type:param:target-param=value``: the resources another resource refers to
    through ``param`` when that one matches (Medplum 5.0.10's reverse chaining)."""
    tag = unique("has")
    a, b, c = [await patient(api, name=[{"family": tag}]) for _ in range(3)]

    async def observe(subject: dict[str, Any], code: str, status: str = "final") -> str:
        created: dict[str, Any] = await api.call(
            "create_resource",
            {
                "resourceType": "Observation",
                "status": status,
                "code": {"coding": [{"system": "urn:has", "code": code}]},
                "subject": {"reference": f"Patient/{subject['id']}"},
            },
        )
        return str(created["id"])

    await observe(a, f"{tag}-x")
    of_b = {
        await observe(b, f"{tag}-y", status="amended"),
        await observe(b, f"{tag}-x", status="preliminary"),
    }
    key = "_has:Observation:subject:code"
    assert await found(api, "Patient", {key: f"{tag}-x"}) == {a["id"], b["id"]}
    assert sent(api) == {key: [f"{tag}-x"]}
    assert await found(api, "Patient", {key: f"urn:has|{tag}-y"}) == {b["id"]}
    assert await found(api, "Patient", {key: f"{tag}-z"}) == set()
    assert c["id"] not in await found(api, "Patient", {"family": tag, key: f"{tag}-x,{tag}-y"})
    # Each _has is its own condition: b has an amended Observation and an -x one.
    both = {key: f"{tag}-x", "_has:Observation:subject:status": "amended"}
    assert await found(api, "Patient", both) == {b["id"]}
    # A chain inside: Observations whose subject has an Observation coded -y.
    nested = {"subject:Patient._has:Observation:subject:code": f"{tag}-y"}
    assert await found(api, "Observation", nested) == of_b
    # Malformed chains are the server's 400, as on Medplum, not an empty result.
    for bad in (
        "_has:Observation:subject",  # no target parameter
        "_has:Observation:encounter:code",  # encounter does not refer to a Patient
        "_has:Observation:subject:nonsense",
    ):
        with pytest.raises(ValidationError) as caught:
            await found(api, "Patient", {bad: "x"})
        assert caught.value.status_code == 400


async def test_references_chains_and_meta_parameters(api: Api) -> None:
    tag = unique("ref")
    p = await patient(
        api,
        name=[{"family": tag}],
        meta={
            "tag": [{"system": "urn:tag", "code": tag}],
            "security": [{"system": "urn:sec", "code": tag}],
            "profile": [f"http://example.org/{tag}"],
        },
    )
    obs = await api.call(
        "create_resource",
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "urn:code", "code": tag}]},
            "subject": {"reference": f"Patient/{p['id']}"},
        },
    )
    by_ref: ObservationSearchParams = {"subject": f"Patient/{p['id']}"}
    assert await found(api, "Observation", by_ref) == {obs["id"]}
    chained = {"subject:Patient.name": tag}  # not in the TypedDicts: a plain dict
    assert await found(api, "Observation", chained) == {obs["id"]}
    assert sent(api) == {"subject:Patient.name": [tag]}
    assert await found(api, "Patient", {"_tag": f"urn:tag|{tag}"}) == {p["id"]}
    assert await found(api, "Patient", {"_security": f"urn:sec|{tag}"}) == {p["id"]}
    assert await found(api, "Patient", {"_profile": f"http://example.org/{tag}"}) == {p["id"]}
    other = await patient(api, name=[{"family": tag}])
    assert await found(api, "Patient", {"_id": f"{p['id']},{other['id']}"}) == {
        p["id"],
        other["id"],
    }
    assert await found(api, "Patient", {"family": tag, "_tag:not": f"urn:tag|{tag}"}) == {
        other["id"]
    }
    since = p["meta"]["lastUpdated"]
    assert await found(api, "Patient", {"family": tag, "_lastUpdated": f"gt{since}"}) == {
        other["id"]
    }
    assert sent(api)["_lastUpdated"] == [f"gt{since}"]


async def test_summary_count_answers_no_entries_whatever_the_count(api: Api) -> None:
    family = unique("Cnt")
    for _ in range(3):
        await patient(api, name=[{"family": family}])
    # Medplum reads parameters in order: a _count after _summary=count gave entries back.
    result = await api.call(
        "search_with_options", "Patient", {"family": family}, summary="count", count=2
    )
    assert result["total"] == 3 and not result.get("entry")
    assert list(sent(api)) == ["family", "_count", "_summary"]  # _summary=count last
    listed = await api.call(
        "search_resources",
        "Patient",
        {"family": family, "_summary": "count", "_count": 2},
        return_bundle=True,
    )
    assert isinstance(listed, FHIRBundle)
    assert listed.total == 3 and len(listed) == 0 and listed.is_empty()


async def test_a_query_too_long_for_a_url_goes_as_post_search_and_pages(api: Api) -> None:
    family = unique("Long")
    ids = {(await patient(api, name=[{"family": family}]))["id"] for _ in range(5)}
    # 2,000 more ids that match nothing: ~75,000 characters, past what a URL can carry
    # (Node answers 431 past 16 KiB of request head; httpx refuses a query over 64 KiB).
    padding = [unique("none") for _ in range(2000)]
    query = {"_id": ",".join([*sorted(ids), *padding]), "family": family, "_count": 2}
    api.events.clear()
    seen = [p["id"] for p in await api.collect("search_resource_pages", "Patient", query)]
    assert sorted(seen) == sorted(ids)  # every match once
    events = api.fhir_events()
    assert len(events) == 3  # 2 + 2 + 1, each page a POST _search (its next link is as long)
    assert {(e.method, e.path, e.action) for e in events} == {
        ("POST", "/fhir/R4/Patient/_search", "search")
    }
    bundle = await api.call("search_resources", "Patient", query, return_bundle=True)
    assert len(bundle) == 2 and bundle.get_next_link() is not None
    one = await api.call("search_one", "Patient", query)
    assert one is not None and one["id"] in ids
    # A short query is still a GET.
    await api.call("search_resources", "Patient", {"family": family})
    assert api.fhir_events()[-1].method == "GET"


async def test_paging_while_resources_are_deleted(api: Api) -> None:
    """Documents what happens (docs/typed-search.md): offset paging (the default) skips
    resources when earlier ones are deleted mid-iteration; cursor paging (``_sort=_lastUpdated``
    with ``_count`` >= 20) neither skips nor repeats."""
    for query_extra, lost in (({"_count": 20}, 2), ({"_count": 20, "_sort": "_lastUpdated"}, 0)):
        family = unique("Pg")
        made = [(await patient(api, name=[{"family": family}]))["id"] for _ in range(50)]
        seen: list[str] = []
        iterator = api.iterate(
            "search_resource_pages", "Patient", {"family": family, **query_extra}
        )
        items = iterator.__aiter__() if api.is_async else iter(iterator)
        while True:
            try:
                item = await items.__anext__() if api.is_async else next(items)
            except (StopAsyncIteration, StopIteration):
                break
            seen.append(item["id"])
            if len(seen) == 5:  # two resources of the page already read go away
                await api.call("delete_resource", "Patient", made[0])
                await api.call("delete_resource", "Patient", made[1])
        assert len(seen) == len(set(seen))  # nothing twice
        assert len(set(made[2:]) - set(seen)) == lost


async def test_bundle_total_links_and_search_modes(api: Api) -> None:
    family = unique("Shape")
    org = await api.call("create_resource", {"resourceType": "Organization", "name": family})
    for _ in range(3):
        await patient(
            api,
            name=[{"family": family}],
            managingOrganization={"reference": f"Organization/{org['id']}"},
        )
    query: PatientSearchParams = {"family": family, "_count": 2}
    first = await api.call("search_resources", "Patient", query, return_bundle=True)
    # No _total: Medplum sends no total, and one page of several is not passed off as one.
    assert first.raw.get("total") is None and first.total is None
    assert {link["relation"] for link in first.link} >= {"self", "first", "next"}
    counted = await api.call(
        "search_resources", "Patient", {**query, "_total": "accurate"}, return_bundle=True
    )
    assert counted.total == 3 and len(counted) == 2
    included = await api.call(
        "search_resources",
        "Patient",
        {"family": family, "_include": "Patient:organization"},
        return_bundle=True,
    )
    modes = sorted(e["search"]["mode"] for e in included.raw["entry"])
    assert modes == ["include", "match", "match", "match"]
    assert len(included) == 4 and included.total == 3  # total counts matches only
    assert included.get_next_link() is None
    # search_one: the first match, never an included resource; None without a match.
    one = await api.call(
        "search_one", "Organization", {"_id": org["id"], "_revinclude": "Patient:organization"}
    )
    assert one is not None and one["id"] == org["id"]
    assert await api.call("search_one", "Patient", {"family": unique("none")}) is None

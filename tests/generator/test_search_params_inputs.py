"""The search-parameter generator on malformed vendored bundles: one error naming the file and
the entry, never a bare KeyError from deep inside."""

from __future__ import annotations

from typing import Any

import pytest

from codegen import search_params

MEDPLUM_PARAMS = "medplum/search-parameters-medplum.json.gz"


def _bundles(monkeypatch: pytest.MonkeyPatch, medplum_params: Any) -> None:
    """Small inline bundles in place of the vendored ones."""
    parameter = {
        "resourceType": "SearchParameter",
        "url": "http://hl7.org/fhir/SearchParameter/Patient-family",
        "code": "family",
        "type": "string",
        "base": ["Patient"],
        "expression": "Patient.name.family",
    }
    bundles = {"fhir-r4/search-parameters.json.gz": {"entry": [{"resource": parameter}]}}
    bundles[MEDPLUM_PARAMS] = medplum_params
    bundles["fhir-r4/search-parameters-uscore.json.gz"] = {"entry": []}
    monkeypatch.setattr(search_params, "load_json", bundles.__getitem__)


def test_well_formed_bundles_give_each_type_its_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    _bundles(monkeypatch, {"entry": []})
    assert search_params.parameters_by_type(["Patient"]) == {"Patient": {"family": "string"}}


def test_parameters_medplum_cannot_search_get_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    def param(code: str, kind: str, expression: str | None) -> dict[str, Any]:
        resource = {"resourceType": "SearchParameter", "code": code, "type": kind}
        return {"resource": {**resource, "base": ["Patient"], "expression": expression}}

    _bundles(
        monkeypatch,
        {
            "entry": [
                param("combo", "composite", "Patient"),  # core search.ts: unrecognized type
                param("near", "special", "Patient.address"),
                param("_content", "string", None),  # no expression: never indexed
                param("race", "token", "Patient.extension.value.code"),
            ]
        },
    )
    params = search_params.parameters_by_type(["Patient"])
    assert params == {"Patient": {"family": "string", "race": "token"}}
    keys = search_params.keys_for({**params["Patient"], "_id": "token", "_lastUpdated": "date"})
    assert "race:in" not in keys and "race:text" in keys
    assert {"_id", "_id:not", "_lastUpdated"} <= set(keys)
    assert not {"_id:missing", "_lastUpdated:missing", "_at", "_has"} & set(keys)


def test_a_date_or_quantity_on_a_repeating_element_gets_only_missing() -> None:
    elements = {
        "MedicationRequest.dosageInstruction": (True, ["Dosage"]),
        "Dosage.timing": (False, ["Timing"]),
        "Timing.event": (True, ["dateTime"]),
        "MedicationRequest.authoredOn": (False, ["dateTime"]),
        "Condition.onset[x]": (False, ["dateTime", "Period"]),
        "Composition.event": (True, ["BackboneElement"]),
        "Composition.event.period": (False, ["Period"]),
    }
    repeats = search_params._repeats
    assert repeats(
        "MedicationRequest.dosageInstruction.timing.event", "MedicationRequest", elements
    )
    assert not repeats("MedicationRequest.authoredOn", "MedicationRequest", elements)
    assert not repeats("Condition.onset.ofType(dateTime)", "Condition", elements)
    assert repeats("(Composition.event.period)", "Composition", elements)
    assert not repeats("Composition.event[0].period", "Composition", elements)
    assert not repeats("Patient.x | Composition.date", "Composition", elements)
    elements["Group.characteristic"] = (True, ["BackboneElement"])
    elements["Group.characteristic.exclude"] = (False, ["boolean"])
    elements["Group.actual"] = (False, ["boolean"])
    assert search_params._is_boolean("Group.characteristic.exclude", "Group", elements)
    assert not search_params._is_boolean("Composition.event.period", "Composition", elements)
    assert repeats("Group.characteristic.exclude", "Group", elements)
    assert not repeats("Group.actual", "Group", elements)
    keys = search_params.keys_for({"date": "date", "authoredon": "date"}, frozenset({"date"}))
    assert keys[:4] == ["authoredon", "authoredon:missing", "date:missing", "_count"]


def test_a_search_parameter_without_code_names_the_file_and_the_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    no_code = {
        "resourceType": "SearchParameter",
        "url": "https://medplum.com/fhir/SearchParameter/Bot-x",
        "type": "token",
        "base": ["Bot"],
        "expression": "Bot.x",
    }
    _bundles(
        monkeypatch, {"entry": [{"resource": {**no_code, "code": "y"}}, {"resource": no_code}]}
    )
    with pytest.raises(SystemExit) as caught:
        search_params.parameters_by_type(["Bot"])
    assert str(caught.value) == (
        f"specs/{MEDPLUM_PARAMS}: entry 1 (SearchParameter "
        "https://medplum.com/fhir/SearchParameter/Bot-x) is malformed (missing 'code')"
    )


@pytest.mark.parametrize(
    ("bundle", "where"),
    [
        ({"resourceType": "Bundle"}, "the Bundle is malformed (missing 'entry')"),
        ({"entry": [{"fullUrl": "x"}]}, "entry 0 is malformed (missing 'resource')"),
        ({"entry": ["not an entry"]}, "entry 0 is malformed (TypeError: "),
    ],
)
def test_a_bundle_without_entries_or_resources_names_the_file(
    monkeypatch: pytest.MonkeyPatch, bundle: Any, where: str
) -> None:
    _bundles(monkeypatch, bundle)
    with pytest.raises(SystemExit) as caught:
        search_params.parameters_by_type(["Patient"])
    assert str(caught.value).startswith(f"specs/{MEDPLUM_PARAMS}: {where}")

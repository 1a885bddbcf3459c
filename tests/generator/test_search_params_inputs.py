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
    }
    bundles = {"fhir-r4/search-parameters.json.gz": {"entry": [{"resource": parameter}]}}
    bundles[MEDPLUM_PARAMS] = medplum_params
    monkeypatch.setattr(search_params, "load_json", bundles.__getitem__)


def test_well_formed_bundles_give_each_type_its_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    _bundles(monkeypatch, {"entry": []})
    assert search_params.parameters_by_type(["Patient"]) == {"Patient": {"family": "string"}}


def test_a_search_parameter_without_code_names_the_file_and_the_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    no_code = {
        "resourceType": "SearchParameter",
        "url": "https://medplum.com/fhir/SearchParameter/Bot-x",
        "type": "token",
        "base": ["Bot"],
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

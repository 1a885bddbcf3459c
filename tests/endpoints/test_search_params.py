"""The generated search-parameter TypedDicts: keys, modifiers, laziness, and mypy checking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import pymedplum.search_params as sp

from .conftest import json_response

ROOT = Path(__file__).resolve().parents[2]


def test_patient_keys_cover_names_common_parameters_and_modifiers() -> None:
    keys = set(sp.PatientSearchParams.__annotations__)
    assert {"family", "birthdate", "general-practitioner", "_lastUpdated", "_id"} <= keys
    assert {"name:contains", "name:exact", "identifier:not", "identifier:text"} <= keys
    assert {"organization:identifier", "birthdate:missing", "_id:not"} <= keys
    assert {"_count", "_sort", "_include", "_revinclude:iterate", "_total", "_summary"} <= keys
    assert "famly" not in keys
    assert sp.PatientSearchParams.__total__ is False


def test_keys_are_only_what_medplum_5_0_10_searches() -> None:
    # Each of these answers 400 on Medplum 5.0.10 or is silently an equality there (see
    # docs/typed-search.md and codegen/search_params.py for the source lines).
    patient = set(sp.PatientSearchParams.__annotations__)
    refused = {
        "gender:in",  # an equality on a code column; :not-in too (finds the code it excludes)
        "gender:not-in",
        "identifier:in",  # 400 "Invalid modifier :in" on coded parameters
        "active:not-in",
        "_content",  # no expression: "Unknown search parameter"
        "_text",
        "_query",
        "_id:missing",  # compared with a null UUID: never matches
        "_lastUpdated:missing",  # read as a date: 400
        "_at",  # history only: "Unknown search parameter"
        "_has",  # only _has:Type:param:param
    }
    assert not refused & patient
    assert {"_id:not", "_profile:missing", "_tag:not", "gender:text", "_compartment"} <= patient
    value_set = set(sp.ValueSetSearchParams.__annotations__)
    assert "url" in value_set and "url:missing" in value_set
    assert not {"url:below", "url:above"} & value_set  # an equality on Medplum
    observation = set(sp.ObservationSearchParams.__annotations__)
    # composite and special parameters: Medplum's parser throws for their type
    assert not {"code-value-quantity", "combo-code-value-quantity:missing"} & observation
    assert "near" not in set(sp.LocationSearchParams.__annotations__)
    assert "Binary" not in sp.RESOURCE_TYPES  # "Cannot search on Binary resource type"
    # A date or quantity parameter on a repeating element is an array column, which Medplum
    # compares with the value as a whole ("malformed array literal"): only :missing works.
    request = set(sp.MedicationRequestSearchParams.__annotations__)  # dosageInstruction.timing
    assert "date:missing" in request and "date" not in request
    assert "component-value-quantity:missing" in observation
    assert "component-value-quantity" not in observation
    assert {"value-quantity", "date", "value-date"} <= observation  # not repeating
    assert "asserted-date" in set(sp.ConditionSearchParams.__annotations__)  # one extension
    group = set(sp.GroupSearchParams.__annotations__)  # a boolean of characteristic[]
    assert "exclude:missing" in group and not {"exclude", "exclude:not"} & group


def test_us_core_parameters_medplum_indexes_are_keys() -> None:
    patient = set(sp.PatientSearchParams.__annotations__)
    assert {"race", "ethnicity", "gender-identity", "race:not", "ethnicity:missing"} <= patient
    assert "asserted-date" in set(sp.ConditionSearchParams.__annotations__)
    assert "discharge-disposition" in set(sp.EncounterSearchParams.__annotations__)
    assert {"role", "description"} <= (
        set(sp.CareTeamSearchParams.__annotations__) | set(sp.GoalSearchParams.__annotations__)
    )


def test_medplum_resource_types_have_their_own_parameters() -> None:
    assert {"Patient", "Observation", "Bot", "ProjectMembership", "AsyncJob"} <= sp.RESOURCE_TYPES
    membership = sp.search_params_for("ProjectMembership").__annotations__
    assert {"user", "profile", "_lastUpdated"} <= set(membership)
    assert "Resource" not in sp.RESOURCE_TYPES and "DomainResource" not in sp.RESOURCE_TYPES


def test_lookup_errors() -> None:
    with pytest.raises(KeyError):
        sp.search_params_for("NotAType")
    with pytest.raises(AttributeError):
        sp.NotATypeSearchParams  # noqa: B018


def test_the_package_loads_modules_lazily() -> None:
    code = (
        "import sys, pymedplum.search_params as sp;"
        "n = lambda: sum(m.startswith('pymedplum.search_params.') for m in sys.modules);"
        "a = n(); sp.PatientSearchParams; print(a, n())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "1"]


@pytest.mark.anyio
async def test_a_typed_query_is_sent_like_a_dict(make: Any) -> None:
    h = make(lambda request: json_response(200, {"resourceType": "Bundle"}))
    query: sp.PatientSearchParams = {"family": "Smith", "name:contains": "Jo", "_count": 5}
    await h.call("search_resources", "Patient", query)
    assert h.last.url.params.multi_items() == [
        ("family", "Smith"),
        ("name:contains", "Jo"),
        ("_count", "5"),
    ]
    assert isinstance(h.last, httpx.Request)


def _mypy(code: str, tmp_path: Path) -> str:
    source = tmp_path / "typed_query.py"
    source.write_text(code)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(source)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return result.stdout


def test_mypy_accepts_a_typed_query_and_rejects_an_unknown_key(tmp_path: Path) -> None:
    header = (
        "from pymedplum.client import MedplumClient\n"
        "from pymedplum.search_params import PatientSearchParams\n"
        "def f(client: MedplumClient) -> None:\n"
    )
    code = header + (
        "    q: PatientSearchParams = {'family': 'Smith', 'birthdate': ['ge2000', 'lt2010'],"
        " 'general-practitioner:identifier': 's|1', '_lastUpdated': 'gt2024-01-01'}\n"
        "    client.search_resources('Patient', q)\n"
        "    bad: PatientSearchParams = {'famly': 'Smith'}\n"
        "    us_core: PatientSearchParams = {'race': 'urn:oid:2.16.840.1.113883.6.238|2106-3'}\n"
        "    refused: PatientSearchParams = {'gender:not-in': 'female'}\n"
    )
    errors = [line for line in _mypy(code, tmp_path).splitlines() if ": error:" in line]
    assert len(errors) == 2
    assert 'Extra key "famly"' in errors[0] and "typed_query.py:6:" in errors[0]
    assert 'Extra key "gender:not-in"' in errors[1] and "typed_query.py:8:" in errors[1]


def test_the_typed_dicts_and_client_signatures_resolve_at_run_time() -> None:
    # pydantic, FastAPI and typing.get_type_hints evaluate the annotations: every name in them
    # must exist at run time, not only for type checkers.
    import inspect
    import typing

    import pydantic

    from pymedplum import AsyncMedplumClient, MedplumClient

    for resource_type in sorted(sp.RESOURCE_TYPES):
        typing.get_type_hints(sp.search_params_for(resource_type))
    adapter = pydantic.TypeAdapter(sp.PatientSearchParams)
    assert adapter.validate_python({"family": ["a", "b"], "_count": 5}) == {
        "family": ["a", "b"],
        "_count": 5,
    }
    for cls in (MedplumClient, AsyncMedplumClient):
        for name, method in inspect.getmembers(cls, callable):
            if not name.startswith("_"):
                typing.get_type_hints(method)


@pytest.mark.anyio
async def test_comma_separated_result_parameters_are_joined(make: Any) -> None:
    from collections import deque

    h = make(lambda request: json_response(200, {"resourceType": "Bundle", "type": "searchset"}))
    query: sp.PatientSearchParams = {
        "_elements": ["gender", "birthDate"],
        "_sort": ("-_lastUpdated", "family"),
        "given": deque(["Ann", "Bo"]),
    }
    await h.call("search_resources", "Patient", query)
    assert h.last.url.params.multi_items() == [
        ("_elements", "gender,birthDate"),
        ("_sort", "-_lastUpdated,family"),
        ("given", "Ann"),
        ("given", "Bo"),
    ]

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
    )
    errors = [line for line in _mypy(code, tmp_path).splitlines() if ": error:" in line]
    assert len(errors) == 1
    assert 'Extra key "famly"' in errors[0] and "typed_query.py:6:" in errors[0]


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

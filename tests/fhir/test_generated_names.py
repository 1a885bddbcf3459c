"""The generator's Python names for FHIR elements do not depend on the Python it runs on, and
the type stub of ``pymedplum.fhir`` offers exactly the models the package loads."""

from __future__ import annotations

import ast
import keyword
from pathlib import Path

import pytest

import pymedplum.fhir as fhir
from codegen import models
from pymedplum.fhir import Account


@pytest.mark.parametrize("name", ["type", "match", "case"])
def test_soft_keywords_keep_their_name(name: str) -> None:
    # Soft keywords (3.10+: match, case; 3.12+: type) are valid identifiers. Reserving them made
    # a 3.12+ regeneration rename every ``type`` element to ``type_``, breaking the API.
    assert name not in models._RESERVED
    assert models.py_name(name) == name


@pytest.mark.parametrize("name", ["class", "import", "for", "global", "async"])
def test_hard_keywords_get_a_trailing_underscore(name: str) -> None:
    assert keyword.iskeyword(name)
    assert models.py_name(name) == name + "_"


def test_the_committed_models_use_the_plain_name() -> None:
    assert "type" in Account.model_fields
    assert "type_" not in Account.model_fields


def test_the_type_stub_and_the_runtime_package_offer_the_same_models() -> None:
    # Type checkers read pymedplum/fhir/__init__.pyi; the runtime loads names from TYPE_MODULES.
    stub = ast.parse(Path(fhir.__file__).with_suffix(".pyi").read_text())
    imported = {
        alias.asname: f"{node.module}.{alias.name}"
        for node in stub.body
        if isinstance(node, ast.ImportFrom) and node.module != "typing"
        for alias in node.names
    }
    assert {
        name: f"pymedplum.fhir.{module}.{name}" for name, module in fhir.TYPE_MODULES.items()
    } == imported
    (stub_all,) = [
        node.value
        for node in stub.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
    ]
    assert ast.literal_eval(stub_all) == fhir.__all__
    assert len(fhir.TYPE_MODULES) == 727
    for name in ("Patient", "HumanName", "Project", "ElementDefinitionSlicing"):
        assert getattr(fhir, name).__name__ == name

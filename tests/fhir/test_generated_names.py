"""The generator's Python names for FHIR elements do not depend on the Python it runs on."""

from __future__ import annotations

import keyword

import pytest

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

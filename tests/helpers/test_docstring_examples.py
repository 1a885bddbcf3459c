"""The examples in the docstrings of these modules run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "pymedplum._serialization",
    "pymedplum.helpers.references",
    "pymedplum.helpers.names",
    "pymedplum.helpers.codings",
    "pymedplum.helpers.accounts",
    "pymedplum.access",
    "pymedplum.bundle",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0

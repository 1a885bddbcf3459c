"""The top-level package loads its public names lazily and lists each of them consistently."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import pymedplum

INIT = Path(pymedplum.__file__)


def _type_checking_imports() -> dict[str, str]:
    """name -> module of every ``from m import x as x`` under ``if TYPE_CHECKING:``."""
    found: dict[str, str] = {}
    for node in ast.parse(INIT.read_text()).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module is not None
                for alias in stmt.names:
                    assert alias.asname == alias.name, f"{alias.name} needs 'as {alias.name}'"
                    found[alias.name] = stmt.module
    return found


def test_import_pymedplum_loads_neither_pydantic_nor_httpx() -> None:
    code = (
        "import sys, pymedplum; print(sorted(m for m in ('pydantic', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_table_matches_type_checking_imports() -> None:
    assert _type_checking_imports() == pymedplum._LAZY


@pytest.mark.parametrize("name", sorted(pymedplum._LAZY))
def test_every_public_name_resolves_to_its_module_object(name: str) -> None:
    module = importlib.import_module(pymedplum._LAZY[name])
    assert getattr(pymedplum, name) is getattr(module, name)


@pytest.mark.parametrize("name", sorted(pymedplum._LAZY))
def test_every_public_name_has_a_docstring(name: str) -> None:
    assert (getattr(pymedplum, name).__doc__ or "").strip()


def test_all_lists_version_and_every_lazy_name() -> None:
    assert set(pymedplum.__all__) == {"__version__", *pymedplum._LAZY}


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = pymedplum.no_such_name


def test_dir_lists_lazy_names() -> None:
    assert set(pymedplum._LAZY) <= set(dir(pymedplum))


def test_helpers_package_reexports_every_helper() -> None:
    import pymedplum.helpers as helpers

    for name in helpers.__all__:
        assert getattr(helpers, name) is getattr(pymedplum, name)


def test_public_submodules_are_attributes_without_importing_them_first() -> None:
    # A user coming from an eagerly-importing package writes ``import pymedplum`` and then
    # ``pymedplum.fhir.Patient`` or ``except pymedplum.exceptions.NotFoundError``.
    code = (
        "import sys, pymedplum\n"
        "assert 'pymedplum.fhir' not in sys.modules\n"
        "print(pymedplum.fhir.Patient.__name__, pymedplum.exceptions.NotFoundError.__name__,"
        " pymedplum.helpers.parse_reference.__name__, pymedplum.hooks.RequestEvent.__name__)\n"
        "print(all(getattr(pymedplum, n) is sys.modules['pymedplum.' + n]"
        " for n in pymedplum._SUBMODULES))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [
        "Patient",
        "NotFoundError",
        "parse_reference",
        "RequestEvent",
        "True",
    ]


def test_public_submodules_are_listed_by_dir_and_exist() -> None:
    assert pymedplum._SUBMODULES.issubset(dir(pymedplum))
    for name in pymedplum._SUBMODULES:
        assert importlib.util.find_spec(f"pymedplum.{name}") is not None, name


def test_the_package_docstring_is_for_users() -> None:
    # help(pymedplum) showed the contributors' recipe for adding a public name (_LAZY, a test
    # file path) and no pointer to the guides.
    import pymedplum

    doc = pymedplum.__doc__ or ""
    assert "_LAZY" not in doc and "tests/" not in doc
    assert "docs/quickstart.md" in doc

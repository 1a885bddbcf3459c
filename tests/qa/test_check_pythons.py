"""scripts/check_pythons.py (`make test-pythons`), without building or running anything: how it
finds the interpreters, when a run counts as passed, and that its pins follow pyproject's."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import check_pythons  # scripts/, put on sys.path by tests/conftest.py
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _fake_python(path: Path, output: str, status: int = 0) -> Path:
    """An executable that answers the interpreter probe with ``output``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{output}'\nexit {status}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_pyenv_shim_without_the_version_falls_back_to_the_newest_pyenv_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyenv's shim for python3.10 exits 127 when no 3.10 is selected.
    _fake_python(tmp_path / "shims" / "python3.10", "pyenv: python3.10: command not found", 127)
    versions = tmp_path / "pyenv" / "versions"
    for patch in ("3.10.2", "3.10.11", "3.10.9"):
        _fake_python(versions / patch / "bin" / "python", f"CPython {patch} /x/{patch}/python")
    (versions / "3.10-dev").mkdir()  # not a release: never picked
    monkeypatch.setenv("PATH", str(tmp_path / "shims"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    found, looked = check_pythons.find_interpreter("3.10")
    # 3.10.11, not 3.10.9: patch releases compare as numbers
    assert found == check_pythons.Interpreter(Path("/x/3.10.11/python"), "3.10.11")
    assert "not runnable" in looked[0]


def test_the_interpreter_on_path_wins_and_must_be_cpython_of_that_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    _fake_python(tmp_path / "bin" / "python3.13", "CPython 3.13.4 /usr/bin/python3.13")
    assert check_pythons.find_interpreter("3.13")[0] == check_pythons.Interpreter(
        Path("/usr/bin/python3.13"), "3.13.4"
    )
    _fake_python(tmp_path / "bin" / "python3.13", "PyPy 3.13.4 /usr/bin/pypy")
    assert check_pythons.find_interpreter("3.13")[0] is None
    _fake_python(tmp_path / "bin" / "python3.1", "CPython 3.13.4 /usr/bin/python3.13")
    assert check_pythons.find_interpreter("3.1")[0] is None


def test_a_missing_interpreter_says_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    found, looked = check_pythons.find_interpreter("3.10")
    assert found is None
    assert looked == ["python3.10 on PATH", f"{tmp_path}/pyenv/versions/3.10.*/bin/python"]


def test_a_run_passes_only_with_tests_passed_and_pymedplum_from_the_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    installed = str(venv / "lib" / "python3.10" / "site-packages" / "pymedplum" / "__init__.py")
    passed = {"module": installed, "counts": {"passed": 4492, "deselected": 527}}
    assert check_pythons.verdict(passed, 0, venv) == (
        "passed: 4492 passed, 527 deselected; pymedplum from the venv's wheel",
        False,
    )
    from_src = {**passed, "module": str(ROOT / "src" / "pymedplum" / "__init__.py")}
    line, failed = check_pythons.verdict(from_src, 0, venv)
    assert failed and "imported from" in line and "/src/pymedplum/" in line
    failing = {"module": installed, "counts": {"passed": 4490, "failed": 2}}
    assert check_pythons.verdict(failing, 1, venv) == (
        "FAILED (pytest exit 1): 4490 passed, 2 failed; pymedplum from the venv's wheel",
        True,
    )
    assert check_pythons.verdict({"module": installed, "counts": {}}, 5, venv)[1]
    assert check_pythons.verdict(None, 2, venv) == (
        "FAILED: pytest exited 2 without a report",
        True,
    )


# Development pins the 3.10/3.13 venvs do not install: the docs tools and nox (no unit test uses
# them) and the build backend (build installs it in its own isolated environment).
NOT_INSTALLED = {"mkdocs-material", "mkdocstrings-python", "nox", "hatchling"}
# Their pinned development releases need 3.11; check_pythons.txt pins the last 3.10 ones.
OLDER_FOR_310 = {"vcrpy", "hypothesis"}


def _pins(text: str) -> dict[str, str]:
    return {
        name.lower(): version for name, version in re.findall(r"([A-Za-z0-9_.\-]+)==([\w.]+)", text)
    }


def test_the_venvs_pin_the_development_releases_except_the_ones_that_need_311() -> None:
    requirements = check_pythons.REQUIREMENTS.read_text()
    lines = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    tools = _pins("\n".join(lines))
    assert len(tools) == len(lines)  # every line is a pin
    development = _pins((ROOT / "pyproject.toml").read_text())
    assert set(tools) == set(development) - NOT_INSTALLED
    for name, version in tools.items():
        if name in OLDER_FOR_310:
            older = tuple(map(int, version.split(".")))
            assert older < tuple(map(int, development[name].split("."))), name
        else:
            assert version == development[name], name

"""Every generator step finds ruff the same way: next to this Python, else on PATH.

The client and search-parameter steps only looked next to ``sys.executable`` (a
FileNotFoundError traceback with ruff installed elsewhere); ``python -m codegen models`` fell
back to PATH.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from codegen import client, search_params


@pytest.fixture
def ruff_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Python without ruff beside it, and a fake ruff on PATH logging its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "ruff.log"
    fake = bin_dir / "ruff"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"with open({str(log)!r}, 'a') as f: f.write(' '.join(sys.argv[1:3]) + '\\n')\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_the_client_step_uses_ruff_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ruff_on_path: Path
) -> None:
    monkeypatch.setattr(client, "CLIENT_OUT", tmp_path / "out" / "client.py")
    monkeypatch.setattr(client, "ENDPOINTS_OUT", tmp_path / "out" / "_endpoints.py")
    client.generate()
    assert ruff_on_path.read_text().splitlines() == ["format --quiet", "check --quiet"]


def test_the_search_params_step_uses_ruff_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ruff_on_path: Path
) -> None:
    monkeypatch.setattr(search_params, "OUT", tmp_path / "search_params")
    search_params.generate()
    assert ruff_on_path.read_text().splitlines() == ["check --quiet", "format --quiet"]


def test_without_ruff_anywhere_the_error_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no ruff there
    monkeypatch.setattr(client, "CLIENT_OUT", tmp_path / "client.py")
    monkeypatch.setattr(client, "ENDPOINTS_OUT", tmp_path / "_endpoints.py")
    with pytest.raises(SystemExit) as info:
        client.generate()
    assert str(info.value) == (
        f"ruff not found (neither in {tmp_path / 'venv' / 'bin'} nor on PATH): install it"
    )

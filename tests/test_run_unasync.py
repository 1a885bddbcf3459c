"""scripts/run_unasync.py refuses a Python whose tokenize misplaces tokens (CPython 3.12.0 and
3.12.1 on a multi-line string with non-ASCII text), instead of writing a corrupted sync twin."""

from __future__ import annotations

import tokenize
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import run_unasync  # scripts/, put on sys.path by tests/conftest.py

DOCSTRING = '"""One → two,\nthree four five six seven."""\n\nx = 1\n'
_GENERATE_TOKENS = tokenize.generate_tokens


def _as_312_1(readline: Any) -> Iterator[tokenize.TokenInfo]:
    """tokenize as CPython 3.12.1 ran it: a multi-line string's end column counted in bytes of
    the whole string (cpython#112943), here two short for the 3-byte arrow."""
    for token in _GENERATE_TOKENS(readline):
        if token.type == tokenize.STRING and "\n" in token.string:
            (row, col) = token.end
            token = token._replace(end=(row, col - 2))
        yield token


def test_what_every_supported_python_tokenizes_right_passes() -> None:
    # Non-ASCII on one line, a multi-line ASCII string, and an f-string whose ``{{`` reads back
    # as ``{`` in its token (skipped rather than reported).
    text = '"""Multi\nline."""\n\nA = "→"\n\n\ndef f(x: int) -> str:\n    return f"{{x}} {x} é"\n'
    assert run_unasync.misplaced_token(text) is None


def test_a_misplaced_string_end_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_unasync.tokenize, "generate_tokens", _as_312_1)
    token = run_unasync.misplaced_token(DOCSTRING)
    assert token is not None
    assert token.string.startswith('"""One')


def test_the_script_refuses_to_render_with_such_a_tokenize(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    src = tmp_path / "_async"
    src.mkdir()
    (src / "mod.py").write_text(DOCSTRING)
    monkeypatch.setattr(run_unasync.tokenize, "generate_tokens", _as_312_1)
    with pytest.raises(SystemExit, match=r"tokenize misplaces .* of pkg/_async/mod\.py \(line 1\)"):
        run_unasync._render(src, tmp_path / "_sync", "pkg/_async")
    assert not (tmp_path / "_sync").exists()

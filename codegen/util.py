"""Small helpers shared by the generator steps."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path


def upper_first(text: str) -> str:
    """``value`` -> ``Value`` (the rest unchanged, unlike ``str.capitalize``)."""
    return text[:1].upper() + text[1:]


def snake_case(name: str) -> str:
    """``MedicationRequest`` -> ``medication_request``: an underscore before every capital.

    Search-parameter module names and error types, whose names are public. Field names use
    :func:`codegen.models.snake`, which keeps acronyms together.
    """
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def ruff(*args: str | Path, check: bool = True) -> None:
    """Run ``ruff *args`` on generated files.

    The ruff installed next to this Python (the project's virtualenv, whose version the
    committed output is formatted with) comes first, else the one on PATH. ``check=False`` for
    ``ruff check --fix``, which exits non-zero when findings remain that it cannot fix.
    """
    local = Path(sys.executable).parent / "ruff"
    found = str(local) if local.exists() else shutil.which("ruff")
    if found is None:
        raise SystemExit(f"ruff not found (neither in {local.parent} nor on PATH): install it")
    subprocess.run([found, *map(str, args)], check=check)

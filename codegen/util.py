"""Small helpers shared by the generator steps."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


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

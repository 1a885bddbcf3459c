"""Fetch pinned FHIR packages (examples, other releases' core definitions) into a local cache.

The packages are published on the npm registry; ``npm pack`` downloads a tarball, whose sha512
is checked against ``codegen/fhir_packages.json`` (name@version -> npm integrity). Tarballs are
cached in ``.cache/fhir-packages/`` (git-ignored) and never committed.

``python -m codegen.fhir_packages hl7.fhir.r4.examples@4.0.1`` prints the cached path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "fhir-packages"
PINS = Path(__file__).resolve().parent / "fhir_packages.json"


def pins() -> dict[str, str]:
    """name@version -> sha512 integrity of every package the project may fetch."""
    data: dict[str, str] = json.loads(PINS.read_text())
    return data


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def ensure(spec: str) -> Path:
    """The cached tarball of ``name@version`` (downloaded with npm when missing), verified."""
    pinned = pins().get(spec)
    if pinned is None:
        raise SystemExit(f"{spec} is not pinned in {PINS.name}")
    name, version = spec.rsplit("@", 1)
    path = CACHE / f"{name}-{version}.tgz"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "pack", spec, "--silent", "--pack-destination", str(CACHE)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    actual = _integrity(path.read_bytes())
    if actual != pinned:
        path.unlink()
        raise SystemExit(f"{spec}: integrity {actual} does not match the pinned {pinned}")
    return path


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(ensure(arg))

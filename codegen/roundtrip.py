"""Round-trip every resource of a FHIR examples package through generated models.

The contract checked is the one in issue 3: ``Model.model_validate_json(text)`` then
``model.model_dump_json(by_alias=True, exclude_none=True)`` gives JSON equal to the input, with
numbers compared as their text, and the model knows every element of it (none is left over
as an unknown element, which would be written back as read). Used by
``tests/fhir/test_examples.py``, ``tests/fhir/test_ig_packages.py`` and ``make regen-check``
(through ``python -m codegen.roundtrip``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def as_text_numbers(text: str | bytes) -> Any:
    """Parse JSON keeping every number as ("n", its text) so that 1.50 != 1.5."""
    return json.loads(text, parse_float=lambda s: ("n", s), parse_int=lambda s: ("n", s))


_RESOURCE_FOLDERS = ("package", "package/example")


def example_documents(tarball: Path) -> Iterator[tuple[str, bytes]]:
    """(member name, raw JSON) of every resource in a FHIR package tarball.

    A package holds its resources in ``package/`` and, in an Implementation Guide, its examples
    in ``package/example/``; other folders (``openapi/``, ``other/``, ``xml/``) hold no FHIR JSON.
    """
    documents: list[tuple[str, bytes]] = []
    # Read in the archive's order, then sort: extracting a .tgz's members out of order makes
    # gzip decompress again from the start for each backward seek (seconds on a large package).
    with tarfile.open(tarball) as tar:
        for member in tar:
            name = member.name
            if not member.isfile() or not name.endswith(".json"):
                continue
            folder, _, base = name.rpartition("/")
            if base in ("package.json", ".index.json") or folder not in _RESOURCE_FOLDERS:
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                documents.append((name, handle.read()))
    yield from sorted(documents)


# The same ten SearchParameters, without `base` (1..*), in the R4 and R4B examples.
_NO_BASE = {
    f"package/SearchParameter-{kind}-extensions-{target}-{name}.json": (
        "SearchParameter.base (1..*) missing"
    )
    for kind, target in (("codesystem", "CodeSystem"), ("valueset", "ValueSet"))
    for name in ("author", "effective", "end", "keyword", "workflow")
}

# Official examples that are not valid FHIR for their release (a required element, 1..1 or 1..*,
# is missing), so the models rightly reject them. Documented in docs/models.md; anything else
# failing is a bug.
KNOWN_INVALID: dict[str, dict[str, str]] = {
    "hl7.fhir.r4.examples@4.0.1": {
        "package/ImplementationGuide-fhir.json": "ImplementationGuide.name, .status missing",
        "package/ig-r4.json": "ImplementationGuide.name, .status missing",
        "package/Questionnaire-qs1.json": "Questionnaire.item.linkId missing in nested items",
        **_NO_BASE,
    },
    "hl7.fhir.r4b.examples@4.3.0": {
        "package/Bundle-valuesets.json": "CodeSystem and ValueSet catalogType: status missing",
        "package/CodeSystem-catalogType.json": "CodeSystem.status missing",
        "package/ValueSet-catalogType.json": "ValueSet.status missing",
        **_NO_BASE,
    },
    "hl7.fhir.r5.examples@5.0.0": {
        "package/QuestionnaireResponse-f201.json": "QuestionnaireResponse.questionnaire missing",
    },
    # R4 Implementation Guides (tests/fhir/test_ig_packages.py).
    "hl7.fhir.uv.extensions.r4@5.3.0-ballot-tc1": {
        "package/StructureDefinition-event-recorded.json": "StructureDefinition.text.div missing",
    },
    "hl7.terminology.r4@7.0.1": {
        "package/NamingSystem-MeSH.json": "NamingSystem.uniqueId.type missing",
        "package/NamingSystem-v3-loinc.json": "NamingSystem.uniqueId.type missing",
    },
}


@dataclass
class Report:
    passed: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """A short description of where two parsed JSON documents differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in b:
                return f"{path}/{key}: missing in output"
            if key not in a:
                return f"{path}/{key}: added in output"
            if a[key] != b[key]:
                return first_difference(a[key], b[key], f"{path}/{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{path}/{i}")
    return f"{path}: {str(a)[:80]} != {str(b)[:80]}"


def _python_number(text: str) -> float | Decimal:
    """What ``to_fhir_json`` makes of a JSON number with a fraction or exponent: the float,
    unless its shortest text has another value (``66.899999999999991``), then the Decimal."""
    number = float(text)
    return number if Decimal(repr(number)) == Decimal(text) else Decimal(text)


def unknown_elements(model: BaseModel, path: str) -> list[str]:
    """The path of every element of ``model`` (nested ones too) that its class does not define."""
    found = [f"{path}.{name}" for name in model.model_extra or {}]
    # A FHIRModel's __dict__ holds exactly its present elements (and the unknown ones).
    for name, value in model.__dict__.items():
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, BaseModel):
                where = f"{path}.{name}[{i}]" if isinstance(value, list) else f"{path}.{name}"
                found += unknown_elements(item, where)
    return found


def roundtrip_one(package: str, raw: bytes, *, as_dict: bool = False) -> str | None:
    """None when ``raw`` round-trips through ``package``'s model, else why not.

    With ``as_dict``, ``pymedplum.to_fhir_json(model)`` must also equal ``raw`` as a dict: its
    numbers ints and floats, or a Decimal where no float gives the text's value back.
    """
    fhir = importlib.import_module(package)
    original = as_text_numbers(raw)
    resource_type = original.get("resourceType") if isinstance(original, dict) else None
    if not isinstance(resource_type, str) or resource_type not in fhir.RESOURCE_MODULES:
        return f"no model for resourceType {resource_type!r}"
    model_cls = fhir.get_model(resource_type)
    try:
        model = model_cls.model_validate_json(raw)
    except Exception as exc:  # the report names the failure; pytest shows it
        return f"{type(exc).__name__}: {str(exc)[:400]}"
    out = model.model_dump_json(by_alias=True, exclude_none=True)
    back = as_text_numbers(out)
    if back != original:
        return "differs at " + first_difference(original, back)
    # An element the model does not know is kept as an unknown one and written back as read,
    # so the round trip alone would not notice a model that lacks it.
    unknown = unknown_elements(model, resource_type)
    if unknown:
        return "unknown elements: " + ", ".join(unknown[:5])
    if as_dict:
        from pymedplum import to_fhir_json

        plain, fhir_dict = json.loads(raw, parse_float=_python_number), to_fhir_json(model)
        if fhir_dict != plain:
            return "to_fhir_json differs at " + first_difference(plain, fhir_dict)
    return None


def roundtrip_package(
    package: str, tarball: Path, *, as_dict: bool = False, skip: tuple[str, ...] = ()
) -> Report:
    """Round-trip every resource of ``tarball`` whose member name starts with none of ``skip``."""
    report = Report()
    for name, raw in example_documents(tarball):
        if skip and name.startswith(skip):
            continue
        problem = roundtrip_one(package, raw, as_dict=as_dict)
        if problem is None:
            report.passed += 1
        else:
            report.failures[name] = problem
    return report


def check(package: str, examples: str) -> bool:
    """Round-trip an examples package (``name@version``); True when only known-invalid fail."""
    from codegen.fhir_packages import ensure

    report = roundtrip_package(package, ensure(examples))
    known = KNOWN_INVALID.get(examples, {})
    for name, problem in sorted(report.failures.items()):
        tag = "known invalid" if name in known and "Field required" in problem else "FAIL"
        print(f"{tag} {name}: {problem.splitlines()[0]}")
    total = report.passed + len(report.failures)
    print(f"{package}: {report.passed}/{total} examples of {examples} round-trip")
    failed = set(report.failures)
    invalid_ok = all("Field required" in report.failures[n] for n in failed & set(known))
    return failed == set(known) and invalid_ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m codegen.roundtrip")
    parser.add_argument("--package", required=True, help="models package, e.g. pymedplum.fhir")
    parser.add_argument("examples", help="examples package, e.g. hl7.fhir.r4.examples@4.0.1")
    args = parser.parse_args(argv)
    sys.exit(0 if check(args.package, args.examples) else 1)


if __name__ == "__main__":
    main()

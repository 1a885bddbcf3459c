"""Render ``src/pymedplum/search_params/``: a ``TypedDict`` of search parameters per resource type.

Input: the FHIR R4 and Medplum SearchParameter bundles in ``specs/`` (plus the resource type
names from the StructureDefinitions). Each resource type gets ``<Type>SearchParams`` (total=False)
whose keys are the FHIR parameter names (``birthdate``, ``general-practitioner``), the common
ones (``_id``, ``_lastUpdated``, ``_count``, ...) and the usual modifiers of each parameter type
(``name:contains``, ``identifier:not``, ``organization:identifier``, ``birthdate:missing``).
One module per resource type; the package ``__init__`` loads them lazily.
"""

from __future__ import annotations

import keyword
import textwrap
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jinja2

from codegen.specs import load_json
from codegen.util import ruff, snake_case

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "pymedplum" / "search_params"
TEMPLATES = Path(__file__).resolve().parent / "templates"

# The usual modifiers of each search parameter type (FHIR R4 search.html#modifiers), limited to
# what Medplum understands; ":missing" applies to every type.
MODIFIERS: dict[str, tuple[str, ...]] = {
    "string": ("contains", "exact", "missing"),
    "token": ("not", "text", "in", "not-in", "missing"),
    "reference": ("identifier", "not", "missing"),
    "uri": ("above", "below", "missing"),
    "date": ("missing",),
    "number": ("missing",),
    "quantity": ("missing",),
    "composite": ("missing",),
    "special": ("missing",),
}
# Search result parameters (search.html#return) every resource type accepts.
RESULT_PARAMETERS = (
    "_at",
    "_count",
    "_cursor",
    "_elements",
    "_filter",
    "_has",
    "_include",
    "_include:iterate",
    "_offset",
    "_revinclude",
    "_revinclude:iterate",
    "_sort",
    "_summary",
    "_total",
    "_compartment",
)
_ABSTRACT = {"Resource", "DomainResource"}


def resource_types() -> list[str]:
    """Concrete FHIR R4 and Medplum resource types, sorted."""
    names: set[str] = set()
    for target in ("fhir-r4/profiles-resources.json.gz", "medplum/profiles-medplum.json.gz"):
        for index, sd in _resources(target):
            with _malformed(target, index, sd):
                if (
                    sd.get("resourceType") == "StructureDefinition"
                    and sd.get("kind") == "resource"
                    and not sd.get("abstract")
                ):
                    names.add(sd["name"] if target.startswith("medplum") else sd["id"])
    return sorted(names - _ABSTRACT)


def parameters_by_type(types: list[str]) -> dict[str, dict[str, str]]:
    """resource type → {parameter code: search parameter type}."""
    common: dict[str, str] = {}
    by_type: dict[str, dict[str, str]] = defaultdict(dict)
    for target in (
        "fhir-r4/search-parameters.json.gz",
        "medplum/search-parameters-medplum.json.gz",
    ):
        for index, sp in _resources(target):
            with _malformed(target, index, sp):
                for base in sp.get("base", []):
                    if base in _ABSTRACT:
                        common[sp["code"]] = sp["type"]
                    else:
                        by_type[base][sp["code"]] = sp["type"]
    return {t: {**common, **by_type.get(t, {})} for t in types}


def _resources(target: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, resource) of each entry of a vendored Bundle."""
    bundle = load_json(target)
    with _malformed(target, None, bundle):
        entries = list(bundle["entry"])
    for index, entry in enumerate(entries):
        with _malformed(target, index, entry):
            resource = entry["resource"]
        yield index, resource


@contextmanager
def _malformed(target: str, index: int | None, item: Any) -> Iterator[None]:
    """An input missing what the generator reads is one error naming its file and entry."""
    try:
        yield
    except (KeyError, TypeError, AttributeError) as exc:
        what = f"missing {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        where = "the Bundle" if index is None else f"entry {index}"
        if isinstance(item, dict) and (name := item.get("url") or item.get("id")):
            where += f" ({item.get('resourceType', 'resource')} {name})"
        raise SystemExit(f"specs/{target}: {where} is malformed ({what})") from None


def keys_for(params: dict[str, str]) -> list[str]:
    """Every key of one TypedDict: parameters, their modifiers, then result parameters."""
    keys: list[str] = []
    for code in sorted(params):
        keys.append(code)
        modifiers = MODIFIERS.get(params[code], ("missing",))
        if code.startswith("_"):  # _id, _tag, _profile...: only the generic modifiers
            modifiers = tuple(m for m in modifiers if m in ("not", "missing"))
        keys.extend(f"{code}:{m}" for m in modifiers)
    keys.extend(k for k in RESULT_PARAMETERS if k not in params)
    return keys


def summary(params: dict[str, str]) -> str:
    """``code`` (type) of every parameter, wrapped for a docstring."""
    text = ", ".join(f"``{code}`` ({kind})" for code, kind in sorted(params.items()))
    return "\n".join(textwrap.wrap(text + ".", 96))


def module_name(resource_type: str) -> str:
    """``MedicationRequest`` → ``medication_request`` (a valid, non-keyword identifier)."""
    name = snake_case(resource_type)
    return name + "_" if keyword.iskeyword(name) else name


def generate() -> None:
    """Write the package (the ``make generate`` step)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    types = resource_types()
    params = parameters_by_type(types)
    if OUT.exists():
        for old in OUT.glob("*.py"):
            old.unlink()
    OUT.mkdir(parents=True, exist_ok=True)
    module_template = env.get_template("search_params_module.py.jinja")
    for resource_type in types:
        (OUT / f"{module_name(resource_type)}.py").write_text(
            module_template.render(
                resource_type=resource_type,
                keys=keys_for(params[resource_type]),
                summary=summary(params[resource_type]),
            ),
            encoding="utf-8",
        )
    (OUT / "__init__.py").write_text(
        env.get_template("search_params_init.py.jinja").render(
            entries=[(t, module_name(t)) for t in types]
        ),
        encoding="utf-8",
    )
    ruff("check", "--quiet", "--fix", "--select", "I,RUF022", OUT, check=False)
    ruff("format", "--quiet", OUT)

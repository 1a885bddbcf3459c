"""Terminology operations: the inputs of ``ValueSet/$expand``, ``CodeSystem/$lookup`` and
``ConceptMap/$translate`` as query pairs for a GET or a Parameters resource for a POST.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from pymedplum._request_builders.arguments import (
    check_bool,
    check_date,
    check_non_negative_int,
    check_str,
    check_str_list,
)
from pymedplum._request_builders.search import wire_value
from pymedplum._serialization import wire_dict


def _coded(arg: str, value: object, kind: str) -> dict[str, Any]:
    """A Coding / CodeableConcept argument as FHIR JSON; TypeError naming ``arg`` otherwise."""
    if isinstance(value, BaseModel):
        return wire_dict(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(
        f"{arg} must be a dict or a pydantic model (a FHIR {kind}), got {type(value).__name__}"
    )


def _query_and_parameters(
    items: Sequence[tuple[str, str, str | int | bool | list[str] | None]],
) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """(query pairs, Parameters.parameter) for ``(name, value[x] key, checked value)`` items."""
    query: list[tuple[str, str]] = []
    parameters: list[dict[str, Any]] = []
    for name, value_key, value in items:
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            query.append((name, wire_value(item) or ""))
            parameters.append({"name": name, value_key: item})
    return query, parameters


def _has_str(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    return isinstance(value, str) and bool(value.strip())


def expand_params(
    *,
    valueset_url: str | None,
    filter: str | None,
    offset: int | None,
    count: int | None,
    include_designations: bool | None,
    active_only: bool | None,
    exclude_nested: bool | None,
    exclude_not_for_ui: bool | None,
    exclude_post_coordinated: bool | None,
    display_language: str | None,
    property: str | Sequence[str] | None,
) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """``ValueSet/$expand`` inputs (FHIR names; unset options left out) as (query pairs for a
    GET, ``Parameters.parameter`` entries for a POST).

    Every option is checked (TypeError / ValueError naming it). An empty ``filter`` means no
    filter and is left out; ``property`` is one str or a list of them.
    """
    if isinstance(filter, str) and not filter.strip():
        filter = None
    return _query_and_parameters(
        [
            ("url", "valueUri", check_str("valueset_url", valueset_url)),
            ("filter", "valueString", check_str("filter", filter)),
            ("offset", "valueInteger", check_non_negative_int("offset", offset)),
            ("count", "valueInteger", check_non_negative_int("count", count)),
            (
                "includeDesignations",
                "valueBoolean",
                check_bool("include_designations", include_designations),
            ),
            ("activeOnly", "valueBoolean", check_bool("active_only", active_only)),
            ("excludeNested", "valueBoolean", check_bool("exclude_nested", exclude_nested)),
            (
                "excludeNotForUI",
                "valueBoolean",
                check_bool("exclude_not_for_ui", exclude_not_for_ui),
            ),
            (
                "excludePostCoordinated",
                "valueBoolean",
                check_bool("exclude_post_coordinated", exclude_post_coordinated),
            ),
            ("displayLanguage", "valueCode", check_str("display_language", display_language)),
            ("property", "valueString", check_str_list("property", property)),
        ]
    )


def lookup_request(
    *,
    code: str | None,
    system: str | None,
    codesystem_id: str | None,
    version: str | None,
    coding: Mapping[str, Any] | BaseModel | None,
    date: str | None,
    display_language: str | None,
    property: str | Sequence[str] | None,
) -> tuple[list[tuple[str, str]], dict[str, Any] | None]:
    """``CodeSystem/$lookup``: (query, None) for a GET, or ([], Parameters) when a Coding is given.

    A code needs its system: ``system``, the instance's (``codesystem_id``) or the Coding's.
    With a Coding, ``code`` and ``system`` may repeat its values or fill in the ones it lacks,
    but must not contradict them (``code=""`` counts as not given there: the argument is
    positional and required by the signature).
    """
    if coding is not None and code == "":
        code = None
    code = check_str("code", code)
    system = check_str("system", system)
    items: list[tuple[str, str, str | int | bool | list[str] | None]] = [
        ("version", "valueString", check_str("version", version)),
        ("date", "valueDateTime", check_date("date", date)),
        ("displayLanguage", "valueCode", check_str("display_language", display_language)),
        ("property", "valueCode", check_str_list("property", property)),
    ]
    if coding is None:
        if code is None:
            raise ValueError("lookup_concept needs code (with system or codesystem_id) or coding")
        if system is None and codesystem_id is None:
            raise ValueError(
                f"lookup_concept needs system (or codesystem_id) to look up code {code!r}"
            )
        query, _ = _query_and_parameters(
            [("code", "valueCode", code), ("system", "valueUri", system), *items]
        )
        return query, None
    coding_json = _coded("coding", coding, "Coding")
    for arg, value in (("code", code), ("system", system)):
        if value is None:
            continue
        if coding_json.get(arg) is None:
            coding_json[arg] = value
        elif coding_json[arg] != value:
            raise ValueError(f"lookup_concept: {arg}={value!r} contradicts coding.{arg}")
    if not _has_str(coding_json, "code"):
        raise ValueError("lookup_concept needs a code: coding has none and code is not given")
    if not _has_str(coding_json, "system") and codesystem_id is None:
        raise ValueError(
            "lookup_concept needs a system: coding has none, and neither system nor "
            "codesystem_id is given"
        )
    _, parameters = _query_and_parameters(items)
    return [], {
        "resourceType": "Parameters",
        "parameter": [{"name": "coding", "valueCoding": coding_json}, *parameters],
    }


def translate_request(
    *,
    code: str | None,
    system: str | None,
    conceptmap_url: str | None,
    version: str | None,
    source: str | None,
    target: str | None,
    coding: Mapping[str, Any] | BaseModel | None,
    codeable_concept: Mapping[str, Any] | BaseModel | None,
    target_system: str | None,
    reverse: bool | None,
) -> tuple[list[tuple[str, str]], dict[str, Any] | None]:
    """``ConceptMap/$translate``: (query, None) for a GET, or ([], Parameters) for a POST.

    A Coding or CodeableConcept cannot travel as a query parameter, so either one makes the
    request a POST of a Parameters resource carrying every given input. As FHIR's $translate
    says, exactly one of code + system, coding and codeable_concept is the source.
    """
    code = check_str("code", code)
    system = check_str("system", system)
    query, parameters = _query_and_parameters(
        [
            ("url", "valueUri", check_str("conceptmap_url", conceptmap_url)),
            ("conceptMapVersion", "valueString", check_str("version", version)),
            ("code", "valueCode", code),
            ("system", "valueUri", system),
            ("source", "valueUri", check_str("source", source)),
            ("target", "valueUri", check_str("target", target)),
            ("targetsystem", "valueUri", check_str("target_system", target_system)),
            ("reverse", "valueBoolean", check_bool("reverse", reverse)),
        ]
    )
    coding_json = None if coding is None else _coded("coding", coding, "Coding")
    concept_json = (
        None
        if codeable_concept is None
        else _coded("codeable_concept", codeable_concept, "CodeableConcept")
    )
    if coding_json is None and concept_json is None:
        if code is None:
            raise ValueError("translate_concept needs code and system, coding or codeable_concept")
        if system is None:
            raise ValueError(f"translate_concept needs system to translate code {code!r}")
        return query, None
    if code is not None or system is not None:
        raise ValueError(
            "translate_concept takes code + system, or coding / codeable_concept, not both"
        )
    if coding_json is not None and concept_json is not None:
        raise ValueError("translate_concept takes coding or codeable_concept, not both")
    if coding_json is not None:
        parameters.append({"name": "coding", "valueCoding": coding_json})
    if concept_json is not None:
        parameters.append({"name": "codeableConcept", "valueCodeableConcept": concept_json})
    return [], {"resourceType": "Parameters", "parameter": parameters}

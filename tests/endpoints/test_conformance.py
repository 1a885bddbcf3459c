"""Conformance with the API contract: every client method the contract documents exists on
MedplumClient and AsyncMedplumClient with the same parameter names, kinds and defaults.

The contract is parsed from its text (``contract/api-reference.txt``, a copy of
``shared/spec/api-reference.txt``; a drift check compares them when the shared file exists).
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pymedplum
from pymedplum import AsyncMedplumClient, MedplumClient

HERE = Path(__file__).resolve().parent
CONTRACT = HERE / "contract" / "api-reference.txt"
SHARED = next(
    (
        p / "shared" / "spec" / "api-reference.txt"
        for p in HERE.parents
        if (p / "shared" / "spec" / "api-reference.txt").exists()
    ),
    HERE / "no-shared-contract",
)

# The client reference runs from "Resource Operations" to the async client's section; module
# helpers documented inside it (ProjectMembership access helpers) are not client methods.
_START, _END = "Resource Operations", "Asynchronous Client (AsyncMedplumClient)"
_SIGNATURE = re.compile(r"^([a-z_][A-Za-z0-9_]*)\((.*)\) -> .+$")
_MISSING = inspect.Parameter.empty


@dataclass(frozen=True)
class Expected:
    name: str
    kind: inspect._ParameterKind
    default: Any


def _split(params: str) -> list[str]:
    return [p.strip() for p in params.split(",") if p.strip()]


def parse_contract(text: str) -> dict[str, list[Expected]]:
    """Method name → its parameters, from the signature headings of the client reference."""
    lines = text.splitlines()
    start = lines.index(_START)
    end = lines.index(_END)
    methods: dict[str, list[Expected]] = {}
    for line in lines[start:end]:
        match = _SIGNATURE.match(line.strip())
        if not match:
            continue
        name, raw = match.groups()
        if hasattr(pymedplum, name):  # a top-level helper such as partition_access
            continue
        params: list[Expected] = []
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        for part in _split(raw):
            if part == "*":
                kind = inspect.Parameter.KEYWORD_ONLY
            elif part.startswith("**"):
                params.append(Expected(part[2:], inspect.Parameter.VAR_KEYWORD, _MISSING))
            elif "=" in part:
                pname, default = part.split("=", 1)
                params.append(Expected(pname, kind, ast.literal_eval(default)))
            else:
                params.append(Expected(part, kind, _MISSING))
        methods[name] = params
    return methods


CONTRACT_METHODS = parse_contract(CONTRACT.read_text())


def actual(cls: type, name: str) -> list[Expected]:
    signature = inspect.signature(getattr(cls, name))
    return [
        Expected(p.name, p.kind, p.default)
        for p in list(signature.parameters.values())[1:]  # without self
    ]


def test_the_parser_finds_every_documented_method() -> None:
    expected = {
        "create_resource", "create_resource_if_none_exist", "read_resource", "vread_resource",
        "update_resource", "patch_resource", "delete_resource", "search_resources", "search_one",
        "search_resource_pages", "search_with_options", "execute_batch", "execute_transaction",
        "execute_graphql", "get", "post", "put", "delete", "on_behalf_of", "set_accounts",
        "merge_project_membership_access", "add_project_membership_access_entry",
        "remove_project_membership_access_entry", "get_async_job_status", "wait_for_async_job",
        "upload_binary", "download_binary", "export_ccda", "expand_valueset", "lookup_concept",
        "translate_concept",
    }  # fmt: skip
    assert set(CONTRACT_METHODS) == expected
    assert CONTRACT_METHODS["wait_for_async_job"] == [
        Expected("job", inspect.Parameter.POSITIONAL_OR_KEYWORD, _MISSING),
        Expected("poll_interval", inspect.Parameter.POSITIONAL_OR_KEYWORD, 1.0),
        Expected("timeout", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
    ]


@pytest.mark.parametrize("cls", [MedplumClient, AsyncMedplumClient], ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(CONTRACT_METHODS))
def test_method_matches_the_contract(cls: type, name: str) -> None:
    assert hasattr(cls, name), f"{cls.__name__}.{name} is missing"
    assert actual(cls, name) == CONTRACT_METHODS[name]


@pytest.mark.parametrize("cls", [MedplumClient, AsyncMedplumClient], ids=lambda c: c.__name__)
def test_search_with_options_alias(cls: type) -> None:
    assert "searchWithOptions" in CONTRACT.read_text()
    assert actual(cls, "searchWithOptions") == actual(cls, "search_with_options")


@pytest.mark.parametrize("name", sorted(CONTRACT_METHODS))
def test_async_methods_are_coroutines_and_sync_ones_are_not(name: str) -> None:
    sync_method = getattr(MedplumClient, name)
    async_method = getattr(AsyncMedplumClient, name)
    assert not inspect.iscoroutinefunction(sync_method)
    if name == "search_resource_pages":
        # A plain function returning the async iterator (binding its On-Behalf-Of at the call).
        assert not inspect.iscoroutinefunction(async_method)
    elif name != "on_behalf_of":
        assert inspect.iscoroutinefunction(async_method)


def test_contract_import_paths() -> None:
    from pymedplum.async_client import AsyncMedplumClient as FromAsyncModule
    from pymedplum.client import MedplumClient as FromClientModule

    assert FromAsyncModule is AsyncMedplumClient
    assert FromClientModule is MedplumClient


@pytest.mark.skipif(not SHARED.exists(), reason="outside the multi-repo checkout")
def test_the_vendored_contract_is_current() -> None:
    assert CONTRACT.read_text() == SHARED.read_text()


# --- the constructor and the module-level helpers ---------------------------------------------

_CONSTRUCTOR = re.compile(r"^MedplumClient\(\n(.*?)\n\)$", re.S | re.M)


def parse_constructor(text: str) -> list[tuple[str, inspect._ParameterKind, str, Any]]:
    """``(name, kind, annotation, default)`` of each argument of the documented constructor."""
    match = _CONSTRUCTOR.search(text)
    assert match is not None, "the contract's constructor block was not found"
    params = []
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    for line in match.group(1).splitlines():
        part = line.strip().rstrip(",")
        if part == "*":
            kind = inspect.Parameter.KEYWORD_ONLY
            continue
        name, rest = part.split(":", 1)
        annotation, default = rest.split("=", 1)
        params.append((name, kind, annotation.strip(), ast.literal_eval(default.strip())))
    return params


CONSTRUCTOR = parse_constructor(CONTRACT.read_text())


@pytest.mark.parametrize("cls", [MedplumClient, AsyncMedplumClient], ids=lambda c: c.__name__)
def test_constructor_matches_the_contract(cls: type) -> None:
    assert len(CONSTRUCTOR) == 13
    params = list(inspect.signature(cls).parameters.values())
    # The contract's arguments, in its order; then `retry` (keyword-only, documented extension).
    assert [(p.name, p.kind, p.default) for p in params[: len(CONSTRUCTOR)]] == [
        (name, kind, default) for name, kind, _, default in CONSTRUCTOR
    ]
    assert [(p.name, p.kind, p.default) for p in params[len(CONSTRUCTOR) :]] == [
        ("retry", inspect.Parameter.KEYWORD_ONLY, None)
    ]
    # The annotations as the contract writes them (the async client takes httpx.AsyncClient and
    # also a coroutine on_request_complete).
    expected = {name: annotation for name, _, annotation, _ in CONSTRUCTOR}
    if cls is AsyncMedplumClient:
        expected["http_client"] = "httpx.AsyncClient | None"
        expected["on_request_complete"] = (
            "OnRequestCompleteHook | AsyncOnRequestCompleteHook | None"
        )
    assert {p.name: p.annotation for p in params[: len(CONSTRUCTOR)]} == expected


_HELPER = re.compile(r"^([a-z_][a-z0-9_]*)\(([^()]*)\) -> .+$", re.M)


def parse_helpers(text: str) -> dict[str, list[str]]:
    """Parameter names of every documented module-level helper (``pymedplum.<name>``)."""
    return {
        name: [p.split("=")[0].strip() for p in _split(raw) if p != "*"]
        for name, raw in _HELPER.findall(text)
        if name not in CONTRACT_METHODS and hasattr(pymedplum, name)
    }


HELPERS = parse_helpers(CONTRACT.read_text())


def test_the_helper_parser_finds_the_documented_helpers() -> None:
    assert {"parse_reference", "coding_parts", "to_fhir_json", "partition_access"} <= set(HELPERS)
    assert len(HELPERS) == 21


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_helper_parameters_match_the_contract(name: str) -> None:
    # Names in order: the contract's readers may pass any of them by keyword.
    params = inspect.signature(getattr(pymedplum, name)).parameters
    assert list(params) == HELPERS[name]

"""What a user's type checker sees of the whole public API (run with the project's mypy
configuration; tests/packaging/test_wheel.py runs the same files against the installed wheel
with a plain ``mypy --strict``, no pydantic plugin).

``public_api_usage.py`` calls every public method of both clients as the contract shows and
states the inferred type with ``assert_type``: it must pass ``mypy --strict`` and pyright in
strict mode. The misuse of each of those calls is derived from the same file (so a method added
to the usage is checked both ways): an unknown keyword, a first argument of the wrong type,
``as_fhir=`` given a non-model, awaiting a sync result, not awaiting an async one, and iterating
the pages with the other flavour's loop. Each must be an error for both checkers, on its line.
``models_usage.py`` / ``models_mistakes.py`` do the same for the models and the helpers, and
every name each public module exports must resolve, each model to its class.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from pymedplum import AsyncMedplumClient, MedplumClient
from tests.fhir.test_typing import _mypy, _run_pyright

USAGE = Path(__file__).resolve().parent / "public_api_usage.py"
# The models (fields, construction, pydantic methods) and the contract's helpers.
MODELS_USAGE = USAGE.parent / "models_usage.py"
_PYRIGHT_ERROR = re.compile(r":(\d+):\d+ - error: ")
_MYPY_ERROR = re.compile(r":(\d+): error: ")
# The functions of the usage file that call the clients, and the client each one is given.
SYNC_FUNCTION, ASYNC_FUNCTION = "sync_client", "async_client"
# Names the misuse functions take (the usage functions' locals the calls use).
LOCALS = (
    "patient: Patient, raw: dict[str, Any], ops: list[PatchOperation], "
    "entry: dict[str, Any], bundle: Bundle, started: dict[str, Any]"
)


def _function(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    raise AssertionError(f"{USAGE.name} has no function {name}")


def _client_call(node: ast.expr) -> ast.Call | None:
    """``client.method(...)`` (awaited or not), else None."""
    if isinstance(node, ast.Await):
        node = node.value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "client"
    ):
        return node
    return None


def _checked_calls(function: ast.AST) -> list[tuple[ast.Call, str | None]]:
    """Each client call of an ``assert_type`` or a ``for`` loop, with the type asserted (None
    for a loop)."""
    found: list[tuple[ast.Call, str | None]] = []
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "assert_type"
            and (call := _client_call(node.args[0])) is not None
        ):
            found.append((call, ast.unparse(node.args[1])))
        elif isinstance(node, (ast.For, ast.AsyncFor)) and (call := _client_call(node.iter)):
            found.append((call, None))
    return found


def _called_methods(function: ast.AST) -> set[str]:
    return {
        call.func.attr
        for node in ast.walk(function)
        if isinstance(node, ast.expr) and (call := _client_call(node)) is not None
        if isinstance(call.func, ast.Attribute)
    }


def _public_methods(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, callable) if not name.startswith("_")}


def test_the_usage_calls_every_public_method_of_both_clients() -> None:
    tree = ast.parse(USAGE.read_text())
    assert _called_methods(_function(tree, SYNC_FUNCTION)) == _public_methods(MedplumClient)
    assert _called_methods(_function(tree, ASYNC_FUNCTION)) == _public_methods(AsyncMedplumClient)


@pytest.mark.parametrize("usage", [USAGE, MODELS_USAGE], ids=lambda p: p.stem)
def test_the_usage_passes_mypy_strict_with_the_asserted_types(usage: Path) -> None:
    result = _mypy(usage)
    assert result.returncode == 0, result.stdout
    assert usage.read_text().count("assert_type(") > 60


@pytest.mark.parametrize("usage", [USAGE, MODELS_USAGE], ids=lambda p: p.stem)
def test_the_usage_passes_pyright_strict_with_the_asserted_types(usage: Path) -> None:
    assert "\n# pyright: strict\n" in usage.read_text()
    result = _run_pyright(usage)
    assert result.returncode == 0, result.stdout
    assert "0 errors" in result.stdout


def _with(call: ast.Call, **changes: object) -> ast.Call:
    copy = ast.Call(func=call.func, args=list(call.args), keywords=list(call.keywords))
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy


def _misuse(call: ast.Call, asserted: str | None, flavour: str) -> list[str]:
    """Statements misusing ``call``, each of which must be a type error."""
    awaited = "await " if flavour == "async" else ""
    lines = []
    bogus = ast.keyword(arg="not_a_parameter", value=ast.Constant(1))
    lines.append(awaited + ast.unparse(_with(call, keywords=[*call.keywords, bogus])))
    if call.args:
        wrong = ast.Call(func=ast.Name("object"), args=[], keywords=[])
        lines.append(awaited + ast.unparse(_with(call, args=[wrong, *call.args[1:]])))
    keywords = [k.arg for k in call.keywords]
    if "as_fhir" in keywords:
        not_a_model = [
            ast.keyword(arg="as_fhir", value=ast.Name("dict")) if k.arg == "as_fhir" else k
            for k in call.keywords
        ]
        lines.append(awaited + ast.unparse(_with(call, keywords=not_a_model)))
    return lines


def _mistakes_file() -> tuple[str, int]:
    """The misuse file's text and the number of statements marked ``# error``."""
    text = USAGE.read_text()
    tree = ast.parse(text)
    header = "\n".join(
        ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
    )
    body: dict[str, list[str]] = {
        f"def sync_misuse(client: MedplumClient, {LOCALS}) -> None:": [],
        f"async def async_misuse(client: AsyncMedplumClient, {LOCALS}) -> None:": [],
        f"async def sync_awaited(client: MedplumClient, {LOCALS}) -> None:": [],
        f"async def async_not_awaited(client: AsyncMedplumClient, {LOCALS}) -> None:": [],
    }
    sync_misuse, async_misuse, sync_awaited, async_not_awaited = body.values()
    for call, asserted in _checked_calls(_function(tree, SYNC_FUNCTION)):
        call_text = ast.unparse(call)
        if asserted is None:  # the pages: an async for over the sync iterator
            sync_awaited.append(f"async for _ in {call_text}:  # error\n        pass")
            sync_misuse.extend(
                f"for _ in {line}:  # error\n        pass" for line in _misuse(call, None, "sync")
            )
            continue
        sync_misuse.extend(f"{line}  # error" for line in _misuse(call, asserted, "sync"))
        if asserted != "Any":  # awaiting an Any is not an error
            sync_awaited.append(f"await {call_text}  # error")
    for call, asserted in _checked_calls(_function(tree, ASYNC_FUNCTION)):
        call_text = ast.unparse(call)
        if asserted is None:  # the pages: a plain for over the async iterator
            async_not_awaited.append(f"for _ in {call_text}:  # error\n        pass")
            async_misuse.extend(
                f"async for _ in {line}:  # error\n        pass"
                for line in _misuse(call, None, "sync")
            )
            continue
        async_misuse.extend(f"{line}  # error" for line in _misuse(call, asserted, "async"))
        # a coroutine used as its result, and one never awaited
        async_not_awaited.append(f"assert_type({call_text}, {asserted})  # error")
        async_not_awaited.append(f"{call_text}  # error")
    parts = [header]  # the usage's imports, ``from __future__ import annotations`` first
    for signature, statements in body.items():
        parts.append(signature + "\n" + "\n".join(f"    {line}" for line in statements))
    generated = "\n\n\n".join(parts) + "\n"
    return generated, generated.count("# error")


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text, count = _mistakes_file()
    assert count > 250
    path = tmp_path_factory.mktemp("typing") / "public_api_mistakes.py"
    path.write_text(text)
    return path


def _marked(path: Path) -> set[int]:
    lines = path.read_text().splitlines()
    return {number for number, line in enumerate(lines, start=1) if line.endswith("# error")}


def test_each_misuse_is_a_mypy_error(mistakes: Path) -> None:
    result = _mypy(mistakes)
    flagged = {int(m.group(1)) for m in map(_MYPY_ERROR.search, result.stdout.splitlines()) if m}
    missed = sorted(_marked(mistakes) - flagged)
    lines = mistakes.read_text().splitlines()
    assert [lines[n - 1] for n in missed] == [], result.stdout
    assert flagged == _marked(mistakes), result.stdout


def test_each_misuse_is_a_pyright_error(mistakes: Path) -> None:
    result = _run_pyright(mistakes)
    flagged = {int(m.group(1)) for m in map(_PYRIGHT_ERROR.search, result.stdout.splitlines()) if m}
    missed = sorted(_marked(mistakes) - flagged)
    lines = mistakes.read_text().splitlines()
    assert [lines[n - 1] for n in missed] == [], result.stdout
    assert flagged == _marked(mistakes), result.stdout


# Every name each public module exports, imported as a user would: the lazily loaded packages
# (pymedplum, pymedplum.fhir, pymedplum.search_params) resolve theirs through a stub or
# TYPE_CHECKING imports, which must name each one with its type.
EXPORTING_MODULES = (
    "pymedplum",
    "pymedplum.fhir",
    "pymedplum.search_params",
    "pymedplum.hooks",
    "pymedplum.endpoint_types",
    "pymedplum.exceptions",
    "pymedplum.payloads",
    "pymedplum.helpers",
    "pymedplum.bundle",
    "pymedplum.access",
    "pymedplum.client",
    "pymedplum.async_client",
)


@pytest.fixture(scope="module")
def every_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import importlib

    import pymedplum.fhir

    lines = [
        "# pyright: strict",
        "from __future__ import annotations",
        "from pydantic import BaseModel",
        "from typing_extensions import assert_type",
    ]
    used: list[str] = []
    for index, module_name in enumerate(EXPORTING_MODULES):
        names = sorted(importlib.import_module(module_name).__all__)
        aliases = [f"{name} as m{index}_{name}" for name in names]
        lines.append(f"from {module_name} import ({', '.join(aliases)})")
        used += [f"m{index}_{name}" for name in names]
    fhir = EXPORTING_MODULES.index("pymedplum.fhir")
    models = sorted(set(pymedplum.fhir.TYPE_MODULES))
    assert len(models) > 700
    lines.append("exported: list[object] = [" + ", ".join(used) + "]")
    # Each model is its class for the checker (not Any, not a module attribute of unknown type).
    lines.append(
        "models: list[type[BaseModel]] = [" + ", ".join(f"m{fhir}_{m}" for m in models) + "]"
    )
    lines += [f"assert_type(m{fhir}_{m}.model_validate({{}}), m{fhir}_{m})" for m in models]
    lines.append(f"assert_type(m{fhir}_TYPE_MODULES, dict[str, str])")
    path = tmp_path_factory.mktemp("exports") / "every_export.py"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_exported_name_resolves_for_mypy(every_export: Path) -> None:
    result = _mypy(every_export)
    assert result.returncode == 0, result.stdout


def test_every_exported_name_resolves_for_pyright(every_export: Path) -> None:
    result = _run_pyright(every_export)
    assert result.returncode == 0, result.stdout
    assert "0 errors" in result.stdout


MODELS_MISTAKES = USAGE.parent / "models_mistakes.py"


def test_model_mistakes_are_mypy_errors_on_exactly_the_marked_lines() -> None:
    result = _mypy(MODELS_MISTAKES)
    flagged = {int(m.group(1)) for m in map(_MYPY_ERROR.search, result.stdout.splitlines()) if m}
    assert len(_marked(MODELS_MISTAKES)) > 25
    assert flagged == _marked(MODELS_MISTAKES), result.stdout


def test_model_mistakes_are_pyright_errors_on_exactly_the_marked_lines() -> None:
    result = _run_pyright(MODELS_MISTAKES)
    flagged = {int(m.group(1)) for m in map(_PYRIGHT_ERROR.search, result.stdout.splitlines()) if m}
    assert flagged == _marked(MODELS_MISTAKES), result.stdout

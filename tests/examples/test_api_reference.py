"""docs/api.md renders every public name: ``pymedplum.__all__`` and ``pymedplum.helpers``.

mkdocstrings renders each ``::: target`` of the page: an object, or a module with the objects
defined in it. A public name is documented when a target is that object, or a module that
defines it.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pymedplum
import pymedplum.helpers

API_PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _resolve(target: str) -> object:
    """The module or object a ``::: target`` names (a module path, then attributes)."""
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute)
        return found
    raise AssertionError(f"docs/api.md: ::: {target} names nothing")


def documented() -> tuple[list[object], list[ModuleType]]:
    targets = [_resolve(t) for t in re.findall(r"^::: (\S+)", API_PAGE.read_text(), re.M)]
    modules = [t for t in targets if isinstance(t, ModuleType)]
    return targets, modules


def public_names() -> dict[str, object]:
    names = {name: getattr(pymedplum, name) for name in pymedplum.__all__}
    names.update((name, getattr(pymedplum.helpers, name)) for name in pymedplum.helpers.__all__)
    names.pop("__version__", None)
    return names


def test_every_public_name_is_in_the_api_reference() -> None:
    targets, modules = documented()
    module_names = {module.__name__ for module in modules}
    missing = sorted(
        name
        for name, obj in public_names().items()
        if not any(obj is target for target in targets)
        and getattr(obj, "__module__", None) not in module_names
    )
    assert missing == []

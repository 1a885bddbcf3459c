"""Compare the public signatures of ``MedplumClient`` and ``AsyncMedplumClient``.

    python scripts/check_client_signatures.py   # prints each difference; exit 1 if any

The contract says the async client has "the same methods", awaited. Every public method
(and the constructor and context-manager methods) must have the same parameters (name, kind,
default, annotation) and the same overloads, in the same order, the annotations differing only
by the async/sync name pairs below (``AsyncIterator`` / ``Iterator``, ...); an async method
must be a coroutine function (or return an ``AsyncIterator``) where its twin is plain.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

from typing_extensions import get_overloads

# Annotation names that may differ (async spelling -> sync spelling), and nothing else.
ASYNC_TO_SYNC: dict[str, str] = {
    "AsyncIterator": "Iterator",
    "AsyncMedplumClient": "MedplumClient",
    "AsyncBaseClient": "SyncBaseClient",
    "AsyncClient": "Client",
    "AsyncOnRequestCompleteHook": "OnRequestCompleteHook",
}
# Methods only the async client has (its twin is the sync ``close``).
ASYNC_ONLY = {"aclose"}
# Dunders of the public surface, async name -> sync name.
DUNDERS = {"__init__": "__init__", "__aenter__": "__enter__", "__aexit__": "__exit__"}

_NAME = re.compile(r"\b(" + "|".join(ASYNC_TO_SYNC) + r")\b")


def _union_members(annotation: str) -> list[str]:
    """The members of a top-level ``X | Y`` union (one member for anything else)."""
    members, depth, start = [], 0, 0
    for index, char in enumerate(annotation):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == "|" and depth == 0:
            members.append(annotation[start:index].strip())
            start = index + 1
    return [*members, annotation[start:].strip()]


def to_sync(annotation: str) -> str:
    """The sync spelling of an async annotation (``AsyncIterator[X]`` -> ``Iterator[X]``), a
    union member that becomes a repeat dropped (``Hook | AsyncHook | None`` -> ``Hook | None``:
    the async client also takes a coroutine function)."""
    renamed = _NAME.sub(lambda m: ASYNC_TO_SYNC[m.group(1)], annotation)
    return " | ".join(dict.fromkeys(_union_members(renamed)))


def _text(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "<none>"
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _describe(function: Callable[..., Any], flavour: str) -> list[str]:
    """One line per parameter and one for the return, in the sync spelling."""
    signature = inspect.signature(function)
    lines = [
        f"{p.name} {p.kind.name} default={p.default!r} annotation={to_sync(_text(p.annotation))}"
        for p in signature.parameters.values()
    ]
    returns = _text(signature.return_annotation)
    lines.append(f"-> {to_sync(returns) if flavour == 'async' else returns}")
    return lines


def _is_async(function: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        return True
    returns = _text(inspect.signature(function).return_annotation)
    return returns.startswith("AsyncIterator[")


def _overloads(function: Callable[..., Any]) -> list[Callable[..., Any]]:
    # A C slot (object.__init__ of a class without one) has no overloads, nor a __module__.
    return list(get_overloads(function)) if hasattr(function, "__module__") else []


def _public(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, callable)
        if not name.startswith("_") or name in DUNDERS or name in DUNDERS.values()
    }


def differences(sync_cls: type, async_cls: type) -> Iterator[str]:
    """Each way the two clients' public signatures differ (nothing when they agree)."""
    sync_members = _public(sync_cls)
    async_members = {
        DUNDERS.get(name, name): member
        for name, member in _public(async_cls).items()
        if name not in ASYNC_ONLY
    }
    for name in sorted(async_members.keys() - sync_members.keys()):
        yield f"{name}: only on {async_cls.__name__}"
    for name in sorted(sync_members.keys() - async_members.keys()):
        yield f"{name}: only on {sync_cls.__name__}"
    for name in sorted(sync_members.keys() & async_members.keys()):
        sync_fn, async_fn = sync_members[name], async_members[name]
        if _is_async(sync_fn):
            yield f"{name}: the {sync_cls.__name__} method is async"
        if name != "__init__" and name != "on_behalf_of" and not _is_async(async_fn):
            yield f"{name}: the {async_cls.__name__} method is not async"
        pairs = [(sync_fn, async_fn)]
        sync_overloads, async_overloads = _overloads(sync_fn), _overloads(async_fn)
        if len(sync_overloads) != len(async_overloads):
            yield (
                f"{name}: {len(sync_overloads)} overloads on {sync_cls.__name__}, "
                f"{len(async_overloads)} on {async_cls.__name__}"
            )
        pairs += zip(sync_overloads, async_overloads, strict=False)  # a count mismatch: above
        for index, (sync_variant, async_variant) in enumerate(pairs):
            where = name if index == 0 else f"{name} (overload {index})"
            sync_lines = _describe(sync_variant, "sync")
            async_lines = _describe(async_variant, "async")
            if sync_lines != async_lines:
                yield f"{where}: sync {sync_lines} != async {async_lines}"


def main() -> int:
    from pymedplum import AsyncMedplumClient, MedplumClient

    found = list(differences(MedplumClient, AsyncMedplumClient))
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

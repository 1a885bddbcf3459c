"""``MedplumClient`` and ``AsyncMedplumClient`` have the same public signatures (parameter names,
kinds, defaults, annotations and overloads), modulo ``AsyncIterator`` / ``Iterator``:
scripts/check_client_signatures.py, and that the check does catch each kind of drift."""

from __future__ import annotations

import inspect
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import check_client_signatures  # scripts/, put on sys.path by tests/conftest.py
from typing_extensions import overload  # records overloads on 3.10 too (typing's: 3.11+)

from pymedplum import AsyncMedplumClient, MedplumClient


def test_the_two_clients_have_identical_signatures() -> None:
    assert list(check_client_signatures.differences(MedplumClient, AsyncMedplumClient)) == []
    assert check_client_signatures.main() == 0


def test_the_check_covers_every_public_method_and_its_overloads() -> None:
    public = check_client_signatures._public(MedplumClient)
    contract = {"create_resource", "read_resource", "search_resource_pages", "get", "close"}
    assert contract <= public.keys() and {"__init__", "__enter__", "__exit__"} <= public.keys()
    assert len(public) > 30
    if sys.version_info >= (3, 11):  # typing.overload records overloads from 3.11 on
        assert len(check_client_signatures._overloads(MedplumClient.search_resources)) == 4


class _Sync:
    def same(self, a: str, *, b: int = 1) -> Iterator[str]:
        raise NotImplementedError

    def renamed(self, a: str) -> None: ...
    def default(self, a: int = 1) -> None: ...
    def annotation(self, a: str) -> None: ...
    def kind(self, a: str) -> None: ...
    def not_awaited(self) -> None: ...
    async def awaited(self) -> None: ...
    def sync_only(self) -> None: ...

    @overload
    def overloaded(self, a: None = None) -> dict[str, Any]: ...
    @overload
    def overloaded(self, a: type[int]) -> int: ...
    def overloaded(self, a: type[int] | None = None) -> dict[str, Any] | int:
        raise NotImplementedError


class _Async:
    def same(self, a: str, *, b: int = 1) -> AsyncIterator[str]:
        raise NotImplementedError

    async def renamed(self, b: str) -> None: ...
    async def default(self, a: int = 2) -> None: ...
    async def annotation(self, a: bytes) -> None: ...
    async def kind(self, *, a: str) -> None: ...
    def not_awaited(self) -> None: ...
    async def awaited(self) -> None: ...
    async def async_only(self) -> None: ...

    @overload
    async def overloaded(self, a: None = None) -> dict[str, Any]: ...
    async def overloaded(self, a: type[int] | None = None) -> dict[str, Any] | int:
        raise NotImplementedError


def test_each_kind_of_drift_is_reported() -> None:
    found = list(check_client_signatures.differences(_Sync, _Async))
    for name in ("renamed", "default", "annotation", "kind"):
        assert any(line.startswith(f"{name}: sync [") for line in found), name
    assert "not_awaited: the _Async method is not async" in found
    assert "awaited: the _Sync method is async" in found
    assert "async_only: only on _Async" in found
    assert "sync_only: only on _Sync" in found
    assert "overloaded: 2 overloads on _Sync, 1 on _Async" in found
    assert not [line for line in found if line.startswith("same")]


def test_async_names_map_to_their_sync_twins_as_whole_words() -> None:
    to_sync = check_client_signatures.to_sync
    assert to_sync("AsyncIterator[dict[str, Any] | ModelT]") == "Iterator[dict[str, Any] | ModelT]"
    assert to_sync("httpx.AsyncClient | None") == "httpx.Client | None"
    assert to_sync("MyAsyncIteratorX") == "MyAsyncIteratorX"
    hooks = "OnRequestCompleteHook | AsyncOnRequestCompleteHook | None"
    assert to_sync(hooks) == "OnRequestCompleteHook | None"
    assert to_sync("Callable[[A | B], None] | B") == "Callable[[A | B], None] | B"


def test_each_constructor_names_the_hook_types_it_takes_once() -> None:
    # unasync turned the async "Hook | AsyncHook | None" into "Hook | Hook | None" (shown so in
    # IDE hovers and mypy messages); the sync client takes a plain function only.
    sync_hook = inspect.signature(MedplumClient).parameters["on_request_complete"].annotation
    async_hook = inspect.signature(AsyncMedplumClient).parameters["on_request_complete"]
    assert sync_hook == "OnRequestCompleteHook | None"
    assert async_hook.annotation == "OnRequestCompleteHook | AsyncOnRequestCompleteHook | None"

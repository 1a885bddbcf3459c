"""A request on the SDK's own async pool looks up no module.

httpcore 1.0.x asks ``import sniffio`` on every lock operation of its async pool (four per
request) and falls back to asyncio when it is missing; anyio stopped requiring sniffio in 4.x,
so without it each of those imports searched ``sys.path`` and failed again, every time:
~150 µs per request on loopback, a third of the whole request (docs/performance.md). sniffio is
a runtime dependency for that reason; this checks the effect, not the package list.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

from pymedplum import AsyncMedplumClient


class _CountingFinder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: records every module search and finds nothing itself."""

    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        self.searched.append(fullname)
        return None


def test_async_requests_on_the_own_pool_search_for_no_module(server_url: str) -> None:
    finder = _CountingFinder()

    async def main() -> None:
        async with AsyncMedplumClient(server_url, access_token="tok") as client:
            await client.read_resource("Patient", "1")  # first use: lazy imports are fine
            sys.meta_path.insert(0, finder)
            try:
                for _ in range(5):
                    assert (await client.read_resource("Patient", "1"))["id"] == "1"
            finally:
                sys.meta_path.remove(finder)

    asyncio.run(main())
    assert finder.searched == []

"""Run n callers at once: tasks for the async client, threads for the sync one.

unasync maps ``gather_tasks`` to ``gather_threads`` (scripts/run_unasync.py REPLACEMENTS).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio


async def gather_tasks(n: int, fn: Callable[[int], Awaitable[Any]]) -> list[Any]:
    """Results (or raised exceptions) of ``fn(0..n-1)`` run as concurrent tasks."""
    results: list[Any] = [None] * n

    async def run(i: int) -> None:
        try:
            results[i] = await fn(i)
        except Exception as exc:
            results[i] = exc

    async with anyio.create_task_group() as group:
        for i in range(n):
            group.start_soon(run, i)
    return results


def gather_threads(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Results (or raised exceptions) of ``fn(0..n-1)`` run in n threads started together."""
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results

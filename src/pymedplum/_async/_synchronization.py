"""The only places where the async and the sync runtime behave differently (httpcore's pattern).

scripts/run_unasync.py writes the sync twin: a line ending in ``# async-only`` is dropped and a
``# sync-only: <code>`` comment becomes ``<code>``, so ``anyio.Lock`` becomes
``threading.Lock``, ``anyio.sleep`` becomes ``time.sleep`` and the sync client rejects
coroutine hooks. Nothing else in the runtime knows which flavour it is (the other modules mark
only a few lines so, for the types of awaitable callbacks and the ``close`` alias).
"""

from __future__ import annotations

import asyncio  # async-only
import inspect
import sys  # async-only
from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio  # async-only

# sync-only: import threading
# sync-only: import time


class AsyncLock:
    """A non-reentrant lock held across the token request (single-flight refresh)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = anyio.Lock()  # async-only
        # sync-only: self._lock = threading.Lock()

    def locked(self) -> bool:
        """Whether a caller holds it (a token request is under way)."""
        return self._lock.locked()

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()


def event_loop() -> object | None:
    """The event loop running this call: asyncio's loop, or trio's token; ``None`` for
    MedplumClient, which runs in no loop. An AsyncMedplumClient's locks and pooled connections
    belong to the first loop that used it."""
    try:  # async-only
        return asyncio.get_running_loop()  # async-only
    except RuntimeError:  # async-only
        trio = sys.modules.get("trio")  # async-only
        return None if trio is None else trio.lowlevel.current_trio_token()  # async-only
    # sync-only: return None


def is_closed_loop(loop: object) -> bool:
    """Whether ``loop`` (from :func:`event_loop`) is an asyncio loop that has been closed."""
    return isinstance(loop, asyncio.AbstractEventLoop) and loop.is_closed()  # async-only
    # sync-only: return False


async def sleep(seconds: float) -> None:
    """Wait between retries (tests patch this to record the delays instead of waiting)."""
    await anyio.sleep(seconds)  # async-only
    # sync-only: time.sleep(seconds)


def is_coroutine_callable(hook: object) -> bool:
    """Whether ``hook`` is a coroutine function, or an object whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
        getattr(hook, "__call__", None)  # noqa: B004
    )


def check_complete_hook(hook: object) -> None:
    """Reject at construction an on_request_complete hook this client cannot call."""
    if not callable(hook):
        raise TypeError("on_request_complete must be callable or None")
    # sync-only: if is_coroutine_callable(hook):
    # sync-only:     raise TypeError(
    # sync-only:         "MedplumClient needs a synchronous on_request_complete hook; "
    # sync-only:         "use AsyncMedplumClient for a coroutine function"
    # sync-only:     )


async def call_hook(hook: Callable[[Any], Any], event: Any) -> None:
    """Call an on_request_complete hook (one docstring for both twins).

    AsyncMedplumClient awaits an awaitable result, shielded from cancellation: the event of a
    call cancelled by a cancel scope (``anyio.move_on_after``, a task group) is delivered after
    the cancellation, and would otherwise be cancelled at the hook's first await and lost from
    the audit trail. MedplumClient refuses one (TypeError): nothing would ever run it.
    """
    result = hook(event)
    if inspect.isawaitable(result):
        with anyio.CancelScope(shield=True):  # async-only
            await result  # async-only
        # sync-only: if inspect.iscoroutine(result):
        # sync-only:     result.close()  # never run: no "coroutine was never awaited" warning
        # sync-only: raise TypeError("on_request_complete returned an awaitable in MedplumClient")

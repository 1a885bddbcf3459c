"""What scripts/live_check.py and scripts/load_check.py share: the ``MEDPLUM_*`` settings, the
checks' failure type, their registration, and the loop that runs them one by one, prints a
``PASS`` / ``FAIL`` line each, and always cleans up (a Ctrl-C included)."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

SETTINGS = ("MEDPLUM_BASE_URL", "MEDPLUM_CLIENT_ID", "MEDPLUM_CLIENT_SECRET")

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")


class CheckFailed(AssertionError):
    """A check's expectation did not hold; the message is the reason printed."""


def check(condition: object, reason: str) -> None:
    """Fail the running check with ``reason`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(reason)


def registrar(checks: list[tuple[str, F]]) -> Callable[[str], Callable[[F], F]]:
    """A decorator factory that appends a function to ``checks`` under a name (run in that
    order)."""

    def named(name: str) -> Callable[[F], F]:
        def register(func: F) -> F:
            checks.append((name, func))
            return func

        return register

    return named


def settings_from_env() -> tuple[str, str, str] | None:
    """The three ``MEDPLUM_*`` settings; None, said on stderr, when one is not set."""
    values = [os.environ.get(name, "") for name in SETTINGS]
    if not all(values):
        print("set MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET", file=sys.stderr)
        return None
    return values[0], values[1], values[2]


def run_checks(
    checks: Sequence[tuple[str, Callable[[R], object]]],
    run: R,
    *,
    pattern: str,
    always: str,
    stop_if_fails: bool,
    finish: Callable[[], str | None],
) -> tuple[int, int]:
    """Run ``checks`` on ``run`` in order, one ``PASS`` / ``FAIL`` line each; (passed, failed).

    - ``pattern``: only the checks whose name contains it, and ``always`` (the one the others
      build on), which ends the run when it fails if ``stop_if_fails``;
    - a check that returns a str has it printed after its time (its figures);
    - ``finish`` (cleaning up and closing the client) runs whatever happened and returns why
      the clean-up failed, or None; it is reported as a last ``cleanup`` check;
    - a Ctrl-C fails the running check, stops the run, cleans up, then is raised again.
    """
    passed = failures = 0
    interrupted = False
    try:
        for name, func in checks:
            if pattern and pattern not in name and name != always:
                continue
            started = time.monotonic()
            try:
                figures = func(run)
            except KeyboardInterrupt:
                failures += 1
                interrupted = True
                print(f"FAIL {name}: interrupted; deleting what the run created", flush=True)
                break
            except Exception as exc:  # every failure is reported, not raised
                failures += 1
                if isinstance(exc, CheckFailed):
                    print(f"FAIL {name}: {exc}", flush=True)
                else:
                    where = traceback.extract_tb(exc.__traceback__)[-1]
                    print(
                        f"FAIL {name}: {type(exc).__name__} at line {where.lineno}: {exc}",
                        flush=True,
                    )
                if stop_if_fails and name == always:
                    break
            else:
                passed += 1
                took = f"{name} ({time.monotonic() - started:.1f} s)"
                line = f"PASS {took}: {figures}" if isinstance(figures, str) else f"PASS {took}"
                print(line, flush=True)
    finally:
        why = finish()
    if why:
        failures += 1
        print(f"FAIL cleanup: {why}", flush=True)
    else:
        passed += 1
        print("PASS cleanup", flush=True)
    if interrupted:
        raise KeyboardInterrupt
    return passed, failures

"""The client constructor's argument checks: hooks that take one argument, and argument errors
that name the class the caller wrote.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec

P = ParamSpec("P")


def check_hook_arity(arg: str, hook: Callable[..., Any], what: str) -> None:
    """TypeError naming ``arg`` unless ``hook`` can be called with one positional argument
    (``what`` it receives). Checked at construction: a hook of another shape fails at every
    request, and a failing on_request_complete is only logged, so the audit trail would be
    lost without an error. A callable whose signature cannot be read is taken as it is."""
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(None)
    except TypeError:
        # Names and kinds only: a default (or a functools.partial's bound keyword) may be a
        # credential, e.g. partial(send_audit, api_key=KEY); annotations are left out too.
        bare = signature.replace(
            parameters=[
                p.replace(default=inspect.Parameter.empty, annotation=inspect.Parameter.empty)
                for p in signature.parameters.values()
            ],
            return_annotation=inspect.Signature.empty,
        )
        raise TypeError(
            f"{arg} must take one positional argument (the {what}), got a callable with "
            f"parameters {bare}"
        ) from None


def named_constructor(init: Callable[P, None]) -> Callable[P, None]:
    """``init`` (a client ``__init__``), whose argument errors name the class the caller wrote.

    Python would name the base class that defines ``__init__`` (``SyncBaseClient.__init__() got
    an unexpected keyword argument``), which the caller never wrote, and suggest nothing. The
    arguments are bound against ``init``'s signature before it runs, so a TypeError raised by
    the checks inside it is not rewritten. ``functools.wraps`` keeps the signature for
    ``inspect.signature`` and IDEs; the ParamSpec keeps it for type checkers.
    """
    signature = inspect.signature(init)
    names = list(signature.parameters)[1:]  # without self
    positional = [
        n for n in names if signature.parameters[n].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]

    @functools.wraps(init)
    def checked(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            called = type(args[0]).__name__ if args else init.__qualname__
            raise TypeError(_argument_error(called, exc, args, kwargs, names, positional)) from None
        init(*args, **kwargs)

    return checked


def _argument_error(
    called: str,
    exc: TypeError,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
    names: list[str],
    positional: list[str],
) -> str:
    """The message of a constructor call that does not fit the signature."""
    unknown = [k for k in kwargs if k not in names]
    if unknown:
        message = f"{called}() got an unexpected keyword argument {unknown[0]!r}"
        close = difflib.get_close_matches(unknown[0], names, n=1)
        return message + (f"; did you mean {close[0]!r}?" if close else "")
    if len(args) - 1 > len(positional):
        plural = "" if len(positional) == 1 else "s"
        return (
            f"{called}() takes at most {len(positional)} positional argument{plural} "
            f"({', '.join(positional)}) but {len(args) - 1} were given; the others are "
            "keyword-only"
        )
    return f"{called}(): {exc}"

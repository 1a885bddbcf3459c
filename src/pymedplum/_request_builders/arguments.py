"""Scalar argument checks shared by every method: non-empty strs, finite seconds, bools and
flags, non-negative ints, lists of strs, ISO dates. Each returns the value (normalized) or
raises TypeError / ValueError naming the argument; :func:`describe_type` says what a value of
the wrong type is, for the other modules' messages too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime


def describe_type(value: object) -> str:
    """What ``value`` is, for a TypeError: its type's name, or ``the Patient class`` for a
    class (a model class passed where a str or a query goes; its metaclass, ``ModelMetaclass``,
    says nothing to the caller)."""
    if isinstance(value, type):
        return f"the {value.__name__} class"
    return type(value).__name__


def check_str(arg: str, value: object) -> str | None:
    """``value`` if it is None or a non-empty str: else TypeError / ValueError naming ``arg``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{arg} must be a str, got {describe_type(value)}")
    if not value.strip():
        raise ValueError(f"{arg} must be a non-empty str, got {value!r}; pass None to leave it out")
    return value


def is_finite_number(value: object) -> bool:
    """An int or a float that is finite: never a bool, NaN, an infinity, or an int too large
    for a float (seconds, waits and intervals are compared and slept on as floats)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_seconds(
    arg: str, value: object, *, allow_zero: bool = False, alternative: str | None = None
) -> float:
    """``value`` as a float if it is a finite number of seconds > 0 (>= 0 with ``allow_zero``).

    TypeError for another type, ValueError for a bad number, both naming ``arg``.
    ``alternative`` names what else the caller accepts and checked itself (``"None"``), for the
    message. A zero timeout or poll interval would spin, and NaN compares False with everything
    (it would never expire)."""
    expected = f"a finite number of seconds {'>= 0' if allow_zero else '> 0'}"
    if alternative:
        expected += f" or {alternative}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{arg} must be {expected}, got {type(value).__name__}")
    if not is_finite_number(value) or not (value >= 0 if allow_zero else value > 0):
        raise ValueError(f"{arg} must be {expected}, got {value!r}")
    return float(value)


def check_bool(arg: str, value: object) -> bool | None:
    """``value`` if it is None or a bool (``"no"`` or ``0`` is not): else TypeError."""
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{arg} must be a bool, got {type(value).__name__}")
    return value


def check_flag(arg: str, value: object) -> bool:
    """``value`` if it is a bool; else TypeError naming ``arg``. A flag is read by its truth
    value, so ``"false"`` would mean True and ``None`` or ``0`` False, without a word."""
    if not isinstance(value, bool):
        got = describe_type(value)
        if isinstance(value, type) and arg == "return_bundle":
            # search_resources("Patient", query, Patient), as read_resource takes as_fhir.
            got += (
                f": pass it as as_fhir={value.__name__}, with return_bundle=True for a "
                f"FHIRBundle of {value.__name__} models"
            )
        raise TypeError(f"{arg} must be True or False, got {got}")
    return value


def check_non_negative_int(arg: str, value: object) -> int | None:
    """``value`` if it is None or an int >= 0 (a bool is not an int here)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{arg} must be a non-negative int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{arg} must be a non-negative int, got {value}")
    return value


def check_str_list(arg: str, value: object) -> list[str] | None:
    """One str or an iterable of them as a list (a str is one value, never its characters).

    None stays None. An empty list, an empty str or a non-str item is refused: an empty
    ``_elements=`` or ``property=`` is never what was meant (pass None to leave it out).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return [check_str(arg, value) or ""]
    if isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{arg} must be a str or a list of str, got {type(value).__name__}")
    items = list(value)
    if not items:
        raise ValueError(f"{arg} must not be empty; pass None to leave it out")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{arg}[{index}] must be a str, got {type(item).__name__}")
        if not item.strip():
            raise ValueError(f"{arg}[{index}] must be a non-empty str, got {item!r}")
    return items


def check_date(arg: str, value: object) -> str | None:
    """An ISO date/datetime str as given, or a ``date`` / ``datetime`` in ISO format."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"{arg} must be an ISO date/datetime str, a date or a datetime, "
            f"got {type(value).__name__}"
        )
    return check_str(arg, value)

"""The ``headers=`` argument: checked as a mapping, looked up and merged case-blind (the
caller's headers win over the SDK's).
"""

from __future__ import annotations

from collections.abc import Mapping


def check_headers(headers: object) -> Mapping[str, str] | None:
    """``headers`` if it is None or a mapping; else TypeError (a str, a list of pairs or a model
    failed deep inside with an AttributeError, and ``""`` or ``[]`` was taken as no headers).
    Its names and values are checked where the request is prepared."""
    if headers is not None and not isinstance(headers, Mapping):
        raise TypeError(
            "headers must be a mapping of header names to str values, such as "
            f"{{'X-Request-Id': 'abc'}}, or None, got {type(headers).__name__}"
        )
    return headers


def has_header(headers: Mapping[str, str] | None, name: str) -> bool:
    """Case-insensitive presence of ``name`` in ``headers``."""
    headers = check_headers(headers)
    return headers is not None and any(
        isinstance(k, str) and k.lower() == name.lower() for k in headers
    )


def merge_headers(
    base: Mapping[str, str], extra: Mapping[str, str] | None
) -> dict[str, str] | None:
    """``base`` overlaid with the caller's ``extra`` (caller wins, names compared case-blind)."""
    extra = check_headers(extra)
    merged = {k: v for k, v in base.items() if not has_header(extra, k)}
    if extra:
        merged.update(extra)
    return merged or None

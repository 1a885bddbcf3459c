"""Request headers: the ``headers=`` argument checked as a mapping, each name and value checked
as HTTP would take it, and headers looked up, set and merged case-blind (the caller's headers
win over the SDK's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")  # an HTTP header name (RFC 9110)
# An ASCII field value (RFC 9110 5.5): visible characters, with spaces and tabs only between them.
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?\Z")


def check_headers(headers: object) -> Mapping[str, str] | None:
    """``headers`` if it is None or a mapping; else TypeError (a str, a list of pairs or a model
    failed deep inside with an AttributeError, and ``""`` or ``[]`` was taken as no headers).
    Its names and values are checked by :func:`check_header` where the request is prepared."""
    if headers is not None and not isinstance(headers, Mapping):
        raise TypeError(
            "headers must be a mapping of header names to str values, such as "
            f"{{'X-Request-Id': 'abc'}}, or None, got {type(headers).__name__}"
        )
    return headers


def check_header(name: object, value: object) -> None:
    """TypeError / ValueError naming a caller header the HTTP layer would refuse (a line break
    in a value would otherwise surface as a retried NetworkError)."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError(f"headers must map str to str, got {name!r}: {type(value).__name__}")
    if not _TOKEN.match(name):
        raise ValueError(f"header name {name!r} is not a valid HTTP header name")
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"header {name!r} has a line break or NUL in its value")
    if not value.isascii():
        raise ValueError(f"header {name!r} must be ASCII (percent-encode other characters)")
    if not _FIELD_VALUE.match(value):
        # httpx's HTTP/1.1 layer (h11) refuses such a value only once connected.
        raise ValueError(
            f"header {name!r} has a control character or leading/trailing whitespace in its value"
        )


def is_header_safe(token: str) -> bool:
    """Whether a bearer token can go in an ``Authorization`` header: printable ASCII, not
    ending in a space (HTTP refuses whitespace at the end of a field value: every call would
    fail as a retried NetworkError). Stricter than :func:`check_header`: a header value may
    hold a tab, a token not."""
    return token.isascii() and token.isprintable() and not token.endswith(" ")


def header_value(headers: Mapping[str, str] | None, name: str) -> str | None:
    """The value of ``name`` in ``headers``, whatever its case; ``None`` when absent."""
    lower = name.lower()
    return next(
        (v for k, v in (headers or {}).items() if isinstance(k, str) and k.lower() == lower),
        None,
    )


def has_header(headers: Mapping[str, str] | None, name: str) -> bool:
    """Case-insensitive presence of ``name`` in ``headers``."""
    headers = check_headers(headers)
    return headers is not None and any(
        isinstance(k, str) and k.lower() == name.lower() for k in headers
    )


def set_header(headers: dict[str, str], name: str, value: str) -> None:
    """Set a header, replacing any spelling of the same name (HTTP names ignore case)."""
    lower = name.lower()
    for key in [k for k in headers if k.lower() == lower]:
        del headers[key]
    headers[name] = value


def merge_headers(
    base: Mapping[str, str], extra: Mapping[str, str] | None
) -> dict[str, str] | None:
    """``base`` overlaid with the caller's ``extra`` (caller wins, names compared case-blind)."""
    extra = check_headers(extra)
    merged = {k: v for k, v in base.items() if not has_header(extra, k)}
    if extra:
        merged.update(extra)
    return merged or None

"""Building FHIR search values."""

from __future__ import annotations


def escape_search_value(value: str) -> str:
    r"""``value`` with ``\`` and ``,`` escaped, so that a server reads it as one value.

    In a FHIR search a comma separates values that are OR-ed (``name=Ann,Bo``) and ``\,`` is a
    literal comma; a backslash escapes the next character. Escape each value, not the whole
    list: ``",".join(map(escape_search_value, ["Smith, Jr", "Doe"]))`` is two values.

    >>> escape_search_value("Smith, Jr")
    'Smith\\, Jr'

    Raises:
        TypeError: ``value`` is not a str.
    """
    if not isinstance(value, str):
        raise TypeError(f"value must be a str, got {type(value).__name__}")
    # The same two characters Medplum's own client escapes (its server unescapes any "\x").
    return value.replace("\\", "\\\\").replace(",", "\\,")

"""Reading a searchset page: its primary matches (not the entries ``_include`` added) and the
URL of its next page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def match_entries(bundle: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """``(index in entry, resource)`` of the primary matches of a searchset page (entries
    included by _include are left out)."""
    found: list[tuple[int, dict[str, Any]]] = []
    for index, entry in enumerate(bundle.get("entry") or []):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("resource"), dict):
            continue
        search = entry.get("search")
        mode = search.get("mode") if isinstance(search, Mapping) else None
        if mode in (None, "match"):
            found.append((index, entry["resource"]))
    return found


def matches(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The primary matches of a searchset page (entries included by _include are left out)."""
    return [resource for _, resource in match_entries(bundle)]


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The URL of the Bundle's ``next`` link, if any."""
    for link in bundle.get("link") or []:
        if isinstance(link, Mapping) and link.get("relation") == "next":
            url = link.get("url")
            if isinstance(url, str) and url:
                return url
    return None

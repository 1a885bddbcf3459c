"""Caller headers: bad names / values fail clearly before sending (not as a retried
NetworkError from the HTTP/1.1 layer)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.qa.conftest import QA

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("headers", "error", "match"),
    [
        ({"X-A": "b\r\nX-Evil: 1"}, ValueError, "X-A"),
        ({"X-A": "b\nc"}, ValueError, "X-A"),
        # What httpx's HTTP/1.1 layer refuses only once connected (a NetworkError, retried):
        ({"X-A": "b\x0bc"}, ValueError, "X-A.*control character"),
        ({"X-A": "b "}, ValueError, "X-A.*whitespace"),
        ({"X-A": "\tb"}, ValueError, "X-A.*whitespace"),
        ({"X-A": "b\x01c"}, ValueError, "X-A.*control character"),
        ({"X A": "b"}, ValueError, "X A"),
        ({"X-A": 1}, TypeError, "X-A"),
        ({1: "b"}, TypeError, "1"),
    ],
)
async def test_bad_header_is_named(
    qa: QA, headers: dict[Any, Any], error: type, match: str
) -> None:
    client = qa.client()
    with pytest.raises(error, match=match):
        await qa.call(client, "read_resource", "Patient", "1", headers=headers)
    assert qa.requests == []


async def test_a_tab_or_space_inside_a_header_value_is_sent(qa: QA) -> None:
    client = qa.client()
    await qa.call(client, "read_resource", "Patient", "1", headers={"X-A": "b\tc d", "X-B": ""})
    assert qa.requests[0].headers["X-A"] == "b\tc d"
    assert qa.requests[0].headers["X-B"] == ""


async def test_if_none_exist_with_line_break_is_rejected(qa: QA) -> None:
    client = qa.client()
    # Named by the argument: the header it becomes is the SDK's business.
    with pytest.raises(ValueError, match="if_none_exist must not hold line breaks"):
        await qa.call(
            client, "create_resource_if_none_exist", {"resourceType": "Patient"}, "a=b\r\nX-Evil: 1"
        )
    assert qa.requests == []


async def test_non_ascii_header_value_is_named(qa: QA) -> None:
    client = qa.client()
    with pytest.raises(ValueError, match="X-Note"):
        await qa.call(client, "read_resource", "Patient", "1", headers={"X-Note": "Müller"})
    assert qa.requests == []


async def test_if_none_exist_non_ascii_is_percent_encoded(qa: QA) -> None:
    client = qa.client()
    await qa.call(
        client, "create_resource_if_none_exist", {"resourceType": "Patient"}, "name=Müller&x=a b"
    )
    assert qa.requests[-1].headers["if-none-exist"] == "name=M%C3%BCller&x=a b"

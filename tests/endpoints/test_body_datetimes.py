"""Python datetimes in dict bodies and search values: what is sent, what is refused."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import pytest

from .conftest import echo

pytestmark = pytest.mark.anyio

NAIVE = datetime(2020, 1, 1, 12)


async def test_a_naive_datetime_in_a_dict_body_is_a_value_error_naming_its_place(
    make: Any,
) -> None:
    # It went out as "2020-01-01T12:00:00", which is not FHIR: a dateTime (or instant)
    # with a time must carry an offset (the models refuse that text too).
    h = make(echo(201))
    observation = {"resourceType": "Observation", "component": [{"valueDateTime": NAIVE}]}
    with pytest.raises(ValueError) as info:
        await h.call("create_resource", observation)
    message = str(info.value)
    assert message.startswith(
        "request body.component[0].valueDateTime is a datetime without a time zone"
    )
    assert "tzinfo" in message
    assert "2020" not in message  # described, never echoed
    assert h.requests == []


async def test_aware_datetimes_and_dates_in_a_dict_body_are_sent_as_iso_text(make: Any) -> None:
    h = make(echo(201))
    await h.call(
        "create_resource",
        {
            "resourceType": "Observation",
            "effectivePeriod": {
                "start": NAIVE.replace(tzinfo=timezone.utc),
                "end": date(2020, 1, 2),
            },
        },
    )
    assert h.last.content == (
        b'{"resourceType":"Observation","effectivePeriod":'
        b'{"start":"2020-01-01T12:00:00+00:00","end":"2020-01-02"}}'
    )


async def test_a_naive_datetime_search_value_is_sent_without_an_offset(make: Any) -> None:
    # FHIR search allows a dateTime without an offset (the server picks the time zone).
    h = make(echo(200))
    await h.call("search_resources", "Observation", {"date": NAIVE})
    assert h.last.url.params["date"] == "2020-01-01T12:00:00"

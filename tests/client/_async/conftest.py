"""Fixtures of the runtime tests: the fake server and a recording stand-in for the retry sleep."""

from __future__ import annotations

import pytest

from pymedplum._async import _synchronization

from ..fake import FakeMedplum


@pytest.fixture
def fake() -> FakeMedplum:
    return FakeMedplum()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits are recorded here instead of slept."""
    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(_synchronization, "sleep", record)
    return recorded

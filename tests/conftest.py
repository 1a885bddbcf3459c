"""Fixtures shared across test directories.

``medplum_server`` lives here (moved from tests/integration/conftest.py) so that tests outside
tests/integration, such as tests/examples, use the same single server of the session.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import medplum_server as harness


@pytest.fixture(scope="session")
def medplum_server() -> Iterator[harness.MedplumServer]:
    """A running local Medplum server: ``base_url``, ``client_id``, ``client_secret`` and the
    harness controls (``set_token_lifetime``, ``fail_token_endpoint``, ``token_request_count``,
    ``last_headers``, ``expire_tokens``, ``create_membership``, ``reset``...).

    Started once per session on a free port; a server that does not start fails the test with
    its log (never a skip).
    """
    try:
        server = harness.start()
    except harness.ServerError as exc:
        pytest.fail(f"the local Medplum test server did not start:\n{exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()

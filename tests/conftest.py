"""Suite-wide test settings and fixtures shared across test directories.

Hypothesis: property tests check behaviour, not speed, so no per-example deadline and no
"input generation is slow" health check — a loaded 2-core CI machine must not turn them flaky.
The example budget stays at Hypothesis' default.

``medplum_server`` lives here (moved from tests/integration/conftest.py) so that tests outside
tests/integration, such as tests/examples, use the same single server of the session.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import medplum_server as harness

settings.register_profile(
    "pymedplum",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("pymedplum")


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

"""Suite-wide test settings and fixtures shared across test directories.

Hypothesis: property tests check behaviour, not speed, so no per-example deadline and no
"input generation is slow" health check — a loaded 2-core CI machine must not turn them flaky.
The example budget stays at Hypothesis' default.

``medplum_server`` lives here (moved from tests/integration/conftest.py) so that tests outside
tests/integration, such as tests/examples, use the same single server of the session.

``example_server`` is the server tests/examples run the docs' code blocks and examples/*.py
against: the local one, or with ``--external-medplum`` the Medplum that ``MEDPLUM_BASE_URL``,
``MEDPLUM_CLIENT_ID`` and ``MEDPLUM_CLIENT_SECRET`` name (opt-in by the option, not by the
variables alone: ``make demo`` reads the same variables, and these tests write to the project).
"""

from __future__ import annotations

import os
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


EXTERNAL_SETTINGS = ("MEDPLUM_BASE_URL", "MEDPLUM_CLIENT_ID", "MEDPLUM_CLIENT_SECRET")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--external-medplum",
        action="store_true",
        help=(
            "run tests/examples (the docs' code blocks, examples/*.py, scripts/demo.py) against "
            "the Medplum that MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET name "
            "(a project-admin ClientApplication; the tests write to its project) instead of the "
            "local test server"
        ),
    )


@pytest.fixture(scope="session")
def example_server(request: pytest.FixtureRequest) -> harness.ServerSettings:
    """The server of tests/examples: the local ``medplum_server`` (started only then), or with
    ``--external-medplum`` the one the ``MEDPLUM_*`` variables name (all three must be set)."""
    if not request.config.getoption("external_medplum"):
        server: harness.MedplumServer = request.getfixturevalue("medplum_server")
        return server.settings
    missing = [name for name in EXTERNAL_SETTINGS if not os.environ.get(name)]
    if missing:
        pytest.fail(f"--external-medplum: {', '.join(missing)} not set", pytrace=False)
    return harness.ServerSettings(*(os.environ[name] for name in EXTERNAL_SETTINGS))

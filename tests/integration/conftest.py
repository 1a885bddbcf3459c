"""The local Medplum-compatible server (tests/server) for the integration suite.

``medplum_server`` starts one server per test session on a free loopback port, with a
provisioned client id/secret, and stops it at the end. A server that does not start fails the
run with its log: integration tests never skip for want of a server.

Every test under tests/integration is marked ``integration`` (``make unit`` deselects them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import medplum_server as harness

MedplumServer = harness.MedplumServer

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of this directory ``integration``."""
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


# The session fixture ``medplum_server`` is in tests/conftest.py (shared with tests/examples).

# Fixtures of the SDK integration suite (tests/integration/test_client_*.py): both clients,
# MedplumClient and AsyncMedplumClient, against the local server.
from sdk_clients import anyio_backend, api, flavour, make_api  # noqa: E402

__all__ = ["anyio_backend", "api", "flavour", "make_api"]

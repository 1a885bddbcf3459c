"""Replay of real responses recorded from the local Medplum server (vcrpy via pytest-recording).

Default (``--record-mode=none``): no server, no Node, no network. Each test's client points at
``REPLAY_BASE_URL`` and vcrpy answers every request from ``cassettes/<test name>.yaml``; a
request the cassette does not hold fails the test.

``make record`` (``--record-mode=rewrite``) starts the local server with a fixed clock, empties
it before every test (so ids and timestamps come out the same on every recording), and rewrites
the cassettes. The sync and async twins of a test share one cassette: both clients must send
the same requests. Before anything is written, the hooks below:

- rewrite the server's random ``http://127.0.0.1:<port>/`` to ``REPLAY_BASE_URL`` in URLs,
  headers and bodies (next links, Location), so replay needs no particular port;
- drop Authorization and On-Behalf-Of request headers (and Host, User-Agent: they vary),
  replace the ``client_secret`` of ``oauth2/token`` request bodies and every token in token
  responses with ``REDACTED``;
- leave out the harness's own admin calls (``/_harness/...``) and volatile headers (Date).

tests/replay/test_cassettes_clean.py fails if a cassette still holds a secret.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import medplum_server as harness

CASSETTE_DIR = Path(__file__).resolve().parent / "cassettes"
# Medplum's own default port on loopback: the client accepts plain http there.
REPLAY_BASE_URL = "http://127.0.0.1:8103/"
REDACTED = "REDACTED"
# Credentials the replaying clients send; the recorded ones never reach a cassette.
REPLAY_CLIENT_ID = harness.DEFAULT_CLIENT_ID
REPLAY_CLIENT_SECRET = "replay-secret"

_TOKEN_FIELDS = ("access_token", "refresh_token", "id_token")
_DROPPED_RESPONSE_HEADERS = {"date", "connection", "keep-alive", "content-length"}


@dataclass
class ReplayTarget:
    """Where a test's client connects: the recording server, or the replay base URL."""

    base_url: str
    client_id: str
    client_secret: str
    server: harness.MedplumServer | None


@pytest.fixture(scope="session")
def replay_target(record_mode: str) -> Iterator[ReplayTarget]:
    """The recording server in record mode; only ``REPLAY_BASE_URL`` when replaying."""
    if record_mode == "none":
        yield ReplayTarget(REPLAY_BASE_URL, REPLAY_CLIENT_ID, REPLAY_CLIENT_SECRET, None)
        return
    try:
        server = harness.start(fixed_clock=True)
    except harness.ServerError as exc:
        pytest.fail(f"the local Medplum test server did not start:\n{exc}", pytrace=False)
    try:
        yield ReplayTarget(server.base_url, server.client_id, server.client_secret, server)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_server(replay_target: ReplayTarget) -> None:
    """Record every test from an empty store: ids and timestamps restart from their seeds."""
    if replay_target.server is not None:
        replay_target.server.reset(data=True)


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    """One directory for both flavours: the sync and async twins share a cassette."""
    return str(CASSETTE_DIR)


@pytest.fixture
def default_cassette_name(request: pytest.FixtureRequest) -> str:
    """The test function's name, without parameters such as ``[asyncio]``."""
    name: str = request.node.originalname
    return name


@pytest.fixture
def vcr_config(replay_target: ReplayTarget) -> dict[str, Any]:
    """Matching, filtering and host normalisation of the cassettes."""
    return {
        "filter_headers": ["authorization", "x-medplum-on-behalf-of", "host", "user-agent"],
        "decode_compressed_response": True,
        "before_record_request": _request_filter(replay_target.base_url),
        "before_record_response": _response_filter(replay_target.base_url),
        "match_on": ["method", "scheme", "host", "port", "path", "query"],
        # Two identical requests (a conditional create sent twice) replay in recorded order.
        "allow_playback_repeats": False,
    }


def _normalise(text: str, actual_base: str) -> str:
    return text.replace(actual_base, REPLAY_BASE_URL).replace(
        actual_base.rstrip("/"), REPLAY_BASE_URL.rstrip("/")
    )


def _request_filter(actual_base: str) -> Any:
    def before_record_request(request: Any) -> Any:
        if urllib.parse.urlsplit(request.uri).path.startswith("/_harness/"):
            return None  # the harness's admin calls are not part of any flow
        request.uri = _normalise(request.uri, actual_base)
        if request.path.endswith("/oauth2/token") and request.body:
            body = request.body.decode() if isinstance(request.body, bytes) else request.body
            fields = [
                (name, REDACTED if name == "client_secret" else value)
                for name, value in urllib.parse.parse_qsl(body, keep_blank_values=True)
            ]
            request.body = urllib.parse.urlencode(fields).encode()
        elif isinstance(request.body, bytes) and request.body:
            request.body = _normalise(request.body.decode(), actual_base).encode()
        return request

    return before_record_request


def _response_filter(actual_base: str) -> Any:
    def before_record_response(response: dict[str, Any]) -> dict[str, Any]:
        headers = {
            name: [_normalise(value, actual_base) for value in values]
            for name, values in response["headers"].items()
            if name.lower() not in _DROPPED_RESPONSE_HEADERS
        }
        response["headers"] = headers
        body = response["body"]["string"]
        if isinstance(body, bytes) and body:
            text = _normalise(body.decode(), actual_base)
            response["body"]["string"] = _redact_tokens(text).encode()
        return response

    return before_record_response


def _redact_tokens(text: str) -> str:
    """Replace the tokens of an OAuth2 token response; other bodies pass unchanged."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict) or not any(field in data for field in _TOKEN_FIELDS):
        return text
    for field in _TOKEN_FIELDS:
        if field in data:
            data[field] = REDACTED
    return json.dumps(data, separators=(",", ":"))


@pytest.fixture(autouse=True)
def _every_recorded_request_replayed(
    request: pytest.FixtureRequest, record_mode: str
) -> Iterator[None]:
    """A replayed flow must send every request its cassette holds, not only a prefix of them."""
    yield
    if record_mode != "none" or request.node.get_closest_marker("vcr") is None:
        return
    cassette = request.getfixturevalue("vcr")
    assert cassette.all_played, f"{cassette._path}: {cassette.play_count} of {len(cassette)} played"

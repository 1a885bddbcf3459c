"""Fixtures shared by the tests of tests/client (both flavours' subtrees included).

``server_url``: a keep-alive HTTP/1.1 server on loopback, for the tests that need real pooled
connections rather than a fake transport (test_fork.py: a forked child must not reuse the
parent's; test_event_loops.py: a pool belongs to its event loop). It is a stdlib handler
served by tests/loopback_http.py, not the Medplum-compatible server of tests/integration: a GET
answers with the client port it came from, which the fork tests compare to tell one connection
from another, and these unit tests must not need Node.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from tests.loopback_http import serve_on_loopback


class KeepaliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client pools the connection

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, body: dict[str, object], content_type: str) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # the token endpoint
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer({"access_token": "tok", "expires_in": 3600}, "application/json")

    def do_GET(self) -> None:  # any read: answers with the client port it came from
        patient = {"resourceType": "Patient", "id": "1", "port": self.client_address[1]}
        self._answer(patient, "application/fhir+json")


@pytest.fixture
def server_url() -> Iterator[str]:
    """The base URL of a :class:`KeepaliveHandler` server on a free loopback port."""
    with serve_on_loopback(KeepaliveHandler) as url:
        yield url

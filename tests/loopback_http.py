"""A stdlib HTTP server on a free loopback port, for unit tests that need a real socket.

Each test module brings its own handler class (what the server answers); this is only the
part they had in common: start a ``ThreadingHTTPServer`` in a daemon thread, hand out its base
URL, shut it down and close its socket afterwards. Used by tests/client/conftest.py
(``server_url``: keep-alive, for pooled connections) and tests/qa/test_security_audit.py (a
token endpoint and an API whose answers a test sets). Not the Medplum-compatible server of
tests/integration, nor tests/client/rawserver.py (answers scripted byte by byte).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serve_on_loopback(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 at a free port; yields ``http://127.0.0.1:<port>/``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()

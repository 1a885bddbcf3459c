"""A raw HTTP/1.1 server on loopback whose answers a test scripts byte by byte: bodies cut
short, stalled mid-body, connections reset. Used by both flavours (the wire faults tests)."""

from __future__ import annotations

import functools
import json
import random
import socket
import ssl
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

# behaviour(conn, request_line): send (or not) an answer; return True to close the connection.
Behaviour = Callable[[socket.socket, str], bool]


class RawServer:
    def __init__(self, behaviour: Behaviour, tls: ssl.SSLContext | None = None) -> None:
        self.behaviour = behaviour
        self._tls = tls  # a server context: https:// (tests/client/proxyserver.py makes one)
        self.request_lines: list[str] = []
        # False: the behaviour runs once the request head is in, the body left unread (a
        # server refusing an upload early); the connection must then be closed.
        self.read_bodies = True
        self._sock = socket.create_server(("127.0.0.1", 0))
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self._sock.getsockname()[1]}/"
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        if self._tls is not None:
            try:  # the handshake; a client cancelled meanwhile hangs up
                conn = self._tls.wrap_socket(conn, server_side=True)
            except OSError:
                conn.close()
                return
            self._conns.append(conn)
        with conn:
            try:
                while True:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        data += chunk
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while self.read_bodies and len(rest) < length:
                        rest += conn.recv(65536)
                    self.request_lines.append(head.split(b"\r\n")[0].decode())
                    if self.behaviour(conn, self.request_lines[-1]):
                        return
            except OSError:
                return

    def close(self) -> None:
        self._sock.close()
        for conn in self._conns:
            with suppress(OSError):
                conn.close()


@contextmanager
def raw_server(behaviour: Behaviour, tls: ssl.SSLContext | None = None) -> Iterator[RawServer]:
    server = RawServer(behaviour, tls)
    try:
        yield server
    finally:
        server.close()


def stall_mid_body(conn: socket.socket, line: str) -> bool:
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"resourceType"')
    time.sleep(1.0)
    return True


def stall_before_headers(conn: socket.socket, line: str) -> bool:
    time.sleep(1.0)  # the request was read; no status line comes
    return True


def huge_header(conn: socket.socket, line: str) -> bool:
    # Past h11's limit on a response head (100 KB in httpcore): a proxy gone wrong.
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nX-Trace: " + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    )
    return True


def conflicting_lengths(conn: socket.socket, line: str) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\n{}")
    return True


def cut_short(conn: socket.socket, line: str) -> bool:
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"resourceType"')
    return True


def reset(conn: socket.socket, line: str) -> bool:
    # SO_LINGER 0: close() sends RST instead of FIN, as a crashed proxy does.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return True


def answer(status: int, body: bytes = b"", *headers: str) -> Behaviour:
    """An HTTP/1.1 answer with a Content-Length and, when there is a body, a FHIR JSON type
    unless a Content-Type is among ``headers``."""
    lines = [f"HTTP/1.1 {status} Status", f"Content-Length: {len(body)}", *headers]
    if body and not any(h.lower().startswith("content-type:") for h in headers):
        lines.append("Content-Type: application/fhir+json")
    wire = ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def behaviour(conn: socket.socket, line: str) -> bool:
        conn.sendall(wire)
        return False

    return behaviour


def sequence(*behaviours: Behaviour) -> Behaviour:
    """One behaviour per request, in order; the last one answers every later request."""
    queue = list(behaviours)

    def behaviour(conn: socket.socket, line: str) -> bool:
        current = queue.pop(0) if len(queue) > 1 else queue[0]
        return current(conn, line)

    return behaviour


def bad_chunked(conn: socket.socket, line: str) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
    return True


def not_http(conn: socket.socket, line: str) -> bool:
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    return True


def hang_up(conn: socket.socket, line: str) -> bool:
    return True  # closed without a byte of answer, as an idle-timeout race on a kept-alive one


def bad_gzip(conn: socket.socket, line: str) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}")
    return False


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


@contextmanager
def full_backlog_url() -> Iterator[str]:
    """A loopback URL whose listening socket never accepts and whose accept queue is full, so
    a new connection is never completed: a real connect timeout (Linux drops the handshake)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        fillers = []
        try:
            for _ in range(3):
                filler = socket.socket()
                filler.setblocking(False)
                with suppress(BlockingIOError):
                    filler.connect(server.getsockname())
                fillers.append(filler)
            time.sleep(0.05)
            yield f"http://127.0.0.1:{server.getsockname()[1]}/"
        finally:
            for filler in fillers:
                filler.close()


def never_read(conn: socket.socket, line: str) -> bool:
    """Reads no body and answers nothing (set ``read_bodies = False``): an upload stalls."""
    time.sleep(1.5)
    return True


@functools.cache
def gzip_bomb(size: int = 400 * 1024 * 1024) -> bytes:
    """``size`` zero bytes gzipped at level 9, made a MiB at a time (never held whole): about
    ``size / 1028`` bytes on the wire (400 MiB: some 400 KB), deflate's ratio ceiling."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + compressor.flush()


@functools.cache
def searchset_json(entries: int, *, varied: bool) -> bytes:
    """A searchset of ``entries`` Observations as Medplum writes them, about 800 bytes each:
    every id, version and subject different (``varied``: gzips some 10x), or one entry
    repeated (the most repetitive FHIR JSON a search can answer: gzips about 200x)."""
    rng = random.Random(7)

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def entry() -> str:
        rid = uid()
        resource = {
            "resourceType": "Observation",
            "id": rid,
            "meta": {
                "versionId": uid(),
                "lastUpdated": "2024-01-01T00:00:00.000Z",
                "project": "a1b2c3d4-0000-4000-8000-000000000000",
                "compartment": [{"reference": "Patient/" + uid()}],
            },
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/" + uid()},
            "effectiveDateTime": f"2024-01-{rng.randint(1, 28):02d}T00:00:00Z",
            "valueQuantity": {"value": rng.randint(40, 180), "unit": "/min"},
        }
        return json.dumps(
            {
                "fullUrl": "https://api.medplum.com/fhir/R4/Observation/" + rid,
                "resource": resource,
                "search": {"mode": "match"},
            }
        )

    items = [entry() for _ in range(entries)] if varied else [entry()] * entries
    return (
        b'{"resourceType": "Bundle", "type": "searchset", "entry": ['
        + ",".join(items).encode()
        + b"]}"
    )

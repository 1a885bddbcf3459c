"""A loopback HTTP proxy for tests, as a hospital network's: an ``http://`` target's requests
are forwarded (absolute-form request lines), an ``https://`` target is reached through a
CONNECT tunnel. Used with tests/client/rawserver.py as the target (``tls_contexts`` makes it
https) by tests/client/test_proxy_pool.py and tests/client/_async/test_proxy_connections.py.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

_TLS = Path(__file__).parent / "tls"


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for TLS on 127.0.0.1: the certificate of tls/server.pem, and a
    client context trusting only tls/ca.pem (its issuer)."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(_TLS / "server.pem")
    return server, ssl.create_default_context(cafile=str(_TLS / "ca.pem"))


def _read_message(sock: socket.socket, buffer: bytearray) -> bytes | None:
    """One HTTP/1.1 message (head and Content-Length body) from ``sock``; None at EOF.
    ``buffer`` keeps what was read past it."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    length = 0
    for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(buffer) < end + length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    message = bytes(buffer[: end + length])
    del buffer[: end + length]
    return message


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class LoopbackProxy:
    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        # What clients asked the proxy: "GET http://host:port/path" or "CONNECT host:port".
        self.requests: list[str] = []
        self.accepted = 0  # connections clients opened to the proxy
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._socks.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        buffer = bytearray()
        upstream: socket.socket | None = None
        upstream_buffer = bytearray()
        with conn, suppress(OSError):
            while (message := _read_message(conn, buffer)) is not None:
                head, _, rest = message.partition(b"\r\n")
                method, target, version = head.decode().split(" ")
                self.requests.append(f"{method} {target}")
                if method == "CONNECT":
                    host, _, port = target.rpartition(":")
                    upstream = socket.create_connection((host, int(port)))
                    self._socks.append(upstream)
                    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    # The client sends its TLS handshake only after the 200: buffer is empty.
                    threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()
                    _pipe(conn, upstream)
                    return
                url = urlsplit(target)  # forward: the absolute URL of an http:// target
                if upstream is None:
                    upstream = socket.create_connection((url.hostname, url.port or 80))
                    self._socks.append(upstream)
                path = (url.path or "/") + (f"?{url.query}" if url.query else "")
                upstream.sendall(f"{method} {path} {version}\r\n".encode() + rest)
                answer = _read_message(upstream, upstream_buffer)
                if answer is None:
                    return
                conn.sendall(answer)

    def close(self) -> None:
        self._sock.close()
        for sock in self._socks:
            with suppress(OSError):
                sock.close()


@contextmanager
def loopback_proxy() -> Iterator[LoopbackProxy]:
    proxy = LoopbackProxy()
    try:
        yield proxy
    finally:
        proxy.close()

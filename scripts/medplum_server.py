"""Install, start, provision and stop the local Medplum-compatible test server (tests/server).

Used by the integration fixture (tests/integration/conftest.py) and by ``make demo``; stdlib only,
so any Python 3.10+ can run it.

    python scripts/medplum_server.py install   # Node 22 + the server's npm packages (idempotent)
    python scripts/medplum_server.py run       # start, print base URL and credentials, block

From Python::

    with running_server() as server:
        print(server.base_url, server.client_id, server.client_secret)
        server.set_token_lifetime(2)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import node as node_runtime

ROOT = Path(__file__).resolve().parent.parent
SERVER_DIR = ROOT / "tests" / "server"
LOG_DIR = ROOT / ".cache" / "medplum-server"
READY_PREFIX = "MEDPLUM_HARNESS_READY "
# A fixed ClientApplication id keeps recordings stable; the secret is fresh for every start.
DEFAULT_CLIENT_ID = "7b5b4e3a-0f3c-4c1e-9a41-6d1f0c2b9e10"
# Generous: on a loaded 2-core machine the GraphQL warm-up alone can take half a minute.
DEFAULT_START_TIMEOUT = 180.0


class ServerError(RuntimeError):
    """The server could not be installed or started; the message carries its log."""


def _server_stamp_value(node: Path) -> str:
    lock = (SERVER_DIR / "package-lock.json").read_bytes()
    version = ".".join(map(str, node_runtime.node_version(node)))
    return f"{hashlib.sha256(lock).hexdigest()} node-{version}\n"


def install(*, quiet: bool = True) -> Path:
    """Install Node (scripts/node.py) and ``npm ci`` the server's packages; idempotent.

    Returns the node binary. A stamp in ``tests/server/node_modules`` records the lockfile
    hash, so a second run only hashes one file.
    """
    try:
        node = node_runtime.install(quiet=quiet)
    except node_runtime.NodeInstallError as exc:
        raise ServerError(str(exc)) from exc
    stamp = SERVER_DIR / "node_modules" / ".pymedplum-installed"
    expected = _server_stamp_value(node)
    if stamp.is_file() and stamp.read_text() == expected:
        return node
    with node_runtime.install_lock(LOG_DIR):
        if stamp.is_file() and stamp.read_text() == expected:
            return node
        env = dict(os.environ)
        # npm runs under the pinned Node, so engine checks and any native builds see Node 22.
        env["PATH"] = f"{node.parent}{os.pathsep}{env.get('PATH', '')}"
        command = [node_runtime.find_npm(), "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
        if quiet:
            command.append("--loglevel=error")
        result = subprocess.run(command, cwd=SERVER_DIR, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise ServerError(
                f"`{' '.join(command)}` failed in {SERVER_DIR} (exit {result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        stamp.write_text(expected)
    return node


@dataclass(frozen=True)
class ServerSettings:
    """Where a Medplum server is and the credentials of a ClientApplication on it: the local
    server's (``MedplumServer.settings``) or those of a real Medplum."""

    base_url: str
    client_id: str
    client_secret: str

    def access_token(self) -> str:
        """A client-credentials access token of the client (for raw HTTP in tests)."""
        form = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        ).encode()
        url = f"{self.base_url.rstrip('/')}/oauth2/token"
        with urllib.request.urlopen(url, data=form, timeout=10) as response:
            return str(json.loads(response.read())["access_token"])


@dataclass
class MedplumServer:
    """A running local server: where it is, the provisioned credentials, and harness controls."""

    base_url: str
    client_id: str
    client_secret: str
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_seconds: float = 0.0
    _stopped: bool = field(default=False, repr=False)

    @property
    def settings(self) -> ServerSettings:
        """The base URL and the provisioned client's credentials."""
        return ServerSettings(self.base_url, self.client_id, self.client_secret)

    @property
    def fhir_url(self) -> str:
        """The FHIR base, ``{base_url}fhir/R4/``."""
        return f"{self.base_url}fhir/R4/"

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint."""
        return f"{self.base_url}oauth2/token"

    def access_token(self) -> str:
        """A client-credentials access token of the harness client (for raw HTTP in tests)."""
        return self.settings.access_token()

    # --- harness admin endpoints (/_harness/...) -------------------------------------------

    def admin(self, method: str, action: str, body: dict[str, Any] | None = None) -> Any:
        """Call a harness admin endpoint and return its decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}_harness/{action}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ServerError(f"harness {method} {action} -> {exc.code}: {exc.read()!r}") from exc

    def state(self) -> dict[str, Any]:
        """Settings and counters of the server."""
        result: dict[str, Any] = self.admin("GET", "state")
        return result

    def set_token_lifetime(self, seconds: int) -> None:
        """Lifetime (``expires_in``) of tokens issued from now on."""
        self.admin("POST", "config", {"tokenLifetime": seconds})

    def fail_token_endpoint(
        self,
        *,
        status: int = 400,
        error: str = "invalid_request",
        description: str = "Token endpoint failure (harness)",
        rate_limit_reset: int = 60,
    ) -> None:
        """Make every ``oauth2/token`` request fail with this OAuth error until restored.

        ``status=429`` answers as Medplum's rate limiter does instead: its ``tooManyRequests``
        OperationOutcome and ``RateLimit: "requests";r=0;t=<rate_limit_reset>`` (no Retry-After).
        """
        failure = {
            "status": status,
            "error": error,
            "error_description": description,
            "rateLimitReset": rate_limit_reset,
        }
        self.admin("POST", "config", {"tokenFailure": failure})

    def restore_token_endpoint(self) -> None:
        """Undo :meth:`fail_token_endpoint`."""
        self.admin("POST", "config", {"tokenFailure": None})

    def token_request_count(self) -> int:
        """How many ``oauth2/token`` requests arrived since start or the last reset."""
        return int(self.state()["tokenRequests"])

    def expire_tokens(self) -> None:
        """Treat every token issued so far as expired (the next FHIR call answers 401)."""
        self.admin("POST", "expire-tokens", {})

    def set_transactions(self, enabled: bool) -> None:
        """Toggle the project feature ``transaction-bundles`` (atomic transactions)."""
        self.admin("POST", "config", {"transactions": enabled})

    def set_job_delay(self, milliseconds: int) -> None:
        """How long async jobs stay ``accepted`` before completing."""
        self.admin("POST", "config", {"jobDelayMs": milliseconds})

    def set_fhir_quota(self, points: int | None) -> None:
        """Medplum's FHIR quota, in points a minute per membership (a read costs 1, a history 10,
        a search 20, a write 100); ``None`` (the default here; 50,000 on a real server) turns it
        off. Over it a FHIR request, or a batch entry, answers 429 as Medplum 5.0.10 does."""
        self.admin("POST", "config", {"fhirQuota": points})

    def set_max_json_size(self, size: int) -> None:
        """The server's ``maxJsonSize`` in bytes (Medplum's default, 1 MiB, until ``reset``):
        a larger JSON body answers 400 'File too large', as on a real server."""
        self.admin("POST", "config", {"maxJsonSize": size})

    def requests(self, path_prefix: str = "", limit: int = 100) -> list[dict[str, Any]]:
        """The last requests received (method, path, query, headers), oldest first, each with
        its answer's ``status`` and ``responseHeaders`` (lower-case names, as sent: the
        ``content-encoding`` the compression middleware chose included)."""
        query = urllib.parse.urlencode({"path": path_prefix, "limit": limit})
        result: list[dict[str, Any]] = self.admin("GET", f"requests?{query}")
        return result

    def last_headers(self, path_prefix: str = "/fhir/") -> dict[str, str]:
        """Headers (lower-case names) of the last request whose path starts with the prefix."""
        query = urllib.parse.urlencode({"path": path_prefix})
        result: dict[str, str] = self.admin("GET", f"last-headers?{query}")
        return result

    def create_membership(self, *, read_only: bool = False, admin: bool = False) -> dict[str, Any]:
        """Create a Practitioner and its ProjectMembership (read-only AccessPolicy if asked).

        Returns ``{"profile": ..., "membership": ..., "accessPolicy": ...}``.
        """
        result: dict[str, Any] = self.admin(
            "POST", "memberships", {"readOnly": read_only, "admin": admin}
        )
        return result

    def reset(self, *, data: bool = False) -> None:
        """Restore default settings and counters; with ``data=True`` also empty the store."""
        self.admin("POST", "reset", {"data": data})

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the server process (SIGTERM, then SIGKILL after 5 s)."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _prune_logs(keep: int = 20) -> None:
    """Keep the newest server logs only; each start writes one."""
    logs = sorted(LOG_DIR.glob("server-*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in logs[keep:]:
        old.unlink(missing_ok=True)


def _read_ready_line(log_path: Path) -> dict[str, Any] | None:
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith(READY_PREFIX):
            ready: dict[str, Any] = json.loads(line[len(READY_PREFIX) :])
            return ready
    return None


def start(
    *,
    port: int = 0,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str | None = None,
    token_lifetime: int = 3600,
    fixed_clock: bool = False,
    warm_graphql: bool = True,
    timeout: float = DEFAULT_START_TIMEOUT,
) -> MedplumServer:
    """Install if needed, start the server on 127.0.0.1 (port 0 = a free one) and wait until ready.

    ``fixed_clock`` starts ``meta.lastUpdated`` at 2025-01-01 and steps one second per write
    (stable recordings); ``warm_graphql=False`` skips building the GraphQL schema at start
    (about 5 s), which the first GraphQL request then pays. Raises :class:`ServerError` with
    the server's log when it does not come up.
    """
    node = install()
    secret = client_secret or secrets.token_urlsafe(24)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    _prune_logs()
    log_path = LOG_DIR / f"server-{os.getpid()}-{time.monotonic_ns()}.log"
    env = dict(os.environ)
    env.update(
        {
            "MEDPLUM_HARNESS_HOST": "127.0.0.1",
            "MEDPLUM_HARNESS_PORT": str(port),
            "MEDPLUM_HARNESS_CLIENT_ID": client_id,
            "MEDPLUM_HARNESS_CLIENT_SECRET": secret,
            "MEDPLUM_HARNESS_TOKEN_LIFETIME": str(token_lifetime),
            "MEDPLUM_HARNESS_FIXED_CLOCK": "1" if fixed_clock else "0",
            "MEDPLUM_HARNESS_PARENT_PID": str(os.getpid()),
            "MEDPLUM_HARNESS_WARM_GRAPHQL": "1" if warm_graphql else "0",
        }
    )
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(node), str(SERVER_DIR / "server.mjs")],
            cwd=SERVER_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = started + timeout
    while True:
        ready = _read_ready_line(log_path)
        if ready is not None:
            break
        if process.poll() is not None:
            raise ServerError(
                f"the Medplum test server exited with code {process.returncode} before it was "
                f"ready; log ({log_path}):\n{log_path.read_text(errors='replace')}"
            )
        if time.monotonic() > deadline:
            process.kill()
            process.wait(timeout=5)
            raise ServerError(
                f"the Medplum test server was not ready after {timeout:.0f} s; log ({log_path}):\n"
                f"{log_path.read_text(errors='replace')}"
            )
        time.sleep(0.05)
    server = MedplumServer(
        base_url=str(ready["baseUrl"]),
        client_id=client_id,
        client_secret=secret,
        process=process,
        log_path=log_path,
        startup_seconds=time.monotonic() - started,
    )
    try:
        with urllib.request.urlopen(f"{server.base_url}healthcheck", timeout=10) as response:
            if response.status != 200:
                raise ServerError(f"healthcheck answered {response.status}")
    except (OSError, ServerError) as exc:
        server.stop()
        raise ServerError(f"healthcheck failed: {exc}; log:\n{server.log()}") from exc
    return server


@contextlib.contextmanager
def running_server(**kwargs: Any) -> Iterator[MedplumServer]:
    """``start(**kwargs)`` as a context manager that always stops the server."""
    server = start(**kwargs)
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Command line: ``install`` or ``run``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="install Node 22 and the server's npm packages (idempotent)")
    run = sub.add_parser("run", help="start the server and block until Ctrl-C")
    run.add_argument("--port", type=int, default=8103, help="port on 127.0.0.1 (0 = any free port)")
    run.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    run.add_argument("--client-secret", default=None, help="default: a fresh random secret")
    run.add_argument("--token-lifetime", type=int, default=3600, help="seconds")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            started = time.monotonic()
            node = install(quiet=False)
            print(f"node: {node}\nserver packages: {SERVER_DIR / 'node_modules'}")
            print(f"install took {time.monotonic() - started:.1f} s")
            return 0
        with running_server(
            port=args.port,
            client_id=args.client_id,
            client_secret=args.client_secret,
            token_lifetime=args.token_lifetime,
        ) as server:
            print(f"Medplum test server ready in {server.startup_seconds:.1f} s")
            print(f"MEDPLUM_BASE_URL={server.base_url}")
            print(f"MEDPLUM_CLIENT_ID={server.client_id}")
            print(f"MEDPLUM_CLIENT_SECRET={server.client_secret}")
            print(f"log: {server.log_path}   (Ctrl-C stops)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
                server.process.wait()
            if server.process.poll() is not None and server.process.returncode not in (0, None):
                print(server.log(), file=sys.stderr)
                return 1
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

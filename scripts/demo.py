"""``make demo``: run examples/quickstart.py against a local Medplum-compatible server.

With ``MEDPLUM_BASE_URL``, ``MEDPLUM_CLIENT_ID`` and ``MEDPLUM_CLIENT_SECRET`` all set, the
quickstart runs against that server and no local server is started. Otherwise this script
starts the local server (scripts/medplum_server.py: Medplum's FHIR router on a loopback port),
hands its address and provisioned credentials to the quickstart in the environment, and stops
the server afterwards, also on failure or Ctrl-C. Exit code: the quickstart's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import medplum_server as harness

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.py"
ENV_NAMES = ("MEDPLUM_BASE_URL", "MEDPLUM_CLIENT_ID", "MEDPLUM_CLIENT_SECRET")


def run_quickstart(env: dict[str, str]) -> int:
    """Run the quickstart with this interpreter (the project's venv) and return its exit code."""
    return subprocess.run([sys.executable, str(QUICKSTART)], env=env, cwd=ROOT).returncode


def main() -> int:
    """Start the local server unless a real Medplum is configured, then run the quickstart."""
    given = [name for name in ENV_NAMES if os.environ.get(name)]
    if len(given) == len(ENV_NAMES):
        print(f"== using the Medplum at {os.environ['MEDPLUM_BASE_URL']} (from the environment)")
        return run_quickstart(dict(os.environ))
    if given:
        missing = ", ".join(name for name in ENV_NAMES if name not in given)
        print(f"error: {', '.join(given)} set but {missing} not: set all three or none")
        return 2

    started = time.monotonic()
    print("== starting the local Medplum-compatible server (tests/server) ...", flush=True)
    try:
        server = harness.start()
    except harness.ServerError as exc:
        print(f"error: the local server did not start:\n{exc}", file=sys.stderr)
        return 1
    try:
        ready = f"{server.base_url} in {server.startup_seconds:.1f} s"
        print(f"== server ready at {ready}\n", flush=True)
        env = dict(os.environ)
        env.update(
            MEDPLUM_BASE_URL=server.base_url,
            MEDPLUM_CLIENT_ID=server.client_id,
            MEDPLUM_CLIENT_SECRET=server.client_secret,
        )
        code = run_quickstart(env)
    except KeyboardInterrupt:
        code = 130
    finally:
        server.stop()
    outcome = "done" if code == 0 else f"quickstart exit {code}; server log: {server.log_path}"
    print(f"\n== server stopped; {outcome}; {time.monotonic() - started:.1f} s in all")
    return code


if __name__ == "__main__":
    sys.exit(main())

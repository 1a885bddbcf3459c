"""No cassette may carry a credential: every file under tests/replay/cassettes is scanned.

Looked for: an Authorization (or On-Behalf-Of) header, a bearer token, a JWT, an
``access_token``/``refresh_token``/``id_token`` or ``client_secret`` value other than the
redaction marker, and, while recording, the secret of the recording server itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .conftest import CASSETTE_DIR, REDACTED, ReplayTarget

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"bearer\s+(?!REDACTED\b)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_TOKEN_VALUE = re.compile(
    r"""["']?(access_token|refresh_token|id_token)["']?\s*[:=]\s*["']?([^"',&\s}]*)"""
)
_SECRET_VALUE = re.compile(r"client_secret=([^&\s'\"]*)")
_FORBIDDEN_HEADERS = {"authorization", "x-medplum-on-behalf-of", "cookie"}


def cassette_problems(text: str, secrets: tuple[str, ...] = ()) -> list[str]:
    """What in one cassette's text looks like a credential (empty when it is clean)."""
    problems: list[str] = []
    for interaction in (yaml.safe_load(text) or {}).get("interactions", []):
        for section in ("request", "response"):
            headers = interaction.get(section, {}).get("headers", {}) or {}
            problems += [
                f"{section} header {name}" for name in headers if name.lower() in _FORBIDDEN_HEADERS
            ]
    problems += [f"JWT {match[:12]}..." for match in _JWT.findall(text)]
    problems += [f"bearer token {match[:16]}..." for match in _BEARER.findall(text)]
    problems += [
        f"{field} value"
        for field, value in _TOKEN_VALUE.findall(text)
        if value not in (REDACTED, "")
    ]
    problems += [
        "client_secret value" for value in _SECRET_VALUE.findall(text) if value != REDACTED
    ]
    problems += ["the recording server's client secret" for secret in secrets if secret in text]
    return problems


def test_the_cassettes_exist_and_are_small() -> None:
    files = sorted(CASSETTE_DIR.glob("*.yaml"))
    assert len(files) >= 7, f"expected the recorded flows in {CASSETTE_DIR}, found {files}"
    assert sum(f.stat().st_size for f in files) < 300_000


def test_no_cassette_holds_a_credential(replay_target: ReplayTarget) -> None:
    # While recording, the live secret is known too; replaying, the patterns have to do.
    secrets = (replay_target.client_secret,) if replay_target.server is not None else ()
    found = {
        path.name: problems
        for path in sorted(CASSETTE_DIR.glob("*.yaml"))
        if (problems := cassette_problems(path.read_text(), secrets))
    }
    assert found == {}


DIRTY = """
interactions:
- request:
    body: grant_type=client_credentials&client_id=abc&client_secret=s3cr3t-value
    headers:
      Authorization:
      - Bearer abcdefghijklmnop
    method: POST
    uri: http://127.0.0.1:8103/oauth2/token
  response:
    body:
      string: '{"access_token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "expires_in":3600}'
    headers: {}
    status: {code: 200, message: OK}
version: 1
"""


@pytest.mark.parametrize(
    ("needle", "text"),
    [
        ("request header Authorization", DIRTY),
        ("bearer token", DIRTY),
        ("JWT", DIRTY),
        ("access_token value", DIRTY),
        ("client_secret value", DIRTY),
        ("the recording server's client secret", DIRTY),
    ],
)
def test_the_scan_catches_each_kind_of_leak(needle: str, text: str) -> None:
    problems = cassette_problems(text, secrets=("s3cr3t-value",))
    assert any(problem.startswith(needle) for problem in problems), problems


def test_a_redacted_cassette_passes_the_scan() -> None:
    clean = (
        DIRTY.replace("s3cr3t-value", REDACTED)
        .replace("      Authorization:\n      - Bearer abcdefghijklmnop\n", "")
        .replace("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", REDACTED)
    )
    assert cassette_problems(clean, secrets=("s3cr3t-value",)) == []


def test_every_cassette_is_replayed_by_a_test() -> None:
    sources = "".join(p.read_text() for p in Path(__file__).parent.glob("_*/test_*.py"))
    unused = [p.stem for p in CASSETTE_DIR.glob("*.yaml") if f"def {p.stem}(" not in sources]
    assert unused == []

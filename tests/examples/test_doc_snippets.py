"""The Python blocks of README.md and docs/*.md, used as a new user uses them.

Every block is listed in ``BLOCKS``, so a new one has to be classified:

- ``RUN``: a complete program once a user fills in what the page leaves to them (the base URL,
  the credentials, the Patient ``"123"``, the names in ``SETUP``). It must pass ``mypy --strict``
  and run against the session's local Medplum server; an expression statement followed by a comment
  that is a Python literal (``parse_reference("Patient/a")  # ("Patient", "a")``) must give that
  value.
- a string: why the block is a fragment that cannot run on its own.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import medplum_server as harness  # scripts/, put on sys.path by tests/conftest.py
import pytest

from pymedplum import MedplumClient

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUN = "run"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

BLOCKS: dict[tuple[str, int], str] = {
    ("README.md", 0): RUN,
    ("docs/architecture.md", 0): "a sketch of the client's internals",
    ("docs/authentication.md", 0): RUN,
    ("docs/authentication.md", 1): RUN,
    ("docs/client.md", 0): RUN,
    ("docs/errors-and-retries.md", 0): RUN,
    ("docs/errors-and-retries.md", 1): "one line inside an except block of the reader's",
    ("docs/errors-and-retries.md", 2): RUN,
    ("docs/helpers.md", 0): RUN,
    ("docs/helpers.md", 1): RUN,
    ("docs/helpers.md", 2): RUN,
    ("docs/helpers.md", 3): RUN,
    ("docs/helpers.md", 4): RUN,
    ("docs/helpers.md", 5): RUN,
    ("docs/helpers.md", 6): "the body of the client's merge method (ends in `return`)",
    ("docs/helpers.md", 7): RUN,
    ("docs/helpers.md", 8): RUN,
    ("docs/hooks.md", 0): RUN,
    ("docs/models.md", 0): RUN,
    ("docs/on-behalf-of.md", 0): (
        "memberships of the reader's project; the precedence it shows is tested against the "
        "server in tests/integration/test_client_auth.py"
    ),
    ("docs/on-behalf-of.md", 1): (
        "a membership of the reader's project; the paging rule it shows is tested in "
        "tests/endpoints/test_on_behalf_of.py and against the server in "
        "tests/integration/test_client_auth.py"
    ),
    ("docs/quickstart.md", 0): RUN,
    ("docs/quickstart.md", 1): RUN,
    ("docs/typed-search.md", 0): RUN,
}

# Names a page leaves to the reader, defined the way a reader would.
SETUP: dict[tuple[str, int], str] = {
    ("docs/authentication.md", 1): (
        "class TransientAuthError(Exception):\n"
        "    def __init__(self, retry_after: float) -> None:\n"
        "        super().__init__(retry_after)\n"
    ),
    ("docs/helpers.md", 1): (
        "patient = {'resourceType': 'Patient', 'identifier': "
        "[{'system': 'http://hospital.org/mrn', 'value': '123456'}]}\n"
    ),
    ("docs/helpers.md", 8): (
        "batch = {'resourceType': 'Bundle', 'type': 'batch', 'entry': ["
        "{'request': {'method': 'POST', 'url': 'Patient'},"
        " 'resource': {'resourceType': 'Patient'}},"
        "{'request': {'method': 'GET', 'url': 'Patient/no-such-id'}}]}\n"
    ),
    ("docs/hooks.md", 0): (
        "import uuid\n"
        "from typing import Any\n"
        "def trace_id() -> str:\n"
        "    return uuid.uuid4().hex\n"
        "class Sink:\n"
        "    def write(self, record: dict[str, Any]) -> None: ...\n"
        "    def emit(self, record: dict[str, Any]) -> None: ...\n"
        "phi_audit_sink = metrics = Sink()\n"
    ),
}

# helpers.md 8 shows how failures are handled: its batch has one on purpose.
EXPECTED_FAILURE = {
    ("docs/helpers.md", 8): "BundleEntryError: 1 bundle entry failed (entry 1: 404)"
}


def blocks() -> dict[tuple[str, int], str]:
    found: dict[tuple[str, int], str] = {}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for index, match in enumerate(_BLOCK.finditer(page.read_text())):
            found[(page.relative_to(ROOT).as_posix(), index)] = match.group(1)
    return found


def test_every_block_is_classified() -> None:
    assert set(blocks()) == set(BLOCKS)


def program(key: tuple[str, int], server: harness.MedplumServer, patient_id: str) -> str:
    """The block as a user runs it: placeholders filled in, a client and the helpers at hand."""
    code = blocks()[key]
    credentials = f"client_id={server.client_id!r}, client_secret={server.client_secret!r}"
    code = code.replace('"https://api.medplum.com/"', repr(server.base_url))
    code = re.sub(r'client_id="[^"]*"', f"client_id={server.client_id!r}", code)
    code = re.sub(r'client_secret="[^"]*"', f"client_secret={server.client_secret!r}", code)
    code = code.replace('access_token="..."', credentials)
    code = code.replace("MedplumClient(...,", f"MedplumClient({server.base_url!r}, {credentials},")
    code = code.replace(
        'read_resource("Patient", "123"', f'read_resource("Patient", {patient_id!r}'
    )
    preamble = (
        "from pymedplum import *  # noqa: F403\n"
        "from pymedplum.fhir import Patient\n"
        f"client = MedplumClient({server.base_url!r}, {credentials})\n"
    )
    return preamble + SETUP.get(key, "") + code


def with_value_checks(code: str) -> str:
    """Each ``expression  # literal`` statement becomes ``assert expression == literal``."""
    lines = code.splitlines()
    body: list[ast.stmt] = []
    for node in ast.parse(code).body:
        expected = _commented_value(lines[node.end_lineno - 1]) if node.end_lineno else None
        if isinstance(node, ast.Expr) and expected is not None:
            value = ast.unparse(node.value)
            node_src = f"_got = {value}\nassert _got == {expected[0]!r}, (_got, {value!r})"
            body.extend(ast.parse(node_src).body)
        else:
            body.append(node)
    return ast.unparse(ast.Module(body=body, type_ignores=[]))


def _commented_value(line: str) -> tuple[object] | None:
    """``(value,)`` of a line's trailing comment when it (or its part before ": ") is a literal."""
    _, hash_, comment = line.partition(" # ")
    if not hash_:
        return None
    for text in (comment, comment.split(": ", 1)[0]):
        try:
            return (ast.literal_eval(text.strip()),)
        except (ValueError, SyntaxError):
            continue
    return None


@pytest.fixture(scope="module")
def patient_id(medplum_server: harness.MedplumServer) -> str:
    """The Patient the pages call "123"."""
    with MedplumClient(
        medplum_server.base_url,
        client_id=medplum_server.client_id,
        client_secret=medplum_server.client_secret,
    ) as client:
        created = client.create_resource(
            {"resourceType": "Patient", "name": [{"given": ["Ada"], "family": "Lovelace"}]}
        )
    return str(created["id"])


RUNNABLE = sorted(key for key, kind in BLOCKS.items() if kind == RUN)


def test_runnable_blocks_pass_mypy_strict(
    medplum_server: harness.MedplumServer, patient_id: str, tmp_path: Path
) -> None:
    files = []
    for page, index in RUNNABLE:
        path = tmp_path / f"{Path(page).stem.replace('-', '_')}_{index}.py"
        path.write_text(program((page, index), medplum_server, patient_id))
        files.append(str(path))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--no-error-summary",
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT / "src")},
        check=False,
    )
    assert result.stdout == "", result.stdout


@pytest.mark.parametrize("key", RUNNABLE, ids=[f"{p}[{i}]" for p, i in RUNNABLE])
def test_runnable_block_runs_against_the_server(
    key: tuple[str, int], medplum_server: harness.MedplumServer, patient_id: str
) -> None:
    code = with_value_checks(program(key, medplum_server, patient_id))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    if key in EXPECTED_FAILURE:
        assert EXPECTED_FAILURE[key] in result.stderr.splitlines()[-1], result.stderr
        return
    assert result.returncode == 0, f"{code}\n--- stderr:\n{result.stderr}"
    assert result.stderr == ""

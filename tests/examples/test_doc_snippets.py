"""The Python blocks of README.md and the pages under docs/, used as a new user uses them.

Every block is listed in ``BLOCKS``, so a new one has to be classified:

- ``RUN``: a complete program once a user fills in what the page leaves to them: the base URL,
  the credentials, the Patient ``"123"``, the memberships ``"ProjectMembership/alice"`` (and
  ``bob``, ``clinic-bot``), a ``client`` (a ``MedplumClient`` of the reader's), and the names in
  ``SETUP``. Nothing else is provided, not even an import: a block imports what it uses. It
  must pass ``mypy --strict`` and run against the session's local Medplum server (or, with
  ``pytest --external-medplum``, the Medplum the ``MEDPLUM_*`` variables name); ``AFTER``
  then uses what a block only defines (the hooks). Its comments that show a result are checked:

  - ``expression  # literal`` (or ``# literal: why``): the expression equals the literal;
  - ``print(...)  # text``: the line printed is ``text``;
  - ``name = ...  # -> T``: mypy infers ``T`` for ``name``;
  - comment lines that together are a Python literal (a dict spread over lines): they equal the
    expression ``COMMENTED_VALUES`` gives for the block (a block with such a comment must have
    one), evaluated after the block ran.
- a string: why the block is a fragment that cannot run on its own.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import medplum_server as harness  # scripts/, put on sys.path by tests/conftest.py
import pytest

from pymedplum import MedplumClient

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUN = "run"
# A fence may be indented (a block inside a list item); its lines are then dedented.
_BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.S | re.M)

BLOCKS: dict[tuple[str, int], str] = {
    ("README.md", 0): RUN,
    ("docs/architecture.md", 0): "a sketch of the client's internals",
    ("docs/authentication.md", 0): RUN,
    ("docs/authentication.md", 1): RUN,
    ("docs/client.md", 0): RUN,
    ("docs/client.md", 1): RUN,
    ("docs/client.md", 2): RUN,
    ("docs/client.md", 3): RUN,
    ("docs/errors-and-retries.md", 0): RUN,
    ("docs/errors-and-retries.md", 1): RUN,
    ("docs/errors-and-retries.md", 2): RUN,
    ("docs/errors-and-retries.md", 3): RUN,
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
    ("docs/migrating-from-fhir-resources-and-fhirpy.md", 0): RUN,
    ("docs/migrating-from-fhir-resources-and-fhirpy.md", 1): RUN,
    ("docs/migrating-from-fhir-resources-and-fhirpy.md", 2): RUN,
    ("docs/migrating-from-fhir-resources-and-fhirpy.md", 3): RUN,
    ("docs/on-behalf-of.md", 0): RUN,
    ("docs/on-behalf-of.md", 1): RUN,
    ("docs/performance.md", 0): (
        "lines of the reader's async function (`async with`), `base_url` and the credentials "
        "left out; benchmarks/client.py runs the same setup"
    ),
    ("docs/quickstart.md", 0): RUN,
    ("docs/quickstart.md", 1): RUN,
    ("docs/typed-search.md", 0): RUN,
    ("docs/reference-notes/runtime.md", 0): "signatures of the low-level methods, not calls",
}

# Names a page leaves to the reader, defined the way a reader would.
SETUP: dict[tuple[str, int], str] = {
    ("docs/authentication.md", 1): (
        "class TransientAuthError(Exception):\n"
        "    def __init__(self, retry_after: float) -> None:\n"
        "        super().__init__(retry_after)\n"
    ),
    # The error the page's previous block caught: a read of a Patient that does not exist.
    ("docs/errors-and-retries.md", 1): (
        "import logging\n"
        "from pymedplum import NotFoundError\n"
        "log = logging.getLogger('app')\n"
        "log.addHandler(logging.NullHandler())\n"
        "try:\n"
        "    client.read_resource('Patient', 'no-such-patient')\n"
        "    raise AssertionError('expected a 404')\n"
        "except NotFoundError as caught:\n"
        "    exc = caught\n"
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
        "    def __init__(self) -> None:\n"
        "        self.records: list[dict[str, Any]] = []\n"
        "    def write(self, record: dict[str, Any]) -> None:\n"
        "        self.records.append(record)\n"
        "    emit = write\n"
        "phi_audit_sink, metrics = Sink(), Sink()\n"
    ),
}

# Code run after a block that only defines things, so that what it defines is used.
AFTER: dict[tuple[str, int], str] = {
    # The hooks see the token request and the search; the PHI sink only the FHIR call.
    ("docs/hooks.md", 0): (
        "assert client.search_one('Patient') is not None\n"
        "assert [r['action'] for r in phi_audit_sink.records] == ['search']\n"
        "assert [r['action'] for r in metrics.records] == [None, 'search']\n"
        "assert 'path' not in metrics.records[1]\n"
    ),
    # With the root logger at INFO, a search writes no httpx line (its URL holds the query).
    ("docs/errors-and-retries.md", 2): (
        "seen: list[logging.LogRecord] = []\n"
        "class Keep(logging.Handler):\n"
        "    def emit(self, record: logging.LogRecord) -> None:\n"
        "        seen.append(record)\n"
        "logging.getLogger().addHandler(Keep())\n"
        "client.search_one('Patient', {'family': 'Smith'})\n"
        "assert logging.getLogger().isEnabledFor(logging.INFO)\n"
        "assert [r.name for r in seen if r.name.startswith('httpx')] == []\n"
    ),
}

# What a block's multi-line literal comment shows the value of.
COMMENTED_VALUES: dict[tuple[str, int], str] = {
    ("docs/errors-and-retries.md", 1): "exc.sanitize_for_logging()",
    ("docs/helpers.md", 5): "entry",
}

# helpers.md 8 shows how failures are handled: its batch has one on purpose.
EXPECTED_FAILURE = {
    ("docs/helpers.md", 8): "BundleEntryError: 1 bundle entry failed (entry 1: 404)"
}

MEMBERSHIPS = ("alice", "bob", "clinic-bot")


def blocks() -> dict[tuple[str, int], str]:
    found: dict[tuple[str, int], str] = {}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for index, match in enumerate(_BLOCK.finditer(page.read_text())):
            indent, code = match.groups()
            dedented = [line.removeprefix(indent) for line in code.splitlines(keepends=True)]
            found[(page.relative_to(ROOT).as_posix(), index)] = "".join(dedented)
    return found


def test_every_block_is_classified() -> None:
    assert set(blocks()) == set(BLOCKS)


def test_every_literal_comment_block_names_its_value() -> None:
    with_literal = {key for key, code in blocks().items() if _comment_literals(code)}
    runnable_with_literal = {key for key in with_literal if BLOCKS[key] == RUN}
    assert runnable_with_literal == set(COMMENTED_VALUES)


class Reader:
    """What the pages leave to the reader, made on the session's server."""

    def __init__(
        self, server: harness.ServerSettings, patient_id: str, memberships: dict[str, str]
    ) -> None:
        self.server = server
        self.patient_id = patient_id
        self.memberships = memberships


def project_member(client: MedplumClient, name: str) -> str:
    """``ProjectMembership/<id>`` of the Practitioner the pages call ``name``.

    Invited through Medplum's admin API (no email sent) on the first run against a project and
    found again by its email on later ones: Medplum keeps an invited member's User, and a
    second invitation of a member answers 409.
    """
    email = f"pymedplum-docs-{name}@example.com"
    profile = client.search_one("Practitioner", {"email": email})
    if profile is not None:
        membership = client.search_one(
            "ProjectMembership", {"profile": f"Practitioner/{profile['id']}"}
        )
        if membership is not None:
            return f"ProjectMembership/{membership['id']}"
    project = client.get("auth/me")["project"]["id"]
    invited = client.post(
        f"admin/projects/{project}/invite",
        json={
            "resourceType": "Practitioner",
            "firstName": name,
            "lastName": "Docs",
            "email": email,
            "sendEmail": False,
        },
    )
    return f"ProjectMembership/{invited['id']}"


def program(key: tuple[str, int], reader: Reader) -> str:
    """The block as a user runs it: placeholders filled in, a ``client`` at hand."""
    server = reader.server
    code = blocks()[key]
    credentials = f"client_id={server.client_id!r}, client_secret={server.client_secret!r}"
    code = code.replace('"https://api.medplum.com/"', repr(server.base_url))
    code = re.sub(r'client_id="[^"]*"', f"client_id={server.client_id!r}", code)
    code = re.sub(r'client_secret="[^"]*"', f"client_secret={server.client_secret!r}", code)
    if 'access_token="..."' in code:  # a token of the client, as a reader would get one
        code = code.replace('access_token="..."', f"access_token={server.access_token()!r}")
    code = code.replace("MedplumClient(...,", f"MedplumClient({server.base_url!r}, {credentials},")
    code = code.replace(
        'read_resource("Patient", "123"', f'read_resource("Patient", {reader.patient_id!r}'
    )
    for name, reference in reader.memberships.items():
        code = code.replace(f'"ProjectMembership/{name}"', repr(reference))
    # Only the client: a block that uses another name of the package must import it.
    preamble = (
        "import pymedplum as _pymedplum\n"
        f"client = _pymedplum.MedplumClient({server.base_url!r}, {credentials})\n"
    )
    return preamble + SETUP.get(key, "") + code + AFTER.get(key, "")


def with_value_checks(key: tuple[str, int], code: str) -> str:
    """The program with its result comments turned into assertions (see the module docstring)."""
    lines = code.splitlines()
    tree = ast.parse(code)
    _check_statements(tree.body, lines)
    checked = ast.unparse(tree)
    if key in COMMENTED_VALUES:
        [expected] = _comment_literals(code)
        value = COMMENTED_VALUES[key]
        checked += f"\n_got = {value}\nassert _got == {expected!r}, (_got, {value!r})\n"
    return checked


def with_type_checks(code: str) -> str:
    """The program with ``assert_type`` after each ``name = ...  # -> T`` line (for mypy)."""
    lines = code.splitlines()
    tree = ast.parse(code)
    _check_types(tree.body, lines)
    return "from typing import Any\nfrom typing_extensions import assert_type\n" + ast.unparse(tree)


def _trailing_comment(lines: list[str], node: ast.stmt) -> str | None:
    """The comment that ends a simple statement (a compound one's is its last statement's)."""
    if hasattr(node, "body"):
        return None
    line = lines[(node.end_lineno or node.lineno) - 1]
    _, hash_, comment = line.partition(" # ")
    return comment.strip() if hash_ else None


def _check_statements(body: list[ast.stmt], lines: list[str]) -> None:
    """Rewrite ``body`` in place, nested blocks included."""
    for position, node in reversed(list(enumerate(body))):
        for field in ("body", "orelse", "finalbody"):
            nested = getattr(node, field, None)
            if isinstance(nested, list) and nested and isinstance(nested[0], ast.stmt):
                _check_statements(nested, lines)
        for handler in getattr(node, "handlers", []):
            _check_statements(handler.body, lines)
        comment = _trailing_comment(lines, node)
        if comment is None or not isinstance(node, ast.Expr):
            continue
        value = ast.unparse(node.value)
        if _is_print(node.value):
            check = f"_printed({comment!r}, {value[len('print(') : -1]})"
            body[position : position + 1] = ast.parse(_PRINTED + check).body
            continue
        expected = _literal(comment) if _literal(comment) else _literal(comment.split(": ")[0])
        if expected:
            check = f"_got = {value}\nassert _got == {expected[0]!r}, (_got, {value!r})"
            body[position : position + 1] = ast.parse(check).body


_PRINTED = (
    "def _printed(_expected, *args, **kwargs):\n"
    "    import io\n"
    "    _buffer = io.StringIO()\n"
    "    print(*args, **kwargs, file=_buffer)\n"
    "    _got = _buffer.getvalue().rstrip('\\n')\n"
    "    assert _got == _expected, (_got, _expected)\n"
    "    print(*args, **kwargs)\n"
)


def _check_types(body: list[ast.stmt], lines: list[str]) -> None:
    for position, node in reversed(list(enumerate(body))):
        for field in ("body", "orelse", "finalbody"):
            nested = getattr(node, field, None)
            if isinstance(nested, list) and nested and isinstance(nested[0], ast.stmt):
                _check_types(nested, lines)
        comment = _trailing_comment(lines, node)
        if comment is None or not comment.startswith("-> "):
            continue
        assert isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name), comment
        check = f"assert_type({node.targets[0].id}, {comment[3:]})"
        body.insert(position + 1, ast.parse(check).body[0])


def _is_print(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    )


def _literal(text: str) -> tuple[object] | None:
    """``(value,)`` when ``text`` is a Python literal, else ``None``."""
    try:
        return (ast.literal_eval(text.strip()),)
    except (ValueError, SyntaxError):
        return None


def _comment_literals(code: str) -> list[object]:
    """The values of the runs of two or more whole-line comments that form a Python literal."""
    found: list[object] = []
    run: list[str] = []
    for line in [*code.splitlines(), ""]:
        stripped = line.strip()
        if stripped.startswith("#"):
            run.append(stripped[1:])
            continue
        if len(run) > 1 and (value := _literal(" ".join(run))):
            found.append(value[0])
        run = []
    return found


@pytest.fixture(scope="module")
def reader(example_server: harness.ServerSettings) -> Iterator[Reader]:
    with MedplumClient(
        example_server.base_url,
        client_id=example_server.client_id,
        client_secret=example_server.client_secret,
    ) as client:
        created = client.create_resource(  # the Patient the pages call "123"
            {"resourceType": "Patient", "name": [{"given": ["Ada"], "family": "Lovelace"}]}
        )
        memberships = {name: project_member(client, name) for name in MEMBERSHIPS}
        yield Reader(example_server, str(created["id"]), memberships)
        client.delete_resource("Patient", str(created["id"]))


RUNNABLE = sorted(key for key, kind in BLOCKS.items() if kind == RUN)


def test_runnable_blocks_pass_mypy_strict(reader: Reader, tmp_path: Path) -> None:
    files = []
    for page, index in RUNNABLE:
        path = tmp_path / f"{Path(page).stem.replace('-', '_')}_{index}.py"
        path.write_text(with_type_checks(program((page, index), reader)))
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
def test_runnable_block_runs_against_the_server(key: tuple[str, int], reader: Reader) -> None:
    code = with_value_checks(key, program(key, reader))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    if key in EXPECTED_FAILURE:
        assert EXPECTED_FAILURE[key] in result.stderr.splitlines()[-1], result.stderr
        return
    assert result.returncode == 0, f"{code}\n--- stderr:\n{result.stderr}"
    assert result.stderr == ""

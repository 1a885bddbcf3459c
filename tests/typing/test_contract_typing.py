"""``mypy --strict`` accepts the contract's examples and infers the documented types:
``as_fhir=Model`` gives the model, no ``as_fhir`` gives ``dict[str, Any]``, ``return_bundle``
gives a typed ``FHIRBundle``, ``search_resource_pages`` iterates models or dicts."""

from __future__ import annotations

import re
from pathlib import Path

from tests.fhir.test_typing import _mypy, _run_pyright

USAGE = Path(__file__).resolve().parent / "contract_usage.py"
_EXPECT = re.compile(r"reveal_type\(.*#\s*expect:\s*(.+)$")
_REVEALED = re.compile(r':(\d+): note: Revealed type is "(.+)"$')


def test_contract_examples_type_check_with_the_documented_types() -> None:
    expected = {
        number: match.group(1).strip()
        for number, line in enumerate(USAGE.read_text().splitlines(), start=1)
        if (match := _EXPECT.search(line))
    }
    assert len(expected) > 30
    result = _mypy(USAGE)
    revealed: dict[int, str] = {}
    errors: list[str] = []
    for line in result.stdout.splitlines():
        if match := _REVEALED.search(line):
            revealed[int(match.group(1))] = match.group(2)
        elif ": error:" in line:
            errors.append(line)
    assert errors == []
    assert revealed == expected


MISTAKES = USAGE.parent / "client_mistakes.py"
_PYRIGHT_ERROR = re.compile(r":(\d+):\d+ - error: ")
_MYPY_ERROR = re.compile(r":(\d+): error: ")


def _marked_lines() -> set[int]:
    lines = MISTAKES.read_text().splitlines()
    return {number for number, line in enumerate(lines, start=1) if line.endswith("# error")}


def test_client_mistakes_are_mypy_errors_on_exactly_the_marked_lines() -> None:
    result = _mypy(MISTAKES)
    flagged = {
        int(m.group(1)) for line in result.stdout.splitlines() if (m := _MYPY_ERROR.search(line))
    }
    assert len(_marked_lines()) > 20
    assert flagged == _marked_lines(), result.stdout


def test_client_mistakes_are_pyright_errors_on_exactly_the_marked_lines() -> None:
    result = _run_pyright(MISTAKES)  # the pinned pyright, installed on first use
    flagged = {
        int(m.group(1)) for line in result.stdout.splitlines() if (m := _PYRIGHT_ERROR.search(line))
    }
    assert flagged == _marked_lines(), result.stdout

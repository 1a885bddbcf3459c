"""nox sessions: thin names over the Makefile targets, so each thing has one way to run.

`nox -l` lists them. The Makefile owns the set-up (`.venv`) and the commands; nox adds nothing
but a familiar entry point for contributors who expect it.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "typecheck", "tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test command: lint, typecheck, regenerate-and-diff, all tests, docs build."""
    session.run("make", "test", external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.run("make", "lint", external=True)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/ and codegen/."""
    session.run("make", "typecheck", external=True)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the mkdocs site with --strict."""
    session.run("make", "docs", external=True)


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Run every benchmark script and print their tables."""
    session.run("make", "bench", external=True)

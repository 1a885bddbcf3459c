"""Run the unit suite on CPython 3.10 and 3.13, the ends of the supported range, against the wheel.

The development venv (and so every other test target) is 3.11, because the pinned development
tools need it. This script builds the wheel once, installs it into a venv of each version under
``.cache/pythons/`` with the test tools of ``scripts/check_pythons.txt`` (the releases that install
on 3.10), and runs ``pytest -m "not integration and not examples"`` there, from the repository
root. The tests import the installed wheel, not ``src/``: the run checks it (the file
``pymedplum`` was imported from, after collection) and fails otherwise. Tests that start the
generator (``python -m codegen``) in a subprocess point it at ``src/`` themselves, and the typing
tests give mypy and pyright ``src/``; those are the wheel's files, read from the source tree.

On 3.13 DeprecationWarning and PendingDeprecationWarning are errors (``-W error::...`` for the
tests, ``PYTHONWARNINGS`` for the Python processes they start, except the tests named in
``WARNINGS_EXEMPT``, whose subprocesses run third-party tools that warn themselves).

    python scripts/check_pythons.py              # 3.10 and 3.13
    python scripts/check_pythons.py 3.13         # one version
    python scripts/check_pythons.py 3.10 -- tests/fhir -x   # other pytest arguments

An interpreter that is not on the machine is reported (NOT FOUND) but does not fail the run; a
failing suite on a found one does (exit status 1). Interpreters are looked up as ``pythonX.Y`` on
PATH (a pyenv shim that has no such version selected does not count), then
``$PYENV_ROOT/versions/X.Y.*/bin/python`` (``~/.pyenv`` by default), the newest patch release.
The venv is reused while the interpreter, the requirements and the wheel's own requirements are
unchanged (a stamp in it); a changed wheel is only reinstalled into it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "pythons"
REQUIREMENTS = Path(__file__).resolve().with_suffix(".txt")
VERSIONS = ("3.10", "3.13")
# Where DeprecationWarning and PendingDeprecationWarning are errors, as in the manual checks.
STRICT_WARNINGS = ("3.13",)
WARNING_FILTERS = ("error::DeprecationWarning", "error::PendingDeprecationWarning")
# Tests whose subprocesses do not get PYTHONWARNINGS (in the test itself warnings stay errors),
# because the third-party tools those subprocesses run warn on 3.13 themselves: the packaging
# tests run `python -m build`, whose isolated environment's pip stops at importlib.metadata's
# "Unimplemented abstract methods {'locate_file'}"; this generator test runs
# datamodel-code-generator, which stops at its own "conint(...) ... discouraged in Pydantic v2".
WARNINGS_EXEMPT = (
    "tests/packaging/",
    "tests/generator/test_specs.py::test_a_broken_payload_schema_stops_with_a_message",
)
SELECTION = ("-m", "not integration and not examples")
PYTEST_OPTIONS = ("-q", "-p", "no:cacheprovider")

# Runs inside the version's venv: pytest with a plugin that records the counts and the file
# `pymedplum` was imported from (after collection, when every test module has imported it).
RUNNER = r"""
import importlib, json, os, sys
import pytest

report_path, filters, exempt = sys.argv[1], sys.argv[2], tuple(json.loads(sys.argv[3]))
args = sys.argv[4:]


class Report:
    def __init__(self):
        self.data = {"module": None, "counts": {}}

    def pytest_collection_finish(self, session):
        # The copy the tests imported; imported here (with pytest's sys.path) if none did.
        self.data["module"] = importlib.import_module("pymedplum").__file__

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        if not filters:
            return
        if item.nodeid.startswith(exempt):
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = filters

    def pytest_terminal_summary(self, terminalreporter):
        stats = terminalreporter.stats
        self.data["counts"] = {k: len(v) for k, v in stats.items() if k and k != "warnings"}


report = Report()
code = pytest.main(args, plugins=[report])
report.data["exit"] = int(code)
with open(report_path, "w") as out:
    json.dump(report.data, out)
sys.exit(code)
"""


@dataclass(frozen=True)
class Interpreter:
    executable: Path
    version: str  # "3.10.13"


@dataclass
class Outcome:
    version: str
    line: str
    failed: bool


def _probe(executable: str | Path, wanted: str) -> Interpreter | None:
    """The interpreter if it runs and is CPython ``wanted``; pyenv shims of an unselected
    version exit non-zero and do not count."""
    code = (
        "import sys, platform; "
        "print(platform.python_implementation(), platform.python_version(), sys.executable)"
    )
    try:
        done = subprocess.run(
            [str(executable), "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return None
    fields = done.stdout.split(maxsplit=2)
    if done.returncode != 0 or len(fields) != 3:
        return None
    implementation, version, real = fields
    if implementation != "CPython" or not version.startswith(wanted + "."):
        return None
    return Interpreter(Path(real.strip()), version)


def find_interpreter(wanted: str) -> tuple[Interpreter | None, list[str]]:
    """CPython ``wanted`` ("3.10"): pythonX.Y on PATH, else the newest pyenv build of it. Also
    returns where it looked, for the NOT FOUND line."""
    looked: list[str] = []
    on_path = shutil.which(f"python{wanted}")
    looked.append(f"python{wanted} on PATH" + (f" ({on_path}: not runnable)" if on_path else ""))
    if on_path and (found := _probe(on_path, wanted)):
        return found, looked
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pattern = f"{wanted}.*"
    looked.append(f"{pyenv_root}/versions/{pattern}/bin/python")

    def patch(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.name))

    candidates = [
        p
        for p in (pyenv_root / "versions").glob(pattern)
        if re.fullmatch(re.escape(wanted) + r"\.\d+", p.name)
    ]
    for candidate in sorted(candidates, key=patch, reverse=True):
        if found := _probe(candidate / "bin" / "python", wanted):
            return found, looked
    return None, looked


def build_wheel() -> Path:
    """The wheel of this checkout, built with `build` (in the development venv) into the cache."""
    out = CACHE / "dist"
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"check_pythons: the wheel was not built:\n{done.stdout}{done.stderr}")
    (wheel,) = out.glob("pymedplum-*.whl")
    return wheel


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel_requirements(wheel: Path) -> bytes:
    """The Requires-Python and Requires-Dist lines of the wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(name).decode().splitlines()
    kept = [line for line in lines if line.startswith(("Requires-", "Provides-Extra"))]
    return "\n".join(kept).encode()


def prepare_venv(interpreter: Interpreter, wheel: Path, log: list[str]) -> Path:
    """The version's venv with the wheel and the test tools installed; its python."""
    home = CACHE / interpreter.version.rsplit(".", 1)[0]
    env_dir = home / "venv"
    python = env_dir / "bin" / "python"
    stamp_path = env_dir / ".stamp.json"
    key = {
        "interpreter": str(interpreter.executable),
        "version": interpreter.version,
        "requirements": _digest(REQUIREMENTS.read_bytes()),
        "wheel_requirements": _digest(_wheel_requirements(wheel)),
    }
    wheel_digest = _digest(wheel.read_bytes())
    stamp: dict[str, str] = {}
    if stamp_path.is_file():
        stamp = json.loads(stamp_path.read_text())
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if {k: stamp.get(k) for k in key} != key or not python.is_file():
        log.append("new venv")
        shutil.rmtree(env_dir, ignore_errors=True)
        env_dir.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(interpreter.executable), "-m", "venv", str(env_dir)], check=True)
        subprocess.run([*pip, str(wheel), "-r", str(REQUIREMENTS)], check=True)
    elif stamp.get("wheel") != wheel_digest:
        log.append("wheel reinstalled")
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(wheel)], check=True)
    else:
        log.append("venv reused")
    stamp_path.write_text(json.dumps({**key, "wheel": wheel_digest}, indent=1))
    return python


def _plural(counts: dict[str, int]) -> str:
    order = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "deselected")
    return ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k))


def run_suite(version: str, interpreter: Interpreter, wheel: Path, extra: list[str]) -> Outcome:
    label = f"CPython {interpreter.version} ({interpreter.executable})"
    started = time.monotonic()
    log: list[str] = []
    print(f"check_pythons: {label}: preparing the venv", flush=True)
    try:
        python = prepare_venv(interpreter, wheel, log)
    except subprocess.CalledProcessError as exc:
        command = " ".join(map(str, exc.cmd[:5]))
        return Outcome(
            version, f"FAILED: the venv was not set up ({command} ... exit {exc.returncode})", True
        )
    prepared = time.monotonic() - started
    strict = version in STRICT_WARNINGS
    args = [*PYTEST_OPTIONS, *SELECTION]
    if strict:
        for warning in WARNING_FILTERS:
            args += ["-W", warning]
    args += extra
    report_path = python.parent.parent.parent / "report.json"
    report_path.unlink(missing_ok=True)
    # No PYTHONPATH from the caller (PYTHONPATH=src would put the sources first).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONWARNINGS")}
    print(f"check_pythons: {label}: pytest {shlex.join(args)}", flush=True)
    done = subprocess.run(
        [
            str(python),
            "-c",
            RUNNER,
            str(report_path),
            ",".join(WARNING_FILTERS) if strict else "",
            json.dumps(WARNINGS_EXEMPT),
            *args,
        ],
        cwd=ROOT,
        env=env,
        check=False,
    )
    elapsed = time.monotonic() - started
    timing = f"{elapsed / 60:.1f} min ({', '.join(log)}: {prepared:.0f} s)"
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    if report is not None and report.get("module"):
        print(f"check_pythons: {label}: pymedplum was imported from {report['module']}")
    line, failed = verdict(report, done.returncode, python.parent.parent)
    mode = ", DeprecationWarning as error" if strict and not failed else ""
    return Outcome(version, f"{line}{mode}; {timing}", failed)


def verdict(report: dict[str, Any] | None, returncode: int, venv_dir: Path) -> tuple[str, bool]:
    """The outcome line of one version's run and whether it failed: pytest's exit status, its
    counts, and where `pymedplum` came from (the venv, or the run does not count)."""
    if report is None:
        return f"FAILED: pytest exited {returncode} without a report", True
    module = report.get("module")
    if module is None or not Path(module).resolve().is_relative_to(venv_dir.resolve()):
        return f"FAILED: pymedplum was imported from {module or 'nowhere'}, not {venv_dir}", True
    counts: dict[str, int] = report.get("counts", {})
    summary = f"{_plural(counts) or 'no tests'}; pymedplum from the venv's wheel"
    if returncode != 0 or counts.get("failed") or counts.get("error") or not counts.get("passed"):
        return f"FAILED (pytest exit {returncode}): {summary}", True
    return f"passed: {summary}", False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        argv, extra = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n", 1)[0], epilog="Arguments after -- go to pytest."
    )
    parser.add_argument("versions", nargs="*", default=list(VERSIONS), metavar="X.Y")
    args = parser.parse_args(argv)
    outcomes: list[Outcome] = []
    wheel: Path | None = None
    for version in args.versions:
        interpreter, looked = find_interpreter(version)
        if interpreter is None:
            line = f"NOT FOUND (looked for {' and '.join(looked)}): NOT CHECKED"
            outcomes.append(Outcome(version, line, False))
            print(f"check_pythons: CPython {version}: {line}", flush=True)
            continue
        if wheel is None:
            wheel = build_wheel()
            print(f"check_pythons: built {wheel.name}", flush=True)
        outcomes.append(run_suite(version, interpreter, wheel, extra))
    print()
    for outcome in outcomes:
        print(f"check_pythons: CPython {outcome.version}: {outcome.line}")
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())

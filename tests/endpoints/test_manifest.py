"""The operation manifest: consistent, fully rendered, and its checks name the broken field."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import pytest

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

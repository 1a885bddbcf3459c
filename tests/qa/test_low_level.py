"""get / post / put / delete: paths relative to base_url, parsed JSON or None, and the
httpx-style keywords the contract forwards (params, headers, content, data, timeout)."""

from __future__ import annotations

import inspect
import json

import httpx
import pytest

from pymedplum._async._base_client import AsyncBaseClient
from pymedplum._sync._base_client import SyncBaseClient
from pymedplum.endpoint_types import BodyRequestOptions, RequestOptions
from tests.qa.conftest import BASE, QA

pytestmark = pytest.mark.anyio


async def test_returns_parsed_json_or_none(qa: QA) -> None:
    qa.handler = lambda r: (
        httpx.Response(204) if r.method == "DELETE" else httpx.Response(200, json={"ok": 1})
    )
    client = qa.client()
    assert await qa.call(client, "get", "admin/projects/p1") == {"ok": 1}
    assert await qa.call(client, "post", "admin/x", {"a": 1}) == {"ok": 1}
    assert await qa.call(client, "put", "admin/x", json={"a": 2}) == {"ok": 1}
    assert await qa.call(client, "delete", "admin/x") is None
    assert [str(r.url) for r in qa.requests] == [BASE + "admin/projects/p1"] + [
        BASE + "admin/x"
    ] * 3
    assert json.loads(qa.requests[2].content) == {"a": 2}


async def test_params_headers_and_timeout_are_forwarded(qa: QA) -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions.get("timeout", {}))
        return httpx.Response(200, json={})

    qa.handler = handler
    client = qa.client()
    await qa.call(client, "get", "auth/me", params={"a": "1"}, headers={"X-Y": "z"}, timeout=2.5)
    request = qa.requests[-1]
    assert request.url.params["a"] == "1" and request.headers["x-y"] == "z"
    assert seen[-1] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}
    await qa.call(client, "get", "auth/me", timeout=httpx.Timeout(1.0, read=9.0))
    assert seen[-1]["read"] == 9.0


async def test_post_form_data(qa: QA) -> None:
    qa.handler = lambda r: httpx.Response(200, json={})
    client = qa.client()
    await qa.call(client, "post", "auth/something", data={"a": "1", "b": "x y"})
    request = qa.requests[-1]
    assert request.content == b"a=1&b=x+y"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("value", "kind"),
    [([{"name": "a", "valueString": "b"}], "list"), ({"x": 1}, "dict"), (None, "NoneType")],
)
async def test_post_form_data_refuses_values_that_are_no_form_field(
    qa: QA, value: object, kind: str
) -> None:
    # A JSON body passed as data= (pymedplum 0.6's post(path, data) sent data as JSON) was
    # form-encoded as its Python repr: "parameter=%5B%7B%27name%27...". Now a TypeError.
    client = qa.client()
    body = {"resourceType": "Parameters", "parameter": value}
    for method in ("post", "put"):
        with pytest.raises(TypeError, match=rf"data\['parameter'\] .* got {kind}; .* json="):
            await qa.call(client, method, "fhir/R4/Patient/$x", data=body)
    assert qa.requests == []


@pytest.mark.parametrize("bad", ["X-A: b", "", [], [("X-A", "b")]])
async def test_post_form_data_checks_headers_as_other_calls_do(qa: QA, bad: object) -> None:
    # data= merged the caller's headers with dict() before _prepare could check them: a str
    # failed with "dictionary update sequence element #0 ...", and "" or [] were no headers.
    client = qa.client()
    for method in ("post", "put"):
        with pytest.raises(TypeError, match="headers must be a mapping of header names"):
            await qa.call(client, method, "auth/x", data={"a": "1"}, headers=bad)
    assert qa.requests == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
async def test_post_form_data_refuses_non_finite_numbers(qa: QA, value: float) -> None:
    # Sent as "a=nan" / "a=inf"; params= refuses them already.
    client = qa.client()
    with pytest.raises(ValueError, match=r"data\['a'\] must be a finite number"):
        await qa.call(client, "post", "auth/x", data={"a": value})
    assert qa.requests == []


async def test_post_form_data_writes_a_bool_as_params_do(qa: QA) -> None:
    # str(True) sent "a=True"; params= (httpx) and FHIR write "true".
    client = qa.client()
    await qa.call(client, "post", "auth/x", data={"a": True, "b": False, "c": 1})
    assert qa.requests[-1].content == b"a=true&b=false&c=1"


@pytest.mark.parametrize("bad", [{"follow_redirects": True}, {"auth": ("u", "p")}])
async def test_unsupported_httpx_keywords_raise_type_error_naming_them(
    qa: QA, bad: dict[str, object]
) -> None:
    client = qa.client()
    with pytest.raises(TypeError, match=next(iter(bad))) as info:
        await qa.call(client, "get", "auth/me", **bad)
    # The method the user called, not the runtime's (it said "SyncBaseClient.get()").
    assert str(info.value).startswith(f"{type(client).__name__}.get() got an unexpected keyword")
    for method in ("post", "put", "delete"):
        with pytest.raises(TypeError, match=rf"^{type(client).__name__}\.{method}\(\) .*'prams'"):
            await qa.call(client, method, "auth/me", prams={})
    assert qa.requests == []


async def test_bad_timeout_named(qa: QA) -> None:
    client = qa.client()
    with pytest.raises((TypeError, ValueError), match="timeout"):
        await qa.call(client, "get", "auth/me", timeout="soon")


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("get", RequestOptions),
        ("delete", RequestOptions),
        ("post", BodyRequestOptions),
        ("put", BodyRequestOptions),
    ],
)
def test_typed_keywords_are_the_runtime_keywords(method: str, options: type) -> None:
    # The generated signatures type **kwargs with these TypedDicts, and the client refuses any
    # other keyword with their keys: they must stay the runtime methods' keyword-only names.
    for base in (AsyncBaseClient, SyncBaseClient):
        runtime = {
            name
            for name, p in inspect.signature(getattr(base, method)).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        assert set(vars(options)["__optional_keys__"]) == runtime


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ([("a", "b"), ("c", float("nan"))], ValueError, r"params\['c'\] must be a finite"),
        ([("a", "b"), ("c",)], TypeError, r"params\[1\] must be a \(name, value\) pair"),
        ([("a", "b"), ("c", b"x")], TypeError, r"params\['c'\] must be a str"),
    ],
)
async def test_params_pairs_after_valid_ones_are_still_checked(
    qa: QA, params: object, error: type, match: str
) -> None:
    # check_query_params takes a fast path for a list of (str, str) pairs (the typed methods'
    # queries, per request): one other pair anywhere must leave it for the full check.
    client = qa.client()
    with pytest.raises(error, match=match):
        await qa.call(client, "get", "auth/x", params=params)
    assert qa.requests == []


async def test_params_as_a_query_str_adds_to_a_query_in_the_path(qa: QA) -> None:
    # params= may be a query str; with a query already in the path it was split into
    # characters and failed with a bare IndexError.
    client = qa.client()
    await qa.call(client, "get", "auth/x?a=1", params="b=2&c=")
    assert qa.requests[-1].url.query == b"a=1&b=2&c="
    await qa.call(client, "get", "auth/x", params="b=2")
    assert qa.requests[-1].url.query == b"b=2"

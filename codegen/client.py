"""Render the endpoint methods from ``specs/operations.yaml``.

Writes ``src/pymedplum/_async/client.py`` (``AsyncMedplumClient``: signatures, ``typing.overload``
variants for ``as_fhir`` / ``return_bundle``, docstrings, and the body of every plain-request
method) and ``src/pymedplum/_endpoints.py`` (the wire description of each request, read by the
generated bodies and the hand-written overrides). The sync client comes from unasync.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jinja2
import yaml  # type: ignore[import-untyped]  # no stubs in the pinned tool chain

from codegen.util import ruff

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "specs" / "operations.yaml"
TEMPLATES = Path(__file__).resolve().parent / "templates"
CLIENT_OUT = ROOT / "src" / "pymedplum" / "_async" / "client.py"
ENDPOINTS_OUT = ROOT / "src" / "pymedplum" / "_endpoints.py"

SHAPES = {"model", "bundle", "model_iter", "dict", "dict_or_none", "none", "bytes", "text", "json"}
SHAPES |= {"merge_result"}
KINDS = {"positional", "keyword", "var_keyword"}
ACTIONS = {"read", "search", "create", "update", "patch", "delete", "operation"}
ACTIONS |= {"batch_or_transaction"}
_WIDTH = 100


class ManifestError(ValueError):
    """The manifest is inconsistent (names the method and the field)."""


@dataclass(frozen=True)
class Param:
    """One parameter of a generated signature."""

    name: str
    kind: str
    type: str
    default: str | None  # Python source; None = required
    doc: str

    def render(self) -> str:
        if self.kind == "var_keyword":
            return f"**{self.name}: {self.type}"
        if self.default is None:
            return f"{self.name}: {self.type}"
        return f"{self.name}: {self.type} = {self.default}"


def load_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    """Parse and check the manifest; raise ManifestError naming the first problem."""
    try:
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ManifestError(f"not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("methods"), dict):
        raise ManifestError("methods: missing (a mapping of method name to its description)")
    for name, spec in data["methods"].items():
        try:
            _check_method(name, spec)
        except (KeyError, TypeError, AttributeError) as exc:  # a field of the wrong shape
            raise ManifestError(
                f"methods.{name}: malformed ({type(exc).__name__}: {exc})"
            ) from None
    for alias, target in data.get("aliases", {}).items():
        if target not in data["methods"]:
            raise ManifestError(f"alias {alias!r} points at unknown method {target!r}")
    return data


def _check_method(name: str, spec: dict[str, Any]) -> None:
    where = f"methods.{name}"
    for key in ("group", "summary", "params", "request", "returns", "body"):
        if key not in spec:
            raise ManifestError(f"{where}: missing {key!r}")
    if spec["returns"]["shape"] not in SHAPES:
        raise ManifestError(f"{where}.returns.shape: unknown {spec['returns']['shape']!r}")
    if spec["body"] not in ("request", "override"):
        raise ManifestError(f"{where}.body: must be 'request' or 'override'")
    action = spec["request"].get("action")
    if action is not None and action not in ACTIONS:
        raise ManifestError(f"{where}.request.action: unknown {action!r}")
    seen: set[str] = set()
    for p in spec["params"]:
        if p["kind"] not in KINDS:
            raise ManifestError(f"{where}.params.{p['name']}: unknown kind {p['kind']!r}")
        if p["name"] in seen:
            raise ManifestError(f"{where}.params: duplicate {p['name']!r}")
        seen.add(p["name"])
    placeholders = _placeholders(spec["request"]["path"])
    if spec["body"] == "request" or "bind" in spec:
        bound = set(spec.get("bind", {}))
        if placeholders != bound:
            raise ManifestError(f"{where}.bind: must bind exactly {sorted(placeholders)}")


def _placeholders(path: str) -> set[str]:
    import string

    return {field for _, field, _, _ in string.Formatter().parse(path) if field}


def _params(spec: dict[str, Any]) -> list[Param]:
    return [
        Param(
            name=p["name"],
            kind=p["kind"],
            type=p["type"],
            default=None if "default" not in p else str(p["default"]),
            doc=" ".join(str(p.get("doc", "")).split()),
        )
        for p in spec["params"]
    ]


def render_signature(params: list[Param]) -> str:
    """``self, a: T, *, b: U = None`` — a bare ``*`` before the first keyword-only parameter."""
    parts = ["self"]
    star_done = False
    for p in params:
        if p.kind == "keyword" and not star_done:
            parts.append("*")
            star_done = True
        parts.append(p.render())
    return ", ".join(parts)


def _force(params: list[Param], forced: dict[str, tuple[str, str | None]]) -> list[Param]:
    """Replace the type/default of some parameters for one overload variant.

    A required positional parameter that follows a defaulted one gets the default ``...``,
    which mypy accepts in overloads (the implementation has the real default).
    """
    out: list[Param] = []
    seen_default = False
    for p in params:
        if p.name in forced:
            type_, default = forced[p.name]
            if default is None and p.kind == "positional" and seen_default:
                default = "..."
            p = replace(p, type=type_, default=default)
        if p.kind == "positional" and p.default is not None:
            seen_default = True
        out.append(p)
    return out


def overload_variants(shape: str, params: list[Param]) -> tuple[list[tuple[list[Param], str]], str]:
    """The ``@overload`` variants (params, return type) and the implementation's return type."""
    names = {p.name for p in params}
    if shape == "model":
        return (
            [
                (_force(params, {"as_fhir": ("None", "None")}), "dict[str, Any]"),
                (_force(params, {"as_fhir": ("type[ModelT]", None)}), "ModelT"),
            ],
            "dict[str, Any] | ModelT",
        )
    if shape == "model_iter":
        return (
            [
                (_force(params, {"as_fhir": ("None", "None")}), "AsyncIterator[dict[str, Any]]"),
                (_force(params, {"as_fhir": ("type[ModelT]", None)}), "AsyncIterator[ModelT]"),
            ],
            "AsyncIterator[dict[str, Any] | ModelT]",
        )
    if shape == "bundle":
        assert {"return_bundle", "as_fhir"} <= names
        return (
            [
                (
                    _force(
                        params,
                        {
                            "return_bundle": ("Literal[False]", "False"),
                            "as_fhir": ("type[ModelT] | None", "None"),
                        },
                    ),
                    "dict[str, Any]",
                ),
                (
                    _force(
                        params,
                        {"return_bundle": ("Literal[True]", None), "as_fhir": ("None", "None")},
                    ),
                    "FHIRBundle[dict[str, Any]]",
                ),
                (
                    _force(
                        params,
                        {
                            "return_bundle": ("Literal[True]", None),
                            "as_fhir": ("type[ModelT]", None),
                        },
                    ),
                    "FHIRBundle[ModelT]",
                ),
                (params, "dict[str, Any] | FHIRBundle[Any]"),
            ],
            "dict[str, Any] | FHIRBundle[Any]",
        )
    simple = {
        "dict": "dict[str, Any]",
        "dict_or_none": "dict[str, Any] | None",
        "none": "None",
        "bytes": "bytes",
        "text": "str",
        "json": "Any",
        "merge_result": "MergeResult",
    }
    return [], simple[shape]


def render_docstring(spec: dict[str, Any], params: list[Param], indent: str) -> str:
    """A Google-style docstring from the manifest's summary, doc, params, returns and raises."""
    width = _WIDTH - len(indent)
    lines: list[str] = [spec["summary"].strip()]
    if spec.get("doc"):
        lines.append("")
        lines.extend(textwrap.wrap(" ".join(str(spec["doc"]).split()), width))
    documented = [p for p in params if p.doc]
    if documented:
        lines += ["", "Args:"]
        for p in documented:
            lines.extend(
                textwrap.wrap(
                    f"{p.name}: {p.doc}",
                    width,
                    initial_indent="    ",
                    subsequent_indent="        ",
                )
            )
    ret_doc = spec["returns"].get("doc")
    if ret_doc:
        verb = "Yields" if spec["returns"]["shape"] == "model_iter" else "Returns"
        lines += ["", f"{verb}:"]
        lines.extend(textwrap.wrap(ret_doc, width, initial_indent="    ", subsequent_indent="    "))
    raises = spec.get("raises") or {}
    if raises:
        lines += ["", "Raises:"]
        for exc, when in raises.items():
            lines.extend(
                textwrap.wrap(
                    f"{exc}: {' '.join(str(when).split())}",
                    width,
                    initial_indent="    ",
                    subsequent_indent="        ",
                )
            )
    request = spec["request"]
    action = request.get("action")
    # No fixed action (the low-level methods): the runtime derives it from the path sent.
    described = (
        f"``{action}``"
        if action is not None
        else "from the path (a FHIR interaction under the FHIR base, else ``None``)"
    )
    wire = (
        f"Wire: ``{request['method']} {request['path'] or '/'}`` "
        f"(base {request.get('base', 'fhir')}), RequestEvent.action {described}."
    )
    lines += ["", *textwrap.wrap(wire, width)]
    body = "\n".join(f"{indent}{line}".rstrip() for line in lines)
    return f'{indent}"""{body.lstrip()}\n{indent}"""'


def _py(value: str) -> str:
    return repr(value).replace("'", '"')


def render_request_body(name: str, spec: dict[str, Any], indent: str) -> str:
    """The body of a ``body: request`` method: one ``_call_endpoint``, its answer read by
    ``convert=`` inside the call (bytes, text and none read the returned response)."""
    bind = spec.get("bind", {})
    bind_src = "{" + ", ".join(f"{_py(k)}: {v}" for k, v in bind.items()) + "}"
    args = [f"ENDPOINTS[{_py(name)}]", bind_src]
    if spec.get("query"):
        args.append(f"params=build_search_params({spec['query']})")
    if spec.get("json"):
        args.append(f"json={spec['json']}")
    if spec.get("content"):
        args.append(f"content={spec['content']}")
    header_items = [f"{_py(k)}: {_py(v)}" for k, v in (spec.get("fixed_headers") or {}).items()]
    header_items += [f"{_py(k)}: {v}" for k, v in (spec.get("header_args") or {}).items()]
    if header_items or spec.get("send_headers"):
        fixed = "{" + ", ".join(header_items) + "}"
        extra = spec.get("send_headers")
        if extra and not header_items:
            args.append(f"headers={extra}")
        elif extra:
            args.append(f"headers=merge_headers({fixed}, {extra})")
        else:
            args.append(f"headers={fixed}")
    if any(p["name"] == "on_behalf_of" for p in spec["params"]):
        args.append("on_behalf_of=on_behalf_of")
    response = spec.get("response", "dict")
    # A JSON answer is read inside the call (convert=), so that one the SDK cannot use (an HTML
    # page, an empty body) is the RequestEvent's final_exception, not a success.
    converters = {
        "model": "lambda response: self._model_response(response, as_fhir)",
        "dict": "self._dict_response",
        # A created resource as a dict: an empty answer stands for what its Location names.
        "created": "lambda response: self._model_response(response, None)",
        "bundle": "lambda response: self._bundle_response(response, return_bundle, as_fhir)",
        "json": "self._json",
    }
    if response in converters:
        args.append(f"convert={converters[response]}")
        return f"{indent}return await self._call_endpoint({', '.join(args)})"
    target = "" if response == "none" else "response = "
    call = f"{target}await self._call_endpoint({', '.join(args)})"
    conversions = {
        "none": "return None",
        "bytes": "return response.content",
        "text": "return response.text",
    }
    return f"{indent}{call}\n{indent}{conversions[response]}"


def render_override_body(name: str, spec: dict[str, Any], params: list[Param], indent: str) -> str:
    """Delegate to the hand-written ``self._<name>`` of an override mixin, by keyword."""
    args = ", ".join(
        f"**{p.name}" if p.kind == "var_keyword" else f"{p.name}={p.name}" for p in params
    )
    if spec["returns"]["shape"] == "model_iter":
        # Not a generator itself: the override runs now (binding the call's On-Behalf-Of while
        # the caller's context is current) and returns the lazy iterator.
        return f"{indent}return self._{name}({args})"
    return f"{indent}return await self._{name}({args})"


def render_method(name: str, spec: dict[str, Any]) -> str:
    """All overloads plus the implementation of one method, as class-body source."""
    params = _params(spec)
    variants, impl_return = overload_variants(spec["returns"]["shape"], params)
    out: list[str] = []
    # An iterator method is a plain ``def`` returning the (async) iterator: calling it returns
    # no coroutine, and it runs at once, in the caller's context (see render_override_body).
    stub_def = "def" if spec["returns"]["shape"] == "model_iter" else "async def"
    for v_params, v_return in variants:
        out.append("    @overload")
        out.append(f"    {stub_def} {name}({render_signature(v_params)}) -> {v_return}: ...")
        out.append("")
    out.append(f"    {stub_def} {name}({render_signature(params)}) -> {impl_return}:")
    out.append(render_docstring(spec, params, "        "))
    names = {p.name for p in params}
    if "as_fhir" in names:
        # A single resource answer is checked against the request's resource type too, before
        # anything is sent, and so is search_resource_pages, which yields only the matches (of
        # the searched type). Not a Bundle: as_fhir may type an _include-d type of it.
        target = (
            next((n for n in ("resource_type", "resource") if n in names), None)
            if spec["returns"]["shape"] in ("model", "model_iter")
            else None
        )
        extra = f", {target}" if target else ""
        out.append(f'        check_model_class("as_fhir", as_fhir{extra})')
    for param in params:
        if param.type == "bool":
            # Checked before anything is sent: "false", 0 or None would be read by truth value
            # (return_bundle="false" answered a FHIRBundle, force=None skipped a write).
            out.append(f'        check_flag("{param.name}", {param.name})')
    if {"as_fhir", "return_bundle"} <= names:
        # The contract applies as_fhir to a FHIRBundle only: without return_bundle=True it
        # would be dropped silently, and the dict returned looks like a bug in the SDK.
        out.append("        warn_as_fhir_without_bundle(as_fhir, return_bundle)")
    if spec["body"] == "request":
        out.append(render_request_body(name, spec, "        "))
    else:
        out.append(render_override_body(name, spec, params, "        "))
    return "\n".join(out)


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render_client(manifest: dict[str, Any]) -> str:
    """The whole ``_async/client.py`` source (before ruff format)."""
    methods = [render_method(name, spec) for name, spec in manifest["methods"].items()]
    return (
        _env()
        .get_template("client.py.jinja")
        .render(
            mixins=manifest["mixins"],
            methods=methods,
            aliases=manifest.get("aliases", {}),
        )
    )


def render_endpoints(manifest: dict[str, Any]) -> str:
    """The whole ``_endpoints.py`` source (before ruff format)."""
    rows = []
    for name, spec in manifest["methods"].items():
        req = spec["request"]
        bind = spec.get("bind") or {p: p for p in sorted(_placeholders(req["path"]))}
        # A placeholder may be None (dropping its segment) only when its argument is Optional.
        nullable = {p["name"] for p in spec.get("params", []) if "None" in str(p.get("type"))}
        optional = tuple(sorted(k for k, arg in bind.items() if arg in nullable))
        rows.append(
            {
                "name": name,
                "method": req["method"],
                "path": req["path"],
                "base": req.get("base", "fhir"),
                "action": req.get("action"),
                "operation": req.get("operation"),
                "resource_type": req.get("resource_type"),
                "replay_safe": req.get("replay_safe"),
                "headers": tuple(req.get("headers", [])),
                "args": tuple(sorted(bind.items())),
                "optional": optional,
                "returns": spec["returns"]["shape"],
            }
        )
    return _env().get_template("endpoints.py.jinja").render(rows=rows, py=_py)


def _format(paths: list[Path]) -> None:
    ruff("format", "--quiet", *paths)
    ruff("check", "--quiet", "--fix", "--select", "I,F401", *paths, check=False)


def generate() -> None:
    """Write the generated client and endpoint table (the ``make generate`` step)."""
    try:
        manifest = load_manifest(MANIFEST)
    except ManifestError as exc:  # one line naming the file and the field, not a traceback
        shown = MANIFEST.relative_to(ROOT) if MANIFEST.is_relative_to(ROOT) else MANIFEST
        raise SystemExit(f"{shown}: {exc}") from None
    CLIENT_OUT.parent.mkdir(parents=True, exist_ok=True)
    CLIENT_OUT.write_text(render_client(manifest), encoding="utf-8")
    ENDPOINTS_OUT.write_text(render_endpoints(manifest), encoding="utf-8")
    _format([CLIENT_OUT, ENDPOINTS_OUT])

"""Command line of the generator: ``python -m codegen {specs,generate,verify-specs,models}``."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence

# Each step is "module:function"; the function takes no arguments and writes its files.
# Order matters: models first (the client generator imports nothing from them, but
# payload and search-parameter modules are referenced by the client).
GENERATE_STEPS: tuple[str, ...] = (
    "codegen.models:main",
    "codegen.client:generate",
    "codegen.search_params:generate",
    "codegen.payloads:generate",
)

SPECS_STEPS: tuple[str, ...] = ("codegen.specs:refresh",)


def _run(steps: Sequence[str]) -> None:
    for step in steps:
        module_name, func_name = step.split(":")
        func: Callable[[], None] = getattr(importlib.import_module(module_name), func_name)
        func()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m codegen")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("specs", help="refresh specs/ from the registries and verify checksums")
    sub.add_parser("generate", help="regenerate src/pymedplum from specs/ (no network)")
    sub.add_parser("verify-specs", help="check specs/ against specs/manifest.json (no network)")
    sub.add_parser(
        "models",
        help="models from other definitions (--source ... --out ... --package ...)",
        add_help=False,
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "models":
        from codegen.models import cli

        cli(rest)
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "specs":
        _run(SPECS_STEPS)
    elif args.command == "verify-specs":
        _run(("codegen.specs:verify",))
    else:
        _run(GENERATE_STEPS)


if __name__ == "__main__":
    main()

"""One measurement of benchmarks/models.py, in a fresh interpreter of either environment.

    python benchmarks/_models_worker.py accepts LIB CANDIDATES.jsonl
    python benchmarks/_models_worker.py time   LIB DATA.json WARMUP.json REPS BUDGET_SECONDS
    python benchmarks/_models_worker.py memory LIB DATA.json WARMUP.json COPIES rss|traced

LIB is ``pymedplum`` (this project's venv), ``plain pydantic`` (the floor: pydantic twins of
pymedplum's models without FHIR's rules, benchmarks/_plain_pydantic.py, this project's venv),
``fhir.resources`` (its R4B models, in the benchmark's own venv), ``fhirclient`` (SMART on
FHIR's R4 models, in a venv of its own) or, for ``memory``, ``orjson`` (the plain-dicts
baseline). Prints one JSON object on stdout. Uses only the standard library, orjson and LIB, so
that it runs in every venv.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

# The benchmark's data folder (PYMEDPLUM_BENCH_DATA moves it, e.g. for a second checkout that
# shares .cache), and the twins' module, written there by benchmarks/models.py before it starts
# the workers.
DATA = Path(
    os.environ.get("PYMEDPLUM_BENCH_DATA")
    or Path(__file__).resolve().parents[1] / ".cache/bench-data"
)
PLAIN_PYDANTIC = DATA / "plain_pydantic_models.py"


def _plain_pydantic() -> Any:
    """benchmarks/_plain_pydantic.py (beside this file; imported only for that library)."""
    here = str(Path(__file__).parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module("_plain_pydantic")


def model_class(lib: str, resource_type: str) -> Any:
    """The model class LIB uses for a resourceType (raises when it has none)."""
    if lib == "pymedplum":
        from pymedplum.fhir import get_model

        return get_model(resource_type)
    if lib == "plain pydantic":
        twins = _plain_pydantic()
        return twins.model_class(twins.load(PLAIN_PYDANTIC), resource_type)
    if lib == "fhir.resources":  # installed only in the benchmark's own venv
        r4b = importlib.import_module("fhir.resources.R4B")
        return r4b.get_fhir_model_class(resource_type)
    if lib == "fhirclient":  # installed only in its own venv
        # Its factory is what fhirclient uses for a ``resourceType`` (Bundle entries, contained
        # resources); given ``None`` it builds an empty instance, whose class is the model. An
        # unknown type falls through to ``Element``.
        models = importlib.import_module("fhirclient.models.fhirelementfactory")
        cls = type(models.FHIRElementFactory.instantiate(resource_type, None))
        if cls.__name__ != resource_type:
            raise ValueError(f"fhirclient has no model for {resource_type!r}")
        return cls
    raise SystemExit(f"unknown library {lib!r}")


def parser(lib: str, resource_type: str) -> Callable[[bytes], Any]:
    """The parse call measured for LIB on a document of ``resource_type``."""
    if lib == "orjson":
        return orjson.loads
    cls = model_class(lib, resource_type)
    if lib == "plain pydantic":
        # As pymedplum's parse does, and as the orjson baseline is timed: the cyclic GC paused
        # while the tree is built (with it on, a 10,000-entry Bundle takes 4x longer).
        def parse(data: bytes) -> Any:
            gc.disable()
            try:
                return cls.model_validate_json(data)
            finally:
                gc.enable()

        return parse
    if lib == "fhirclient":
        # As a fhirclient user reads a document (and as fhirclient's own server calls do):
        # the standard library's json, then the model built and checked from the dict.
        return lambda data: cls(json.loads(data), strict=True)
    return cls.model_validate_json  # type: ignore[no-any-return]


def _resource_type(text: bytes) -> str:
    resource_type: str = orjson.loads(text)["resourceType"]
    return resource_type


def serializer(lib: str) -> Callable[[Any], str]:
    """The serialize call measured for LIB: its tree to JSON text."""
    if lib == "fhirclient":
        # Its models give the dict back (as_json, which checks types and required elements
        # again); the text is the standard library's json.dumps with its defaults.
        return lambda model: json.dumps(model.as_json())
    return lambda model: model.model_dump_json(by_alias=True, exclude_none=True)


def _reason(exc: Exception) -> str:
    """The first line of an error; for fhirclient's nested errors, the first innermost one."""
    path: list[str] = []
    while type(exc).__name__ == "FHIRValidationError" and getattr(exc, "errors", None):
        if getattr(exc, "path", None):
            path.append(str(exc.path))  # type: ignore[attr-defined]
        exc = exc.errors[0]  # type: ignore[attr-defined]
    where = ".".join(path) + ": " if path else ""
    return f"{type(exc).__name__}: {where}{str(exc).splitlines()[0][:160]}"


def accepts(lib: str, candidates: Path) -> dict[str, Any]:
    """Which candidate documents LIB parses, and why the others fail (first line of the error)."""
    accepted: list[str] = []
    rejected: dict[str, str] = {}
    # The plain-pydantic twins validate every type through one union: building each type's
    # own schema would take a second per type.
    adapter = None
    if lib == "plain pydantic":
        twins = _plain_pydantic()
        adapter = twins.any_resource(twins.load(PLAIN_PYDANTIC))

    def validate(resource_type: str, text: bytes) -> Any:
        if adapter is not None:
            return adapter.validate_json(text)
        return parser(lib, resource_type)(text)

    for line in candidates.read_bytes().splitlines():
        doc = orjson.loads(line)
        text = doc["text"].encode()
        try:
            validate(doc["resourceType"], text)
        except Exception as exc:  # any failure means "not in the comparable subset"
            rejected[doc["name"]] = _reason(exc)
        else:
            accepted.append(doc["name"])
    return {"accepted": accepted, "rejected": rejected}


def _median_time(
    fn: Callable[[], Any], reps: int, budget: float, gc_off: bool = False
) -> tuple[float, Any, int]:
    """Median CPU seconds of one call over ``reps`` samples (fewer past ``budget`` seconds).

    CPU time of this process, not wall time: the machine is shared, and other load would
    otherwise count against whichever library ran at the time. The garbage collector stays on,
    as in real use, unless ``gc_off`` (the orjson baseline as pymedplum runs its own parse:
    pymedplum pauses the cyclic GC while it builds a tree). Fast calls are repeated within a
    sample so that one lasts >= 20 ms.
    """
    gc.collect()
    start = time.process_time()
    result = fn()
    first = time.process_time() - start
    number = max(1, int(0.02 / first)) if first > 0 else 1000
    times: list[float] = []
    while len(times) < reps and (not times or sum(times) * number < budget):
        result = None
        gc.collect()
        if gc_off:
            gc.disable()
        start = time.process_time()
        for _ in range(number):
            result = fn()
        times.append((time.process_time() - start) / number)
        gc.enable()
    return statistics.median(times), result, len(times)


def _as_text_numbers(text: str | bytes) -> Any:
    # Numbers compared as their text: 1.50 != 1.5 (the models' round-trip contract).
    return json.loads(text, parse_float=lambda s: ("n", s), parse_int=lambda s: ("n", s))


def timing(lib: str, data: Path, warmup: Path, reps: int, budget: float) -> dict[str, Any]:
    """Median parse / serialize time of LIB and of orjson on the same data."""
    text = data.read_bytes()
    parse, dump = parser(lib, _resource_type(text)), serializer(lib)
    # Warm-up on a sample with every resource type of the data: imports the models it needs and
    # builds their (deferred) schemas, so that the timed runs measure steady-state work.
    dump(parse(warmup.read_bytes()))
    # Each library parses with only the text alive and serializes with only its own tree alive,
    # so that the garbage collector has the same kind of heap to walk for both.
    loads_gc, _, _ = _median_time(lambda: orjson.loads(text), reps, budget)
    loads, dicts, _ = _median_time(lambda: orjson.loads(text), reps, budget, gc_off=True)
    dumps, _, _ = _median_time(lambda: orjson.dumps(dicts), reps, budget)
    del dicts
    parse_s, model, parse_reps = _median_time(lambda: parse(text), reps, budget)
    dump_s, out, dump_reps = _median_time(lambda: dump(model), reps, budget)
    dicts = orjson.loads(text)
    entries = dicts.get("entry") or []
    typed = (
        sum(
            type(e.resource).__name__ == d["resource"]["resourceType"]
            for e, d in zip(model.entry or [], entries, strict=True)
            if "resource" in d
        )
        if dicts.get("resourceType") == "Bundle"
        else None
    )
    return {
        "orjson_loads": loads,
        "orjson_loads_gc_on": loads_gc,
        "orjson_dumps": dumps,
        "parse": parse_s,
        "serialize": dump_s,
        "reps": [parse_reps, dump_reps],
        "entries": len(entries),
        "typed_entries": typed,
        "first_entry_class": type(model.entry[0].resource).__name__ if entries else None,
        "lossless": _as_text_numbers(out) == _as_text_numbers(text),
    }


def _rss() -> int:
    # Resident set size from /proc (Linux): pages * page size.
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def memory(lib: str, data: Path, warmup: Path, copies: int, method: str) -> dict[str, Any]:
    """Bytes held by COPIES parses of DATA (RSS delta, or tracemalloc's retained size)."""
    text = data.read_bytes()
    warm_text = warmup.read_bytes()
    parse = parser(lib, _resource_type(text))
    # Imports, schema builds and caches happen here, outside the measured window.
    parse(warm_text)
    gc.collect()
    if method == "traced":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = _rss()
    kept = [parse(text) for _ in range(copies)]
    gc.collect()
    if method == "traced":
        after, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    else:
        after = peak = _rss()
    assert len(kept) == copies
    return {"bytes": after - before, "peak": peak - before}


def main(argv: list[str]) -> None:
    mode, lib, path = argv[0], argv[1], Path(argv[2])
    if mode == "accepts":
        result = accepts(lib, path)
    elif mode == "time":
        result = timing(lib, path, Path(argv[3]), int(argv[4]), float(argv[5]))
    elif mode == "memory":
        result = memory(lib, path, Path(argv[3]), int(argv[4]), argv[5])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

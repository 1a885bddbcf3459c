"""Speed and memory of the pymedplum.fhir models against orjson, fhir.resources and fhirclient.

    .venv/bin/python benchmarks/models.py           # full run (~6 minutes on 2 cores)
    .venv/bin/python benchmarks/models.py --quick   # small data, 1 repetition (smoke test)

Data comes from the official examples ``hl7.fhir.r4.examples@4.0.1`` (fetched and checked by
``codegen.fhir_packages``): a searchset Bundle of >= 10,000 entries (>= 10 MB) made by repeating
the example resources under distinct ids, and single resources. For each library and data set:

* parse: ``Model.model_validate_json(text)`` (pydantic libraries) /
  ``Model(json.loads(text), strict=True)`` (fhirclient) / ``orjson.loads(text)``;
* serialize: ``model.model_dump_json(by_alias=True, exclude_none=True)`` /
  ``json.dumps(model.as_json())`` (fhirclient) / ``orjson.dumps(dicts)``;
* memory of the parsed tree / memory of the ``orjson.loads`` dicts, each in a fresh process, as
  RSS delta (what the process really holds, allocator overhead and parse garbage included) and as
  tracemalloc's retained size (exactly the Python objects the tree keeps);
* cold import, minus a bare ``python -c pass``, median of fresh interpreters.

Times are CPU seconds of the measuring process (user + system; for imports, of the child), not
wall time: the reference machine is shared, and CPU time keeps other load out of the figures.

``fhir.resources`` (8.3.0, its R4B models) runs in its own venv, ``.cache/bench-venv``, created
here on first use. Its R4B models reject R4-only resource types, so it is compared on the
"common" Bundle: only the examples both libraries parse. Figures are measured and printed beside
the targets of issue 3; nothing is asserted.

``fhirclient`` (4.4.0, SMART on FHIR's generated R4 4.0.1 classes, pure Python) runs in a venv of
its own, ``.cache/bench-venv-fhirclient``, also created here on first use. Its parse is what a
fhirclient user writes, and what its own server calls do: the standard library's ``json.loads``,
then the resource's class built from the dict with ``strict=True`` (types and required elements
checked, undeclared elements refused, ``FHIRValidationError``); Bundle entries and contained
resources get their class from its ``FHIRElementFactory``. Its serialize is
``json.dumps(model.as_json())`` with json's defaults. It joins every Bundle whose examples it all
parses.

``plain pydantic`` is the floor: pydantic v2 twins of pymedplum's models (same fields, JSON names,
nesting and typed entries) with none of FHIR's rules (no regex, decimals as floats, undeclared
elements dropped, no validators), generated from the pymedplum classes at run time
(benchmarks/_plain_pydantic.py). It shows what any pydantic model tree of this shape costs.

The data and cached answers live in ``.cache/bench-data`` (``PYMEDPLUM_BENCH_DATA`` moves them).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the generator's helpers: pinned packages, example reader

from codegen.fhir_packages import ensure  # noqa: E402
from codegen.roundtrip import example_documents  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import _plain_pydantic as plain_pydantic  # noqa: E402
from _models_worker import PLAIN_PYDANTIC as PLAIN_MODELS  # noqa: E402

EXAMPLES = "hl7.fhir.r4.examples@4.0.1"
WORKER = Path(__file__).with_name("_models_worker.py")
# PYMEDPLUM_BENCH_DATA moves the data (e.g. for a second checkout that shares .cache); the
# worker reads the same variable.
DATA = Path(os.environ.get("PYMEDPLUM_BENCH_DATA") or ROOT / ".cache" / "bench-data")
BENCH_VENV = ROOT / ".cache" / "bench-venv"
FHIR_RESOURCES = "fhir.resources==8.3.0"
# fhirclient has a venv of its own: pure Python with one dependency (requests), it is set up in
# seconds, so the smoke test can measure it without building fhir.resources' venv, and that venv
# (and its install stamp) stays as it was.
FHIRCLIENT_VENV = ROOT / ".cache" / "bench-venv-fhirclient"
FHIRCLIENT = "fhirclient==4.4.0"
PLAIN = "plain pydantic"

# Examples larger than this are left out of the big Bundle, so that a few conformance giants
# (StructureDefinitions, whole-package Bundles) do not make up most of its bytes.
MAX_EXAMPLE_BYTES = 20_000
BIG_ENTRIES = 10_000
BIG_BYTES = 10_000_000
# Single resources are parsed this many bytes' worth of times for the memory figure, so that
# RSS (page and arena granular) has something to measure.
SINGLE_MEMORY_BYTES = 5_000_000
# A timing stops repeating once its runs took this long (fhir.resources serializes 30 MB slowly).
TIME_BUDGET_S = 8.0

SINGLES = {
    "Patient": "package/Patient-example.json",
    "Observation (vitals)": "package/Observation-blood-pressure.json",
    "Observation (decimals)": "package/Observation-decimal.json",
    "Questionnaire": "package/Questionnaire-3141.json",
    "Bundle example (55)": "package/Bundle-ghp.json",
}

TARGETS = {"parse": 3.0, "serialize": 5.0, "memory": 1.5, "import": 0.150}
REFERENCE = {  # issue 3: pymedplum 0.6.0 (PyPI) and fhir.resources on such data
    "pymedplum 0.6.0": {
        "parse": "6.4-9.2x",
        "serialize": "7.5-9.4x",
        "memory": "2.4x",
        "import": "650 ms",
    },
    "fhir.resources": {"parse": "21.9x", "serialize": "289x", "memory": "2.6x", "import": "379 ms"},
}
IMPORTS = {
    "pymedplum": [
        ("from pymedplum.fhir import Patient", "from pymedplum.fhir import Patient"),
        ("import pymedplum", "import pymedplum"),
    ],
    "fhir.resources": [
        (
            "from fhir.resources.R4B.patient import Patient",
            "from fhir.resources.R4B.patient import Patient",
        ),
    ],
    "fhirclient": [
        (
            "from fhirclient.models.patient import Patient",
            "from fhirclient.models.patient import Patient",
        ),
    ],
}
# The first parse after the import, per library: (label, statement).
FIRST_USE = {
    "pydantic": (
        "{cls}.model_validate_json",
        "{imp}; {cls}.model_validate_json(open({path!r}, 'rb').read())",
    ),
    "fhirclient": (
        "{cls}(json.loads(text))",
        "import json; {imp}; {cls}(json.loads(open({path!r}, 'rb').read()), strict=True)",
    ),
}
# For FIRST_USE on a Bundle holding one entry of each resource type: what a bot or a short
# script pays once for the schemas (fhirclient: the modules) of every type it meets.
BUNDLE_IMPORTS = {
    "pymedplum": "from pymedplum.fhir import Bundle",
    "fhir.resources": "from fhir.resources.R4B.bundle import Bundle",
    "fhirclient": "from fhirclient.models.bundle import Bundle",
}
# What parse and serialize are, per library (printed with the report).
CALLS = {
    "pydantic": (
        "Model.model_validate_json(text)",
        "model.model_dump_json(by_alias=True, exclude_none=True)",
    ),
    "fhirclient": ("Model(json.loads(text), strict=True)", "json.dumps(model.as_json())"),
}

_ID_SLOT = "bench-id-slot"  # replaced by each entry's id
_MARK = "\x00num:"
_MARKED = re.compile(r'"\\u0000num:([^"]*)"')


@dataclass
class DataSet:
    label: str
    path: Path
    warmup: Path
    libs: list[str]
    entries: int = 0
    copies: int = 1  # parses kept alive for the memory figure


@dataclass
class Row:
    data: DataSet
    lib: str
    timing: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)  # method -> ratio to dicts
    memory_bytes: dict[str, int] = field(default_factory=dict)


# --- environments ---------------------------------------------------------------------------


def bench_python(venv: Path = BENCH_VENV, pin: str = FHIR_RESOURCES) -> Path:
    """Python of one of the benchmark's own venvs, with ``pin`` and orjson (created on first use).

    ``.cache/bench-venv`` holds fhir.resources, ``.cache/bench-venv-fhirclient`` fhirclient.
    """
    python = venv / "bin" / "python"
    pins = [pin, f"orjson=={importlib.metadata.version('orjson')}"]
    stamp = venv / (".installed-" + hashlib.sha256(" ".join(pins).encode()).hexdigest()[:12])
    if not stamp.exists():
        print(f"setting up {venv.relative_to(ROOT)} ({', '.join(pins)}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
            check=True,
        )
        stamp.touch()
    return python


def worker(python: Path | str, *args: object) -> Any:
    """Run one measurement in a fresh interpreter and return its JSON result."""
    done = subprocess.run(
        [str(python), str(WORKER), *map(str, args)], capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"worker {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


# --- data -----------------------------------------------------------------------------------


def compact(raw: bytes, new_id: str | None = None) -> str:
    """Compact JSON text of an example, decimals kept exactly as written (1.50 stays 1.50)."""
    doc = json.loads(raw, parse_float=lambda s: _MARK + s)
    if new_id is not None:
        doc["id"] = new_id
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return _MARKED.sub(r"\1", text)


_TEMPLATES: dict[str, tuple[str, str]] = {}


def template(name: str, raw: bytes) -> tuple[str, str]:
    """(resourceType, compact text with an id slot) of an example, made once per run."""
    if name not in _TEMPLATES:
        _TEMPLATES[name] = (json.loads(raw)["resourceType"], compact(raw, _ID_SLOT))
    return _TEMPLATES[name]


def searchset(entries: list[str], bundle_id: str) -> str:
    """A searchset Bundle around already-serialized entries."""
    return (
        '{"resourceType":"Bundle","id":"' + bundle_id + '","type":"searchset",'
        f'"total":{len(entries)},"link":[{{"relation":"self",'
        f'"url":"https://example.org/fhir/?_count={len(entries)}"}}],'
        '"entry":[' + ",".join(entries) + "]}"
    )


def big_bundle(docs: list[tuple[str, bytes]], entries: int, min_bytes: int) -> tuple[str, str, int]:
    """(the big Bundle, a warm-up Bundle with one example of each resource type, entry count).

    The examples are repeated in package order until there are ``entries`` entries and
    ``min_bytes`` bytes, each copy with its own id and fullUrl.
    """
    templates = [template(name, raw) for name, raw in docs]
    out: list[str] = []
    size = 0
    n = 0
    while n < entries or size < min_bytes:
        resource_type, text = templates[n % len(templates)]
        rid = f"b{n}"
        entry = (
            f'{{"fullUrl":"https://example.org/fhir/{resource_type}/{rid}","resource":'
            + text.replace(_ID_SLOT, rid)
            + ',"search":{"mode":"match"}}'
        )
        out.append(entry)
        size += len(entry) + 1
        n += 1
    seen: dict[str, str] = {}
    for resource_type, text in templates:
        seen.setdefault(resource_type, text.replace(_ID_SLOT, "w"))
    warm = [f'{{"resource":{text}}}' for text in seen.values()]
    return searchset(out, "bench"), searchset(warm, "warmup"), len(out)


def candidates(quick: bool) -> dict[str, bytes]:
    """Examples that may go into the big Bundle (all up to MAX_EXAMPLE_BYTES; a sample if quick)."""
    tarball = ensure(EXAMPLES)
    docs = {name: raw for name, raw in example_documents(tarball)}
    small = {name: raw for name, raw in docs.items() if len(raw) <= MAX_EXAMPLE_BYTES}
    singles = list(SINGLES.values())
    if quick:  # a few Patients and Observations, and the single Patient: few schemas to build
        kinds = ("package/Patient-", "package/Observation-")
        small = {n: raw for n, raw in small.items() if n.startswith(kinds)}
        small = dict(list(small.items())[::8])
        singles = singles[:1]
    return {**small, **{name: docs[name] for name in singles}}


def _library_stamp(lib: str) -> str:
    """What an acceptance result depends on besides the documents: the library's code."""
    if lib == "fhir.resources":
        return FHIR_RESOURCES
    if lib == "fhirclient":
        return FHIRCLIENT
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src" / "pymedplum" / "fhir").glob("*.py")):
        digest.update(path.read_bytes())
    if lib == PLAIN:  # its twins are made from those models by this file
        digest.update(Path(plain_pydantic.__file__).read_bytes())
    return digest.hexdigest()


def accepted_by(libs: dict[str, Path | str], docs: dict[str, bytes]) -> dict[str, Any]:
    """For each library: which documents its models parse (cached per documents and library).

    Libraries without a cached answer run at once, one process each (two cores).
    """
    DATA.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {"name": n, "resourceType": json.loads(raw)["resourceType"], "text": raw.decode()}
        )
        for n, raw in docs.items()
    ]
    body = "\n".join(lines) + "\n"
    path = DATA / "candidates.jsonl"
    path.write_text(body)
    results: dict[str, Any] = {}
    procs = {}
    for lib, py in libs.items():
        docs_key = hashlib.sha256(body.encode()).hexdigest()[:12]
        lib_key = hashlib.sha256(_library_stamp(lib).encode()).hexdigest()[:12]
        cache = DATA / f"accepts-{lib.replace(' ', '-')}-{docs_key}-{lib_key}.json"
        if cache.exists():
            results[lib] = json.loads(cache.read_text())
            continue
        print(f"  which examples {lib} parses ...", flush=True)
        procs[lib] = (
            cache,
            subprocess.Popen(
                [str(py), str(WORKER), "accepts", lib, str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            ),
        )
    for lib, (cache, proc) in procs.items():
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"accepts {lib} failed:\n{stderr[-3000:]}")
        for stale in DATA.glob(cache.name.rsplit("-", 1)[0] + "-*.json"):
            stale.unlink()  # answers for older versions of the library's code
        cache.write_text(stdout)
        results[lib] = json.loads(stdout)
    return {lib: results[lib] for lib in libs}


def build_data(quick: bool, pythons: dict[str, Path | str]) -> tuple[list[DataSet], dict[str, Any]]:
    docs = candidates(quick)
    accepts = accepted_by(pythons, docs)
    ok = {lib: set(result["accepted"]) for lib, result in accepts.items()}
    singles = set(SINGLES.values())
    pool = [
        (n, raw) for n, raw in docs.items() if n not in singles or len(raw) <= MAX_EXAMPLE_BYTES
    ]
    entries, min_bytes = (100, 0) if quick else (BIG_ENTRIES, BIG_BYTES)
    sets: list[DataSet] = []
    info: dict[str, Any] = {"accepts": accepts, "pool": len(pool)}

    def add_bundle(label: str, key: str, members: list[tuple[str, bytes]], libs: list[str]) -> None:
        text, warm, count = big_bundle(members, entries, min_bytes)
        path, warm_path = DATA / f"{key}.json", DATA / f"{key}-warmup.json"
        path.write_text(text)
        warm_path.write_text(warm)
        sets.append(DataSet(label, path, warm_path, libs, entries=count))
        info[key] = {"docs": len(members), "bytes": len(text.encode())}

    mine = [(n, raw) for n, raw in pool if n in ok["pymedplum"]]
    # The floor checks no FHIR rule, so it reads everything pymedplum reads.
    missed = [n for n, _ in mine if n not in ok[PLAIN]]
    if missed:
        raise SystemExit(f"{PLAIN} rejected examples pymedplum parses: {missed[:5]}")
    # fhirclient's R4 models join each Bundle whose examples they all parse; if they reject
    # some of "Bundle all", they get a Bundle of their own (the examples both parse).
    fc = "fhirclient" in ok
    fc_all = fc and all(n in ok["fhirclient"] for n, _ in mine)
    add_bundle("Bundle all", "bundle-all", mine, ["pymedplum", PLAIN] + ["fhirclient"] * fc_all)
    if "fhir.resources" in ok:
        both = [(n, raw) for n, raw in mine if n in ok["fhir.resources"]]
        fc_both = fc and all(n in ok["fhirclient"] for n, _ in both)
        libs = ["pymedplum", PLAIN, "fhir.resources"] + ["fhirclient"] * fc_both
        add_bundle("Bundle common", "bundle-common", both, libs)
    if fc and not fc_all:
        theirs = [(n, raw) for n, raw in mine if n in ok["fhirclient"]]
        add_bundle("Bundle fhirclient", "bundle-fhirclient", theirs, ["pymedplum", "fhirclient"])
    for label, name in SINGLES.items():
        if name not in docs:  # --quick
            continue
        path = DATA / (name.rsplit("/", 1)[-1])
        path.write_bytes(docs[name])
        libs = [lib for lib in pythons if name in ok[lib]]
        budget = 1_000_000 if quick else SINGLE_MEMORY_BYTES
        sets.append(DataSet(label, path, path, libs, copies=max(1, budget // len(docs[name]))))
    return sets, info


# --- measurements ---------------------------------------------------------------------------


def measure(
    sets: list[DataSet], pythons: dict[str, Path | str], reps: int, methods: tuple[str, ...]
) -> list[Row]:
    rows: list[Row] = []
    for data in sets:
        dicts: dict[str, int] = {}
        for method in methods:
            result = worker(
                pythons["pymedplum"],
                "memory",
                "orjson",
                data.path,
                data.warmup,
                data.copies,
                method,
            )
            dicts[method] = result["bytes"]
        for lib in data.libs:
            print(f"  {data.label} / {lib} ...", flush=True)
            row = Row(data, lib)
            row.timing = worker(
                pythons[lib], "time", lib, data.path, data.warmup, reps, TIME_BUDGET_S
            )
            for method in methods:
                result = worker(
                    pythons[lib], "memory", lib, data.path, data.warmup, data.copies, method
                )
                row.memory_bytes[method] = result["bytes"]
                row.memory[method] = result["bytes"] / max(dicts[method], 1)
            rows.append(row)
    return rows


def cpu(python: Path | str, code: str, env: dict[str, str] | None = None) -> float:
    """CPU seconds (user + system) of a fresh ``python -c code``.

    CPU rather than wall time, so that other load on the shared machine does not count; an
    import is single-threaded and its files are in the OS cache, so on an idle machine the two
    agree.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([str(python), "-c", code], check=True, cwd=ROOT, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cold_imports(
    pythons: dict[str, Path | str],
    runs: int,
    first_use: dict[str, list[tuple[str, str]]],
    warm: bool = True,
) -> list[tuple[str, str, float]]:
    """(library, statement, median seconds minus a bare interpreter) of fresh interpreters."""
    out = []
    for lib, statements in IMPORTS.items():
        if lib not in pythons:
            continue
        python = pythons[lib]
        codes = [(label, code) for label, code in statements]
        codes.extend(first_use[lib])
        # Write the .pyc files (as pip does when it installs a wheel) and fill the OS cache
        # first; PYTHONDONTWRITEBYTECODE, set on some machines, would make every run compile.
        write_bytecode = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for _, code in codes if warm else []:
            cpu(python, code, env=write_bytecode)
        # Rounds of (bare interpreter, each statement), so that drift hits all alike.
        times: dict[str, list[float]] = {code: [] for _, code in [("", "pass"), *codes]}
        for _ in range(runs):
            for code in times:
                times[code].append(cpu(python, code))
        base = statistics.median(times["pass"])
        for label, code in codes:
            out.append((lib, label, statistics.median(times[code]) - base))
    return out


# --- report ---------------------------------------------------------------------------------


def fmt_ratio(x: float) -> str:
    return f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def fmt_s(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x >= 0.1 else f"{x * 1000:.2f} ms"


def fmt_mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join([line.rstrip(), "  ".join("-" * w for w in widths), *body])


def span(values: list[float], fmt: Any) -> str:
    if not values:
        return "n/a"
    lo, hi = min(values), max(values)
    return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo)}-{fmt(hi)}"


def rejection_kind(why: str) -> str:
    """Why fhir.resources rejected an example, in two words (from its error's first line)."""
    return "type not in R4B" if "is not a valid FHIR Model" in why else "fail R4B validation"


def fhirclient_rejection_kind(why: str) -> str:
    """Why fhirclient rejected an example, in two words (from its innermost error)."""
    for marker, kind in (
        ("Non-optional property", "required missing"),
        ("Superfluous entry", "unknown element"),
        ("Wrong type", "wrong type"),
        ("has no model for", "unknown type"),
    ):
        if marker in why:
            return kind
    return why.split(":")[0]  # the exception's class


def rejections(rejected: dict[str, str], kind: Any) -> str:
    """'41 fail R4B validation, 13 type not in R4B; most: CodeSystem 30, ...' of a library."""
    if not rejected:
        return "none"
    reasons = Counter(kind(why) for why in rejected.values())
    types = Counter(n.split("/")[-1].split("-")[0] for n in rejected)
    return (
        ", ".join(f"{v} {k}" for k, v in reasons.most_common())
        + "; most: "
        + ", ".join(f"{t} {c}" for t, c in types.most_common(6))
    )


def report(
    rows: list[Row], imports: list[tuple[str, str, float]], info: dict[str, Any], reps: int
) -> str:
    out: list[str] = []
    versions = [f"Python {platform.python_version()}"]
    for dist in ("pydantic", "orjson"):
        versions.append(f"{dist} {importlib.metadata.version(dist)}")
    if "fhir.resources" in info["accepts"]:
        versions.append(f"{FHIR_RESOURCES.replace('==', ' ')} (R4B models, own venv)")
    if "fhirclient" in info["accepts"]:
        versions.append(f"{FHIRCLIENT.replace('==', ' ')} (R4 models, own venv)")
    out.append("pymedplum.fhir models benchmark: " + ", ".join(versions))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    out.append(
        f"{os.cpu_count()} CPUs, load average {load}; times are CPU time, median of {reps} "
        f"(fewer when the runs exceed {TIME_BUDGET_S:g} s); memory and imports: fresh processes"
    )
    out.append("")
    out.append(
        f"Data: {EXAMPLES}, examples up to {MAX_EXAMPLE_BYTES // 1000} kB "
        f"({info['pool']} documents), repeated under distinct ids as searchset entries."
    )
    mine = info["accepts"]["pymedplum"]
    all_b = info["bundle-all"]
    out.append(
        f"  Bundle all: {all_b['docs']} examples pymedplum parses "
        f"({len(mine['rejected'])} rejected as invalid R4)."
    )
    fr = info["accepts"].get("fhir.resources")
    if fr is not None:
        common = info["bundle-common"]
        out.append(
            f"  Bundle common: the {common['docs']} of those that fhir.resources' R4B models "
            f"also parse; it rejects {len(fr['rejected'])} "
            f"({rejections(fr['rejected'], rejection_kind)})."
        )
    else:
        out.append("  fhir.resources: not run (--without-fhir-resources).")
    fc = info["accepts"].get("fhirclient")
    if fc is not None:
        # The big Bundles it is measured on (the single resources are listed in the tables).
        bundles = [
            r.data.label.split(" (")[0] for r in rows if r.lib == "fhirclient" and r.data.entries
        ]
        own = info.get("bundle-fhirclient")
        given = len(mine["accepted"]) + len(mine["rejected"])
        out.append(
            f"  fhirclient's R4 models parse {len(fc['accepted'])} of the {given} documents "
            f"pymedplum was given; they reject {len(fc['rejected'])}"
            + (
                f" ({rejections(fc['rejected'], fhirclient_rejection_kind)})"
                if fc["rejected"]
                else ""
            )
            + ", "
            f"so they are measured on {', '.join(bundles) or 'no Bundle'}"
            + (f" (the {own['docs']} examples both parse)" if own else "")
            + "."
        )
    else:
        out.append("  fhirclient: not run (--without-fhirclient).")
    out.append("")

    out.append("Parse and serialize time (ratio to orjson.loads / orjson.dumps of the same data)")
    pydantic_calls, fhirclient_calls = CALLS["pydantic"], CALLS["fhirclient"]
    out.append(
        f"parse / serialize: {pydantic_calls[0]} / {pydantic_calls[1]}; fhirclient: "
        f"{fhirclient_calls[0]} / {fhirclient_calls[1]} (the standard json, as fhirclient uses)"
    )
    out.append(
        "x loads: orjson.loads with the cyclic GC paused, as pymedplum pauses it for its own "
        "parse; (GC on): a plain orjson.loads call"
    )
    trows = []
    for r in rows:
        t = r.timing
        typed = (
            f"{t['typed_entries']}/{t['entries']} ({t['first_entry_class']})"
            if t["typed_entries"] is not None
            else "-"
        )
        trows.append(
            [
                r.data.label + (f" ({r.data.entries:,})" if r.data.entries else ""),
                r.lib,
                fmt_mb(r.data.path.stat().st_size),
                fmt_s(t["parse"]),
                fmt_ratio(t["parse"] / t["orjson_loads"]),
                fmt_ratio(t["parse"] / t["orjson_loads_gc_on"]),
                fmt_s(t["serialize"]),
                fmt_ratio(t["serialize"] / t["orjson_dumps"]),
                typed,
                "yes" if t["lossless"] else "no",
            ]
        )
    out.append(
        table(
            [
                "data",
                "library",
                "size",
                "parse",
                "x loads",
                "(GC on)",
                "serialize",
                "x dumps",
                "typed entries",
                "lossless",
            ],
            trows,
        )
    )
    out.append("")

    out.append("Memory of the parsed tree (ratio to the orjson.loads dicts; each a fresh process)")
    mrows = []
    for r in rows:
        copies = f" x{r.data.copies}" if r.data.copies > 1 else ""
        mrows.append(
            [
                r.data.label + copies,
                r.lib,
                fmt_mb(r.memory_bytes["rss"]),
                fmt_ratio(r.memory["rss"]),
                fmt_mb(r.memory_bytes["traced"]) if "traced" in r.memory else "-",
                fmt_ratio(r.memory["traced"]) if "traced" in r.memory else "-",
            ]
        )
    out.append(
        table(["data (copies kept)", "library", "RSS delta", "x dicts", "traced", "x dicts"], mrows)
    )
    out.append("")

    out.append("Cold import (CPU time, median of fresh interpreters, minus `python -c pass`)")
    out.append(
        table(
            ["library", "statement", "time"], [[lib, label, fmt_s(s)] for lib, label, s in imports]
        )
    )
    out.append("")

    out.append("Targets (issue 3; measured, not asserted) and reference figures")

    def figures(lib: str) -> dict[str, str]:
        mine_rows = [r for r in rows if r.lib == lib]
        imps = [s for lb, label, s in imports if lb == lib and "first use" not in label]
        return {
            "parse": span(
                [r.timing["parse"] / r.timing["orjson_loads"] for r in mine_rows], fmt_ratio
            ),
            "serialize": span(
                [r.timing["serialize"] / r.timing["orjson_dumps"] for r in mine_rows], fmt_ratio
            ),
            "memory": span([r.memory["rss"] for r in mine_rows], fmt_ratio),
            "import": span(imps, fmt_s),
        }

    measured = {lib: figures(lib) for lib in ("pymedplum", PLAIN, "fhir.resources", "fhirclient")}
    big = [r for r in rows if r.lib == "pymedplum" and r.data.entries]
    srows = []
    for key, label in (
        ("parse", "parse (x orjson.loads)"),
        ("serialize", "serialize (x dumps)"),
        ("memory", "memory, RSS (x dicts)"),
        ("import", "cold import"),
    ):
        limit = TARGETS[key]
        target = f"<= {fmt_s(limit)}" if key == "import" else f"<= {limit:g}x"
        if key == "import":
            vals = [s for lb, lab, s in imports if lb == "pymedplum" and "first use" not in lab]
        elif key == "memory":
            vals = [r.memory["rss"] for r in rows if r.lib == "pymedplum"]
        else:
            den = "orjson_loads" if key == "parse" else "orjson_dumps"
            vals = [r.timing[key] / r.timing[den] for r in rows if r.lib == "pymedplum"]
        met = sum(v <= limit for v in vals)
        big_txt = "-"
        if key in ("parse", "serialize") and big:
            den = "orjson_loads" if key == "parse" else "orjson_dumps"
            big_txt = ", ".join(fmt_ratio(r.timing[key] / r.timing[den]) for r in big)
        elif key == "memory" and big:
            big_txt = ", ".join(fmt_ratio(r.memory["rss"]) for r in big)
        srows.append(
            [
                label,
                target,
                measured["pymedplum"][key],
                big_txt,
                f"{met}/{len(vals)}",
                measured[PLAIN][key] if key != "import" else "-",
                REFERENCE["pymedplum 0.6.0"][key],
                measured["fhir.resources"][key],
                REFERENCE["fhir.resources"][key],
                measured["fhirclient"][key],
            ]
        )
    out.append(
        table(
            [
                "figure",
                "target",
                "pymedplum",
                "big bundles",
                "meet",
                PLAIN,
                "0.6.0 (ref)",
                "fhir.resources",
                "f.r (ref)",
                "fhirclient",
            ],
            srows,
        )
    )
    out.append(
        f"(pymedplum / {PLAIN} / fhir.resources / fhirclient: range over the data sets above; "
        "big bundles: pymedplum's on Bundle all, Bundle common; memory: RSS ratio)"
    )
    out.append(
        f"({PLAIN}: pydantic v2 twins of the same types with none of FHIR's rules, lossy: "
        "the floor for any pydantic model tree of this shape)"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="benchmarks/models.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="small data, 1 repetition, 1 import run (a smoke test)"
    )
    parser.add_argument("--reps", type=int, default=None, help="timing repetitions (default 3)")
    parser.add_argument(
        "--without-fhir-resources",
        action="store_true",
        help="skip fhir.resources (its venv, .cache/bench-venv, is not created)",
    )
    parser.add_argument(
        "--without-fhirclient",
        action="store_true",
        help="skip fhirclient (its venv, .cache/bench-venv-fhirclient, is not created)",
    )
    args = parser.parse_args(argv)
    global DATA
    if args.quick:  # the smoke test's small data never replaces a full run's
        DATA = DATA / "quick"
    reps = args.reps or (1 if args.quick else 3)
    started = time.perf_counter()
    pythons: dict[str, Path | str] = {"pymedplum": sys.executable, PLAIN: sys.executable}
    DATA.mkdir(parents=True, exist_ok=True)
    plain_pydantic.write(PLAIN_MODELS)  # from the pymedplum classes of this checkout
    if not args.without_fhir_resources:
        pythons["fhir.resources"] = bench_python()
    if not args.without_fhirclient:
        pythons["fhirclient"] = bench_python(FHIRCLIENT_VENV, FHIRCLIENT)
    print("building data ...", flush=True)
    sets, info = build_data(args.quick, pythons)
    print(f"measuring ({time.perf_counter() - started:.0f} s) ...", flush=True)
    # tracemalloc (the retained size) explains the RSS figure; the smoke test skips it.
    rows = measure(sets, pythons, reps, ("rss",) if args.quick else ("rss", "traced"))
    print(f"cold imports ({time.perf_counter() - started:.0f} s) ...", flush=True)
    patient = next(d.path for d in sets if d.label == "Patient")
    # One entry per resource type that both libraries parse (the "Bundle common" warm-up;
    # "Bundle all" when fhir.resources is not run).
    bundles = {d.label.split(" (")[0]: d.warmup for d in sets if d.label.startswith("Bundle ")}
    every_type = bundles.get("Bundle common") or bundles["Bundle all"]
    types = len(
        {e["resource"]["resourceType"] for e in json.loads(every_type.read_bytes())["entry"]}
    )
    first_use: dict[str, list[tuple[str, str]]] = {}
    for lib in IMPORTS:
        label, code = FIRST_USE["fhirclient" if lib == "fhirclient" else "pydantic"]
        first_use[lib] = [
            (
                f"... then {label.format(cls='Patient')} (first use)",
                code.format(imp=IMPORTS[lib][0][1], cls="Patient", path=str(patient)),
            ),
            (
                f"... {label.format(cls='Bundle')}, one entry of each of {types} types (first use)",
                code.format(imp=BUNDLE_IMPORTS[lib], cls="Bundle", path=str(every_type)),
            ),
        ]
    imports = cold_imports(pythons, 1 if args.quick else 5, first_use, warm=not args.quick)
    print()
    print(report(rows, imports, info, reps))
    print(f"\n(total run time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

# One way to do each thing. `make demo` and `make test` do every set-up step themselves.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime

.PHONY: help install specs generate unasync check-generated lint typecheck unit test-pythons test demo record check-cassettes docs dist bench regen-check clean

help:
	@echo "make demo   - set up, start the local Medplum server, run examples/quickstart.py"
	@echo "make test   - set up, then lint, typecheck, regenerate-and-diff, all tests, docs build"
	@echo "make test-pythons - the unit suite on CPython 3.10 and 3.13 against the built wheel (make test runs it)"

# --- set-up -------------------------------------------------------------------
# The venv, created once with a current pip; both installs below use it.
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The package runs on Python 3.10+; the pinned development tools (vcrpy 9, hypothesis 6.169+,
# mkdocstrings 2) need 3.11+, so the full install says so up front instead of failing in pip.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "make test and the other development targets need Python 3.11+ (the package itself runs on 3.10): run them with PYTHON=python3.11 or newer, after make clean")'
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUNTIME_STAMP)

install: $(STAMP)

# What the demo needs: the package and its runtime dependencies (Python 3.10+).
$(RUNTIME_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

# Comparison libraries of benchmarks/ (orjson, aiohttp, fhirpy, ...); the benchmark smoke tests use them.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# --- local Medplum test server (tests/server) ---------------------------------------
# Pinned Node 22 from the npm registry into .cache/node, then `npm ci` in tests/server.
.PHONY: server-install
server-install:
	$(PYTHON) scripts/medplum_server.py install

# --- code generation ------------------------------------------------------------
# Refresh specs/ from the package registries and verify recorded checksums (network).
specs: install
	$(PY) -m codegen specs

# Regenerate every generated file from specs/ (no network, deterministic).
generate: install
	$(PY) -m codegen generate
	$(MAKE) unasync

# Derive src/pymedplum/_sync/ from src/pymedplum/_async/.
unasync: install
	$(PY) scripts/run_unasync.py

# Regenerating on this checkout must change nothing.
check-generated: install
	$(PY) -m codegen verify-specs
	$(PY) -m codegen generate
	$(PY) scripts/run_unasync.py --check
	git diff --exit-code -- src/pymedplum
	@test -z "$$(git status --porcelain --untracked-files=all -- src/pymedplum)" || { git status --porcelain -- src/pymedplum; echo "generated files are not committed"; exit 1; }

# --- quality ----------------------------------------------------------------------
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check src/pymedplum codegen

typecheck: install
	$(VENV)/bin/mypy

unit: install $(BENCH_STAMP)
	$(VENV)/bin/pytest -m "not integration and not examples"

# The unit suite on CPython 3.10 and 3.13 (the ends of the supported range; the venv above is
# 3.11) against the built wheel, in venvs of their own under .cache/pythons. An interpreter that
# is not on the machine is reported as NOT FOUND without failing; a failing test fails.
test-pythons: install
	$(PY) scripts/check_pythons.py

test: install $(BENCH_STAMP) server-install lint typecheck check-generated
	$(VENV)/bin/pytest
	$(MAKE) test-pythons
	$(MAKE) check-cassettes
	$(VENV)/bin/mkdocs build --strict --quiet

# --- the main job -----------------------------------------------------------------
demo: $(RUNTIME_STAMP) server-install
	$(PY) scripts/demo.py

# Re-record the HTTP cassettes of tests/replay against the local server (replay is the default).
record: install server-install
	$(VENV)/bin/pytest -q tests/replay --record-mode=rewrite

# The cassettes must be what the current test server answers: recording is deterministic (fixed
# clock, emptied server), so a change to tests/server that changes an answer shows up here.
check-cassettes: record
	git diff --exit-code -- tests/replay/cassettes || { echo "tests/replay/cassettes differ from what the test server answers now: commit the output of make record"; exit 1; }

docs: install
	$(VENV)/bin/mkdocs build --strict

dist: install
	rm -rf dist
	$(PY) -m build

# Generate models for another FHIR release (FHIR=r4b or r5) into a temporary directory and
# round-trip that release's official examples (npm packages, pinned in codegen/fhir_packages.json).
FHIR ?= r4b
regen-check: install
	$(PY) -m codegen.regen_check $(FHIR)

bench: install $(BENCH_STAMP)
	$(PY) benchmarks/client.py
	$(PY) benchmarks/clients_compare.py
	$(PY) benchmarks/models.py

clean:
	rm -rf $(VENV) .cache dist site .mypy_cache .ruff_cache .pytest_cache

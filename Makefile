# PENNY Sandbox: `make run` starts the service, `make test` runs every test. Both install what is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: run test unit integration bench profile image system lint typecheck clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

system:
	@bash deploy/scripts/ensure_system.sh

image: venv system
	@$(PY) deploy/sandbox/build_image.py

WORKERS ?= 1

run: venv image
	$(PY) deploy/stack.py --workers $(WORKERS)

test: venv image lint
	$(PY) -m pytest tests/unit -q
	$(PY) -m pytest tests/integration -q

unit: venv
	$(PY) -m pytest tests/unit -q

integration: venv image
	$(PY) -m pytest tests/integration -q

bench: venv image
	@bash deploy/scripts/ensure_bench_tools.sh
	@$(PY) -c 'import matplotlib' 2>/dev/null || $(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) bench/bench.py --workers 1

profile: venv image
	@bash deploy/scripts/ensure_bench_tools.sh
	@test -x $(VENV)/bin/py-spy || $(PY) -m pip install -q -e '.[dev,bench]'
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) bench/profile.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy core sandbox_runtime penny_client api workers

clean:
	rm -rf $(VENV) .cache

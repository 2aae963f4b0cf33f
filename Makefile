# PENNY Sandbox: `make run` starts the service, `make test` runs every test. Both install what is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: run test unit integration bench image system lint typecheck clean ts-client

# The TypeScript client (clients/typescript): `npm ci` when its lock file changed, tsc when a source did.
TS := clients/typescript
TS_INPUTS := $(shell find $(TS)/src $(TS)/test $(TS)/scripts -type f 2>/dev/null) $(TS)/package.json \
	$(TS)/tsconfig.json $(TS)/tsconfig.test.json

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

$(TS)/node_modules/.package-lock.json: $(TS)/package-lock.json $(TS)/package.json
	@command -v npm >/dev/null || bash deploy/scripts/ensure_system.sh
	cd $(TS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(TS)/build/.built: $(TS)/node_modules/.package-lock.json $(TS_INPUTS)
	cd $(TS) && npm run --silent build && npm run --silent build:test
	@touch $@

ts-client: $(TS)/build/.built

system:
	@bash deploy/scripts/ensure_system.sh

image: venv system
	@$(PY) deploy/sandbox/build_image.py

WORKERS ?= 1

run: venv image
	$(PY) deploy/stack.py --workers $(WORKERS)

test: venv image lint ts-client
	$(PY) -m pytest tests/unit -q
	$(PY) -m pytest tests/integration -q

unit: venv ts-client
	$(PY) -m pytest tests/unit -q

integration: venv image ts-client
	$(PY) -m pytest tests/integration -q

bench: venv image
	$(PY) bench/bench.py --workers 1
	$(PY) bench/bench.py --workers 2 --sessions 0

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy core sandbox_runtime penny_client api workers

clean:
	rm -rf $(VENV) .cache $(TS)/node_modules $(TS)/dist $(TS)/build

# PENNY Sandbox: `make run` starts the service, `make test` runs every test. Both install what is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: run test unit integration bench image system browser web lint typecheck clean docs-page openapi

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# The /docs page's Swagger UI files (docs/api-page/, from its committed lock file; no install scripts).
DOCS_PAGE := docs/api-page/node_modules/.installed
$(DOCS_PAGE): docs/api-page/package-lock.json
	cd docs/api-page && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

docs-page: $(DOCS_PAGE)

# The OpenAPI document the API serves, without a server: make openapi OUT=openapi.json
OUT ?= openapi.json
openapi: venv
	$(PY) -m api.openapi --out $(OUT)

system:
	@bash deploy/scripts/ensure_system.sh

image: venv system
	@$(PY) deploy/sandbox/build_image.py

# The web playground (web/): npm ci when the lock file changed, the Vite build when a source is newer than it.
# Playwright (npm) never downloads a browser: the tests drive Debian's chromium (`make browser`).
WEB_STAMP := web/node_modules/.installed-$(shell sha256sum web/package-lock.json | cut -c1-12)
WEB_SOURCES := $(shell find web/src web/index.html web/vite.config.ts web/tsconfig.json web/package.json -type f 2>/dev/null)

$(WEB_STAMP): web/package-lock.json
	cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	@rm -f web/node_modules/.installed-* && touch $@

web/dist/index.html: $(WEB_STAMP) $(WEB_SOURCES)
	cd web && npm run --silent build
	@touch $@

web: web/dist/index.html

browser:
	@bash deploy/scripts/ensure_browser.sh

WORKERS ?= 1

run: venv image docs-page web
	$(PY) deploy/stack.py --workers $(WORKERS)

test: venv image docs-page lint web browser
	$(PY) -m pytest tests/unit -q
	$(PY) -m pytest tests/integration -q

unit: venv
	$(PY) -m pytest tests/unit -q

integration: venv image docs-page web browser
	$(PY) -m pytest tests/integration -q

bench: venv image
	$(PY) bench/bench.py --workers 1
	$(PY) bench/bench.py --workers 2 --sessions 0

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy core sandbox_runtime penny_client api workers

clean:
	rm -rf $(VENV) .cache web/node_modules web/dist

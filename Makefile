# PENNY Sandbox: `make run` starts the service, `make test` runs every test. Both install what is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: run test unit integration bench profile image system gvisor gvisor-if-needed browser web lint typecheck clean docs-page openapi ts-client test-gvisor

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

$(TS)/node_modules/.package-lock.json: $(TS)/package-lock.json $(TS)/package.json
	@command -v npm >/dev/null || bash deploy/scripts/ensure_system.sh
	cd $(TS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

$(TS)/build/.built: $(TS)/node_modules/.package-lock.json $(TS_INPUTS)
	cd $(TS) && npm run --silent build && npm run --silent build:test
	@touch $@

ts-client: $(TS)/build/.built

system:
	@bash deploy/scripts/ensure_system.sh

# gVisor (runsc) registered with dockerd as the runtime `runsc`: the gvisor isolation tier (core.isolation).
gvisor: system
	@bash deploy/scripts/ensure_gvisor.sh

# Only when a tier needs it: SANDBOX_RUNTIME=runsc or a gvisor entry in TENANT_ISOLATION.
gvisor-if-needed: system
	@if [ "$${SANDBOX_RUNTIME:-}" = runsc ] || [[ "$${TENANT_ISOLATION:-}" == *gvisor* ]]; then \
		bash deploy/scripts/ensure_gvisor.sh; fi

image: venv system
	@$(PY) deploy/sandbox/build_image.py

# The web playground (web/, on the TypeScript client): npm ci when the lock file changed, the Vite build when a
# source of it or the client is newer than it.
# Playwright (npm) never downloads a browser: the tests drive Debian's chromium (`make browser`).
WEB_STAMP := web/node_modules/.installed-$(shell sha256sum web/package-lock.json | cut -c1-12)
WEB_SOURCES := $(shell find web/src web/index.html web/vite.config.ts web/tsconfig.json web/package.json -type f 2>/dev/null)

$(WEB_STAMP): web/package-lock.json
	cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	@rm -f web/node_modules/.installed-* && touch $@

web/dist/index.html: $(WEB_STAMP) $(WEB_SOURCES) $(TS)/build/.built
	cd web && npm run --silent build
	@touch $@

web: web/dist/index.html

browser:
	@bash deploy/scripts/ensure_browser.sh

WORKERS ?= 1

run: venv image gvisor-if-needed docs-page web
	$(PY) deploy/stack.py --workers $(WORKERS)

test: venv image gvisor docs-page lint ts-client web browser
	$(PY) -m pytest tests/unit -q
	$(PY) -m pytest tests/integration -q

unit: venv ts-client
	$(PY) -m pytest tests/unit -q

integration: venv image gvisor docs-page ts-client web browser
	$(PY) -m pytest tests/integration -q

# The suites marked `tiers` (correctness, limits, attacks, sessions, files...) on the gVisor tier only; `make test`
# runs them on both tiers.
test-gvisor: venv image gvisor
	$(PY) -m pytest tests/integration -q -m tiers --tiers gvisor

bench: venv image gvisor
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
	rm -rf $(VENV) .cache $(TS)/node_modules $(TS)/dist $(TS)/build web/node_modules web/dist

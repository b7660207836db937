# Every target creates or reuses the virtual environment in .venv, so a fresh machine
# with python3, pip and make is enough.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The official Node.js SDK, for tests/node_sdk (npm ci installs exactly the lock file).
NODE_SDK := tests/node_sdk/node_modules/.package-lock.json
$(NODE_SDK): tests/node_sdk/package-lock.json $(STAMP)
	cd tests/node_sdk && PATH="$(CURDIR)/$(BIN):$$PATH" npm ci --no-audit --no-fund --loglevel=error

# Segment's Analytics.js 2.0, bundled into one file for the page in tests/browser_sdk.
BROWSER_SDK := tests/browser_sdk/dist/analytics.js
$(BROWSER_SDK): tests/browser_sdk/package-lock.json tests/browser_sdk/entry.js $(STAMP)
	cd tests/browser_sdk && PATH="$(CURDIR)/$(BIN):$$PATH" npm ci --no-audit --no-fund --loglevel=error
	cd tests/browser_sdk && PATH="$(CURDIR)/$(BIN):$$PATH" npm run --silent build

# Debian's chromium for the browser tests (Playwright drives it; no browser download).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
		|| (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium); \
	else echo "the browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi

install: $(STAMP)

run: $(STAMP)
	$(BIN)/patron demo
	$(BIN)/patron serve --host 127.0.0.1 --port 8000

test: $(STAMP) $(NODE_SDK) $(BROWSER_SDK) $(CHROMIUM)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) patron.duckdb patron.duckdb.wal

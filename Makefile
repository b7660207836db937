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
$(NODE_SDK): tests/node_sdk/package-lock.json
	cd tests/node_sdk && npm ci --no-audit --no-fund --loglevel=error

install: $(STAMP)

run: $(STAMP)
	$(BIN)/patron demo
	$(BIN)/patron serve --host 127.0.0.1 --port 8000

test: $(STAMP) $(NODE_SDK)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) patron.duckdb patron.duckdb.wal

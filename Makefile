# Two commands: `make up` runs the floor, `make test` runs the checks and the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: up test test-hud test-long chaos install lint typecheck pytest chromium clean

up: install
	$(BIN)/floor up

test: install chromium lint typecheck pytest

install: $(VENV)/.installed web/node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The HUD's browser packages (web/package.json pins them): installed, never committed, no lock file.
web/node_modules/.installed: web/package.json
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nodejs npm; }
	cd web && npm install --no-package-lock --omit=peer --no-audit --no-fund --loglevel=error
	touch $@

# Browser tests drive Debian's Chromium; install it only where it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest --durations=30

# Only the HUD's browser tests (Chromium against the whole floor); `make test` runs them too.
test-hud: install chromium
	$(BIN)/pytest tests/hud

# The chaos and soak runs of minutes each (marked `long`), left out of `make test`.
test-long: install chromium
	$(BIN)/pytest -m long

# Every chaos scenario (tests/chaos): faults injected into a floor of its own while 500 signed
# commands stream; `make test` runs the quick ones (primary frozen, primary killed, hot path killed).
chaos: install
	$(BIN)/pytest -m chaos tests/chaos --durations=0

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache web/node_modules tests/artifacts

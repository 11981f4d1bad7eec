# Two entry points: `make demo` and `make test`. Everything else is a step they depend on.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint unit unit-moved-clock tools asyncapi-parser dashboard-assets bench bench-quick clean

install: $(STAMP) dashboard-assets

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "yekuo-hub needs Python 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/yekuo demo $(DEMO_ARGS)

# bandit scans the shipped packages (its justified skips are in pyproject.toml); pip-audit checks the installed
# dependencies against the advisory database and lists any package it could not look up.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/yekuo check-config
	$(BIN)/bandit -q -r ground pipeline yekuo canonical_model adapters mappings routes bus store workflow api simulators feasibility subscriptions forecast assistant -c pyproject.toml
	$(BIN)/pip-audit --skip-editable --progress-spinner off

# The unit tests share nothing but the machine, so they run on every core (pytest-xdist); the tests that drive
# the services run one at a time, as some restart the broker or start hub processes of their own.
test: install lint tools
	$(BIN)/pytest -n auto tests/unit
	$(BIN)/pytest --ignore=tests/unit
	$(MAKE) --no-print-directory unit-moved-clock

# The unit tests again with the system clock 400 days ahead (Debian's libfaketime): a test that mixes a fixed
# date with the wall clock, or code that reads the wall clock behind the hub's clock, fails here. The monotonic
# clock stays real (see tests/moved_clock.py). It runs in one process: under libfaketime pytest-xdist's
# workers ran several times slower than one process.
unit-moved-clock: install tools
	FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '+400d' $(BIN)/python -m pytest tests/unit -q -p no:cacheprovider -p tests.moved_clock

# Tools the tests drive (libfaketime, poppler-utils and chromium from Debian, the AsyncAPI parser from npm);
# installed once, when missing. poppler's pdftotext and pdftoppm read back the supply-scheme reply PDF;
# Playwright drives Debian's chromium in the browser tests (tests/browser), never a browser of its own.
tools: asyncapi-parser
	@command -v faketime >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null; }
	@command -v pdftotext >/dev/null && command -v pdftoppm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; }
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The official AsyncAPI parser (pinned in tools/asyncapi/package-lock.json), from npm; installed once, when missing.
ASYNCAPI_PARSER := tools/asyncapi/node_modules/@asyncapi/parser/package.json

asyncapi-parser: $(ASYNCAPI_PARSER)

$(ASYNCAPI_PARSER): tools/asyncapi/package-lock.json
	cd tools/asyncapi && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# The dashboard's charting library (Apache ECharts, pinned in tools/echarts/package-lock.json), from npm;
# installed once, when missing, and its built file copied where the hub serves it (/ui/static/vendor/).
ECHARTS_SOURCE := tools/echarts/node_modules/echarts/dist/echarts.min.js
ECHARTS_SERVED := api/ui/static/vendor/echarts.min.js

dashboard-assets: $(ECHARTS_SERVED)

$(ECHARTS_SOURCE): tools/echarts/package-lock.json
	cd tools/echarts && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

$(ECHARTS_SERVED): $(ECHARTS_SOURCE)
	mkdir -p $(dir $@)
	cp $< $@

unit: install
	$(BIN)/pytest -n auto tests/unit

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache api/ui/static/vendor

# Benchmarks against the machine's RabbitMQ and PostgreSQL; the table goes to stdout, every figure to
# bench/results/latest.json. bench-quick runs the same table with smaller sizes in under three minutes.
bench: install
	$(BIN)/python -m bench

bench-quick: install
	$(BIN)/python -m bench --quick

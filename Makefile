# Two entry points: `make demo` and `make test`. Everything else is a step they depend on.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint unit bench bench-quick clean

install: $(STAMP)

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
	$(BIN)/yekuo check-config
	$(BIN)/bandit -q -r yekuo canonical_model adapters mappings routes bus store workflow api simulators feasibility scenario subscriptions -c pyproject.toml
	$(BIN)/pip-audit --skip-editable --progress-spinner off

test: install lint
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# Benchmarks against the machine's RabbitMQ and PostgreSQL; the table goes to stdout, every figure to
# bench/results/latest.json. bench-quick runs the same table with smaller sizes in under three minutes.
bench: install
	$(BIN)/python -m bench

bench-quick: install
	$(BIN)/python -m bench --quick

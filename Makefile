# One way to run things. Every target creates or reuses .venv, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test lint fmt clean up race bench

setup: $(STAMP)

# Re-installs only when pyproject.toml changes, so `make setup` is idempotent and fast the second time.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

test: setup
	$(BIN)/pytest -n 2 --dist loadgroup

# The local stack in the foreground: localcloud + template.yaml, API, MQTT, status page.
up: setup
	$(BIN)/alleycat up

# A default local race with the live view: 1,000 racers, 300 s (starts a local stack if none runs).
RACERS   ?= 1000
DURATION ?= 300
race: setup
	$(BIN)/alleycat race --racers $(RACERS) --duration $(DURATION)

# Every benchmark (~6 minutes): a table, bench/results/latest.json and plots; see BENCHMARKS.md.
bench: setup
	$(BIN)/python bench/run_all.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy leaderboard consumers producers simulator localcloud alleycat
	$(BIN)/cfn-lint template.yaml

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .alleycat .pytest_cache .mypy_cache .ruff_cache .aws-sam

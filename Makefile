# One way to run things. A fresh clone needs only Python 3.11+: `make setup` installs uv (pinned) into
# .tools/, and uv installs exactly what uv.lock pins into .venv (alleycat, and localcloud from
# localcloud/ as a workspace member). Every target below runs `setup` first.
PYTHON     ?= python3
UV_VERSION := 0.13.8
TOOLS      := .tools
UV         := $(TOOLS)/bin/uv
VENV       := .venv
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.installed
# localcloud's own environment: only localcloud and its test dependencies, to prove it stands alone.
LC_VENV    := localcloud/.venv
LC_STAMP   := $(LC_VENV)/.installed
# actionlint (the GitHub Actions workflow linter; it runs shellcheck on run: blocks when shellcheck is
# installed) is a Go program: built from source, pinned, into .tools/bin.
ACTIONLINT_VERSION := 1.7.12
ACTIONLINT := $(TOOLS)/bin/actionlint
# uv never downloads a Python of its own (the machine's 3.11+ is used) and never asks before installs.
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

.PHONY: setup lock test test-alleycat test-localcloud lint lint-patterns fmt clean up race bench build viewer-bundle fidelity

setup: $(STAMP)

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Installs exactly the lock; fails (and says so) when pyproject.toml and uv.lock disagree: run `make lock`.
$(STAMP): pyproject.toml localcloud/pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --quiet --python $(PYTHON)
	@touch $@

$(LC_STAMP): localcloud/pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(LC_VENV) $(UV) sync --locked --quiet --python $(PYTHON) \
		--package localcloud --extra test --no-default-groups
	@touch $@

$(ACTIONLINT): | $(UV)
	@command -v go >/dev/null 2>&1 || { echo "error: building actionlint needs Go (https://go.dev/dl/); install it and run make again" >&2; exit 1; }
	GOBIN=$(abspath $(TOOLS)/bin) go install github.com/rhysd/actionlint/cmd/actionlint@v$(ACTIONLINT_VERSION)

# Re-resolves uv.lock after a change to either pyproject.toml (or to pick up new releases within bounds).
lock: $(UV)
	$(UV) lock --upgrade

# The whole suite: localcloud's in its own environment (nothing of alleycat installed), then alleycat's.
# Most integration tests wait on stream windows and timers rather than compute (a run keeps two cores
# about half busy), so more workers than cores shorten the suite; heavy modules keep one stack per
# xdist group. The slowest tests are listed at the end.
TEST_WORKERS ?= 4
PYTEST_ARGS  := -n $(TEST_WORKERS) --dist loadgroup --durations=15
test: test-localcloud test-alleycat

test-localcloud: $(LC_STAMP)
	cd localcloud && .venv/bin/pytest $(PYTEST_ARGS)

# localcloud's event source mappings against behaviour recorded on AWS; the last line reads
# "fidelity: N of M recorded scenarios match" (the suite also runs inside test-localcloud).
fidelity: $(LC_STAMP)
	cd localcloud && .venv/bin/pytest -q tests/fidelity tests/test_fidelity_*.py

test-alleycat: setup
	$(BIN)/pytest $(PYTEST_ARGS)

# One lean artifact per function under .aws-sam/build (functions/Makefile); `alleycat up` runs them.
build: setup
	$(BIN)/sam build

# The viewer page's mqtt.js bundle, rebuilt from web/package-lock.json (needs Node.js; the bundle is
# committed, so nothing else needs Node).
viewer-bundle:
	cd web && npm ci --no-audit --no-fund && npm run build

# The local stack in the foreground: localcloud + template.yaml, API, MQTT, status page.
up: setup
	$(BIN)/alleycat up

# A default local race with the live view: 1,000 racers, 300 s (starts a local stack if none runs).
RACERS   ?= 1000
DURATION ?= 300
race: setup
	$(BIN)/alleycat race --racers $(RACERS) --duration $(DURATION)

# Every benchmark (~11 minutes): a table, bench/results/latest.json and plots; see BENCHMARKS.md.
bench: setup
	$(BIN)/python bench/run_all.py

lint: setup $(ACTIONLINT)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy leaderboard consumers producers simulator alleycat streamformat localcloud/src/localcloud \
		scripts functions/build.py
	$(BIN)/cfn-lint template.yaml pipeline.yaml
	$(ACTIONLINT)
	$(MAKE) --no-print-directory lint-patterns

# Each pattern stack is linted as the standalone project it is: its functions are all app.py, checked
# one at a time against the pattern's shared layer.
LIFO := patterns/lifo-queue
IMAGES := patterns/image-proxy
lint-patterns: setup
	$(BIN)/cfn-lint $(LIFO)/template.yaml $(LIFO)/baseline/template.yaml
	$(BIN)/mypy $(LIFO)/src/shared $(LIFO)/lifo_load.py $(LIFO)/lifo_measure.py
	for app in $(LIFO)/src/*/app.py; do MYPYPATH=$(LIFO)/src/shared $(BIN)/mypy $$app || exit 1; done
	$(BIN)/cfn-lint $(IMAGES)/template.yaml
	$(BIN)/mypy $(IMAGES)/src/shared
	for app in $(IMAGES)/src/*/app.py; do MYPYPATH=$(IMAGES)/src/shared $(BIN)/mypy $$app || exit 1; done

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(LC_VENV) $(TOOLS) .alleycat .pytest_cache .mypy_cache .ruff_cache .aws-sam

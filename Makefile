# The two commands a newcomer needs: `make demo` and `make test`.
# Each creates .venv when missing and installs the project into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# No telemetry, ever: nothing may need the network at run time. creditflow/__init__.py sets
# the offline defaults (OFFLINE_DEFAULTS) before Prefect or Great Expectations is imported.

.PHONY: demo test lint format bench suites clean install browser

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "creditflow needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/creditflow demo

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m tests.support.layers  # lint-imports over the assembled package
	$(BIN)/pytest -n 2 --dist loadgroup

# The run report's tests open it in a real headless browser: Debian's chromium, installed
# once (needs root and Debian's package archive; nothing else reaches the network).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every stage against its bare engine, and the whole night, at 10k, 100k and 1M customers
# (books built outside the repository). Narrow it with e.g. BENCH_ARGS="--scale 100000".
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

# Render the Great Expectations suites into transforms/ingest/expectations/ after changing a rule.
suites: $(STAMP)
	$(BIN)/python -c 'from creditflow.transforms.ingest.validation import write_suites; [print(p) for p in write_suites()]'

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

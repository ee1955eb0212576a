# A newcomer needs two commands: `make run` and `make test`. Everything else is here too.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 3000

.PHONY: install run dev test test-fast lint format lock bench-sim bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev extras (pinned)

run: install ## API + workers + simulator in one process, on SQLite
	$(BIN)/order-engine serve --host $(HOST) --port $(PORT)

dev: install ## like run, with auto-reload on source changes
	$(BIN)/order-engine serve --host $(HOST) --port $(PORT) --reload

test: install ## the whole suite
	$(BIN)/python -m pytest

test-fast: install ## unit and contract tests only
	$(BIN)/python -m pytest tests/unit tests/contract -q

lint: install ## ruff + mypy strict (src and tests: pyproject.toml [tool.mypy] files)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

bench-sim: install ## quotes/s and routing decisions/s per venue type
	$(BIN)/order-engine bench-sim

BENCH_SECTION ?= latest
BENCH_ONLY    ?=
BENCH_NOTE    ?=
bench: install ## standard load scenarios (embedded engine, each bounded) -> docs/performance.md
	$(BIN)/python -m order_engine.bench.scenarios --doc docs/performance.md \
		--section '$(BENCH_SECTION)' --only '$(BENCH_ONLY)' --note '$(BENCH_NOTE)'

lock: ## re-pin constraints.txt from pyproject.toml
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra dev -p 3.11 --no-header --no-annotate -o constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache order_engine.db

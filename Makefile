# aion: one command to set up and run the demo, one to set up and run the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SESSION := var/sessions/2022-11-11.session.gz

.PHONY: help setup demo session scan dashboard test check format clean bench evaluate

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/aion: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	@touch $@

setup: $(BIN)/aion  ## create .venv and install aion with its test and dev tools

$(SESSION): $(BIN)/aion
	@mkdir -p $(dir $@)
	@$(BIN)/aion session build --bars aion/data/intraday_1min_2022-11-11 --date 2022-11-11 --out $@

session: $(SESSION)  ## build the bundled real 2022-11-11 NSE session file

demo: $(SESSION)  ## set up, then scan the real 2022-11-11 session at max speed into aion's own Redis
	AION_DATA_DIR=$${AION_DATA_DIR:-var/data} $(BIN)/aion scan --replay $(SESSION) --speed max --patterns all

scan: demo  ## alias of demo

dashboard: $(BIN)/aion  ## after make demo: serve the read-only dashboard on its data at http://127.0.0.1:8050/
	AION_DATA_DIR=$${AION_DATA_DIR:-var/data} $(BIN)/aion dashboard

test: $(BIN)/aion  ## set up, then run the whole test suite (unit + integration, real redis-server)
	$(BIN)/python -m pytest -q

bench: $(BIN)/aion  ## benchmarks vs same-run baselines, then the dashboard's page figures (~8 min, not part of test) -> bench/results/latest.{json,md}
	$(BIN)/python -m bench.run

evaluate: $(BIN)/aion  ## every bundled session built, replayed, validated against the random baseline (2-4 min, not part of test) -> var/evaluation/
	$(BIN)/aion evaluate --out-dir var/evaluation

check: $(BIN)/aion  ## ruff format check, ruff lint, mypy
	$(BIN)/ruff format --check aion tests
	$(BIN)/ruff check aion tests
	$(BIN)/mypy aion

format: $(BIN)/aion  ## apply ruff formatting and autofixes
	$(BIN)/ruff format aion tests
	$(BIN)/ruff check --fix aion tests

clean:  ## remove the venv, built sessions and local data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

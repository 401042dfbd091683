# The two commands a newcomer needs: `make dev` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp is rebuilt whenever the project's dependencies change, so a stale venv is refreshed.
STAMP  := $(VENV)/.installed

.PHONY: dev test test-long lint typecheck unit bench profile crds docs clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

dev: $(STAMP)
	$(BIN)/gati-operator dev

lint: $(STAMP)
	$(BIN)/ruff check libs services tests bench
	$(BIN)/ruff format --check libs services tests bench

typecheck: $(STAMP)
	$(BIN)/mypy libs services

test: lint typecheck
	$(BIN)/pytest -m "not long"

test-long: $(STAMP)
	$(BIN)/pytest -m long

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench

profile: $(STAMP) ; $(BIN)/python -m bench.profile

crds: $(STAMP)
	$(BIN)/gati-operator crds --out deploy/crds
	$(BIN)/gati-operator schemas --out docs/schemas

docs: $(STAMP)
	$(BIN)/gati-operator docs --out docs/reference

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# Every target sets up .venv itself (Python >= 3.10, no manual installs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# test processes (pytest-xdist), each with its own PostgreSQL and local server
PYTEST_WORKERS ?= 2

.PHONY: demo test lint docs bench bench-full clean help

help:
	@echo "make demo   - run an agent-memory session on the embedded local server"
	@echo "make test   - lint, build the docs (warnings are errors) and run the whole test suite"
	@echo "make docs   - build the Sphinx docs into docs/_build/html"
	@echo "make bench  - reduced users x sessions benchmark (baseline vs optimized) into bench-out/"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-%: setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[$*]"
	@touch $@

demo: $(VENV)/.installed-server
	$(PY) -m deeplake_sdk.demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

docs: $(VENV)/.installed-docs
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist worksteal

bench: $(VENV)/.installed-bench
	$(BIN)/deeplake-sdk bench --users 5,20,50 --sessions 1,5 --rounds 5 \
	    --mode baseline,optimized --profile beta --seed 7 --out bench-out

bench-full: $(VENV)/.installed-bench
	$(BIN)/deeplake-sdk bench --users 5,10,20,50,100 --sessions 1,3,5,10 --rounds 5 \
	    --mode baseline,optimized --profile beta --seed 7 --out docs/bench

clean:
	rm -rf $(VENV) docs/_build bench-out .pytest_cache .ruff_cache

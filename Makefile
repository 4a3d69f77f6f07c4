# make demo / make test do all the set-up on a fresh machine: a .venv, torch
# pinned first (on this project's machines pip resolves torch==2.13.0 to a local
# CPU wheel, so no CUDA packages are pulled), then gendist with its extras.
# With another torch build already wanted, skip the pin: make test TORCH=
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
export OMP_WAIT_POLICY := PASSIVE
export HYPOTHESIS_PROFILE ?= ci

.PHONY: install test demo bench lint clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH),$(BIN)/python -m pip install -q "$(TORCH)")
	$(BIN)/python -m pip install -q -e ".[test,bench,data,plot]"
	touch $@

install: $(BIN)/.installed

test: install
	$(BIN)/ruff check gendist tests benchmarks examples docs
	$(BIN)/python -m pytest

demo: install
	$(BIN)/python examples/demo.py

bench: install
	$(BIN)/python benchmarks/speed.py

lint: install
	$(BIN)/ruff check gendist tests benchmarks examples docs

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

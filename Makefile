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
	$(BIN)/python -m pytest -n 2 --dist loadfile

# the main job on the bundled digits: about 1.5 minutes on 2 CPU cores; the run folder
# runs/demo is replaced on each `make demo` (--force), never anything else
demo: install
	$(BIN)/gendist fit --data digits --model nsf --epochs 60 --batch-size 100 --lr 2e-3 \
		--transforms 5 --hidden 256 256 --out runs/demo --force --quiet

bench: install
	$(BIN)/python benchmarks/speed.py

lint: install
	$(BIN)/ruff check gendist tests benchmarks examples docs

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

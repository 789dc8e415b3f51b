# Two commands on a fresh machine:  `make train` (the main job) and `make test` (the tests).
# Each creates its own virtual environment in .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: train test data bench gradcheck clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,plot]'
	touch $@

data:
	@bash scripts/install-data.sh

train: $(VENV)/.installed data
	$(PY) -m fnn train --model mlp --dataset fashion-mnist --epochs 10 $(ARGS)  # into the next free runs/mlp-NNN

test: $(VENV)/.installed data
	$(VENV)/bin/ruff check fnn tests examples benchmarks
	$(PY) -m pytest -n 2 --durations=15 $(ARGS)

gradcheck: $(VENV)/.installed
	$(PY) -m fnn gradcheck

$(VENV)-bench/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)-bench
	$(VENV)-bench/bin/python -m pip install -q --upgrade pip
	$(VENV)-bench/bin/python -m pip install -q -e '.[bench,plot]'
	touch $@

bench: $(VENV)-bench/.installed data
	$(VENV)-bench/bin/python benchmarks/peers.py $(ARGS)

clean:
	rm -rf $(VENV) $(VENV)-bench .pytest_cache

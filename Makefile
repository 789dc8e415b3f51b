# Two commands on a fresh machine:  `make train` (the main job) and `make test` (the tests).
# Each creates its own virtual environment in $(VENV) and installs what it needs; pip's output
# goes to $(VENV)/install.log, and only a failure shows its last lines.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
EXTRAS ?= dev,plot
BENCH_EXTRAS ?= bench,plot

.PHONY: train test data bench gradcheck clean

# $(call install,VENV_DIR,EXTRAS): a venv with fnn installed in editable mode, quietly.
define install
	@mkdir -p $(1)
	@echo "installing fnn and its dependencies into $(1) (log: $(1)/install.log) ..."
	@{ $(PYTHON) -m venv $(1) && \
	   $(1)/bin/python -m pip install --disable-pip-version-check --upgrade pip && \
	   $(1)/bin/python -m pip install --disable-pip-version-check -e '.[$(2)]'; } > $(1)/install.log 2>&1 || \
	 { echo "install failed; the last 20 lines of $(1)/install.log:"; tail -n 20 $(1)/install.log; \
	   echo "full log: $(1)/install.log"; exit 1; }
	@touch $(1)/.installed
endef

$(VENV)/.installed: pyproject.toml
	$(call install,$(VENV),$(EXTRAS))

data:
	@bash scripts/install-data.sh

train: $(VENV)/.installed data
	$(PY) -m fnn train $(ARGS)  # the defaults: the MLP on Fashion-MNIST, 10 epochs, into the next free runs/mlp-NNN

test: $(VENV)/.installed data
	$(VENV)/bin/ruff check fnn tests examples benchmarks
	$(PY) -m pytest -n 2 --dist loadfile --durations=15 $(ARGS)

gradcheck: $(VENV)/.installed
	$(PY) -m fnn gradcheck

$(VENV)-bench/.installed: pyproject.toml
	$(call install,$(VENV)-bench,$(BENCH_EXTRAS))

# every benchmark into benchmarks/results/<date>.md; ARGS="--only peers" runs peers.py alone,
# ARGS="--quick" is a smoke test (see benchmarks/README.md)
bench: $(VENV)-bench/.installed data
	$(VENV)-bench/bin/python benchmarks/run_all.py $(ARGS)

clean:
	rm -rf $(VENV) $(VENV)-bench .pytest_cache

# Two commands: `make demo` and `make test`. Both create .venv and install the project on first
# use; the install is redone only when pyproject.toml changes (the stamp file tracks it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/forecast quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check forecast tests benchmarks

# torch is a benchmark peer only (torch.nn.LSTM), never a dependency of the project.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python benchmarks/bench_windows.py
	$(BIN)/python benchmarks/bench_lstm.py
	$(BIN)/python benchmarks/ett.py --check

clean:
	rm -rf $(VENV) build *.egg-info

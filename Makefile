# Two entry points (README "Set up"): `make demo` trains the main job, `make test` runs the tests.
# Both create .venv and install cnnlab into it from scratch if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned here, not in pyproject: 2.13.0 is the local CPU wheel on the development
# machine and the normal CUDA build from PyPI on a GPU machine.
TORCH ?= torch==2.13.0

.PHONY: install demo test test-all bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,jets]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/cnnlab train

test: install
	$(PY) -m pytest

test-all: install
	$(PY) -m pytest -m ""

bench: install
	$(PY) benchmarks/lenet_cpu.py

clean:
	rm -rf $(VENV) runs .pytest_cache

# The two commands: `make run` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BACKEND := $(or $(LLAMAQL_BACKEND),cpu)
MODEL := models/SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: install run test lint vulkan bench model schema clean

install: $(VENV)/.deps llama model

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip

$(VENV)/.deps: pyproject.toml $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

llama: $(VENV)/bin/python
	LLAMAQL_BACKEND=$(BACKEND) VENV=$(VENV) bash scripts/install-llama.sh

model: $(MODEL)

$(MODEL): | $(VENV)/bin/python
	$(PY) scripts/fetch-model.py models

run: install
	$(VENV)/bin/llamaql serve

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.deps
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src

vulkan:
	$(MAKE) install LLAMAQL_BACKEND=vulkan

bench: install $(VENV)/.bench-deps
	$(PY) -m bench $(BENCH_ARGS)

$(VENV)/.bench-deps: pyproject.toml $(VENV)/.deps
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,bench]"
	touch $@

schema: $(VENV)/.deps
	$(VENV)/bin/llamaql export-schema > schema.graphql

clean:
	rm -rf $(VENV) .build .pytest_cache .mypy_cache .ruff_cache

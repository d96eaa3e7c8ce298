# Developer entry points. Every target runs inside the project venv in .venv,
# which `make venv` (re)builds whenever pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

# The stamp, not the venv folder, carries the timestamp: the folder's mtime
# changes whenever pip touches it, which would reinstall on every run. The
# editable install records the top-level packages that exist when it runs, so
# a new package (a new */__init__.py) needs a reinstall too.
$(STAMP): pyproject.toml $(wildcard */__init__.py)
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --upgrade pip
	$(VENV_PY) -m pip install -e '.[dev]'
	touch $(STAMP)

demo: venv
	$(VENV_PY) -m cli.demo

test: venv
	$(VENV_PY) -m pytest -q -ra

lint: venv
	$(VENV_PY) -m ruff check .
	$(VENV_PY) -m ruff format --check .

bench: venv
	$(VENV_PY) -m benchmarks.rotation

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache output
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +

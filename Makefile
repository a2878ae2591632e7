# Two commands for a fresh machine (Python 3.11+):
#   make demo   - full pipeline on the built-in sample world
#   make test   - the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: demo test test-slow test-qgis imports venv clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/xsomo demo --out $(DEMO_OUT)

# The import contract ([tool.importlinter] in pyproject.toml) first: a few seconds, and a broken layer
# fails the run before the tests start.
test: imports
	$(PY) -m pytest -q

imports: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-qgis: $(STAMP)
	bash plugins/qgis/tests/run_qgis_tests.sh

bench: $(STAMP)
	for f in bench/*.py; do $(PY) $$f; done

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache

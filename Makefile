# Two entry points: `make demo` (end-to-end on synthetic data) and `make test`.
# Both create .venv and install the pinned requirements on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_output

.PHONY: demo test lint venv clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e . --config-settings editable_mode=compat
	$(PY) -m data_tools build-native --quiet || true
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m tfdsmlp demo --out $(DEMO_DIR)

test: $(STAMP)
	$(PY) -m pytest -q tests

# ruff (pinned in requirements.txt; rules in pyproject.toml) over the
# package, the converter and the tests.
lint: $(STAMP)
	$(PY) -m ruff check tfdsmlp data_tools tests

clean:
	rm -rf $(DEMO_DIR) .pytest_cache

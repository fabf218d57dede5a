# Two entry points: `make demo` (end-to-end on synthetic data) and `make test`.
# Both create .venv and install the pinned requirements on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_output

.PHONY: demo test lint venv clean peer

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

# Two pytest-xdist workers, one test file each at a time (module and
# session fixtures are built once per worker). On this 2-core machine the
# suite took 9:21 this way against 13:34-14:43 in one process (2026-12-05,
# sessions 15 and 16, other jobs paused). TEST_WORKERS=0 runs it in one
# process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

# ruff (pinned in requirements.txt; rules in pyproject.toml) over the
# package, the converter and the tests.
lint: $(STAMP)
	$(PY) -m ruff check tfdsmlp data_tools tests

# The PyTorch reference library for `bench --peer fuxictr`, in its own
# environment (never needed by demo or test).
PEER_VENV := .venv-peer
peer: $(PEER_VENV)/.installed

$(PEER_VENV)/.installed: requirements-peer.txt
	test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet -r requirements-peer.txt
	touch $@

clean:
	rm -rf $(DEMO_DIR) .pytest_cache

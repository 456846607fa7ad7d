# Two commands do everything on a fresh clone: `make run` and `make test` (`make test-all`: the full suite, as CI).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-all lint contract setup data bench browser serve clean-venv

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.11")'
	@test -x $(VENV)/bin/pip || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV) || { \
	  echo "could not create $(VENV): on Debian/Ubuntu install python3-venv (apt-get install python3-venv)"; exit 1; }; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/streamlit run dashboard/app.py

# HTTP API on 127.0.0.1:8000 (docs at /docs); see README "HTTP API".
serve: setup
	$(PY) -m pipeline serve

# Headless Chromium for the browser end-to-end test (Debian package; skipped where apt is unavailable).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: the browser test will be skipped"; \
	  else echo "no root apt-get: the browser test will be skipped unless chromium is installed"; fi; }

lint: setup
	$(VENV)/bin/ruff check .

# The import contract in pyproject.toml: stage order, no experiments / streamlit in the product path, no circles.
contract: setup
	$(VENV)/bin/lint-imports

# Fast tier (<= 6 min on 2 cores): no training, no browser, no extra server or worker process, no whole-dataset loop.
test: setup lint contract
	$(PY) -m pytest -q -m "not full" --durations=15 tests

# Everything (<= 15 min on 2 cores), as CI runs it.
test-all: setup browser lint contract
	$(PY) -m pytest -q --durations=15 tests

data: setup
	$(PY) -m pipeline data download

bench: setup browser
	$(PY) -m bench.predict_speed
	$(PY) -m bench.concurrent_load
	$(PY) -m bench.api_load
	$(PY) -m bench.app_speed

clean-venv:
	rm -rf $(VENV)

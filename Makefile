# carecoin — every target creates .venv when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test

.PHONY: test test-slow test-browser demo fuzz-consensus faults bench install clean postgresql

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,sink]'
	touch $(STAMP)

install: $(STAMP)

# The events sink's tests start a PostgreSQL server from Debian's package (tests/node/pg_server.py).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || \
		echo "postgresql could not be installed: the sink's PostgreSQL tests will be skipped"

test: $(STAMP) postgresql
	$(BIN)/python -m pytest -q

BROWSER_STAMP := $(VENV)/.installed-browser
CHROMIUM ?= /usr/bin/chromium

$(BROWSER_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,sink,browser]'
	touch $(BROWSER_STAMP)

# The page in Debian's Chromium (Playwright's own browser download is not used); screenshots in artifacts/.
test-browser: $(BROWSER_STAMP)
	@test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	CARECOIN_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q -m browser tests/browser

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

demo: $(STAMP)
	$(BIN)/python -m cli.demo

fuzz-consensus: $(STAMP)
	$(BIN)/python -m consensus.sim --validators 4,5,7,10 --seeds 10000 --start-seed 0 --faults all --json

faults: $(STAMP)
	$(BIN)/python -m tests.faults --scenarios 200 --seed 1 --json

# Every benchmark, several runs each; writes bench/RESULTS.md and bench/results.json (about 35 min; QUICK=1: the
# small sizes, one run each, about 6 min). Never part of `make test` or CI: benchmarks do not fail a build.
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(if $(filter 1 yes true,$(QUICK)),--quick,)

clean:
	rm -rf $(VENV) build *.egg-info

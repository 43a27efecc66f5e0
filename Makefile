# Konbit: every target sets up what it needs first, so a fresh machine needs only
# `make demo` (the local ledger) or `make test` (the whole suite).

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
# The solc shim must come before .venv/bin: slither-analyzer installs solc-select,
# whose `solc` tries to download compilers and hangs offline.
export PATH := $(CURDIR)/scripts/solc-shim:$(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/scripts/solc-shim

CONTRACTS := $(shell find contracts -name '*.sol' 2>/dev/null)

.PHONY: setup demo run test test-fast lint compile slither schemathesis bench clean

setup: $(VENV)/.installed node_modules/.installed build/contracts/.compiled

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	$(PY) -m pip check
	@touch $@

# Schemathesis in a venv of its own: eth-brownie pins hypothesis<6.28 in .venv, and
# schemathesis 4 needs a current hypothesis.
ST_VENV := .venv-schemathesis
ST_RUN  := $(PY) scripts/schemathesis_ci.py

$(ST_VENV)/.installed: scripts/schemathesis-requirements.txt
	@test -x $(ST_VENV)/bin/python || python3 -m venv $(ST_VENV)
	$(ST_VENV)/bin/python -m pip install -q --disable-pip-version-check -r $<
	$(ST_VENV)/bin/python -m pip check
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

compile: build/contracts/.compiled
build/contracts/.compiled: $(CONTRACTS) brownie-config.yaml node_modules/.installed $(VENV)/.installed
	brownie compile
	@touch $@

## The main job: the local chain, the backend, and the demo.
demo: setup
	konbit demo

run: setup
	konbit run

## The whole suite: lint, backend tests, then contract tests beside schemathesis.
## Backend, web and e2e tests start their own nodes and servers on free ports, so
## TEST_WORKERS processes share them. A file's tests stay on one worker, in order
## (--dist loadfile): some build on what the module's earlier tests recorded on its
## module-scoped deployment. Contract tests share brownie's one Anvil (port 18545), so they
## run in one process, beside schemathesis against its own `konbit run` (free ports): each
## keeps about one core busy, so side by side they take the time of the longer (CI: 3.75
## and about 7 minutes, one after the other). Their log is printed when both are done.
TEST_WORKERS ?= 2
test: setup lint slither $(ST_VENV)/.installed
	pytest -p no:pytest-brownie -n $(TEST_WORKERS) --dist loadfile tests/backend tests/web tests/e2e
	@mkdir -p reports
	@echo "== contract tests (log: reports/contract-tests.log) beside schemathesis"
	@pytest tests/contracts > reports/contract-tests.log 2>&1 & contracts=$$!; \
	  $(ST_RUN); schemathesis=$$?; \
	  wait $$contracts; contract_tests=$$?; \
	  echo "== contract tests"; cat reports/contract-tests.log; \
	  echo "== contract tests: exit $$contract_tests; schemathesis: exit $$schemathesis"; \
	  test $$schemathesis -eq 0 && test $$contract_tests -eq 0

lint: $(VENV)/.installed
	ruff check backend tests bench scripts
	ruff format --check backend tests bench scripts
	mypy
	lint-imports

## Schemathesis (all checks) against `konbit run`: no key, a cooperative's, the operator's.
schemathesis: setup $(ST_VENV)/.installed
	$(ST_RUN)

slither: setup
	@echo "== slither"
	bash scripts/slither.sh

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build reports test-artifacts .pytest_cache .mypy_cache .ruff_cache .grimp_cache .import_linter_cache

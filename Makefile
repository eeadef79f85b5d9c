# Two commands on a fresh machine:
#   make run   - install, create the SQLite database with demo data, start everything
#   make test  - install (with test tools and system packages), lint, type-check, run the tests
#                (including the integration tests against a real Rasa server)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
# What `make run` needs (the service alone) and what `make test` needs (+ the dev extra:
# pytest, playwright, schemathesis, mypy, ruff, pip-audit); the second implies the first.
RUN_STAMP := $(VENV)/.installed-run
STAMP     := $(VENV)/.installed

.PHONY: install install-run run test lint typecheck pytest test-rasa system-deps demo clean audit

# The venv, with pip and setuptools upgraded: the setuptools bundled with Python 3.11 (65.5)
# has known vulnerabilities; constraints.txt pins the version.
define make-venv
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is needed"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt --upgrade setuptools
endef

$(RUN_STAMP): pyproject.toml constraints.txt
	$(make-venv)
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(make-venv)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP) $(RUN_STAMP)

install: $(STAMP)

install-run: $(RUN_STAMP)

demo: install-run
	$(BIN)/otklik db upgrade
	$(BIN)/otklik demo load

run: demo
	$(BIN)/otklik serve

system-deps:
	bash scripts/install-system-deps.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy bot core inbox knowledge_base otklik rules

pytest: install
	bash scripts/test.sh

audit: install
	bash scripts/audit.sh

# The real Rasa server (separate Python 3.10 venv under scripts/rasa/): install, train, test.
test-rasa: install
	bash scripts/test-rasa.sh

test: install system-deps lint typecheck audit pytest test-rasa

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

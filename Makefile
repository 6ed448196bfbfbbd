# One task runner for people and CI. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The MySQL driver builds against libmariadb-dev, which scripts/services installs.
INSTALLED_MYSQL := $(VENV)/.installed-mysql

.PHONY: run test test-unit lint format proto services-up services-down bench clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/ledgerd serve

$(INSTALLED_MYSQL): $(INSTALLED)
	scripts/services up mariadb
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,mysql]'
	touch $(INSTALLED_MYSQL)

# Installs and starts MariaDB, Redis and Kafka (scripts/services), then every suite.
test: $(INSTALLED_MYSQL)
	scripts/services up
	scripts/install-ops-tools
	$(BIN)/pytest -q

test-unit: $(INSTALLED)
	$(BIN)/pytest -q tests/unit

lint: $(INSTALLED)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	scripts/proto-check

format: $(INSTALLED)
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

proto: $(INSTALLED)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=src --pyi_out=src \
		--grpc_python_out=src proto/ledgerd/v1/balance.proto

# Every scenario on the production stack; writes docs/benchmarks.md and the results as a
# list in data/bench/results/all.json (`ledgerd bench --compare OLD.json NEW.json` compares two).
bench: $(INSTALLED_MYSQL)
	scripts/services up
	$(BIN)/ledgerd bench --scenario all --json data/bench/results/all.json --markdown docs/benchmarks.md

services-up:
	scripts/services up

services-down:
	scripts/services down

clean:
	rm -rf $(VENV) data .services build

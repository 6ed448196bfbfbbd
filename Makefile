# One task runner for people and CI. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The MySQL driver builds against libmariadb-dev, which scripts/services installs.
INSTALLED_MYSQL := $(VENV)/.installed-mysql
# Exact versions with hashes (pip-compile, `make lock`): the service's in SERVICE_LOCK (what
# the Dockerfile installs), the development tools' in DEV_LOCK, with the same service pins.
SERVICE_LOCK := requirements/service.txt
DEV_LOCK := requirements/dev.txt
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: run test test-slow test-unit test-typescript lint format proto lock services-up services-down bench clean

# The locked dependencies, then ledgerd itself without resolving anything again.
$(INSTALLED): pyproject.toml $(DEV_LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --require-hashes -r $(DEV_LOCK)
	$(PIP_INSTALL) --no-deps -e .
	touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/ledgerd serve

$(INSTALLED_MYSQL): $(INSTALLED) $(SERVICE_LOCK)
	scripts/services up mariadb
	$(PIP_INSTALL) --require-hashes -r $(SERVICE_LOCK)
	touch $(INSTALLED_MYSQL)

# Installs and starts MariaDB, Redis and Kafka (scripts/services), then every suite but the
# slow scenarios (pytest marker `slow`: they restart the shared services; `make test-slow`).
# `services prune`: the Kafka topics, Redis keys and databases earlier runs left (idle an
# hour), so that the broker's next start does not load them all and the disk does not fill
# (README: The production stack).
test: $(INSTALLED_MYSQL) test-typescript
	scripts/services up
	scripts/services prune
	scripts/install-ops-tools
	scripts/install-browser
	$(BIN)/pytest -q --durations=30 -m "not slow"

# The slow scenarios alone (tests/reliability and the Redis restart of tests/integration),
# on the same services; .ci/run runs both targets.
test-slow: $(INSTALLED_MYSQL)
	scripts/services up
	scripts/services prune
	$(BIN)/pytest -q --durations=30 -m slow

# The TypeScript client (clients/typescript): its packages from the lock file, generated from
# the proto by the venv's grpcio-tools, tested with Node's runner against a ledgerd it starts
# on each stack (the production one on the services of scripts/services).
test-typescript: $(INSTALLED_MYSQL)
	scripts/services up
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error \
		&& LEDGERD_PYTHON=$(abspath $(BIN)/python) npm run --silent build \
		&& LEDGERD_PYTHON=$(abspath $(BIN)/python) npm test

test-unit: $(INSTALLED)
	$(BIN)/pytest -q tests/unit

lint: $(INSTALLED)
	$(BIN)/ruff check src tests setup.py
	$(BIN)/ruff format --check src tests setup.py
	$(BIN)/mypy
	scripts/proto-check

format: $(INSTALLED)
	$(BIN)/ruff check --fix src tests setup.py
	$(BIN)/ruff format src tests setup.py

proto: $(INSTALLED)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=src --pyi_out=src \
		--grpc_python_out=src proto/ledgerd/v1/balance.proto

# Re-pins both lock files after a change to pyproject.toml's dependencies, keeping every
# pin that still fits; `make lock LOCK_ARGS=--upgrade` (or `--upgrade-package NAME`) moves on.
LOCK_ARGS ?=
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock: $(INSTALLED)
	$(PIP_COMPILE) --extra mysql -o $(SERVICE_LOCK) pyproject.toml
	$(PIP_COMPILE) --extra dev -c $(SERVICE_LOCK) -o $(DEV_LOCK) pyproject.toml

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
	rm -rf $(VENV) data .services build dist

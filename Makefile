# Portico: `make run` serves the embedded profile, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# pytest-xdist workers (`auto`: one per CPU; `0`: in this process, e.g. with --pdb).
PYTEST_WORKERS ?= auto

.PHONY: install run migrate seed test test-http-edge lint typecheck format clean worker beat bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

migrate: install
	$(BIN)/portico db upgrade

# The default tiers and credit packs, where missing (idempotent).
seed: migrate
	$(BIN)/portico seed

run: seed
	$(BIN)/portico serve --host $(HOST) --port $(PORT)

# Celery (PORTICO_JOBS__RUNNER=celery and PORTICO_CELERY__BROKER_URL must be set).
WORKER_CONCURRENCY ?= 4
worker: migrate
	$(BIN)/celery -A entrypoints.worker.celery_app worker --pool=prefork \
		--concurrency=$(WORKER_CONCURRENCY) --loglevel=INFO

beat: install
	mkdir -p var
	$(BIN)/celery -A entrypoints.worker.celery_app beat --schedule var/celerybeat-schedule \
		--loglevel=INFO

lint: install
	$(BIN)/ruff check src tests migrations bench
	$(BIN)/ruff format --check src tests migrations bench
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

# Pytest exits 5 when it collected nothing: that is a failure here, never a pass.
test: lint typecheck
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$rc

# The HTTP suite alone with the cache and rate limiter on EDGE_BACKEND (redis or
# memcached; CI runs both): the same tests prove the backends interchangeable. On the
# in-memory database profile by default (EDGE_PROFILES="memory,embedded,services": all).
EDGE_BACKEND ?= redis
EDGE_PROFILES ?= memory
test-http-edge: install
	PORTICO_TEST_EDGE_BACKEND=$(EDGE_BACKEND) PORTICO_TEST_PROFILES=$(EDGE_PROFILES) \
		$(BIN)/pytest -n $(PYTEST_WORKERS) tests/unit/http $(PYTEST_ARGS); \
	rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$rc

# Portico (as `make run` serves it, on the machine's Postgres and Redis) against bare
# Starlette ceilings, with wrk; see bench/README.md. BENCH_ARGS="--seconds 20 --rounds 3".
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

format: install
	$(BIN)/ruff check --fix src tests migrations bench
	$(BIN)/ruff format src tests migrations bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

# agentapi-admin: `make run` serves the app, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

.PHONY: install run test test-cluster lint check-deploy bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "agentapi-admin needs Python 3.11 or newer (set PYTHON=python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	PORT=$(PORT) $(BIN)/python -m agentapi_admin.devserver

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The tests of everything that talks to Redis (API, sessions, limiter, breakers, commands,
# ops pages) again, on a real Redis Cluster of 3 masters + 3 replicas started by the suite;
# tests marked standalone_redis (they kill or reconfigure the one server) are left out.
CLUSTER_TESTS ?= tests/cluster tests/tenants/test_api.py tests/tenants/test_api_limits.py \
	tests/resilience/sessions tests/resilience/test_sessions.py tests/resilience/ratelimit \
	tests/resilience/test_throttle.py tests/resilience/test_throttle_accounts.py tests/resilience/breakers \
	tests/resilience/test_redis_breaker.py tests/commands tests/console

test-cluster: $(STAMP)
	AGENTAPI_TEST_REDIS=cluster $(BIN)/python -m pytest $(CLUSTER_TESTS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var staticfiles test-artifacts .pytest_cache .ruff_cache

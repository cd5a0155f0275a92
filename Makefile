# agentapi-admin: `make run` serves the app, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
# pip-tools lives in its own venv: it writes the lock files and is no dependency of the app.
TOOLS := var/tools
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(TOOLS)/bin/pip-compile --quiet --generate-hashes \
	--strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links

.PHONY: install run test test-cluster lint typecheck check-deploy bench clean lock upgrade

# requirements-dev.txt locks runtime and dev dependencies together, with hashes.
$(STAMP): requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "agentapi-admin needs Python 3.11 or newer (set PYTHON=python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $(STAMP)

$(TOOLS)/bin/pip-compile:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet pip-tools==7.6.2

# Re-lock after editing pyproject.toml's dependencies; existing pins stay unless they must move.
lock: $(TOOLS)/bin/pip-compile
	$(PIP_COMPILE) $(UPGRADE) -o requirements.txt pyproject.toml
	$(PIP_COMPILE) $(UPGRADE) --extra dev -c requirements.txt -o requirements-dev.txt pyproject.toml

# Move every pin to the newest release pyproject.toml allows (PACKAGE=name: only that one).
upgrade:
	$(MAKE) lock UPGRADE="$(if $(PACKAGE),--upgrade-package $(PACKAGE),--upgrade)"

install: $(STAMP)

run: $(STAMP)
	@# exec: python replaces the shell, so Ctrl-C ends make run without "make: *** Interrupt".
	@PORT=$(PORT) exec $(BIN)/python -m agentapi_admin.devserver

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The tests of everything that talks to Redis (API, sessions, limiter, breakers, commands,
# ops pages) again, on a real Redis Cluster of 3 masters + 3 replicas started by the suite;
# tests marked standalone_redis (they kill or reconfigure the one server) are left out.
CLUSTER_TESTS ?= tests/cluster tests/tenants/test_api.py tests/tenants/test_api_limits.py \
	tests/tenants/test_api_evaluate.py tests/tenants/test_flag_asks.py tests/tenants/test_flag_tenants_page.py \
	tests/tenants/test_flag_report.py tests/tenants/test_environments.py \
	tests/resilience/sessions tests/resilience/test_sessions.py tests/resilience/ratelimit \
	tests/resilience/test_throttle.py tests/resilience/test_throttle_accounts.py tests/resilience/breakers \
	tests/resilience/test_redis_breaker.py tests/commands tests/console

test-cluster: $(STAMP)
	AGENTAPI_TEST_REDIS=cluster $(BIN)/python -m pytest $(CLUSTER_TESTS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy with django-stubs over the app packages and the SDK ([tool.mypy] in pyproject.toml). Its Django
# plugin imports the settings, which need no setup in development mode: no .env, dev defaults.
typecheck: $(STAMP)
	DEBUG=true READ_ENV_FILE=false $(BIN)/mypy

clean:
	rm -rf $(VENV) var staticfiles test-artifacts .pytest_cache .ruff_cache .mypy_cache

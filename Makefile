# headwater: `make demo` runs the main job on embedded defaults; `make test` runs the whole suite.
# Both bootstrap a pinned uv into .tools/ and the locked environment into .venv/ on first use.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(CURDIR)/.tools/bin/uv
VENV := $(CURDIR)/.venv
export HEADWATER_HOME ?= $(CURDIR)/.headwater
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo demo-down cluster-up cluster-down test lint coverage mutation bench airflow-ui clean

$(UV):
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode
	touch $@

demo: $(VENV)/.synced  ## the chain under Airflow's own scheduler, then one pipeline at a time in-process; KEEP_UI=1 leaves the UI up
	$(VENV)/bin/headwater validate
	$(VENV)/bin/headwater chain --logical-date 2026-01-05T10:00 $(if $(KEEP_UI),--keep-ui)
	$(VENV)/bin/headwater run crm_updates --logical-date 2026-01-06
	$(VENV)/bin/headwater run transform --logical-date 2026-01-06T09:00  # raw.customers changed: dbt builds
	$(VENV)/bin/headwater run transform --logical-date 2026-01-07T09:00  # nothing changed since: dbt is skipped
	$(VENV)/bin/headwater tables
	$(VENV)/bin/headwater query "SELECT 'marts.fct_daily_revenue' AS mart, count(*) AS row_count FROM marts.fct_daily_revenue \
	  UNION ALL SELECT 'marts.dim_customers', count(*) FROM marts.dim_customers"
	$(VENV)/bin/headwater query "SELECT customer_id, city, is_vip, dbt_valid_from, dbt_valid_to \
	  FROM snapshots.customers_snapshot WHERE customer_id = 7 ORDER BY dbt_valid_from"

cluster-up: $(VENV)/.synced  ## the deploy/ stack (PostgreSQL metadata DB, Celery over Redis, FAB users) as local processes; WORKERS=2
	set -a; if [ -f deploy/.env ]; then . deploy/.env; fi; set +a; \
	$(VENV)/bin/headwater cluster up --workers $(or $(WORKERS),2)

cluster-down: $(VENV)/.synced  ## stop what cluster-up started
	$(VENV)/bin/headwater cluster down

demo-down: $(VENV)/.synced  ## stop the Airflow that `make demo KEEP_UI=1` left up
	$(VENV)/bin/headwater chain --stop

test: $(VENV)/.synced  ## the whole test suite (services skip with a reason unless HEADWATER_REQUIRE_SERVICES=1)
	$(VENV)/bin/pytest

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check src dags tests bench tools examples
	$(VENV)/bin/mypy

coverage: $(VENV)/.synced  ## the whole suite with line coverage of src/, subprocesses included
	rm -rf .coverage && mkdir -p .coverage
	$(VENV)/bin/pytest --cov --cov-report=
	$(VENV)/bin/coverage report --sort=cover  # pytest-cov has combined the subprocesses' data

mutation: $(VENV)/.synced  ## mutation testing of the pure core against tests/unit; fails below 90% per module
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children $$(nproc) > mutants.log 2>&1 || (tail -20 mutants.log; exit 1)
	$(VENV)/bin/python tools/mutation_score.py --min 90

bench: $(VENV)/.synced  ## benchmarks; results land in docs/benchmarks.md
	$(UV) sync --frozen --quiet --compile-bytecode --group bench
	$(VENV)/bin/python bench/parse_dags.py
	$(VENV)/bin/python bench/export.py
	$(VENV)/bin/python bench/demo_time.py
	$(VENV)/bin/python bench/dbt_build.py  # about 30 minutes: 200 dbt models through Airflow, headwater and cosmos

airflow-ui: $(VENV)/.synced  ## scheduler + api-server + UI on http://127.0.0.1:8080 over the same config
	PATH=$(VENV)/bin:$$PATH AIRFLOW_HOME=$(HEADWATER_HOME)/airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False airflow standalone

clean:
	rm -rf $(HEADWATER_HOME)

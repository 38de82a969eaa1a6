"""DAG integrity: the dags/ folder imports cleanly, DAGs have the promised shape, parsing stays offline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def dagbag(monkeypatch: pytest.MonkeyPatch, config: Path | None = None):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    if config is not None:
        monkeypatch.setenv("HEADWATER_CONFIG", str(config))
    return DagBag(dag_folder=str(REPO / "dags"))


def test_dags_folder_imports_cleanly(monkeypatch: pytest.MonkeyPatch, demo_dbt_manifest: Path) -> None:
    bag = dagbag(monkeypatch)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"sample_sheets", "exchange_rates", "crm_updates", "transform", "daily_report"}
    dag = bag.dags["sample_sheets"]
    assert dag.max_active_runs == 1 and "headwater" in dag.tags and dag.doc_md.startswith("# sample_sheets")
    assert {t.task_id for t in dag.tasks} == {
        "extract_sample_workbook",
        *(f"{step}__raw__{t}" for step in ("load", "check") for t in ("orders", "customers", "products")),
    }
    extract = dag.get_task("extract_sample_workbook")
    assert {t.task_id for t in extract.downstream_list} == {  # each load and check reads the extract's manifest
        f"{step}__raw__{t}" for step in ("load", "check") for t in ("orders", "customers", "products")
    }
    assert dag.get_task("load__raw__orders").downstream_task_ids == {"check__raw__orders"}
    assert dag.get_task("check__raw__orders").upstream_task_ids == {"extract_sample_workbook", "load__raw__orders"}
    assert {t.retries for t in dag.tasks} == {2}


def test_links_become_triggers_waits_branches_gates_and_assets(
    monkeypatch: pytest.MonkeyPatch, demo_dbt_manifest: Path
) -> None:
    from datetime import UTC, datetime

    monkeypatch.setenv("HEADWATER_LINKS", "on")
    bag = dagbag(monkeypatch)
    assert bag.import_errors == {}
    ingest = bag.dags["sample_sheets"]
    trigger = ingest.get_task("trigger__transform")
    assert trigger.upstream_task_ids == {"check__raw__orders", "check__raw__customers", "check__raw__products"}
    assert trigger.trigger_dag_id == "transform" and trigger.reset_dag_run and trigger.trigger_rule == "none_failed"
    load = ingest.get_task("load__raw__orders")
    assert [a.uri for a in load.outlets] == ["x-headwater://headwater_warehouse/raw.orders"]

    transform = bag.dags["transform"]
    assert transform.schedule is None  # started by sample_sheets' trigger
    wait = transform.get_task("wait_for__exchange_rates")
    assert wait.upstream_task_ids == set() and wait.mode == "reschedule" and wait.poke_interval == 30
    assert wait.external_dag_id == "exchange_rates" and wait.external_task_id is None
    assert wait.failed_states == ["failed"] and wait.timeout == 3600 and wait.retries == 0
    # @daily upstream: the 09:00 run waits for 00:00 of the same day
    assert wait.execution_date_fn(datetime(2026, 1, 5, 9, tzinfo=UTC)) == datetime(2026, 1, 5, tzinfo=UTC)
    assert transform.get_task("inputs_changed").upstream_task_ids == {"wait_for__exchange_rates"}
    assert transform.get_task("inputs_changed").downstream_task_ids == {"build_needed", "inputs_unchanged"}
    assert transform.get_task("dbt.source_freshness").upstream_task_ids == {"build_needed"}
    assert "dbt.snapshot__customers_snapshot" in transform.get_task("record_inputs").upstream_task_ids

    report = bag.dags["daily_report"]
    sensor = report.get_task("wait_for__transform")
    assert sensor.deferrable and sensor.poke_interval == 5
    # transform has no schedule of its own: its dates are sample_sheets' 09:00 ticks
    assert sensor.execution_date_fn(datetime(2026, 1, 5, 10, tzinfo=UTC)) == datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert report.get_task("latest_only").upstream_task_ids == {"wait_for__transform"}
    assert report.get_task("export__daily_revenue").upstream_task_ids == {"latest_only"}

    monkeypatch.setenv("HEADWATER_LINKS", "off")  # headwater run: one pipeline alone
    alone = dagbag(monkeypatch)
    assert "trigger__transform" not in alone.dags["sample_sheets"].task_ids
    assert "wait_for__exchange_rates" not in alone.dags["transform"].task_ids


def test_the_dbt_project_is_one_task_per_node_with_its_tests_right_after(
    monkeypatch: pytest.MonkeyPatch, demo_dbt_manifest: Path
) -> None:
    dag = dagbag(monkeypatch).dags["transform"]
    ids = {t.task_id for t in dag.tasks}
    runs = {"stg_orders", "stg_customers", "stg_products", "stg_exchange_rates", "fct_daily_revenue", "dim_customers"}
    assert {f"dbt.run__{m}" for m in runs} | {"dbt.seed__currencies", "dbt.test__sources"} <= ids
    assert {"dbt.snapshot__customers_snapshot", "dbt.snapshot__products_snapshot"} <= ids
    assert dag.get_task("dbt.test__sources").upstream_task_ids == {"dbt.source_freshness"}  # source_freshness: true
    assert dag.get_task("dbt.run__stg_orders").upstream_task_ids == {"dbt.test__sources"}
    # relationships(stg_orders.customer_id -> stg_customers) runs with stg_orders' tests, after both models
    assert dag.get_task("dbt.test__stg_orders").upstream_task_ids == {"dbt.run__stg_orders", "dbt.run__stg_customers"}
    # a model starts only after its parents' tests passed
    assert dag.get_task("dbt.run__fct_daily_revenue").upstream_task_ids == {
        "dbt.test__stg_orders",
        "dbt.test__stg_exchange_rates",
    }
    assert dag.get_task("dbt.snapshot__customers_snapshot").upstream_task_ids == {"dbt.test__stg_customers"}
    unit = dag.get_task("dbt.test__fct_daily_revenue")
    assert any("daily_revenue_uses_latest_rate" in s for s in unit.select)  # the unit test runs with the model's tests


def test_a_missing_manifest_fails_that_dag_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(REPO / "dbt", tmp_path / "dbt", ignore=shutil.ignore_patterns("target"))
    (tmp_path / "rates.csv").write_text("day,rate\n2026-01-01,1.5\n")
    config = tmp_path / "pipelines.yaml"
    config.write_text(
        "pipelines:\n  rates:\n    sheets: [{workbook: rates.csv, table: raw.rates}]\n"
        "  models:\n    dbt: {project: dbt}\n"
    )
    bag = dagbag(monkeypatch, config)
    assert bag.import_errors == {} and set(bag.dag_ids) == {"rates", "models"}
    [task] = bag.dags["models"].tasks
    assert task.task_id == "dbt_project" and task.retries == 0
    assert "manifest.json does not exist; build it with `headwater dbt-parse`" in task.problem


def test_a_bad_config_is_an_import_error_naming_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "pipelines.yaml"
    config.write_text("pipelines:\n  p:\n    sheets:\n      - {workbook: a.csv, table: raw.t, load: merge}\n")
    bag = dagbag(monkeypatch, config)
    [message] = bag.import_errors.values()
    assert "pipelines.p.sheets[0].load" in message and str(config) in message


def test_parsing_touches_no_connection_variable_or_heavy_client(tmp_path: Path, demo_dbt_manifest: Path) -> None:
    """Parse in a fresh interpreter where any Connection or Variable lookup would raise."""
    script = f"""
import sys
from airflow.sdk import BaseHook, Variable
def refuse(*a, **k): raise AssertionError("looked up at parse time")
BaseHook.get_connection = refuse
Variable.get = refuse
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(REPO / "dags")!r})
assert not bag.import_errors, bag.import_errors
heavy = sorted(set(sys.modules) & {{"gspread", "duckdb", "psycopg", "boto3", "openpyxl", "pandas", "dbt"}})
assert not heavy, heavy
print(len(bag.dags))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("5")

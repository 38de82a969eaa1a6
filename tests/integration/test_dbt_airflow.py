"""dbt under Airflow (``dag.test``): the demo chain end to end, and a second dbt project generated here whose
failing test stops the models downstream while the published tables stay as they were."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from headwater.warehouse.duckdb import DuckDBWarehouse
from tests.integration.test_end_to_end import run_dag

pytestmark = pytest.mark.integration


def _query(warehouse: DuckDBWarehouse, sql: str) -> list[tuple[Any, ...]]:
    with warehouse.query_rows(sql) as (_, rows):
        return [tuple(r) for r in rows]


def _task_states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def test_demo_loads_then_dbt_builds_marts_and_snapshot_history(
    airflow_db: Path, hw_home: Path, monkeypatch: pytest.MonkeyPatch, demo_dbt_manifest: Path
) -> None:
    day1, day2 = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC)
    for dag_id, when in (
        ("sample_sheets", day1),
        ("exchange_rates", day1),
        ("transform", day1),
        ("crm_updates", day2),
        ("transform", day2),
    ):
        run = run_dag(dag_id, when, monkeypatch)
        assert run.state == "success", (dag_id, {k: v for k, v in _task_states(run).items() if v != "success"})
    warehouse = DuckDBWarehouse(hw_home / "warehouse.duckdb")
    paid_days = _query(warehouse, "SELECT count(DISTINCT CAST(ordered_at AS DATE)) FROM raw.orders WHERE paid")[0][0]
    assert _query(warehouse, "SELECT count(*) FROM marts.fct_daily_revenue")[0][0] == paid_days
    assert _query(warehouse, "SELECT count(*) FROM marts.dim_customers")[0][0] == 40
    # every day converted at the latest USD rate on or before it
    assert _query(warehouse, "SELECT count(*) FROM marts.fct_daily_revenue WHERE rate_as_of > order_date")[0][0] == 0
    history = _query(
        warehouse,
        "SELECT city, is_vip, dbt_valid_from, dbt_valid_to FROM snapshots.customers_snapshot"
        " WHERE customer_id = 7 ORDER BY dbt_valid_from",
    )
    assert history == [
        ("부산", False, datetime(2025, 11, 5, 10, 31), datetime(2026, 1, 6, 11, 0)),
        ("서울", True, datetime(2026, 1, 6, 11, 0), None),
    ]
    assert _query(warehouse, "SELECT count(*) FROM snapshots.customers_snapshot")[0][0] == 41


def _second_project(root: Path) -> Path:
    """A different dbt project than the repo's: its own names, a source, a tested model and one downstream."""
    project = root / "shop_dbt"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop_profile\n"
        "models:\n  shop:\n    +materialized: table\n"
    )
    (project / "models" / "sources.yml").write_text(
        textwrap.dedent(
            """\
            version: 2
            sources:
              - name: landing
                schema: landing
                tables: [{name: items}]
            models:
              - name: stg_items
                columns:
                  - name: item_id
                    data_tests: [unique, not_null]
            """
        )
    )
    (project / "models" / "stg_items.sql").write_text(
        "select item_id, item_name, price from {{ source('landing', 'items') }}\n"
    )
    (project / "models" / "item_prices.sql").write_text(
        "select item_id, price * 2 as price_with_tax from {{ ref('stg_items') }}\n"
    )
    return project


def _shop_pipeline(root: Path, name: str, mode: str) -> tuple[Path, Path]:
    """The second project, a CSV of two good items and a pipeline loading it then building the project."""
    project = _second_project(root)
    items = root / "items.csv"
    items.write_text("Item ID,Item Name,Price\n1,pen,1.50\n2,cup,3.00\n")
    config = root / "pipelines.yaml"
    config.write_text(
        f"pipelines:\n  {name}:\n    retries: 0\n"
        "    sheets: [{workbook: items.csv, table: landing.items}]\n"
        f"    dbt: {{project: {project.name}, schema: shop, mode: {mode}}}\n"
    )
    return items, config


def test_a_failing_dbt_test_stops_the_models_downstream_and_keeps_their_tables(
    airflow_db: Path, hw_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headwater.airflow.dbt_parse import refresh_manifests
    from headwater.config import load_config

    items, config = _shop_pipeline(tmp_path, "shop", "tasks")
    assert refresh_manifests(load_config(config)) == [tmp_path / "shop_dbt" / "target" / "manifest.json"]
    good = run_dag("shop", datetime(2026, 1, 5, tzinfo=UTC), monkeypatch, config)
    assert good.state == "success"
    assert _task_states(good) == {
        "extract_items": "success",
        "load__landing__items": "success",
        "check__landing__items": "success",
        "inputs_changed": "success",  # the first build: nothing recorded yet
        "build_needed": "success",
        "inputs_unchanged": "skipped",
        "dbt.run__stg_items": "success",
        "dbt.test__stg_items": "success",
        "dbt.run__item_prices": "success",
        "record_inputs": "success",
    }
    warehouse = DuckDBWarehouse(hw_home / "warehouse.duckdb")
    built = _query(warehouse, "SELECT item_id, price_with_tax FROM shop.item_prices ORDER BY item_id")
    assert [(i, float(p)) for i, p in built] == [(1, 3.0), (2, 6.0)]

    items.write_text("Item ID,Item Name,Price\n1,pen,1.50\n1,pen again,9.00\n")  # a duplicate id
    bad = run_dag("shop", datetime(2026, 1, 6, tzinfo=UTC), monkeypatch, config)
    states = _task_states(bad)
    assert bad.state == "failed"
    assert states["dbt.run__stg_items"] == "success" and states["dbt.test__stg_items"] == "failed"
    assert states["dbt.run__item_prices"] == "upstream_failed"
    assert states["build_needed"] == "success"  # landing.items changed
    assert states["record_inputs"] == "upstream_failed"  # a failed build is not remembered: the next run builds
    after = _query(warehouse, "SELECT item_id, price_with_tax FROM shop.item_prices ORDER BY item_id")
    assert after == built  # the mart downstream of the failed test was not rebuilt


def test_the_demo_project_builds_on_postgresql_through_the_same_connection_as_the_loads(
    airflow_db: Path,
    hw_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    demo_dbt_manifest: Path,
    pg_conninfo: dict[str, Any],
    pg_schema: str,
) -> None:
    import psycopg

    from tests.conftest import REPO

    text = (REPO / "config" / "pipelines.yaml").read_text()
    text = text.replace("../examples/", f"{REPO}/examples/").replace("raw.", f"{pg_schema}.")
    text = text.replace(
        "project: ../dbt", f"project: {REPO}/dbt\n      vars: {{raw_schema: {pg_schema}, schema_prefix: {pg_schema}_}}"
    )
    config = tmp_path / "pipelines.yaml"
    config.write_text(text)
    url = f"postgres://{pg_conninfo['user']}@{pg_conninfo['host']}:{pg_conninfo['port']}/{pg_conninfo['dbname']}"
    monkeypatch.setenv("AIRFLOW_CONN_HEADWATER_WAREHOUSE", url)
    built = [f"{pg_schema}_{s}" for s in ("staging", "marts", "snapshots", "reference")]
    try:
        for dag_id in ("sample_sheets", "exchange_rates", "transform"):
            run = run_dag(dag_id, datetime(2026, 1, 5, tzinfo=UTC), monkeypatch, config)
            assert run.state == "success", (dag_id, {k: v for k, v in _task_states(run).items() if v != "success"})
        with psycopg.connect(**pg_conninfo) as conn:
            paid_days = conn.execute(
                f"SELECT count(DISTINCT CAST(ordered_at AS DATE)) FROM {pg_schema}.orders WHERE paid"
            ).fetchone()
            days = conn.execute(f"SELECT count(*) FROM {pg_schema}_marts.fct_daily_revenue").fetchone()
            customers = conn.execute(f"SELECT count(*) FROM {pg_schema}_marts.dim_customers").fetchone()
            history = conn.execute(f"SELECT count(*) FROM {pg_schema}_snapshots.customers_snapshot").fetchone()
        assert days == paid_days and customers == (40,) and history == (40,)
    finally:
        with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
            for schema in built:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_build_mode_runs_one_dbt_build_and_records_an_asset_event_per_model(
    airflow_db: Path, hw_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from headwater.airflow.dbt_parse import refresh_manifests
    from headwater.config import load_config

    items, config = _shop_pipeline(tmp_path, "shop_build", "build")
    refresh_manifests(load_config(config))
    good = run_dag("shop_build", datetime(2026, 1, 5, tzinfo=UTC), monkeypatch, config)
    assert good.state == "success"
    assert {t for t in _task_states(good) if t.startswith("dbt.")} == {"dbt.build"}
    uri = "x-dbt://shop/model.shop.item_prices"
    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).where(AssetModel.uri == uri)
        ).all()
        extras = [e.extra for e in events if e.source_run_id == good.run_id]
    assert extras == [{"status": "success", "seconds": pytest.approx(extras[0]["seconds"])}]

    items.write_text("Item ID,Item Name,Price\n1,pen,1.50\n1,pen again,9.00\n")
    bad = run_dag("shop_build", datetime(2026, 1, 6, tzinfo=UTC), monkeypatch, config)
    assert bad.state == "failed" and _task_states(bad)["dbt.build"] == "failed"
    warehouse = DuckDBWarehouse(hw_home / "warehouse.duckdb")
    built = _query(warehouse, "SELECT item_id, price_with_tax FROM shop.item_prices ORDER BY item_id")
    assert [(i, float(p)) for i, p in built] == [(1, 3.0), (2, 6.0)]  # dbt skipped it after the failed test

"""Generated DAGs run through Airflow itself (``dag.test``), checked in the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from headwater.identifiers import TableName
from headwater.warehouse.duckdb import DuckDBWarehouse
from tests.conftest import REPO

pytestmark = pytest.mark.integration


def run_dag(dag_id: str, when: datetime, monkeypatch: pytest.MonkeyPatch, config: Path | None = None) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    if config is not None:
        monkeypatch.setenv("HEADWATER_CONFIG", str(config))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags[dag_id].test(logical_date=when)


def snapshot(warehouse: DuckDBWarehouse, table: str) -> list[tuple[Any, ...]]:
    with warehouse.session() as conn:
        return warehouse._run(conn, f"SELECT * FROM {TableName.parse(table).sql} ORDER BY ALL")


def test_sample_pipeline_loads_the_workbook_and_reruns_identically(
    airflow_db: Path, hw_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    when = datetime(2026, 1, 5, tzinfo=UTC)
    run = run_dag("sample_sheets", when, monkeypatch)
    assert run.state == "success"
    warehouse = DuckDBWarehouse(hw_home / "warehouse.duckdb")
    counts = {t: warehouse.row_count(TableName.parse(t)) for t in ("raw.orders", "raw.customers", "raw.products")}
    assert counts == {"raw.orders": 240, "raw.customers": 40, "raw.products": 30}
    first = {t: snapshot(warehouse, t) for t in counts}
    orders = snapshot(warehouse, "raw.orders")
    assert isinstance(orders[0][1], datetime) and isinstance(orders[0][3], Decimal)  # typed, not text
    assert run_dag("sample_sheets", when, monkeypatch).state == "success"
    assert {t: snapshot(warehouse, t) for t in counts} == first
    lake_runs = list((hw_home / "lake" / "raw" / "orders" / "2026-01-05").iterdir())
    assert all((r / "_manifest.json").exists() for r in lake_runs)


def test_append_pipeline_is_idempotent_per_logical_date(
    airflow_db: Path, hw_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = DuckDBWarehouse(hw_home / "warehouse.duckdb")
    target = TableName("raw", "exchange_rates")
    for day in (5, 5, 6):
        assert run_dag("exchange_rates", datetime(2026, 1, day, tzinfo=UTC), monkeypatch).state == "success"
    assert warehouse.row_count(target) == 84
    assert warehouse.row_count(target, batch="2026-01-05") == 42

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
    dag = bag.dags[dag_id]
    for task in dag.tasks:  # the shipped DAGs retry after minutes: a regression must fail in seconds here
        task.retries = 0
    return dag.test(logical_date=when)


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
    lake_runs = sorted((hw_home / "lake" / "raw" / "orders" / "2026-01-05").iterdir())
    assert len(lake_runs) == 2  # one run-scoped prefix per run, each complete
    assert [sorted(p.name for p in r.iterdir() if not p.name.startswith("part-")) for r in lake_runs] == [
        ["_manifest.json"],
        ["_manifest.json"],
    ]


def test_append_pipeline_is_idempotent_per_logical_date(
    airflow_db: Path, hw_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = DuckDBWarehouse(hw_home / "warehouse.duckdb")
    target = TableName("raw", "exchange_rates")
    for day in (5, 5, 6):
        assert run_dag("exchange_rates", datetime(2026, 1, day, tzinfo=UTC), monkeypatch).state == "success"
    assert warehouse.row_count(target) == 450
    assert warehouse.row_count(target, batch="2026-01-05") == 225


def test_google_sheet_to_s3_to_postgres_through_connections(
    airflow_db: Path,
    hw_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sheets: Any,
    service_account_info: dict[str, Any],
    s3: tuple[Any, str],
    moto_endpoint: str,
    pg_conninfo: dict[str, Any],
    pg_schema: str,
) -> None:
    """The production shape: Sheets API -> S3 over HTTP -> PostgreSQL, everything from Airflow Connections."""
    import json

    from headwater.warehouse.postgres import PostgresWarehouse

    client, bucket = s3
    key = "1SheetsE2EKey00"
    sheets.add_spreadsheet(
        key,
        {
            "Budget": [["Campaign ID", "Spend", "CTR"], ["1", "$1,200.00", "1.5%"], ["2", "$80.5", "0.25%"]],
            "Targets": [["Campaign ID", "Target"], ["1", "1000"], ["2", "50"]],
        },
    )
    config = tmp_path / "pipelines.yaml"
    config.write_text(f"""
pipelines:
  marketing:
    retries: 0
    sheets:
      - {{spreadsheet: "https://docs.google.com/spreadsheets/d/{key}/edit", tab: Budget,
          table: {pg_schema}.budget, load: upsert, keys: [campaign_id], clean: {{currency: [spend], percent: [ctr]}}}}
      - {{spreadsheet: {key}, tab: Targets, table: {pg_schema}.targets}}
""")
    extra = {"keyfile_dict": service_account_info, "api_base": sheets.url, "retry_first_wait": 0.01}
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_SHEETS_DEFAULT", json.dumps({"conn_type": "generic", "extra": extra}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_HEADWATER_WAREHOUSE",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": pg_conninfo["host"],
                "port": pg_conninfo["port"],
                "schema": pg_conninfo["dbname"],
                "login": pg_conninfo["user"],
            }
        ),
    )
    monkeypatch.setenv("HEADWATER_LAKE_URL", f"s3://{bucket}/lake")

    run = run_dag("marketing", datetime(2026, 1, 5, tzinfo=UTC), monkeypatch, config)
    assert run.state == "success"
    warehouse = PostgresWarehouse(pg_conninfo)
    with warehouse.session() as conn:
        budget = warehouse._run(conn, f'SELECT campaign_id, spend, ctr FROM "{pg_schema}".budget ORDER BY 1')
    assert budget == [(1, Decimal("1200.00"), Decimal("0.0150")), (2, Decimal("80.50"), Decimal("0.0025"))]
    assert warehouse.row_count(TableName(pg_schema, "targets")) == 2
    batch_gets = [r for r in sheets.requests if r[1].endswith("values:batchGet")]
    assert len(batch_gets) == 1  # both tabs in one request
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.startswith(f"lake/{pg_schema}/budget/2026-01-05/") and k.endswith("_manifest.json") for k in keys)

    # The sheet stops being shared: the next run fails and the published tables keep their rows.
    sheets.deny(key)
    run = run_dag("marketing", datetime(2026, 1, 6, tzinfo=UTC), monkeypatch, config)
    assert run.state == "failed"
    with warehouse.session() as conn:
        assert warehouse._run(conn, f'SELECT campaign_id, spend, ctr FROM "{pg_schema}".budget ORDER BY 1') == budget


def test_warehouse_query_written_back_to_a_sheet(
    airflow_db: Path,
    hw_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sheets: Any,
    service_account_info: dict[str, Any],
) -> None:
    """Load the sample Orders tab, then write a summary query into a Google Sheet tab (the course's SQL_to_Sheet)."""
    import json

    key = "1WriteBackSheetKey"
    sheets.add_spreadsheet(key, {"Summary": [["old", "contents"]] + [["x", str(i)] for i in range(50)]})
    config = tmp_path / "pipelines.yaml"
    config.write_text(f"""
pipelines:
  report:
    retries: 0
    sheets:
      - {{workbook: {REPO / "examples" / "sample_workbook.xlsx"}, tab: Orders, table: raw.orders,
          clean: {{currency: [amount], percent: [discount]}}}}
    sheet_exports:
      - name: orders_by_region
        query: "SELECT region, count(*) AS orders, sum(amount) AS amount FROM raw.orders GROUP BY 1 ORDER BY 1"
        spreadsheet: {key}
        tab: Summary
""")
    extra = {"keyfile_dict": service_account_info, "api_base": sheets.url, "retry_first_wait": 0.01}
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_SHEETS_DEFAULT", json.dumps({"conn_type": "generic", "extra": extra}))
    run = run_dag("report", datetime(2026, 1, 5, tzinfo=UTC), monkeypatch, config)
    assert run.state == "success"
    values = sheets.tab_values(key, "Summary")
    assert values[0] == ["region", "orders", "amount"]
    assert [row[0] for row in values[1:]] == ["APAC", "EMEA", "NA"]
    assert sum(int(row[1]) for row in values[1:]) == 240
    assert len(values) == 4  # the 51 old rows are gone

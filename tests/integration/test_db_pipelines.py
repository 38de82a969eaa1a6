"""Database -> lake -> warehouse pipelines from config, run through Airflow: full refresh and incremental."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from headwater.identifiers import TableName
from headwater.warehouse.postgres import PostgresWarehouse
from tests.conftest import mariadb_table
from tests.integration.test_end_to_end import run_dag

pytestmark = pytest.mark.integration


@pytest.fixture
def app_schema(pg_conninfo: dict[str, Any]) -> Any:
    import psycopg

    schema = f"hw_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.customers (id int primary key, name text)")
        conn.execute(f"INSERT INTO {schema}.customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g")
        conn.execute(
            f"CREATE TABLE {schema}.orders (id int primary key, status text, amount numeric(10,2),"
            " updated_at timestamptz not null)"
        )
        conn.execute(
            f"INSERT INTO {schema}.orders SELECT g, 'new', g * 1.5, timestamptz '2026-01-01' + g *"
            " interval '1 minute' FROM generate_series(1, 100) g"
        )
    yield schema
    with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def mysql_orders() -> Iterator[tuple[Any, str]]:
    rows = [(i, "new", f"2026-01-01 00:{i:02d}:00") for i in range(1, 41)]
    columns = "id INT PRIMARY KEY, status VARCHAR(20), updated_at DATETIME(6) NOT NULL"
    with mariadb_table("hw_orders", columns, rows) as table:
        yield table


def test_full_and_incremental_pipelines(
    airflow_db: Path,
    hw_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pg_conninfo: dict[str, Any],
    pg_schema: str,
    app_schema: str,
    mysql_orders: Any,
) -> None:
    import psycopg

    my_conn, my_table = mysql_orders
    config = tmp_path / "pipelines.yaml"
    config.write_text(f"""
pipelines:
  app_db:
    retries: 0
    tables:
      - {{conn_id: app_pg, source_table: {app_schema}.customers, table: {pg_schema}.customers}}
      - {{conn_id: app_pg, source_table: {app_schema}.orders, table: {pg_schema}.orders, load: upsert, keys: [id],
          incremental: {{column: updated_at}}, rows_per_part: 40}}
      - {{conn_id: app_mysql, query: "SELECT id, status, updated_at FROM {my_table}", table: {pg_schema}.my_orders,
          load: upsert, keys: [id], incremental: {{column: updated_at}}}}
""")
    pg_conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "schema": "test", "login": "postgres"}
    monkeypatch.setenv("AIRFLOW_CONN_APP_PG", json.dumps(pg_conn))
    monkeypatch.setenv("AIRFLOW_CONN_HEADWATER_WAREHOUSE", json.dumps(pg_conn))
    monkeypatch.setenv(
        "AIRFLOW_CONN_APP_MYSQL",
        json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "schema": "test", "login": "root"}),
    )
    warehouse = PostgresWarehouse(pg_conninfo)

    assert run_dag("app_db", datetime(2026, 1, 5, tzinfo=UTC), monkeypatch, config).state == "success"
    assert warehouse.row_count(TableName(pg_schema, "customers")) == 50
    assert warehouse.row_count(TableName(pg_schema, "orders")) == 100
    assert warehouse.row_count(TableName(pg_schema, "my_orders")) == 40
    watermark = hw_home / "lake" / "_watermarks" / "app_db" / f"{pg_schema}.orders.json"
    assert json.loads(watermark.read_text())["value"].startswith("2026-01-01 01:40:00")

    # An update to an old row and a new row: the next run must catch both (the course's _v2 missed updates).
    with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
        conn.execute(f"UPDATE {app_schema}.orders SET status = 'shipped', updated_at = '2026-01-02' WHERE id = 7")
        conn.execute(f"INSERT INTO {app_schema}.orders VALUES (101, 'new', 9.99, '2026-01-02 00:00:01')")
    with my_conn.cursor() as cur:
        cur.execute(f"UPDATE {my_table} SET status = 'shipped', updated_at = '2026-01-02 00:00:00' WHERE id = 3")
    assert run_dag("app_db", datetime(2026, 1, 6, tzinfo=UTC), monkeypatch, config).state == "success"
    with warehouse.session() as conn:
        orders = dict(warehouse._run(conn, f'SELECT id, status FROM "{pg_schema}".orders'))
        my_orders = dict(warehouse._run(conn, f'SELECT id, status FROM "{pg_schema}".my_orders'))
    assert len(orders) == 101 and orders[7] == "shipped" and orders[101] == "new"
    assert len(my_orders) == 40 and my_orders[3] == "shipped"
    second = next((hw_home / "lake" / pg_schema / "orders" / "2026-01-06").iterdir()) / "_manifest.json"
    assert json.loads(second.read_text())["rows"] <= 3  # only the window, not the whole table
    assert json.loads(watermark.read_text())["value"].startswith("2026-01-02 00:00:01")


def test_interval_mode_backfills_one_logical_date_at_a_time(
    airflow_db: Path,
    hw_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pg_conninfo: dict[str, Any],
    pg_schema: str,
    app_schema: str,
) -> None:
    config = tmp_path / "pipelines.yaml"
    config.write_text(f"""
pipelines:
  app_daily:
    schedule: "@daily"
    retries: 0
    tables:
      - {{conn_id: app_pg, source_table: {app_schema}.orders, table: {pg_schema}.orders, load: append,
          incremental: {{column: updated_at, mode: interval, window_hours: 1}}}}
""")
    pg_conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "schema": "test", "login": "postgres"}
    monkeypatch.setenv("AIRFLOW_CONN_APP_PG", json.dumps(pg_conn))
    monkeypatch.setenv("AIRFLOW_CONN_HEADWATER_WAREHOUSE", json.dumps(pg_conn))
    warehouse = PostgresWarehouse(pg_conninfo)
    target = TableName(pg_schema, "orders")
    # orders 1..100 were updated at 2026-01-01 00:01 .. 01:40: the hour ending 01:00 holds 1..59 (60 is at 01:00)
    for _ in range(2):  # a rerun of the same logical date changes nothing
        assert run_dag("app_daily", datetime(2026, 1, 1, 1, tzinfo=UTC), monkeypatch, config).state == "success"
        assert warehouse.row_count(target) == 59
    assert run_dag("app_daily", datetime(2026, 1, 1, 2, tzinfo=UTC), monkeypatch, config).state == "success"
    assert warehouse.row_count(target) == 100
    assert warehouse.row_count(target, batch="2026-01-01T020000") == 41

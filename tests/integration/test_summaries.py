"""Summary builds (the course's Build_Summary, without its DROP ... CASCADE): input checks, CTAS into
staging, output checks, a swap that keeps views, grants. On DuckDB and on the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import WarehouseError
from headwater.transform.config import Summary
from headwater.warehouse.base import Warehouse
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse
from headwater.warehouse.summary import build_summary

pytestmark = pytest.mark.integration
WHEN = datetime(2026, 1, 5)


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Warehouse, str]]:
    if request.param == "duckdb":
        wh: Warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")
        schema = "analytics"
    else:
        wh = PostgresWarehouse(request.getfixturevalue("pg_conninfo"))
        schema = request.getfixturevalue("pg_schema")
    _sql(wh, f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    _sql(wh, f'CREATE TABLE "{schema}".orders (id INTEGER, region VARCHAR(10), amount NUMERIC(10,2))')
    _sql(wh, f"INSERT INTO \"{schema}\".orders VALUES (1, 'APAC', 10.00), (2, 'NA', 5.50), (3, 'APAC', 2.25)")
    yield wh, schema


def _sql(wh: Warehouse, sql: str) -> None:
    with wh.session() as conn:
        wh._run(conn, sql)
        conn.commit()


def _rows(wh: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with wh.query_rows(sql) as (_, rows):
        return [tuple(r) for r in rows]


def _summary(schema: str, **overrides: Any) -> Summary:
    spec: dict[str, Any] = {
        "table": f"{schema}.region_revenue",
        "select": f"SELECT region, count(*) AS orders, sum(amount) AS amount FROM {schema}.orders GROUP BY region",
        "keys": ["region"],
        "input_checks": [{"table": f"{schema}.orders", "min_rows": 1}],
        "checks": [{"min_rows": 1}, {"not_null": ["amount"]}],
    }
    spec.update(overrides)
    return Summary.model_validate(spec)


def test_rebuild_swaps_rows_and_keeps_a_view_on_the_summary(warehouse: tuple[Warehouse, str]) -> None:
    wh, schema = warehouse
    first = build_summary(wh, _summary(schema), WHEN)
    assert (first.rows, first.columns, first.rebuilt) == (2, 3, True)
    _sql(wh, f'CREATE VIEW "{schema}".apac AS SELECT * FROM "{schema}".region_revenue WHERE region = \'APAC\'')
    _sql(wh, f"INSERT INTO \"{schema}\".orders VALUES (4, 'EMEA', 1.00), (5, 'APAC', 0.75)")
    second = build_summary(wh, _summary(schema), WHEN)
    assert (second.rows, second.rebuilt) == (3, False)
    assert _rows(wh, f'SELECT region, orders, amount FROM "{schema}".apac') == [("APAC", 3, pytest.approx(13.0))]


def test_a_failing_output_check_keeps_the_old_summary_and_its_view(warehouse: tuple[Warehouse, str]) -> None:
    wh, schema = warehouse
    build_summary(wh, _summary(schema), WHEN)
    _sql(wh, f'CREATE VIEW "{schema}".apac AS SELECT * FROM "{schema}".region_revenue WHERE region = \'APAC\'')
    before = _rows(wh, f'SELECT region, orders FROM "{schema}".region_revenue ORDER BY region')
    _sql(wh, f'INSERT INTO "{schema}".orders VALUES (6, NULL, 3.00)')
    check = {"name": "known_regions", "sql": "SELECT region FROM {table} WHERE region IS NULL"}
    with pytest.raises(WarehouseError, match=r"check known_regions failed: 1 offending row\(s\)"):
        build_summary(wh, _summary(schema, checks=[check], keys=[]), WHEN)
    assert _rows(wh, f'SELECT region, orders FROM "{schema}".region_revenue ORDER BY region') == before
    assert _rows(wh, f'SELECT region, orders FROM "{schema}".apac') == [("APAC", 2)]


def test_keys_of_the_summary_are_checked(warehouse: tuple[Warehouse, str]) -> None:
    wh, schema = warehouse
    select = f"SELECT region, amount FROM {schema}.orders"
    with pytest.raises(WarehouseError, match=r"key \(region\) repeats"):
        build_summary(wh, _summary(schema, select=select, checks=[]), WHEN)
    assert _rows(wh, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'region_revenue'") == [(0,)]


def test_a_failing_input_check_builds_nothing(warehouse: tuple[Warehouse, str]) -> None:
    wh, schema = warehouse
    checks = [{"name": "no_refunds", "sql": f"SELECT id FROM {schema}.orders WHERE amount > 6"}]
    with pytest.raises(WarehouseError, match=r"input check no_refunds failed: 1 offending row\(s\); nothing was built"):
        build_summary(wh, _summary(schema, input_checks=checks), WHEN)
    missing = [{"table": f"{schema}.nope", "min_rows": 1}]
    with pytest.raises(WarehouseError, match=r"input check min_rows\(.*nope, 1\) failed: .*nope has no such table"):
        build_summary(wh, _summary(schema, input_checks=missing), WHEN)


def test_a_select_that_fails_names_the_summary_and_publishes_nothing(warehouse: tuple[Warehouse, str]) -> None:
    wh, schema = warehouse
    build_summary(wh, _summary(schema), WHEN)
    bad = f"SELECT region, sum(no_such_column) AS amount FROM {schema}.orders GROUP BY region"
    with pytest.raises(WarehouseError, match=rf"summary {schema}.region_revenue: its SELECT failed: .*nothing was"):
        build_summary(wh, _summary(schema, select=bad, checks=[]), WHEN)
    assert len(_rows(wh, f'SELECT * FROM "{schema}".region_revenue')) == 2


def test_changed_columns_under_a_postgres_view_are_refused_not_cascaded(
    pg_conninfo: dict[str, Any], pg_schema: str
) -> None:
    wh = PostgresWarehouse(pg_conninfo)
    _sql(wh, f'CREATE SCHEMA "{pg_schema}"')
    _sql(wh, f'CREATE TABLE "{pg_schema}".orders (id INTEGER, region VARCHAR(10), amount NUMERIC(10,2))')
    _sql(wh, f"INSERT INTO \"{pg_schema}\".orders VALUES (1, 'APAC', 10.00)")
    build_summary(wh, _summary(pg_schema), WHEN)
    _sql(wh, f'CREATE VIEW "{pg_schema}".v AS SELECT region FROM "{pg_schema}".region_revenue')
    wider = (
        "SELECT region, count(*) AS orders, sum(amount) AS amount, max(id) AS last_id"
        f" FROM {pg_schema}.orders GROUP BY region"
    )
    with pytest.raises(WarehouseError, match=r"its columns changed and other objects \(views\) depend on the table"):
        build_summary(wh, _summary(pg_schema, select=wider), WHEN)
    assert _rows(wh, f'SELECT * FROM "{pg_schema}".v') == [("APAC",)]


def test_grants_select_on_postgres(pg_conninfo: dict[str, Any], pg_schema: str) -> None:
    wh = PostgresWarehouse(pg_conninfo)
    role = f"hw_reader_{uuid.uuid4().hex[:8]}"
    _sql(wh, f'CREATE SCHEMA "{pg_schema}"')
    _sql(wh, f'CREATE TABLE "{pg_schema}".orders (id INTEGER, region VARCHAR(10), amount NUMERIC(10,2))')
    _sql(wh, f'CREATE ROLE "{role}"')
    try:
        build_summary(wh, _summary(pg_schema, input_checks=[], checks=[], grants=[role]), WHEN)
        granted = _rows(wh, f"SELECT has_table_privilege('{role}', '{pg_schema}.region_revenue', 'SELECT')")
        assert granted == [(True,)]
        with pytest.raises(WarehouseError, match=r"GRANT SELECT to no_such_role_hw failed"):
            build_summary(wh, _summary(pg_schema, input_checks=[], checks=[], grants=["no_such_role_hw"]), WHEN)
    finally:
        _sql(wh, f'DROP OWNED BY "{role}"')
        _sql(wh, f'DROP ROLE "{role}"')


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"select": "DELETE FROM raw.orders"}, "SELECT"),
        ({"table": "no_schema"}, "schema.table"),
        ({"input_checks": [{"table": "raw.orders"}]}, "needs 'min_rows'"),
        ({"input_checks": [{"sql": "SELECT 1", "min_rows": 1}]}, "goes with 'table'"),
        ({"grants": ["bad role"]}, "not a valid identifier"),
    ],
)
def test_malformed_summaries_are_config_errors(spec: dict[str, Any], problem: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=problem):
        _summary("analytics", **spec)

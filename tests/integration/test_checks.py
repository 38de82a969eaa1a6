"""Pipeline checks on the staged rows: each passes once and fails once, and a failure publishes nothing.

Run on DuckDB and on the real PostgreSQL, inside the load's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from headwater.checks import TableCheck
from headwater.errors import WarehouseError
from headwater.identifiers import TableName
from headwater.lake import LocalLake
from headwater.warehouse.base import Warehouse
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse
from tests.integration.helpers import stage

pytestmark = pytest.mark.integration

COLUMNS = (("id", "integer"), ("region", "text"), ("amount", "numeric(38,2)"), ("updated", "timestamp"))
GOOD = [
    ["1", "APAC", "10.00", "2026-01-04 10:00:00"],
    ["2", "NA", "5.50", "2026-01-04 23:00:00"],
    ["3", "EMEA", "7.25", "2026-01-03 08:00:00"],
]
WHEN = datetime(2026, 1, 5)


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Warehouse, str]]:
    if request.param == "duckdb":
        yield DuckDBWarehouse(tmp_path / "wh.duckdb"), "checks"
    else:
        conninfo: dict[str, Any] = request.getfixturevalue("pg_conninfo")
        yield PostgresWarehouse(conninfo), request.getfixturevalue("pg_schema")


def _load(
    wh: Warehouse,
    lake: LocalLake,
    target: TableName,
    rows: list[list[str | None]],
    checks: list[dict[str, Any]],
    run_id: str,
    keys: tuple[str, ...] = ("id",),
) -> Any:
    manifest = stage(lake, target, rows, columns=COLUMNS, run_id=run_id)
    parsed = [TableCheck.model_validate(c) for c in checks]
    return wh.load(manifest, lake, "replace", keys, checks=parsed, logical_date=WHEN)


def _rows(wh: Warehouse, target: TableName) -> list[tuple[Any, ...]]:
    with wh.query_rows(f"SELECT id, region FROM {target.sql} ORDER BY id") as (_, rows):
        return [tuple(r) for r in rows]


# (check, rows that fail it, the message it must give)
CASES: list[tuple[dict[str, Any], list[list[str | None]], str]] = [
    ({"min_rows": 3}, GOOD[:2], r"check min_rows\(3\) failed: 2 row\(s\), fewer than the 3 required"),
    (
        {"not_null": ["region", "amount"]},
        [GOOD[0], ["2", None, "5.50", "2026-01-04 23:00:00"], ["3", "EMEA", None, "2026-01-03 08:00:00"]],
        r"check not_null\(region, amount\) failed: 2 row\(s\) empty: id=2; id=3",
    ),
    (
        {"unique": ["region"]},
        [GOOD[0], ["2", "APAC", "5.50", "2026-01-04 23:00:00"], GOOD[2]],
        r"check unique\(region\) failed: 1 value\(s\) occur in more than one row: region='APAC'",
    ),
    (
        {"accepted_values": {"column": "region", "values": ["APAC", "NA", "EMEA"]}},
        [GOOD[0], ["2", "LATAM", "5.50", "2026-01-04 23:00:00"], GOOD[2]],
        r"check accepted_values\(region\) failed: 1 row\(s\) not an accepted value: id=2",
    ),
    (
        {"freshness": {"column": "updated", "max_age_hours": 24}},
        [["1", "APAC", "1.00", "2026-01-02 10:00:00"]],
        r"check freshness\(updated\) failed: the newest updated is 2026-01-02 10:00:00, 62.0 hours before",
    ),
    (
        {"max_row_drop_percent": 50},
        GOOD[:1],
        r"check max_row_drop_percent\(50\) failed: 1 row\(s\) would replace 3, a drop of 66.7%",
    ),
    (
        {"name": "no_negative_amounts", "sql": "SELECT id, amount FROM {table} WHERE amount < 0"},
        [GOOD[0], ["2", "NA", "-5.50", "2026-01-04 23:00:00"], GOOD[2]],
        r"check no_negative_amounts failed: 1 offending row\(s\): id=2",
    ),
]


@pytest.mark.parametrize(("check", "bad_rows", "message"), CASES, ids=[next(iter(c[0])) for c in CASES])
def test_each_check_passes_then_fails_and_publishes_nothing(
    warehouse: tuple[Warehouse, str],
    tmp_path: Path,
    check: dict[str, Any],
    bad_rows: list[list[str | None]],
    message: str,
) -> None:
    wh, schema = warehouse
    lake = LocalLake(tmp_path / "lake")
    target = TableName(schema, "orders")
    result = _load(wh, lake, target, GOOD, [check], "good")
    assert result.rows == 3
    before = _rows(wh, target)
    with pytest.raises(WarehouseError, match=message) as failure:
        _load(wh, lake, target, bad_rows, [check], "bad")
    assert "nothing was published" in str(failure.value)
    assert "-5.50" not in str(failure.value) and "LATAM" not in str(failure.value)  # keys only, never other cells
    assert _rows(wh, target) == before


def test_a_check_naming_a_missing_column_is_refused_and_publishes_nothing(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "wh.duckdb")
    lake = LocalLake(tmp_path / "lake")
    target = TableName("checks", "orders")
    _load(wh, lake, target, GOOD, [], "good")
    with pytest.raises(
        WarehouseError, match=r"check not_null\(regoin\): no column 'regoin' in the table \(columns: id"
    ):
        _load(wh, lake, target, GOOD[:1], [{"not_null": ["regoin"]}], "bad")
    assert len(_rows(wh, target)) == 3


def test_a_failing_check_without_keys_counts_rows_and_names_no_values(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "wh.duckdb")
    lake = LocalLake(tmp_path / "lake")
    target = TableName("checks", "orders")
    bad = [GOOD[0], ["2", None, "5.50", "2026-01-04 23:00:00"]]
    with pytest.raises(WarehouseError, match=r"1 row\(s\) empty \(declare the table's keys to have them named\)"):
        _load(wh, lake, target, bad, [{"not_null": ["region"]}], "bad", keys=())
    assert wh.columns(target) is None  # never created


def test_a_sql_check_that_does_not_run_names_the_check(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "wh.duckdb")
    lake = LocalLake(tmp_path / "lake")
    target = TableName("checks", "orders")
    check = {"name": "bad_sql", "sql": "SELECT * FROM {table} WHERE no_such_column > 0"}
    with pytest.raises(WarehouseError, match=r"check bad_sql: the check's query failed"):
        _load(wh, lake, target, GOOD, [check], "bad")
    assert wh.columns(target) is None


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        ({"min_rows": 1, "unique": ["id"]}, "exactly one of"),
        ({}, "exactly one of"),
        ({"sql": "SELECT 1"}, "reads the rows being loaded as {table}"),
        ({"sql": "DELETE FROM {table}"}, "SELECT"),
        ({"not_null": []}, "at least one column"),
        ({"not_null": ["bad name"]}, "column"),
        ({"freshness": {"column": "t", "max_age_hours": 0}}, "greater than 0"),
    ],
)
def test_malformed_checks_are_config_errors(check: dict[str, Any], problem: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=problem):
        TableCheck.model_validate(check)

"""Keys and numbers are what the user declared: NULL or repeated keys never publish, numbers are carried
exactly or refused with the source, column and row named; never silently rounded."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import WarehouseError
from headwater.export import ExportOptions, export_query_to_lake
from headwater.identifiers import TableName
from headwater.lake import LocalLake
from headwater.parts import read_manifest
from headwater.sources.sql import PostgresSource
from headwater.warehouse.base import Warehouse
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse

pytestmark = pytest.mark.integration


@pytest.fixture
def src(pg_conninfo: dict[str, Any], pg_schema: str) -> Iterator[str]:
    """A source schema in PostgreSQL with a table ``t`` the tests fill."""
    import psycopg

    with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{pg_schema}"')
    yield pg_schema


def fill(pg_conninfo: dict[str, Any], schema: str, ddl: str, rows: str) -> None:
    import psycopg

    with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{schema}".t')
        conn.execute(f'CREATE TABLE "{schema}".t ({ddl})')
        conn.execute(f'INSERT INTO "{schema}".t VALUES {rows}')


def export(pg_conninfo: dict[str, Any], schema: str, lake: LocalLake, target: str, fmt: str = "csv.gz") -> Any:
    result = export_query_to_lake(
        PostgresSource(pg_conninfo),
        f'SELECT * FROM "{schema}".t ORDER BY 1',
        lake,
        f"{lake.url}/{target}/{fmt}",
        options=ExportOptions(format=fmt),
        target=target,
    )
    return read_manifest(lake, result.manifest_uri)


def warehouses(tmp_path: Path, pg_conninfo: dict[str, Any], schema: str) -> list[tuple[Warehouse, str]]:
    return [(DuckDBWarehouse(tmp_path / "w.duckdb"), "raw.t"), (PostgresWarehouse(pg_conninfo), f"{schema}.t_out")]


def fetch(warehouse: Warehouse, table: str) -> list[tuple[Any, ...]]:
    with warehouse.query_rows(f"SELECT * FROM {table} ORDER BY 1") as (_, rows):
        return [tuple(r) for r in rows]


@pytest.mark.parametrize("bad", ["duplicate", "null"])
def test_upsert_with_repeated_or_empty_keys_fails_and_leaves_the_table_unchanged(
    tmp_path: Path, pg_conninfo: dict[str, Any], src: str, bad: str
) -> None:
    lake = LocalLake(tmp_path / "lake")
    for warehouse, target in warehouses(tmp_path, pg_conninfo, src):
        fill(pg_conninfo, src, "id int, v text", "(1, 'a'), (2, 'b')")
        warehouse.load(export(pg_conninfo, src, lake, target), lake, "upsert", keys=["id"])
        before = fetch(warehouse, target)
        rows = "(2, 'b2'), (2, 'b3'), (3, 'c')" if bad == "duplicate" else "(3, 'c'), (NULL, 'x')"
        fill(pg_conninfo, src, "id int, v text", rows)
        manifest = export(pg_conninfo, src, lake, target)
        message = "repeats: 1 key value(s) occur in more than one row" if bad == "duplicate" else "is empty in 1 row"
        for _ in range(2):  # and again: a rerun never inserts the bad rows either
            expected = rf"postgres .* -> {target}: key \(id\) {re.escape(message)}"
            with pytest.raises(WarehouseError, match=expected) as caught:
                warehouse.load(manifest, lake, "upsert", keys=["id"])
            assert "nothing was published" in str(caught.value)
            assert fetch(warehouse, target) == before
        row = 1 if bad == "duplicate" else 2
        assert f"(first at row {row})" in str(caught.value)


def test_a_key_the_source_lacks_is_named(tmp_path: Path, pg_conninfo: dict[str, Any], src: str) -> None:
    lake = LocalLake(tmp_path / "lake")
    fill(pg_conninfo, src, "id int", "(1)")
    with pytest.raises(WarehouseError, match=r"key column\(s\) code not in the source's columns"):
        DuckDBWarehouse(tmp_path / "w.duckdb").load(export(pg_conninfo, src, lake, "raw.t"), lake, "upsert", ["code"])


EXACT = [
    "1.123456789012345",
    "-0.000000000000000000001",
    "12345678901234567.5",
    "0",
    "100.10",
]


@pytest.mark.parametrize("fmt", ["csv.gz", "parquet"])
def test_unscaled_numeric_round_trips_exactly(tmp_path: Path, pg_conninfo: dict[str, Any], src: str, fmt: str) -> None:
    lake = LocalLake(tmp_path / "lake")
    values = ", ".join(f"({i}, '{v}'::numeric)" for i, v in enumerate(EXACT)) + f", ({len(EXACT)}, NULL)"
    fill(pg_conninfo, src, "id int, amount numeric", values)
    for warehouse, target in warehouses(tmp_path, pg_conninfo, src):
        if fmt == "parquet" and isinstance(warehouse, PostgresWarehouse):
            continue  # PostgreSQL loads CSV parts
        warehouse.load(export(pg_conninfo, src, lake, target, fmt), lake, "replace")
        got = [row[1] for row in fetch(warehouse, target)]
        assert got[:-1] == [Decimal(v) for v in EXACT] and got[-1] is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1" * 30 + "." + "1" * 10, "values need 30 digits before and 10 after the decimal point"),
        ("NaN", "1 value(s) are NaN or Infinity"),
    ],
)
def test_numerics_duckdb_cannot_hold_are_refused_and_postgres_carries_them(
    tmp_path: Path, pg_conninfo: dict[str, Any], src: str, value: str, problem: str
) -> None:
    lake = LocalLake(tmp_path / "lake")
    fill(pg_conninfo, src, "id int, amount numeric", f"(1, 1.5), (2, '{value}'::numeric)")
    duck, pg = warehouses(tmp_path, pg_conninfo, src)
    with pytest.raises(WarehouseError, match=rf"-> raw.t: column 'amount': {re.escape(problem)}.*\(first at row 2\)"):
        duck[0].load(export(pg_conninfo, src, lake, "raw.t"), lake, "replace")
    assert duck[0].columns(TableName("raw", "t")) is None  # nothing published
    pg[0].load(export(pg_conninfo, src, lake, pg[1]), lake, "replace")
    got = fetch(pg[0], pg[1])[1][1]
    assert got.is_nan() if value == "NaN" else got == Decimal(value)


def test_append_into_a_narrower_existing_column_is_refused_not_rounded(
    tmp_path: Path, pg_conninfo: dict[str, Any], src: str
) -> None:
    import duckdb

    lake = LocalLake(tmp_path / "lake")
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("CREATE SCHEMA raw; CREATE TABLE raw.t (id BIGINT, amount DECIMAL(38,2), _hw_batch VARCHAR)")
        conn.execute("INSERT INTO raw.t VALUES (0, 9.99, '2026-01-04')")
    fill(pg_conninfo, src, "id int, amount numeric", "(1, 1.25), (2, 1.239)")
    with pytest.raises(WarehouseError, match=r"3 after the decimal point, more than numeric\(38,2\).*row 2"):
        warehouse.load(export(pg_conninfo, src, lake, "raw.t"), lake, "append", batch="2026-01-05")
    assert fetch(warehouse, "raw.t") == [(0, Decimal("9.99"), "2026-01-04")]
    fill(pg_conninfo, src, "id int, amount numeric", "(1, 1.25), (2, 1.2)")  # fits: appended exactly
    warehouse.load(export(pg_conninfo, src, lake, "raw.t"), lake, "append", batch="2026-01-05")
    assert [r[1] for r in fetch(warehouse, "raw.t")] == [Decimal("9.99"), Decimal("1.25"), Decimal("1.20")]


@pytest.mark.parametrize("fmt", ["csv.gz", "parquet"])
def test_double_infinity_and_nan_are_carried_as_doubles(
    tmp_path: Path, pg_conninfo: dict[str, Any], src: str, fmt: str
) -> None:
    lake = LocalLake(tmp_path / "lake")
    fill(pg_conninfo, src, "id int, x double precision", "(1, 'Infinity'), (2, '-Infinity'), (3, 'NaN'), (4, 0.5)")
    for warehouse, target in warehouses(tmp_path, pg_conninfo, src):
        if fmt == "parquet" and isinstance(warehouse, PostgresWarehouse):
            continue
        warehouse.load(export(pg_conninfo, src, lake, target, fmt), lake, "replace")
        got = [row[1] for row in fetch(warehouse, target)]
        assert got[0] == math.inf and got[1] == -math.inf and math.isnan(got[2]) and got[3] == 0.5


@pytest.mark.parametrize("fmt", ["csv.gz", "parquet"])
def test_null_rows_of_a_one_column_table_survive_the_round_trip(
    tmp_path: Path, pg_conninfo: dict[str, Any], src: str, fmt: str
) -> None:
    """In CSV a NULL row of a one-column table is an empty line; no reader may skip it."""
    lake = LocalLake(tmp_path / "lake")
    fill(pg_conninfo, src, "v int", "(1), (NULL), (3), (NULL)")
    manifest = export(pg_conninfo, src, lake, "raw.t", fmt)
    assert manifest.rows == 4
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.load(manifest, lake, "replace")
    with warehouse.query_rows("SELECT v FROM raw.t ORDER BY v NULLS LAST") as (_, rows):
        assert [r[0] for r in rows] == [1, 3, None, None]


def test_numeric_keys_that_differ_only_in_scale_are_one_key(
    tmp_path: Path, pg_conninfo: dict[str, Any], src: str
) -> None:
    """1.0 and 1.00 are the same number: an upsert on them must refuse, not publish both."""
    lake = LocalLake(tmp_path / "lake")
    fill(pg_conninfo, src, "k numeric, v text", "(1.0, 'a'), (1.00, 'b')")
    for warehouse, target in warehouses(tmp_path, pg_conninfo, src):
        with pytest.raises(WarehouseError, match=rf"-> {target}: key \(k\) repeats"):
            warehouse.load(export(pg_conninfo, src, lake, target), lake, "upsert", keys=["k"])

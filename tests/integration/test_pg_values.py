"""Every kind of PostgreSQL value through the COPY exporter into the lake (csv.gz, csv.zst, Parquet) and back out
of a PostgreSQL and a DuckDB warehouse, compared row by row with what psycopg reads from the source."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from headwater.export import ExportOptions, export_query_to_lake
from headwater.identifiers import TableName
from headwater.lake import LocalLake
from headwater.parts import read_manifest
from headwater.sources.sql import PostgresSource
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse

pytestmark = pytest.mark.integration

BIG = Decimal("9999999999999999999999999999.9999999999")
NEG = Decimal("-9999999999999999999999999999.9999999999")  # not -BIG: unary minus rounds to 28 digits
ROWS: list[tuple[Any, ...]] = [
    (1, None, 'he said "hi",\nthen left', b"\x00\xff\x10", date(2026, 1, 5),
     datetime(2026, 1, 5, 10, 11, 12, 123456), datetime(2026, 1, 5, 1, 2, 3, 999999, UTC), BIG, 1.5, True),
    (2, "", "😀 이모지 \\ back\\slash", None, date(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999),
     datetime(1970, 1, 1, 0, 0, 0, 1, UTC), NEG, None, False),
    (3, "NULL", ",;\t", b"", None, None, None, Decimal("0.0000000001"), -0.0, None),
    (4, " ", "\r\n", b'"', date(2024, 2, 29), datetime(1970, 1, 1), datetime(2024, 2, 29, 23, 0, tzinfo=UTC),
     Decimal(0), 1e300, True),
]  # fmt: skip
COLUMNS = (
    "id int PRIMARY KEY, s varchar(20), t text, b bytea, d date, ts timestamp(6), tz timestamptz, "
    "amount numeric(38,10), f double precision, flag boolean"
)


def as_exported(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A source row as headwater documents it arrives: bytea as PostgreSQL's ``\\x`` hex text."""
    b = row[3]
    return (*row[:3], None if b is None else "\\x" + b.hex(), *row[4:])


@pytest.fixture
def values_table(pg_conninfo: dict[str, Any], pg_schema: str) -> TableName:
    import psycopg

    with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{pg_schema}"')
        conn.execute(f'CREATE TABLE "{pg_schema}".src ({COLUMNS})')
        with conn.cursor() as cur:
            cur.executemany(f'INSERT INTO "{pg_schema}".src VALUES ({", ".join(["%s"] * 10)})', ROWS)
        assert conn.execute(f'SELECT * FROM "{pg_schema}".src ORDER BY id').fetchall() == ROWS
    return TableName(pg_schema, "src")


@pytest.mark.parametrize("fmt", ["csv.gz", "csv.zst", "parquet"])
def test_every_value_comes_back_exactly(
    values_table: TableName, pg_conninfo: dict[str, Any], tmp_path: Path, fmt: str
) -> None:
    import psycopg

    lake = LocalLake(tmp_path / "lake")
    result = export_query_to_lake(
        PostgresSource(pg_conninfo),
        f"SELECT * FROM {values_table.sql} ORDER BY id",
        lake,
        lake.url + "/v",
        options=ExportOptions(format=fmt, rows_per_part=3),
        target=f"{values_table.schema}.back",
    )
    assert (result.rows, result.parts) == (4, 2)
    manifest = read_manifest(lake, result.manifest_uri)
    types = {c["name"]: c["type"] for c in manifest.columns}
    kinds = (types["amount"], types["tz"], types["ts"], types["b"])
    assert kinds == ("numeric(38,10)", "timestamptz", "timestamp", "text")
    expected = [as_exported(r) for r in ROWS]

    if fmt != "parquet":  # PostgreSQL loads CSV parts only
        PostgresWarehouse(pg_conninfo).load(manifest, lake, "replace")
        with psycopg.connect(**pg_conninfo) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            back = conn.execute(f'SELECT * FROM "{values_table.schema}".back ORDER BY id').fetchall()
        assert back == expected  # NULL vs '', 'NULL', quotes, newlines, emoji, 38-digit decimals, microseconds

    duck = DuckDBWarehouse(tmp_path / "w.duckdb")
    duck.load(manifest, lake, "replace")
    with duck.session() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        loaded = [tuple(r) for r in duck._run(conn, f"SELECT * FROM {values_table.schema}.back ORDER BY id")]
    assert loaded == expected


@pytest.mark.parametrize("fmt", ["parquet"])
def test_a_value_past_its_parquet_type_names_row_and_column(
    tmp_path: Path, pg_conninfo: dict[str, Any], fmt: str
) -> None:
    """numeric(50,0) is exported as numeric(38,0), the most a warehouse holds: a wider value stops the export
    naming its row (counted across parts) and column, not quoting it; nothing is published."""
    from headwater.errors import SourceError

    lake = LocalLake(tmp_path / "lake")
    query = (
        "SELECT g AS id, (CASE WHEN g = 25 THEN 10::numeric ^ 40 ELSE g END)::numeric(50,0) AS big"
        " FROM generate_series(1, 30) g"
    )
    with pytest.raises(SourceError) as caught:
        export_query_to_lake(
            PostgresSource(pg_conninfo), query, lake, lake.url + "/x", options=ExportOptions(fmt, rows_per_part=10)
        )
    message = str(caught.value)
    assert (
        "row 25, column 'big': a value that does not convert to decimal128(38, 0) (more digits than it holds)"
        in message
    )
    assert "10000000000" not in message and message.startswith("postgres ")
    assert lake.list_uris(lake.url) == []


@pytest.mark.parametrize("fmt", ["csv.gz", "parquet"])
def test_arrays_are_text_in_postgres_own_form(tmp_path: Path, pg_conninfo: dict[str, Any], fmt: str) -> None:
    """psycopg names an array's type after its element: an int4[] must not become an integer column."""
    lake = LocalLake(tmp_path / "lake")
    query = (
        "SELECT 1 AS id, ARRAY[1, NULL, 3] AS ints, ARRAY[1.50, 2]::numeric(5,2)[] AS amounts,"
        """ ARRAY['a"b', NULL, 'c,d'] AS notes, ARRAY[timestamptz '2024-01-02 03:04:05+00'] AS ats"""
    )
    result = export_query_to_lake(
        PostgresSource(pg_conninfo), query, lake, lake.url + "/x", options=ExportOptions(fmt), target="main.arrays"
    )
    manifest = read_manifest(lake, result.manifest_uri)
    assert {c["name"]: c["type"] for c in manifest.columns} == {
        "id": "integer", "ints": "text", "amounts": "text", "notes": "text", "ats": "text",
    }  # fmt: skip
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")
    warehouse.load(manifest, lake, "replace")
    with warehouse.query_rows("SELECT ints, amounts, notes, ats FROM main.arrays") as (_, rows):
        assert [tuple(r) for r in rows] == [
            ("{1,NULL,3}", "{1.50,2.00}", '{"a\\"b",NULL,"c,d"}', '{"2024-01-02 03:04:05+00"}')
        ]

"""Every kind of MariaDB value through the C-client exporter into the lake (csv.gz, csv.zst, Parquet) and
back out of a DuckDB warehouse, compared row by row with what PyMySQL reads from the source."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from headwater.errors import SourceError
from headwater.export import ExportOptions, export_query_to_lake
from headwater.lake import LocalLake
from headwater.parts import read_manifest
from headwater.sources.mysql import MySQLSource
from headwater.warehouse.duckdb import DuckDBWarehouse
from tests.conftest import MARIADB as MYSQL
from tests.conftest import mariadb_table

pytestmark = pytest.mark.integration

BIG = Decimal("9999999999999999999999999999.9999999999")
NEG = Decimal("-9999999999999999999999999999.9999999999")  # not -BIG: unary minus rounds to 28 digits
ROWS = [
    (
        1,
        None,
        'he said "hi",\nthen left',
        b"\x00\xff\x10",
        "2026-01-05",
        "2026-01-05 10:11:12.123456",
        BIG,
        1.5,
        2**64 - 1,
    ),
    (2, "", "😀 이모지 \\ back\\slash", None, "1000-01-01", "9999-12-31 23:59:59.999999", NEG, None, 0),
    (3, "NULL", ",;\t", b"", None, None, Decimal("0.0000000001"), -0.0, None),
    (4, " ", "\r\n", b'"', "2024-02-29", "1970-01-01 00:00:00.000001", Decimal(0), 1e300, 1),
]


@pytest.fixture
def values_table() -> Iterator[str]:
    columns = (
        "id INT PRIMARY KEY, s VARCHAR(20) NULL, t TEXT, b VARBINARY(10), d DATE, dt DATETIME(6), "
        "amount DECIMAL(38,10), f DOUBLE, big BIGINT UNSIGNED"
    )
    with mariadb_table("hw_values", columns, ROWS) as (_, table):
        yield table


@pytest.mark.parametrize("fmt", ["csv.gz", "csv.zst", "parquet"])
def test_every_value_comes_back_exactly(values_table: str, tmp_path: Path, fmt: str) -> None:
    lake = LocalLake(tmp_path / "lake")
    result = export_query_to_lake(
        MySQLSource(MYSQL, fetch_rows=3),
        f"SELECT * FROM {values_table} ORDER BY id",
        lake,
        lake.url + "/v",
        options=ExportOptions(format=fmt, rows_per_part=3),
        target="raw.values",
    )
    assert (result.rows, result.parts) == (4, 2)
    manifest = read_manifest(lake, result.manifest_uri)
    types = {c["name"]: c["type"] for c in manifest.columns}
    assert types["amount"] == "numeric(38,10)" and types["big"] == "numeric(20,0)" and types["dt"] == "timestamp"
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.load(manifest, lake, "replace")
    with warehouse.session() as conn:
        loaded = warehouse._run(conn, "SELECT * FROM raw.values ORDER BY id")
    expected = []
    for row in ROWS:
        id_, s, t, b, d, dt, amount, f, big = row
        expected.append((
            id_, s, t, None if b is None else "\\x" + b.hex(),
            None if d is None else datetime.fromisoformat(d).date(),
            None if dt is None else datetime.fromisoformat(dt),
            amount, f, None if big is None else Decimal(big),
        ))  # fmt: skip
    assert [tuple(r) for r in loaded] == expected  # NULL vs '', 'NULL', quotes, newlines, emoji, exact decimals


def test_a_zero_date_is_refused_naming_row_and_column(values_table: str, tmp_path: Path) -> None:
    import pymysql

    with pymysql.connect(**MYSQL, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute(f"UPDATE {values_table} SET d = '0000-00-00' WHERE id = 3")
    lake = LocalLake(tmp_path / "lake")
    with pytest.raises(SourceError, match=r"row 3, column 'd': the zero date '0000-00-00' has no value"):
        export_query_to_lake(
            MySQLSource(MYSQL), f"SELECT * FROM {values_table} ORDER BY id", lake, lake.url + "/z",
            options=ExportOptions(rows_per_part=2),
        )  # fmt: skip
    assert lake.list_uris(lake.url + "/z") == []  # nothing published, no part left


def test_mysql_and_the_c_client_stream_the_same_csv_as_before(values_table: str) -> None:
    """The CSV convention every headwater part shares: every value quoted, NULL an empty unquoted field."""
    with MySQLSource(MYSQL).stream(f"SELECT id, s, t FROM {values_table} WHERE id IN (1, 2, 3) ORDER BY id") as s:
        data = b"".join(chunk for chunk, _ in s.chunks(1000)).decode("utf-8")
    assert data == '"1",,"he said ""hi"",\nthen left"\n"2","","😀 이모지 \\ back\\slash"\n"3","NULL",",;\t"\n'


def test_decimals_keep_their_declared_precision(values_table: str) -> None:
    """The C client reports no column length on an unbuffered result; the declared precision is read apart
    (a LIMIT 0 of the same query), so DECIMAL(12,3) is numeric(12,3), not numeric(38,3)."""
    import pymysql

    with pymysql.connect(**MYSQL, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"ALTER TABLE {values_table} ADD d5 DECIMAL(5,0), ADD d12 DECIMAL(12,3), ADD d1 DECIMAL(1,1)")
    query = (
        f"SELECT id, d5, d12, d1, amount, 1.5 AS lit, SUM(d12) AS total, %s AS param FROM {values_table}"
        " GROUP BY id, d5, d12, d1, amount"
    )
    with MySQLSource(MYSQL).stream(query, [Decimal("12.25")]) as s:
        kinds = {c.name: str(c.type) for c in s.columns}
        assert sum(n for _, n in s.chunks(1000)) == 4
    assert kinds == {
        "id": "integer",
        "d5": "numeric(5,0)",
        "d12": "numeric(12,3)",
        "d1": "numeric(1,1)",
        "amount": "numeric(38,10)",
        "lit": "numeric(2,1)",
        "total": "numeric(34,3)",  # as MariaDB declares SUM of a DECIMAL(12,3)
        "param": "numeric(4,2)",
    }

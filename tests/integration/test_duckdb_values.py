"""Every kind of DuckDB value through the exporter (csv.gz and Parquet), read back and compared: types Arrow's
CSV writer refuses (lists, structs, maps, intervals, enums) arrive as text, binary as bytea text, as from the
other sources; columns a warehouse could not tell apart are refused before a row is read."""

from __future__ import annotations

import gzip
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import SourceError
from headwater.export import ExportOptions, export_query_to_lake
from headwater.lake import LocalLake
from headwater.parts import read_manifest
from headwater.sources.sql import DuckDBSource, PostgresSource

pytestmark = pytest.mark.integration

TABLE = r"""
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE t (id INTEGER, b BLOB, l INTEGER[], s STRUCT(x INTEGER, y VARCHAR), m MAP(VARCHAR, INTEGER),
    a INTEGER[2], i INTERVAL, e mood, bits BIT, tt TIME, tz TIMETZ, u UBIGINT, h HUGEINT, g UUID,
    ns TIMESTAMP_NS, note VARCHAR);
INSERT INTO t VALUES
 (1, '\x00\xFF\x10'::BLOB, [1, NULL, 3], {'x': 1, 'y': 'é "q"'}, MAP {'k': 1}, [1, 2], INTERVAL 1 DAY,
  'ok', '101'::BIT, TIME '12:00:01.5', '12:00:00+01'::TIMETZ, 18446744073709551615,
  -99999999999999999999999999999999999999, '00000000-0000-0000-0000-000000000001',
  TIMESTAMP_NS '2024-01-02 03:04:05.123456', 'plain'),
 (2, ''::BLOB, [], {'x': NULL, 'y': NULL}, MAP {}, NULL, INTERVAL '1 year 2 months 3 seconds', 'sad', NULL, NULL,
  NULL, 0, 0, NULL, NULL, ''),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"""
EXPECTED_TEXT = {  # column: (row 1, row 2) as text
    "b": ("\\x00ff10", "\\x"),
    "l": ("[1,null,3]", "[]"),
    "s": ('{"x":1,"y":"é \\"q\\""}', '{"x":null,"y":null}'),
    "m": ('{"k":1}', "{}"),
    "a": ("[1,2]", None),
    "i": ("1 day", "1 year 2 months 00:00:03"),
    "e": ("ok", "sad"),
    "bits": ("101", None),
    "tz": ("12:00:00+01", None),
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    import duckdb

    path = tmp_path / "values.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(TABLE)
    return path


def export(db: Path, tmp_path: Path, fmt: str, query: str = "SELECT * FROM t ORDER BY id") -> list[dict[str, Any]]:
    lake = LocalLake(tmp_path / f"lake-{uuid.uuid4().hex[:6]}")
    result = export_query_to_lake(DuckDBSource(str(db)), query, lake, lake.url + "/x", options=ExportOptions(fmt))
    manifest = read_manifest(lake, result.manifest_uri)
    kinds = {c["name"]: c["type"] for c in manifest.columns}
    assert kinds["u"] == "numeric(20,0)" and kinds["h"] == "numeric(38,0)" and kinds["id"] == "integer"
    assert all(kinds[name] == "text" for name in EXPECTED_TEXT)
    with lake.local_copy(manifest.parts[0].uri) as path:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_table(path).to_pylist())
        import csv

        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))


@pytest.mark.parametrize("fmt", ["parquet", "csv.gz"])
def test_every_duckdb_type_comes_back(db: Path, tmp_path: Path, fmt: str) -> None:
    rows = export(db, tmp_path, fmt)
    assert [str(r["id"]) for r in rows] == ["1", "2", "3"]
    for name, (first, second) in EXPECTED_TEXT.items():
        got = [rows[0][name], rows[1][name], rows[2][name]]
        if fmt == "csv.gz":  # CSV: NULL is an empty unquoted field, read back here as ""
            assert got == [first, second or "", ""], name
        else:
            assert got == [first, second, None], name
    one = rows[0]
    if fmt == "parquet":
        assert one["u"] == Decimal(2**64 - 1) and one["h"] == Decimal("-" + "9" * 38)
        assert one["tt"] == "12:00:01.500000" and one["g"] == "00000000-0000-0000-0000-000000000001"
        assert one["ns"] == datetime(2024, 1, 2, 3, 4, 5, 123456)
        assert rows[1]["note"] == "" and rows[2]["note"] is None
    else:
        assert one["u"] == str(2**64 - 1) and one["h"] == "-" + "9" * 38
        assert one["ns"] == "2024-01-02 03:04:05.123456"


def test_plain_types_pass_through_unchanged(db: Path, tmp_path: Path) -> None:
    query = (
        "SELECT 1::TINYINT AS tiny, 2.5::DECIMAL(5,2) AS amount, DATE '2024-02-29' AS day, TIME '01:02:03' AS t,"
        " TIMESTAMPTZ '2024-01-02 03:04:05+00' AS at, true AS flag, 0.25::FLOAT AS ratio, 'x' AS label, * FROM t"
        " WHERE id = 1"
    )
    row = export(db, tmp_path, "parquet", query)[0]
    assert row["tiny"] == 1 and row["amount"] == Decimal("2.50") and row["day"] == date(2024, 2, 29)
    assert row["t"] == str(time(1, 2, 3)) + ".000000" and row["flag"] is True and row["ratio"] == 0.25
    assert row["at"].isoformat() == "2024-01-02T03:04:05+00:00"


@pytest.mark.parametrize("kind", ["HUGEINT", "UHUGEINT"])
@pytest.mark.parametrize("fmt", ["parquet", "csv.gz"])
def test_a_hugeint_past_38_digits_is_refused_naming_the_column(tmp_path: Path, kind: str, fmt: str) -> None:
    import duckdb

    path = tmp_path / "big.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(f"CREATE TABLE big AS SELECT i AS id, (10::{kind} ** 37 * i)::{kind} AS n FROM range(1, 12) r(i)")
    lake = LocalLake(tmp_path / "lake")
    with pytest.raises(SourceError) as caught:
        export_query_to_lake(
            DuckDBSource(str(path)), "SELECT * FROM big", lake, lake.url + "/x", options=ExportOptions(fmt)
        )
    assert "column 'n': a value of more than 38 digits, past numeric(38,0)" in str(caught.value)
    assert "10000000000" not in str(caught.value)  # the value itself is cell data
    assert lake.list_uris(lake.url) == []


def test_a_timestamp_with_nanoseconds_is_refused_naming_the_column(db: Path, tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    query = "SELECT id, ns + INTERVAL 1 MICROSECOND AS fine, TIMESTAMP_NS '2024-01-02 03:04:05.000000001' AS odd FROM t"
    with pytest.raises(SourceError, match="column 'odd': a timestamp with nanoseconds; CAST it AS TIMESTAMP"):
        export_query_to_lake(DuckDBSource(str(db)), query, lake, lake.url + "/x")
    assert lake.list_uris(lake.url) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT id, note AS ID FROM t", "columns 'id' and 'ID' (column 2) have the same name to a warehouse"),
        ("SELECT 1 AS a, 2 AS a", "columns 'a' and 'a' (column 2)"),
        ("SELECT count(*) FROM t", "column 1 'count_star()' is not a valid identifier"),
    ],
)
def test_columns_a_warehouse_cannot_name_are_refused_before_writing(
    db: Path, tmp_path: Path, query: str, message: str
) -> None:
    lake = LocalLake(tmp_path / "lake")
    with pytest.raises(SourceError) as caught:
        export_query_to_lake(DuckDBSource(str(db)), query, lake, lake.url + "/x")
    assert message in str(caught.value) and "expression AS name" in str(caught.value)
    assert str(db) in str(caught.value)
    assert lake.list_uris(lake.url) == []


def test_postgres_columns_are_checked_before_writing(tmp_path: Path, pg_conninfo: dict[str, Any]) -> None:
    lake = LocalLake(tmp_path / "lake")
    for query, message in [
        ("SELECT 1", "column 1 '?column?' is not a valid identifier"),
        ('SELECT 1 AS a, 2 AS "A"', "columns 'a' and 'A' (column 2)"),
    ]:
        with pytest.raises(SourceError, match="expression AS name") as caught:
            export_query_to_lake(PostgresSource(pg_conninfo), query, lake, lake.url + "/x")
        assert message in str(caught.value)
    assert lake.list_uris(lake.url) == []

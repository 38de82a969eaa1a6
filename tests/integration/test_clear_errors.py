"""Clear errors everywhere: each names the file, entry or table, row and column; never a bare exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from headwater.coltypes import CastError, ColumnType, cast
from headwater.errors import ConfigError, LakeError
from headwater.export import export_query_to_lake
from headwater.identifiers import TableName
from headwater.lake import LocalLake
from headwater.parts import read_manifest
from headwater.sources.sql import PostgresSource
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse
from tests.integration.helpers import stage

pytestmark = pytest.mark.integration


def test_a_config_file_that_is_not_utf8_names_file_and_line(tmp_path: Path) -> None:
    from headwater.config import load_config

    path = tmp_path / "p.yaml"
    path.write_bytes("pipelines:\n  p:\n    description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"p.yaml: not UTF-8 text \(line 3, byte 36\)"):
        load_config(path)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"format": "xlsx"}, "unknown part format 'xlsx'"),
        ({"columns": [{"name": "id", "type": "money"}]}, "column 1 of the manifest: unknown column type 'money'"),
        ({"columns": [{"name": "id; drop", "type": "integer"}]}, "column 1 of the manifest: column 'id; drop'"),
        ({"rows": 99}, "lists 99 rows but its parts add up to 1"),
        ({"parts": [{"uri": "x"}]}, "not a valid headwater manifest"),
    ],
)
def test_a_damaged_manifest_is_named_with_what_is_wrong(tmp_path: Path, change: dict[str, Any], problem: str) -> None:
    lake = LocalLake(tmp_path)
    manifest = stage(lake, TableName("raw", "t"), [["1", "a", "1.00"]])
    uri = manifest.parts[0].uri.rsplit("/", 1)[0] + "/_manifest.json"
    data = json.loads(lake.read_bytes(uri))
    data.update(change)
    lake.write_bytes(uri, json.dumps(data).encode())
    with pytest.raises(LakeError, match=rf"_manifest.json: .*{problem}".replace("(", r"\(").replace(")", r"\)")):
        read_manifest(lake, uri)
    lake.write_bytes(uri, b"\xff\xfe not text")
    with pytest.raises(LakeError, match="not UTF-8 text"):
        read_manifest(lake, uri)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1_000", "is not a number"),
        ("NaN", "is not a finite number"),
        ("Infinity", "is not a finite number"),
        ("1e999999999", "is out of range"),
        ("12,5", "is not a number"),
    ],
)
def test_numbers_a_decimal_parser_would_take_or_choke_on_are_refused_clearly(value: str, problem: str) -> None:
    with pytest.raises(CastError, match=problem):
        cast(value, ColumnType.parse("numeric(12,2)"))


def test_a_row_longer_than_duckdbs_default_line_loads(
    tmp_path: Path, pg_conninfo: dict[str, Any], pg_schema: str
) -> None:
    """DuckDB's CSV reader stops at 2 MB lines by default; parts record how long their rows get."""
    lake = LocalLake(tmp_path / "lake")
    query = "SELECT 1 AS id, repeat('x', 3000000) AS body UNION ALL SELECT 2, 'short'"
    result = export_query_to_lake(PostgresSource(pg_conninfo), query, lake, lake.url + "/wide", target="raw.wide")
    manifest = read_manifest(lake, result.manifest_uri)
    assert manifest.parts[0].max_row_bytes >= 3_000_000
    for warehouse, table in (
        (DuckDBWarehouse(tmp_path / "w.duckdb"), "raw.wide"),
        (PostgresWarehouse(pg_conninfo), f"{pg_schema}.wide"),
    ):
        manifest.target = table
        warehouse.load(manifest, lake, "replace")
        with warehouse.query_rows(f"SELECT id, length(body) FROM {table} ORDER BY id") as (_, rows):
            assert [tuple(r) for r in rows] == [(1, 3_000_000), (2, 5)]

"""Config SQL stays one read-only statement: refused at validation, and enforced at run time even when the
validation is bypassed (operators used directly, a check that cannot see a data-modifying CTE)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import ConfigError, HeadwaterError
from headwater.identifiers import TableName
from headwater.lake import LocalLake
from headwater.sql_guard import UnsafeQueryError, check_single_select
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse
from tests.conftest import service_missing
from tests.integration.helpers import stage

pytestmark = pytest.mark.integration

MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}


@pytest.mark.parametrize(
    "query",
    ["SELECT 1; COMMIT; DROP TABLE raw.orders", "DROP TABLE raw.orders", "select 1; select 2", "-- nothing", ""],
)
@pytest.mark.parametrize("where", ["tables", "sheet_exports"])
def test_unsafe_config_sql_is_refused_at_validation(tmp_path: Path, query: str, where: str) -> None:
    import yaml

    from headwater.config import load_config

    entry: dict[str, Any] = (
        {"table": "raw.t", "conn_id": "src", "query": query}
        if where == "tables"
        else {"name": "out", "query": query, "spreadsheet": "1AbCdEfGhIjKlMnOp", "tab": "T"}
    )
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"pipelines": {"p": {where: [entry]}}}))
    with pytest.raises(ConfigError, match=rf"pipelines\.p\.{where}\[0\]\.query: query"):
        load_config(path)


@pytest.mark.parametrize(
    ("query", "cleaned"),
    [
        ("SELECT * FROM t WHERE a LIKE 'x%' -- trailing comment", "SELECT * FROM t WHERE a LIKE 'x%'"),
        ("select 'a;b' as s;", "select 'a;b' as s"),
        ("WITH a AS (SELECT 1) SELECT * FROM a", "WITH a AS (SELECT 1) SELECT * FROM a"),
        ("(select 1) union (select 2)", "(select 1) union (select 2)"),
    ],
)
def test_one_select_with_comments_and_literals_is_accepted(query: str, cleaned: str) -> None:
    assert check_single_select(query) == cleaned


@pytest.fixture
def victim(pg_conninfo: dict[str, Any], pg_schema: str) -> Iterator[str]:
    import psycopg

    with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{pg_schema}"')
        conn.execute(f'CREATE TABLE "{pg_schema}".victim AS SELECT g AS id FROM generate_series(1, 3) g')
    yield f'"{pg_schema}".victim'


def pg_rows(pg_conninfo: dict[str, Any], table: str) -> int:
    import psycopg

    with psycopg.connect(**pg_conninfo) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


@pytest.fixture
def no_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch the parse-time check off, to show the run-time layer holds on its own."""
    for module in ("headwater.sources.sql", "headwater.warehouse.base"):
        monkeypatch.setattr(f"{module}.check_single_select", lambda query, what="query": query)


def smuggled(table: str) -> list[str]:
    return [
        f"SELECT 1 AS a) AS x; COMMIT; DROP TABLE {table}; SELECT * FROM (SELECT 1",
        f"SELECT 1; COMMIT; DROP TABLE {table}",
        f"WITH d AS (DELETE FROM {table} RETURNING *) SELECT * FROM d",
    ]


def test_postgres_source_runs_one_read_only_statement(
    pg_conninfo: dict[str, Any], victim: str, tmp_path: Path, no_guard: None
) -> None:
    from headwater.export import export_query_to_lake
    from headwater.sources.sql import PostgresSource

    source = PostgresSource(pg_conninfo)
    lake = LocalLake(tmp_path)
    for query in smuggled(victim):
        with pytest.raises(HeadwaterError):
            export_query_to_lake(source, query, lake, lake.url + "/x")
        with pytest.raises(HeadwaterError):
            source.scalar(query)
        assert pg_rows(pg_conninfo, victim) == 3
    assert not list(tmp_path.rglob("_manifest.json"))


def test_the_guard_refuses_before_anything_runs(pg_conninfo: dict[str, Any], victim: str) -> None:
    from headwater.sources.sql import PostgresSource

    for query in smuggled(victim)[:2]:
        with pytest.raises(UnsafeQueryError, match="statements"):
            PostgresSource(pg_conninfo).scalar(query)


def test_postgres_warehouse_write_back_query_cannot_write(
    pg_conninfo: dict[str, Any], victim: str, no_guard: None
) -> None:
    warehouse = PostgresWarehouse(pg_conninfo)
    for query in [*smuggled(victim), f"DROP TABLE {victim}", f"CREATE TABLE {victim}_2 (a int)"]:
        with pytest.raises(HeadwaterError), warehouse.query_rows(query) as (_, rows):
            list(rows)
        assert pg_rows(pg_conninfo, victim) == 3


def test_duckdb_warehouse_write_back_query_cannot_write(tmp_path: Path, no_guard: None) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    lake = LocalLake(tmp_path / "lake")
    warehouse.load(stage(lake, TableName("raw", "t"), [["1", "a", "1.00"]]), lake, "replace")
    for query in [
        "SELECT 1; DROP TABLE raw.t",
        "DROP TABLE raw.t",
        "CREATE TABLE raw.u AS SELECT 1",
        "DELETE FROM raw.t",
    ]:
        with pytest.raises(HeadwaterError), warehouse.query_rows(query) as (_, rows):
            list(rows)
        assert warehouse.row_count(TableName("raw", "t")) == 1
    with warehouse.query_rows("SELECT count(*) AS n FROM raw.t -- fine") as (names, rows):
        assert names == ["n"] and list(rows) == [(1,)]


def test_duckdb_source_runs_one_statement(tmp_path: Path, no_guard: None) -> None:
    import duckdb

    from headwater.sources.sql import DuckDBSource

    path = tmp_path / "src.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE victim AS SELECT 1 AS id")
    source = DuckDBSource(str(path))
    with pytest.raises(HeadwaterError, match="2 statements"), source.stream("SELECT 1; DROP TABLE victim"):
        pass
    with duckdb.connect(str(path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM victim").fetchone() == (1,)


def test_mysql_source_runs_one_read_only_statement(no_guard: None) -> None:
    import pymysql

    from headwater.sources.sql import MySQLSource

    try:
        conn = pymysql.connect(**MYSQL, connect_timeout=3, autocommit=True)
    except pymysql.Error as exc:
        service_missing("MariaDB on 127.0.0.1:3306", str(exc))
    table = f"hw_victim_{uuid.uuid4().hex[:8]}"
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (id INT)")
            cur.execute(f"INSERT INTO {table} VALUES (1), (2)")
        source = MySQLSource(MYSQL)
        for query in (f"SELECT 1; DROP TABLE {table}", f"DELETE FROM {table}"):
            with pytest.raises(HeadwaterError):
                source.scalar(query)
            with pytest.raises(HeadwaterError), source.stream(query) as stream:
                list(stream.chunks(1000))
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            assert cur.fetchone() == (2,)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()

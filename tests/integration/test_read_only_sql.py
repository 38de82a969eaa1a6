"""Config SQL stays one read-only statement: refused at validation, and enforced at run time even when the
validation is bypassed (operators used directly, a check that cannot see a data-modifying CTE)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import ConfigError, SourceError, WarehouseError
from headwater.identifiers import TableName
from headwater.lake import LocalLake
from headwater.sql_guard import UnsafeQueryError, check_single_select
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse
from tests.conftest import MARIADB as MYSQL
from tests.conftest import mariadb_table
from tests.integration.helpers import stage

pytestmark = pytest.mark.integration


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
    for module in ("headwater.sources.sql", "headwater.sources.mysql", "headwater.warehouse.base"):
        monkeypatch.setattr(f"{module}.check_single_select", lambda query, what="query": query)


MULTI = "cannot insert multiple commands into a prepared statement"  # the extended protocol's refusal

# (query, the export's error, the scalar query's error, the write-back query's error): each layer refuses.
ATTACKS = [
    (
        "SELECT 1 AS a) AS x; COMMIT; DROP TABLE {t}; SELECT * FROM (SELECT 1",
        MULTI,
        'syntax error at or near "\\)"',
        'syntax error at or near "\\)"',
    ),
    ("SELECT 1; COMMIT; DROP TABLE {t}", 'syntax error at or near ";"', MULTI, MULTI),
    (
        "WITH d AS (DELETE FROM {t} RETURNING *) SELECT * FROM d",
        "WITH clause containing a data-modifying statement must be at the top level",
        "cannot execute SELECT in a read-only transaction",
        "DECLARE CURSOR must not contain data-modifying statements in WITH",
    ),
    (
        "DROP TABLE {t}",
        'syntax error at or near "TABLE"',
        "cannot execute DROP TABLE in a read-only transaction",
        'syntax error at or near "DROP"',
    ),
]


def test_postgres_source_runs_one_read_only_statement(
    pg_conninfo: dict[str, Any], victim: str, tmp_path: Path, no_guard: None
) -> None:
    from headwater.export import export_query_to_lake
    from headwater.sources.sql import PostgresSource

    source = PostgresSource(pg_conninfo)
    lake = LocalLake(tmp_path)
    for template, exported, scalar, _ in ATTACKS:
        query = template.format(t=victim)
        with pytest.raises(SourceError, match=f"postgres 127.0.0.1/test: query failed: {exported}"):
            export_query_to_lake(source, query, lake, lake.url + "/x")
        with pytest.raises(SourceError, match=f"postgres 127.0.0.1/test: query failed: {scalar}"):
            source.scalar(query)
        assert pg_rows(pg_conninfo, victim) == 3
    assert list(tmp_path.rglob("*")) == []


def test_the_guard_refuses_before_anything_runs(pg_conninfo: dict[str, Any], victim: str) -> None:
    from headwater.sources.sql import PostgresSource

    for template, *_ in ATTACKS[:2]:
        with pytest.raises(UnsafeQueryError, match=r"query holds \d statements; give exactly one SELECT"):
            PostgresSource(pg_conninfo).scalar(template.format(t=victim))
    with pytest.raises(UnsafeQueryError, match="query must be a SELECT .*, not DROP"):
        PostgresSource(pg_conninfo).scalar(ATTACKS[3][0].format(t=victim))


def test_postgres_warehouse_write_back_query_cannot_write(
    pg_conninfo: dict[str, Any], victim: str, no_guard: None
) -> None:
    warehouse = PostgresWarehouse(pg_conninfo)
    for template, _, _, refused in ATTACKS:
        query = template.format(t=victim)
        with (
            pytest.raises(WarehouseError, match=f"postgres .*: query failed: {refused}"),
            warehouse.query_rows(query) as (_, rows),
        ):
            list(rows)
        assert pg_rows(pg_conninfo, victim) == 3


def test_duckdb_warehouse_write_back_query_cannot_write(tmp_path: Path, no_guard: None) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    lake = LocalLake(tmp_path / "lake")
    warehouse.load(stage(lake, TableName("raw", "t"), [["1", "a", "1.00"]]), lake, "replace")
    read_only = 'Cannot execute statement of type "{}" on database "w" which is attached in read-only mode'
    for query, refused in [
        ("SELECT 1; DROP TABLE raw.t", "the query must be exactly one statement"),
        ("DROP TABLE raw.t", read_only.format("DROP")),
        ("CREATE TABLE raw.u AS SELECT 1", read_only.format("CREATE")),
        ("DELETE FROM raw.t", read_only.format("DELETE")),
    ]:
        with pytest.raises(WarehouseError, match=refused), warehouse.query_rows(query) as (_, rows):
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
    with pytest.raises(SourceError, match="query holds 2 statements"), source.stream("SELECT 1; DROP TABLE victim"):
        pass
    with duckdb.connect(str(path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM victim").fetchone() == (1,)


def test_mysql_source_runs_one_read_only_statement(no_guard: None) -> None:
    from headwater.sources.mysql import MySQLSource

    with mariadb_table("hw_victim", "id INT", [(1,), (2,)]) as (conn, table):
        source = MySQLSource(MYSQL)
        for query, refused in (
            (f"SELECT 1; DROP TABLE {table}", "You have an error in your SQL syntax"),
            (f"DELETE FROM {table}", "Cannot execute statement in a READ ONLY transaction"),
        ):
            with pytest.raises(SourceError, match=rf"mysql 127.0.0.1/test: query failed: \(\d+, .{refused}"):
                source.scalar(query)
            with pytest.raises(SourceError, match=refused), source.stream(query) as stream:
                list(stream.chunks(1000))
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            assert cur.fetchone() == (2,)

"""The streaming exporter: real PostgreSQL, MariaDB and DuckDB into the moto S3 server and a local folder,
read back and compared row by row; faults leave nothing published."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import SourceError
from headwater.export import ExportOptions, export_query_to_lake
from headwater.identifiers import TableName
from headwater.lake import Lake, LocalLake, S3Lake
from headwater.parts import read_manifest
from headwater.sources.mysql import MySQLSource
from headwater.sources.sql import DuckDBSource, PostgresSource
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse
from tests.conftest import MARIADB as MYSQL
from tests.conftest import REPO, mariadb_table

pytestmark = pytest.mark.integration

# id, text (NULL, empty, quotes, newline, unicode), numeric, timestamptz, boolean, date, double
PG_ROWS = """
(1, 'plain', 1.50, '2024-01-02 03:04:05+09', true, '2024-01-02', 0.25),
(2, '', -0.01, '2024-06-30 23:59:59.123456+00', false, '1999-12-31', -1e10),
(3, NULL, NULL, NULL, NULL, NULL, NULL),
(4, 'say "hi", then
newline', 12345678.90, '2024-03-10 12:00:00-05', true, '2024-02-29', 3.5),
(5, '한국어 텍스트 ✓', 0, '1970-01-01 00:00:00+00', false, '2000-01-01', 0)
"""


@pytest.fixture
def pg_table(pg_conninfo: dict[str, Any], pg_schema: str) -> TableName:
    import psycopg

    with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{pg_schema}"')
        conn.execute(
            f'CREATE TABLE "{pg_schema}".src (id int, note text, amount numeric(12,2), at timestamptz,'
            f" flag boolean, day date, ratio double precision)"
        )
        conn.execute(f'INSERT INTO "{pg_schema}".src VALUES {PG_ROWS}')
    return TableName(pg_schema, "src")


def pg_rows(conninfo: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(**conninfo) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return conn.execute(sql).fetchall()


def lakes(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    if request.param == "s3":
        client, bucket = request.getfixturevalue("s3")
        return S3Lake(client, f"s3://{bucket}/lake")
    return LocalLake(tmp_path / "lake")


@pytest.fixture(params=["s3", "local"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    return lakes(request, tmp_path)


@pytest.mark.parametrize("fmt", ["csv.gz", "csv.zst"])
def test_postgres_round_trip_through_the_lake(
    lake: Lake, pg_table: TableName, pg_conninfo: dict[str, Any], fmt: str
) -> None:
    source = PostgresSource(pg_conninfo)
    result = export_query_to_lake(
        source,
        f"SELECT * FROM {pg_table.sql}",
        lake,
        lake.url + "/out",
        options=ExportOptions(format=fmt, rows_per_part=2),
        target=f"{pg_table.schema}.back",
    )
    manifest = read_manifest(lake, result.manifest_uri)
    assert [p.rows for p in manifest.parts] == [2, 2, 1] and manifest.rows == 5
    assert [(c["name"], c["type"]) for c in manifest.columns] == [
        ("id", "integer"),
        ("note", "text"),
        ("amount", "numeric(12,2)"),
        ("at", "timestamptz"),
        ("flag", "boolean"),
        ("day", "date"),
        ("ratio", "double"),
    ]
    PostgresWarehouse(pg_conninfo).load(manifest, lake, "replace")
    original = pg_rows(pg_conninfo, f"SELECT * FROM {pg_table.sql} ORDER BY id")
    assert pg_rows(pg_conninfo, f'SELECT * FROM "{pg_table.schema}".back ORDER BY id') == original
    assert original[1][1] == "" and original[2][1] is None  # empty string and NULL stayed apart


def test_parquet_export_is_typed(tmp_path: Path, pg_table: TableName, pg_conninfo: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    lake = LocalLake(tmp_path / "lake")
    result = export_query_to_lake(
        PostgresSource(pg_conninfo),
        f"SELECT * FROM {pg_table.sql}",
        lake,
        lake.url + "/pq",
        options=ExportOptions(format="parquet"),
        target="raw.back",
    )
    table = pq.read_table(str(next((tmp_path / "lake" / "pq").glob("part-*.parquet"))))
    assert table.num_rows == 5 and str(table.schema.field("at").type) == "timestamp[us, tz=UTC]"
    assert table.column("note").to_pylist()[:3] == ["plain", "", None]
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.load(read_manifest(lake, result.manifest_uri), lake, "replace")
    assert warehouse.row_count(TableName("raw", "back")) == 5


@pytest.fixture
def mysql_table() -> Iterator[str]:
    rows = [
        (1, "plain", "1.50", "2024-01-02 03:04:05", "2024-01-02", 0.25),
        (2, "", "-0.01", "2024-06-30 23:59:59.123456", "1999-12-31", -1e10),
        (3, None, None, None, None, None),
        (4, 'say "hi", then\nnewline', "12345678.90", "2024-03-10 12:00:00", "2024-02-29", 3.5),
        (5, "한국어 텍스트 ✓", "0", "1970-01-01 00:00:01", "2000-01-01", 0),
    ]
    columns = "id INT PRIMARY KEY, note TEXT, amount DECIMAL(12,2), at DATETIME(6), day DATE, ratio DOUBLE"
    with mariadb_table("hw_src", columns, rows) as (_, name):
        yield name


def test_mariadb_round_trip_into_duckdb(lake: Lake, mysql_table: str, tmp_path: Path) -> None:
    import pymysql

    source = MySQLSource(MYSQL, fetch_rows=2)
    result = export_query_to_lake(
        source,
        f"SELECT * FROM {mysql_table} ORDER BY id",
        lake,
        lake.url + "/my",
        options=ExportOptions(rows_per_part=3),
        target="raw.from_mysql",
    )
    assert result.rows == 5 and result.parts == 2
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.load(read_manifest(lake, result.manifest_uri), lake, "replace")
    with warehouse.session() as conn:
        loaded = warehouse._run(conn, "SELECT * FROM raw.from_mysql ORDER BY id")
    with pymysql.connect(**MYSQL) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {mysql_table} ORDER BY id")
        original = list(cur.fetchall())
    assert [tuple(r) for r in loaded] == [tuple(r) for r in original]


def test_duckdb_source_into_postgres(lake: Lake, tmp_path: Path, pg_conninfo: dict[str, Any], pg_schema: str) -> None:
    import duckdb

    path = tmp_path / "src.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "CREATE TABLE t AS SELECT i AS id, 'n' || i AS note, i / 8 :: DECIMAL(10,3) AS amount,"
            " TIMESTAMP '2024-01-01' + INTERVAL (i) HOUR AS at, NULLIF(i % 3, 0) = 1 AS flag"
            " FROM range(1000) r(i)"
        )
    result = export_query_to_lake(
        DuckDBSource(str(path)),
        "SELECT * FROM t",
        lake,
        lake.url + "/dd",
        options=ExportOptions(rows_per_part=300),
        target=f"{pg_schema}.t",
    )
    assert result.parts == 4
    PostgresWarehouse(pg_conninfo).load(read_manifest(lake, result.manifest_uri), lake, "replace")
    back = pg_rows(pg_conninfo, f'SELECT id, note, amount::text, at::text, flag FROM "{pg_schema}".t ORDER BY id')
    assert back[9] == (9, "n9", "1.125", "2024-01-01 09:00:00", None)
    assert len(back) == 1000


def test_a_duckdb_query_failing_half_way_is_one_clear_error_and_publishes_nothing(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "src.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE t AS SELECT i FROM range(100000) r(i)")
    lake = LocalLake(tmp_path / "lake")
    query = "SELECT CASE WHEN i = 60000 THEN error('bad row ' || i) ELSE i END AS i FROM t"
    with pytest.raises(SourceError, match=r"src.duckdb: query failed while streaming: .*bad row 60000"):
        export_query_to_lake(
            DuckDBSource(str(path)), query, lake, lake.url + "/x", options=ExportOptions(rows_per_part=20_000)
        )
    assert lake.list_uris(lake.url + "/x") == []


def test_a_failing_query_publishes_nothing(tmp_path: Path, pg_conninfo: dict[str, Any]) -> None:
    lake = LocalLake(tmp_path / "lake")
    with pytest.raises(SourceError, match='query failed: relation "no_such_table" does not exist'):
        export_query_to_lake(PostgresSource(pg_conninfo), "SELECT * FROM no_such_table", lake, lake.url + "/x")
    assert lake.list_uris(lake.url + "/x") == []


def test_source_lost_mid_export_publishes_nothing(tmp_path: Path, pg_conninfo: dict[str, Any]) -> None:
    """The source connection dies half-way (as when the table is dropped or the server restarts)."""
    import psycopg

    lake = LocalLake(tmp_path / "lake")
    killed: list[int] = []
    name = f"hw-test-{uuid.uuid4().hex[:12]}"  # terminate only the backend this test started

    def kill_on_first_part(rows: int, size: int, parts: int) -> None:
        if not killed:
            with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                    (name,),
                ).fetchone()
            killed.append(int(row[0]) if row else 0)

    with pytest.raises(SourceError, match="export failed: .*terminat"):
        export_query_to_lake(
            PostgresSource({**pg_conninfo, "application_name": name}),
            "SELECT g, md5(g::text) FROM generate_series(1, 5000000) g",
            lake,
            lake.url + "/x",
            options=ExportOptions(rows_per_part=100_000),
            progress=kill_on_first_part,
        )
    assert killed == [1] and lake.list_uris(lake.url + "/x") == []


def test_killed_process_then_rerun_leaves_one_complete_set(tmp_path: Path, pg_conninfo: dict[str, Any]) -> None:
    lake = LocalLake(tmp_path / "lake")
    prefix = lake.url + "/run"
    query = "SELECT g, md5(g::text) FROM generate_series(1, 3000000) g"
    script = (
        "import sys; from headwater.export import *; from headwater.lake import LocalLake;"
        "from headwater.sources.sql import PostgresSource;"
        f"lake = LocalLake({str(tmp_path / 'lake')!r});"
        f"export_query_to_lake(PostgresSource({pg_conninfo!r}), {query!r}, lake, {prefix!r},"
        " options=ExportOptions(rows_per_part=100_000, parts_in_flight=1))"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    folder = tmp_path / "lake" / "run"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(folder.glob("part-*"))) < 2:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert list(folder.glob("part-*")) and not (folder / "_manifest.json").exists()
    result = export_query_to_lake(
        PostgresSource(pg_conninfo), query, lake, prefix, options=ExportOptions(rows_per_part=1_000_000)
    )
    manifest = read_manifest(lake, result.manifest_uri)
    assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json"] + [
        p.uri.rsplit("/", 1)[1] for p in manifest.parts
    ]
    assert [p.rows for p in manifest.parts] == [1_000_000] * 3
    lines = sum(gzip.decompress((folder / p.uri.rsplit("/", 1)[1]).read_bytes()).count(b"\n") for p in manifest.parts)
    assert lines == 3_000_000 + 3  # one header per part, no duplicated rows


def test_s3_refusing_some_requests_is_retried(
    moto_endpoint: str, s3: tuple[Any, str], pg_conninfo: dict[str, Any]
) -> None:
    import boto3

    from tests.fakes.flaky_proxy import FlakyProxy

    _, bucket = s3
    proxy = FlakyProxy(moto_endpoint, refuse=3, method="PUT", path_contains="/part-")
    try:
        client = boto3.client("s3", endpoint_url=proxy.url, region_name="us-east-1")
        lake = S3Lake(client, f"s3://{bucket}/lake")
        result = export_query_to_lake(
            PostgresSource(pg_conninfo),
            "SELECT g FROM generate_series(1, 50000) g",
            lake,
            lake.url + "/flaky",
            options=ExportOptions(rows_per_part=10_000),
        )
    finally:
        proxy.stop()
    assert proxy.refused == 3
    manifest = read_manifest(lake, result.manifest_uri)
    assert manifest.rows == 50_000 and len(manifest.parts) == 5
    assert sorted(lake.list_uris(lake.url + "/flaky")) == sorted(
        [p.uri for p in manifest.parts] + [result.manifest_uri]
    )


def test_sigterm_mid_export_leaves_nothing_in_s3_and_no_scratch(
    tmp_path: Path, moto_endpoint: str, s3: tuple[Any, str], pg_conninfo: dict[str, Any]
) -> None:
    """What Airflow sends on a task timeout: the export stops, removes its uploaded parts and scratch folder."""
    client, bucket = s3
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    script = (
        "import boto3; from headwater.export import *; from headwater.lake import S3Lake;"
        "from headwater.sources.sql import PostgresSource;"
        f"client = boto3.client('s3', endpoint_url={moto_endpoint!r}, region_name='us-east-1');"
        f"lake = S3Lake(client, 's3://{bucket}/lake');"
        f"export_query_to_lake(PostgresSource({pg_conninfo!r}),"
        " 'SELECT g, md5(g::text) FROM generate_series(1, 5000000) g', lake, lake.url + '/run',"
        " options=ExportOptions(rows_per_part=100_000, parts_in_flight=1))"
    )
    env = {**os.environ, "TMPDIR": str(scratch)}
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    parts: list[str] = []
    while time.monotonic() < deadline and len(parts) < 2:
        parts = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []) if "/part-" in o["Key"]]
        time.sleep(0.05)
    assert len(parts) >= 2, "the export never uploaded a part"
    os.kill(child.pid, signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode != 0 and "Terminated" in stderr
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert list(scratch.iterdir()) == []


def test_export_cli_refuses_a_folder_holding_a_users_files(tmp_path: Path, pg_conninfo: dict[str, Any]) -> None:
    from typer.testing import CliRunner

    from headwater.cli import app

    url = f"postgresql://{pg_conninfo['user']}@{pg_conninfo['host']}:{pg_conninfo['port']}/{pg_conninfo['dbname']}"
    target = tmp_path / "Documents"
    target.mkdir()
    (target / "thesis.docx").write_bytes(b"years of work")
    args = ["export", "--source", url, "--query", "SELECT 1 AS one", "--to", str(target)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "did not write" in result.output and "thesis.docx" in " ".join(result.output.split())
    assert sorted(p.name for p in target.iterdir()) == ["thesis.docx"]
    assert (target / "thesis.docx").read_bytes() == b"years of work"
    empty = tmp_path / "exports" / "one"
    assert CliRunner().invoke(app, [*args[:-1], str(empty)]).exit_code == 0
    assert CliRunner().invoke(app, [*args[:-1], str(empty)]).exit_code == 0  # a rerun replaces its own export
    assert len(list(empty.iterdir())) == 2

"""Every error a user can hit names what failed, with the right kind (transient: worth a retry, or not)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import LakeError, SourceError, WarehouseError
from headwater.identifiers import TableName
from headwater.lake import LocalLake, S3Lake
from headwater.parts import read_manifest
from headwater.pipeline import check_row_count
from headwater.sources.mysql import MySQLSource
from headwater.sources.sql import DuckDBSource, PostgresSource
from headwater.warehouse.base import Warehouse
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse
from tests.conftest import service_missing
from tests.integration.helpers import stage

pytestmark = pytest.mark.integration

MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}
ROWS = [["1", "a", "1.00"], ["2", "b", "2.00"], ["3", "c", "3.00"]]


@pytest.fixture
def mysql() -> dict[str, Any]:
    import pymysql

    try:
        pymysql.connect(**MYSQL, connect_timeout=3).close()
    except pymysql.Error as exc:
        service_missing("MariaDB on 127.0.0.1:3306", str(exc))
    return MYSQL


def test_sources_that_cannot_be_reached_are_transient(pg_conninfo: dict[str, Any], mysql: dict[str, Any]) -> None:
    closed = 1  # nothing listens on port 1
    for source, expected in (
        (PostgresSource({**pg_conninfo, "port": closed}), r"postgres 127.0.0.1/test: cannot connect: .*port 1 failed"),
        (MySQLSource({**mysql, "port": closed}), r"mysql 127.0.0.1/test: cannot connect: \(2003, "),
    ):
        with pytest.raises(SourceError, match=expected) as caught:
            source.scalar("SELECT 1")
        assert caught.value.transient is True


def test_a_missing_duckdb_file_is_not_worth_a_retry(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"duckdb .*nothere.duckdb: cannot open: IO Error") as caught:
        DuckDBSource(str(tmp_path / "nothere.duckdb")).scalar("SELECT 1")
    assert caught.value.transient is False


def test_bad_queries_name_the_source_and_are_not_retried(
    pg_conninfo: dict[str, Any], mysql: dict[str, Any], tmp_path: Path
) -> None:
    import duckdb

    path = tmp_path / "s.duckdb"
    duckdb.connect(str(path)).close()
    for source, expected in (
        (PostgresSource(pg_conninfo), 'postgres 127.0.0.1/test: query failed: relation "nope_hw" does not exist'),
        (MySQLSource(mysql), r"mysql 127.0.0.1/test: query failed: \(1146, \"Table 'test.nope_hw' doesn't exist\"\)"),
        (DuckDBSource(str(path)), r"duckdb .*s.duckdb: query failed: Catalog Error: Table with name nope_hw"),
    ):
        with pytest.raises(SourceError, match=expected) as caught:
            source.scalar("SELECT * FROM nope_hw")
        assert caught.value.transient is False
        with pytest.raises(SourceError, match=expected) as caught, source.stream("SELECT * FROM nope_hw"):
            pass
        assert caught.value.transient is False


def test_s3_errors_say_which_object_and_whether_to_retry(s3: tuple[Any, str], tmp_path: Path) -> None:
    client, bucket = s3
    lake = S3Lake(client, f"s3://{bucket}/lake")
    with pytest.raises(LakeError, match=rf"s3://{bucket}/lake/x.json: not found in the lake"):
        lake.read_bytes(f"s3://{bucket}/lake/x.json")
    gone = S3Lake(client, "s3://no-such-bucket-hw/lake")
    local = tmp_path / "f"
    local.write_bytes(b"x")
    for call, what in (
        (lambda: gone.write_file("s3://no-such-bucket-hw/lake/f", local), "upload failed"),
        (lambda: gone.write_bytes("s3://no-such-bucket-hw/lake/f", b"x"), "write failed"),
        (lambda: gone.list_uris("s3://no-such-bucket-hw/lake"), "listing failed"),
    ):
        with pytest.raises(LakeError, match=rf"s3://no-such-bucket-hw/lake(/f)?: {what}: .*NoSuchBucket") as caught:
            call()
        assert caught.value.transient is False  # a missing bucket does not appear by retrying
    with pytest.raises(LakeError, match=r"not in the lake bucket s3://no-such-bucket-hw"):
        gone.read_bytes(f"s3://{bucket}/lake/x")


def test_s3_unreachable_is_transient(tmp_path: Path) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:1",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(LakeError, match="s3://b/lake/x: read failed: Could not connect") as caught:
        S3Lake(client, "s3://b/lake").read_bytes("s3://b/lake/x")
    assert caught.value.transient is True


def warehouses(tmp_path: Path, pg_conninfo: dict[str, Any], pg_schema: str) -> list[tuple[Warehouse, TableName]]:
    return [
        (DuckDBWarehouse(tmp_path / "w.duckdb"), TableName("raw", "t")),
        (PostgresWarehouse(pg_conninfo), TableName(pg_schema, "t")),
    ]


def test_a_part_holding_other_rows_than_its_manifest_says_fails_the_load(
    tmp_path: Path, pg_conninfo: dict[str, Any], pg_schema: str
) -> None:
    lake = LocalLake(tmp_path / "lake")
    for warehouse, target in warehouses(tmp_path, pg_conninfo, pg_schema):
        manifest = stage(lake, target, ROWS, run_id=f"r-{target.schema}")
        uri = manifest.parts[0].uri.rsplit("/", 1)[0] + "/_manifest.json"
        data = json.loads(lake.read_bytes(uri))
        data["parts"][0]["rows"] = 4
        data["rows"] = 4
        lake.write_bytes(uri, json.dumps(data).encode())
        with pytest.raises(LakeError, match=r"part-\w+-00000.csv.gz: holds 3 rows, the manifest says 4"):
            warehouse.load(read_manifest(lake, uri), lake, "replace")
        assert warehouse.columns(target) is None  # nothing published


def test_the_row_count_check_fails_when_the_table_disagrees(
    tmp_path: Path, pg_conninfo: dict[str, Any], pg_schema: str
) -> None:
    lake = LocalLake(tmp_path / "lake")
    when = datetime(2026, 1, 5, tzinfo=UTC)
    for warehouse, target in warehouses(tmp_path, pg_conninfo, pg_schema):
        manifest = stage(lake, target, ROWS, run_id=f"r-{target.schema}")
        warehouse.load(manifest, lake, "replace")
        assert check_row_count(warehouse, manifest, method="replace") == 3
        manifest.rows = 4  # as if a concurrent writer removed a row after the load
        with pytest.raises(WarehouseError, match=rf"{target}: 3 rows in the warehouse, but 4 were staged"):
            check_row_count(warehouse, manifest, method="replace")
        with pytest.raises(WarehouseError, match=rf"{target}: holds 3 rows, fewer than the 4 just upserted"):
            check_row_count(warehouse, manifest, method="upsert")
        appended = TableName(target.schema, "appended")
        batch_manifest = stage(lake, appended, ROWS, run_id=f"a-{target.schema}")
        warehouse.load(batch_manifest, lake, "append", batch="2026-01-05")
        batch_manifest.rows = 2
        with pytest.raises(WarehouseError, match=rf"{appended}: this run's batch of 3 rows in the warehouse, but 2"):
            check_row_count(warehouse, batch_manifest, method="append", logical_date=when)


def test_a_source_that_lost_a_column_cannot_append_or_upsert(
    tmp_path: Path, pg_conninfo: dict[str, Any], pg_schema: str
) -> None:
    lake = LocalLake(tmp_path / "lake")
    for warehouse, target in warehouses(tmp_path, pg_conninfo, pg_schema):
        warehouse.load(stage(lake, target, ROWS, run_id=f"r-{target.schema}"), lake, "upsert", ["id"])
        narrower = stage(lake, target, [["4", "d"]], columns=(("id", "integer"), ("name", "text")), run_id="n")
        for method in ("upsert", "append"):
            expected = (
                rf"{target}: cannot {method}: the table has columns the source lacks: amount"
                if method == "upsert"
                else rf"{target}: cannot append: the source has columns the table lacks: _hw_batch; "
                "the table has columns the source lacks: amount"
            )
            with pytest.raises(WarehouseError, match=expected):
                warehouse.load(narrower, lake, method, ["id"], batch="2026-01-05")
        assert warehouse.row_count(target) == 3


def test_a_first_watermark_run_over_an_empty_table_exports_nothing(pg_conninfo: dict[str, Any], pg_schema: str) -> None:
    import psycopg

    from headwater.config import Incremental
    from headwater.incremental import plan_export

    with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{pg_schema}"')
        conn.execute(f'CREATE TABLE "{pg_schema}".src (id int, updated_at timestamp)')
    source = PostgresSource(pg_conninfo)
    table = f"{pg_schema}.src"
    window = plan_export(source, source_table=table, incremental=Incremental(column="updated_at"))
    assert (window.description, window.high, window.params) == ("no rows yet", None, [])
    assert window.query.endswith("WHERE 1 = 0")
    with pytest.raises(ValueError, match="interval mode needs the run's data interval"):
        plan_export(source, source_table=table, incremental=Incremental(column="updated_at", mode="interval"))


def test_interval_mode_without_a_data_interval_or_window_is_a_clear_error() -> None:
    from headwater.errors import HeadwaterError
    from headwater.operators import SqlToLakeOperator

    incremental = {"column": "at", "mode": "interval"}
    operator = SqlToLakeOperator(
        task_id=f"t_{uuid.uuid4().hex[:6]}",
        conn_id="pg",
        table="public.events",
        target="raw.events",
        incremental=incremental,
    )
    when = datetime(2026, 1, 5, tzinfo=UTC)
    with pytest.raises(HeadwaterError, match="raw.events: interval mode needs a schedule with data intervals, or"):
        operator.interval({"data_interval_start": None, "data_interval_end": None}, when)  # type: ignore[arg-type]
    windowed = SqlToLakeOperator(
        task_id="w", conn_id="pg", table="public.events", incremental={**incremental, "window_hours": 6}
    )
    assert windowed.interval({}, when) == (datetime(2026, 1, 4, 18, tzinfo=UTC), when)  # type: ignore[arg-type]


def test_a_refused_login_or_missing_database_is_not_worth_a_retry(pg_conninfo: dict[str, Any]) -> None:
    for info, expected in (
        ({**pg_conninfo, "dbname": "no_such_db_hw"}, 'database "no_such_db_hw" does not exist'),
        ({**pg_conninfo, "user": "no_such_user_hw"}, 'role "no_such_user_hw" does not exist'),
    ):
        with pytest.raises(SourceError, match=expected) as caught:
            PostgresSource(info).scalar("SELECT 1")
        assert caught.value.transient is False
        with pytest.raises(WarehouseError, match=expected) as caught_wh:
            PostgresWarehouse(info).row_count(TableName("raw", "t"))
        assert caught_wh.value.transient is False


def test_a_duckdb_query_without_parameters_keeps_its_percent_s_literals(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "s.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('bus'), ('?x'), ('sun')) v(name)")
    source = DuckDBSource(str(path))
    assert source.scalar("SELECT string_agg(name, ',' ORDER BY name) FROM t WHERE name LIKE '%s%'") == "bus,sun"


def test_a_url_with_an_unencoded_password_character_is_named_without_the_password(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from headwater.cli import app

    url = "postgresql://etl:s3cr#t@db.internal:5432/prod"
    result = CliRunner().invoke(app, ["export", "--source", url, "--query", "SELECT 1", "--to", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "the URL's port is not a number; a '#', '/', '?' or '@' in the password must be percent-encoded" in (
        " ".join(result.output.split())
    )
    assert "s3cr" not in result.output


@pytest.mark.parametrize(
    ("extra", "password", "expected"),
    [
        ({}, None, "Connection 'gs_bad' has no service-account key"),
        ({"keyfile_dict": "{not json"}, None, "Connection 'gs_bad': the service-account key is not valid JSON"),
        ({"keyfile_dict": '{"type": "service_account"}'}, None, "Google service account credentials are not usable"),
        ({}, '{"type": "service_account", "client_email": "a@b"}', "Google service account credentials are not usable"),
    ],
)
def test_bad_service_account_keys(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], password: str | None, expected: str
) -> None:
    from headwater.airflow.connections import sheets_client

    conn: dict[str, Any] = {"conn_type": "google_cloud_platform", "extra": extra}
    if password is not None:
        conn["password"] = password
    monkeypatch.setenv("AIRFLOW_CONN_GS_BAD", json.dumps(conn))
    with pytest.raises(SourceError, match=expected) as caught:
        sheets_client("gs_bad")
    assert "private_key" not in str(caught.value)
    monkeypatch.delenv("AIRFLOW_CONN_GS_BAD")
    with pytest.raises(SourceError, match="reading a Google Sheet needs the Airflow Connection 'gs_bad'"):
        sheets_client("gs_bad")

"""Shared test fixtures: one Airflow home, one moto S3 server, one fake Sheets server per session.

Tests that need a service skip with the reason when it is absent, unless HEADWATER_REQUIRE_SERVICES=1
(CI), where they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_HOME = REPO / ".headwater" / "test"

# Airflow reads these at import time, so they are set before any test module imports it.
os.environ["HEADWATER_HOME"] = str(TEST_HOME)
os.environ["AIRFLOW_HOME"] = str(TEST_HOME / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
os.environ["HEADWATER_LINKS"] = "off"  # dag.test runs one pipeline alone; the scheduler tests turn links on
for name in list(os.environ):
    if name.startswith(("AIRFLOW_CONN_", "HEADWATER_CONFIG", "HEADWATER_LAKE_URL")):
        del os.environ[name]

REQUIRE_SERVICES = os.environ.get("HEADWATER_REQUIRE_SERVICES") == "1"
PG = {"host": "127.0.0.1", "port": 5432, "dbname": "test", "user": "postgres"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}


def service_missing(service: str, reason: str) -> None:
    """Skip (or, under HEADWATER_REQUIRE_SERVICES=1, fail) a test whose service is absent."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{service} is required (HEADWATER_REQUIRE_SERVICES=1) but unavailable: {reason}")
    pytest.skip(f"{service} unavailable: {reason}")


@contextlib.contextmanager
def mariadb_table(prefix: str, columns: str, rows: Sequence[Sequence[Any]]) -> Iterator[tuple[Any, str]]:
    """A new MariaDB table (``columns`` as in CREATE TABLE, utf8mb4) holding ``rows``, dropped afterwards;
    skips without MariaDB. Yields an autocommit PyMySQL connection and the table's name."""
    import pymysql

    try:
        conn = pymysql.connect(**MARIADB, connect_timeout=3, charset="utf8mb4", autocommit=True)
    except pymysql.Error as exc:
        service_missing("MariaDB on 127.0.0.1:3306", str(exc))
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {name} ({columns}) CHARSET utf8mb4")
            if rows:
                cur.executemany(f"INSERT INTO {name} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)
        yield conn, name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {name}")
        conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def pg_conninfo() -> dict[str, Any]:
    import psycopg

    try:
        psycopg.connect(**PG, connect_timeout=3).close()
    except psycopg.Error as exc:
        service_missing("PostgreSQL on 127.0.0.1:5432", str(exc).strip())
    return dict(PG)


@pytest.fixture
def pg_schema(pg_conninfo: dict[str, Any]) -> Iterator[str]:
    """A fresh schema name, dropped with everything in it afterwards."""
    import psycopg

    schema = f"hw_test_{uuid.uuid4().hex[:10]}"
    yield schema
    with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 endpoint over HTTP on loopback (moto's server), shared by the session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """A boto3 client on the moto endpoint and a new empty bucket."""
    import boto3

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = f"hw-test-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture(scope="session")
def sheets_server() -> Iterator[Any]:
    from tests.fakes.sheets_server import FakeSheetsServer

    server = FakeSheetsServer().start()
    yield server
    server.stop()


@pytest.fixture
def sheets(sheets_server: Any) -> Iterator[Any]:
    """The session's fake Sheets v4 server, emptied for this test; afterwards, no request headwater sent may
    have been refused by Google's API description, and no answer of the fake may stray from it."""
    sheets_server.reset()
    yield sheets_server
    assert not sheets_server.refused, f"requests Google's Sheets API would refuse: {sheets_server.refused}"
    assert not sheets_server.bad_answers, f"fake answers off the discovery document: {sheets_server.bad_answers}"


@pytest.fixture(scope="session")
def service_account_info(sheets_server: Any) -> dict[str, Any]:
    from tests.fakes.sheets_server import make_service_account_info

    return make_service_account_info(sheets_server.token_uri)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The session's Airflow metadata database (SQLite), created or migrated once."""
    from airflow.utils.db import upgradedb

    (TEST_HOME / "airflow").mkdir(parents=True, exist_ok=True)
    upgradedb()
    return TEST_HOME / "airflow"


@pytest.fixture
def hw_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HEADWATER_HOME (lake folder and DuckDB file) for one test."""
    home = tmp_path / "hw"
    home.mkdir()
    monkeypatch.setenv("HEADWATER_HOME", str(home))
    return home


@pytest.fixture(scope="session", autouse=True)
def _clean_test_home() -> None:
    for child in ("lake", "warehouse.duckdb", "warehouse.duckdb.lock"):
        path = TEST_HOME / child
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


@pytest.fixture(scope="session")
def demo_dbt_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repo's dbt project with its manifest built (as ``headwater dbt-parse`` does), once per session."""
    from headwater.transform.manifest import manifest_problem
    from headwater.transform.profile import profile_for
    from headwater.transform.runner import run_dbt
    from headwater.warehouse.duckdb import DuckDBWarehouse

    project = REPO / "dbt"
    manifest = project / "target" / "manifest.json"
    if manifest_problem(project) is not None:
        warehouse = DuckDBWarehouse(tmp_path_factory.mktemp("dbt-parse") / "parse.duckdb")
        run_dbt(project, "parse", profile_for(warehouse, "headwater", "analytics"), write_manifest_to=manifest)
    return manifest

"""``headwater export`` as its own process (the installed console script, as users and the benchmark run it):
it exports from every kind of source without ever importing numpy, pandas or OpenTelemetry, which pyarrow,
DuckDB and mysql-connector load on their own when installed (numpy is, in this test environment)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from headwater.lake import LocalLake
from headwater.parts import read_manifest
from tests.conftest import mariadb_table

pytestmark = pytest.mark.integration

HEADWATER = Path(sys.executable).with_name("headwater")
UNWANTED = re.compile(r"^(numpy|pandas|opentelemetry|mysql\.opentelemetry|dns)(\..*)?$")
# Loaded by site at the process's start: at exit it lists every module the process imported.
SITECUSTOMIZE = """
import atexit, os, sys
atexit.register(lambda: open(os.environ["HW_MODULES_OUT"], "w").write("\\n".join(sorted(sys.modules))))
"""


def export(tmp_path: Path, fmt: str, *source: str) -> tuple[list[dict[str, Any]], str]:
    """Run the console script; the rows it wrote (read back here) and the modules it had imported at exit."""
    out = tmp_path / f"out-{uuid.uuid4().hex[:6]}"
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    modules = tmp_path / "modules.txt"
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "HW_MODULES_OUT": str(modules),
        "HEADWATER_HOME": str(tmp_path / "home"),
    }
    done = subprocess.run(
        [str(HEADWATER), "export", *source, "--to", out.as_uri(), "--format", fmt, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lake = LocalLake(out)
    manifest = read_manifest(lake, lake.url + "/_manifest.json")
    rows: list[dict[str, Any]] = []
    for part in manifest.parts:
        with lake.local_copy(part.uri) as path:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                rows += pq.read_table(path).to_pylist()
            else:
                import duckdb

                rows += duckdb.sql(f"select * from read_csv('{path}', header=true, all_varchar=true)").fetchall()
    return rows, modules.read_text()


def unwanted_imports(modules: str) -> list[str]:
    return sorted({m.group(1) for name in modules.splitlines() if (m := UNWANTED.match(name))})


def test_numpy_is_installed_here() -> None:
    """The checks below mean something only where the process could import numpy."""
    import numpy

    assert numpy.__version__


@pytest.mark.parametrize("fmt", ["parquet", "csv.gz"])
def test_duckdb_export_process_imports_no_numpy(tmp_path: Path, fmt: str) -> None:
    import duckdb

    path = tmp_path / "src.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "create table t as select i as id, (i * 1.25)::decimal(12, 2) as amount, "
            "timestamptz '2024-01-02 03:04:05.123456+00' + to_days(i::integer) as at, "
            "case when i % 3 = 0 then null else 'v' || i end as note from range(50000) r(i)"
        )
    rows, modules = export(tmp_path, fmt, "--source", f"duckdb:///{path}", "--query", "select * from t order by id")
    assert unwanted_imports(modules) == []
    assert len(rows) == 50000
    if fmt == "parquet":
        assert rows[3]["amount"] == Decimal("3.75") and rows[3]["note"] is None and rows[4]["note"] == "v4"
        assert rows[1]["at"].isoformat() == "2024-01-03T03:04:05.123456+00:00"


def test_postgres_export_process_imports_no_numpy(tmp_path: Path, pg_conninfo: dict[str, Any]) -> None:
    url = f"postgresql://{pg_conninfo['user']}@{pg_conninfo['host']}:{pg_conninfo['port']}/{pg_conninfo['dbname']}"
    query = "select g as id, now() - g * interval '1 minute' as at, md5(g::text) as h from generate_series(1, 3000) g"
    rows, modules = export(tmp_path, "parquet", "--source", url, "--query", query)  # timestamptz: pyarrow.compute
    assert unwanted_imports(modules) == []
    assert len(rows) == 3000 and rows[0]["at"].tzinfo is not None


@pytest.fixture
def mysql_table() -> Iterator[str]:
    rows = [(i, Decimal(i) / 8, bytes([i % 256]), None if i % 5 == 0 else f"é{i}") for i in range(1, 2001)]
    columns = "id INT PRIMARY KEY, amount DECIMAL(38,10), b VARBINARY(4), t TEXT"
    with mariadb_table("hw_process", columns, rows) as (_, table):
        yield table


@pytest.mark.parametrize("fmt", ["parquet", "csv.gz"])
def test_mysql_export_process_imports_no_numpy_or_telemetry(tmp_path: Path, mysql_table: str, fmt: str) -> None:
    source = ["--source", "mysql://root@127.0.0.1:3306/test", "--table", f"test.{mysql_table}"]
    rows, modules = export(tmp_path, fmt, *source)
    assert unwanted_imports(modules) == []
    assert len(rows) == 2000
    if fmt == "parquet":
        by_id = {r["id"]: r for r in rows}
        assert by_id[3]["amount"] == Decimal("0.375") and by_id[3]["b"] == "\\x03"
        assert by_id[5]["t"] is None and by_id[6]["t"] == "é6"


def test_the_check_sees_an_unwanted_import() -> None:
    assert unwanted_imports("numpy._core\nmysql.opentelemetry.trace\nsys\n") == ["mysql.opentelemetry", "numpy"]
    assert unwanted_imports("numpyro\nheadwater.export\nmysql.connector\n") == []

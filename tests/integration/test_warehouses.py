"""Loaders against a real DuckDB file and a real PostgreSQL: replace, append, upsert and failures."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import LakeError, WarehouseError
from headwater.identifiers import TableName
from headwater.lake import LocalLake
from headwater.parts import read_manifest
from headwater.warehouse.base import Warehouse
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse
from tests.conftest import free_port
from tests.integration.helpers import stage

pytestmark = pytest.mark.integration

ROWS = [["1", "alpha", "10.50"], ["2", "베타", None], ["3", 'quote " and\nnewline', "-3.25"]]


@pytest.fixture(params=["duckdb", "postgres"])
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Warehouse, TableName]:
    if request.param == "duckdb":
        return DuckDBWarehouse(tmp_path / "w.duckdb"), TableName("raw", "things")
    conninfo = request.getfixturevalue("pg_conninfo")
    schema = request.getfixturevalue("pg_schema")
    return PostgresWarehouse(conninfo), TableName(schema, "things")


def fetch(warehouse: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with warehouse.session() as conn:
        return warehouse._run(conn, sql)


def contents(warehouse: Warehouse, target: TableName) -> list[tuple[Any, ...]]:
    return [
        tuple(str(v) if v is not None else None for v in row)
        for row in fetch(warehouse, f"SELECT id, name, amount FROM {target.sql} ORDER BY id")
    ]


def test_replace_is_exact_and_repeatable(wh: tuple[Warehouse, TableName], tmp_path: Path) -> None:
    warehouse, target = wh
    lake = LocalLake(tmp_path / "lake")
    warehouse.load(stage(lake, target, ROWS), lake, "replace")
    assert contents(warehouse, target) == [
        ("1", "alpha", "10.50"),
        ("2", "베타", None),
        ("3", 'quote " and\nnewline', "-3.25"),
    ]
    second = stage(lake, target, [["7", "only", "1.00"]], run_id="run2")
    for _ in range(2):
        result = warehouse.load(second, lake, "replace")
        assert contents(warehouse, target) == [("7", "only", "1.00")]
    assert result.rows == result.table_rows == 1 and not result.rebuilt


def test_replace_keeps_views_when_the_shape_is_unchanged(wh: tuple[Warehouse, TableName], tmp_path: Path) -> None:
    warehouse, target = wh
    lake = LocalLake(tmp_path / "lake")
    warehouse.load(stage(lake, target, ROWS), lake, "replace")
    view = target.with_table("things_view")
    with warehouse.session() as conn:
        warehouse._run(conn, f"CREATE VIEW {view.sql} AS SELECT id FROM {target.sql}")
        conn.commit()
    warehouse.load(stage(lake, target, ROWS[:1], run_id="run2"), lake, "replace")
    assert fetch(warehouse, f"SELECT count(*) FROM {view.sql}")[0][0] == 1


def test_replace_with_a_new_shape_rebuilds(wh: tuple[Warehouse, TableName], tmp_path: Path) -> None:
    warehouse, target = wh
    lake = LocalLake(tmp_path / "lake")
    warehouse.load(stage(lake, target, ROWS), lake, "replace")
    wide = stage(
        lake,
        target,
        [["1", "x", "2024-01-05"]],
        columns=(("id", "integer"), ("name", "text"), ("day", "date")),
        run_id="run2",
    )
    assert warehouse.load(wide, lake, "replace").rebuilt
    assert warehouse.columns(target) == ["id", "name", "day"]


def test_append_replaces_its_own_batch_only(wh: tuple[Warehouse, TableName], tmp_path: Path) -> None:
    warehouse, target = wh
    lake = LocalLake(tmp_path / "lake")
    day1 = stage(lake, target, ROWS)
    warehouse.load(day1, lake, "append", batch="2026-01-05")
    warehouse.load(day1, lake, "append", batch="2026-01-05")  # a rerun of the same logical date
    assert warehouse.row_count(target) == 3
    warehouse.load(stage(lake, target, ROWS[:2], run_id="run2"), lake, "append", batch="2026-01-06")
    assert warehouse.row_count(target) == 5
    assert warehouse.row_count(target, batch="2026-01-06") == 2


def test_upsert_updates_and_inserts(wh: tuple[Warehouse, TableName], tmp_path: Path) -> None:
    warehouse, target = wh
    lake = LocalLake(tmp_path / "lake")
    warehouse.load(stage(lake, target, ROWS), lake, "upsert", keys=["id"])
    changed = stage(lake, target, [["2", "beta v2", "2.00"], ["4", "delta", None]], run_id="run2")
    warehouse.load(changed, lake, "upsert", keys=["id"])
    warehouse.load(changed, lake, "upsert", keys=["id"])
    assert contents(warehouse, target) == [
        ("1", "alpha", "10.50"),
        ("2", "beta v2", "2.00"),
        ("3", 'quote " and\nnewline', "-3.25"),
        ("4", "delta", None),
    ]


def test_failure_half_way_through_a_replace_leaves_the_old_rows(
    wh: tuple[Warehouse, TableName], tmp_path: Path
) -> None:
    warehouse, target = wh
    lake = LocalLake(tmp_path / "lake")
    warehouse.load(stage(lake, target, ROWS), lake, "replace")
    before = contents(warehouse, target)
    big = stage(lake, target, [[str(i), f"n{i}", "1.00"] for i in range(100, 130)], run_id="run2", rows_per_part=10)
    second_part = Path(big.parts[1].uri.removeprefix("file://"))
    second_part.write_bytes(second_part.read_bytes()[:-8])  # damaged after staging
    with pytest.raises(LakeError, match=r"part-\w+-00001.csv.gz: checksum does not match the manifest"):
        warehouse.load(big, lake, "replace")
    assert contents(warehouse, target) == before
    second_part.unlink()  # a part gone missing
    with pytest.raises(LakeError, match="not found"):
        warehouse.load(big, lake, "replace")
    assert contents(warehouse, target) == before
    assert [
        t
        for (t,) in fetch(
            warehouse, "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '_hw_stage_%'"
        )
    ] == []


def test_tampered_part_error_does_not_echo_cell_values(wh: tuple[Warehouse, TableName], tmp_path: Path) -> None:
    import gzip

    warehouse, target = wh
    lake = LocalLake(tmp_path / "lake")
    warehouse.load(stage(lake, target, ROWS), lake, "replace")
    bad = stage(lake, target, [["1", "x", "1.00"]], run_id="run2")
    part = Path(bad.parts[0].uri.removeprefix("file://"))
    part.write_bytes(gzip.compress(b'"id","name","amount"\n"1","x","SECRET-VALUE-42"\n'))
    with pytest.raises(LakeError, match="checksum does not match the manifest") as err:
        warehouse.load(bad, lake, "replace")
    assert "SECRET-VALUE-42" not in str(err.value)
    manifest = json.loads(lake.read_bytes(bad.parts[0].uri.rsplit("/", 1)[0] + "/_manifest.json"))
    manifest["parts"][0]["sha256"] = hashlib.sha256(part.read_bytes()).hexdigest()  # tampered consistently
    manifest["parts"][0]["bytes"] = part.stat().st_size
    lake.write_bytes(bad.parts[0].uri.rsplit("/", 1)[0] + "/_manifest.json", json.dumps(manifest).encode())
    with pytest.raises(WarehouseError, match="load failed, nothing published") as err:
        warehouse.load(read_manifest(lake, bad.parts[0].uri.rsplit("/", 1)[0] + "/_manifest.json"), lake, "replace")
    assert "SECRET-VALUE-42" not in str(err.value)
    assert contents(warehouse, target)[0] == ("1", "alpha", "10.50")


def test_append_refuses_a_different_shape_or_narrower_type(wh: tuple[Warehouse, TableName], tmp_path: Path) -> None:
    warehouse, target = wh
    lake = LocalLake(tmp_path / "lake")
    warehouse.load(stage(lake, target, ROWS), lake, "append", batch="d1")
    extra = stage(
        lake,
        target,
        [["1", "x", "1"]],
        columns=(("id", "integer"), ("name", "text"), ("qty", "integer")),
        run_id="run2",
    )
    with pytest.raises(WarehouseError, match="source has columns the table lacks: qty"):
        warehouse.load(extra, lake, "append", batch="d2")
    finer = stage(
        lake,
        target,
        [["1", "x", "1.125"]],
        columns=(("id", "integer"), ("name", "text"), ("amount", "numeric(38,3)")),
        run_id="run3",
    )
    with pytest.raises(WarehouseError, match="column 'amount' is numeric\\(38,3\\) in the source"):
        warehouse.load(finer, lake, "append", batch="d2")
    whole = stage(
        lake,
        target,
        [["9", "x", "5"]],
        columns=(("id", "integer"), ("name", "text"), ("amount", "integer")),
        run_id="run4",
    )
    warehouse.load(whole, lake, "append", batch="d2")  # integers fit a numeric column
    assert warehouse.row_count(target) == 4


def test_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    warehouse = PostgresWarehouse(
        {"host": "127.0.0.1", "port": free_port(), "dbname": "x", "user": "u", "password": "hunter2-secret"}
    )
    lake = LocalLake(tmp_path / "lake")
    manifest = stage(lake, TableName("raw", "t"), ROWS)
    with pytest.raises(WarehouseError, match="cannot connect to the postgres 127.0.0.1") as err:
        warehouse.load(manifest, lake, "replace")
    assert "hunter2-secret" not in str(err.value)


def test_duckdb_writers_queue_on_the_file_lock(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    lake = LocalLake(tmp_path / "lake")
    manifests = [stage(lake, TableName("raw", f"t{i}"), ROWS, run_id=f"r{i}") for i in range(4)]
    errors: list[BaseException] = []

    def load(i: int) -> None:
        try:
            DuckDBWarehouse(tmp_path / "w.duckdb").load(manifests[i], lake, "replace")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [warehouse.row_count(TableName("raw", f"t{i}")) for i in range(4)] == [3, 3, 3, 3]


def test_a_duckdb_file_held_open_by_another_program_is_waited_for_then_named(tmp_path: Path) -> None:
    import subprocess
    import sys

    from headwater.errors import WarehouseError
    from headwater.lake import LocalLake
    from headwater.warehouse.duckdb import DuckDBWarehouse
    from tests.integration.helpers import stage

    path = tmp_path / "w.duckdb"
    lake = LocalLake(tmp_path / "lake")
    manifest = stage(lake, TableName("raw", "t"), [["1", "a", "1.00"]])
    hold = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
        " time.sleep(float(sys.argv[2]))"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(path), "60"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        with pytest.raises(WarehouseError, match=rf"held open by .* \(PID {holder.pid}\) for 1s; close it") as caught:
            DuckDBWarehouse(path, lock_timeout=1).load(manifest, lake, "replace")
        assert caught.value.transient  # a retry may find it closed
    finally:
        holder.kill()
        holder.wait()
    brief = subprocess.Popen([sys.executable, "-c", hold, str(path), "1.5"], stdout=subprocess.PIPE, text=True)
    assert brief.stdout is not None and brief.stdout.readline().strip() == "held"
    assert DuckDBWarehouse(path, lock_timeout=60).load(manifest, lake, "replace").table_rows == 1  # waited
    brief.wait()

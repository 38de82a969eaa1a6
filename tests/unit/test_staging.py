import csv
import gzip
import io
import re
from datetime import datetime
from pathlib import Path

import pytest

from headwater.coltypes import ColumnType
from headwater.errors import LakeError
from headwater.identifiers import TableName
from headwater.lake import LocalLake
from headwater.parts import read_manifest
from headwater.staging import stage_table
from headwater.table import Column, TypedTable

pytestmark = pytest.mark.unit

TARGET = TableName("raw", "t")
WHEN = datetime(2026, 1, 5)


def table(n: int) -> TypedTable:
    rows: list[list[str | None]] = [[str(i), f'say "hi"\n{i}', None if i % 2 else ""] for i in range(n)]
    return TypedTable(
        [Column("id", ColumnType("integer")), Column("note", ColumnType("text")), Column("empty", ColumnType("text"))],
        rows,
    )


def test_parts_rotate_and_manifest_lists_them(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    uri = stage_table(
        lake, table(25), target=TARGET, source="test", logical_date=WHEN, run_id="manual__1", rows_per_part=10
    )
    manifest = read_manifest(lake, uri)
    assert uri.endswith("/raw/t/2026-01-05/manual__1/_manifest.json")
    assert [p.rows for p in manifest.parts] == [10, 10, 5] and manifest.rows == 25
    assert [c["type"] for c in manifest.columns] == ["integer", "text", "text"]
    first = gzip.decompress(lake.read_bytes(manifest.parts[0].uri)).decode()
    assert first.startswith('"id","note","empty"\n"0","say ""hi""\n0",""\n"1","say ""hi""\n1",\n')
    records = list(csv.reader(io.StringIO(first)))
    assert records[1] == ["0", 'say "hi"\n0', ""]


def test_exact_multiple_and_empty_tables(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    uri = stage_table(lake, table(20), target=TARGET, source="t", logical_date=WHEN, run_id="r", rows_per_part=10)
    assert [p.rows for p in read_manifest(lake, uri).parts] == [10, 10]
    uri = stage_table(lake, table(0), target=TARGET, source="t", logical_date=WHEN, run_id="r0")
    assert [p.rows for p in read_manifest(lake, uri).parts] == [0]


def test_rerun_replaces_its_own_parts(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    stage_table(lake, table(30), target=TARGET, source="t", logical_date=WHEN, run_id="r", rows_per_part=10)
    prefix = lake.run_prefix(TARGET, WHEN, "r")
    # what a killed attempt leaves: its marker and a part named after it
    lake.write_bytes(prefix + "/_hw_attempt_0123456789ab.json", b'{"headwater_attempt": "0123456789ab"}')
    lake.write_bytes(prefix + "/part-0123456789ab-00009.csv.gz", b"left by a killed attempt")
    uri = stage_table(lake, table(5), target=TARGET, source="t", logical_date=WHEN, run_id="r", rows_per_part=10)
    names = sorted(re.sub(r"part-[0-9a-f]{12}-", "part-", u.rsplit("/", 1)[1]) for u in lake.list_uris(prefix))
    assert names == ["_manifest.json", "part-00000.csv.gz"]
    assert read_manifest(lake, uri).rows == 5


def test_local_lake_refuses_paths_outside_it(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    with pytest.raises(LakeError, match="outside the local lake"):
        lake.write_bytes((tmp_path / "elsewhere").as_uri(), b"x")
    with pytest.raises(LakeError, match="not found"):
        lake.read_bytes(lake.url + "/missing")


def test_bad_manifest(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    lake.write_bytes(lake.url + "/m.json", b'{"version": 99}')
    with pytest.raises(LakeError, match="manifest version"):
        read_manifest(lake, lake.url + "/m.json")

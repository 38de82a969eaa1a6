"""Table versions from content hashes: which loads change a table, and when a transform may be skipped."""

from pathlib import Path

import pytest

from headwater.errors import LakeError
from headwater.lake import LocalLake
from headwater.parts.manifest import Manifest, Part
from headwater.table_versions import (
    content_sha256,
    decide,
    next_version,
    read_record,
    record_consumed,
    record_load,
    record_uri,
)

pytestmark = pytest.mark.unit


def manifest(*checksums: str, rows: int = 10, prefix: str = "run1", columns: str = "a") -> Manifest:
    parts = [
        Part(uri=f"file:///lake/raw/t/{prefix}/part-{i:05d}.csv.gz", rows=rows, bytes=1, sha256=c)
        for i, c in enumerate(checksums)
    ]
    return Manifest(
        target="raw.t",
        source="test",
        columns=[{"name": columns, "type": "text"}],
        rows=rows * len(checksums),
        parts=parts,
        logical_date="2026-01-05T00:00:00+00:00",
        run_id=prefix,
    )


def test_content_hash_depends_on_data_not_on_where_or_when() -> None:
    base = content_sha256(manifest("x", "y"))
    assert content_sha256(manifest("x", "y", prefix="another_run")) == base
    reordered = manifest("x", "y")
    reordered.parts.reverse()  # parts finish in any order; the hash follows their names
    assert content_sha256(reordered) == base
    assert content_sha256(manifest("y", "x")) != base
    assert content_sha256(manifest("x", "z")) != base
    assert content_sha256(manifest("x", "y", columns="b")) != base
    assert content_sha256(manifest("x", "y", rows=11)) != base


@pytest.mark.parametrize(
    ("previous", "method", "content", "rows", "date", "changed"),
    [
        (None, "replace", "c1", 5, "d1", True),
        (("replace", "c1", "d1"), "replace", "c1", 5, "d2", False),
        (("replace", "c1", "d1"), "replace", "c2", 5, "d1", True),
        (("upsert", "c1", "d1"), "upsert", "c1", 5, "d2", False),
        (("upsert", "c1", "d1"), "upsert", "c2", 5, "d2", True),
        (("replace", "c1", "d1"), "upsert", "c1", 5, "d2", True),  # upsert after a replace: rows may differ
        (("upsert", "c1", "d1"), "upsert", "c2", 0, "d2", False),  # upserting nothing changes nothing
        (("append", "c1", "d1"), "append", "c1", 5, "d1", False),  # the same batch again replaces itself
        (("append", "c1", "d1"), "append", "c1", 5, "d2", True),  # a new batch, even of the same rows
        (("append", "c1", "d1"), "append", "c2", 5, "d1", True),
        (("upsert", "c1", "d1"), "append", "c1", 5, "d1", True),
    ],
)
def test_which_loads_change_a_table(
    previous: tuple[str, str, str] | None, method: str, content: str, rows: int, date: str, changed: bool
) -> None:
    from headwater.table_versions import LoadRecord

    record = None
    if previous is not None:
        record = LoadRecord("raw.t", previous[0], previous[1], 5, previous[2], "r", "dag", "v0", True)
    version, did_change = next_version(record, method, content, rows, date)
    assert did_change is changed
    assert (version == "v0") is (not changed)


def test_records_and_decisions_round_trip(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    first = record_load(lake, "wh", manifest("x"), "replace", logical_date="d1", run_id="r1", dag_id="ingest")
    assert first.changed and read_record(lake, "wh", "raw.t") == first
    assert read_record(lake, "other_wh", "raw.t") is None  # per warehouse

    never = decide(lake, "wh", "transform", ["raw.t"], "p1")
    assert never.changed and never.reasons == ["transform has not run on this warehouse yet"]
    record_consumed(lake, "wh", "transform", never.versions, "p1", run_id="t1", logical_date="d1")
    assert decide(lake, "wh", "transform", ["raw.t"], "p1").changed is False

    same = record_load(lake, "wh", manifest("x", prefix="r2"), "replace", logical_date="d2", run_id="r2", dag_id="i")
    assert not same.changed and same.version == first.version
    assert decide(lake, "wh", "transform", ["raw.t"], "p1").changed is False

    other = record_load(lake, "wh", manifest("y"), "replace", logical_date="d3", run_id="r3", dag_id="ingest")
    moved = decide(lake, "wh", "transform", ["raw.t"], "p1")
    assert moved.changed and moved.reasons == [f"raw.t changed (version {first.version} -> {other.version})"]

    edited = decide(lake, "wh", "transform", [], "p2")
    assert edited.changed and "definition changed" in edited.reasons[0]

    unknown = decide(lake, "wh", "transform", ["raw.t", "raw.elsewhere"], "p1")
    assert "raw.elsewhere has no headwater load record, so nothing proves it unchanged" in unknown.reasons


def test_a_damaged_record_is_an_error_naming_it(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    uri = record_uri(lake, "wh", "raw.t")
    lake.write_bytes(uri, b"{not json")
    with pytest.raises(LakeError, match="not valid JSON; headwater wrote it, so it was damaged: delete it"):
        read_record(lake, "wh", "raw.t")
    lake.write_bytes(uri, b'{"table": "raw.t"}')
    with pytest.raises(LakeError, match="not a headwater load record"):
        read_record(lake, "wh", "raw.t")

"""Table versions from content hashes: which loads change a table, and when a transform may be skipped."""

from datetime import datetime
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


def test_persisted_formats_are_pinned(tmp_path: Path) -> None:
    """Hashes, versions and records are kept in the lake between runs: a silent change to any of them makes
    every table look changed once (or, worse, unchanged), so they are pinned here."""
    import hashlib
    import json

    content = content_sha256(manifest("x", "y"))
    assert content == "d766eadd0b72861d4f6d9062eb7ffe8489856e0693416298d231adf1a711a867"
    first, changed = next_version(None, "replace", content, 20, "d1")
    assert changed and first == hashlib.sha256(f"|replace|d1|{content}".encode()).hexdigest()[:20]

    lake = LocalLake(tmp_path)
    record = record_load(lake, "wh", manifest("x", "y"), "replace", logical_date="d1", run_id="r1", dag_id="ingest")
    written = json.loads((tmp_path / "_loads" / "wh" / "tables" / "raw.t.json").read_text())
    assert written.pop("loaded_at") == record.loaded_at
    assert written == {
        "table": "raw.t",
        "method": "replace",
        "content_sha256": content,
        "rows": 20,
        "logical_date": "d1",
        "run_id": "r1",
        "dag_id": "ingest",
        "version": first,
        "changed": True,
    }
    second = record_load(lake, "wh", manifest("z"), "replace", logical_date="d2", run_id="r2", dag_id="ingest")
    assert (
        second.version
        == hashlib.sha256(f"{first}|replace|d2|{content_sha256(manifest('z'))}".encode()).hexdigest()[:20]
    )

    record_consumed(lake, "wh", "transform.dbt", {"raw.t": second.version}, "p1", run_id="t1", logical_date="d2")
    consumed = json.loads((tmp_path / "_loads" / "wh" / "consumers" / "transform.dbt.json").read_text())
    built_at = consumed.pop("built_at")
    assert datetime.fromisoformat(built_at).tzinfo is not None
    assert consumed == {
        "consumer": "transform.dbt",
        "inputs": {"raw.t": second.version},
        "project": "p1",
        "run_id": "t1",
        "logical_date": "d2",
    }


def test_table_names_are_case_insensitive_in_the_records(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    record_load(lake, "wh", manifest("x"), "replace", logical_date="d1", run_id="r1", dag_id="i")
    assert record_uri(lake, "wh", "RAW.T") == record_uri(lake, "wh", "raw.t")
    assert read_record(lake, "wh", "Raw.T") is not None


def test_loads_that_leave_the_table_as_it_was_keep_its_version(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)

    def load(method: str, *parts: str, rows: int = 10, date: str = "d1") -> tuple[str, bool]:
        done = record_load(lake, "wh", manifest(*parts, rows=rows), method, logical_date=date, run_id="r", dag_id="i")
        return done.version, done.changed

    first, _ = load("upsert", "a")
    assert load("upsert", "b", rows=0) == (first, False)  # upserting no rows changes nothing
    appended, changed = load("append", "a", date="d2")
    assert changed and appended != first
    assert load("append", "a", date="d2") == (appended, False)  # the same batch again
    assert load("append", "a", date="d3")[1] is True  # the same rows as a new batch


def test_a_new_input_is_a_change_naming_it(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    record_consumed(lake, "wh", "transform", {}, "p1", run_id="t1", logical_date="d1")
    added = record_load(lake, "wh", manifest("x"), "replace", logical_date="d1", run_id="r1", dag_id="i")
    decision = decide(lake, "wh", "transform", ["raw.t"], "p1")
    assert decision.reasons == [f"raw.t changed (version none -> {added.version})"]

"""Never delete what headwater did not write: foreign objects refuse the write, paths stay inside their prefix."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from headwater.coltypes import ColumnType
from headwater.errors import LakeError
from headwater.identifiers import TableName
from headwater.lake import LocalLake, slug
from headwater.parts import read_manifest
from headwater.scratch import SCRATCH_PREFIX, scratch_folder, sweep_abandoned
from headwater.staging import stage_table
from headwater.table import Column, TypedTable

pytestmark = pytest.mark.unit

TARGET = TableName("raw", "t")
WHEN = datetime(2026, 1, 5)


def table(n: int) -> TypedTable:
    return TypedTable([Column("id", ColumnType("integer"))], [[str(i)] for i in range(n)])


def stage(lake: LocalLake, n: int, run_id: str = "r") -> str:
    return stage_table(lake, table(n), target=TARGET, source="t", logical_date=WHEN, run_id=run_id, rows_per_part=10)


def test_a_users_file_under_the_prefix_refuses_the_write_and_survives(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    first = stage(lake, 25)
    folder = Path(first.removeprefix("file://")).parent
    (folder / "notes.txt").write_text("mine")
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(LakeError, match=r"1 object\(s\) headwater did not write .*notes.txt"):
        stage(lake, 5)
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing deleted, no marker left
    assert (folder / "notes.txt").read_text() == "mine"
    assert read_manifest(lake, first).rows == 25


def test_a_foreign_or_corrupt_manifest_is_not_trusted(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    folder = Path(lake.run_prefix(TARGET, WHEN, "r").removeprefix("file://"))
    folder.mkdir(parents=True)
    (folder / "_manifest.json").write_text('{"not": "ours"}')
    (folder / "part-00000.csv.gz").write_bytes(b"someone else's")
    with pytest.raises(LakeError, match="did not write"):
        stage(lake, 5)
    assert (folder / "part-00000.csv.gz").read_bytes() == b"someone else's"


def test_a_rerun_removes_only_the_previous_publish_and_dead_attempts(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    first = read_manifest(lake, stage(lake, 25))
    prefix = lake.run_prefix(TARGET, WHEN, "r")
    token = "0123456789ab"
    lake.write_bytes(f"{prefix}/_hw_attempt_{token}.json", json.dumps({"headwater_attempt": token}).encode())
    lake.write_bytes(f"{prefix}/part-{token}-00003.csv.gz", b"a killed attempt")
    folder = Path(prefix.removeprefix("file://"))
    (folder / f".part-{token}-00004.csv.gz.4242.tmp").write_bytes(b"killed mid-copy")
    (folder / "._manifest.json.4242.tmp").write_bytes(b"killed mid-publish")
    second = read_manifest(lake, stage(lake, 5))
    left = sorted(lake.list_uris(prefix))
    assert left == sorted([f"{prefix}/_manifest.json"] + [p.uri for p in second.parts])
    assert not {p.uri for p in first.parts} & set(left)


def test_a_marker_whose_content_is_not_headwaters_does_not_vouch_for_parts(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    prefix = lake.run_prefix(TARGET, WHEN, "r")
    lake.write_bytes(f"{prefix}/_hw_attempt_0123456789ab.json", b"{}")
    lake.write_bytes(f"{prefix}/part-0123456789ab-00000.csv.gz", b"x")
    with pytest.raises(LakeError, match="2 object"):
        stage(lake, 5)


def test_a_live_writer_on_this_host_is_not_raced(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    lake = LocalLake(tmp_path)
    prefix = lake.run_prefix(TARGET, WHEN, "r")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        record = {"headwater_attempt": "0123456789ab", "host": socket.gethostname(), "pid": sleeper.pid}
        lake.write_bytes(f"{prefix}/_hw_attempt_0123456789ab.json", json.dumps(record).encode())
        with pytest.raises(LakeError, match=f"process {sleeper.pid}"):
            stage(lake, 5)
    finally:
        sleeper.kill()
        sleeper.wait()
    stage(lake, 5)  # once it is gone its attempt is swept


@pytest.mark.parametrize("run_id", ["..", "../..", ".", "a/../../b", "..%2f..", "manual__2026-01-05T00:00:00+00:00"])
def test_a_run_id_is_one_safe_segment(tmp_path: Path, run_id: str) -> None:
    lake = LocalLake(tmp_path / "lake")
    (tmp_path / "lake" / "raw" / "t" / "keep.txt").parent.mkdir(parents=True)
    (tmp_path / "lake" / "raw" / "t" / "keep.txt").write_text("x")
    segment = slug(run_id)
    assert "/" not in segment and segment not in (".", "..") and not segment.startswith(".")
    uri = stage(lake, 5, run_id=run_id)
    assert Path(uri.removeprefix("file://")).parent.parent == tmp_path / "lake" / "raw" / "t" / "2026-01-05"
    assert (tmp_path / "lake" / "raw" / "t" / "keep.txt").exists()


def test_distinct_run_ids_never_share_a_prefix() -> None:
    assert slug("a/b") != slug("a_b") != slug("a:b")
    assert slug("scheduled__2026-01-05") == "scheduled__2026-01-05"  # already safe: unchanged


def test_a_manifest_part_outside_its_prefix_is_refused_before_anything_is_read_or_deleted(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    uri = stage(lake, 5)
    victim = tmp_path / "lake" / "raw" / "victim.csv.gz"
    victim.write_bytes(b"precious")
    data = json.loads(Path(uri.removeprefix("file://")).read_text())
    folder = uri.rsplit("/", 1)[0]
    for evil in (f"{folder}/../../../victim.csv.gz", f"{lake.url}/raw/victim.csv.gz", f"{folder}/./x", f"{folder}//x"):
        data["parts"][0]["uri"] = evil
        Path(uri.removeprefix("file://")).write_text(json.dumps(data))
        with pytest.raises(LakeError):
            read_manifest(lake, uri)
        with pytest.raises(LakeError, match="did not write"):
            stage(lake, 5)  # the tampered manifest vouches for nothing
    assert victim.read_bytes() == b"precious"


@pytest.mark.parametrize("key", ["a/../b", "a/./b", "a//b", ".."])
def test_lake_paths_with_dot_segments_are_refused(tmp_path: Path, key: str) -> None:
    lake = LocalLake(tmp_path / "lake")
    with pytest.raises(LakeError, match=r"'\.', '\.\.' or empty segments"):
        lake.write_bytes(f"{lake.url}/{key}", b"x")


def test_abandoned_scratch_folders_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys, time; from pathlib import Path; from headwater.scratch import scratch_folder\n"
        f"with scratch_folder(Path({str(tmp_path)!r})) as f:\n    print(f, flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    dead = Path(child.stdout.readline().strip())
    with scratch_folder(tmp_path) as live:
        assert dead.is_dir() and sweep_abandoned(tmp_path) == 0  # both owners alive
        child.kill()
        child.wait()
        assert sweep_abandoned(tmp_path) == 1
        assert not dead.exists() and live.is_dir()
    assert not list(tmp_path.glob(SCRATCH_PREFIX + "*"))


def test_a_scratch_folder_without_an_owner_is_swept_only_when_old(tmp_path: Path) -> None:
    fresh = tmp_path / (SCRATCH_PREFIX + "fresh")
    old = tmp_path / (SCRATCH_PREFIX + "old")
    fresh.mkdir()
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert sweep_abandoned(tmp_path) == 1
    assert fresh.exists() and not old.exists()

"""Claiming a lake prefix: the attempt marker, what counts as headwater's, publishing, and abandoning."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import LakeError
from headwater.lake import LocalLake
from headwater.parts import Claim, Manifest, Part, claim_prefix

pytestmark = pytest.mark.unit

TOKEN = "0123456789ab"
LOGGER = "headwater.parts.destination"


@pytest.fixture
def lake(tmp_path: Path) -> LocalLake:
    return LocalLake(tmp_path / "lake")


@pytest.fixture
def prefix(lake: LocalLake) -> str:
    return f"{lake.url}/out"


def publish(claim: Claim, parts: int) -> Manifest:
    """Write ``parts`` one-row parts for ``claim`` and publish them."""
    listed = []
    for index in range(parts):
        uri = claim.part_uri(index, "csv")
        claim.lake.write_bytes(uri, b'"id"\n"1"\n')
        listed.append(Part(uri, 1, 9, "x"))
    manifest = Manifest("raw.t", "s", [{"name": "id", "type": "integer"}], parts, listed, "", "", format="csv")
    claim.publish(manifest)
    return manifest


def marker(lake: LocalLake, prefix: str, **record: Any) -> str:
    uri = f"{prefix}/_hw_attempt_{TOKEN}.json"
    lake.write_bytes(uri, json.dumps({"headwater_attempt": TOKEN, **record}).encode())
    return uri


def test_a_claim_leaves_a_marker_naming_its_attempt_process_and_start(lake: LocalLake, prefix: str) -> None:
    claim = claim_prefix(lake, prefix)
    assert re.fullmatch("[0-9a-f]{12}", claim.token) is not None
    assert (claim.prefix, claim.stale) == (prefix, [])
    assert claim.marker_uri == f"{prefix}/_hw_attempt_{claim.token}.json"
    assert claim.part_prefix == f"{prefix}/part-{claim.token}-"
    assert claim.part_uri(3, "csv.gz") == f"{prefix}/part-{claim.token}-00003.csv.gz"
    assert lake.list_uris(prefix) == [claim.marker_uri]
    record = json.loads(lake.read_bytes(claim.marker_uri))
    started = datetime.fromisoformat(record.pop("started_at"))
    assert record == {
        "headwater_attempt": claim.token,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "leftovers": [],
    }
    assert started.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - started) < timedelta(seconds=30)


def test_a_prefix_with_a_trailing_slash_is_claimed_without_it(lake: LocalLake) -> None:
    claim = claim_prefix(lake, f"{lake.url}/exports/BOX/")
    assert claim.prefix == f"{lake.url}/exports/BOX"
    assert lake.list_uris(f"{lake.url}/exports/BOX") == [f"{lake.url}/exports/BOX/_hw_attempt_{claim.token}.json"]


def test_foreign_objects_refuse_the_claim_with_a_message_naming_the_first(lake: LocalLake, prefix: str) -> None:
    lake.write_bytes(f"{prefix}/a.txt", b"mine")
    lake.write_bytes(f"{prefix}/sub/b.csv", b"mine too")
    message = (
        f"{prefix}: holds 2 object(s) headwater did not write (first: {prefix}/a.txt); "
        "nothing was written or deleted. Export to an empty location, or to a new prefix."
    )
    with pytest.raises(LakeError, match=f"^{re.escape(message)}$"):
        claim_prefix(lake, prefix)
    assert lake.list_uris(prefix) == [f"{prefix}/a.txt", f"{prefix}/sub/b.csv"]


@pytest.mark.parametrize(
    ("names", "foreign"),
    [
        (["._manifest.json.4242.tmp"], None),
        ([f"._hw_attempt_{TOKEN}.json.4242.tmp"], None),
        ([".notes.txt.4242.tmp"], ".notes.txt.4242.tmp"),
        ([f".part-{TOKEN}-00000.csv.gz.4242.tmp"], f".part-{TOKEN}-00000.csv.gz.4242.tmp"),  # no marker vouches
        (["._manifest.json.tmp"], "._manifest.json.tmp"),
        (["._hw_attempt_XYZ.json.4242.tmp"], "._hw_attempt_XYZ.json.4242.tmp"),
    ],
)
def test_a_local_lakes_half_written_file_is_headwaters_only_when_its_name_is(
    lake: LocalLake, prefix: str, names: list[str], foreign: str | None
) -> None:
    folder = Path(prefix.removeprefix("file://"))
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(b"half")
    if foreign is None:
        assert claim_prefix(lake, prefix).stale == [f"{prefix}/{n}" for n in sorted(names)]
    else:
        with pytest.raises(
            LakeError, match=re.escape(f"holds 1 object(s) headwater did not write (first: {prefix}/{foreign})")
        ):
            claim_prefix(lake, prefix)


def test_a_half_written_copy_of_a_published_part_is_headwaters(lake: LocalLake, prefix: str) -> None:
    manifest = publish(claim_prefix(lake, prefix), 1)
    name = manifest.parts[0].uri.rsplit("/", 1)[1]
    Path(prefix.removeprefix("file://"), f".{name}.77.tmp").write_bytes(b"half")
    claim = claim_prefix(lake, prefix)
    assert claim.stale == sorted([f"{prefix}/_manifest.json", manifest.parts[0].uri, f"{prefix}/.{name}.77.tmp"])


def test_a_redshift_copy_manifest_over_headwaters_parts_is_replaced_by_a_rerun(lake: LocalLake, prefix: str) -> None:
    old = publish(claim_prefix(lake, prefix), 2)
    copy = f"{prefix}/_redshift_copy.manifest"
    lake.write_bytes(copy, json.dumps({"entries": [{"url": p.uri, "mandatory": True} for p in old.parts]}).encode())
    claim = claim_prefix(lake, prefix)
    assert copy in claim.stale
    new = publish(claim, 1)
    assert lake.list_uris(prefix) == sorted([f"{prefix}/_manifest.json", new.parts[0].uri])


@pytest.mark.parametrize(
    "content",
    [
        {"entries": [{"url": "s3://elsewhere/data.csv"}]},
        {"entries": [{"path": "x"}]},
        {"files": []},
        {"entries": []},  # vouches for nothing: it is not proof that headwater wrote it
        [1, 2],
        "not json",
    ],
)
def test_a_redshift_copy_manifest_pointing_elsewhere_or_unreadable_is_foreign(
    lake: LocalLake, prefix: str, content: Any
) -> None:
    publish(claim_prefix(lake, prefix), 1)
    copy = f"{prefix}/_redshift_copy.manifest"
    lake.write_bytes(copy, content.encode() if isinstance(content, str) else json.dumps(content).encode())
    with pytest.raises(LakeError, match=re.escape(f"holds 1 object(s) headwater did not write (first: {copy})")):
        claim_prefix(lake, prefix)


def test_a_live_writer_on_this_host_refuses_the_claim_and_is_left_undisturbed(lake: LocalLake, prefix: str) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        Path(prefix.removeprefix("file://")).mkdir(parents=True)
        Path(prefix.removeprefix("file://"), "._manifest.json.4242.tmp").write_bytes(b"half")  # listed first
        uri = marker(lake, prefix, host=socket.gethostname(), pid=sleeper.pid, started_at="2026-01-05T06:00:00+00:00")
        before = lake.list_uris(prefix)
        message = (
            f"{prefix}: another headwater write (process {sleeper.pid}, started 2026-01-05T06:00:00+00:00) "
            "is still running here; wait for it or stop it"
        )
        with pytest.raises(LakeError, match=f"^{re.escape(message)}$") as caught:
            claim_prefix(lake, prefix)
        assert caught.value.transient is True
        assert lake.list_uris(prefix) == before and uri in before
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sleeper.returncode == -signal.SIGKILL  # probing it sent no signal of its own


def test_a_writer_of_another_user_counts_as_live(lake: LocalLake, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real_kill = os.kill

    def kill(pid: int, sig: int) -> None:
        if pid == 4_000_000:
            raise PermissionError("not yours")
        real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", kill)
    marker(lake, prefix, host=socket.gethostname(), pid=4_000_000)
    with pytest.raises(LakeError, match=r"another headwater write \(process 4000000, started None\)"):
        claim_prefix(lake, prefix)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    "record",
    [
        {"host": "another-host", "pid": 1},  # a live process, but not on this host
        {"host": socket.gethostname(), "pid": os.getpid()},  # this very process
        {"host": socket.gethostname(), "pid": "dead"},
        {"host": socket.gethostname(), "pid": "not a number"},
        {"host": socket.gethostname()},
        {"host": socket.gethostname(), "pid": None},
    ],
)
def test_a_marker_of_no_live_writer_here_is_swept_as_an_abandoned_attempt(
    lake: LocalLake, prefix: str, record: dict[str, Any]
) -> None:
    if record.get("pid") == "dead":
        record["pid"] = dead_pid()
    uri = marker(lake, prefix, **record)
    part = f"{prefix}/part-{TOKEN}-00000.csv"
    lake.write_bytes(part, b"left by a killed attempt")
    claim = claim_prefix(lake, prefix)
    assert claim.stale == [uri, part]
    new = publish(claim, 1)
    assert lake.list_uris(prefix) == sorted([f"{prefix}/_manifest.json", new.parts[0].uri])


def test_a_first_publish_removes_only_its_marker_and_logs_nothing(
    lake: LocalLake, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    claim = claim_prefix(lake, prefix)
    manifest = publish(claim, 2)
    assert lake.list_uris(prefix) == sorted([f"{prefix}/_manifest.json"] + [p.uri for p in manifest.parts])
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == []


@pytest.mark.parametrize("old_parts", [1, 3])
def test_a_rerun_removes_what_the_previous_write_left_and_says_how_many(
    lake: LocalLake, prefix: str, caplog: pytest.LogCaptureFixture, old_parts: int
) -> None:
    publish(claim_prefix(lake, prefix), old_parts)
    caplog.set_level(logging.INFO, logger=LOGGER)
    new = publish(claim_prefix(lake, prefix), 1)
    assert lake.list_uris(prefix) == sorted([f"{prefix}/_manifest.json", new.parts[0].uri])
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        f"removed {old_parts} objects the previous write to {prefix} left"
    ]


class UndeletableLake(LocalLake):
    def delete(self, uris: list[str]) -> None:
        raise OSError("read-only file system")


def test_a_publish_that_cannot_remove_the_old_objects_still_publishes_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = UndeletableLake(tmp_path / "lake")
    prefix = f"{lake.url}/out"
    claim = claim_prefix(lake, prefix)
    manifest = publish(claim, 1)
    assert (
        Manifest.from_json(lake.read_bytes(f"{prefix}/_manifest.json").decode(), f"{prefix}/_manifest.json") == manifest
    )
    assert lake.list_uris(prefix) == sorted([f"{prefix}/_manifest.json", claim.marker_uri, manifest.parts[0].uri])
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER] == [
        (
            "WARNING",
            f"published {prefix}/_manifest.json; 0 replaced object(s) and the attempt marker remain:"
            " read-only file system",
        )
    ]


class FlakyDeleteLake(LocalLake):
    """Refuses the first delete, as S3 may (a 200 answer listing per-key errors)."""

    refused = False

    def delete(self, uris: list[str]) -> None:
        if not self.refused and uris:
            self.refused = True
            raise LakeError("delete refused (AccessDenied)")
        super().delete(uris)


def test_a_cleanup_that_failed_after_publishing_is_swept_by_the_next_write(tmp_path: Path) -> None:
    lake = FlakyDeleteLake(tmp_path / "lake")
    prefix = f"{lake.url}/out"
    lake.refused = True  # the first write cleans up fine
    first = publish(claim_prefix(lake, prefix), 1)
    lake.refused = False
    second = publish(claim_prefix(lake, prefix), 1)  # its removal of the first write's part fails
    assert first.parts[0].uri in lake.list_uris(prefix)  # left over, but vouched for by the marker
    third = publish(claim_prefix(lake, prefix), 1)  # not refused: the leftovers are headwater's
    left = lake.list_uris(prefix)
    assert left == sorted([f"{prefix}/_manifest.json", third.parts[0].uri])
    assert second.parts[0].uri not in left


def test_publish_refuses_a_manifest_listing_parts_elsewhere_before_writing_it(lake: LocalLake, prefix: str) -> None:
    claim = claim_prefix(lake, prefix)
    manifest = Manifest("raw.t", "s", [], 1, [Part(f"{lake.url}/other/p.csv", 1, 1, "x")], "", "", format="csv")
    with pytest.raises(LakeError, match="lies outside the manifest's own prefix"):
        claim.publish(manifest)
    assert lake.list_uris(prefix) == [claim.marker_uri]


def test_abandon_removes_this_attempts_parts_and_marker_only(lake: LocalLake, prefix: str) -> None:
    published = publish(claim_prefix(lake, prefix), 1)
    claim = claim_prefix(lake, prefix)
    for index in range(2):
        lake.write_bytes(claim.part_uri(index, "csv"), b"x")
    claim.abandon()
    assert lake.list_uris(prefix) == sorted([f"{prefix}/_manifest.json", published.parts[0].uri])


def test_abandon_that_cannot_remove_its_parts_warns_instead_of_failing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = UndeletableLake(tmp_path / "lake")
    prefix = f"{lake.url}/out"
    claim = claim_prefix(lake, prefix)
    lake.write_bytes(claim.part_uri(0, "csv"), b"x")
    claim.abandon()
    assert lake.list_uris(prefix) == sorted([claim.marker_uri, claim.part_uri(0, "csv")])
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER] == [
        ("WARNING", f"could not remove the parts of the failed write under {prefix}: read-only file system")
    ]

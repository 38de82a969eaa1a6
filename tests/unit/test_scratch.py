"""Scratch folders: private while their process lives, swept once it is gone or when left unlocked too long."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from headwater.scratch import SCRATCH_PREFIX, scratch_folder, sweep_abandoned

pytestmark = pytest.mark.unit

NOW = 1_800_000_000
LOGGER = "headwater.scratch"


def folder(root: Path, name: str, *, age: float = 0.0, owner: bool = False, files: tuple[str, ...] = ()) -> Path:
    """A scratch-named folder; ``owner`` adds an ``.owner`` file no process holds (its process died)."""
    path = root / (SCRATCH_PREFIX + name)
    path.mkdir()
    for file in files:
        (path / file).write_text(file)
    if owner:
        (path / ".owner").write_text("")
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def dead_owner(root: Path) -> Path:
    """A folder made by scratch_folder in a process that was killed before it could clean up."""
    script = (
        "import os, sys; from pathlib import Path; from headwater.scratch import scratch_folder\n"
        "with scratch_folder(Path(sys.argv[1])) as f:\n"
        "    (f / 'part').write_text('x'); print(f, flush=True); os._exit(0)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(root)], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def test_a_scratch_folder_is_private_locked_and_removed_on_exit(tmp_path: Path) -> None:
    with scratch_folder(tmp_path) as path:
        assert path.parent == tmp_path and path.name.startswith(SCRATCH_PREFIX)
        assert sorted(p.name for p in path.iterdir()) == [".owner"]
        assert path.stat().st_mode & 0o777 == 0o700
        (path / "part-00000.csv.gz").write_bytes(b"x")
        assert sweep_abandoned(tmp_path) == 0  # its owner (this process) holds the lock
        assert path.is_dir()
    assert list(tmp_path.iterdir()) == []


def test_a_scratch_folder_is_removed_when_its_block_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="^boom$"), scratch_folder(tmp_path) as path:
        (path / "sub").mkdir()
        (path / "sub" / "f").write_text("x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_a_scratch_folder_sweeps_the_abandoned_ones_first(tmp_path: Path) -> None:
    dead = dead_owner(tmp_path)
    with scratch_folder(tmp_path) as path:
        assert list(tmp_path.iterdir()) == [path]
    assert not dead.exists()


def test_without_a_root_the_system_temp_folder_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = folder(tmp_path, "old", age=7200)
    with scratch_folder() as path:
        assert path.parent == tmp_path
    assert not old.exists()
    folder(tmp_path, "again", owner=True)
    assert sweep_abandoned() == 1
    assert list(tmp_path.iterdir()) == []


def test_a_killed_owners_folder_goes_and_a_live_ones_stays(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    dead = dead_owner(tmp_path)
    assert (dead / "part").read_text() == "x"
    with scratch_folder(tmp_path) as live:
        assert sweep_abandoned(tmp_path) == 0  # scratch_folder already swept the dead one
        assert list(tmp_path.iterdir()) == [live]
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "removed 1 scratch folders that killed processes left behind"
    ]


def test_a_sweep_counts_and_logs_every_folder_it_removes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    gone = [dead_owner(tmp_path), folder(tmp_path, "a", age=7200), folder(tmp_path, "b", age=7200, files=("x",))]
    assert sweep_abandoned(tmp_path) == 3
    assert [p.exists() for p in gone] == [False, False, False]
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "removed 3 scratch folders that killed processes left behind"
    ]


def test_a_sweep_that_removes_nothing_logs_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    folder(tmp_path, "fresh")
    assert sweep_abandoned(tmp_path) == 0
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == []


@pytest.mark.parametrize(("age", "swept"), [(0, False), (599, False), (600, False), (601, True), (86400, True)])
def test_a_folder_without_an_owner_file_is_left_alone_for_ten_minutes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, age: int, swept: bool
) -> None:
    path = folder(tmp_path, "unlocked")
    os.utime(path, (NOW - age, NOW - age))
    monkeypatch.setattr("headwater.scratch.time", SimpleNamespace(time=lambda: float(NOW)))
    assert sweep_abandoned(tmp_path) == int(swept)
    assert path.exists() is not swept


def test_files_and_symlinks_named_like_scratch_folders_are_not_touched(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("mine")
    os.utime(target, (time.time() - 7200, time.time() - 7200))
    link = tmp_path / (SCRATCH_PREFIX + "link")
    link.symlink_to(target, target_is_directory=True)
    file = tmp_path / (SCRATCH_PREFIX + "file")
    file.write_text("mine")
    os.utime(file, (time.time() - 7200, time.time() - 7200))
    assert sweep_abandoned(tmp_path) == 0
    assert (link.is_symlink(), (target / "keep").read_text(), file.read_text()) == (True, "mine", "mine")


def test_entries_it_skips_do_not_stop_the_sweep_of_the_rest(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    gone: list[Path] = []
    for i in range(4):
        (tmp_path / f"{SCRATCH_PREFIX}file{i}").write_text("mine")
        (tmp_path / f"{SCRATCH_PREFIX}link{i}").symlink_to(tmp_path / "elsewhere")
        gone += [folder(tmp_path, f"old{i}", age=7200), folder(tmp_path, f"dead{i}", owner=True)]
    with scratch_folder(tmp_path / "elsewhere") as live:
        (tmp_path / f"{SCRATCH_PREFIX}live").symlink_to(live)
        assert sweep_abandoned(tmp_path) == 8
    assert [p.exists() for p in gone] == [False] * 8
    assert len(list(tmp_path.glob(SCRATCH_PREFIX + "*"))) == 9  # the 4 files and 5 symlinks


@pytest.mark.parametrize("kind", ["unlocked and old", "owner gone"])
def test_a_file_that_cannot_be_deleted_does_not_keep_the_rest_of_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    path = folder(tmp_path, "stuck", age=7200, owner=kind == "owner gone", files=("a", "b", "c", "d"))
    other = folder(tmp_path, "other", age=7200)
    refused: list[str] = []
    real_unlink = os.unlink

    def unlink(name: Any, *, dir_fd: Any = None) -> None:
        if not refused:  # the first file the sweep tries to delete is not ours to delete
            refused.append(name)
            raise PermissionError(13, "Permission denied", name)
        real_unlink(name, dir_fd=dir_fd)

    with monkeypatch.context() as patch:
        patch.setattr(os, "unlink", unlink)
        assert sweep_abandoned(tmp_path) == 1  # the folder that stayed is not counted as removed
    assert [p.name for p in path.iterdir()] == refused
    assert not other.exists()


def test_folders_in_use_or_not_ours_do_not_stop_the_sweep_of_the_rest(tmp_path: Path) -> None:
    gone: list[Path] = []
    odd: list[Path] = []
    with contextlib.ExitStack() as stack:
        live = [stack.enter_context(scratch_folder(tmp_path)) for _ in range(3)]  # each sweeps first: make them first
        for i in range(3):
            strange = folder(tmp_path, f"odd{i}", age=7200)
            (strange / ".owner").mkdir()  # an owner that cannot be opened: not a folder headwater made
            odd.append(strange)
            gone += [folder(tmp_path, f"old{i}", age=7200), folder(tmp_path, f"dead{i}", owner=True)]
        assert sweep_abandoned(tmp_path) == 6
        assert [p.is_dir() for p in live] == [True] * 3
        assert len(list(tmp_path.glob(SCRATCH_PREFIX + "*"))) == 6  # the 3 live folders and the 3 odd ones
    assert [p.exists() for p in gone] == [False] * 6
    assert [p.is_dir() for p in odd] == [True] * 3

"""Log cleanup on a temporary tree: old, new, running-task and symlinked entries, dry run first, then real."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from headwater.errors import ConfigError
from headwater.log_cleanup import clean_logs, running_task_matcher

pytestmark = pytest.mark.unit

DAY = 86400


def write(path: Path, size: int, age_days: float, now: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (now - age_days * DAY, now - age_days * DAY))
    return path


def test_dry_run_lists_exactly_what_the_real_run_deletes(tmp_path: Path) -> None:
    now = time.time()
    logs = tmp_path / "logs"
    old = write(logs / "dag_id=a/run_id=r1/task_id=t/attempt=1.log", 100, 40, now)
    old_sibling = write(logs / "dag_id=a/run_id=r1/task_id=u/attempt=1.log", 50, 31, now)
    new = write(logs / "dag_id=a/run_id=r2/task_id=t/attempt=1.log", 70, 2, now)
    running = write(logs / "dag_id=b/run_id=r9/task_id=slow/attempt=3.log", 30, 45, now)  # a week-long task
    outside = write(tmp_path / "precious" / "keep.txt", 10, 90, now)
    (logs / "dag_id=a" / "link.log").symlink_to(outside)
    (logs / "elsewhere").symlink_to(tmp_path / "precious", target_is_directory=True)
    is_running = running_task_matcher({("b", "r9", "slow")})

    dry = clean_logs(logs, 30, dry_run=True, running=is_running, now=now)
    assert sorted(dry.files) == sorted([old.resolve(), old_sibling.resolve()])
    assert dry.bytes == 150 and dry.kept_running == [running.resolve()]
    assert sorted(p.name for p in dry.skipped_links) == ["elsewhere", "link.log"]
    assert sorted(p.relative_to(logs.resolve()).as_posix() for p in dry.folders) == [
        "dag_id=a/run_id=r1",
        "dag_id=a/run_id=r1/task_id=t",
        "dag_id=a/run_id=r1/task_id=u",
    ]
    assert old.exists() and old_sibling.exists()  # nothing touched
    assert dry.summary() == (
        "would delete 2 files (0.0 MB) and 3 empty folders; kept 1 files of running tasks; skipped 2 links"
    )

    real = clean_logs(logs, 30, dry_run=False, running=is_running, now=now)
    assert real.files == dry.files and real.folders == dry.folders and real.bytes == 150
    assert not old.exists() and not old_sibling.exists() and not (logs / "dag_id=a/run_id=r1").exists()
    assert new.exists() and running.exists() and outside.exists()
    assert (logs / "dag_id=a" / "link.log").is_symlink() and (logs / "elsewhere").is_symlink()
    assert logs.is_dir()  # the log folder itself stays, even when emptied
    assert clean_logs(logs, 30, dry_run=False, running=is_running, now=now).files == []  # idempotent


def test_an_emptied_log_folder_stays(tmp_path: Path) -> None:
    now = time.time()
    write(tmp_path / "a" / "old.log", 1, 10, now)
    report = clean_logs(tmp_path, 1, dry_run=False, now=now)
    assert len(report.files) == 1 and tmp_path.is_dir() and not (tmp_path / "a").exists()


@pytest.mark.parametrize("days", [0, -1])
def test_a_retention_that_is_not_positive_is_refused(tmp_path: Path, days: float) -> None:
    with pytest.raises(ConfigError, match="log retention must be a positive number of days"):
        clean_logs(tmp_path, days)


def test_a_missing_folder_or_a_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist or is not a folder"):
        clean_logs(tmp_path / "nope", 30)
    with pytest.raises(ConfigError, match="is a filesystem root: refusing to clean it"):
        clean_logs(Path("/"), 30)


def test_running_task_matcher_reads_airflows_log_layout() -> None:
    match = running_task_matcher({("d", "manual__2026-01-05T00:00:00+00:00", "t")})
    assert match(Path("/l/dag_id=d/run_id=manual__2026-01-05T00:00:00+00:00/task_id=t/attempt=1.log"))
    assert not match(Path("/l/dag_id=d/run_id=manual__2026-01-05T00:00:00+00:00/task_id=u/attempt=1.log"))
    assert not match(Path("/l/dag_processor/2026-01-05/file.log"))

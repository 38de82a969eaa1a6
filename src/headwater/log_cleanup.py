"""Delete task logs past a retention, safely: never outside the log folder, never through a symlink,
never a running task's log, and with a dry run that lists exactly what a real run would delete.

The course's ``Cleanup_Log`` ran ``find ... -exec rm -rf`` on a path it built from a setting; here every
candidate is a regular file found by walking the folder without following links, and the folders left
empty are removed bottom-up, the log folder itself never.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from headwater.errors import ConfigError


@dataclass
class CleanupReport:
    """What a cleanup deleted (or, dry, would delete): files, bytes, and what it kept and why."""

    dry_run: bool
    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    kept_running: list[Path] = field(default_factory=list)
    skipped_links: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb} {len(self.files)} files ({self.bytes / 1e6:.1f} MB) and {len(self.folders)} empty folders; "
            f"kept {len(self.kept_running)} files of running tasks; skipped {len(self.skipped_links)} links"
        )


def clean_logs(
    folder: Path,
    retention_days: float,
    *,
    dry_run: bool = True,
    running: Callable[[Path], bool] = lambda path: False,
    now: float | None = None,
) -> CleanupReport:
    """Delete regular files under ``folder`` not modified for ``retention_days``; ``running(path)`` says
    whether a file belongs to a running task (kept whatever its age)."""
    if retention_days <= 0:
        raise ConfigError(f"log retention must be a positive number of days, not {retention_days!r}")
    root = folder.resolve()
    if not root.is_dir():
        raise ConfigError(f"log folder {folder} does not exist or is not a folder")
    if root == Path(root.anchor):
        raise ConfigError(f"log folder {folder} is a filesystem root: refusing to clean it")
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    report = CleanupReport(dry_run=dry_run)
    for path, info in _walk(root, report):
        if info.st_mtime >= cutoff:
            continue
        if running(path):
            report.kept_running.append(path)
            continue
        report.files.append(path)
        report.bytes += info.st_size
        if not dry_run:
            path.unlink(missing_ok=True)
    _remove_empty_folders(root, report)
    return report


def _walk(root: Path, report: CleanupReport) -> Iterator[tuple[Path, os.stat_result]]:
    """Regular files under ``root``; links (to files or folders) are reported and never followed."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in list(dirnames):
            if (here / name).is_symlink():
                report.skipped_links.append(here / name)
                dirnames.remove(name)
        for name in filenames:
            path = here / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                report.skipped_links.append(path)
            elif stat.S_ISREG(info.st_mode):
                yield path, info


def _remove_empty_folders(root: Path, report: CleanupReport) -> None:
    """Folders under ``root`` left with nothing (bottom-up); in a dry run, those that would be left empty."""
    deleted = set(report.files)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False, followlinks=False):
        here = Path(dirpath)
        if here == root or here.is_symlink():
            continue
        entries = [here / n for n in filenames + dirnames]
        if all(e in deleted or e in report.folders for e in entries):
            report.folders.append(here)
            if not report.dry_run:
                try:
                    here.rmdir()
                except OSError:  # something appeared meanwhile: keep the folder
                    report.folders.remove(here)


def running_task_matcher(running: set[tuple[str, str, str]]) -> Callable[[Path], bool]:
    """``running(path)`` for Airflow's log layout (``dag_id=D/run_id=R/task_id=T/attempt=N.log``): true for
    the logs of the (dag id, run id, task id) triples given (the task instances in state running)."""

    def matches(path: Path) -> bool:
        parts = {p.split("=", 1)[0]: p.split("=", 1)[1] for p in path.parts if "=" in p}
        return (parts.get("dag_id", ""), parts.get("run_id", ""), parts.get("task_id", "")) in running

    return matches

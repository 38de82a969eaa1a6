"""Local scratch folders (part files, copies of lake objects) owned by a live process, swept after a SIGKILL.

Each folder holds an ``.owner`` file locked with ``flock`` for as long as its process runs. The kernel
drops the lock when the process dies, however it dies, so a later sweep can tell an abandoned folder from
one in use without trusting process ids.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

SCRATCH_PREFIX = "headwater-scratch-"
_OWNER = ".owner"
_UNLOCKED_GRACE_SECONDS = 600  # a folder seen between mkdtemp and its lock is left alone this long


@contextlib.contextmanager
def scratch_folder(root: Path | None = None) -> Iterator[Path]:
    """A private temporary folder, removed on exit; abandoned ones of dead processes are swept first."""
    sweep_abandoned(root)
    folder = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=root))
    owner = (folder / _OWNER).open("w")
    try:
        fcntl.flock(owner, fcntl.LOCK_EX)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        owner.close()


def sweep_abandoned(root: Path | None = None) -> int:
    """Remove scratch folders whose owning process is gone; returns how many went."""
    removed = 0
    for folder in Path(root or tempfile.gettempdir()).glob(SCRATCH_PREFIX + "*"):
        if not folder.is_dir() or folder.is_symlink():
            continue
        owner = folder / _OWNER
        try:
            if not owner.exists():
                if time.time() - folder.stat().st_mtime > _UNLOCKED_GRACE_SECONDS:
                    removed += _remove(folder)
                continue
            with owner.open("a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive
                removed += _remove(folder)
        except OSError:  # another sweeper got there first, or not ours to touch
            continue
    if removed:
        log.info("removed %d scratch folders that killed processes left behind", removed)
    return removed


def _remove(folder: Path) -> int:
    """Remove a folder as far as possible; 1 if it is gone, 0 if something in it could not be deleted."""
    shutil.rmtree(folder, ignore_errors=True)
    return 0 if folder.exists() else 1

"""SIGTERM as an exception, so long work cleans up when a supervisor stops it.

Airflow sends SIGTERM on a task timeout or when a run is marked failed (its task runner's own handler only
calls ``on_kill``); systemd, Kubernetes and ``timeout`` send it too. Python's default is to die on the spot,
leaving uploaded parts and scratch files behind.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


class Terminated(BaseException):
    """The process received SIGTERM; raised in the main thread like KeyboardInterrupt for SIGINT."""


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated in the main thread (after any handler already installed).

    Outside the main thread signals cannot be handled, and the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: Any = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(signum, frame)
        raise Terminated("stopped by SIGTERM")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def sigterm_deferred() -> Iterator[None]:
    """Within the block (cleanup), a SIGTERM is held back and raised as Terminated when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous: Any = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
    if received:
        raise Terminated("stopped by SIGTERM")

"""SIGTERM as an exception, so long work cleans up when a supervisor stops it.

Airflow sends SIGTERM on a task timeout or when a run is marked failed (its task runner's own handler only
calls ``on_kill``); systemd, Kubernetes and ``timeout`` send it too. Python's default is to die on the spot,
leaving uploaded parts and scratch files behind.
"""

from __future__ import annotations

import contextlib
import os
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

    def hold(signum: int, frame: FrameType | None) -> None:
        if _stop.signum is not None and _stop.repeat_forces_exit:  # already stopping: a second one means now
            force_exit(signum)
        received.append(signum)

    previous: Any = signal.signal(signal.SIGTERM, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
    if received:
        raise Terminated("stopped by SIGTERM")


# What a command does when asked to stop: the first SIGTERM or SIGINT raises (Terminated or
# KeyboardInterrupt) so cleanup runs; a second one exits at once. SIGUSR1 is SIGTERM relayed by the
# ``headwater run`` supervisor (Airflow's in-process task runner takes SIGTERM over while a task runs).
RELAYED_SIGTERM = signal.SIGUSR1


class _StopState:
    signum: int | None = None
    repeat_forces_exit: bool = True


_stop = _StopState()


def stop_signal() -> int | None:
    """The signal that asked this command to stop (SIGTERM or SIGINT), or None."""
    return _stop.signum


def exit_status(signum: int) -> int:
    """The shell's status for a command stopped by ``signum``: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum)


def force_exit(signum: int) -> None:
    """Exit now, without cleanup: the answer to a second signal."""
    first = _stop.signum or signum
    os.write(2, f"\n{signal.Signals(signum).name} again: stopping at once, without cleanup\n".encode())
    os._exit(exit_status(first))


def request_stop(signum: int) -> None:
    """Record the first stop request and raise it in the main thread; force the exit on the second."""
    if signum == RELAYED_SIGTERM:
        signum = signal.SIGTERM
    if _stop.signum is not None:
        if _stop.repeat_forces_exit:
            force_exit(signum)
        return  # a supervised worker: the same request by two routes; the supervisor acts on a second one
    _stop.signum = signum
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated("stopped by SIGTERM")


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    request_stop(signum)


@contextlib.contextmanager
def stop_on_signals(repeat_forces_exit: bool = True) -> Iterator[None]:
    """Within the block, SIGTERM, SIGINT (and the supervisor's relayed SIGTERM) stop the command cleanly
    the first time and, with ``repeat_forces_exit``, at once the second time."""
    _stop.repeat_forces_exit = repeat_forces_exit
    kinds = (signal.SIGTERM, signal.SIGINT, RELAYED_SIGTERM)
    previous = {kind: signal.signal(kind, _on_stop_signal) for kind in kinds}
    try:
        yield
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)

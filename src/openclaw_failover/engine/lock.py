"""One tick at a time (flock), and an overall deadline for a tick."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

LOCK_FILE = "ocf.lock"


class Busy(Exception):
    """Another ocf process holds the lock."""


class DeadlineExceeded(BaseException):
    """The tick ran past its deadline (a BaseException so no `except Exception` swallows it)."""


@contextlib.contextmanager
def exclusive(state_dir: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold an exclusive flock on ``state_dir/ocf.lock``; raise Busy if not had within ``wait``."""
    from openclaw_failover.local import safefs

    safefs.ensure_dir(state_dir)
    try:
        fd = safefs.open_fd(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT)  # no symlink followed
    except OSError as exc:
        problem = "a symlink" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        raise safefs.StateDirError(state_dir, f"cannot open {LOCK_FILE}: {problem}") from None
    try:
        end = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= end:
                    raise Busy("another check is running") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise DeadlineExceeded in the main thread after ``seconds`` (SIGALRM based)."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise DeadlineExceeded(f"tick exceeded its deadline of {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

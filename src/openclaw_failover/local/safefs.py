"""The state folder, opened as if someone else had prepared it for us.

``ocf check`` often runs as root or from cron, in a folder named by a config file.
Everything in that folder is opened without following symbolic links
(``O_NOFOLLOW``): a link planted there never makes ocf write, truncate or create a
file elsewhere.  The folder must be a real directory owned by the running user and
writable by nobody else (:func:`check_dir`, exit 2 otherwise); ocf creates it 0700
and its files 0600.  Reads are bounded, and a FIFO never blocks them.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from openclaw_failover.config.loader import ConfigError

NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
MAX_READ = 16 * 1024 * 1024  # bytes read of one small state file, at most


class StateDirError(ConfigError):
    """The state folder cannot be trusted or used: exit 2 with one line."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"state_dir {path}", [problem])


def check_dir(path: Path) -> None:
    """Refuse a state folder that is not a directory, not ours, or writable by others.

    A missing folder is fine (it is created on the first write, 0700)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateDirError(path, f"cannot use it: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise StateDirError(path, "is a symbolic link: name the real directory in state_dir")
    if not stat.S_ISDIR(st.st_mode):
        raise StateDirError(path, "is not a directory")
    uid = os.geteuid()
    if st.st_uid != uid:
        raise StateDirError(
            path, f"is owned by uid {st.st_uid}, not by this user (uid {uid}): refusing it"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StateDirError(
            path,
            f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}): chmod 700 it",
        )
    if uid != 0 and not os.access(path, os.W_OK | os.X_OK):
        raise StateDirError(path, "is not writable by this user")


def ensure_dir(path: Path) -> None:
    """Create the state folder (0700) if missing, check it, and tighten it to 0700."""
    check_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StateDirError(path, f"cannot create it: {exc.strerror or exc}") from None
    check_dir(path)
    with contextlib.suppress(OSError):
        if stat.S_IMODE(os.lstat(path).st_mode) != 0o700:
            os.chmod(path, 0o700, follow_symlinks=False)


def open_fd(path: Path, flags: int, mode: int = 0o600) -> int:
    """``os.open`` that never follows a symlink and only ever opens a regular file."""
    fd = os.open(path, flags | NOFOLLOW | os.O_NONBLOCK, mode)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: Path, limit: int = MAX_READ) -> bytes:
    """The file's first ``limit`` bytes; OSError when missing, a link or not a file."""
    with os.fdopen(open_fd(path, os.O_RDONLY), "rb") as fh:
        return fh.read(limit)


def append(path: Path, data: bytes) -> None:
    """Append ``data`` (one write), creating the file 0600."""
    fd = open_fd(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def touch(path: Path) -> None:
    """Create the file (0600) if missing; a symlink there is an error, not followed."""
    os.close(open_fd(path, os.O_WRONLY | os.O_CREAT))


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder (0600, O_EXCL), fsync, rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def lines_backwards(
    path: Path, limit: int, markers: tuple[bytes, ...] = (), *, chunk: int = 64 * 1024
) -> Iterator[bytes]:
    """The file's lines, last first, from at most its last ``limit`` bytes.

    With ``markers``, a chunk holding none of them is skipped unsplit (only lines
    holding one can be wanted; a line cut by a chunk edge is searched whole).
    Memory: at most ``limit`` bytes; a symlink or a non-file is an OSError.
    """
    with os.fdopen(open_fd(path, os.O_RDONLY), "rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        start = max(0, end - limit)
        pos, rest = end, b""
        while pos > start:
            size = min(chunk, pos - start)
            pos -= size
            fh.seek(pos)
            block = fh.read(size) + rest
            cut = block.find(b"\n")
            if cut < 0:  # one line longer than the chunk so far
                rest = block
                continue
            rest, body = block[:cut], block[cut + 1 :]  # rest: maybe a line's tail
            if markers and not any(m in body for m in markers):
                continue
            yield from (line for line in reversed(body.split(b"\n")) if line.strip())
        if start == 0 and rest.strip():
            yield rest

"""Recognise and stop a detached process by its pid file, whatever it renames itself to.

The real gateway (``openclaw gateway run``) renames its process to ``openclaw-gateway``,
so its command line no longer names the program that was started.  The pid file
therefore records the process's start time next to its pid (``/proc/<pid>/stat``
field 22 on Linux, ``ps -o lstart=`` elsewhere): a pid is the recorded process only
while both match, which no rename changes and a recycled pid does not repeat.
Stopping signals the whole process group (the detached start leads its own
session and group), so the gateway's worker processes go with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PROC = Path("/proc")


@dataclass(frozen=True)
class PidRecord:
    """One pid file: the pid and, when it was known, the process's start time."""

    pid: int
    start: str | None  # None: a pid file written before start times were recorded


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name: index 0 is field 3 (state)."""
    try:
        text = (PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (which nobody may ever reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat_fields(pid)
    return fields is None or fields[:1] not in (["Z"], ["X"])  # no /proc: trust kill(0)


def has_proc() -> bool:
    return (PROC / "self" / "stat").is_file()


def start_time(pid: int) -> str | None:
    """The start time of ``pid`` as an opaque token; None when it is gone or unknowable."""
    if has_proc():
        fields = _stat_fields(pid)
        return fields[19] if fields and len(fields) > 19 else None
    try:  # macOS and the BSDs: ps prints the start time to the second
        res = subprocess.run(  # nosec B607 - ps from PATH, as the system provides it
            ["ps", "-o", "lstart=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = " ".join(res.stdout.split())
    return text if res.returncode == 0 and text else None


def same_process(rec: PidRecord) -> bool | None:
    """True/False when the recorded start time can be compared; None when it cannot."""
    if rec.start is None:
        return None
    now = start_time(rec.pid)
    return None if now is None else now == rec.start


def leads_own_session(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid
    except OSError:
        return False


def read(path: Path) -> PidRecord | None:
    """The record in ``path``; None when missing or unreadable (first line: the pid)."""
    try:
        lines = path.read_text(encoding="ascii").split("\n")
    except (OSError, UnicodeDecodeError):
        return None
    first = lines[0].strip()
    if not first.isdigit() or int(first) <= 1:
        return None
    start = None
    for line in lines[1:]:
        key, _, value = line.strip().partition(" ")
        if key == "start" and value.strip():
            start = value.strip()
    return PidRecord(int(first), start)


def write(path: Path, pid: int) -> PidRecord:
    """Record ``pid`` and its start time atomically (temp file, fsync, rename)."""
    rec = PidRecord(pid, start_time(pid))
    text = f"{pid}\n" + (f"start {rec.start}\n" if rec.start else "")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rec


def group_alive(pgid: int) -> bool:
    """Any live (non-zombie) process left in group ``pgid``."""
    if not has_proc():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in "ZX":
            return True
    return False


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the group ``pid`` leads (the fallback has its own session), else only ``pid``:
    a foreign group, or our own, is never hit.  A group whose leader already exited is
    still signalled when it was the leader's (its members keep the leader's pid as pgid)."""
    with contextlib.suppress(ProcessLookupError):
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            pgid = pid if group_alive(pid) else -1
        try:
            if pgid == pid and pid != os.getpgrp():
                os.killpg(pid, sig)
            elif pgid != -1:
                os.kill(pid, sig)
        except PermissionError:
            log.warning("not allowed to signal process group %d", pid)

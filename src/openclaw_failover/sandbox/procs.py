"""Detached processes of the sandbox ("units"), each described by a directory.

A unit directory holds ``unit.json`` (the argv, the signal that stops it, the
OS user it runs as, its environment and working directory), ``pid`` while it
runs and ``log`` (its stdout and stderr, appended).  A unit is started in a
session of its own, so it outlives whoever started it (``ocf check`` running a
``start_command``, an SSH session) and a Ctrl-C on the terminal does not reach
it; whoever stops it finds it through the pid file.  The sandbox's root lists
its units in start order in ``units``, so :func:`stop_all` can stop everything
from another process (``python -m openclaw_failover.sandbox stop DIR``).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openclaw_failover.local import procid

LOOPBACK = "127.0.0.1"
UNIT_FILE = "unit.json"
UNITS_LIST = "units"
_children: dict[int, subprocess.Popen[bytes]] = {}  # started by this process: reaped here


class UnitError(RuntimeError):
    """A unit could not start, or did not become ready."""


@dataclass(frozen=True)
class UnitSpec:
    """How to run one unit."""

    argv: tuple[str, ...]
    stop_signal: str = "SIGTERM"
    user: str | None = None  # run as this OS user (only when we are root)
    env: Mapping[str, str] | None = None  # None: inherit ours
    cwd: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # free-form notes (ports...)

    def to_json(self) -> dict[str, Any]:
        return {
            "argv": list(self.argv),
            "stop_signal": self.stop_signal,
            "user": self.user,
            "env": dict(self.env) if self.env is not None else None,
            "cwd": self.cwd,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UnitSpec:
        return cls(
            argv=tuple(str(a) for a in data["argv"]),
            stop_signal=str(data.get("stop_signal") or "SIGTERM"),
            user=data.get("user"),
            env=data.get("env"),
            cwd=data.get("cwd"),
            extra=data.get("extra") or {},
        )


def pid_alive(pid: int) -> bool:
    """Exists and is not a zombie; reaps our own children."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    return procid.alive(pid)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc; empty without it)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def wait_until(done: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``done`` until it is true (True) or ``timeout`` seconds passed (False)."""
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= end:
            return False
        time.sleep(interval)
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def listening(port: int, host: str = LOOPBACK) -> bool:
    """Something accepts TCP connections on ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except OSError:
        return False
    return True


class Unit:
    """One detached process described by ``directory`` (see the module doc)."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)

    @classmethod
    def create(cls, directory: Path, spec: UnitSpec, *, root: Path | None = None) -> Unit:
        """Write ``unit.json`` (and list the unit in ``root/units``)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / UNIT_FILE).write_text(json.dumps(spec.to_json(), indent=1) + "\n")
        if root is not None:
            with (root / UNITS_LIST).open("a", encoding="utf-8") as fh:
                fh.write(f"{directory}\n")
        return cls(directory)

    @property
    def name(self) -> str:
        return f"{self.dir.parent.name}/{self.dir.name}"

    @property
    def pid_file(self) -> Path:
        return self.dir / "pid"

    @property
    def log_file(self) -> Path:
        return self.dir / "log"

    def spec(self) -> UnitSpec:
        return UnitSpec.from_json(json.loads((self.dir / UNIT_FILE).read_text()))

    def pid(self) -> int | None:
        """The recorded pid while that process runs."""
        try:
            text = self.pid_file.read_text().strip()
        except OSError:
            return None
        pid = int(text) if text.isdigit() else 0
        return pid if pid > 1 and pid_alive(pid) else None

    @property
    def running(self) -> bool:
        return self.pid() is not None

    def log(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> int:
        """Start the unit detached (no-op when it runs); its pid."""
        pid = self.pid()
        if pid is not None:
            return pid
        spec = self.spec()
        with self.log_file.open("ab") as log:
            try:
                proc = subprocess.Popen(
                    list(spec.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    cwd=spec.cwd,
                    env=dict(spec.env) if spec.env is not None else None,
                    **_as_user(spec.user),
                )
            except OSError as exc:
                raise UnitError(f"{self.name}: cannot run {spec.argv[0]}: {exc}") from None
        _children[proc.pid] = proc
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def stop(
        self, timeout: float = 10.0, *, kill: bool = False, signal_name: str | None = None
    ) -> bool:
        """Stop it (SIGKILL at once with ``kill``: a crash); True when it was running.

        ``signal_name`` replaces the unit's stop signal for this stop.
        Processes it left behind in other sessions (sshd's per-connection
        processes) are killed too, like a host going down; after ``kill`` none
        of them is left when this returns."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        if kill:  # frozen first: it starts no new child between the census and the kill
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
        below = descendants(pid)
        name = signal_name or self.spec().stop_signal
        sig = signal.SIGKILL if kill else signal.Signals[name]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if not wait_until(lambda: not pid_alive(pid), timeout):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid), 5.0)
        for child in below:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        if kill:
            wait_until(lambda: not any(pid_alive(child) for child in below), 5.0, 0.01)
        _children.pop(pid, None)
        self.pid_file.unlink(missing_ok=True)  # only now: an interrupted stop can be redone
        return True


def _as_user(name: str | None) -> dict[str, Any]:
    if name is None or os.geteuid() != 0:
        return {}
    user = pwd.getpwnam(name)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "umask": 0o077}


def units_of(root: Path) -> list[Unit]:
    """The units of the sandbox in ``root``, in start order."""
    try:
        lines = (root / UNITS_LIST).read_text().splitlines()
    except OSError:
        return []
    seen: list[Unit] = []
    for line in lines:
        if line.strip() and all(str(u.dir) != line.strip() for u in seen):
            seen.append(Unit(Path(line.strip())))
    return seen


def stop_all(root: Path, say: Callable[[str], None] | None = None) -> list[str]:
    """Stop every unit of ``root``, newest first; the names of those that ran."""
    stopped: list[str] = []
    for unit in reversed(units_of(root)):
        try:
            if unit.stop():
                stopped.append(unit.name)
                if say:
                    say(f"stopped {unit.name}")
        except (OSError, ValueError, KeyError) as exc:
            if say:
                say(f"could not stop {unit.name}: {exc}")
    return stopped


def _ancestors() -> set[int]:
    """This process and its parents (never swept)."""
    found, pid = {os.getpid()}, os.getppid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return found


def sweep(root: Path) -> list[int]:
    """SIGKILL every process whose command line names ``root`` (and what runs below it).

    The last resort after :func:`stop_all`: a unit whose pid file was never
    written (an interrupted start) still has the sandbox's directory in its
    arguments; ``root`` is a fresh temporary directory, so nothing else does."""
    needle, spare = os.fsencode(str(root)), _ancestors()
    hits: list[int] = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        pid = int(cmdline.parent.name)
        with contextlib.suppress(OSError):
            if pid not in spare and needle in cmdline.read_bytes() and pid_alive(pid):
                hits.append(pid)
    below = [child for hit in hits for child in descendants(hit)]
    for victim in (*hits, *below):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not any(pid_alive(hit) for hit in hits), 5.0)
    for hit in hits:
        _children.pop(hit, None)
    return hits


def run_unit_command(verb: str, directories: Sequence[str]) -> int:
    """``unit start|stop|status DIR...`` (the sandbox's start/stop commands): exit code."""
    code = 0
    for directory in directories:
        unit = Unit(Path(directory))
        if verb == "start":
            unit.start()
        elif verb == "stop":
            unit.stop()
        elif not unit.running:
            code = 3  # like `systemctl is-active` for an inactive unit
    return code

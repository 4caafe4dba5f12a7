"""The real OpenClaw gateway (npm ``openclaw`` on Node 24), two instances at most.

The binaries come from ``python -m openclaw_failover.sandbox.realgw install`` (CI runs it;
``$OCF_REAL_DIR`` or ``~/.cache/ocf-real``).  Without them every test here skips with
that command as the reason (a failure in CI, where OCF_NO_SKIP=1).

The primary's gateway runs under a named profile (``openclaw --profile P``: state in
``~/.openclaw-P`` of the account that sshd logs into) because ``openclaw gateway stop``
refuses to act under any other HOME; the standby's gets a HOME of its own.  Both listen
on 127.0.0.1 only.  Each instance takes about 1 GB with its workers, so a test never runs
more than two, and everything started here is killed (by process group) at teardown.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from openclaw_failover.sandbox import realgw
from tests.harness.sshd import free_port, require_openssh

START_TIMEOUT = 120.0  # a loaded 2-core CI machine: health after ~8-16 s, ready after ~10-20 s


def http_status(port: int, path: str, timeout: float = 5.0) -> int | None:
    """The HTTP status of GET ``path`` on 127.0.0.1:``port``; None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def wait_until(pred: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> float:
    """Seconds until ``pred`` held; AssertionError naming ``what`` after ``timeout``."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - t0


def group_pids(pgid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text(errors="replace")
            except OSError:
                continue
            fields = text.rpartition(")")[2].split()
            if fields[2] == str(pgid) and fields[0] not in "ZX":
                out.append(int(entry.name))
    return out


def rss_mb(pgid: int) -> float:
    """Resident memory of a whole process group (the gateway and its workers), in MB."""
    total = 0
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    wait_until(lambda: not group_pids(pgid), f"process group {pgid} to end", 15)


@dataclass
class Gateway:
    """One real gateway's setup: port, token, where its state lives, how to start it."""

    install: realgw.Install
    port: int
    home: Path
    log: Path
    profile: str | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(16))

    def __post_init__(self) -> None:
        realgw.write_home(self.home, self.port, self.token, profile=self.profile)

    @property
    def state_dir(self) -> Path:
        return self.home / (f".openclaw-{self.profile}" if self.profile else ".openclaw")

    @property
    def pidfile(self) -> Path:
        return self.log.with_suffix(".pid")

    def cli(self, *args: str) -> list[str]:
        prof = ["--profile", self.profile] if self.profile else []
        return [str(self.install.bin), *prof, *args]

    def node_argv(self, *args: str) -> list[str]:
        """``node openclaw.mjs gateway run``: a command line the rename leaves nothing of."""
        prof = ["--profile", self.profile] if self.profile else []
        return [str(self.install.node), str(self.install.entry), *prof, *args]

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home)}

    def start_script(self) -> str:
        """The supervision recipe: detached (own session), own log, pid recorded."""
        run = shlex.join(self.cli("gateway", "run"))
        log, pid = shlex.quote(str(self.log)), shlex.quote(str(self.pidfile))
        return f"cd / && setsid {run} >> {log} 2>&1 < /dev/null & echo $! > {pid}"

    def start(self) -> int:
        subprocess.run(["sh", "-c", self.start_script()], env=self.env(), check=True, timeout=30)
        return self.pid()

    def pid(self) -> int:
        return int(self.pidfile.read_text().split()[0])

    def health(self) -> int | None:
        return http_status(self.port, "/healthz")

    def ready(self) -> int | None:
        return http_status(self.port, "/readyz")

    def wait_healthy(self) -> float:
        return wait_until(lambda: self.health() == 200, f"gateway :{self.port} /healthz")

    def wait_ready(self) -> float:
        return wait_until(lambda: self.ready() == 200, f"gateway :{self.port} /readyz")

    def listener_pgid(self) -> int | None:
        """The process group of whatever listens on this gateway's port."""
        inodes = set()
        with contextlib.suppress(OSError):
            for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
                cols = line.split()
                if cols[1] == f"0100007F:{self.port:04X}" and cols[3] == "0A":
                    inodes.add(f"socket:[{cols[9]}]")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or not inodes:
                continue
            with contextlib.suppress(OSError):
                for fd in (entry / "fd").iterdir():
                    if os.readlink(fd) in inodes:
                        return os.getpgid(int(entry.name))
        return None

    def kill_all(self, *more: int) -> None:
        pgids = set(more)
        with contextlib.suppress(OSError, ValueError):
            pgids.add(self.pid())
        listener = self.listener_pgid()
        if listener is not None:
            pgids.add(listener)
        for pgid in pgids - {os.getpgrp()}:
            kill_group(pgid)


@pytest.fixture(scope="session")
def openclaw() -> realgw.Install:
    found = realgw.find()
    if found is None:
        pytest.skip(realgw.MISSING)
    return found


@pytest.fixture
def gateways(openclaw: realgw.Install, tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Make gateways; at teardown kill every gateway process using their state."""
    made: list[Gateway] = []
    account_home = Path(pwd.getpwuid(os.getuid()).pw_dir)

    def make(name: str, *, profile: bool = False) -> Gateway:
        if profile:  # under the account's real home, a unique profile removed at teardown
            require_openssh()
            prof = f"ocf-real-{os.getpid()}-{secrets.token_hex(3)}"
            gw = Gateway(openclaw, free_port(), account_home, tmp_path / f"{name}.log", prof)
        else:
            home = tmp_path / f"{name}-home"
            gw = Gateway(openclaw, free_port(), home, tmp_path / f"{name}.log")
        made.append(gw)
        return gw

    try:
        yield make
    finally:
        for gw in made:
            gw.kill_all()
            if gw.profile:
                shutil.rmtree(gw.state_dir, ignore_errors=True)

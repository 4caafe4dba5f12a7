"""Start and stop the LOCAL OpenClaw gateway on the standby host.

``start_command`` (normally ``systemctl --user start ...``) runs through
:func:`runner.run` with the user-session variables cron lacks.  When it fails
and a ``fallback_start_command`` is configured, the fallback is started fully
detached (own session, output appended to ``state_dir/gateway.log``, pid in
``state_dir/gateway.pid`` with its start time) so it survives the short-lived cron
process; it is later recognised by that pid and start time (see :mod:`procid`), not by
its name, which the real gateway changes to ``openclaw-gateway``.  Only
the health URL decides success: a start is ok when the gateway answers, a stop
is ok when it no longer does.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.model import CommandResult
from openclaw_failover.local import httpcheck, procid, runner

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.5  # seconds between health checks while waiting
CHECK_TIMEOUT = 2.0  # seconds for one health request while waiting
KILL_GRACE = 5.0  # seconds to wait for a process group after SIGKILL
LOG_ROTATE_BYTES = 5 * 1024 * 1024  # gateway.log is moved to gateway.log.1 beyond this
EXIT_STATE_OWNED = 78  # `openclaw gateway run` when another gateway holds its state directory
PID_FILE = "gateway.pid"
LOG_FILE = "gateway.log"


@dataclass
class GatewayOutcome:
    """What a start or stop did: one human line per step, secrets masked."""

    ok: bool
    steps: list[str] = field(default_factory=list)
    method: str = ""  # start: "start_command" | "fallback" | "already running" | ""
    duration: float = 0.0


class LocalGateway:
    """Control the gateway on this (standby) host."""

    def __init__(
        self,
        cfg: Config,
        *,
        mask: Masker,
        env: Mapping[str, str],
        dry_run: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.gw = cfg.standby.gateway
        self.mask = mask
        # Always filled: `systemctl --user` under cron needs these; present values are kept.
        self.env = runner.user_session_env(env)
        self.dry_run = dry_run
        self.sleep = sleep
        self.clock = clock
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._log_offset = 0  # where this run's fallback output starts in gateway.log

    @property
    def pid_path(self) -> Path:
        return self.cfg.state_dir / PID_FILE

    @property
    def log_path(self) -> Path:
        return self.cfg.state_dir / LOG_FILE

    def is_up(self, timeout: float = CHECK_TIMEOUT) -> bool:
        """True when the local health URL gives an HTTP answer below 500."""
        return httpcheck.answers(self.gw.health_url, timeout)

    # ------------------------------------------------------------------ start

    def start(self) -> GatewayOutcome:
        """Make the local gateway answer; ok only when it does."""
        t0 = self.clock()
        out = GatewayOutcome(ok=False)
        if self.is_up():
            out.ok, out.method = True, "already running"
            out.steps.append(f"gateway already answering at {self.gw.health_url}")
        elif self.dry_run:
            out.ok, out.method = True, "start_command"
            out.steps.append(f"would run: {self._show(self.gw.start_command)}")
            if self.gw.fallback_start_command:
                fallback = self._show(self.gw.fallback_start_command)
                out.steps.append(f"would run (detached, if that fails): {fallback}")
        else:
            self._start(out, t0)
        out.duration = self.clock() - t0
        return out

    def _start(self, out: GatewayOutcome, t0: float) -> None:
        live = self._live_fallback_pid(out.steps) if self.gw.fallback_start_command else None
        if live is not None:
            # A fallback from an earlier start is still coming up: starting the
            # service as well could run two gateways.  Wait for it instead.
            out.method = "fallback"
            out.steps.append(f"fallback already running: pid {live}; not starting another")
            out.ok = self._await_up(out, t0, live)
            return
        res = self._run(self.gw.start_command)
        out.steps.append(f"start_command: {_describe(res)}")
        if res.ok:
            # No fallback after a "successful" start that never answers: a slow
            # service start plus a direct start could run two gateways at once.
            why = " (start_command succeeded; fallback not tried)"
            out.method = "start_command"
            out.ok = self._await_up(out, t0, None, why if self.gw.fallback_start_command else "")
            return
        if self.is_up(timeout=1.0):  # a timed-out start may have come up meanwhile
            out.ok, out.method = True, "start_command"
            out.steps.append("gateway answering despite the failed start_command")
            return
        if not self.gw.fallback_start_command:
            out.steps.append(f"start_command failed ({_describe(res)}), no fallback configured")
            return
        out.method = "fallback"
        pid = self._launch(self.gw.fallback_start_command, out.steps)
        if pid is not None:
            out.ok = self._await_up(out, t0, pid)

    def _launch(self, argv: Sequence[str], steps: list[str]) -> int | None:
        """Start ``argv`` fully detached; record its pid. None if it cannot start."""
        self._prepare_state_dir()
        shown = self._show(argv)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, f"# ocf {stamp}: fallback start: {shown}\n".encode())
            self._log_offset = os.lseek(fd, 0, os.SEEK_END)
            log.debug("starting detached (log %s): %s", self.log_path, shown)
            try:
                proc = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=fd,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    env=self.env,
                )
            except FileNotFoundError:
                steps.append(f"fallback start: command not found: {self.mask(argv[0])}")
                return None
            except OSError as exc:
                steps.append(self.mask(f"fallback start: cannot run: {exc.strerror or exc}"))
                return None
        finally:
            os.close(fd)
        self._children[proc.pid] = proc
        self._write_pid(proc.pid)
        steps.append(f"fallback start: pid {proc.pid}, log {_tilde(self.log_path)}")
        return proc.pid

    def _await_up(self, out: GatewayOutcome, t0: float, pid: int | None, why: str = "") -> bool:
        """Poll the health URL up to start_timeout; stop early if ``pid`` dies."""
        timeout = self.gw.start_timeout
        deadline = self.clock() + timeout
        while True:
            left = deadline - self.clock()
            if self.is_up(timeout=min(CHECK_TIMEOUT, max(left, 0.5))):
                out.steps.append(f"gateway answering after {self.clock() - t0:.1f}s")
                return True
            if pid is not None and not self._alive(pid):
                out.steps.append(self._exit_report(pid))
                self._remove_pid_file()
                return False
            left = deadline - self.clock()
            if left <= 0:
                out.steps.append(f"gateway not answering after {timeout:g}s{why}")
                return False
            self.sleep(min(POLL_INTERVAL, left))

    def _exit_report(self, pid: int) -> str:
        code = getattr(self._children.get(pid), "returncode", None)
        how = f" with code {code}" if code is not None else ""
        if code == EXIT_STATE_OWNED:
            how += " (another OpenClaw gateway already owns this state: stop it, or point it here)"
        last = self._last_log_line()
        return f"fallback pid {pid} exited early{how}" + (
            f"; last log line: {last}" if last else "; log is empty"
        )

    def _last_log_line(self) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(self._log_offset)
                data = fh.read()[-65536:]
        except OSError:
            return ""
        lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("# ocf ")]
        return self.mask(lines[-1])[:200] if lines else ""

    # ------------------------------------------------------------------ stop

    def stop(self) -> GatewayOutcome:
        """Stop the local gateway; ok only when the health URL no longer answers."""
        t0 = self.clock()
        out = GatewayOutcome(ok=False)
        if self.dry_run:
            out.ok = True
            out.steps.append(f"would run: {self._show(self.gw.stop_command)}")
            rec = procid.read(self.pid_path)
            if rec is not None and self._is_our_fallback(rec):
                pid = rec.pid
                out.steps.append(f"would stop fallback pid {pid} (SIGTERM to its process group)")
            out.duration = self.clock() - t0
            return out
        res = self._run(self.gw.stop_command)
        out.steps.append(f"stop_command: {_describe(res)}")
        if res.ok:
            out.method = "stop_command"
        if self._stop_fallback(out.steps):
            out.method = "fallback"
        out.ok = self._await_down(out.steps, t0)
        out.duration = self.clock() - t0
        return out

    def _stop_fallback(self, steps: list[str]) -> bool:
        """Terminate the recorded fallback's process group; True when one was running."""
        pid = self._live_fallback_pid(steps)
        if pid is None:
            return False
        procid.signal_group(pid, signal.SIGTERM)
        if self._wait(lambda: self._gone(pid), self.gw.stop_timeout):
            steps.append(f"fallback pid {pid} stopped (SIGTERM)")
        else:
            procid.signal_group(pid, signal.SIGKILL)
            gone = self._wait(lambda: self._gone(pid), KILL_GRACE)
            state = "killed" if gone else "still alive after SIGKILL"
            steps.append(
                f"fallback pid {pid} ignored SIGTERM for {self.gw.stop_timeout:g}s: {state}"
            )
        self._remove_pid_file()
        return True

    def _gone(self, pid: int) -> bool:
        """The fallback and every process of its group (the gateway's workers) ended."""
        return not self._alive(pid) and not procid.group_alive(pid)

    def _await_down(self, steps: list[str], t0: float) -> bool:
        timeout = self.gw.stop_timeout
        check = min(CHECK_TIMEOUT, max(timeout, 0.5))
        if self._wait(lambda: not self.is_up(timeout=check), timeout):
            steps.append(f"gateway not answering after {self.clock() - t0:.1f}s")
            return True
        steps.append(f"gateway still answering after {timeout:g}s")
        return False

    # ------------------------------------------------------------------ pid file

    def _live_fallback_pid(self, steps: list[str]) -> int | None:
        """The recorded fallback pid if that process still runs; stale files are removed."""
        if not self.pid_path.exists():
            return None
        rec = procid.read(self.pid_path)
        if rec is None:
            steps.append(f"removed unreadable pid file {_tilde(self.pid_path)}")
        elif not self._alive(rec.pid):
            steps.append(f"removed stale pid file: pid {rec.pid} is not running")
        elif not self._is_our_fallback(rec):
            steps.append(f"removed stale pid file: pid {rec.pid} is another program, not killed")
        else:
            return rec.pid
        self._remove_pid_file()
        return None

    def _write_pid(self, pid: int) -> None:
        procid.write(self.pid_path, pid)

    def _remove_pid_file(self) -> None:
        self.pid_path.unlink(missing_ok=True)

    def _is_our_fallback(self, rec: procid.PidRecord) -> bool:
        """Alive and the very process the fallback started: same pid and start time
        (a rename, like the real gateway's ``openclaw-gateway``, changes neither)."""
        if not self._alive(rec.pid) or not self.gw.fallback_start_command:
            return False
        if rec.pid in self._children:
            return True
        same = procid.same_process(rec)
        if same is not None:
            return same
        # A pid file without a start time (written by an older ocf), or no way to read it.
        if not procid.has_proc():
            return procid.leads_own_session(rec.pid)
        try:
            cmdline = Path(f"/proc/{rec.pid}/cmdline").read_bytes()
        except OSError:
            return False
        name = os.path.basename(self.gw.fallback_start_command[0])
        renamed = procid.leads_own_session(rec.pid) and cmdline.startswith(b"openclaw")
        return name.encode() in cmdline or renamed

    def _alive(self, pid: int) -> bool:
        """True while ``pid`` runs; reaps our own children, treats zombies as dead."""
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        return procid.alive(pid)

    # ------------------------------------------------------------------ helpers

    def _run(self, argv: Sequence[str]) -> CommandResult:
        return runner.run(
            argv,
            timeout=self.gw.command_timeout,
            mask=self.mask,
            env=self.env,
            dry_run=self.dry_run,
        )

    def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Poll ``done`` every POLL_INTERVAL up to ``timeout`` seconds."""
        deadline = self.clock() + timeout
        while True:
            if done():
                return True
            left = deadline - self.clock()
            if left <= 0:
                return False
            self.sleep(min(POLL_INTERVAL, left))

    def _show(self, argv: Sequence[str]) -> str:
        return self.mask(shlex.join(argv))

    def _prepare_state_dir(self) -> None:
        """Create the state dir (0700) and rotate a large gateway.log."""
        self.cfg.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(self.log_path, self.log_path.with_name(LOG_FILE + ".1"))
        except OSError:
            pass


def _describe(res: CommandResult) -> str:
    """``exit 1: Failed to connect to bus`` / ``ok`` / ``timed out after 30s``."""
    if res.dry_run:
        return "not run (dry run)"
    if res.error:
        return res.error
    if res.timed_out:
        return f"timed out after {res.duration:.1f}s"
    if res.returncode == 0:
        return "ok"
    tail = (res.stderr.strip() or res.stdout.strip()).splitlines()
    return f"exit {res.returncode}" + (f": {tail[-1][:200]}" if tail else "")


def _tilde(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home) :] if home != "/" and text.startswith(home + "/") else text

"""`ocf doctor`: check the whole setup, one line per check, with the fix for each problem.

Checks run in groups, in this order: config, ssh, gateway (local), database,
rsync, telegram, schedule, monitoring.  Every check has a stable ``id``
(``GROUP.CHECK``, e.g. ``schedule.check_schedule``) in ``--json``.  The groups run at the same time, each in a thread
of its own with a time budget (and every operation inside has its own
timeout); a group that crashes or overruns its budget becomes one FAIL line
and never stops the others.  The report keeps the order above whatever
finishes first.

Every text goes through one masker (the config's secrets, also URL-encoded)
before it is stored, so neither ``render()`` nor ``to_json()`` can show a
token or a password.  Nothing here changes anything, except ``--send-test``,
which sends one Telegram message.

The groups live in doctor_ssh (ssh, rsync), doctor_local (gateway,
schedule), doctor_db (database, from replstatus's facts) and doctor_telegram
(telegram); they are imported when the doctor runs.  replstatus also gives
`ocf status` its :func:`replication_health`.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from openclaw_failover import notify
from openclaw_failover.config import Config
from openclaw_failover.runner import Masker
from openclaw_failover.state import Role, State, StateStore

if TYPE_CHECKING:
    from openclaw_failover.doctor_ssh import RemoteFacts

log = logging.getLogger(__name__)

Status = Literal["ok", "warn", "FAIL", "skip"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "FAIL", "skip")
SERVING = frozenset({Role.TAKING_OVER, Role.FAILOVER, Role.GIVING_BACK})
BUG_FIX = "a bug in ocf: please report it with the output of `ocf -vv doctor`"


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Check:
    """One line of the report.  ``fix`` is the command or change that repairs a problem."""

    name: str  # the group: config | ssh | gateway | database | rsync | telegram | schedule
    status: Status
    detail: str
    fix: str = ""
    id: str = ""  # stable: GROUP.CHECK (the function that ran it), #2, #3 for repeats

    def line(self) -> str:
        """``ok    ssh: ...`` / ``FAIL  database: ... — fix: ...``."""
        text = f"{self.status:<6}{self.name}: {self.detail}"
        if self.fix and self.status != "ok":
            text += f" \u2014 fix: {self.fix}"
        return text


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed (warnings and skips are fine)."""
        return not any(c.status == "FAIL" for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for c in self.checks if c.status == s) for s in STATUSES}

    def summary(self) -> str:
        """``2 FAIL, 1 warn, 17 ok, 3 skipped``: one line to print after ``render()``."""
        n = self.counts()
        parts = [f"{n['FAIL']} FAIL"] if n["FAIL"] else []
        parts += [f"{n['warn']} warn"] if n["warn"] else []
        parts += [f"{n['ok']} ok"]
        parts += [f"{n['skip']} skipped"] if n["skip"] else []
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts(),
            "checks": [asdict(c) for c in self.checks],
        }

    def render(self) -> str:
        """One line per check."""
        return "\n".join(c.line() for c in self.checks)


class Sink:
    """Collects one group's checks, masked; ignores what arrives after :meth:`close`.

    A group that overran its budget may still be running in its thread: what it
    adds later must not change a report that was already handed out.
    """

    def __init__(self, name: str, mask: Masker) -> None:
        self.name = name
        self.mask = mask
        self._checks: list[Check] = []
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False

    def add(self, status: Status, detail: str, fix: str = "", *, id: str | None = None) -> None:
        """``id``: the check's name; by default the function that called ok/warn/fail/skip."""
        name = f"{self.name}.{id or _caller()}"
        with self._lock:
            seen = self._ids.get(name, 0) + 1
            self._ids[name] = seen
            check = Check(
                self.name,
                status,
                _one_line(self.mask(detail)),
                _one_line(self.mask(fix)),
                name if seen == 1 else f"{name}#{seen}",
            )
            if not self._closed:
                self._checks.append(check)

    def ok(self, detail: str, *, id: str | None = None) -> None:
        self.add("ok", detail, id=id)

    def warn(self, detail: str, fix: str, *, id: str | None = None) -> None:
        self.add("warn", detail, fix, id=id)

    def fail(self, detail: str, fix: str, *, id: str | None = None) -> None:
        self.add("FAIL", detail, fix, id=id)

    def skip(self, detail: str, fix: str = "", *, id: str | None = None) -> None:
        self.add("skip", detail, fix, id=id)

    def close(self) -> list[Check]:
        with self._lock:
            self._closed = True
            return list(self._checks)


def _caller() -> str:
    """The name of the first function outside Sink on the stack: the check's id."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_name in _SINK_METHODS:
        frame = frame.f_back  # type: ignore[assignment]
    return frame.f_code.co_name.lstrip("_") if frame is not None else "check"


_SINK_METHODS = frozenset({"add", "ok", "warn", "fail", "skip"})


def _one_line(text: str) -> str:
    """Several lines (libpq's messages) become one, joined with "; "."""
    lines = (" ".join(line.split()) for line in str(text).splitlines())
    return "; ".join(line for line in lines if line)


# --------------------------------------------------------------------------- context


@dataclass
class DoctorContext:
    """What every group may read; ``remote`` is filled by the ssh group for the rsync group."""

    cfg: Config
    env: Mapping[str, str]
    config_path: Path
    send_test: bool
    now: float
    mask: Masker
    state: State | None
    state_warning: str | None
    remote: RemoteFacts | None = None
    ssh_done: threading.Event = field(default_factory=threading.Event)

    @property
    def serving(self) -> bool:
        """The state file says this standby serves (or is switching): some checks expect that."""
        return self.state is not None and self.state.role in SERVING

    @property
    def path(self) -> str:
        """The PATH commands are looked up in: the environment ocf runs them with."""
        return self.env.get("PATH") or os.defpath


GroupFn = Callable[[DoctorContext, Sink], None]


def run_doctor(
    cfg: Config,
    *,
    env: Mapping[str, str],
    config_path: Path,
    send_test: bool = False,
    now: float | None = None,
) -> DoctorReport:
    """Run every check; never raises for a failed check (each becomes a line)."""
    state, warning = StateStore(cfg.state_dir).load()
    ctx = DoctorContext(
        cfg=cfg,
        env=env,
        config_path=config_path,
        send_test=send_test,
        now=time.time() if now is None else now,
        mask=notify.masker(cfg),
        state=state,
        state_warning=warning,
    )
    started = []
    for name, fn, budget in groups(ctx):
        sink = Sink(name, ctx.mask)
        thread = threading.Thread(
            target=_guarded, args=(fn, ctx, sink), name=f"ocf-doctor-{name}", daemon=True
        )
        thread.start()
        started.append((sink, thread, time.monotonic() + budget, budget))
    report = DoctorReport()
    for sink, thread, ends_at, budget in started:
        thread.join(max(ends_at - time.monotonic(), 0.0))
        if thread.is_alive():
            sink.add(
                "FAIL",
                f"checks did not finish within {budget:g}s (something hangs)",
                "run `ocf -vv doctor` to see where it stops; " + BUG_FIX,
                id="timeout",
            )
        report.checks += sink.close()
    return report


def _guarded(fn: GroupFn, ctx: DoctorContext, sink: Sink) -> None:
    try:
        fn(ctx, sink)
    except Exception as exc:
        log.debug("doctor check %s crashed", sink.name, exc_info=True)
        sink.add("FAIL", f"check crashed: {type(exc).__name__}: {exc}", BUG_FIX, id="crashed")


def groups(ctx: DoctorContext) -> list[tuple[str, GroupFn, float]]:
    """(name, function, seconds it may take), in report order."""
    from openclaw_failover import (
        doctor_db,
        doctor_local,
        doctor_monitoring,
        doctor_ssh,
        doctor_telegram,
        doctor_version,
        witness,
    )

    cfg = ctx.cfg
    ssh_budget = doctor_ssh.budget(cfg)
    db_budget = 4 * cfg.database.connect_timeout + 25 if cfg.database else 5.0
    tg_budget = 4 * cfg.telegram.timeout + 5 if cfg.telegram else 5.0
    return [
        ("config", check_config, 5.0),
        ("ssh", doctor_ssh.check_ssh, ssh_budget),
        ("gateway", doctor_local.check_gateway, 3 * doctor_local.LOCAL_TIMEOUT + 2),
        ("openclaw", doctor_version.check_versions, doctor_version.budget(ctx)),
        ("database", doctor_db.check_database, db_budget),
        ("rsync", doctor_ssh.check_rsync, ssh_budget + 5),
        ("telegram", doctor_telegram.check_telegram, tg_budget),
        ("schedule", doctor_local.check_schedule, 4 * doctor_local.LOCAL_TIMEOUT + 2),
        ("witnesses", witness.doctor_witnesses, cfg.check.witness_timeout + 3),
        ("monitoring", doctor_monitoring.check_monitoring, cfg.monitoring.ping_timeout + 5),
        *_coordination(ctx),
    ]


def _coordination(ctx: DoctorContext) -> list[tuple[str, GroupFn, float]]:
    """The etcd checks, only with a coordination: section (the import only then)."""
    if ctx.cfg.coordination is None:
        return []
    from openclaw_failover.coord import doctor as coord_doctor

    return [("coordination", coord_doctor.check_coordination, coord_doctor.budget(ctx))]


def replication_health(cfg: Config, timeout: float = 3.0) -> dict[str, Any]:
    """For `ocf status`: see :func:`openclaw_failover.replstatus.replication_health`."""
    from openclaw_failover.replstatus import replication_health as health

    return health(cfg, timeout=timeout)


# --------------------------------------------------------------------------- config


def check_config(ctx: DoctorContext, out: Sink) -> None:
    """The config loaded (it did, or we would not be here); secret files are private."""
    cfg = ctx.cfg
    out.ok(f"config valid: {ctx.config_path}")
    secret_file(out, ctx.config_path, cfg.secrets, "config file")
    env_file = ctx.config_path.parent / "env"
    if env_file.is_file():
        secret_file(out, env_file, cfg.secrets, "env file")
    key_file(out, cfg.primary.ssh.key_file, needed_by_openssh=bool(cfg.files))


def secret_file(out: Sink, path: Path, secrets: tuple[str, ...], what: str) -> None:
    """Warn when ``path`` holds one of ``secrets`` and group/others may read it."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        out.warn(f"cannot read {what} {path}: {exc.strerror or exc}", f"check {path}")
        return
    holds = any(s and s in text for s in secrets)
    if mode & 0o022:
        out.warn(
            f"{what} {path} is writable by group/others (mode {mode:04o}): "
            "whoever can write it chooses the commands ocf runs",
            f"chmod go-w {path}",
        )
    if holds and mode & 0o044:
        out.warn(
            f"{what} {path} holds a secret and is readable by group/others (mode {mode:04o})",
            f"chmod 600 {path}",
        )
    elif holds:
        out.ok(f"{what} {path} holds a secret and is private (mode {mode:04o})")


def key_file(out: Sink, path: Path, *, needed_by_openssh: bool) -> None:
    """The SSH private key must not be readable by others (OpenSSH, used by rsync, refuses it)."""
    try:
        st = path.stat()
    except OSError as exc:
        out.fail(
            f"SSH key {path}: {exc.strerror or exc}",
            "fix primary.ssh.key_file (see the ssh checks)",
        )
        return
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o077:
        out.ok(f"SSH key {path} is private (mode {mode:04o})")
        return
    text = f"SSH private key {path} is open to group/others (mode {mode:04o})"
    if needed_by_openssh and st.st_uid == os.getuid():
        out.fail(text + ": OpenSSH refuses it, so rsync of files: fails", f"chmod 600 {path}")
    else:
        out.warn(text, f"chmod 600 {path}")

"""What every doctor check shares: the report lines (Check, DoctorReport), the Sink a
group writes into (masking every text before it is stored), the DoctorContext, and the
config group with its file-mode helpers.  The check modules import this; nothing here
imports them.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker, joined_lines
from openclaw_failover.core.state import Role, State

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
                joined_lines(self.mask(detail)),
                joined_lines(self.mask(fix)),
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


# --------------------------------------------------------------------------- context


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class Lookup:
    """``command -v PROG`` on the primary: ``path`` when found, ``error`` when it could not tell."""

    path: str | None = None
    error: str = ""


@dataclass
class RemoteFacts:
    tools: dict[str, Lookup] = field(default_factory=dict)
    sftp_error: str | None = None  # None: SFTP works (or files: is not configured)


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

"""`ocf doctor`: the gateway (local) and schedule groups.

The gateway group looks up the local start/stop commands in the PATH ocf runs
them with, and, when ``start_command`` is ``systemctl --user ...``, asks the
user manager something harmless (``systemctl --user show-environment``) from
an environment stripped like cron's: the original scripts' pitfall was a
``systemctl --user`` that worked from a login shell and failed from cron.

The schedule group looks for ``ocf check`` in the cron tables and for the
systemd user timer, and at how long ago the last check ran.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from openclaw_failover.config.schema import Command
from openclaw_failover.core.model import CommandResult
from openclaw_failover.local import runner
from openclaw_failover.ops.doctor.base import DoctorContext, Sink

LOCAL_TIMEOUT = 5.0  # seconds for one local command (systemctl, crontab)
CRON_PATH = "/usr/bin:/bin"  # cron's PATH when the crontab sets none
CRON_FILES: tuple[str, ...] = ("/etc/crontab", "/etc/cron.d/*")  # globs
TIMER = "openclaw-failover.timer"
WATCH = "openclaw-failover-watch.service"  # `ocf install systemd --watch`
OCF_CHECK = re.compile(r"(?:\bocf|\bopenclaw_failover)\b[^#\n]*\bcheck\b")
_SCHEDULE_FIX = (
    "ocf install cron (as root: /etc/cron.d/openclaw-failover; else your crontab), or "
    "ocf install systemd (a user timer); by hand: deploy/cron/, deploy/systemd/"
)
_TICK_FIX = (
    "run `ocf check -v` by hand, then see why the schedule does not: "
    "grep CRON /var/log/syslog, or journalctl --user -u openclaw-failover"
)


# --------------------------------------------------------------------------- gateway


def check_gateway(ctx: DoctorContext, out: Sink) -> None:
    gw = ctx.cfg.standby.gateway
    path = runner.user_session_env(ctx.env).get("PATH") or os.defpath
    commands = (
        ("start_command", gw.start_command),
        ("stop_command", gw.stop_command),
        ("fallback_start_command", gw.fallback_start_command),
    )
    for key, command in commands:
        if not command:
            continue
        found = shutil.which(command[0], path=path)
        if found:
            where = "exists" if found == command[0] else f"resolves to {found}"
            out.ok(f"standby.gateway.{key}: {command[0]} {where}", id=key)
        else:
            out.fail(
                f"standby.gateway.{key}: {command[0]} not found (PATH={path})",
                f"install it, or give its full path in standby.gateway.{key}",
                id=key,
            )
    systemctl_user(ctx, out, gw.start_command, path)


def cron_env(env: Mapping[str, str], uid: int | None = None) -> dict[str, str]:
    """What cron gives a job (HOME, LOGNAME, PATH, SHELL), plus what ocf fills in itself."""
    uid = os.getuid() if uid is None else uid
    try:
        user = pwd.getpwuid(uid)
        home, name = user.pw_dir, user.pw_name
    except KeyError:
        home, name = env.get("HOME", "/"), env.get("LOGNAME") or env.get("USER", str(uid))
    bare = {"HOME": home, "LOGNAME": name, "PATH": CRON_PATH, "SHELL": "/bin/sh"}
    return runner.user_session_env(bare, uid)


def _is_systemctl(command: Command) -> bool:
    return bool(command) and os.path.basename(command[0]) == "systemctl"


def systemctl_user(ctx: DoctorContext, out: Sink, command: Command, path: str) -> None:
    """Can `systemctl --user` reach the user manager from cron?  Fails without linger."""
    if not _is_systemctl(command):
        out.skip("start_command is not systemctl: no user manager to reach")
        return
    if "--user" not in command[1:]:
        out.skip("start_command uses the system manager (systemctl without --user)")
        return
    program = shutil.which(command[0], path=path)
    if program is None:
        out.skip("systemctl --user not checked: systemctl is not found (see above)")
        return
    env = cron_env(ctx.env)
    argv = [program, "--user", "show-environment"]
    res = runner.run(argv, timeout=LOCAL_TIMEOUT, mask=ctx.mask, env=env)
    runtime = env["XDG_RUNTIME_DIR"]
    if res.ok:
        out.ok(
            "systemctl --user reaches the user manager from a cron-like environment "
            f"(XDG_RUNTIME_DIR={runtime}, filled in by ocf)"
        )
        return
    here = runner.run(
        argv, timeout=LOCAL_TIMEOUT, mask=ctx.mask, env=runner.user_session_env(ctx.env)
    )
    also = "; it works from this shell's environment, not from cron's" if here.ok else ""
    out.fail(
        "systemctl --user cannot reach the user manager from a cron-like environment "
        f"({res.summary()}){also}",
        f"loginctl enable-linger {env['LOGNAME']} (keeps the user manager and {runtime}/bus up "
        "without a login), or set XDG_RUNTIME_DIR to the user's runtime directory in the cron file",
    )


# --------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class Timer:
    enabled: str  # `systemctl --user is-enabled`: enabled, disabled, ... ("" unknown)
    active: str  # `systemctl --user is-active`: active, inactive, ...

    @property
    def installed(self) -> bool:
        return self.enabled not in ("", "not-found")


def check_schedule(ctx: DoctorContext, out: Sink) -> None:
    if (user_unit_dir(ctx.env) / WATCH).is_file():
        watch = systemd_timer(ctx, WATCH)
        if watch is not None and watch.enabled.startswith("enabled") and watch.active == "active":
            out.ok(f"systemd user service {WATCH} (ocf watch) is enabled and active")
            last_tick(ctx, out)
            return
        state = f"{watch.enabled}, {watch.active}" if watch else "unknown to systemctl --user"
        out.warn(f"{WATCH} is installed but {state}", f"systemctl --user enable --now {WATCH}")
    entries = cron_entries(ctx)
    timer = systemd_timer(ctx)
    enabled = timer is not None and timer.enabled.startswith("enabled")
    if entries and enabled:
        out.warn(
            f"both cron ({', '.join(entries)}) and {TIMER} run ocf check",
            f"keep one: remove the cron entry, or systemctl --user disable --now {TIMER}",
        )
    elif entries:
        out.ok(f"cron runs ocf check: {', '.join(entries)}")
    elif timer is not None and enabled and timer.active == "active":
        out.ok(f"systemd user timer {TIMER} is enabled and active")
    elif timer is not None and enabled:
        out.warn(
            f"systemd user timer {TIMER} is enabled but {timer.active or 'not active'}",
            f"systemctl --user start {TIMER}",
        )
    elif timer is not None and timer.installed:
        out.fail(
            f"systemd user timer {TIMER} is {timer.enabled}, and no cron entry runs ocf check",
            f"systemctl --user enable --now {TIMER}",
        )
    elif timer is None and (unit := user_unit_dir(ctx.env) / TIMER).is_file():
        out.fail(
            f"{unit} exists, but systemctl --user cannot reach the user manager to run it",
            f"loginctl enable-linger {cron_env(ctx.env)['LOGNAME']}, "
            f"then systemctl --user enable --now {TIMER}",
        )
    elif ctx.state is None or ctx.state.last_tick_at is None:
        # A fresh setup (no check has ever run): the schedule is step 6, after the doctor.
        out.warn("not installed yet (step 6)", _SCHEDULE_FIX)
        out.skip("no check has run yet: the schedule is not installed yet", id="last_tick")
        return
    else:
        where = " or ".join(CRON_FILES)
        out.fail(f"no schedule: no 'ocf check' in {where} or crontab -l, no {TIMER}", _SCHEDULE_FIX)
    last_tick(ctx, out)


def user_unit_dir(env: Mapping[str, str]) -> Path:
    """Where the user's own systemd units live (``~/.config/systemd/user``)."""
    config = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(config) / "systemd" / "user"


def cron_entries(ctx: DoctorContext) -> list[str]:
    """Where a cron table runs ``ocf check``: file paths, and ``crontab -l``."""
    found = []
    for pattern in CRON_FILES:
        for name in sorted(glob.glob(pattern)):
            try:
                text = Path(name).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if _runs_ocf_check(text):
                found.append(name)
    res = runner.run(["crontab", "-l"], timeout=LOCAL_TIMEOUT, mask=ctx.mask, env=ctx.env)
    if res.returncode == 0 and _runs_ocf_check(res.stdout):
        found.append("crontab -l")
    return found


def _runs_ocf_check(text: str) -> bool:
    lines = (ln.strip() for ln in text.splitlines())
    return any(OCF_CHECK.search(ln) for ln in lines if ln and not ln.startswith("#"))


def systemd_timer(ctx: DoctorContext, unit: str = TIMER) -> Timer | None:
    """The timer's (or ``unit``'s) state, or None when systemctl is missing or the user
    manager is unreachable."""
    env = runner.user_session_env(ctx.env)
    program = shutil.which("systemctl", path=env.get("PATH") or os.defpath)
    if program is None:
        return None
    enabled = _first_word(_systemctl(ctx, env, program, "is-enabled", unit))
    if enabled is None:
        return None
    active = _first_word(_systemctl(ctx, env, program, "is-active", unit)) or ""
    return Timer(enabled, active)


def _systemctl(
    ctx: DoctorContext, env: dict[str, str], program: str, verb: str, unit: str = TIMER
) -> CommandResult:
    argv = [program, "--user", verb, unit]
    return runner.run(argv, timeout=LOCAL_TIMEOUT, mask=ctx.mask, env=env)


def _first_word(res: CommandResult) -> str | None:
    """``enabled`` / ``inactive`` ...; None when systemctl could not answer at all."""
    words = res.stdout.split()
    if res.error or res.timed_out or not words:
        return None
    return words[0]


def last_tick(ctx: DoctorContext, out: Sink) -> None:
    """warn beyond 3 intervals, FAIL beyond 10 or when no check ever ran."""
    interval = ctx.cfg.check.interval
    last = ctx.state.last_tick_at if ctx.state else None
    if last is None:
        why = ctx.state_warning or f"state file {ctx.cfg.state_dir / 'state.json'} has none"
        out.fail(f"no check has run yet ({why})", _TICK_FIX)
        return
    age = max(ctx.now - last, 0.0)
    text = f"last check {_ago(age)} ago (check.interval {interval:g}s)"
    if age > 10 * interval:
        out.fail(text + ": more than 10 intervals", _TICK_FIX)
    elif age > 3 * interval:
        out.warn(text + ": more than 3 intervals", _TICK_FIX)
    else:
        out.ok(text)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"

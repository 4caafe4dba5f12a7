"""What `ocf install` writes: the systemd units, the cron.d file and the crontab block
(and the warnings about a schedule that will not run as the config expects).

Pure text from a :class:`Target` (every path absolute); :mod:`install` works the target
out from the validated config and writes these.  The shipped samples in ``deploy/`` are
these texts for a user ``pi`` (a test checks they match).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openclaw_failover.core.model import CommandResult
from openclaw_failover.ops.installguard import SYSTEM_PATH, InstallError

Say = Callable[[str], None]
Run = Callable[..., CommandResult]

NAME = "openclaw-failover"
BEGIN = f"# BEGIN {NAME} (written by `ocf install cron`; edit with it, or delete the block)"
END = f"# END {NAME}"
CRON_INTERVAL = 120.0  # when the config does not set check.interval
TIMER_INTERVAL = 30.0


@dataclass
class Target:
    """Who runs the checks, and every path the schedule needs (all absolute)."""

    user: str
    home: Path
    command: tuple[str, ...]  # the `ocf` executable, or python -m openclaw_failover
    config: Path
    env_file: Path
    state_dir: Path
    interval: float
    interval_set: bool  # check.interval is in the config
    deadline: float
    ping_timeout: float | None  # None: no ping_url
    writable: list[Path] = field(default_factory=list)  # besides state_dir
    warnings: list[str] = field(default_factory=list)


def schedule_seconds(interval: float) -> int:
    return max(1, round(interval))


def timeout_start(interval: float) -> int:
    """TimeoutStartSec: below the interval, so a stuck check never overlaps the next."""
    seconds = schedule_seconds(interval)
    return max(1, seconds - 2) if seconds <= 60 else seconds - 5


def service_unit(
    *,
    exec_start: str,
    env_file: str,
    state_dir: str,
    writable: Sequence[str],
    timeout: int,
    mkdir_dir: str | None = None,
    gateway_dir: str = "-%h/.openclaw",
) -> str:
    """The user service; arguments already in unit-file syntax (``%h`` or escaped paths)."""
    extra = "".join(f"ReadWritePaths=-{w}\n" for w in writable)  # "-": may be missing
    return f"""\
# openclaw-failover: one `ocf check` (a single tick), started by openclaw-failover.timer.
# A user unit: install it as the user who owns the standby gateway, not as root.
#   ocf install systemd            # writes both units with this user's paths, then
#                                  # daemon-reload and enable --now (--dry-run: show only)
# or by hand:
#   cp openclaw-failover.service openclaw-failover.timer ~/.config/systemd/user/
#   systemctl --user daemon-reload
#   systemctl --user enable --now openclaw-failover.timer
#   loginctl enable-linger "$USER"   # keep the user manager running without a login
[Unit]
Description=openclaw-failover: one check of the primary OpenClaw gateway
After=network-online.target

[Service]
Type=oneshot
# The bot token and other secrets: KEY=value lines, chmod 600 ("-": may be missing).
EnvironmentFile={env_file}
# The sandbox below needs the state directory to exist ("+": runs unsandboxed).
ExecStartPre=+/bin/mkdir -p {mkdir_dir or state_dir}
ExecStart={exec_start}
# Below the timer's interval. Keep check.deadline (plus monitoring.ping_timeout when
# a ping_url is set) below this, e.g. deadline 20 with a 30 s timer: a tick then ends
# itself cleanly, and a takeover cut short is resumed by the next tick.
TimeoutStartSec={timeout}s
# The fallback gateway (fallback_start_command) is started detached and must outlive
# this oneshot: with the default KillMode=control-group systemd would kill it as soon
# as `ocf check` exits.
KillMode=process
# Hardening. `systemctl --user` (a unix socket), SSH, rsync, PostgreSQL and Telegram
# keep working. A fallback gateway started from here inherits this sandbox (read-only
# outside the ReadWritePaths, a private /tmp): hence its data directory below.
# Files in the state directory are created 0600 (ocf's own are, whatever the umask).
UMask=0077
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ReadWritePaths={state_dir}
ReadWritePaths={gateway_dir}
# With metrics.textfile set, its directory too (`ocf install systemd` adds it), e.g.
# ReadWritePaths=-/var/lib/node_exporter/textfile   ("-": the unit starts without it)
{extra}RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
"""


def timer_unit(interval: int) -> str:
    return f"""\
# Runs openclaw-failover.service (one `ocf check`) every {interval} s.
# Set check.interval: {interval} in the config, so `ocf status` knows when the next
# check is due.
[Unit]
Description=Run openclaw-failover every {interval} seconds

[Timer]
# The first check soon after boot, or after `systemctl --user enable --now`; then
# {interval} s after the previous one started.
OnBootSec=30s
OnActiveSec=10s
OnUnitActiveSec={interval}s
AccuracySec=1s

[Install]
WantedBy=timers.target
"""


def cron_line(target: Target, *, with_user: bool) -> str:
    """One crontab line: flock -n, the env file, `ocf check`, output appended to cron.log."""
    lock = target.state_dir / "cron.lock"
    log = target.state_dir / "cron.log"
    env = shlex.quote(str(target.env_file))
    check = shlex.join([*target.command, "--config", str(target.config), "check"])
    path = "" if with_user else f"PATH={shlex.quote(_path_var(target))}; export PATH; "
    script = f"{path}set -a; if [ -r {env} ]; then . {env}; fi; set +a; exec {check}"
    command = (  # umask 077: cron.log and cron.lock are created 0600, like ocf's own files
        f"umask 077; flock -n {shlex.quote(str(lock))} /bin/sh -c {shlex.quote(script)} "
        f">> {shlex.quote(str(log))} 2>&1"
    )
    who = f" {target.user}" if with_user else ""
    return f"{_cron_schedule(target.interval)}{who} {_cron_escape(command)}"


def cron_d_file(target: Target) -> str:
    return f"""\
# /etc/cron.d/openclaw-failover: `ocf check` every {cron_minutes(target.interval)} minute(s), \
as the user who owns the
# standby gateway ({target.user}). Written by `sudo ocf install cron`; by hand:
#   sudo install -m 0644 openclaw-failover /etc/cron.d/openclaw-failover
# then edit the user and the paths.
# - `flock -n`: a check still running makes the next one skip, silently (`ocf check`
#   also takes its own lock in the state directory).
# - The env file holds the bot token (KEY=value lines, chmod 600; the same file the
#   systemd unit reads); `set -a` exports what it sets.
# - Output (only when a check acted or failed) is appended to cron.log in the state
#   directory (rotate it: deploy/logrotate/openclaw-failover); the check's own log is
#   ocf.log beside it. `ocf` fills in XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS for
#   `systemctl --user` itself.
SHELL=/bin/sh
PATH={_path_var(target)}
{cron_line(target, with_user=True)}
"""


def crontab_block(target: Target) -> str:
    return f"{BEGIN}\n{cron_line(target, with_user=False)}\n{END}\n"


def merge_crontab(current: str, block: str) -> str:
    """``current`` without an earlier block of ours, with ``block`` appended."""
    kept: list[str] = []
    inside = False
    for line in current.splitlines():
        if line.startswith(f"# BEGIN {NAME}"):
            inside = True
        elif inside and line.startswith(END):
            inside = False
        elif not inside:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    head = "\n".join(kept) + "\n" if kept else ""
    return head + block


def unit_path(path: Path, *, exec_line: bool = False) -> str:
    """A path in unit-file syntax: specifiers (and $ in a command line) escaped, quoted
    when needed."""
    return _unit_word(str(path), exec_line=exec_line)


def unit_file_path(path: Path) -> str:
    """A path for ``EnvironmentFile=``, which takes the rest of the line as the path
    (quotes would be part of it): specifiers escaped, never quoted."""
    return str(path).replace("%", "%%")


def exec_start(command: Sequence[str], config: Path, verb: str = "check") -> str:
    words = [*command, "--config", str(config), verb]
    return " ".join(_unit_word(a, exec_line=True) for a in words)


def cron_minutes(interval: float) -> int:
    return max(1, round(interval / 60))


def _cron_schedule(interval: float) -> str:
    minutes = cron_minutes(interval)
    if minutes == 1:
        return "* * * * *"
    if minutes < 60:
        return f"*/{minutes} * * * *"
    hours = max(1, round(minutes / 60))
    return "0 * * * *" if hours == 1 else f"0 */{min(hours, 23)} * * *"


def _cron_escape(command: str) -> str:
    """In a crontab, an unescaped % ends the command (the rest becomes stdin)."""
    return command.replace("%", "\\%")


def _path_var(target: Target) -> str:
    bin_dir = str(Path(target.command[0]).parent)
    parts = [bin_dir, str(target.home / ".local" / "bin"), *SYSTEM_PATH.split(":")]
    return ":".join(dict.fromkeys(parts))


def _unit_word(word: str, *, exec_line: bool) -> str:
    escaped = word.replace("%", "%%")
    if exec_line:  # only command lines expand $VAR
        escaped = escaped.replace("$", "$$")
    if re.search(r"[\s\"'\\;]", escaped):
        return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return escaped


def check_schedule(kind: str, t: Target) -> None:
    """Add to ``t.warnings`` what will not run as the config expects."""
    if kind == "launchd":  # ocf watch, every 2 s: no schedule to check
        return
    if not t.interval_set:
        default = TIMER_INTERVAL if kind == "systemd" else CRON_INTERVAL
        t.warnings.append(
            f"check.interval is not set: scheduling every {default:g} s; add "
            f"`check: {{interval: {default:g}}}` to the config so `ocf status` knows when "
            f"the next check is due"
        )
    budget = t.deadline + (t.ping_timeout or 0.0)
    what = "check.deadline" + (" + monitoring.ping_timeout" if t.ping_timeout else "")
    if kind == "systemd" and t.interval_set and t.interval != TIMER_INTERVAL:
        t.warnings.append(
            f"check.interval is {t.interval:g} s, so the timer runs every {t.interval:g} s, "
            f"not every {TIMER_INTERVAL:g} s; for a {TIMER_INTERVAL:g} s timer set "
            f"`check: {{interval: {TIMER_INTERVAL:g}, deadline: 20}}` in {t.config} "
            "and run this again (`ocf install systemd --set-interval` does both)"
        )
    if kind == "systemd":
        limit = timeout_start(t.interval)
        if budget >= limit:
            t.warnings.append(
                f"{what} ({budget:g} s) is not below TimeoutStartSec ({limit} s): systemd "
                f"would kill a long check; lower check.deadline (e.g. {max(1, limit - 8)})"
            )
    else:
        if t.interval < 60 or t.interval % 60:
            t.warnings.append(
                f"cron runs at most once a minute: check.interval {t.interval:g} s becomes "
                f"every {cron_minutes(t.interval)} minute(s) (the systemd timer can do 30 s)"
            )
        if budget >= cron_minutes(t.interval) * 60:
            t.warnings.append(
                f"{what} ({budget:g} s) is not below the interval: a long check makes "
                f"the next one skip (flock -n)"
            )


def indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in text.rstrip("\n").splitlines())


def write_file(path: Path, text: str, *, mode: int, dry_run: bool, say: Say) -> None:
    """Write ``text`` atomically with ``mode`` (or say what would be written)."""
    if dry_run:
        say(f"would write {path}:")
        say(indent(text))
        return
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            say(f"unchanged: {path}")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise InstallError(f"cannot write {path}: {exc.strerror or exc}") from None
    say(f"wrote {path}")

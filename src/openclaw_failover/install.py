"""`ocf install cron|systemd [--dry-run]`: schedule `ocf check` with this user's paths.

- ``cron`` as root: writes ``/etc/cron.d/openclaw-failover`` for the user who owns the
  config file (``SUDO_USER`` when root owns it); as another user: adds a marked block
  to that user's crontab (``crontab -l``, then ``crontab FILE``), replacing an earlier
  block of ours and keeping every other line.
- ``systemd``: writes the user units ``~/.config/systemd/user/openclaw-failover.
  {service,timer}``, then ``systemctl --user daemon-reload`` and ``enable --now``
  the timer.  Refused as root: they are user units of the standby gateway's owner.

Every path written into them is absolute: the running ``ocf`` (or ``python -m
openclaw_failover`` of this interpreter), ``--config``, the env file beside the config
(KEY=value lines: the bot token), the state directory (created, 0700).  The schedule
is ``check.interval`` when the config sets it (else 2 minutes for cron, 30 s for the
timer), and the config's ``state_dir`` / ``metrics.textfile`` become the unit's
writable paths.  ``--dry-run`` prints the files and the commands and writes nothing.

As root (cron.d) nothing the config's owner controls can reach root: a control
character in any value written into a line or a unit is refused (a newline would
add a root cron line; see installguard), the config file and its folder must belong to root or to the
target user and be writable by nobody else, and the state folder is created by a
child process running as the target user (never a chown that could follow a link).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openclaw_failover import installguard, runner
from openclaw_failover.installguard import COMMAND_TIMEOUT, SYSTEM_PATH, InstallError
from openclaw_failover.model import CommandResult

NAME = "openclaw-failover"
CRON_D = Path("/etc/cron.d") / NAME
BEGIN = f"# BEGIN {NAME} (written by `ocf install cron`; edit with it, or delete the block)"
END = f"# END {NAME}"
DEFAULT_STATE_DIR = "~/.local/state/openclaw-failover"
CRON_INTERVAL = 120.0
TIMER_INTERVAL = 30.0

Say = Callable[[str], None]
Run = Callable[..., CommandResult]


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


# --------------------------------------------------------------------------- public API


def install(
    kind: str,
    *,
    config_path: Path,
    dry_run: bool,
    env: Mapping[str, str],
    say: Say,
    run: Run = runner.run,
    is_root: bool | None = None,
    home: Path | None = None,
    user: str | None = None,
    command: Sequence[str] | None = None,
    cron_d: Path = CRON_D,
    watch: bool = False,
) -> int:
    """Install the schedule; 0 done, 1 failed, 2 usage error.  Says what it does.

    ``is_root``, ``home``, ``user``, ``command`` and ``cron_d`` default to this process's
    (tests set them).
    """
    root = os.geteuid() == 0 if is_root is None else is_root
    try:
        if kind not in ("cron", "systemd", "launchd"):
            raise InstallError(f"unknown kind {kind!r}: use cron, systemd or launchd", 2)
        if watch and kind != "systemd":
            raise InstallError(
                "--watch installs a systemd service: `ocf install systemd --watch`", 2
            )
        if kind in ("systemd", "launchd") and root:
            what = "systemd units are user units" if kind == "systemd" else "LaunchAgent is"
            raise InstallError(
                f"the {what}: run `ocf install {kind}` as the user "
                "who owns the gateway, not as root",
                2,
            )
        if kind == "cron" and root:
            installguard.check_config_owner(Path(config_path).expanduser().absolute(), user)
        target = resolve_target(
            kind,
            config_path=config_path,
            env=env,
            root=root,
            home=home,
            user=user,
            command=command,
        )
        _check_control_chars(target)
        if dry_run:
            say("dry run: nothing is written or run")
        for warning in target.warnings:
            say(f"warning: {warning}")
        if kind == "launchd":  # the primary's ocf watch (coordination.mode: primary)
            from openclaw_failover.install_launchd import install_launchd

            install_launchd(target, dry_run=dry_run, say=say, run=run)
        elif kind == "systemd":
            _install_systemd(target, dry_run=dry_run, env=env, say=say, run=run, watch=watch)
        elif root:
            _install_cron_d(target, cron_d, dry_run=dry_run, say=say)
        else:
            _install_crontab(target, dry_run=dry_run, env=env, say=say, run=run)
    except InstallError as exc:
        say(f"ocf install {kind}: {exc}")
        return exc.status
    return 0


def ocf_command(argv0: str | None = None) -> tuple[str, ...]:
    """The absolute path of the running `ocf`, else ``python -m openclaw_failover``."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if Path(argv0).name == "ocf":
        found = argv0 if os.sep in argv0 else shutil.which(argv0)
        # under sudo, PATH may lack the user's bin: the ocf beside this interpreter
        beside = Path(sys.executable).absolute().parent / "ocf"
        for exe in (found, str(beside)):
            if exe and os.access(exe, os.X_OK) and Path(exe).is_file():
                return (str(Path(exe).absolute()),)
    return (str(Path(sys.executable).absolute()), "-m", "openclaw_failover")


def resolve_target(
    kind: str,
    *,
    config_path: Path,
    env: Mapping[str, str],
    root: bool,
    home: Path | None = None,
    user: str | None = None,
    command: Sequence[str] | None = None,
) -> Target:
    """Work out the user, the paths and the schedule from the config file."""
    config = Path(config_path).expanduser().absolute()
    if not config.is_file():
        raise InstallError(
            f"config file {config} not found: create it first (see config.example.yaml)", 2
        )
    user, home = _who(config, root=root, env=env, user=user, home=home)
    env_file = config.parent / "env"
    values = dict(env)
    values.update(read_env_file(env_file))
    raw, warnings = _raw_config(config)
    check = _section(raw, "check")
    monitoring = _section(raw, "monitoring")
    metrics = _section(raw, "metrics")
    state_dir = _path(raw.get("state_dir", DEFAULT_STATE_DIR), home, values, warnings)
    state_dir = state_dir or _path(DEFAULT_STATE_DIR, home, values, warnings)
    assert state_dir is not None
    interval_set = _number(check.get("interval")) is not None
    default_interval = TIMER_INTERVAL if kind == "systemd" else CRON_INTERVAL
    interval = _number(check.get("interval")) or default_interval
    deadline = _number(check.get("deadline")) or 100.0
    ping_timeout = None
    if monitoring.get("ping_url"):
        ping_timeout = _number(monitoring.get("ping_timeout")) or 5.0
    writable = []
    textfile = _path(metrics.get("textfile"), home, values, warnings)
    if textfile is not None:
        writable.append(textfile.parent)
    target = Target(
        user=user,
        home=home,
        command=tuple(command) if command else ocf_command(),
        config=config,
        env_file=env_file,
        state_dir=state_dir,
        interval=interval,
        interval_set=interval_set,
        deadline=deadline,
        ping_timeout=ping_timeout,
        writable=writable,
        warnings=warnings,
    )
    _check_schedule(kind, target)
    return target


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (``export`` and quotes allowed, # comments); {} when unreadable."""
    out: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return out
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


# --------------------------------------------------------------------------- rendering


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
# /etc/cron.d/openclaw-failover: `ocf check` every {_minutes(target.interval)} minute(s), \
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


def exec_start(command: Sequence[str], config: Path, verb: str = "check") -> str:
    words = [*command, "--config", str(config), verb]
    return " ".join(_unit_word(a, exec_line=True) for a in words)


# --------------------------------------------------------------------------- installing


def _install_systemd(
    target: Target, *, dry_run: bool, env: Mapping[str, str], say: Say, run: Run, watch: bool
) -> None:
    base = env.get("XDG_CONFIG_HOME") or str(target.home / ".config")
    unit_dir = Path(base) / "systemd" / "user"
    interval = schedule_seconds(target.interval)
    if watch:
        from openclaw_failover.watch import watch_unit

        files = {
            unit_dir / f"{NAME}-watch.service": watch_unit(
                exec_start=exec_start(target.command, target.config, "watch"),
                env_file="-" + unit_path(target.env_file),
                state_dir=unit_path(target.state_dir),
                mkdir_dir=unit_path(target.state_dir, exec_line=True),
                writable=[unit_path(p) for p in target.writable],
                stop_timeout=round(target.deadline) + 10,
                gateway_dir="-" + unit_path(target.home / ".openclaw"),
            )
        }
        unit, what = f"{NAME}-watch.service", "`ocf watch` (checks every 2 s)"
    else:
        files = {
            unit_dir / f"{NAME}.service": service_unit(
                exec_start=exec_start(target.command, target.config),
                env_file="-" + unit_path(target.env_file),
                state_dir=unit_path(target.state_dir),
                mkdir_dir=unit_path(target.state_dir, exec_line=True),
                writable=[unit_path(p) for p in target.writable],
                timeout=timeout_start(target.interval),
                gateway_dir="-" + unit_path(target.home / ".openclaw"),
            ),
            unit_dir / f"{NAME}.timer": timer_unit(interval),
        }
        unit, what = f"{NAME}.timer", f"`ocf check` every {interval} s"
    commands = [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", unit],
    ]
    _make_state_dir(target, dry_run=dry_run, say=say, chown=False)
    for path, text in files.items():
        _write(path, text, mode=0o644, dry_run=dry_run, say=say)
    session = runner.user_session_env(env)
    for argv in commands:
        if dry_run:
            say(f"would run: {shlex.join(argv)}")
            continue
        result = run(argv, timeout=COMMAND_TIMEOUT, env=session)
        if not result.ok:
            raise InstallError(
                f"`{shlex.join(argv)}` failed: {result.summary()}\n"
                f"  the units are written; is the user manager running? "
                f"(`systemctl --user status`; over SSH or from cron it needs "
                f"XDG_RUNTIME_DIR=/run/user/{os.getuid()}); then run it again"
            )
        say(f"ran: {shlex.join(argv)}")
    done = "would schedule" if dry_run else "scheduled"
    say(f"{done}: {what} as {target.user} ({unit})")
    say(f"keep it running while you are logged out: loginctl enable-linger {target.user}")
    say(f"watch it: systemctl --user list-timers {NAME}.timer; journalctl --user -u {NAME}")


def _install_cron_d(target: Target, path: Path, *, dry_run: bool, say: Say) -> None:
    if not dry_run and not path.parent.is_dir():
        raise InstallError(
            f"{path.parent} does not exist: is cron installed? (apt-get install cron)"
        )
    _make_state_dir(target, dry_run=dry_run, say=say, chown=True)
    _write(path, cron_d_file(target), mode=0o644, dry_run=dry_run, say=say)
    done = "would schedule" if dry_run else "scheduled"
    say(
        f"{done}: `ocf check` every {_minutes(target.interval)} minute(s) as {target.user} (cron.d)"
    )
    say(f"output: {target.state_dir / 'cron.log'} (rotate it: deploy/logrotate/{NAME})")


def _install_crontab(
    target: Target, *, dry_run: bool, env: Mapping[str, str], say: Say, run: Run
) -> None:
    block = crontab_block(target)
    _make_state_dir(target, dry_run=dry_run, say=say, chown=False)
    if dry_run:
        say("would run: crontab -l, then install it with this block (replacing ours, if any):")
        say(_indent(block))
        say("would run: crontab FILE")
    else:
        listed = run(["crontab", "-l"], timeout=COMMAND_TIMEOUT, env=env)
        if listed.ok:
            current = listed.stdout
        elif listed.returncode == 1 and "no crontab" in listed.stderr.lower():
            current = ""
        elif listed.error.startswith("command not found"):
            raise InstallError(
                "crontab not found: install cron (apt-get install cron), or use "
                "`ocf install systemd`"
            )
        else:
            raise InstallError(f"`crontab -l` failed: {listed.summary()}")
        new = merge_crontab(current, block)
        fd, tmp = tempfile.mkstemp(prefix="ocf-crontab-", suffix=".txt")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(new)
            result = run(["crontab", tmp], timeout=COMMAND_TIMEOUT, env=env)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if not result.ok:
            raise InstallError(f"`crontab FILE` failed: {result.summary()}")
        verb = "replaced our block in" if BEGIN in current else "added a block to"
        say(f"{verb} the crontab of {target.user}:")
        say(_indent(block))
    done = "would schedule" if dry_run else "scheduled"
    say(
        f"{done}: `ocf check` every {_minutes(target.interval)} minute(s) as {target.user} (crontab)"
    )
    say(f"output: {target.state_dir / 'cron.log'}")


def _make_state_dir(target: Target, *, dry_run: bool, say: Say, chown: bool) -> None:
    """Create the state folder with the target user's rights (see installguard)."""
    installguard.make_state_dir(
        target.state_dir, target.user, dry_run=dry_run, say=say, as_target=chown
    )


def _check_control_chars(target: Target) -> None:
    """Refuse a control character (a newline adds a cron line) in any written value."""
    installguard.check_control_chars(
        [
            ("user", target.user),
            ("home", str(target.home)),
            ("the ocf command", " ".join(target.command)),
            ("the config path", str(target.config)),
            ("the env file path", str(target.env_file)),
            ("state_dir", str(target.state_dir)),
            *(("metrics.textfile", str(p)) for p in target.writable),
        ]
    )


def _write(path: Path, text: str, *, mode: int, dry_run: bool, say: Say) -> None:
    if dry_run:
        say(f"would write {path}:")
        say(_indent(text))
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


# --------------------------------------------------------------------------- helpers


def _who(
    config: Path, *, root: bool, env: Mapping[str, str], user: str | None, home: Path | None
) -> tuple[str, Path]:
    """The user the checks run as, and their home."""
    if user is None:
        uid = os.getuid()
        if root:  # cron.d: the config's owner, else the user who ran sudo
            owner = config.stat().st_uid
            sudo_user = env.get("SUDO_USER")
            if owner != 0:
                uid = owner
            elif sudo_user:
                with contextlib.suppress(KeyError):
                    uid = pwd.getpwnam(sudo_user).pw_uid
        try:
            entry = pwd.getpwuid(uid)
            user, default_home = entry.pw_name, Path(entry.pw_dir)
        except KeyError:
            user, default_home = str(uid), Path.home()
        if not root or uid == os.getuid():
            default_home = Path(env.get("HOME") or default_home)
    else:
        default_home = Path.home()
    return user, (home or default_home).absolute()


def _raw_config(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The YAML document as a dict (no validation: ``ocf check -n`` does that)."""
    from openclaw_failover import safeyaml

    try:
        with path.open("rb") as fh:
            data = safeyaml.load(fh.read(safeyaml.MAX_BYTES + 1))
    except (OSError, ValueError) as exc:
        return {}, [f"cannot read {path} ({type(exc).__name__}); using the defaults"]
    if not isinstance(data, dict):
        return {}, [f"{path} is not a YAML mapping; using the defaults"]
    return data, []


def _section(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _path(value: Any, home: Path, env: Mapping[str, str], warnings: list[str]) -> Path | None:
    """A config path as the target user sees it: ${VAR} expanded, ~ is their home."""
    if not isinstance(value, str) or not value.strip():
        return None
    missing = [m for m in _VAR.findall(value) if m not in env]
    if missing:
        warnings.append(f"{value}: ${{{missing[0]}}} is not set here; path left out")
        return None
    text = _VAR.sub(lambda m: env[m.group(1)], value)
    if text == "~" or text.startswith("~/"):
        return home / text[2:]
    return Path(text).expanduser().absolute()


def _check_schedule(kind: str, t: Target) -> None:
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
            "and run this again"
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
                f"every {_minutes(t.interval)} minute(s) (the systemd timer can do 30 s)"
            )
        if budget >= _minutes(t.interval) * 60:
            t.warnings.append(
                f"{what} ({budget:g} s) is not below the interval: a long check makes "
                f"the next one skip (flock -n)"
            )


def _minutes(interval: float) -> int:
    return max(1, round(interval / 60))


def _cron_schedule(interval: float) -> str:
    minutes = _minutes(interval)
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


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in text.rstrip("\n").splitlines())

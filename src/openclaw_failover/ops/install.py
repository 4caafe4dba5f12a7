"""`ocf install cron|systemd [--dry-run]`: schedule `ocf check` with this user's paths.

- ``cron`` as root: writes ``/etc/cron.d/openclaw-failover`` for the user who owns the
  config file (``SUDO_USER`` when root owns it); as another user: adds a marked block
  to that user's crontab (``crontab -l``, then ``crontab FILE``), replacing an earlier
  block of ours and keeping every other line.
- ``systemd``: writes the user units ``~/.config/systemd/user/openclaw-failover.
  {service,timer}``, then ``systemctl --user daemon-reload`` and ``enable --now``
  the timer.  Refused as root: they are user units of the standby gateway's owner.

:func:`load` validates the config as the scheduled check will see it (the env file
beside it loaded, ``~`` the target user's home); :func:`install` takes that ``Config``.
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
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from openclaw_failover.config.envfile import as_the_check_sees
from openclaw_failover.config.loader import Config, load_config
from openclaw_failover.local import runner
from openclaw_failover.ops import installguard
from openclaw_failover.ops.install_files import (
    BEGIN,
    CRON_INTERVAL,
    NAME,
    TIMER_INTERVAL,
    Run,
    Say,
    Target,
    check_schedule,
    cron_d_file,
    cron_minutes,
    crontab_block,
    exec_start,
    indent,
    merge_crontab,
    schedule_seconds,
    service_unit,
    timeout_start,
    timer_unit,
    unit_file_path,
    unit_path,
    write_file,
)
from openclaw_failover.ops.installguard import COMMAND_TIMEOUT, InstallError

CRON_D = Path("/etc/cron.d") / NAME


# --------------------------------------------------------------------------- public API


def load(
    kind: str,
    config_path: Path,
    env: Mapping[str, str],
    *,
    root: bool | None = None,
    user: str | None = None,
    home: Path | None = None,
    watch: bool = False,
) -> Config:
    """The validated config as the scheduled check will see it: ``${VAR}`` from ``env``
    and the env file beside the config, ``~`` the target user's home.

    Raises InstallError (usage; as root, a config others can write) or ConfigError."""
    root = os.geteuid() == 0 if root is None else root
    _check_usage(kind, root=root, watch=watch)
    config = Path(config_path).expanduser().absolute()
    if not config.is_file():
        raise InstallError(
            f"config file {config} not found: create it first (see config.example.yaml)", 2
        )
    if kind == "cron" and root:  # before root reads it
        installguard.check_config_owner(config, user)
    _, target_home = _who(config, root=root, env=env, user=user, home=home)
    return load_config(config, as_the_check_sees(config, env), home=target_home)


def install(
    kind: str,
    cfg: Config,
    *,
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
    """Install the schedule for ``cfg`` (see :func:`load`); 0 done, 1 failed, 2 usage
    error.  Says what it does.

    ``is_root``, ``home``, ``user``, ``command`` and ``cron_d`` default to this process's
    (tests set them).
    """
    root = os.geteuid() == 0 if is_root is None else is_root
    try:
        _check_usage(kind, root=root, watch=watch)
        target = resolve_target(
            kind, cfg, env=env, root=root, home=home, user=user, command=command
        )
        _check_control_chars(target)
        if dry_run:
            say("dry run: nothing is written or run")
        for warning in target.warnings:
            say(f"warning: {warning}")
        if kind == "launchd":  # the primary's ocf watch (coordination.mode: primary)
            from openclaw_failover.ops.install_launchd import install_launchd

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


def _check_usage(kind: str, *, root: bool, watch: bool) -> None:
    if kind not in ("cron", "systemd", "launchd"):
        raise InstallError(f"unknown kind {kind!r}: use cron, systemd or launchd", 2)
    if watch and kind != "systemd":
        raise InstallError("--watch installs a systemd service: `ocf install systemd --watch`", 2)
    if kind in ("systemd", "launchd") and root:
        what = "systemd units are user units" if kind == "systemd" else "LaunchAgent is"
        raise InstallError(
            f"the {what}: run `ocf install {kind}` as the user who owns the gateway, not as root",
            2,
        )


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
    cfg: Config,
    *,
    env: Mapping[str, str],
    root: bool,
    home: Path | None = None,
    user: str | None = None,
    command: Sequence[str] | None = None,
) -> Target:
    """Work out the user, the paths and the schedule from the config."""
    config = Path(cfg.source).absolute()
    user, home = _who(config, root=root, env=env, user=user, home=home)
    interval_set = "check.interval" in cfg.given
    default_interval = TIMER_INTERVAL if kind == "systemd" else CRON_INTERVAL
    monitoring = cfg.monitoring
    textfile = monitoring.metrics_textfile
    target = Target(
        user=user,
        home=home,
        command=tuple(command) if command else ocf_command(),
        config=config,
        env_file=config.parent / "env",
        state_dir=cfg.state_dir.absolute(),
        interval=cfg.check.interval if interval_set else default_interval,
        interval_set=interval_set,
        deadline=cfg.check.deadline,
        ping_timeout=monitoring.ping_timeout if monitoring.ping_url else None,
        writable=[textfile.absolute().parent] if textfile else [],
    )
    check_schedule(kind, target)
    return target


# --------------------------------------------------------------------------- installing


def _install_systemd(
    target: Target, *, dry_run: bool, env: Mapping[str, str], say: Say, run: Run, watch: bool
) -> None:
    base = env.get("XDG_CONFIG_HOME") or str(target.home / ".config")
    unit_dir = Path(base) / "systemd" / "user"
    interval = schedule_seconds(target.interval)
    if watch:
        from openclaw_failover.engine.watch import watch_unit

        files = {
            unit_dir / f"{NAME}-watch.service": watch_unit(
                exec_start=exec_start(target.command, target.config, "watch"),
                env_file="-" + unit_file_path(target.env_file),
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
                env_file="-" + unit_file_path(target.env_file),
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
        write_file(path, text, mode=0o644, dry_run=dry_run, say=say)
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
    write_file(path, cron_d_file(target), mode=0o644, dry_run=dry_run, say=say)
    done = "would schedule" if dry_run else "scheduled"
    say(
        f"{done}: `ocf check` every {cron_minutes(target.interval)} minute(s) as {target.user} (cron.d)"
    )
    say(f"output: {target.state_dir / 'cron.log'} (rotate it: deploy/logrotate/{NAME})")


def _install_crontab(
    target: Target, *, dry_run: bool, env: Mapping[str, str], say: Say, run: Run
) -> None:
    block = crontab_block(target)
    _make_state_dir(target, dry_run=dry_run, say=say, chown=False)
    if dry_run:
        say("would run: crontab -l, then install it with this block (replacing ours, if any):")
        say(indent(block))
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
        say(indent(block))
    done = "would schedule" if dry_run else "scheduled"
    say(
        f"{done}: `ocf check` every {cron_minutes(target.interval)} minute(s) as {target.user} (crontab)"
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

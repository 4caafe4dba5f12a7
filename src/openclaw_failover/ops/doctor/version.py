"""`ocf doctor`: the openclaw group.

The gateway version on both hosts (``/startupz``), warned when they differ: a standby
that takes over with another OpenClaw version than the primary may read the primary's
state or workspace differently.  Then the ``openclaw ...`` start/stop commands that do
not work unattended (see :func:`gwversion.command_problem`).
"""

from __future__ import annotations

from collections.abc import Callable

from openclaw_failover.ops.doctor.base import DoctorContext, Sink
from openclaw_failover.primary import gwversion, remote

CLI_TIMEOUT = 20.0  # `openclaw --version` starts Node: seconds on a Pi
_UPDATE_FIX = "update the older one (npm install -g openclaw@{newer}), then restart its gateway"


def budget(ctx: DoctorContext) -> float:
    ssh = ctx.cfg.primary.ssh
    return ssh.connect_timeout + 2 * _timeout(ctx) + CLI_TIMEOUT + 3


def _timeout(ctx: DoctorContext) -> float:
    return min(ctx.cfg.check.probe_timeout, 5.0)


def _read(fn: Callable[[], str]) -> tuple[str | None, str]:
    try:
        return fn(), ""
    except (OSError, ValueError, remote.RemoteError) as exc:
        return None, (exc.detail if isinstance(exc, remote.RemoteError) else str(exc)) or type(
            exc
        ).__name__


def check_versions(ctx: DoctorContext, out: Sink) -> None:
    cfg, timeout = ctx.cfg, _timeout(ctx)
    gw = cfg.standby.gateway
    primary, why_p = _read(lambda: gwversion.primary_version(cfg, timeout))
    standby, why_s = _read(lambda: gwversion.local_version(gw.health_url, timeout))
    how = "/startupz"
    if standby is None:  # not running here (the primary serves): ask the installed CLI
        command = gw.fallback_start_command or gw.start_command
        cli, why_cli = _read(lambda: gwversion.cli_version(command, ctx.env, CLI_TIMEOUT, ctx.mask))
        if cli is not None:
            standby, how = cli, "installed, openclaw --version"
        else:
            why_s = f"{why_s}; {why_cli}"
    for name, version, why, where in (
        ("primary", primary, why_p, "/startupz"),
        ("standby", standby, why_s, how),
    ):
        if version is not None:
            out.ok(f"{name} gateway: OpenClaw {version} ({where})")
        else:
            out.skip(f"{name} gateway version unknown: {why}", "")
    _commands(ctx, out)
    primary, standby = _bare(primary), _bare(standby)
    if primary is not None and standby is not None and primary != standby:
        newer = max(primary, standby, key=_sort_key)
        out.warn(
            f"gateway versions differ: primary {primary}, standby {standby}",
            _UPDATE_FIX.format(newer=newer),
        )


def _commands(ctx: DoctorContext, out: Sink) -> None:
    p, s = ctx.cfg.primary.gateway, ctx.cfg.standby.gateway
    for key, command in (
        ("primary.gateway.stop_command", p.stop_command),
        ("primary.gateway.start_command", p.start_command),
        ("standby.gateway.start_command", s.start_command),
        ("standby.gateway.stop_command", s.stop_command),
        ("standby.gateway.fallback_start_command", s.fallback_start_command),
    ):
        problem = gwversion.command_problem(command)
        if problem:
            out.fail(
                f"{key}: {problem}",
                "use `openclaw gateway stop --force`, or the service manager's form "
                "(systemctl --user stop openclaw-gateway.service; macOS: launchctl bootout "
                "gui/<uid>/ai.openclaw.gateway); see README 'Gateway commands'",
            )


def _bare(version: str | None) -> str | None:
    return version.split(",", 1)[0] if version else None


def _sort_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.replace("-", ".").split(".") if p.isdigit())

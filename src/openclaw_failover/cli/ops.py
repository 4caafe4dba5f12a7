"""The operator's commands: doctor, history, install, drill, demo (registered on `cli`)."""

from __future__ import annotations

import json
import os
import sys

import click

from openclaw_failover.cli.app import (
    Context,
    Failed,
    _verbose_option,
    cli,
    pass_ctx,
)
from openclaw_failover.config.loader import find_config
from openclaw_failover.engine.tick import ExitStatus


@cli.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@click.option("--send-test", is_flag=True, help="Also send a test message on Telegram.")
@_verbose_option
@pass_ctx
def doctor_cmd(c: Context, as_json: bool, send_test: bool) -> None:
    """Check the whole setup, one line per check with the fix; exit 1 on any FAIL."""
    from openclaw_failover.ops.doctor.run import run_doctor

    cfg = c.config()
    path = find_config(c.config_path, c.environment.env)
    c.setup_logging(cfg, to_file=False)  # read-only: no ocf.log entry
    report = run_doctor(
        cfg, env=c.environment.env, config_path=path, send_test=send_test, now=c.environment.clock()
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(report.render())
        click.echo(report.summary())
    if not report.ok:
        raise Failed("doctor found problems")


@cli.command("history")
@click.option(
    "--since", default="7d", show_default=True, help="7d, 12h, 30m, or a UTC date (2026-11-01)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def history_cmd(c: Context, since: str, as_json: bool) -> None:
    """What happened: transitions, actions, notices, sync-backs."""
    from openclaw_failover.ops import history

    cfg = c.config()
    try:
        start = history.parse_since(since, now=c.environment.clock())
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    events = history.load(cfg.state_dir, start)
    data = [e.to_json() for e in events]
    text = json.dumps(data, indent=2, sort_keys=True) if as_json else history.render(events)
    click.echo(c.environment.mask(text))


@cli.command("install")
@click.argument("kind", type=click.Choice(["cron", "systemd", "launchd"]))
@click.option("--dry-run", "-n", is_flag=True, help="Print the files and commands; write nothing.")
@click.option("--watch", is_flag=True, help="systemd: a service running `ocf watch` instead.")
@click.option(
    "--set-interval",
    is_flag=True,
    help="systemd: set check.interval to 30 (the timer's period) in the config, no question.",
)
@pass_ctx
def install_cmd(c: Context, kind: str, dry_run: bool, watch: bool, set_interval: bool) -> None:
    """Schedule `ocf check` (cron.d / crontab, a systemd user timer, or a macOS LaunchAgent
    running `ocf watch` on the primary) with this user's paths."""
    from openclaw_failover.config.envfile import as_the_check_sees
    from openclaw_failover.ops import install
    from openclaw_failover.ops.install_interval import offer
    from openclaw_failover.ops.installguard import InstallError

    if set_interval and (kind != "systemd" or watch):
        raise click.UsageError("--set-interval is for the timer: `ocf install systemd`")
    env = c.environment.env
    path = find_config(c.config_path, env)
    code = 0
    if kind == "systemd" and not watch and os.geteuid() != 0:  # as root install refuses
        tty = sys.stdin.isatty() and sys.stdout.isatty()
        ask = (lambda q: click.confirm(q, default=True)) if tty else None
        code = offer(
            path,
            as_the_check_sees(path, env),
            set_interval=set_interval,
            ask=ask,
            dry_run=dry_run,
            say=click.echo,
        )
    if not code:
        try:  # as the check will see it; a broken config is refused before anything is scheduled
            cfg = install.load(kind, path, env, watch=watch)
        except InstallError as exc:
            click.echo(f"ocf install {kind}: {exc}")
            raise Failed(f"install {kind} failed", ExitStatus(exc.status)) from None
        c.environment.mask = cfg.masker
        code = install.install(kind, cfg, dry_run=dry_run, env=env, say=click.echo, watch=watch)
    if code:
        raise Failed(f"install {kind} failed", ExitStatus(code))


@cli.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--interactive", is_flag=True, help="Ask me to message the bot instead of a marker.")
@click.option("--dry-run", "-n", is_flag=True, help="Print the plan; do nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@click.option(
    "--interval", type=float, default=5.0, show_default=True, help="Seconds between checks."
)
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds per phase.")
@_verbose_option
@pass_ctx
def drill(
    c: Context,
    yes: bool,
    interactive: bool,
    dry_run: bool,
    as_json: bool,
    interval: float,
    timeout: float,
) -> None:
    """A real failover test: stop the primary's gateway, time the takeover and the give-back.

    The primary's gateway is started again whatever happens.
    """
    from openclaw_failover.ops.drill import Drill, plan

    cfg = c.config()
    steps = plan(cfg, interactive=interactive)
    if dry_run or not yes:
        click.echo("ocf drill will:" if not dry_run else "dry run: ocf drill would:")
        for n, step in enumerate(steps, 1):
            click.echo(f"  {n}. {step}")
    if dry_run:
        return
    if not yes and not click.confirm("Stop the primary's gateway now?", default=False):
        raise Failed("drill cancelled", ExitStatus.ACTION_FAILED)
    c.setup_logging(cfg)
    say = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    report = Drill(cfg, c.environment.env, say, interval, timeout, interactive).run()
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else report.table())
    if not report.ok:
        raise Failed(report.error)


@cli.command()
@click.option("--keep", is_flag=True, help="Leave the sandbox running; print how to use it.")
@click.option(
    "--transport",
    type=click.Choice(["auto", "openssh", "paramiko"]),
    default="auto",
    help="How the sandbox's primary is reached (auto: OpenSSH sshd when installed).",
)
@click.option(
    "--real-gateway",
    is_flag=True,
    help="Run the real OpenClaw gateway (python -m openclaw_failover.sandbox.realgw install).",
)
def demo(keep: bool, transport: str, real_gateway: bool) -> None:
    """The whole failover on this machine: two PostgreSQL clusters, two gateways, SSH,
    a fake Telegram; the original's power-loss and gateway-crash scenarios, timed.

    Needs no config. Exit 0 when every check holds.
    """
    from openclaw_failover.sandbox.demo import run_demo

    code = run_demo(keep=keep, transport=transport, real_gateway=real_gateway)
    if code:
        status = ExitStatus.CONFIG_ERROR if code == 2 else ExitStatus.ACTION_FAILED
        raise Failed("demo failed", status)

"""The `ocf` command line.  Exit codes are mapped from outcomes in one place: ``main``."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import click

from openclaw_failover import __version__, logs
from openclaw_failover.config import Config, ConfigError, find_config, load_config
from openclaw_failover.runner import Masker
from openclaw_failover.state import StateStore
from openclaw_failover.tick import ExitStatus, Tick, TickResult

log = logging.getLogger("openclaw_failover.cli")


@dataclass
class Environment:
    """What the CLI takes from the outside world: injectable for end-to-end tests."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Any = time.time
    mask: Masker = field(default_factory=Masker)  # set once the config (and its secrets) is known


class Failed(Exception):
    """A command that ran but failed; carries its exit status."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.ACTION_FAILED) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Context:
    environment: Environment
    config_path: str | None
    verbose: int

    def config(self, *, own_state_dir: bool = True) -> Config:
        """The config; with ``own_state_dir`` its state folder must be this user's (exit 2)."""
        path = find_config(self.config_path, self.environment.env)
        cfg = load_config(path, self.environment.env)
        self.environment.mask = Masker(cfg.secrets)
        if own_state_dir:
            from openclaw_failover import safefs

            safefs.check_dir(cfg.state_dir)
        return cfg

    def setup_logging(self, cfg: Config | None, *, to_file: bool = True) -> None:
        logs.setup(
            cfg.state_dir if cfg and to_file else None,
            verbose=self.verbose,
            env=self.environment.env,
            mask=Masker(cfg.secrets if cfg else ()),
        )


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "-c", "config_path", metavar="PATH", help="Config file (default: search)."
)
@click.option("-v", "--verbose", count=True, help="Log to stderr too; -vv for debug.")
@click.version_option(__version__, prog_name="ocf")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """Keep an OpenClaw gateway alive: take over when the primary dies, give back when it returns.

    \b
    Config search order: --config, $OCF_CONFIG,
    ~/.config/openclaw-failover/config.yaml, /etc/openclaw-failover/config.yaml.
    New here? `ocf init` writes one; `ocf config example` prints every key.
    """
    environment = ctx.obj if isinstance(ctx.obj, Environment) else Environment()
    ctx.obj = Context(environment, config_path, verbose)


def _verbose_option(f: Any) -> Any:
    def bump(ctx: click.Context, _param: click.Parameter, value: int) -> int:
        if value:
            ctx.find_object(Context).verbose += value  # type: ignore[union-attr]
        return value

    return click.option(
        "-v", "--verbose", count=True, expose_value=False, callback=bump, help="Log to stderr too."
    )(f)


def _run_tick(c: Context, *, dry_run: bool, request: str | None = None) -> TickResult:
    cfg = c.config()
    c.setup_logging(cfg, to_file=not dry_run)  # a dry run writes nothing, not even the log
    tick = Tick(cfg, c.environment.env, dry_run=dry_run, request=request, clock=c.environment.clock)
    return tick.run(lock_wait=cfg.check.deadline if request else 0.0)


def _report(result: TickResult, *, dry_run: bool, always: bool) -> None:
    """Print the tick's sentence when something happened (cron mails any output)."""
    if not (always or dry_run or result.acted or result.status):
        return
    click.echo(("dry run: " if dry_run else "") + result.reason)
    if dry_run or result.status:
        for step in result.steps:
            click.echo(f"  {step}")
    if dry_run:
        for text in result.notices:
            click.echo(f"  would notify: {text}")
    if result.status:
        raise Failed(result.reason, result.status)


@cli.command()
@click.option("--dry-run", "-n", is_flag=True, help="Probe and decide, but change nothing.")
@_verbose_option
@pass_ctx
def check(c: Context, dry_run: bool) -> None:
    """Run one tick: probe the primary, take over or give back if needed.

    Silent when nothing happened; prints one sentence when it acted.
    """
    _report(_run_tick(c, dry_run=dry_run), dry_run=dry_run, always=False)


@cli.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    default=2.0,
    show_default=True,
    help="Seconds between checks.",
)
@_verbose_option
@pass_ctx
def watch(c: Context, interval: float) -> None:
    """Check every INTERVAL seconds over one SSH connection kept open (a systemd service).

    The same checks, state, lock, notices and metrics as `ocf check`; stops on SIGTERM.
    """
    from openclaw_failover.watch import run_watch

    cfg = c.config()
    c.setup_logging(cfg)
    run_watch(cfg, c.environment.env, interval=interval)


@cli.command()
@click.option("--dry-run", "-n", is_flag=True, help="Show what would happen.")
@_verbose_option
@pass_ctx
def takeover(c: Context, dry_run: bool) -> None:
    """Manual switchover: serve from this standby until 'ocf release'."""
    _report(_run_tick(c, dry_run=dry_run, request="takeover"), dry_run=dry_run, always=True)


@cli.command()
@click.option("--dry-run", "-n", is_flag=True, help="Show what would happen.")
@_verbose_option
@pass_ctx
def release(c: Context, dry_run: bool) -> None:
    """Give the gateway back to the primary now (also with failback: manual)."""
    _report(_run_tick(c, dry_run=dry_run, request="release"), dry_run=dry_run, always=True)


@cli.command()
@pass_ctx
def pause(c: Context) -> None:
    """Maintenance: keep observing, never act, until 'ocf resume'."""
    _set_paused(c, True)


@cli.command()
@pass_ctx
def resume(c: Context) -> None:
    """End maintenance: act again from the next check."""
    _set_paused(c, False)


def _set_paused(c: Context, paused: bool) -> None:
    from openclaw_failover import recovery
    from openclaw_failover.gateway import LocalGateway
    from openclaw_failover.lock import Busy, exclusive

    cfg = c.config()
    c.setup_logging(cfg)
    store = StateStore(cfg.state_dir)
    now = c.environment.clock()
    try:
        with exclusive(cfg.state_dir, wait=cfg.check.deadline):
            state, warning = store.load()
            if state is None:
                gw = LocalGateway(cfg, mask=Masker(cfg.secrets), env=c.environment.env)
                facts = recovery.gather(cfg, gw.is_up())
                state = recovery.recover(cfg, store, warning, facts, now)
            state = replace(state, paused=paused, paused_since=now if paused else None)
            store.save(state)
            store.event("paused" if paused else "resumed")
    except Busy:
        raise Failed("another check is running; try again") from None
    word = "paused: observing only, not acting" if paused else "resumed: acting again"
    log.info("%s", word)
    click.echo(word)


@cli.command()
@click.option("--dry-run", "-n", is_flag=True, help="Count what would be synced; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--discard-standby-only",
    is_flag=True,
    help="Do not merge rows only the standby holds: quarantine and remove them "
    "(with --dry-run: list them).",
)
@_verbose_option
@pass_ctx
def syncback(c: Context, dry_run: bool, as_json: bool, discard_standby_only: bool) -> None:
    """Sync back rows and workspace files standby -> primary, then repair replication.

    Rows the standby holds that the primary lacks or holds older are always
    merged into the primary first; rows it replaces or deletes on either host
    are kept in quarantine (`ocf quarantine list`).  While this standby still
    serves, only the merge runs; the standby is made equal to the primary (and
    its subscription re-enabled) at give-back, or by running this again once
    the primary serves.
    """
    from openclaw_failover import recovery
    from openclaw_failover.decide import syncback_mode
    from openclaw_failover.gateway import LocalGateway
    from openclaw_failover.lock import Busy, exclusive
    from openclaw_failover.splitstate import read_baseline
    from openclaw_failover.syncback import sync_back

    cfg = c.config()
    c.setup_logging(cfg, to_file=not dry_run)
    mask = Masker(cfg.secrets)
    progress = None if as_json else (lambda line: click.echo(line, err=True))
    try:
        with exclusive(cfg.state_dir, wait=cfg.check.deadline):
            store = StateStore(cfg.state_dir)
            state, warning = store.load()
            local_up = LocalGateway(cfg, mask=mask, env=c.environment.env).is_up()
            if state is None:
                facts = recovery.gather(cfg, local_up)
                now = c.environment.clock()
                state = recovery.recover(cfg, store, warning, facts, now, dry_run=dry_run)
                if not dry_run:
                    store.save(state)
            serving, split = syncback_mode(
                state.role, local_up, read_baseline(cfg.state_dir) is not None
            )
            report = sync_back(
                cfg,
                mask=mask,
                dry_run=dry_run,
                serving=serving,
                split=split,
                discard_standby_only=discard_standby_only,
                progress=progress,
            )
    except Busy:
        raise Failed("another check is running; try again") from None
    if not dry_run and not report.skipped:
        StateStore(cfg.state_dir).event(
            "syncback",
            ok=report.ok,
            summary=report.summary(),
            rows=sum(t.inserted + t.updated for t in report.tables),
            quarantined=report.quarantined,
        )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, sort_keys=True, default=str))
    else:
        click.echo("\n".join(report.lines()) if not report.skipped else report.summary())
    if not report.ok:
        raise Failed(report.summary())


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def status(c: Context, as_json: bool) -> None:
    """Show the role, the last probe, counters, the local gateway and pending notices."""
    from openclaw_failover.gateway import LocalGateway
    from openclaw_failover.status import collect, render

    cfg = c.config()
    store = StateStore(cfg.state_dir)
    state, warning = store.load()
    gw = LocalGateway(cfg, mask=Masker(cfg.secrets), env=c.environment.env)
    info = collect(cfg, state, warning, gw.is_up(), store, now=c.environment.clock())
    click.echo(json.dumps(info, indent=2, sort_keys=True) if as_json else render(info))


def main(args: Sequence[str] | None = None, environment: Environment | None = None) -> int:
    """Entry point; maps every outcome to an ExitStatus here and nowhere else."""
    # paramiko imports `invoke` only to run `Match exec` lines of ssh_config files,
    # which ocf never reads; invoke drags in unittest.mock: ~30 ms on every tick.
    sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]
    status = _dispatch(args, environment or Environment())
    if args is None:
        sys.exit(int(status))
    return int(status)


def _dispatch(args: Sequence[str] | None, environment: Environment) -> ExitStatus:
    try:
        cli.main(args=args, obj=environment, standalone_mode=False, prog_name="ocf")
    except ConfigError as exc:
        click.echo(f"ocf: {exc.render()}", err=True)
        return ExitStatus.CONFIG_ERROR
    except click.UsageError as exc:
        exc.show()
        return ExitStatus.CONFIG_ERROR
    except click.exceptions.Exit as exc:
        return ExitStatus(exc.exit_code) if exc.exit_code in (0, 1, 2) else ExitStatus.ACTION_FAILED
    except click.Abort:
        click.echo("ocf: aborted", err=True)
        return ExitStatus.ACTION_FAILED
    except Failed as exc:
        return exc.status
    except KeyboardInterrupt:
        click.echo("ocf: interrupted", err=True)
        return ExitStatus.ACTION_FAILED
    except Exception as exc:  # a bug: one line on stderr, the traceback in the log
        log.debug("unexpected error", exc_info=True)
        text = environment.mask(f"{type(exc).__name__}: {exc}")
        click.echo(f"ocf: unexpected error: {text}", err=True)
        return ExitStatus.ACTION_FAILED
    return ExitStatus.OK


# The operator's commands live beside it (registered on `cli` when imported).
from openclaw_failover import cli_cluster, cli_init, cli_ops, cli_quarantine  # noqa: E402, F401

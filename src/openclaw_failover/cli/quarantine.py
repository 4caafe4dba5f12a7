"""`ocf quarantine list|restore`: the rows sync-back replaced or deleted."""

from __future__ import annotations

import json
import time

import click

from openclaw_failover.cli.app import Context, Failed, _verbose_option, cli, pass_ctx
from openclaw_failover.engine.tick import ExitStatus


@cli.group("quarantine")
def quarantine_group() -> None:
    """Rows that sync-back replaced or deleted, kept before it did."""


@quarantine_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def list_cmd(c: Context, as_json: bool) -> None:
    """One line per batch (oldest first), then its files with -v."""
    from openclaw_failover.syncback import quarantine

    cfg = c.config()
    found = quarantine.batches(cfg.state_dir)
    if as_json:
        click.echo(json.dumps([b.to_json() for b in found], indent=2, sort_keys=True))
        return
    if not found:
        click.echo(f"quarantine is empty ({quarantine.root(cfg.state_dir)})")
        return
    for b in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(b.created))
        click.echo(f"{b.id}  {when}  {b.rows} rows  {b.bytes:,} bytes")
        for f in b.files:
            click.echo(f"  {f.host} {f.table}: {f.rows} rows ({f.reason})")


@quarantine_group.command("restore")
@click.argument("batch_id")
@click.option("--dry-run", "-n", is_flag=True, help="Show what would be restored; write nothing.")
@_verbose_option
@pass_ctx
def restore_cmd(c: Context, batch_id: str, dry_run: bool) -> None:
    """Merge batch BATCH_ID back into the primary (newer updated_at wins)."""
    from openclaw_failover.config.secrets import shorten
    from openclaw_failover.syncback import quarantine
    from openclaw_failover.syncback.restore import RestoreError, restore

    cfg = c.config()
    c.setup_logging(cfg, to_file=not dry_run)
    batch = quarantine.find(cfg.state_dir, batch_id)
    if batch is None:
        raise click.UsageError(f"no quarantine batch {batch_id!r} (see 'ocf quarantine list')")
    try:
        report = restore(cfg, batch, dry_run=dry_run)
    except (RestoreError, OSError) as exc:
        click.echo(f"ocf: {shorten(c.environment.mask(str(exc)), 300)}", err=True)
        raise Failed(str(exc), ExitStatus.ACTION_FAILED) from None
    except Exception as exc:  # psycopg.Error
        click.echo(
            f"ocf: restore failed, nothing written: {shorten(c.environment.mask(str(exc)), 300)}",
            err=True,
        )
        raise Failed(str(exc), ExitStatus.ACTION_FAILED) from None
    click.echo("\n".join(report.lines()))

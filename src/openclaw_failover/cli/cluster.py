"""`ocf cluster [--json]`: the members of an etcd-coordinated cluster (registered on `cli`)."""

from __future__ import annotations

import json

import click

from openclaw_failover.cli.app import Context, Failed, cli, pass_ctx
from openclaw_failover.config.secrets import Masker


@cli.command("cluster")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def cluster_cmd(c: Context, as_json: bool) -> None:
    """List each member: role, leader key holder and TTL left, heartbeat, gateway."""
    cfg = c.config()
    if cfg.coordination is None:
        raise click.UsageError("no coordination: section in the config (two-host mode)")
    from openclaw_failover.engine.coord import cluster

    info = cluster.collect(cfg, Masker(cfg.secrets), now=c.environment.clock())
    text = json.dumps(info, indent=2, sort_keys=True) if as_json else cluster.render(info)
    click.echo(c.environment.mask(text))
    if info.get("error"):
        raise Failed("etcd cannot be asked")

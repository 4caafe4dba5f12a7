"""``ocf doctor``'s ``coordination`` group (only with a ``coordination:`` section).

Each etcd endpoint (its version, or why it does not answer), the quorum (a
linearizable read of the leader key, its holder and TTL left), the TTL against the
check interval, and whether this host's leader guard runs while it holds the key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openclaw_failover.engine.coord import guard
from openclaw_failover.engine.coord.etcd import EtcdError
from openclaw_failover.engine.coord.leader import Leadership, client_for

if TYPE_CHECKING:
    from openclaw_failover.ops.doctor.base import DoctorContext, Sink


def budget(ctx: DoctorContext) -> float:
    cc = ctx.cfg.coordination
    return 5.0 if cc is None else 2 * len(cc.endpoints) * cc.timeout + 5


def check_coordination(ctx: DoctorContext, out: Sink) -> None:
    cfg, cc = ctx.cfg, ctx.cfg.coordination
    if cc is None:
        return
    client = client_for(cfg, ctx.mask)
    for endpoint in client.endpoints:
        try:
            status = client.status(endpoint)
        except EtcdError as exc:
            out.warn(f"etcd {exc}", "start that member, or fix coordination.endpoints",
                     id="endpoint")  # fmt: skip
            continue
        out.ok(f"etcd {endpoint}: version {status.get('version')}", id="endpoint")
    try:
        view = Leadership(client, cc.prefix, cc.name, cc.ttl).read()
    except EtcdError as exc:
        out.fail(
            f"no etcd quorum: {exc}",
            "start the etcd members (a majority must run) and check the network to them; "
            f"meanwhile on_coordinator_loss: {cc.on_coordinator_loss} applies",
            id="quorum",
        )
        return
    who = f"{view.holder} ({view.ttl_left}s left)" if view.holder else "nobody"
    out.ok(f"etcd quorum reachable; leader key {cc.prefix}/leader held by {who}", id="quorum")
    if cc.ttl <= 2 * cfg.check.interval:
        out.warn(
            f"coordination.ttl {cc.ttl}s is not more than twice check.interval "
            f"({cfg.check.interval:g}s): with cron or the timer the key may expire between "
            "two checks (fine with `ocf watch`, every 2 s)",
            f"set coordination.ttl above {2 * cfg.check.interval:g}, or run `ocf watch`",
            id="ttl",
        )
    if view.holder == cc.name and guard.running(cfg.state_dir) is None:
        out.warn(
            "this host holds the leader key but its leader guard does not run",
            "the next check starts it; see state_dir/guard.log",
            id="guard",
        )

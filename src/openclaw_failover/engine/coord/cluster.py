"""``ocf cluster [--json]``: every member of the cluster, in the style of patronictl list.

One linearizable read of the leader key (its holder and the TTL left on its lease), the
members' heartbeats (``<prefix>/members/<name>``, written by every check: mode, role,
priority, gateway answering, subscription name), each etcd endpoint's own status
(version, whether it is the Raft leader, or why it does not answer), and, with a
``database:`` section, each subscriber's lag in bytes from the primary's
``pg_stat_replication``.
"""

from __future__ import annotations

from typing import Any

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker, shorten
from openclaw_failover.engine.coord.etcd import EtcdError
from openclaw_failover.engine.coord.leader import Leadership, client_for


def collect(cfg: Config, mask: Masker, now: float) -> dict[str, Any]:
    cc = cfg.coordination
    assert cc is not None
    client = client_for(cfg, mask)
    info: dict[str, Any] = {"cluster": cc.prefix, "ttl": cc.ttl, "error": None}
    info["etcd"] = [_endpoint(client, e) for e in client.endpoints]
    try:
        view = Leadership(client, cc.prefix, cc.name, cc.ttl).read()
        from openclaw_failover.engine.coord.step import Coordinator

        raw = Coordinator.members_of(client, cc.prefix)
    except EtcdError as exc:
        info["error"] = str(exc)
        info["leader"], info["members"] = None, []
        return info
    info["leader"] = {"holder": view.holder, "ttl_left": view.ttl_left}
    lags, info["lag_error"] = _lags(cfg, mask)
    members = []
    for m in sorted(raw, key=lambda m: (m.get("mode") != "primary", -int(m.get("priority", 0)))):
        at = m.get("at")
        members.append(
            {
                "name": m.get("name"),
                "mode": m.get("mode"),
                "role": m.get("role"),
                "priority": m.get("priority"),
                "leader": m.get("name") == view.holder,
                "heartbeat_age": round(now - float(at), 1) if at is not None else None,
                "gateway": m.get("gateway"),
                "subscription": m.get("subscription"),
                "lag_bytes": lags.get(str(m.get("subscription"))),
            }
        )
    info["members"] = members
    return info


def _lags(cfg: Config, mask: Masker) -> tuple[dict[str, int], str | None]:
    """Bytes each subscriber is behind, from the primary's ``pg_stat_replication`` (a
    logical walsender's application_name is its subscription's name)."""
    if cfg.database is None:
        return {}, "no database: section in this host's config"
    import psycopg

    query = (
        "SELECT application_name, pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint "
        "FROM pg_stat_replication"
    )
    try:
        timeout = max(1, round(min(cfg.database.connect_timeout, 5)))
        with psycopg.connect(cfg.database.primary_dsn, connect_timeout=timeout) as conn:
            rows = conn.execute(query).fetchall()
    except psycopg.Error as exc:
        return {}, shorten(mask(f"primary database: {exc}"), 200)
    return {str(name): int(lag or 0) for name, lag in rows}, None


def _endpoint(client: Any, endpoint: str) -> dict[str, Any]:
    try:
        status = client.status(endpoint)
    except EtcdError as exc:
        return {"endpoint": endpoint, "ok": False, "error": str(exc)}
    member = status.get("header", {}).get("member_id")
    return {
        "endpoint": endpoint,
        "ok": True,
        "version": status.get("version"),
        "raft_leader": member is not None and member == status.get("leader"),
    }


def render(info: dict[str, Any]) -> str:
    leader = info.get("leader") or {}
    holder = leader.get("holder")
    left = leader.get("ttl_left")
    ttl = f"{left}s" if isinstance(left, int) and left > 0 else "expiring"
    head = f"Cluster: {info['cluster']} (leader key TTL {info['ttl']}s)"
    if info.get("error"):
        head += f"\n  etcd cannot be asked: {info['error']}"
    else:
        who = f"{holder} ({ttl} left on its lease)" if holder else "nobody (no leader key)"
        head += f"\n  leader: {who}"
    rows = [["Member", "Mode", "Role", "Priority", "Leader", "Heartbeat", "Gateway", "Lag"]]
    for m in info.get("members") or []:
        age = m.get("heartbeat_age")
        gateway = {True: "serving", False: "down", None: "?"}.get(m.get("gateway"), "?")
        rows.append(
            [
                str(m.get("name")),
                str(m.get("mode")),
                str(m.get("role")),
                str(m.get("priority")),
                f"* ({ttl})" if m.get("leader") else "",
                f"{age:g}s ago" if age is not None else "?",
                gateway,
                _lag(m),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    table = [line]
    for i, r in enumerate(rows):
        table.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            table.append(line)
    table.append(line)
    etcd = []
    for e in info.get("etcd") or []:
        if e.get("ok"):
            lead = ", raft leader" if e.get("raft_leader") else ""
            etcd.append(f"  {e['endpoint']}: etcd {e.get('version')}{lead}")
        else:
            etcd.append(f"  {e['endpoint']}: {e.get('error')}")
    lag_error = info.get("lag_error")
    notes = [f"replication lag not known: {lag_error}"] if lag_error else []
    return "\n".join([head, *table, *notes, "etcd:", *etcd])


def _lag(member: dict[str, Any]) -> str:
    if member.get("lag_bytes") is not None:
        return f"{member['lag_bytes']} B"
    if member.get("subscription"):
        return "not streaming"
    return "-"

"""`ocf doctor`: the database group (both sides reachable, wal_level, publication,
subscription, slot, apply errors, lag, origin), from replstatus.gather's facts.
"""

from __future__ import annotations

import time

from openclaw_failover.config.loader import DatabaseConfig
from openclaw_failover.monitor.replstatus import Facts, Side, Subscription, gather
from openclaw_failover.ops.doctor.base import DoctorContext, Sink
from openclaw_failover.syncback.db.pgmeta import parse_names

__all__ = ["check_database"]

LAG_WARN_BYTES = 64 * 1024 * 1024  # the standby is this far behind: warn
LAG_WARN_SECONDS = 600.0  # ... or has heard nothing for this long while behind
LAG_IDLE_BYTES = 1024 * 1024  # below this a quiet primary is idle, not a stalled standby
SETTLE_SECONDS = 8.0  # how long a restarting apply worker is waited for
SETTLE_POLL = 0.5
SYNCBACK_FIX = (
    "run 'ocf syncback' (merges what only the standby holds into the primary first, then "
    "repairs the subscription: new slot, standby made equal)"
)


def check_database(ctx: DoctorContext, out: Sink) -> None:
    db = ctx.cfg.database
    if db is None:
        out.skip("no database: section: rows are not synced back")
        return
    facts = settled(db, gather(db, db.connect_timeout))
    for side, key in ((facts.primary, "primary_dsn"), (facts.standby, "standby_dsn")):
        _reachable(out, side, key)
    if facts.primary.conn is not None and not facts.primary.error:
        _wal_level(out, facts)
    _publication(out, facts, db)
    if facts.standby.conn is None or facts.standby.error:
        out.skip("subscription, apply errors, lag and origin not checked: standby not readable")
        return
    if facts.sub is None:
        _no_subscription(out, facts, db)
        return
    _subscription(ctx, out, facts.sub, db.subscription)
    _slot(ctx, out, facts)
    _apply_errors(out, facts)
    _lag(ctx, out, facts)
    _origin(out, facts, db.subscription)


def settled(db: DatabaseConfig, facts: Facts) -> Facts:
    """Look again for a few seconds while an enabled subscription has no worker or an
    inactive slot and no apply error explains it: a worker restarting (after ALTER
    SUBSCRIPTION, a dropped connection) is not a fault."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while _restarting(facts) and time.monotonic() < deadline:
        time.sleep(SETTLE_POLL)
        again = gather(db, db.connect_timeout)
        if again.primary.error or again.standby.error:
            break
        facts = again
    return facts


def _restarting(f: Facts) -> bool:
    if f.sub is None or not f.sub.enabled or f.sub.errors or f.primary.conn is None:
        return False
    if f.primary.error or f.standby.error:
        return False
    return f.sub.worker_pid is None or (f.slot is not None and not f.slot.active)


def _reachable(out: Sink, side: Side, key: str) -> None:
    if side.conn is None:
        out.fail(
            f"cannot connect to the {side.name}'s database: {side.error}",
            f"check database.{key}, that PostgreSQL listens there and that the {side.name}'s "
            "pg_hba.conf lets this standby in",
        )
    elif side.error:
        out.fail(f"{side.name} database ({side.where}): {side.error}", f"check database.{key}")
    else:
        out.ok(f"{side.name} database reachable: PostgreSQL {side.version} at {side.where}")


def _wal_level(out: Sink, facts: Facts) -> None:
    if facts.wal_level == "logical":
        out.ok("wal_level is logical on the primary")
    else:
        out.fail(
            f"wal_level is {facts.wal_level or 'unknown'} on the primary",
            "ALTER SYSTEM SET wal_level = logical; restart PostgreSQL",
        )


def _publication(out: Sink, facts: Facts, db: DatabaseConfig) -> None:
    if facts.primary.conn is None or facts.primary.error or facts.sub is None:
        out.skip("publication not checked: needs the primary and the subscription")
        return
    names = facts.sub.publications
    missing = [p for p in names if p not in facts.publications]
    if missing:
        out.fail(
            f"publication {', '.join(missing)} (of subscription {db.subscription}) does not "
            "exist on the primary",
            f"on the primary: CREATE PUBLICATION {missing[0]} FOR ALL TABLES",
        )
        return
    if not facts.pub_tables:
        out.fail(
            f"publication {', '.join(names)} carries no tables",
            f"on the primary: ALTER PUBLICATION {names[0]} ADD TABLE <the memU tables>",
        )
        return
    expected = [f"{s}.{t}" for s, t in parse_names(db.tables)] or facts.sub.tables
    absent = [t for t in expected if t not in facts.pub_tables]
    unsubscribed = [t for t in facts.pub_tables if t not in facts.sub.tables]
    shown = f"publication {', '.join(names)} carries {len(facts.pub_tables)} tables"
    if absent:
        out.fail(
            f"{shown}, but not {', '.join(absent)}",
            f"on the primary: ALTER PUBLICATION {names[0]} ADD TABLE {', '.join(absent)}",
        )
    elif unsubscribed:
        out.warn(
            f"{shown}; the subscription does not know {', '.join(unsubscribed)} yet",
            f"on the standby: ALTER SUBSCRIPTION {db.subscription} REFRESH PUBLICATION",
        )
    else:
        out.ok(f"{shown} ({', '.join(facts.pub_tables)})")


def _no_subscription(out: Sink, facts: Facts, db: DatabaseConfig) -> None:
    pub = facts.publications[0] if len(facts.publications) == 1 else "<publication>"
    out.fail(
        f"subscription {db.subscription} does not exist on the standby",
        f"on the standby: CREATE SUBSCRIPTION {db.subscription} "
        f"CONNECTION '<primary conninfo>' PUBLICATION {pub}",
    )
    out.skip("slot, apply errors, lag and origin not checked: no subscription")


def _subscription(ctx: DoctorContext, out: Sink, sub: Subscription, name: str) -> None:
    if not sub.enabled and ctx.serving:
        out.warn(
            f"subscription {name} is disabled: on purpose, this standby serves "
            "(a half-alive primary must not stream into it)",
            "nothing to do: ocf re-enables it at give-back",
        )
    elif not sub.enabled:
        out.fail(
            f"subscription {name} is disabled: nothing replicates to the standby",
            SYNCBACK_FIX + f"; a plain ALTER SUBSCRIPTION {name} ENABLE may stall on rows "
            "the standby wrote",
        )
    elif sub.worker_pid is None:
        out.warn(
            f"subscription {name} is enabled but its apply worker is not running",
            "see the standby's PostgreSQL log for why; " + SYNCBACK_FIX,
        )
    else:
        out.ok(f"subscription {name} is enabled, apply worker pid {sub.worker_pid}")


def _slot(ctx: DoctorContext, out: Sink, facts: Facts) -> None:
    assert facts.sub is not None
    name = facts.sub.slot or "(none)"
    if facts.primary.conn is None or facts.primary.error:
        out.skip(f"replication slot {name} not checked: primary not readable")
    elif facts.slot is None:
        out.fail(f"replication slot {name} does not exist on the primary", SYNCBACK_FIX)
    elif facts.slot.wal_status == "lost":
        out.fail(
            f"replication slot {name} on the primary is invalidated (wal_status lost)",
            SYNCBACK_FIX,
        )
    elif facts.slot.active:
        out.ok(f"replication slot {name} is active on the primary")
    elif ctx.serving:
        out.warn(
            f"replication slot {name} is inactive while this standby serves: it holds WAL "
            "on the primary until give-back",
            "nothing to do: the give-back resumes replication and drops old slots",
        )
    else:
        out.fail(f"replication slot {name} on the primary is not active", SYNCBACK_FIX)


def _apply_errors(out: Sink, facts: Facts) -> None:
    assert facts.sub is not None
    if facts.sub.errors is None:
        out.skip(f"apply errors not counted before PostgreSQL 15 (standby {facts.standby.version})")
    elif facts.sub.errors:
        out.fail(
            f"{facts.sub.errors} apply/sync errors on the subscription (pg_stat_subscription_stats)",
            "the standby's PostgreSQL log names the conflicting row; "
            + SYNCBACK_FIX
            + " (it also resets the counters)",
        )
    else:
        out.ok("no apply errors (pg_stat_subscription_stats)")


def _lag(ctx: DoctorContext, out: Sink, facts: Facts) -> None:
    sub, slot = facts.sub, facts.slot
    assert sub is not None
    if ctx.serving and not sub.enabled:
        out.skip("replication lag not measured: the standby does not apply while it serves")
        return
    if slot is None or slot.lag_bytes is None:
        out.skip("replication lag not measured: no slot position on the primary")
        return
    seconds = f"{sub.seconds:.1f}s" if sub.seconds is not None else "unknown"
    text = f"replication lag {_size(slot.lag_bytes)}, primary last heard {seconds} ago"
    stalled = sub.seconds is not None and sub.seconds > LAG_WARN_SECONDS
    if slot.lag_bytes > LAG_WARN_BYTES or (stalled and slot.lag_bytes > LAG_IDLE_BYTES):
        out.warn(
            text + ": a takeover now would miss what the standby has not applied",
            "see the apply errors above and the standby's PostgreSQL log",
        )
    else:
        out.ok(text)


def _origin(out: Sink, facts: Facts, name: str) -> None:
    assert facts.sub is not None
    majors = (facts.primary.major, facts.standby.major)
    if min(majors) < 16:
        out.skip(
            f"origin = none needs PostgreSQL 16+ on both (primary {facts.primary.version or '?'}, "
            f"standby {facts.standby.version})"
        )
    elif facts.sub.origin == "none":
        out.ok(f"subscription {name} has origin = none")
    else:
        out.warn(
            f"subscription {name} has origin = {facts.sub.origin}: ocf's sync-back does not need "
            "origin = none, but it keeps changes from looping back if anyone writes on the "
            "standby while replication runs",
            f"on the standby: ALTER SUBSCRIPTION {name} SET (origin = none)",
        )


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"

"""Make the standby equal to the primary and point its subscription past the merge.

Why not just re-enable the subscription?  The rows the merge wrote on the
primary would stream back to a standby that already has them
(``conflict=insert_exists``) and replication would stall; on PostgreSQL 15 a
subscription cannot filter them out (no ``origin = none``).  So, on any
version mix:

1. the subscription is disabled (it already is while the standby serves);
2. a new logical slot is created on the primary over a replication connection,
   exporting the snapshot of its consistent point;
3. in ONE transaction on the standby, the tables are made equal to that
   snapshot (only the rows that differ travel, see rowdiff), with
   ``session_replication_role = replica`` as the apply worker itself does;
4. the subscription is pointed at the new slot, its origin advanced to the
   slot's consistent point, the old slot dropped, and it is enabled again.

Every change committed after the snapshot streams through the new slot; every
change before it (the merge included) is already in the standby.  A stalled
subscription (apply errors, disabled, inactive slot) is repaired the same way.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import pq, sql

from openclaw_failover.merge import copy_rows, temp_name
from openclaw_failover.pgmeta import Table
from openclaw_failover.rowdiff import TableDiff, diff_tables

Progress = Callable[[str], None]
WAIT = 15.0  # seconds to wait for the apply worker to stop / start


class ReconcileError(Exception):
    pass


@dataclass
class Subscription:
    oid: int
    name: str
    enabled: bool
    slot: str
    worker_pid: int | None
    apply_errors: int | None  # None before PostgreSQL 15


@dataclass
class ReconcileReport:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    bytes: int = 0
    slot: str = ""
    lsn: str = ""
    apply_errors_before: int | None = None
    notes: list[str] = field(default_factory=list)


def subscription(standby: psycopg.Connection[Any], name: str) -> Subscription:
    with standby.cursor() as cur:
        cur.execute(
            "SELECT s.oid, s.subenabled, coalesce(s.subslotname, ''), "
            "(SELECT pid FROM pg_stat_subscription w WHERE w.subid = s.oid AND w.relid IS NULL "
            " LIMIT 1) FROM pg_subscription s WHERE s.subname = %s",
            [name],
        )
        row = cur.fetchone()
        if row is None:
            raise ReconcileError(f"subscription {name!r} does not exist on the standby")
        errors = None
        if standby.info.server_version >= 150000:
            cur.execute(
                "SELECT apply_error_count + sync_error_count FROM pg_stat_subscription_stats "
                "WHERE subid = %s",
                [row[0]],
            )
            found = cur.fetchone()
            errors = int(found[0]) if found else 0
    return Subscription(int(row[0]), name, bool(row[1]), str(row[2]), row[3], errors)


def disable(standby: psycopg.Connection[Any], name: str) -> None:
    """Disable the subscription and wait until its apply worker is gone (autocommit conn)."""
    standby.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sql.Identifier(name)))
    end = time.monotonic() + WAIT
    while subscription(standby, name).worker_pid is not None:
        if time.monotonic() > end:
            raise ReconcileError(f"the apply worker of {name} did not stop within {WAIT:g}s")
        time.sleep(0.1)


def _slot_name(sub: str) -> str:
    base = re.sub(r"[^a-z0-9_]", "_", sub.lower())[:40]
    return f"ocf_{base}_{int(time.time() * 1000) % 10**12}"


def create_slot(primary_dsn: str, sub: str, connect_timeout: float) -> tuple[Any, str, str, str]:
    """(replication connection, slot, consistent LSN, exported snapshot)."""
    repl = psycopg.connect(
        primary_dsn, replication="database", autocommit=True, connect_timeout=int(connect_timeout)
    )
    slot = _slot_name(sub)
    command = f"CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput (SNAPSHOT 'export')"
    res = repl.pgconn.exec_(command.encode())
    if res.status != pq.ExecStatus.TUPLES_OK:
        message = (res.error_message or b"").decode(errors="replace").strip()
        repl.close()
        raise ReconcileError(f"cannot create replication slot on the primary: {message}")
    lsn, snapshot = (res.get_value(0, i) or b"" for i in (1, 2))
    return repl, slot, lsn.decode(), snapshot.decode()


def _apply(
    snap: psycopg.Connection[Any],
    standby: psycopg.Connection[Any],
    diffs: list[TableDiff],
    report: ReconcileReport,
) -> None:
    """Make the standby's tables equal to the snapshot (inside the standby's transaction)."""
    standby.execute("SET LOCAL session_replication_role = replica")
    for d in reversed(diffs):  # children first
        gone = sorted(d.only_b | d.differ)
        if gone:
            t = d.table
            with standby.cursor() as cur:
                cur.execute(
                    sql.SQL("DELETE FROM {} AS r WHERE {} = ANY(%s)").format(
                        t.ident, t.key_text("r")
                    ),
                    [gone],
                )
            report.deleted += len(d.only_b)
    for d in diffs:  # parents first
        wanted = sorted(d.only_a | d.differ)
        if not wanted:
            continue
        t = d.table
        temp = temp_name(t, "ocf_rc")
        report.bytes += copy_rows(snap, standby, t, wanted, temp)
        with standby.cursor() as cur:
            cur.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                    t.ident, t.cols(), t.cols(), temp
                )
            )
        report.inserted += len(d.only_a)
        report.updated += len(d.differ)


def make_equal(
    primary_dsn: str,
    standby: psycopg.Connection[Any],
    tables: list[Table],
    sub: Subscription,
    *,
    connect_timeout: float,
    progress: Progress | None = None,
) -> ReconcileReport:
    """Steps 2-3: new slot, standby equal to its snapshot (commits on ``standby``)."""
    report = ReconcileReport(apply_errors_before=sub.apply_errors)
    repl, report.slot, report.lsn, snapshot = create_slot(primary_dsn, sub.name, connect_timeout)
    if progress:
        progress(
            f"reconciling the standby with the primary as of {report.lsn} (slot {report.slot})"
        )
    try:
        with psycopg.connect(primary_dsn, connect_timeout=int(connect_timeout)) as snap:
            snap.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            snap.read_only = True
            snap.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            diffs = diff_tables(snap, standby, tables, progress)
            _apply(snap, standby, diffs, report)
            report.bytes += sum(d.bytes for d in diffs)
            standby.commit()
            snap.rollback()
    except BaseException:
        standby.rollback()
        _drop_slot_quietly(primary_dsn, report.slot, connect_timeout)
        raise
    finally:
        repl.close()
    return report


def _drop_slot_quietly(primary_dsn: str, slot: str, connect_timeout: float) -> None:
    try:
        with psycopg.connect(
            primary_dsn, autocommit=True, connect_timeout=int(connect_timeout)
        ) as c:
            c.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s AND NOT active",
                [slot],
            )
    except psycopg.Error:
        pass  # cleaned up by the next sync-back (ocf_ slots not in use)


def repoint(
    primary: psycopg.Connection[Any],
    standby: psycopg.Connection[Any],
    sub: Subscription,
    report: ReconcileReport,
) -> None:
    """Step 4 (both autocommit): the subscription follows the new slot from its snapshot on."""
    name = sql.Identifier(sub.name)
    standby.execute(
        sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = {})").format(name, sql.Literal(report.slot))
    )
    standby.execute(
        "SELECT pg_replication_origin_advance(%s, %s::pg_lsn)", [f"pg_{sub.oid}", report.lsn]
    )
    if standby.info.server_version >= 150000:
        standby.execute("SELECT pg_stat_reset_subscription_stats(%s)", [sub.oid])
    standby.execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(name))
    report.notes += drop_stale_slots(primary, sub, keep=report.slot)
    end = time.monotonic() + WAIT
    while subscription(standby, sub.name).worker_pid is None:
        if time.monotonic() > end:
            report.notes.append(f"the apply worker of {sub.name} has not started yet")
            break
        time.sleep(0.1)


def drop_stale_slots(primary: psycopg.Connection[Any], sub: Subscription, keep: str) -> list[str]:
    """Drop the subscription's previous slot and any slot an interrupted run left behind."""
    prefix = _slot_name(sub.name).rsplit("_", 1)[0] + "_"
    notes = []
    end = time.monotonic() + WAIT
    while True:
        rows = primary.execute(
            "SELECT slot_name, active FROM pg_replication_slots WHERE slot_name <> %s "
            "AND (slot_name = %s OR starts_with(slot_name, %s))",
            [keep, sub.slot, prefix],
        ).fetchall()
        busy = [str(n) for n, active in rows if active]
        for name, active in rows:
            if not active:
                primary.execute("SELECT pg_drop_replication_slot(%s)", [name])
                notes.append(f"dropped old replication slot {name}")
        if not busy or time.monotonic() > end:
            notes += [f"old replication slot {n} still in use, not dropped" for n in busy]
            return notes
        time.sleep(0.2)

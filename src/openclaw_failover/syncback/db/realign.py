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

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq, sql

from openclaw_failover.local import faults
from openclaw_failover.syncback.db.merge import copy_rows, temp_name
from openclaw_failover.syncback.db.pgmeta import Table, connect
from openclaw_failover.syncback.db.rowdiff import TableDiff, diff_recent, diff_tables
from openclaw_failover.syncback.quarantine import Writer

Progress = Callable[[str], None]
# Raises ReconcileError when the standby holds rows it must not lose (table, keys
# only the standby has): rows written after the merge, which it never saw.
Guard = Callable[[Table, set[str]], None]
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
    sysid: str = "0"  # the standby cluster's system identifier: names our slots

    @property
    def slot_prefix(self) -> str:
        """Slots ocf creates for this subscription of this standby, and only those."""
        return f"ocf_{self.sysid}_{self.oid}_"

    @property
    def healthy(self) -> bool:
        return self.enabled and self.worker_pid is not None and not self.apply_errors


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
        cur.execute("SELECT system_identifier::text FROM pg_control_system()")
        sysid = cur.fetchone()
    return Subscription(
        int(row[0]), name, bool(row[1]), str(row[2]), row[3], errors, str(sysid[0] if sysid else 0)
    )


MAX_SINCE_AGE = 50_000_000  # older split points: compare whole tables (freezing may hide xmin)


def split_point(primary: psycopg.Connection[Any], slot: str) -> str | None:
    """The primary's side of the split: its old slot's catalog_xmin.

    The slot stopped advancing when the standby stopped applying; every
    transaction that committed on the primary after that has an xid at least
    this one (it was running at, or started after, the slot's restart point).
    """
    row = primary.execute(
        "SELECT catalog_xmin::text, age(catalog_xmin) FROM pg_replication_slots "
        "WHERE slot_name = %s AND catalog_xmin IS NOT NULL",
        [slot],
    ).fetchone()
    if row is None or int(row[1]) > MAX_SINCE_AGE:
        return None
    return str(row[0])


def disable(standby: psycopg.Connection[Any], name: str) -> None:
    """Disable the subscription and wait until its apply worker is gone (autocommit conn)."""
    standby.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sql.Identifier(name)))
    end = time.monotonic() + WAIT
    while subscription(standby, name).worker_pid is not None:
        if time.monotonic() > end:
            raise ReconcileError(f"the apply worker of {name} did not stop within {WAIT:g}s")
        time.sleep(0.1)


def create_slot(
    primary_dsn: str, sub: Subscription, connect_timeout: float
) -> tuple[Any, str, str, str]:
    """(replication connection, slot, consistent LSN, exported snapshot)."""
    repl = connect(primary_dsn, connect_timeout, replication="database", autocommit=True)
    slot = f"{sub.slot_prefix}{int(time.time() * 1000) % 10**12}"
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
    guard: Guard | None,
    quarantine: Writer,
) -> None:
    """Make the standby's tables equal to the snapshot (inside the standby's transaction).

    Every standby row deleted or replaced is kept in quarantine first."""
    standby.execute("SET LOCAL session_replication_role = replica")
    if guard is not None:
        for d in diffs:
            guard(d.table, d.only_b)
    for d in reversed(diffs):  # children first
        gone = sorted(d.only_b | d.differ)
        if gone:
            t = d.table
            quarantine.save(
                standby, "standby", t, d.only_b, "not on the primary (standby made equal)"
            )
            quarantine.save(standby, "standby", t, d.differ, "replaced by the primary's version")
            with standby.cursor() as cur:
                cur.execute(
                    sql.SQL("DELETE FROM {} AS r WHERE {}").format(t.ident, t.key_in("r", gone))
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
    guard: Guard | None = None,
    since: tuple[str, str] | None = None,
    quarantine: Writer,
    before_commit: Callable[[ReconcileReport, int], None] | None = None,
) -> ReconcileReport:
    """Steps 2-3: new slot, standby equal to its snapshot (commits on ``standby``).

    ``before_commit(report, xid)`` runs just before the standby's commit, with the
    standby transaction's id: a caller records it to tell, after a kill, whether
    that commit happened (``txid_status``)."""
    report = ReconcileReport(apply_errors_before=sub.apply_errors)
    repl, report.slot, report.lsn, snapshot = create_slot(primary_dsn, sub, connect_timeout)
    faults.point("reconcile:after-slot")
    try:
        if progress:
            progress(f"reconciling the standby with the primary as of {report.lsn}")
        with connect(primary_dsn, connect_timeout) as snap:
            snap.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            snap.read_only = True
            snap.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            if since is None:
                diffs = diff_tables(snap, standby, tables, progress)
            else:  # rows changed since the split on either side, and keys on one side only
                diffs = [diff_recent(snap, standby, t, *since) for t in tables]
            _apply(snap, standby, diffs, report, guard, quarantine)
            report.bytes += sum(d.bytes for d in diffs)
            row = standby.execute("SELECT txid_current()").fetchone()
            if before_commit is not None and row is not None:
                before_commit(report, int(row[0]))
            faults.point("reconcile:before-commit")
            standby.commit()
            faults.point("reconcile:after-commit")
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
        with connect(primary_dsn, connect_timeout, autocommit=True) as c:
            c.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s AND NOT active",
                [slot],
            )
    except psycopg.Error:
        pass  # our prefix: dropped by the next sync-back


class PendingSlots:
    """Slots to drop on the primary, kept in a file so no failure can leak one for good."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        return [str(x) for x in data] if isinstance(data, list) else []

    def save(self, names: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(set(names))))
        os.replace(tmp, self.path)

    def add(self, name: str) -> None:
        self.save([*self.load(), name])


def repoint(
    primary: psycopg.Connection[Any],
    standby: psycopg.Connection[Any],
    sub: Subscription,
    report: ReconcileReport,
    pending: PendingSlots,
) -> None:
    """Step 4 (both autocommit): the subscription follows the new slot from its snapshot on.

    Safe to run again after a kill at any point: a subscription already on the
    new slot keeps its origin when it is enabled (it may have applied past it)."""
    name = sql.Identifier(sub.name)
    if sub.slot and sub.slot != report.slot:
        pending.add(sub.slot)  # recorded before it stops being the subscription's slot
        standby.execute(
            sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = {})").format(
                name, sql.Literal(report.slot)
            )
        )
    if not subscription(standby, sub.name).enabled:
        standby.execute(
            "SELECT pg_replication_origin_advance(%s, %s::pg_lsn)", [f"pg_{sub.oid}", report.lsn]
        )
        if standby.info.server_version >= 150000:
            standby.execute("SELECT pg_stat_reset_subscription_stats(%s)", [sub.oid])
        faults.point("repoint:before-enable")
        standby.execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(name))
        faults.point("repoint:after-enable")
    report.notes += drop_stale_slots(primary, sub, keep=report.slot, pending=pending)
    end = time.monotonic() + WAIT
    while subscription(standby, sub.name).worker_pid is None:
        if time.monotonic() > end:
            report.notes.append(f"the apply worker of {sub.name} has not started yet")
            break
        time.sleep(0.1)


def drop_stale_slots(
    primary: psycopg.Connection[Any], sub: Subscription, keep: str, pending: PendingSlots
) -> list[str]:
    """Drop recorded slots and our own leftovers (never the subscription's current slot)."""
    recorded = [n for n in pending.load() if n != keep]
    notes: list[str] = []
    busy: list[str] = []
    end = time.monotonic() + WAIT
    while True:
        rows = primary.execute(
            "SELECT slot_name, active FROM pg_replication_slots WHERE slot_name <> %s "
            "AND (slot_name = ANY(%s) OR starts_with(slot_name, %s))",
            [keep, recorded, sub.slot_prefix],
        ).fetchall()
        busy = [str(n) for n, active in rows if active]
        for slot, active in rows:
            if not active:
                primary.execute("SELECT pg_drop_replication_slot(%s)", [slot])
                notes.append(f"dropped old replication slot {slot}")
        if not busy or time.monotonic() > end:
            break
        time.sleep(0.2)
    pending.save(busy)  # the others are gone (dropped now or before)
    return notes + [f"old replication slot {n} still in use, not dropped yet" for n in busy]

"""Replication of the memory database at a glance: read once, for `ocf doctor` and `ocf status`.

:func:`gather` connects to both sides at the same time (every statement bounded
by ``statement_timeout``), tolerates a side that is down, reads the
subscription, its worker, its error counters, the publication, the slot and
the lag, and closes.  :func:`replication_health` is the never-raising summary
`ocf status` shows; doctor_db.py turns the same facts into checks.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from openclaw_failover.config.loader import Config, DatabaseConfig
from openclaw_failover.config.secrets import Masker, describe

STATEMENT_TIMEOUT_MS = 5000


@dataclass
class Side:
    name: str  # "primary" | "standby"
    conn: psycopg.Connection[Any] | None = None
    error: str = ""  # cannot connect, or a query failed
    version: str = ""
    major: int = 0
    where: str = ""


@dataclass
class Subscription:
    oid: int
    enabled: bool
    slot: str
    publications: list[str]
    origin: str | None  # PostgreSQL 16+
    worker_pid: int | None = None
    seconds: float | None = None  # since the primary was last heard from
    errors: int | None = None  # apply + sync errors (PostgreSQL 15+)
    tables: list[str] = field(default_factory=list)  # schema.table in pg_subscription_rel


@dataclass
class Slot:
    active: bool
    wal_status: str | None
    lag_bytes: int | None


@dataclass
class Facts:
    primary: Side
    standby: Side
    sub: Subscription | None = None
    wal_level: str = ""
    publications: list[str] = field(default_factory=list)  # every one on the primary
    pub_tables: list[str] = field(default_factory=list)  # schema.table of the sub's ones
    slot: Slot | None = None  # None: no such slot (when the primary answered)


# --------------------------------------------------------------------------- facts


def gather(db: DatabaseConfig, timeout: float) -> Facts:
    """Connect to both sides at once, read what the checks need, close; never raises."""
    facts = Facts(Side("primary"), Side("standby"))
    threads = [
        threading.Thread(target=_connect, args=(side, dsn, timeout), daemon=True)
        for side, dsn in ((facts.primary, db.primary_dsn), (facts.standby, db.standby_dsn))
    ]
    for t in threads:
        t.start()
    for t, side in zip(threads, (facts.primary, facts.standby), strict=True):
        t.join(timeout + 5)
        if t.is_alive():
            side.error = f"no answer within {timeout + 5:g}s"
    try:
        _read(facts.standby, lambda conn: _read_standby(facts, conn, db.subscription))
        _read(facts.primary, lambda conn: _read_primary(facts, conn, db.subscription))
    finally:
        for side in (facts.primary, facts.standby):
            if side.conn is not None:
                with contextlib.suppress(Exception):
                    side.conn.close()
    return facts


def _connect(side: Side, dsn: str, timeout: float) -> None:
    try:
        conn = psycopg.connect(
            dsn,
            connect_timeout=max(2, int(timeout)),
            autocommit=True,
            application_name="ocf-doctor",
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        )
    except Exception as exc:
        side.error = describe(exc)
        return
    side.conn = conn
    number = conn.info.server_version
    side.major = number // 10000
    side.version = f"{side.major}.{number % 10000}"
    side.where = f"{conn.info.host}:{conn.info.port}/{conn.info.dbname}"


def _read(side: Side, reader: Callable[[psycopg.Connection[Any]], None]) -> None:
    if side.conn is None:
        return
    try:
        reader(side.conn)
    except Exception as exc:
        side.error = f"query failed: {describe(exc)}"


def _read_standby(facts: Facts, conn: psycopg.Connection[Any], name: str) -> None:
    major = facts.standby.major
    origin = "s.suborigin" if major >= 16 else "NULL"
    row = conn.execute(
        f"SELECT s.oid, s.subenabled, coalesce(s.subslotname, ''), s.subpublications, {origin} "  # fixed SQL, values bound  # nosec B608
        "FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid "
        "WHERE s.subname = %s AND d.datname = current_database()",
        [name],
    ).fetchone()
    if row is None:
        return
    sub = Subscription(int(row[0]), bool(row[1]), str(row[2]), list(row[3]), row[4])
    leader = " AND leader_pid IS NULL" if major >= 16 else ""
    worker = conn.execute(
        "SELECT pid, extract(epoch FROM now() - coalesce(latest_end_time, "  # fixed SQL, values bound  # nosec B608
        "last_msg_receipt_time))::float8 FROM pg_stat_subscription "
        f"WHERE subid = %s AND relid IS NULL{leader} ORDER BY pid NULLS LAST LIMIT 1",
        [sub.oid],
    ).fetchone()
    if worker is not None:
        sub.worker_pid, sub.seconds = worker[0], worker[1]
    if major >= 15:
        stats = conn.execute(
            "SELECT apply_error_count + sync_error_count FROM pg_stat_subscription_stats "
            "WHERE subid = %s",
            [sub.oid],
        ).fetchone()
        sub.errors = int(stats[0]) if stats else 0
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_subscription_rel r "
        "JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE r.srsubid = %s ORDER BY 1",
        [sub.oid],
    ).fetchall()
    sub.tables = [str(r[0]) for r in rows]
    facts.sub = sub


def _read_primary(facts: Facts, conn: psycopg.Connection[Any], name: str) -> None:
    level = conn.execute("SHOW wal_level").fetchone()
    facts.wal_level = str(level[0]) if level else ""
    pubs = conn.execute("SELECT pubname FROM pg_publication ORDER BY 1").fetchall()
    facts.publications = [str(p[0]) for p in pubs]
    wanted = facts.sub.publications if facts.sub else []
    tables = conn.execute(
        "SELECT DISTINCT schemaname || '.' || tablename FROM pg_publication_tables "
        "WHERE pubname = ANY(%s) ORDER BY 1",
        [wanted],
    ).fetchall()
    facts.pub_tables = [str(t[0]) for t in tables]
    slot_name = facts.sub.slot if facts.sub else name
    row = conn.execute(
        "SELECT active, wal_status, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
        "FROM pg_replication_slots WHERE slot_name = %s",
        [slot_name],
    ).fetchone()
    if row is not None:
        facts.slot = Slot(bool(row[0]), row[1], None if row[2] is None else int(row[2]))


# --------------------------------------------------------------------------- status


def replication_health(cfg: Config, timeout: float = 3.0) -> dict[str, Any]:
    """Replication at a glance for `ocf status`; fast (both sides at once) and never raises.

    Keys: subscription, enabled, worker_running, slot, slot_active,
    apply_errors (None before PostgreSQL 15), lag_bytes, lag_seconds, origin
    (None before 16), primary_version, standby_version; and "error" (masked)
    when something could not be read, alone when nothing could.
    """
    db = cfg.database
    if db is None:
        return {"error": "no database: section in the config"}
    mask = cfg.masker
    try:
        facts = gather(db, min(timeout, db.connect_timeout))
        return _health(facts, db, mask)
    except Exception as exc:  # belt and braces: status must always render
        return {"error": mask(f"{type(exc).__name__}: {exc}")}


def _health(facts: Facts, db: DatabaseConfig, mask: Masker) -> dict[str, Any]:
    p, s, sub, slot = facts.primary, facts.standby, facts.sub, facts.slot
    problems = [f"{side.name} database: {side.error}" for side in (s, p) if side.error]
    if s.conn is not None and not s.error and sub is None:
        problems.append(f"subscription {db.subscription} does not exist on the standby")
    if problems and s.error and p.error:
        return {"error": mask("; ".join(problems))}
    out: dict[str, Any] = {
        "subscription": db.subscription,
        "enabled": sub.enabled if sub else None,
        "worker_running": sub.worker_pid is not None if sub else None,
        "slot": sub.slot if sub else None,
        "slot_active": slot.active if slot else None,
        "apply_errors": sub.errors if sub else None,
        "lag_bytes": slot.lag_bytes if slot else None,
        "lag_seconds": round(sub.seconds, 1) if sub and sub.seconds is not None else None,
        "origin": sub.origin if sub else None,
        "primary_version": p.version or None,
        "standby_version": s.version or None,
    }
    if problems:
        out["error"] = mask("; ".join(problems))
    return out

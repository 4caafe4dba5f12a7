"""Sync-back: everything the standby wrote reaches the primary, exactly once.

Used by the give-back step of `ocf check` and by `ocf syncback`.  Rows first
(merge.py: one transaction on the primary; reconcile.py: the standby made
equal to the primary and its subscription pointed past the merge), then
workspace files (filesync.py).  Nothing here raises for an expected failure:
the report says what went wrong, with secrets masked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from openclaw_failover.config import Config, DatabaseConfig
from openclaw_failover.runner import Masker

if TYPE_CHECKING:
    import psycopg

    from openclaw_failover.filesync import FileSyncReport
    from openclaw_failover.merge import TableMerge
    from openclaw_failover.reconcile import ReconcileReport

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
NOT_CONFIGURED = "sync-back skipped: no database: or files: section in the config"


@dataclass
class SyncReport:
    dry_run: bool = False
    skipped: str = ""
    tables: list[TableMerge] = field(default_factory=list)
    reconcile: ReconcileReport | None = None
    reconcile_skipped: str = ""
    files: FileSyncReport | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and (self.files is None or self.files.ok)

    def rows_line(self) -> str:
        if not self.tables:
            return ""
        total = {k: sum(getattr(t, k) for t in self.tables) for k in ("inserted", "updated")}
        merged = sum(len(t.merged) for t in self.tables)
        verb = "would sync" if self.dry_run else "synced back"
        line = f"rows {verb}: {total['inserted']} inserted, {total['updated']} updated"
        if merged:
            line += f", {merged} merged by unique key"
        if self.reconcile:
            line += (
                f"; standby reconciled ({self.reconcile.inserted + self.reconcile.updated} rows)"
            )
        return line

    def summary(self) -> str:
        """One line for notices and logs."""
        if self.skipped:
            return self.skipped
        parts = [p for p in (self.rows_line(), self.files.summary() if self.files else "") if p]
        if self.error:
            parts.append(f"FAILED: {self.error}")
        return "; ".join(parts) or "sync-back: nothing to do"

    def lines(self) -> list[str]:
        """The per-table report of `ocf syncback`."""
        out = [t.line() for t in self.tables]
        for t in self.tables:
            out += [f"  {m}" for m in t.merged] + [f"  {d}" for d in t.differences]
        if self.reconcile:
            r = self.reconcile
            out.append(
                f"standby: {r.inserted} inserted, {r.updated} updated, {r.deleted} deleted; "
                f"subscription now on slot {r.slot} from {r.lsn}"
            )
            out += [f"  {n}" for n in r.notes]
        if self.reconcile_skipped:
            out.append(f"standby: {self.reconcile_skipped}")
        if self.files:
            out += self.files.lines() if hasattr(self.files, "lines") else [self.files.summary()]
        out.append(self.summary())
        return out

    @property
    def bytes_moved(self) -> int:
        """Checksums, keys and rows that crossed the network (both steps)."""
        return sum(t.bytes for t in self.tables) + (self.reconcile.bytes if self.reconcile else 0)

    @property
    def rows_moved(self) -> int:
        rows = sum(t.inserted + t.updated for t in self.tables)
        if self.reconcile:
            rows += self.reconcile.inserted + self.reconcile.updated
        return rows

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["bytes_moved"] = self.bytes_moved
        data["rows_moved"] = self.rows_moved
        data["ok"] = self.ok
        data["summary"] = self.summary()
        return data


def sync_back(
    cfg: Config,
    *,
    mask: Masker,
    dry_run: bool = False,
    serving: bool = False,
    progress: Progress | None = None,
) -> SyncReport:
    """Rows then files.  ``serving``: the standby still serves (no reconcile yet)."""
    if cfg.database is None and not cfg.files:
        return SyncReport(dry_run=dry_run, skipped=NOT_CONFIGURED)
    report = SyncReport(dry_run=dry_run)
    if cfg.database is not None:
        try:
            _sync_rows(cfg.database, report, dry_run=dry_run, serving=serving, progress=progress)
        except Exception as exc:  # psycopg.Error, SchemaMismatch, ReconcileError, OSError
            report.error = mask(_one_line(exc))
            log.debug("sync-back of rows failed", exc_info=True)
            return report
    if cfg.files:
        from openclaw_failover.filesync import sync_files

        report.files = sync_files(cfg, mask=mask, dry_run=dry_run)
    return report


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _connect(dsn: str, db: DatabaseConfig, **kw: Any) -> psycopg.Connection[Any]:
    import psycopg

    conn = psycopg.connect(
        dsn, connect_timeout=int(db.connect_timeout), application_name="ocf-syncback", **kw
    )
    conn.execute("SET lock_timeout = '30s'")
    if not kw.get("autocommit"):
        conn.commit()
    return conn


def _sync_rows(
    db: DatabaseConfig,
    report: SyncReport,
    *,
    dry_run: bool,
    serving: bool,
    progress: Progress | None,
) -> None:
    import psycopg

    from openclaw_failover import pgmeta, reconcile
    from openclaw_failover.merge import merge
    from openclaw_failover.rowdiff import diff_tables

    with _connect(db.primary_dsn, db) as p, _connect(db.standby_dsn, db) as s:
        names = pgmeta.parse_names(db.tables) or pgmeta.publication_tables(s, p, db.subscription)
        versions = pgmeta.alembic_versions(p), pgmeta.alembic_versions(s)
        if versions[0] != versions[1]:
            raise pgmeta.SchemaMismatch(
                f"schema revisions differ (alembic_version: primary {', '.join(versions[0]) or '-'}, "
                f"standby {', '.join(versions[1]) or '-'}); nothing written"
            )
        tables = pgmeta.load_tables(p, s, names)
        sub = reconcile.subscription(s, db.subscription)
        p.commit()
        s.commit()
        s.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        diffs = diff_tables(s, p, tables, progress)
        report.tables = merge(p, s, diffs, progress)
        if dry_run:
            p.rollback()
            s.rollback()
            report.reconcile_skipped = "dry run: would then be made equal to the primary"
            return
        p.commit()
        s.rollback()
        s.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        if serving:
            report.reconcile_skipped = (
                "still serving: the subscription stays disabled until give-back"
            )
            return
        wrote = any(m.inserted or m.updated or m.merged for m in report.tables)
        if not wrote and sub.enabled and sub.worker_pid and not sub.apply_errors:
            report.reconcile_skipped = "nothing merged and the subscription is healthy"
            return
        if sub.enabled:
            s.autocommit = True
            reconcile.disable(s, db.subscription)
            s.autocommit = False
        report.reconcile = reconcile.make_equal(
            db.primary_dsn, s, tables, sub, connect_timeout=db.connect_timeout, progress=progress
        )
        p.autocommit = s.autocommit = True
        reconcile.repoint(p, s, sub, report.reconcile)


def disable_subscription(cfg: Config, mask: Masker) -> str:
    """The takeover step: the standby stops applying the primary's changes.  One line."""
    db = cfg.database
    if db is None:
        return ""
    from openclaw_failover import reconcile

    try:
        with _connect(db.standby_dsn, db, autocommit=True) as s:
            sub = reconcile.subscription(s, db.subscription)
            if not sub.enabled:
                return f"subscription {db.subscription} already disabled"
            reconcile.disable(s, db.subscription)
            return f"disabled subscription {db.subscription}"
    except Exception as exc:
        return mask(f"could not disable subscription {db.subscription}: {_one_line(exc)}")

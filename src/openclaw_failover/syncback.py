"""Sync-back: everything the standby wrote reaches the primary, exactly once.

Used by the give-back step of `ocf check` and by `ocf syncback`.  Rows first
(merge.py: one transaction on the primary; reconcile.py: the standby made
equal to the primary and its subscription pointed past the merge), then
workspace files (filesync.py).  Nothing here raises for an expected failure:
the report says what went wrong, with secrets masked.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openclaw_failover.config import Config
from openclaw_failover.runner import Masker, shorten

if TYPE_CHECKING:
    from openclaw_failover.filesync import FileSyncReport
    from openclaw_failover.merge import TableMerge
    from openclaw_failover.reconcile import ReconcileReport

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
NOT_CONFIGURED = "sync-back skipped: no database: or files: section in the config"
BASELINE_FILE = "split-baseline.json"  # the standby's xid when it stopped applying
PENDING_SLOTS_FILE = "slots-to-drop.json"


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
        merged = len({(t.table, k) for t in self.tables for k in t.merged_keys})
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

    def absorb(self, earlier: SyncReport) -> SyncReport:
        """Count an earlier pass of the same give-back (the merge while still serving)."""
        self.tables = earlier.tables + self.tables
        if earlier.files and self.files:
            self.files.copied = earlier.files.copied + self.files.copied
            self.files.conflicts = earlier.files.conflicts + self.files.conflicts
        elif earlier.files:
            self.files = earlier.files
        return self

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
    split: bool = True,
    progress: Progress | None = None,
) -> SyncReport:
    """Rows then files.

    ``serving``: the standby still serves: merge into the primary only, no
    reconcile.  ``split``: the standby may have written since it took over
    (False: it never served, so there is nothing to merge: a repair only makes
    the standby equal to the primary and its subscription healthy).
    """
    if cfg.database is None and not cfg.files:
        return SyncReport(dry_run=dry_run, skipped=NOT_CONFIGURED)
    report = SyncReport(dry_run=dry_run)
    if cfg.database is not None:
        rows = _Rows(cfg, report, dry_run=dry_run, serving=serving, split=split, progress=progress)
        try:
            rows.run()
        except Exception as exc:  # psycopg.Error, SchemaMismatch, ReconcileError, OSError
            report.error = _one_line(exc, mask)
            log.debug("sync-back of rows failed", exc_info=True)
            return report
    if cfg.files and split:
        from openclaw_failover.filesync import sync_files

        report.files = sync_files(cfg, mask=mask, dry_run=dry_run)
    return report


def _one_line(exc: BaseException, mask: Masker) -> str:
    """The error on one line: masked first, then shortened (a cut secret is not found)."""
    return shorten(mask(str(exc) or type(exc).__name__), 300)


def read_baseline(state_dir: Path) -> int | None:
    try:
        return int(json.loads((state_dir / BASELINE_FILE).read_text())["xid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_baseline(state_dir: Path, xid: int) -> None:
    from openclaw_failover import safefs

    safefs.ensure_dir(state_dir)  # a fresh temp file (O_EXCL): a planted symlink is not used
    safefs.write_atomic(
        state_dir / BASELINE_FILE, json.dumps({"xid": xid, "at": time.time()}).encode()
    )


class _Rows:
    """The database half of a sync-back (one object per run, for its shared state)."""

    def __init__(
        self,
        cfg: Config,
        report: SyncReport,
        *,
        dry_run: bool,
        serving: bool,
        split: bool,
        progress: Progress | None,
    ) -> None:
        assert cfg.database is not None
        self.cfg, self.db, self.report = cfg, cfg.database, report
        self.dry_run, self.serving, self.split, self.progress = dry_run, serving, split, progress
        self.baseline = read_baseline(cfg.state_dir)

    def run(self) -> None:
        import psycopg

        from openclaw_failover import pgmeta, reconcile

        db = self.db
        with (
            pgmeta.connect(db.primary_dsn, db.connect_timeout) as p,
            pgmeta.connect(db.standby_dsn, db.connect_timeout) as s,
        ):
            tables = self._tables(p, s)
            sub = reconcile.subscription(s, db.subscription)
            p.commit()
            s.commit()
            if self.split:
                s.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                self._merge(p, s, tables)
                s.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
            if self.dry_run:
                self.report.reconcile_skipped = "dry run: would then be made equal to the primary"
            elif self.serving:
                self.report.reconcile_skipped = (
                    "still serving: the subscription stays disabled until give-back"
                )
            else:
                self._reconcile(p, s, tables, sub)

    def _tables(self, p: Any, s: Any) -> list[Any]:
        from openclaw_failover import pgmeta

        db = self.db
        names = pgmeta.parse_names(db.tables) or pgmeta.publication_tables(s, p, db.subscription)
        versions = pgmeta.alembic_versions(p), pgmeta.alembic_versions(s)
        if versions[0] != versions[1]:
            raise pgmeta.SchemaMismatch(
                f"schema revisions differ (alembic_version: primary {', '.join(versions[0]) or '-'}, "
                f"standby {', '.join(versions[1]) or '-'}); nothing written"
            )
        return pgmeta.load_tables(p, s, names)

    def _merge(self, p: Any, s: Any, tables: list[Any]) -> None:
        from openclaw_failover.merge import merge
        from openclaw_failover.rowdiff import diff_tables

        diffs = diff_tables(s, p, tables, self.progress, self.baseline)
        self.report.tables = merge(p, s, diffs, self.progress, self.baseline)
        if self.dry_run:
            p.rollback()
        else:
            p.commit()
        s.rollback()

    def _reconcile(self, p: Any, s: Any, tables: list[Any], sub: Any) -> None:
        from openclaw_failover import reconcile

        pending = reconcile.PendingSlots(self.cfg.state_dir / PENDING_SLOTS_FILE)
        p.autocommit = True
        notes = reconcile.drop_stale_slots(p, sub, keep=sub.slot, pending=pending)
        wrote = any(m.inserted or m.updated or m.merged for m in self.report.tables)
        if not wrote and sub.healthy and not self._differs(p, s, tables):
            self.report.reconcile_skipped = "nothing to do: equal, and the subscription is healthy"
            self._done()
            return
        if sub.enabled:
            s.autocommit = True
            reconcile.disable(s, self.db.subscription)
            s.autocommit = False
        self.report.reconcile = reconcile.make_equal(
            self.db.primary_dsn,
            s,
            tables,
            sub,
            connect_timeout=self.db.connect_timeout,
            progress=self.progress,
            guard=self._guard(s),
            since=self._since(p, sub),
        )
        self.report.reconcile.notes += notes
        s.autocommit = True
        reconcile.repoint(p, s, sub, self.report.reconcile, pending)
        self._done()

    def _since(self, p: Any, sub: Any) -> tuple[str, str] | None:
        """Both sides' split points, when known: then only recent rows are compared."""
        from openclaw_failover import reconcile

        if not self.split or self.baseline is None or not sub.slot:
            return None
        primary_since = reconcile.split_point(p, sub.slot)
        if primary_since is None:
            return None
        return primary_since, str(self.baseline % 2**32)

    def _differs(self, p: Any, s: Any, tables: list[Any]) -> bool:
        from openclaw_failover.rowdiff import diff_tables

        changed = any(d.changed for d in diff_tables(p, s, tables))
        s.rollback()  # (p is in autocommit here)
        return changed

    def _guard(self, s: Any) -> Any:
        """Refuse to delete a standby row the merge never saw (written after it)."""
        from openclaw_failover.merge import new_since
        from openclaw_failover.reconcile import ReconcileError

        merged = {m.table: set(m.merged_keys) for m in self.report.tables}
        split, baseline = self.split, self.baseline

        def guard(table: Any, only_standby: set[str]) -> None:
            if not split:
                return  # never served: whatever only the standby has is stale
            unknown = only_standby - merged.get(table.name, set())
            fresh = new_since(s, table, unknown, baseline)
            if fresh:
                raise ReconcileError(
                    f"{table.name}: {len(fresh)} standby rows were written after the merge "
                    "(is the standby's gateway still running?); nothing changed, will retry"
                )

        return guard

    def _done(self) -> None:
        if self.split and not self.serving:
            (self.cfg.state_dir / BASELINE_FILE).unlink(missing_ok=True)


def disable_subscription(cfg: Config, mask: Masker) -> str:
    """The takeover step: the standby stops applying the primary's changes.  One line.

    The standby's transaction id right after is kept as the split baseline: rows
    with a later ``xmin`` are what the standby wrote while it served.
    """
    db = cfg.database
    if db is None:
        return ""
    from openclaw_failover import pgmeta, reconcile

    try:
        with pgmeta.connect(db.standby_dsn, db.connect_timeout, autocommit=True) as s:
            sub = reconcile.subscription(s, db.subscription)
            if sub.enabled:
                reconcile.disable(s, db.subscription)
            if read_baseline(cfg.state_dir) is None:  # a retried takeover keeps the first
                row = s.execute("SELECT txid_current()").fetchone()
                _write_baseline(cfg.state_dir, int(row[0]) if row else 0)
            if sub.enabled:
                return f"disabled subscription {db.subscription}"
            return f"subscription {db.subscription} already disabled"
    except Exception as exc:
        return mask(f"could not disable subscription {db.subscription}: {_one_line(exc, mask)}")

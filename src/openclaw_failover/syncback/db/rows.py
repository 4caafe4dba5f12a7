"""The database half of a sync-back: merge, standby deletes, reconcile, re-point.

Order, every time (a run killed anywhere and run again ends the same):

1. a journal left by a killed run is settled first: when its reconcile had
   committed on the standby (``txid_status``), only the re-pointing is
   finished; nothing is merged again, so no row the reconcile copied can be
   taken for a standby write;
2. merge (merge.py) in one primary transaction: with the takeover's baseline,
   only rows the standby wrote since; without one, everything the standby holds
   that the primary lacks or holds older ("merge before any repair");
   then the standby's deletes (splitkeys.py), all quarantined first;
3. the standby made equal to a new slot's snapshot (reconcile.py), its
   replaced and deleted rows quarantined first, and its subscription re-pointed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from openclaw_failover.config.loader import Config
from openclaw_failover.local import faults
from openclaw_failover.syncback.db import pgmeta, splitkeys
from openclaw_failover.syncback.db import realign as reconcile
from openclaw_failover.syncback.quarantine import Writer
from openclaw_failover.syncback.splitstate import (
    JOURNAL,
    read_journal,
    write_baseline,
    write_journal,
)

if TYPE_CHECKING:
    from openclaw_failover.syncback.report import SyncReport

PENDING_SLOTS_FILE = "slots-to-drop.json"
Progress = Callable[[str], None]


class Rows:
    """One run's database work (one object per run, for its shared state)."""

    def __init__(
        self,
        cfg: Config,
        report: SyncReport,
        quarantine: Writer,
        *,
        baseline: int | None,
        dry_run: bool,
        serving: bool,
        split: bool,
        discard_standby_only: bool,
        progress: Progress | None,
    ) -> None:
        assert cfg.database is not None
        self.cfg, self.db, self.report, self.q = cfg, cfg.database, report, quarantine
        self.baseline, self.dry_run, self.serving, self.split = baseline, dry_run, serving, split
        self.discard, self.progress = discard_standby_only, progress
        self.finished = False  # the give-back's database part is complete

    def run(self) -> None:
        db = self.db
        with (
            pgmeta.connect(db.primary_dsn, db.connect_timeout) as p,
            pgmeta.connect(db.standby_dsn, db.connect_timeout) as s,
        ):
            tables = self._tables(p, s)
            sub = reconcile.subscription(s, db.subscription)
            p.commit()
            s.commit()
            resumed = self._settle_journal(p, s)
            if resumed and sub.enabled and sub.slot == resumed.slot:
                self._finish(p, s, sub, resumed)  # already following the new slot
                return
            s.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self._merge(p, s, tables, sub)
            s.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
            if self.dry_run:
                self.report.reconcile_skipped = "dry run: would then be made equal to the primary"
            elif self.serving:
                self.report.reconcile_skipped = (
                    "still serving: the subscription stays disabled until give-back"
                )
            elif resumed and not self._wrote():
                self._finish(p, s, sub, resumed)
            else:
                (self.cfg.state_dir / JOURNAL).unlink(missing_ok=True)
                self._reconcile(p, s, tables, sub)

    def _tables(self, p: Any, s: Any) -> list[Any]:
        db = self.db
        names = pgmeta.parse_names(db.tables) or pgmeta.publication_tables(s, p, db.subscription)
        versions = pgmeta.alembic_versions(p), pgmeta.alembic_versions(s)
        if versions[0] != versions[1]:
            raise pgmeta.SchemaMismatch(
                f"schema revisions differ (alembic_version: primary {', '.join(versions[0]) or '-'}, "
                f"standby {', '.join(versions[1]) or '-'}); nothing written"
            )
        return pgmeta.load_tables(p, s, names)

    # ------------------------------------------------------------------ resume

    def _settle_journal(self, p: Any, s: Any) -> reconcile.ReconcileReport | None:
        """A killed run's reconcile: committed (its slot still there) or forgotten.

        Committed: the standby was equal to the new slot's snapshot at that
        transaction, so the baseline moves to it: a row the reconcile copied is
        never taken for a standby write."""
        journal = read_journal(self.cfg.state_dir)
        if journal is None:
            return None
        row = s.execute("SELECT txid_status(%s)::text", [journal["xid"]]).fetchone()
        s.commit()
        slot_alive = p.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [journal["slot"]]
        ).fetchone()
        p.commit()
        committed = bool(row) and row[0] == "committed"
        if committed:  # the reconcile's own rows (xmin = its xid) are not standby writes
            self.baseline = journal["xid"] + 1
            if not self.dry_run:
                write_baseline(self.cfg.state_dir, self.baseline)
        if not committed or not slot_alive:
            if not self.dry_run:
                (self.cfg.state_dir / JOURNAL).unlink(missing_ok=True)
            return None
        return reconcile.ReconcileReport(slot=journal["slot"], lsn=journal["lsn"])

    def _finish(self, p: Any, s: Any, sub: Any, done: reconcile.ReconcileReport) -> None:
        """Re-point the subscription to the slot an interrupted run reconciled against."""
        if self.dry_run or self.serving:
            self.report.reconcile_skipped = "an interrupted give-back's re-pointing is pending"
            return
        done.notes.append("finished the re-pointing of an interrupted give-back")
        self.report.reconcile = done
        p.autocommit = s.autocommit = True
        pending = reconcile.PendingSlots(self.cfg.state_dir / PENDING_SLOTS_FILE)
        reconcile.repoint(p, s, sub, done, pending)
        self.finished = True

    def _wrote(self) -> bool:
        return any(
            m.inserted or m.updated or m.merged or m.deleted or m.orphans
            for m in self.report.tables
        )

    # ------------------------------------------------------------------ merge

    def _merge(self, p: Any, s: Any, tables: list[Any], sub: reconcile.Subscription) -> None:
        """The standby's deletes first (a name freed by a delete is free for its new
        row), then its inserts and updates; one primary transaction."""
        from openclaw_failover.syncback.db.merge import merge
        from openclaw_failover.syncback.db.rowdiff import diff_tables

        known_xids = self._split_xids(p, s, sub)
        deleted = self._standby_deletes(p, s, tables, known_xids)
        changed = None
        if known_xids:
            changed = splitkeys.changed_since_split("p", splitkeys.merge_xids(self.cfg.state_dir))
        diffs = diff_tables(s, p, tables, self.progress, self.baseline)
        self.report.tables = merge(
            p,
            s,
            diffs,
            self.q,
            self.progress,
            self.baseline,
            discard_standby_only=self.discard,
            changed=changed,
        )
        for m, t in zip(self.report.tables, tables, strict=True):
            m.deleted = deleted.get(t.qualified, 0)
        if not self.dry_run and self._wrote():
            splitkeys.note_merge(p, self.cfg.state_dir)
        faults.point("merge:before-commit")
        if self.dry_run:
            p.rollback()
        else:
            p.commit()
        faults.point("merge:after-commit")
        s.rollback()

    def _split_xids(self, p: Any, s: Any, sub: reconcile.Subscription) -> bool:
        """The primary's transactions since the split (before the merge writes)."""
        if not sub.slot or splitkeys.recorded(self.cfg.state_dir) is None:
            return False
        row = s.execute(
            "SELECT subpublications FROM pg_subscription WHERE subname = %s", [sub.name]
        ).fetchone()
        return splitkeys.split_xids(p, sub.slot, list(row[0]) if row else [])

    def _standby_deletes(
        self, p: Any, s: Any, tables: list[Any], known_xids: bool
    ) -> dict[str, int]:
        found = splitkeys.find(p, s, tables, self.cfg.state_dir, known_xids)
        if splitkeys.recorded(self.cfg.state_dir) is not None or self.split:
            self.report.deletes_note = found.note
        self.report.conflicts = found.conflicts
        return splitkeys.apply(p, tables, found, self.q, self.progress)

    # ------------------------------------------------------------------ reconcile

    def _reconcile(self, p: Any, s: Any, tables: list[Any], sub: Any) -> None:
        pending = reconcile.PendingSlots(self.cfg.state_dir / PENDING_SLOTS_FILE)
        p.autocommit = True
        notes = reconcile.drop_stale_slots(p, sub, keep=sub.slot, pending=pending)
        if not self._wrote() and sub.healthy and not self._differs(p, s, tables):
            self.report.reconcile_skipped = "nothing to do: equal, and the subscription is healthy"
            self.finished = True
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
            quarantine=self.q,
            before_commit=self._journal,
        )
        self.report.reconcile.notes += notes
        s.autocommit = True
        reconcile.repoint(p, s, sub, self.report.reconcile, pending)
        self.finished = True

    def _journal(self, report: reconcile.ReconcileReport, xid: int) -> None:
        write_journal(self.cfg.state_dir, xid, report.slot, report.lsn)

    def _since(self, p: Any, sub: Any) -> tuple[str, str] | None:
        """Both sides' split points, when known: then only recent rows are compared."""
        if not self.split or self.baseline is None or not sub.slot:
            return None
        primary_since = reconcile.split_point(p, sub.slot)
        if primary_since is None:
            return None
        return primary_since, str(self.baseline % 2**32)

    def _differs(self, p: Any, s: Any, tables: list[Any]) -> bool:
        from openclaw_failover.syncback.db.rowdiff import diff_tables

        changed = any(d.changed for d in diff_tables(p, s, tables))
        s.rollback()  # (p is in autocommit here)
        return changed

    def _guard(self, s: Any) -> reconcile.Guard:
        """Refuse to delete a standby row the merge never saw (written after it)."""
        from openclaw_failover.syncback.db.merge import new_since

        known = {
            m.table: set(m.merged_keys) | set(m.orphans) | set(m.discarded)
            for m in self.report.tables
        }
        baseline = self.baseline

        def guard(table: Any, only_standby: set[str]) -> None:
            unknown = only_standby - known.get(table.name, set())
            fresh = new_since(s, table, unknown, baseline)
            if fresh:
                raise reconcile.ReconcileError(
                    f"{table.name}: {len(fresh)} standby rows were written after the merge "
                    "(is the standby's gateway still running?); nothing changed, will retry"
                )

        return guard

"""The sync-back report: what moved, what was set aside, what failed (data, not prose)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from openclaw_failover.core.events import SyncCounts

if TYPE_CHECKING:
    from openclaw_failover.syncback.db.merge import TableMerge
    from openclaw_failover.syncback.db.realign import ReconcileReport
    from openclaw_failover.syncback.files.sync import FileSyncReport

NO_BASELINE = (
    "no takeover baseline: everything the standby holds that the primary lacks or holds "
    "older was merged first, so a row the primary deleted may have returned"
)


@dataclass
class SyncReport:
    dry_run: bool = False
    skipped: str = ""
    tables: list[TableMerge] = field(default_factory=list)
    reconcile: ReconcileReport | None = None
    reconcile_skipped: str = ""
    files: FileSyncReport | None = None
    error: str = ""
    no_baseline: bool = False  # merged without knowing what the standby wrote since
    deletes_note: str = ""  # why the standby's deletes could not travel
    conflicts: list[str] = field(default_factory=list)  # deleted there, kept here: why
    quarantine: str = ""  # "N rows kept in quarantine (path)"
    quarantined: int = 0

    @property
    def ok(self) -> bool:
        return not self.error and (self.files is None or self.files.ok)

    def _total(self, name: str) -> int:
        return sum(getattr(t, name) for t in self.tables)

    def rows_line(self) -> str:
        """What changed in the databases, in one clause ('' when nothing did)."""
        verb = "would sync" if self.dry_run else "synced back"
        parts = []
        if self.tables:  # metrics and status read "N inserted, M updated" (kept as it was)
            parts = [f"{self._total('inserted')} inserted", f"{self._total('updated')} updated"]
        if self._total("deleted"):
            parts.append(f"{self._total('deleted')} deleted")
        merged = len({(t.table, k) for t in self.tables for k in t.merged_keys})
        if merged:
            parts.append(f"{merged} merged by unique key")
        orphans = sum(len(t.orphans) for t in self.tables)
        if orphans:
            parts.append(f"{orphans} set aside (parent deleted on the primary)")
        discarded = sum(len(t.discarded) for t in self.tables)
        if discarded:
            parts.append(f"{discarded} standby-only discarded")
        line = f"rows {verb}: {', '.join(parts)}" if parts else ""
        r = self.reconcile
        if r and (r.inserted or r.updated or r.deleted):
            fixed = (
                f"standby made equal ({r.inserted + r.updated} rows copied, {r.deleted} deleted)"
            )
            line = f"{line}; {fixed}" if line else fixed
        if self.conflicts:
            line += f"; {len(self.conflicts)} deleted on the standby but kept (changed here)"
        return line

    def summary(self) -> str:
        """One line for notices and logs; never 'nothing to do' after a change."""
        if self.skipped:
            return self.skipped
        files = self.files.summary() if self.files else ""
        parts = [p for p in (self.rows_line(), files, self.quarantine) if p]
        if self.error:
            parts.append(f"FAILED: {self.error}")
        return "; ".join(parts) or "sync-back: nothing to do"

    def lines(self) -> list[str]:
        """The per-table report of `ocf syncback`."""
        out = [NO_BASELINE] if self.no_baseline and self.tables else []
        if self.deletes_note:
            out.append(self.deletes_note)
        out += [t.line() for t in self.tables]
        for t in self.tables:
            out += [f"  {m}" for m in t.merged] + [f"  {d}" for d in t.differences]
            if self.dry_run and t.discarded:
                out += [f"  would discard {t.table} {k}" for k in t.discarded]
        out += [f"  {c}" for c in self.conflicts]
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
        self.conflicts = earlier.conflicts + self.conflicts
        self.quarantined += earlier.quarantined
        if earlier.quarantine and not self.quarantine:
            self.quarantine = earlier.quarantine
        elif earlier.quarantined and self.quarantine:
            self.quarantine = f"{self.quarantined} replaced or deleted rows kept in quarantine"
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

    def counts(self) -> SyncCounts:
        """The report as data for the events log (a give-back's or ``ocf syncback``'s)."""
        return SyncCounts(
            ok=self.ok,
            summary=self.summary(),
            skipped=self.skipped,
            inserted=self._total("inserted"),
            updated=self._total("updated"),
            deleted=self._total("deleted"),
            quarantined=self.quarantined,
            files=len(self.files.copied) if self.files else 0,
            bytes=self.bytes_moved,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["bytes_moved"] = self.bytes_moved
        data["rows_moved"] = self.rows_moved
        data["ok"] = self.ok
        data["summary"] = self.summary()
        return data

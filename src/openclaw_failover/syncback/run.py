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
from pathlib import Path

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker, describe, shorten
from openclaw_failover.local import faults
from openclaw_failover.syncback.report import SyncReport
from openclaw_failover.syncback.splitstate import BASELINE_FILE, read_baseline

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
NOT_CONFIGURED = "sync-back skipped: no database: or files: section in the config"


def sync_back(
    cfg: Config,
    *,
    mask: Masker,
    dry_run: bool = False,
    serving: bool = False,
    split: bool = True,
    discard_standby_only: bool = False,
    progress: Progress | None = None,
) -> SyncReport:
    """Rows then files.

    ``serving``: the standby still serves: merge into the primary only, no
    reconcile.  ``split``: a takeover happened (its baseline says which rows the
    standby wrote; without one, everything the standby holds that the primary
    lacks or holds older is merged before the standby is made equal).
    ``discard_standby_only``: rows only the standby holds are not merged but
    quarantined and removed from it (an explicit choice, never a default).
    """
    if cfg.database is None and not cfg.files:
        return SyncReport(dry_run=dry_run, skipped=NOT_CONFIGURED)
    report = SyncReport(dry_run=dry_run)
    if cfg.database is not None:
        try:
            _rows(cfg, report, mask, dry_run, serving, split, discard_standby_only, progress)
        except Exception as exc:  # psycopg.Error, SchemaMismatch, ReconcileError, OSError
            report.error = error_line(exc, mask)
            log.debug("sync-back of rows failed", exc_info=True)
            return report
    if cfg.files and split:
        from openclaw_failover.syncback.files.sync import sync_files

        report.files = sync_files(cfg, mask=mask, dry_run=dry_run)
    return report


def _rows(
    cfg: Config,
    report: SyncReport,
    mask: Masker,
    dry_run: bool,
    serving: bool,
    split: bool,
    discard: bool,
    progress: Progress | None,
) -> None:
    from openclaw_failover.syncback import quarantine
    from openclaw_failover.syncback.db import rows as syncrows

    db = cfg.database
    assert db is not None
    if not dry_run:
        quarantine.prune(cfg.state_dir, keep_days=db.quarantine_days, max_mb=db.quarantine_max_mb)
    q = quarantine.Writer(cfg.state_dir, dry_run=dry_run)
    baseline = read_baseline(cfg.state_dir)
    report.no_baseline = baseline is None
    rows = syncrows.Rows(
        cfg,
        report,
        q,
        baseline=baseline,
        dry_run=dry_run,
        serving=serving,
        split=split,
        discard_standby_only=discard,
        progress=progress,
    )
    try:
        rows.run()
    finally:
        report.quarantine = q.summary()
        report.quarantined = q.rows
    if rows.finished and not serving and not dry_run:
        faults.point("done:before-clear")
        _forget_split(cfg.state_dir)


def error_line(exc: BaseException, mask: Masker) -> str:
    """The error on one line: masked first, then shortened (a cut secret is not found)."""
    return shorten(mask(describe(exc)), 300)


def _forget_split(state_dir: Path) -> None:
    from openclaw_failover.syncback import splitstate
    from openclaw_failover.syncback.db import splitkeys

    (state_dir / BASELINE_FILE).unlink(missing_ok=True)
    splitkeys.forget(state_dir)
    (state_dir / splitstate.JOURNAL).unlink(missing_ok=True)


def disable_subscription(cfg: Config, mask: Masker) -> str:
    """The takeover's database step, waited for (splitstart.py); one line."""
    from openclaw_failover.syncback.db import splitstart

    return splitstart.prepare(cfg, mask).finish()

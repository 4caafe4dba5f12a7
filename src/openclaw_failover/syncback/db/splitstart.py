"""The takeover's database step: the standby stops applying, and the split is recorded.

1. the subscription is disabled (waiting until its apply worker is gone);
2. the standby's transaction id is kept as the split baseline (rows with a later
   ``xmin`` are what the standby writes while it serves);
3. a REPEATABLE READ transaction takes its snapshot right then, before the
   local gateway starts, and the standby's keys are streamed from it to
   ``split-keys/`` in a thread while the gateway starts: the manifest is exactly
   the split, and the takeover does not wait for it (``finish`` joins it).

A retried takeover keeps the first baseline and manifest.
"""

from __future__ import annotations

import threading
from typing import Any

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker, shorten
from openclaw_failover.syncback.splitstate import read_baseline, write_baseline


class TakeoverDb:
    """What the step did (``line``), and the key manifest still being written."""

    def __init__(self, line: str = "") -> None:
        self.line = line
        self._thread: threading.Thread | None = None
        self._keys = ""

    def record_keys(self, cfg: Config, snapshot: Any, mask: Masker) -> None:
        def run() -> None:
            from openclaw_failover.syncback.db import splitkeys

            assert cfg.database is not None
            try:
                with snapshot:
                    n = splitkeys.record(
                        snapshot, cfg.state_dir, cfg.database.subscription, cfg.database.tables
                    )
                self._keys = f"; recorded {n:,} keys"
            except Exception as exc:  # the takeover goes on: deletes just will not travel
                splitkeys.forget(cfg.state_dir)
                self._keys = shorten(mask(f"; could not record the standby's keys: {exc}"), 300)

        self._thread = threading.Thread(target=run, name="ocf-split-keys", daemon=True)
        self._thread.start()

    def finish(self) -> str:
        """The step's line, once the key manifest is written."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return self.line + self._keys


def prepare(cfg: Config, mask: Masker) -> TakeoverDb:
    """Disable, note the baseline, start recording the keys.  Never raises."""
    db = cfg.database
    if db is None:
        return TakeoverDb()
    from openclaw_failover.syncback.db import pgmeta
    from openclaw_failover.syncback.db import realign as reconcile

    out = TakeoverDb()
    snapshot = None
    try:
        with pgmeta.connect(db.standby_dsn, db.connect_timeout, autocommit=True) as s:
            sub = reconcile.subscription(s, db.subscription)
            if sub.enabled:
                reconcile.disable(s, db.subscription)
            if read_baseline(cfg.state_dir) is None:  # a retried takeover keeps the first
                row = s.execute("SELECT txid_current()").fetchone()
                snapshot = _snapshot(db.standby_dsn, db.connect_timeout)
                write_baseline(cfg.state_dir, int(row[0]) if row else 0)
            verb = "disabled subscription" if sub.enabled else "subscription"
            out.line = f"{verb} {db.subscription}" + ("" if sub.enabled else " already disabled")
    except Exception as exc:
        if snapshot is not None:
            snapshot.close()
        return TakeoverDb(
            shorten(mask(f"could not disable subscription {db.subscription}: {exc}"), 300)
        )
    if snapshot is not None:
        out.record_keys(cfg, snapshot, mask)
    return out


def _snapshot(dsn: str, connect_timeout: float) -> Any:
    """A connection whose REPEATABLE READ snapshot is taken now."""
    import psycopg

    from openclaw_failover.syncback.db import pgmeta

    conn = pgmeta.connect(dsn, connect_timeout)
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    conn.execute("SELECT 1")
    return conn

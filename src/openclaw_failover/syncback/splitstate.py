"""What a takeover leaves in ``state_dir`` for the give-back (no database import).

- ``split-baseline.json``: the standby's transaction id when it stopped applying
  the primary's changes: rows with a later ``xmin`` are what it wrote since;
- ``syncback-journal.json``: a reconcile about to commit on the standby (its
  transaction id, the new slot and its LSN), settled by the next run.

Kept apart from the sync-back modules so the healthy tick and the state
recovery can read them without importing psycopg.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

JOURNAL = "syncback-journal.json"  # a reconcile about to commit: its xid, slot and LSN


def read_journal(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / JOURNAL).read_text())
        return {"xid": int(data["xid"]), "slot": str(data["slot"]), "lsn": str(data["lsn"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


BASELINE_FILE = "split-baseline.json"  # the standby's xid when it stopped applying


def read_baseline(state_dir: Path) -> int | None:
    try:
        return int(json.loads((state_dir / BASELINE_FILE).read_text())["xid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_baseline(state_dir: Path, xid: int) -> None:
    from openclaw_failover.local import safefs

    safefs.ensure_dir(state_dir)
    _write_json(state_dir / BASELINE_FILE, {"xid": xid, "at": time.time()})


def write_journal(state_dir: Path, xid: int, slot: str, lsn: str) -> None:
    _write_json(state_dir / JOURNAL, {"xid": xid, "slot": slot, "lsn": lsn})


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic and fsynced, through a fresh 0600 temp file (no planted symlink is used)."""
    from openclaw_failover.local import safefs

    safefs.write_atomic(path, json.dumps(data).encode())

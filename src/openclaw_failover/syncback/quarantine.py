"""Quarantine: every row that sync-back deletes or overwrites is kept here first.

Layout under ``<state_dir>/quarantine/``::

    <id>/                         one batch per sync-back run (UTC time and pid)
        manifest.json             host, table, reason, columns, types and keys of each file
        001.<host>.<table>.copy   the rows in PostgreSQL's binary COPY format, so
                                  vectors and float arrays come back byte-exact

A file is written and fsynced, and the manifest that names it replaced and
fsynced, before the statement that deletes or overwrites those rows runs.
``ocf quarantine list`` shows the batches; ``ocf quarantine restore ID`` merges
a batch back into the primary by the sync-back's own rules (restore.py).
Batches older than ``database.quarantine_days`` or beyond
``database.quarantine_max_mb`` (oldest first) are pruned at each sync-back.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from openclaw_failover.local import safefs
from openclaw_failover.syncback.db.pgmeta import Table

DIR = "quarantine"
MANIFEST = "manifest.json"


@dataclass
class QFile:
    file: str
    host: str  # "primary" or "standby": where the rows were taken from
    table: str  # schema.name
    reason: str
    columns: list[str]
    types: list[str]
    keys: list[str]
    bytes: int = 0

    @property
    def rows(self) -> int:
        return len(self.keys)


@dataclass
class Batch:
    id: str
    created: float
    files: list[QFile] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = self.rows
        data["bytes"] = self.bytes
        return data


def root(state_dir: Path) -> Path:
    return state_dir / DIR


class Writer:
    """One sync-back run's batch, created on its first row (nothing written in a dry run)."""

    def __init__(self, state_dir: Path, *, dry_run: bool = False) -> None:
        self.state_dir = state_dir
        self.dry_run = dry_run
        self.batch: Batch | None = None
        self.counted: dict[tuple[str, str], int] = {}  # (host, reason) -> rows

    @property
    def path(self) -> Path | None:
        return root(self.state_dir) / self.batch.id if self.batch else None

    @property
    def rows(self) -> int:
        return sum(self.counted.values())

    def save(
        self,
        conn: psycopg.Connection[Any],
        host: str,
        t: Table,
        keys: Iterable[str],
        reason: str,
        rel: sql.Composable | None = None,
    ) -> list[str]:
        """Keep the rows of ``rel`` (default: the table itself) with these keys; return
        the keys found.  Runs in the caller's transaction, before its DELETE/UPDATE."""
        wanted = sorted(set(keys))
        if not wanted:
            return []
        source = rel if rel is not None else t.ident
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM {} AS r WHERE {}").format(
                    t.key_text("r"), source, t.key_in("r", wanted)
                )
            )
            found = sorted(str(k) for (k,) in cur.fetchall())
        if not found:
            return []
        self.counted[(host, reason)] = self.counted.get((host, reason), 0) + len(found)
        if self.dry_run:
            return found
        batch_dir = self._open()
        assert self.batch is not None
        name = f"{len(self.batch.files) + 1:03d}.{host}.{t.name}.copy"
        query = sql.SQL("COPY (SELECT {} FROM {} AS r WHERE {}) TO STDOUT (FORMAT binary)").format(
            t.cols("r"), source, t.key_in("r", found)
        )
        size = 0
        with open(batch_dir / name, "xb") as out, conn.cursor() as cur, cur.copy(query) as copy:
            for chunk in copy:
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        self.batch.files.append(
            QFile(name, host, t.qualified, reason, list(t.columns), list(t.types), found, size)
        )
        self._write_manifest(batch_dir)
        return found

    def _open(self) -> Path:
        if self.batch is None:
            base = root(self.state_dir)
            base.mkdir(parents=True, exist_ok=True, mode=0o700)
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            n = 0
            while True:
                bid = f"{stamp}-{os.getpid()}" + (f"-{n}" if n else "")
                try:
                    (base / bid).mkdir(mode=0o700)
                    break
                except FileExistsError:
                    n += 1
            safefs.fsync_dir(base)
            self.batch = Batch(bid, time.time())
        return root(self.state_dir) / self.batch.id

    def _write_manifest(self, batch_dir: Path) -> None:
        assert self.batch is not None
        safefs.write_atomic(batch_dir / MANIFEST, json.dumps(asdict(self.batch)).encode())
        safefs.fsync_dir(batch_dir)

    def summary(self) -> str:
        """'12 rows kept in quarantine (…/quarantine/ID)' or ''."""
        if not self.rows:
            return ""
        where = f" ({self.path})" if self.path else ""
        verb = "would be kept" if self.dry_run else "kept"
        return f"{self.rows} replaced or deleted rows {verb} in quarantine{where}"


def _load(batch_dir: Path) -> Batch | None:
    try:
        data = json.loads((batch_dir / MANIFEST).read_text(encoding="utf-8"))
        files = [QFile(**f) for f in data["files"]]
        return Batch(str(data["id"]), float(data["created"]), files)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def batches(state_dir: Path) -> list[Batch]:
    """Every readable batch, oldest first."""
    base = root(state_dir)
    if not base.is_dir():
        return []
    found = [_load(p) for p in sorted(base.iterdir()) if p.is_dir()]
    return sorted((b for b in found if b is not None), key=lambda b: (b.created, b.id))


def find(state_dir: Path, batch_id: str) -> Batch | None:
    if not batch_id or "/" in batch_id or batch_id.startswith("."):
        return None
    path = root(state_dir) / batch_id
    return _load(path) if path.is_dir() else None


def quarantined_keys(state_dir: Path) -> dict[tuple[str, str], set[str]]:
    """(host, table) -> every key kept in any batch (for tests and reports)."""
    out: dict[tuple[str, str], set[str]] = {}
    for b in batches(state_dir):
        for f in b.files:
            out.setdefault((f.host, f.table.split(".", 1)[-1]), set()).update(f.keys)
    return out


def prune(state_dir: Path, *, keep_days: float, max_mb: float, now: float | None = None) -> int:
    """Remove batches past their retention, then the oldest beyond the size cap."""
    now = time.time() if now is None else now
    removed = 0
    kept = []
    for b in batches(state_dir):
        if now - b.created > keep_days * 86400:
            shutil.rmtree(root(state_dir) / b.id, ignore_errors=True)
            removed += 1
        else:
            kept.append(b)
    total = sum(b.bytes for b in kept)
    while kept and total > max_mb * 1024 * 1024:
        oldest = kept.pop(0)
        total -= oldest.bytes
        shutil.rmtree(root(state_dir) / oldest.id, ignore_errors=True)
        removed += 1
    return removed

"""`ocf quarantine restore`: merge a quarantine batch back into the primary.

The same rules as the sync-back's merge (merge.apply_incoming): a row the
primary lacks is inserted (unless its parent is gone: then it stays in
quarantine), a row the primary holds is replaced only by a newer
``updated_at`` (the replaced row is quarantined in its turn), unique clashes
are merged into the primary's row.  One transaction: all or nothing.
Tables are restored parents first; a table whose columns changed since the
batch was written is refused with nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from openclaw_failover.config.loader import Config
from openclaw_failover.syncback.db import pgmeta
from openclaw_failover.syncback.db.merge import TableMerge, apply_incoming, temp_name
from openclaw_failover.syncback.quarantine import Batch, QFile, Writer, root


class RestoreError(Exception):
    pass


@dataclass
class RestoreReport:
    batch: str
    dry_run: bool
    tables: list[TableMerge] = field(default_factory=list)
    quarantine: str = ""

    def lines(self) -> list[str]:
        out = [t.line() for t in self.tables]
        for t in self.tables:
            out += [f"  {m}" for m in t.merged] + [f"  {d}" for d in t.differences]
        if self.quarantine:
            out.append(self.quarantine)
        verb = "would restore" if self.dry_run else "restored"
        n = sum(t.inserted + t.updated for t in self.tables)
        out.append(f"{verb} {n} rows from quarantine batch {self.batch}")
        return out


def _tables(primary: psycopg.Connection[Any], batch: Batch) -> list[pgmeta.Table]:
    names = sorted({f.table for f in batch.files})
    tables = [pgmeta.describe(primary, *n.split(".", 1)) for n in names]
    by_name = {t.qualified: t for t in tables}
    for fk in pgmeta.foreign_keys(primary, tables):
        by_name[fk.child].parents.append(fk)
        by_name[fk.parent].children.append(fk)
    for f in batch.files:
        t = by_name[f.table]
        if (list(t.columns), list(t.types)) != (f.columns, f.types):
            raise RestoreError(
                f"{f.file}: table {f.table} has changed since the batch was written "
                f"(columns {', '.join(t.columns)}); nothing restored"
            )
    return pgmeta.fk_order(tables)


def _load(primary: psycopg.Connection[Any], t: pgmeta.Table, path: Path) -> sql.Identifier:
    temp = temp_name(t, "ocf_rs")
    primary.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(temp))
    primary.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(temp, t.ident))
    query = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(temp, t.cols())
    with primary.cursor() as cur, open(path, "rb") as src, cur.copy(query) as copy:
        while chunk := src.read(1 << 16):
            copy.write(chunk)
    return temp


def _existing(primary: psycopg.Connection[Any], t: pgmeta.Table, temp: sql.Identifier) -> set[str]:
    rows = primary.execute(
        sql.SQL("SELECT {} FROM {} AS n WHERE EXISTS (SELECT 1 FROM {} AS p WHERE {})").format(
            t.key_text("n"),
            temp,
            t.ident,
            sql.SQL(" AND ").join(
                sql.SQL("p.{c} = n.{c}").format(c=sql.Identifier(c)) for c in t.pkey
            ),
        )
    ).fetchall()
    return {str(k) for (k,) in rows}


def restore(cfg: Config, batch: Batch, *, dry_run: bool) -> RestoreReport:
    """Merge ``batch`` into the primary (rolled back in a dry run)."""
    db = cfg.database
    if db is None:
        raise RestoreError("no database: section in the config: nothing to restore into")
    report = RestoreReport(batch.id, dry_run)
    q = Writer(cfg.state_dir, dry_run=dry_run)
    with pgmeta.connect(db.primary_dsn, db.connect_timeout) as p:
        tables = _tables(p, batch)
        remaps: dict[str, dict[str, str]] = {}
        for t in tables:
            files: list[QFile] = [f for f in batch.files if f.table == t.qualified]
            merged = TableMerge(t.name)
            for f in files:
                temp = _load(p, t, root(cfg.state_dir) / batch.id / f.file)
                apply_incoming(p, t, temp, _existing(p, t, temp), remaps, q, merged)
            report.tables.append(merged)
        if dry_run:
            p.rollback()
        else:
            p.commit()
    report.quarantine = q.summary()
    return report

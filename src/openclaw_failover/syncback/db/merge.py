"""Merge what the standby wrote into the primary: one transaction, all or nothing.

For every table, parents first: the standby's rows that the primary lacks or
that differ are copied (binary COPY, so vectors arrive byte-identical) into a
temporary table on the primary, then

- a row that would break a secondary UNIQUE index held by another primary row
  (the same category name created on both sides during a split) is merged into
  the primary's row: it is not inserted, and the rows that reference it are
  re-pointed to the primary's row before their own table is merged;
- rows the primary lacks are inserted;
- rows on both sides: the later ``updated_at`` wins; without ``updated_at`` the
  primary's row stays and the difference is reported;
- rows only the primary has are never deleted (counted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from openclaw_failover.syncback.db.pgmeta import Table, UniqueIndex
from openclaw_failover.syncback.db.rowdiff import TableDiff
from openclaw_failover.syncback.quarantine import Writer

Progress = Callable[[str], None]


@dataclass
class TableMerge:
    table: str
    inserted: int = 0
    updated: int = 0
    kept_primary: int = 0  # rows on both sides where the primary's version stays
    merged: list[str] = field(default_factory=list)  # unique conflicts resolved
    repointed: int = 0  # referencing rows re-pointed to a merged row
    primary_only: int | None = 0  # None: not counted (the merge looked only at new rows)
    not_revived: int = 0  # rows the primary deleted while apart: not brought back
    merged_keys: list[str] = field(default_factory=list)  # standby keys merged away
    differences: list[str] = field(default_factory=list)  # reported, not merged
    bytes: int = 0  # checksums, keys and rows that crossed the network
    orphans: list[str] = field(default_factory=list)  # standby keys set aside: parent gone
    discarded: list[str] = field(default_factory=list)  # standby-only keys not merged (asked)
    deleted: int = 0  # rows deleted here because the standby deleted them

    def line(self) -> str:
        parts = [f"{self.inserted} inserted", f"{self.updated} updated"]
        if self.merged:
            parts.append(f"{len(self.merged)} merged by unique key")
        if self.repointed:
            parts.append(f"{self.repointed} re-pointed")
        if self.kept_primary:
            parts.append(f"{self.kept_primary} kept the primary's version")
        if self.not_revived:
            parts.append(f"{self.not_revived} deleted on the primary while apart (not revived)")
        if self.deleted:
            parts.append(f"{self.deleted} deleted (deleted on the standby)")
        if self.orphans:
            parts.append(f"{len(self.orphans)} set aside in quarantine (parent deleted here)")
        if self.discarded:
            parts.append(f"{len(self.discarded)} only on the standby, discarded as asked")
        if self.primary_only is not None:
            parts.append(f"{self.primary_only} only on the primary (kept)")
        return f"{self.table}: " + ", ".join(parts)


def temp_name(t: Table, prefix: str) -> sql.Identifier:
    return sql.Identifier(f"{prefix}_{t.name}"[:63])


def copy_rows(
    src: psycopg.Connection[Any],
    dst: psycopg.Connection[Any],
    t: Table,
    keys: list[str],
    temp: sql.Identifier,
) -> int:
    """Copy the rows with ``keys`` from ``src`` into a new temp table on ``dst``; return bytes."""
    with dst.cursor() as cur:
        cur.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(temp, t.ident))
    out_q = sql.SQL("COPY (SELECT {} FROM {} AS r WHERE {}) TO STDOUT (FORMAT binary)").format(
        t.cols("r"), t.ident, t.key_in("r", keys)
    )
    in_q = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(temp, t.cols())
    moved = 0
    with (
        src.cursor() as scur,
        dst.cursor() as dcur,
        scur.copy(out_q) as reader,
        dcur.copy(in_q) as writer,
    ):
        for chunk in reader:
            writer.write(chunk)
            moved += len(chunk)
    with dst.cursor() as cur:  # row counts for the planner: else it joins by a full table scan
        cur.execute(sql.SQL("ANALYZE {}").format(temp))
    return moved


def _pk_join(t: Table, a: str, b: str) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(a, c), sql.Identifier(b, c)) for c in t.pkey
    )


def _exec(conn: psycopg.Connection[Any], query: sql.Composed, params: Any = None) -> int:
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.rowcount


def _select(conn: psycopg.Connection[Any], query: sql.Composed, params: Any = None) -> list[Any]:
    with conn.cursor() as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def _repoint(
    conn: psycopg.Connection[Any], t: Table, temp: sql.Identifier, remaps: dict[str, dict[str, str]]
) -> int:
    """Point this table's foreign keys at the primary's rows that merged rows went into."""
    moved = 0
    for fk in t.parents:
        mapping = remaps.get(fk.parent, {})
        col_type = sql.SQL(t.types[t.columns.index(fk.column)])
        for old, new in mapping.items():
            moved += _exec(
                conn,
                sql.SQL("UPDATE {} SET {} = CAST(%s AS {}) WHERE {}::text = %s").format(
                    temp, sql.Identifier(fk.column), col_type, sql.Identifier(fk.column)
                ),
                [new, old],
            )
    return moved


def _unique_clashes(
    conn: psycopg.Connection[Any], t: Table, temp: sql.Identifier, u: UniqueIndex
) -> list[tuple[str, str]]:
    """(standby key, primary key) pairs whose unique-index keys collide."""
    exprs = [sql.SQL(e) for e in u.exprs]  # catalog text: trusted
    where = sql.SQL(" WHERE {}").format(sql.SQL(u.predicate)) if u.predicate else sql.SQL("")

    def side(rel: sql.Composable) -> sql.Composable:
        picks = [sql.SQL("{} AS u{}").format(e, sql.Literal(i)) for i, e in enumerate(exprs)]
        return sql.SQL("SELECT {} AS k, {} FROM {}{}").format(
            t.key_text(), sql.SQL(", ").join(picks), rel, where
        )

    op = sql.SQL("IS NOT DISTINCT FROM" if u.nulls_not_distinct else "=")
    on = sql.SQL(" AND ").join(
        sql.SQL("n.{c} {op} p.{c}").format(c=sql.Identifier(f"u{i}"), op=op)
        for i in range(len(exprs))
    )
    query = sql.SQL("SELECT n.k, p.k FROM ({}) n JOIN ({}) p ON {} AND n.k <> p.k").format(
        side(temp), side(t.ident), on
    )
    return [(str(a), str(b)) for a, b in _select(conn, query)]


def _resolve_uniques(
    conn: psycopg.Connection[Any],
    t: Table,
    temp: sql.Identifier,
    existing: set[str],
    report: TableMerge,
) -> dict[str, str]:
    """Drop clashing standby rows from ``temp``; return standby key -> primary key merges."""
    mapping: dict[str, str] = {}
    for u in t.uniques:
        for ours, theirs in _unique_clashes(conn, t, temp, u):
            if ours in existing:
                report.differences.append(
                    f"{t.name} {ours}: the standby's update collides with {theirs} on "
                    f"{u.name}; kept the primary's version"
                )
                report.kept_primary += 1
            else:
                mapping[ours] = theirs
                report.merged_keys.append(ours)
                report.merged.append(f"{t.name} {ours} merged into {theirs} ({u.name})")
            _exec(
                conn,
                sql.SQL("DELETE FROM {} WHERE {} = %s").format(temp, t.key_text()),
                [ours],
            )
    return mapping


def new_since(
    conn: psycopg.Connection[Any], t: Table, keys: set[str], baseline: int | None
) -> set[str]:
    """The keys whose rows were written after the split (``baseline``: the standby's
    transaction id when it stopped applying the primary's changes).  Without a
    baseline every key counts as new: nothing is dropped for want of knowledge."""
    if baseline is None or not keys:
        return set(keys)
    query = sql.SQL("SELECT {} FROM {} AS r WHERE {} AND age(r.xmin) <= age({}::text::xid)").format(
        t.key_text("r"), t.ident, t.key_in("r", sorted(keys)), sql.Literal(str(baseline % 2**32))
    )
    return {str(k) for (k,) in _select(conn, query)}


def _orphans(conn: psycopg.Connection[Any], t: Table, temp: sql.Identifier) -> list[str]:
    """Keys of incoming rows whose parent row is on neither the primary nor in ``temp``."""
    found: set[str] = set()
    for fk in t.parents:
        col, pcol = sql.Identifier(fk.column), sql.Identifier(fk.parent_column)
        parent = sql.Identifier(*fk.parent.split(".", 1))
        extra: sql.Composable = sql.SQL("")
        if fk.parent == t.qualified:  # a row may point at another incoming row
            extra = sql.SQL(" AND NOT EXISTS (SELECT 1 FROM {} AS o WHERE o.{} = n.{})").format(
                temp, pcol, col
            )
        query = sql.SQL(
            "SELECT {key} FROM {temp} AS n WHERE n.{col} IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM {parent} AS p WHERE p.{pcol} = n.{col}){extra}"
        ).format(key=t.key_text("n"), temp=temp, col=col, parent=parent, pcol=pcol, extra=extra)
        found.update(str(k) for (k,) in _select(conn, query))
    return sorted(found)


def _set_aside_orphans(
    conn: psycopg.Connection[Any], t: Table, temp: sql.Identifier, q: Writer, report: TableMerge
) -> None:
    """An incoming row whose parent the primary deleted is kept in quarantine, not merged:
    one such row never holds back the others."""
    orphans = _orphans(conn, t, temp)
    if not orphans:
        return
    q.save(conn, "standby", t, orphans, "its parent row was deleted on the primary", rel=temp)
    _exec(
        conn,
        sql.SQL("DELETE FROM {} AS r WHERE {} = ANY(%s)").format(temp, t.key_text("r")),
        [orphans],
    )
    report.orphans += orphans
    report.differences += [
        f"{t.name} {k}: its parent was deleted on the primary; the standby's row is in quarantine"
        for k in orphans[:20]
    ]


def _newer(t: Table, changed: sql.Composable | None) -> sql.Composable | None:
    """When the standby's row ``n`` replaces the primary's ``p``: its ``updated_at`` is
    later, or the primary has not changed the row since the split (the standby's is
    then the only edit, whatever its clock said)."""
    later = sql.SQL("n.updated_at > p.updated_at") if t.has_updated_at else None
    untouched = sql.SQL("NOT {}").format(changed) if changed is not None else None
    if later is not None and untouched is not None:
        return sql.SQL("({} OR {})").format(later, untouched)
    return later if later is not None else untouched


def apply_incoming(
    primary: psycopg.Connection[Any],
    t: Table,
    temp: sql.Identifier,
    existing: set[str],
    remaps: dict[str, dict[str, str]],
    q: Writer,
    report: TableMerge,
    changed: sql.Composable | None = None,
) -> None:
    """Merge the rows in ``temp`` into ``t`` on ``primary``; ``existing``: keys on both.
    ``changed``: SQL, true when the primary's row ``p`` changed since the split."""
    report.repointed += _repoint(primary, t, temp, remaps)
    remaps[t.qualified] = _resolve_uniques(primary, t, temp, existing, report)
    if any(fk.parent == t.qualified for fk in t.parents):  # rows pointing into their own table
        report.repointed += _repoint(primary, t, temp, {t.qualified: remaps[t.qualified]})
    _set_aside_orphans(primary, t, temp, q, report)
    both = len(existing) - report.kept_primary
    _update_existing(primary, t, temp, existing, q, report, changed)  # before the inserts
    report.kept_primary += both - report.updated
    report.inserted += _exec(
        primary,
        sql.SQL(
            "INSERT INTO {t} ({cols}) SELECT {ncols} FROM {temp} AS n "
            "WHERE NOT EXISTS (SELECT 1 FROM {t} AS p WHERE {join})"
        ).format(
            t=t.ident, cols=t.cols(), ncols=t.cols("n"), temp=temp, join=_pk_join(t, "p", "n")
        ),
    )


def _update_existing(
    primary: psycopg.Connection[Any],
    t: Table,
    temp: sql.Identifier,
    existing: set[str],
    q: Writer,
    report: TableMerge,
    changed: sql.Composable | None,
) -> None:
    """Rows on both sides: the standby's replaces the primary's where ``_newer`` says so
    (the replaced version kept in quarantine first).  Runs before the inserts, so a row
    inserted by this merge is never taken for one it replaced."""
    newer = _newer(t, changed)
    if newer is None:
        report.differences += [
            f"{t.name} {k}: differs on both sides, no updated_at: kept the primary's version"
            for k in sorted(existing)[:20]
        ]
        return
    join = _pk_join(t, "p", "n")
    replaced = _select(
        primary,
        sql.SQL("SELECT {key} FROM {t} AS p JOIN {temp} AS n ON {join} WHERE {newer}").format(
            key=t.key_text("p"), t=t.ident, temp=temp, join=join, newer=newer
        ),
    )
    q.save(
        primary,
        "primary",
        t,
        [str(k) for (k,) in replaced],
        "replaced by the standby's newer version",
    )
    report.updated += _exec(
        primary,
        sql.SQL(
            "UPDATE {t} AS p SET ({cols}) = ROW({ncols}) FROM {temp} AS n WHERE {join} AND {newer}"
        ).format(t=t.ident, cols=t.cols(), ncols=t.cols("n"), temp=temp, join=join, newer=newer),
    )


def merge_table(
    primary: psycopg.Connection[Any],
    standby: psycopg.Connection[Any],
    d: TableDiff,
    remaps: dict[str, dict[str, str]],
    baseline: int | None,
    q: Writer,
    *,
    discard_standby_only: bool = False,
    changed: sql.Composable | None = None,
) -> TableMerge:
    """Merge one table (``d`` compares standby as source with primary as target)."""
    t = d.table
    report = TableMerge(t.name, primary_only=len(d.only_b) if d.complete else None, bytes=d.bytes)
    fresh = new_since(standby, t, d.only_a | d.differ, baseline)
    report.not_revived = len(d.only_a - fresh)  # the primary deleted them while apart
    stale = len(d.differ - fresh)  # unchanged on the standby: the primary's version is newer
    only_a = d.only_a & fresh
    if discard_standby_only:
        report.discarded = sorted(only_a)
        only_a = set()
    differ = d.differ & fresh
    keys = sorted(only_a | differ)
    if keys:
        temp = temp_name(t, "ocf_in")
        report.bytes += copy_rows(standby, primary, t, keys, temp)
        apply_incoming(primary, t, temp, differ, remaps, q, report, changed)
    else:
        remaps[t.qualified] = {}
    report.kept_primary += stale
    return report


def merge(
    primary: psycopg.Connection[Any],
    standby: psycopg.Connection[Any],
    diffs: list[TableDiff],
    q: Writer,
    progress: Progress | None = None,
    baseline: int | None = None,
    *,
    discard_standby_only: bool = False,
    changed: sql.Composable | None = None,
) -> list[TableMerge]:
    """Merge every table in order inside the caller's transaction on ``primary``."""
    remaps: dict[str, dict[str, str]] = {}
    out = []
    for d in diffs:
        if progress and (d.only_a or d.differ):
            progress(f"merging {d.table.name}: {len(d.only_a) + len(d.differ):,} rows differ")
        out.append(
            merge_table(
                primary,
                standby,
                d,
                remaps,
                baseline,
                q,
                discard_standby_only=discard_standby_only,
                changed=changed,
            )
        )
    return out

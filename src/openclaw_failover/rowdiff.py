"""Find the rows that differ between two databases without shipping whole tables.

Both sides compute, inside PostgreSQL, a checksum per key bucket: rows are
spread over ``BUCKETS`` buckets by a hash of their primary key, and each
bucket carries its row count and the sum of a 60-bit md5 fingerprint of every
row.  Only the bucket lists cross the network (a few dozen KB whatever the
table size); then, for the buckets that differ, the (key, fingerprint) of
their rows; then, for the keys that differ, the rows
themselves.  Bytes moved grow with the number of changed rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from openclaw_failover.pgmeta import Table

BUCKETS = 4096  # a power of two


@dataclass
class TableDiff:
    """How ``a`` (the source) differs from ``b`` (the target) for one table."""

    table: Table
    only_a: set[str] = field(default_factory=set)  # keys only the source has
    only_b: set[str] = field(default_factory=set)  # keys only the target has
    differ: set[str] = field(default_factory=set)  # keys on both, rows differ
    rows_a: int = 0
    rows_b: int = 0
    bytes: int = 0  # checksum and key traffic, both directions

    @property
    def changed(self) -> bool:
        return bool(self.only_a or self.only_b or self.differ)


@dataclass
class _Buckets:
    sums: dict[int, tuple[int, int]]
    rows: int
    bytes: int


def _fetch(cur: psycopg.Cursor[Any], query: sql.Composed, params: Any = None) -> list[Any]:
    cur.execute(query, params)
    return list(cur.fetchall())


def _buckets(conn: psycopg.Connection[Any], t: Table) -> _Buckets:
    query = sql.SQL(
        "SELECT hashtext({key}) & {mask} AS b, count(*), sum({fp})::text "
        "FROM {table} AS r GROUP BY 1"
    ).format(
        key=t.key_text("r"), mask=sql.Literal(BUCKETS - 1), fp=t.fingerprint("r"), table=t.ident
    )
    with conn.cursor() as cur:
        rows = _fetch(cur, query)
    sums = {int(b): (int(n), int(s)) for b, n, s in rows}
    return _Buckets(sums, sum(n for n, _ in sums.values()), len(rows) * 28)


def _keys(
    conn: psycopg.Connection[Any], t: Table, buckets: list[int]
) -> tuple[dict[str, int], int]:
    """key -> fingerprint for the rows in the given buckets."""
    query = sql.SQL(
        "SELECT {key}, {fp} FROM {table} AS r WHERE hashtext({key}) & {mask} = ANY(%s)"
    ).format(
        key=t.key_text("r"), fp=t.fingerprint("r"), table=t.ident, mask=sql.Literal(BUCKETS - 1)
    )
    with conn.cursor() as cur:
        rows = _fetch(cur, query, [buckets])
    out = {str(k): int(fp) for k, fp in rows}
    return out, sum(len(k) + 8 for k in out) + len(buckets) * 4


def diff_table(a: psycopg.Connection[Any], b: psycopg.Connection[Any], t: Table) -> TableDiff:
    """Compare table ``t`` on connection ``a`` (source) with ``b`` (target)."""
    ba, bb = _buckets(a, t), _buckets(b, t)
    result = TableDiff(t, rows_a=ba.rows, rows_b=bb.rows, bytes=ba.bytes + bb.bytes)
    differing = sorted(
        k for k in ba.sums.keys() | bb.sums.keys() if ba.sums.get(k) != bb.sums.get(k)
    )
    if not differing:
        return result
    ka, bytes_a = _keys(a, t, differing)
    kb, bytes_b = _keys(b, t, differing)
    result.bytes += bytes_a + bytes_b
    result.only_a = set(ka) - set(kb)
    result.only_b = set(kb) - set(ka)
    result.differ = {key for key in ka.keys() & kb.keys() if ka[key] != kb[key]}
    return result


def diff_tables(
    a: psycopg.Connection[Any],
    b: psycopg.Connection[Any],
    tables: list[Table],
    progress: Callable[[str], None] | None = None,
) -> list[TableDiff]:
    out = []
    for t in tables:
        d = diff_table(a, b, t)
        if progress and (d.rows_a > 10_000 or d.changed):
            progress(
                f"{t.name}: {d.rows_a:,} rows here, {d.rows_b:,} there; "
                f"{len(d.only_a):,} only here, {len(d.differ):,} differ, {len(d.only_b):,} only there"
            )
        out.append(d)
    return out

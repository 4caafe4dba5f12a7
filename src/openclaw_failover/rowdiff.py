"""Find the rows that differ between two databases without shipping whole tables.

Both sides compute, inside PostgreSQL and at the same time, a checksum per key
bucket: rows are spread over ``BUCKETS`` buckets by a hash of their primary
key, and each bucket carries its row count and the sum of a 60-bit md5
fingerprint of every row.  Only the bucket lists cross the network (a few
dozen KB whatever the table size); then, for the buckets that differ, the
(key, fingerprint) of their rows; then, for the keys that differ, the rows
themselves.

When the takeover recorded a split baseline (the standby's transaction id
when it stopped applying), the standby's own writes are found directly:
rows whose ``xmin`` is newer; only those keys are looked up on the primary,
through its primary key.  That is the merge's path: its cost grows with the
rows the standby wrote, not with the table.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from openclaw_failover.pgmeta import Table

BUCKETS = 4096  # a power of two
T = TypeVar("T")


@dataclass
class TableDiff:
    """How ``a`` (the source) differs from ``b`` (the target) for one table."""

    table: Table
    only_a: set[str] = field(default_factory=set)  # keys only the source has
    only_b: set[str] = field(default_factory=set)  # keys only the target has
    differ: set[str] = field(default_factory=set)  # keys on both, rows differ
    complete: bool = True  # False from diff_since: only_b was not looked for
    rows_a: int = 0
    rows_b: int = 0
    bytes: int = 0  # checksum and key traffic, both directions

    @property
    def changed(self) -> bool:
        return bool(self.only_a or self.only_b or self.differ)


def _fetch(conn: psycopg.Connection[Any], query: sql.Composed) -> list[Any]:
    with conn.cursor() as cur:
        cur.execute(query)
        return list(cur.fetchall())


def _both(fa: Callable[[], T], fb: Callable[[], T]) -> tuple[T, T]:
    """Run the two sides' queries at the same time (they are different hosts)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(fb)
        a = fa()
        return a, future.result()


def _buckets(conn: psycopg.Connection[Any], t: Table) -> dict[int, tuple[int, int]]:
    query = sql.SQL(
        "SELECT hashtext({key}) & {mask} AS b, count(*), sum({fp})::text "
        "FROM {table} AS r GROUP BY 1"
    ).format(
        key=t.key_text("r"), mask=sql.Literal(BUCKETS - 1), fp=t.fingerprint("r"), table=t.ident
    )
    return {int(b): (int(n), int(s)) for b, n, s in _fetch(conn, query)}


def _keys(conn: psycopg.Connection[Any], t: Table, buckets: list[int]) -> dict[str, int]:
    """key -> fingerprint for the rows in the given buckets."""
    query = sql.SQL(
        "SELECT {key}, {fp} FROM {table} AS r WHERE hashtext({key}) & {mask} = ANY({buckets})"
    ).format(
        key=t.key_text("r"),
        fp=t.fingerprint("r"),
        table=t.ident,
        mask=sql.Literal(BUCKETS - 1),
        buckets=sql.Literal(buckets),
    )
    return {str(k): int(fp) for k, fp in _fetch(conn, query)}


def _key_bytes(keys: dict[str, int]) -> int:
    return sum(len(k) + 8 for k in keys)


def diff_table(a: psycopg.Connection[Any], b: psycopg.Connection[Any], t: Table) -> TableDiff:
    """Compare table ``t`` on connection ``a`` (source) with ``b`` (target)."""
    ba, bb = _both(lambda: _buckets(a, t), lambda: _buckets(b, t))
    result = TableDiff(
        t,
        rows_a=sum(n for n, _ in ba.values()),
        rows_b=sum(n for n, _ in bb.values()),
        bytes=(len(ba) + len(bb)) * 28,
    )
    differing = sorted(k for k in ba.keys() | bb.keys() if ba.get(k) != bb.get(k))
    if not differing:
        return result
    ka, kb = _both(lambda: _keys(a, t, differing), lambda: _keys(b, t, differing))
    result.bytes += _key_bytes(ka) + _key_bytes(kb) + len(differing) * 8
    result.only_a = set(ka) - set(kb)
    result.only_b = set(kb) - set(ka)
    result.differ = {key for key in ka.keys() & kb.keys() if ka[key] != kb[key]}
    return result


def diff_since(
    a: psycopg.Connection[Any], b: psycopg.Connection[Any], t: Table, baseline: int
) -> TableDiff:
    """Rows ``a`` wrote after transaction ``baseline``, compared with ``b`` by key.

    ``only_b`` stays empty: rows only ``b`` has are not looked for here.
    """
    fresh = sql.SQL(
        "SELECT {key}, {fp} FROM {table} AS r WHERE age(r.xmin) <= age({xid}::text::xid)"
    ).format(
        key=t.key_text("r"),
        fp=t.fingerprint("r"),
        table=t.ident,
        xid=sql.Literal(str(baseline % 2**32)),
    )
    ka = {str(k): int(fp) for k, fp in _fetch(a, fresh)}
    result = TableDiff(t, bytes=_key_bytes(ka), complete=False)
    if not ka:
        return result
    theirs = sql.SQL("SELECT {key}, {fp} FROM {table} AS r WHERE {keys}").format(
        key=t.key_text("r"), fp=t.fingerprint("r"), table=t.ident, keys=t.key_in("r", sorted(ka))
    )
    kb = {str(k): int(fp) for k, fp in _fetch(b, theirs)}
    result.bytes += _key_bytes(kb)
    result.only_a = set(ka) - set(kb)
    result.differ = {key for key in ka.keys() & kb.keys() if ka[key] != kb[key]}
    return result


def diff_tables(
    a: psycopg.Connection[Any],
    b: psycopg.Connection[Any],
    tables: list[Table],
    progress: Callable[[str], None] | None = None,
    baseline: int | None = None,
) -> list[TableDiff]:
    out = []
    for t in tables:
        d = diff_table(a, b, t) if baseline is None else diff_since(a, b, t, baseline)
        if progress and d.changed:
            progress(
                f"{t.name}: {len(d.only_a):,} rows only here, {len(d.differ):,} differ, "
                f"{len(d.only_b):,} only there"
            )
        out.append(d)
    return out


def _key_buckets(conn: psycopg.Connection[Any], t: Table) -> dict[int, tuple[int, int]]:
    """Per bucket: count and sum of key hashes (keys only: cheap, no row is printed)."""
    query = sql.SQL(
        "SELECT hashtext({key}) & {mask}, count(*), sum(hashtextextended({key}, 1))::text "
        "FROM {table} AS r GROUP BY 1"
    ).format(key=t.key_text("r"), mask=sql.Literal(BUCKETS - 1), table=t.ident)
    return {int(b): (int(n), int(s)) for b, n, s in _fetch(conn, query)}


def _bucket_keys(conn: psycopg.Connection[Any], t: Table, buckets: list[int]) -> set[str]:
    query = sql.SQL(
        "SELECT {key} FROM {table} AS r WHERE hashtext({key}) & {mask} = ANY({b})"
    ).format(
        key=t.key_text("r"), table=t.ident, mask=sql.Literal(BUCKETS - 1), b=sql.Literal(buckets)
    )
    return {str(k) for (k,) in _fetch(conn, query)}


def _fresh(conn: psycopg.Connection[Any], t: Table, since: str) -> dict[str, int]:
    query = sql.SQL(
        "SELECT {key}, {fp} FROM {table} AS r WHERE age(r.xmin) <= age({xid}::text::xid)"
    ).format(key=t.key_text("r"), fp=t.fingerprint("r"), table=t.ident, xid=sql.Literal(since))
    return {str(k): int(fp) for k, fp in _fetch(conn, query)}


def _fingerprints(conn: psycopg.Connection[Any], t: Table, keys: list[str]) -> dict[str, int]:
    if not keys:
        return {}
    query = sql.SQL("SELECT {key}, {fp} FROM {table} AS r WHERE {keys}").format(
        key=t.key_text("r"), fp=t.fingerprint("r"), table=t.ident, keys=t.key_in("r", keys)
    )
    return {str(k): int(fp) for k, fp in _fetch(conn, query)}


def diff_recent(
    a: psycopg.Connection[Any],
    b: psycopg.Connection[Any],
    t: Table,
    a_since: str,
    b_since: str,
) -> TableDiff:
    """The full difference, found from recent rows only.

    Rows changed on either side since the split (``xmin`` at or after ``a_since``
    on ``a``, ``b_since`` on ``b``) are compared by fingerprint; keys present
    on one side only (inserts, deletes, merged-away rows) are found from
    key-only bucket sums, which print no row.
    """
    ka, kb = _both(lambda: _key_buckets(a, t), lambda: _key_buckets(b, t))
    result = TableDiff(t, bytes=(len(ka) + len(kb)) * 28)
    buckets = sorted(k for k in ka.keys() | kb.keys() if ka.get(k) != kb.get(k))
    if buckets:
        keys_a, keys_b = _both(
            lambda: _bucket_keys(a, t, buckets), lambda: _bucket_keys(b, t, buckets)
        )
        result.only_a, result.only_b = keys_a - keys_b, keys_b - keys_a
        result.bytes += sum(len(k) for k in keys_a | keys_b)
    fa, fb = _both(lambda: _fresh(a, t, a_since), lambda: _fresh(b, t, b_since))
    ours = [k for k in fb if k not in fa and k not in result.only_b]
    theirs = [k for k in fa if k not in fb and k not in result.only_a]
    other_a, other_b = _both(lambda: _fingerprints(a, t, ours), lambda: _fingerprints(b, t, theirs))
    fa.update(other_a)
    fb.update(other_b)
    result.bytes += _key_bytes(fa) + _key_bytes(fb)
    result.differ = {k for k in fa.keys() & fb.keys() if fa[k] != fb[k]}
    return result

"""Find the rows that differ between two databases without shipping whole tables.

Both sides compute, inside PostgreSQL and at the same time, a checksum per key
bucket: rows are spread over ``BUCKETS`` buckets by a hash of their primary
key, and each bucket carries its row count and the sum of a 60-bit md5
fingerprint of every row.  Only the bucket lists cross the network (a few
dozen KB whatever the table size); then, for the buckets that differ, the
(key, fingerprint) of their rows; then, for the keys that differ, the rows
themselves.

The keys of differing buckets are never held: both sides stream them in the
same order (``COLLATE "C"``: byte order, in UTF-8 the same as Python's code
point order) a batch at a time, and a merge join keeps only the keys that
differ.  Memory grows with the difference, not with the table.  Keys that
arrive out of that order stop the comparison (:class:`OrderError`) rather
than be misread.

When the takeover recorded a split baseline (the standby's transaction id
when it stopped applying), the standby's own writes are found directly:
rows whose ``xmin`` is newer; only those keys are looked up on the primary,
through its primary key.  That is the merge's path: its cost grows with the
rows the standby wrote, not with the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from openclaw_failover.syncback.db.pgmeta import Table

BUCKETS = 4096  # a power of two
STREAM_ROWS = 2000  # rows per batch of a streamed key list
T = TypeVar("T")


class OrderError(Exception):
    """A streamed key list was not in the order both sides agreed on (nothing was written)."""


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


def _key_bytes(keys: dict[str, int]) -> int:
    return sum(len(k) + 8 for k in keys)


def _stream(conn: psycopg.Connection[Any], query: sql.Composed) -> Iterator[tuple[Any, ...]]:
    """The rows of ``query`` a batch at a time (libpq 17+ chunked mode, else row by row)."""
    size = STREAM_ROWS if psycopg.pq.version() >= 170000 else 1
    with conn.cursor() as cur:
        yield from cur.stream(query, size=size)


def _started(rows: Iterator[T]) -> Iterator[T]:
    """``rows`` with its first item fetched: the query is running (run both sides at once)."""
    for first in rows:
        return chain((first,), rows)
    return iter(())


def _sorted_keys(
    conn: psycopg.Connection[Any], t: Table, buckets: list[int], fingerprints: bool
) -> Iterator[tuple[Any, ...]]:
    """(key[, fingerprint]) of the rows in ``buckets``, streamed in byte order of the key."""
    query = sql.SQL(
        "SELECT {key}{fp} FROM {table} AS r WHERE hashtext({key}) & {mask} = ANY({buckets}) "
        'ORDER BY {key} COLLATE "C"'
    ).format(
        key=t.key_text("r"),
        fp=sql.SQL(", {}").format(t.fingerprint("r")) if fingerprints else sql.SQL(""),
        table=t.ident,
        mask=sql.Literal(BUCKETS - 1),
        buckets=sql.Literal(buckets),
    )
    return _stream(conn, query)


def _ordered(
    t: Table, rows: Iterator[tuple[Any, ...]], moved: list[int]
) -> Iterator[tuple[str, int]]:
    """(key, fingerprint or 0), checked to ascend; bytes counted into ``moved[0]``."""
    last: str | None = None
    for row in rows:
        key = str(row[0])
        if last is not None and key <= last:
            raise OrderError(
                f"{t.name}: keys arrived out of order; cannot compare, nothing written"
            )
        last = key
        moved[0] += len(key) + 8 * (len(row) - 1)
        yield key, int(row[1]) if len(row) > 1 else 0


def _merge_join(
    t: Table,
    rows_a: Iterator[tuple[Any, ...]],
    rows_b: Iterator[tuple[Any, ...]],
    result: TableDiff,
) -> int:
    """Walk two key-ordered streams together, keeping only the keys that differ; bytes read."""
    moved = [0]
    ia, ib = _ordered(t, rows_a, moved), _ordered(t, rows_b, moved)
    a, b = next(ia, None), next(ib, None)
    while a is not None and b is not None:
        if a[0] < b[0]:
            result.only_a.add(a[0])
            a = next(ia, None)
        elif b[0] < a[0]:
            result.only_b.add(b[0])
            b = next(ib, None)
        else:
            if a[1] != b[1]:
                result.differ.add(a[0])
            a, b = next(ia, None), next(ib, None)
    if a is not None:
        result.only_a.add(a[0])
    result.only_a.update(key for key, _ in ia)
    if b is not None:
        result.only_b.add(b[0])
    result.only_b.update(key for key, _ in ib)
    return moved[0]


def _compare_buckets(
    a: psycopg.Connection[Any],
    b: psycopg.Connection[Any],
    t: Table,
    buckets: list[int],
    result: TableDiff,
    fingerprints: bool,
) -> None:
    """Add to ``result`` the keys of ``buckets`` that differ (by fingerprint too, if asked)."""
    rows_a, rows_b = _both(
        lambda: _started(_sorted_keys(a, t, buckets, fingerprints)),
        lambda: _started(_sorted_keys(b, t, buckets, fingerprints)),
    )
    result.bytes += _merge_join(t, rows_a, rows_b, result) + len(buckets) * 8


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
    if differing:
        _compare_buckets(a, b, t, differing, result, fingerprints=True)
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
        _compare_buckets(a, b, t, buckets, result, fingerprints=False)
    fa, fb = _both(lambda: _fresh(a, t, a_since), lambda: _fresh(b, t, b_since))
    ours = [k for k in fb if k not in fa and k not in result.only_b]
    theirs = [k for k in fa if k not in fb and k not in result.only_a]
    other_a, other_b = _both(lambda: _fingerprints(a, t, ours), lambda: _fingerprints(b, t, theirs))
    fa.update(other_a)
    fb.update(other_b)
    result.bytes += _key_bytes(fa) + _key_bytes(fb)
    result.differ = {k for k in fa.keys() & fb.keys() if fa[k] != fb[k]}
    return result

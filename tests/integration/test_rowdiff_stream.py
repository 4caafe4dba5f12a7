"""rowdiff's streamed key comparison, against real PostgreSQL 18 and 15.

The keys of differing buckets are streamed from both sides in ``COLLATE "C"``
order and merge-joined in Python (memory grows with the difference, not with
the table).  These tests check that the result equals the difference computed
independently (every row of both sides loaded into Python), with keys chosen
to stress the ordering (unicode beyond the BMP, quotes, backslashes, case,
composite keys, a key column with a linguistic ICU collation), across batch
boundaries, and on 18 -> 15 as well.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from openclaw_failover.syncback.db import pgmeta, rowdiff
from openclaw_failover.syncback.db.rowdiff import OrderError, TableDiff, diff_recent, diff_table
from tests.harness.pg import PGCluster

pytestmark = pytest.mark.integration

VERSIONS = [("18", "18"), ("15", "15"), ("18", "15")]
ODD = [
    "",
    " ",
    "a b",
    "A",
    "Z",
    "a",
    "z",
    "é",
    "e\u0301",
    "ß",
    "日本",
    "\U0001f600",
    "\uffff",
    "\u00a0",
    'quo"te',
    "back\\slash",
    "com,ma",
    "(paren)",
    "tab\there",
    "new\nline",
    "NULL",
    "0",
    "10",
    "9",
]
ROWS = 3000
SCHEMA = """
CREATE TABLE rd (
    k text NOT NULL,
    n int NOT NULL,
    payload text,
    vec float8[],
    PRIMARY KEY (k, n)
);
CREATE TABLE rd1 (id text {collate} PRIMARY KEY, payload text);
"""


def linguistic(conn: psycopg.Connection[Any]) -> str:
    """A COLLATE clause for a usable ICU collation (not byte order, as many real
    databases have); "" when this build has none (embedded 18 lists ICU
    collations but is built without ICU)."""
    for name in ("unicode", "und-x-icu"):
        try:
            conn.execute(f"SELECT 'a' COLLATE \"{name}\" < 'B'")  # type: ignore[arg-type]
        except psycopg.Error:
            conn.rollback()
            continue
        conn.rollback()
        return f'COLLATE "{name}"'
    return ""


def base_rows() -> Iterator[tuple[str, int, str, list[float]]]:
    for i in range(ROWS):
        k = ODD[i % len(ODD)] + (str(i // len(ODD)) if i % 3 else "")
        yield k, i, f"row {i} 'quoted' \\ {ODD[i % len(ODD)]}", [i / 7, -i / 3, 1e-300]


def load(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA.format(collate=linguistic(conn)))  # type: ignore[arg-type]
    with conn.cursor() as cur:
        with cur.copy("COPY rd (k, n, payload, vec) FROM STDIN") as copy:
            for row in base_rows():
                copy.write_row(row)
        cur.execute(
            "INSERT INTO rd1 SELECT k || '/' || n, payload FROM rd",
        )
    conn.commit()


def everything(conn: psycopg.Connection[Any], table: str) -> dict[str, str]:
    """key text -> whole row text, loaded in full: the independent reference."""
    key = "ROW(r.k, r.n)::text" if table == "rd" else "r.id::text"
    rows = conn.execute(f"SELECT {key}, r::text FROM {table} AS r").fetchall()
    conn.rollback()
    return {str(k): str(v) for k, v in rows}


def expected(a: psycopg.Connection[Any], b: psycopg.Connection[Any], t: pgmeta.Table) -> TableDiff:
    ra, rb = everything(a, t.name), everything(b, t.name)
    d = TableDiff(t)
    d.only_a, d.only_b = set(ra) - set(rb), set(rb) - set(ra)
    d.differ = {k for k in ra.keys() & rb.keys() if ra[k] != rb[k]}
    return d


def change(conn: psycopg.Connection[Any], seed: int) -> None:
    """Deletes, inserts (odd keys too) and updates on one side."""
    conn.execute("DELETE FROM rd WHERE (hashtext(k)::bigint + n + %s) %% 97 = 0", [seed])
    conn.execute("DELETE FROM rd1 WHERE (hashtext(id)::bigint + %s) %% 89 = 0", [seed])
    conn.execute(
        "UPDATE rd SET payload = payload || ' edited ' || %s, vec = vec || 2.5::float8"
        " WHERE (hashtext(k)::bigint + n + %s) %% 101 = 1",
        [seed, seed],
    )
    conn.execute(
        "UPDATE rd1 SET payload = NULL WHERE (hashtext(id)::bigint + %s) %% 83 = 1", [seed]
    )
    for i, odd in enumerate(ODD):
        conn.execute(
            "INSERT INTO rd VALUES (%s, %s, %s, NULL)", [f"{odd}new{seed}", i, f"new {odd}"]
        )
        conn.execute("INSERT INTO rd1 VALUES (%s, 'new')", [f"{odd}\\new{seed}"])
    conn.commit()


@pytest.fixture
def two(
    request: pytest.FixtureRequest, pg_cluster_factory: Callable[..., PGCluster]
) -> Iterator[tuple[psycopg.Connection[Any], psycopg.Connection[Any]]]:
    va, vb = request.param
    ca, cb = pg_cluster_factory(va), pg_cluster_factory(vb)
    a = pgmeta.connect(ca.dsn("postgres"), 10)
    b = pgmeta.connect(cb.dsn("postgres"), 10)
    try:
        load(a)
        load(b)
        yield a, b
    finally:
        a.close()
        b.close()


def tables(conn: psycopg.Connection[Any]) -> list[pgmeta.Table]:
    out = [pgmeta.describe(conn, "public", name) for name in ("rd", "rd1")]
    conn.rollback()
    return out


def same(got: TableDiff, want: TableDiff) -> None:
    assert (got.only_a, got.only_b, got.differ) == (want.only_a, want.only_b, want.differ)


@pytest.mark.parametrize("two", VERSIONS, indirect=True, ids=["18-18", "15-15", "18-15"])
def test_streamed_diff_equals_the_full_comparison(
    two: tuple[psycopg.Connection[Any], psycopg.Connection[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = two
    for t in tables(a):
        assert not diff_table(a, b, t).changed  # equal at the start
    change(a, 1)
    change(b, 2)
    monkeypatch.setattr(rowdiff, "STREAM_ROWS", 7)  # many batch boundaries
    for t in tables(a):
        want = expected(a, b, t)
        assert want.only_a and want.only_b and want.differ  # the test compares something
        got = diff_table(a, b, t)
        same(got, want)
        assert got.rows_a == len(everything(a, t.name))
        assert got.rows_b == len(everything(b, t.name))
        assert got.bytes > 0


@pytest.mark.parametrize("two", VERSIONS[1:], indirect=True, ids=["15-15", "18-15"])
def test_recent_diff_finds_deletes_by_streamed_keys(
    two: tuple[psycopg.Connection[Any], psycopg.Connection[Any]],
) -> None:
    a, b = two
    since = []
    for conn in (a, b):
        row = conn.execute("SELECT txid_current()").fetchone()
        conn.commit()
        assert row is not None
        since.append(str(int(row[0]) % 2**32))
    change(a, 3)
    change(b, 4)
    for t in tables(a):
        want = expected(a, b, t)
        got = diff_recent(a, b, t, since[0], since[1])
        a.rollback()
        b.rollback()
        same(got, want)


def rows(keys: list[str]) -> Iterator[tuple[Any, ...]]:
    return iter([(k, len(k)) for k in keys])


def test_merge_join_keeps_only_the_differences() -> None:
    t = pgmeta.Table("public", "t", ("id",), ("text",), ("id",))
    d = TableDiff(t)
    a = [(k, 1) for k in ["a", "b", "d", "f", "g"]]
    b = [(k, 2 if k == "d" else 1) for k in ["b", "c", "d", "e", "g", "h"]]
    moved = rowdiff._merge_join(t, iter(a), iter(b), d)
    assert (d.only_a, d.only_b, d.differ) == ({"a", "f"}, {"c", "e", "h"}, {"d"})
    assert moved == sum(len(k) + 8 for k, _ in itertools.chain(a, b))
    empty = TableDiff(t)
    rowdiff._merge_join(t, iter([]), rows(["x", "y"]), empty)
    assert empty.only_b == {"x", "y"} and not empty.only_a


def test_keys_out_of_order_are_refused_not_misread() -> None:
    t = pgmeta.Table("public", "t", ("id",), ("text",), ("id",))
    with pytest.raises(OrderError, match="out of order"):
        rowdiff._merge_join(t, rows(["a", "c", "b"]), rows(["a", "b", "c"]), TableDiff(t))
    with pytest.raises(OrderError):  # a repeated key is out of order too
        rowdiff._merge_join(t, rows(["a"]), rows(["a", "a"]), TableDiff(t))

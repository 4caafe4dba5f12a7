"""Deletes that travel: what the standby held at the split, and what it deleted since.

At takeover, right after the subscription is disabled and before the local
gateway starts, the standby's keys are recorded per table as 64-bit hashes
(``hashtextextended(key, 0)``) in PostgreSQL's binary COPY format, streamed
straight to ``<state_dir>/split-keys/`` (14 bytes a row; the process never
holds them).  At give-back the file is streamed back into a temporary table
on the standby, and an anti-join finds the keys the standby deleted while it
served: the Python side only ever holds those.

Such a row is deleted on the primary (after being kept in quarantine) when the
primary has not changed it since the split and when nothing on the primary
that would go with it (rows referencing it) is to stay; otherwise the
primary's row stays and the difference is reported as a conflict.  "Changed
since the split" means: its ``xmin`` is one of the transactions the old slot
still holds (peeked with ``pg_logical_slot_peek_binary_changes``, never
consumed).  A row changed inside a savepoint carries a subtransaction id and
is taken as unchanged: it is still kept in quarantine.  Without a recorded
manifest, or without the old slot, deletes do not travel and the report says so.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from openclaw_failover.syncback.db.pgmeta import SKIP_TABLES, Table, describe, parse_names
from openclaw_failover.syncback.quarantine import Writer

DIR = "split-keys"
INDEX = "index.json"
CHUNK = 1 << 16


def _key_hash(t: Table, alias: str) -> sql.Composable:
    return sql.SQL("hashtextextended({}, 0)").format(t.key_text(alias))


def _file(t: Table) -> str:
    return f"{t.schema}.{t.name}.keys"


def subscribed_tables(standby: psycopg.Connection[Any], subscription: str) -> list[Table]:
    """The tables the standby's subscription fills, described from the standby alone."""
    rows = standby.execute(
        "SELECT n.nspname, c.relname FROM pg_subscription_rel r "
        "JOIN pg_subscription s ON s.oid = r.srsubid JOIN pg_class c ON c.oid = r.srrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE s.subname = %s ORDER BY 1, 2",
        [subscription],
    ).fetchall()
    return [describe(standby, str(s), str(n)) for s, n in rows if str(n) not in SKIP_TABLES]


def record(
    standby: psycopg.Connection[Any], state_dir: Path, subscription: str, names: tuple[str, ...]
) -> int:
    """Write the standby's key manifest (atomically: all tables or none); return rows."""
    if names:
        tables = [describe(standby, s, n) for s, n in parse_names(names) if n not in SKIP_TABLES]
    else:
        tables = subscribed_tables(standby, subscription)
    tmp = state_dir / f".{DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, mode=0o700)
    counts: dict[str, int] = {}
    for t in tables:
        query = sql.SQL("COPY (SELECT {} FROM {} AS r) TO STDOUT (FORMAT binary)").format(
            _key_hash(t, "r"), t.ident
        )
        with open(tmp / _file(t), "wb") as out, standby.cursor() as cur:
            with cur.copy(query) as copy:
                for chunk in copy:
                    out.write(chunk)
            counts[t.qualified] = max(cur.rowcount, 0)
            out.flush()
            os.fsync(out.fileno())
    (tmp / INDEX).write_text(json.dumps({"tables": counts}))
    final = state_dir / DIR
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return sum(counts.values())


def recorded(state_dir: Path) -> dict[str, int] | None:
    try:
        data = json.loads((state_dir / DIR / INDEX).read_text())
        return {str(k): int(v) for k, v in data["tables"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def forget(state_dir: Path) -> None:
    shutil.rmtree(state_dir / DIR, ignore_errors=True)


@dataclass
class Deletes:
    """The standby's deletes, per table (qualified name)."""

    keys: dict[str, list[str]] = field(default_factory=dict)  # to delete on the primary
    conflicts: list[str] = field(default_factory=list)  # kept on the primary, and why
    note: str = ""  # why deletes could not travel, when they could not


def _missing_hashes(standby: psycopg.Connection[Any], t: Table, path: Path) -> list[int]:
    """Hashes in the manifest that the standby no longer has (its deletes)."""
    temp = sql.Identifier(f"ocf_keys_{t.name}"[:63])
    standby.execute(sql.SQL("CREATE TEMP TABLE {} (h int8) ON COMMIT DROP").format(temp))
    query = sql.SQL("COPY {} (h) FROM STDIN (FORMAT binary)").format(temp)
    with standby.cursor() as cur, open(path, "rb") as src, cur.copy(query) as copy:
        while chunk := src.read(CHUNK):
            copy.write(chunk)
    rows = standby.execute(
        sql.SQL(
            "SELECT m.h FROM {} m WHERE NOT EXISTS (SELECT 1 FROM {} AS r WHERE {} = m.h)"
        ).format(temp, t.ident, _key_hash(t, "r"))
    ).fetchall()
    return [int(h) for (h,) in rows]


SPLIT_XIDS = sql.Identifier("ocf_split_xids")


def split_xids(primary: psycopg.Connection[Any], slot: str, publications: list[str]) -> bool:
    """Note, in a temporary table, the ids of the primary's transactions after the split.

    They are the transactions the old slot still holds (the standby never
    applied them): peeked, not consumed.  Runs before the merge writes anything
    (logical decoding needs that), in a savepoint; False when they cannot be read."""
    pubs = ",".join('"' + p.replace('"', '""') + '"' for p in publications)
    primary.execute("SELECT 1")  # inside the merge's transaction: a savepoint below
    try:
        with primary.transaction():
            primary.execute(
                sql.SQL(
                    "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT DISTINCT xid "
                    "FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
                    "'proto_version', '1', 'publication_names', %s)"
                ).format(SPLIT_XIDS),
                [slot, pubs],
            )
    except psycopg.Error:
        return False
    return True


MERGE_XIDS = "merge-xids.json"  # the primary transactions of this give-back's own merges


def note_merge(primary: psycopg.Connection[Any], state_dir: Path) -> None:
    """Record the merge transaction's id before it commits (with a manifest only).

    A row it writes keeps that ``xmin`` until the primary changes it again: such
    a row is ours, not "changed on the primary since the split", and when the
    standby deletes it before the final pass, the delete travels too."""
    if recorded(state_dir) is None:
        return
    row = primary.execute("SELECT mod(txid_current(), 4294967296)").fetchone()
    xids = sorted({*merge_xids(state_dir), int(row[0]) if row else 0})
    from openclaw_failover.local import safefs

    safefs.write_atomic(state_dir / DIR / MERGE_XIDS, json.dumps(xids).encode())


def merge_xids(state_dir: Path) -> list[int]:
    try:
        data = json.loads((state_dir / DIR / MERGE_XIDS).read_text())
        return [int(x) for x in data]
    except (OSError, ValueError, TypeError):
        return []


def changed_since_split(alias: str, ours: list[int]) -> sql.Composable:
    """SQL: the primary's row ``alias`` was written after the split, not by our merges.

    Its ``xmin`` is one of the old slot's pending transactions, or newer than the
    oldest of them (a row written inside a savepoint carries a subtransaction
    id, always newer than its transaction's).  A transaction that committed
    before the split with a newer id only makes a row count as changed: kept."""
    xmin = sql.SQL("{}.xmin").format(sql.Identifier(alias))
    ours_lit = sql.Literal([int(x) for x in ours])
    return sql.SQL(
        "(NOT {xmin}::text::int8 = ANY({ours}::int8[]) AND coalesce("
        "EXISTS (SELECT 1 FROM {x} x WHERE x.xid = {xmin}) OR age({xmin}) < "
        "(SELECT max(age(x.xid)) FROM {x} x WHERE NOT x.xid::text::int8 = ANY({ours}::int8[])),"
        " false))"
    ).format(xmin=xmin, ours=ours_lit, x=SPLIT_XIDS)


def _primary_rows(
    primary: psycopg.Connection[Any], t: Table, hashes: list[int], ours: list[int]
) -> tuple[list[str], list[str]]:
    """(unchanged since the split, changed since) keys on the primary with these hashes."""
    rows = primary.execute(
        sql.SQL("SELECT {}, {} FROM {} AS r WHERE {} = ANY(%s::int8[])").format(
            t.key_text("r"), changed_since_split("r", ours), t.ident, _key_hash(t, "r")
        ),
        [hashes],
    ).fetchall()
    return [str(k) for k, new in rows if not new], [str(k) for k, new in rows if new]


def _ours_gone(
    primary: psycopg.Connection[Any], standby: psycopg.Connection[Any], t: Table, ours: list[int]
) -> list[str]:
    """Rows an earlier merge of this give-back wrote, unchanged since, that the standby
    deleted after it (they were never in the takeover's manifest)."""
    if not ours:
        return []
    rows = primary.execute(
        sql.SQL("SELECT {} FROM {} AS r WHERE r.xmin::text::int8 = ANY(%s::int8[])").format(
            t.key_text("r"), t.ident
        ),
        [ours],
    ).fetchall()
    keys = [str(k) for (k,) in rows]
    return sorted(set(keys) - _present(standby, t, keys))


def _present(conn: psycopg.Connection[Any], t: Table, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    rows = conn.execute(
        sql.SQL("SELECT {} FROM {} AS r WHERE {}").format(
            t.key_text("r"), t.ident, t.key_in("r", keys)
        )
    ).fetchall()
    return {str(k) for (k,) in rows}


def find(
    primary: psycopg.Connection[Any],
    standby: psycopg.Connection[Any],
    tables: list[Table],
    state_dir: Path,
    known_xids: bool,
) -> Deletes:
    """What the standby deleted while it served and the primary may delete too."""
    out = Deletes()
    index = recorded(state_dir)
    if index is None:
        out.note = "no key manifest from the takeover: deletes made on the standby do not travel"
        return out
    if not known_xids:
        out.note = (
            "the primary's changes since the split cannot be read from its old slot: "
            "deletes made on the standby do not travel"
        )
        return out
    ours = merge_xids(state_dir)
    for t in tables:
        path = state_dir / DIR / _file(t)
        unchanged: list[str] = []
        changed: list[str] = []
        hashes = _missing_hashes(standby, t, path) if path.exists() else []
        if hashes:
            unchanged, changed = _primary_rows(primary, t, hashes, ours)
            unchanged = sorted(set(unchanged) - _present(standby, t, unchanged))  # collisions
        out.conflicts += [
            f"{t.name} {k}: deleted on the standby, changed on the primary since: kept"
            for k in changed
        ]
        gone = sorted({*unchanged, *_ours_gone(primary, standby, t, ours)})
        if gone:
            out.keys[t.qualified] = gone
    _keep_referenced(primary, tables, out)
    return out


def _keep_referenced(primary: psycopg.Connection[Any], tables: list[Table], out: Deletes) -> None:
    """A row stays when a primary row referencing it stays (children first)."""
    by_name = {t.qualified: t for t in tables}
    for t in reversed(tables):
        keys = set(out.keys.get(t.qualified, ()))
        changed = True
        while keys and changed:  # a loop only for a table that references itself
            changed = False
            for fk in t.children:
                child = by_name.get(fk.child)
                if child is None:
                    continue
                going = keys if fk.child == t.qualified else set(out.keys.get(fk.child, ()))
                held = _held(primary, child, fk.column, fk.parent_column, t, keys, going)
                if held:
                    keys -= held
                    changed = True
                    out.conflicts += [
                        f"{t.name} {k}: deleted on the standby, but {child.name} rows on the "
                        "primary still refer to it: kept"
                        for k in sorted(held)
                    ]
        if keys:
            out.keys[t.qualified] = sorted(keys)
        else:
            out.keys.pop(t.qualified, None)


def _held(
    primary: psycopg.Connection[Any],
    child: Table,
    column: str,
    parent_column: str,
    parent: Table,
    keys: set[str],
    going: set[str],
) -> set[str]:
    if parent.pkey != (parent_column,):
        return set(keys)  # a reference to another column: keep them all
    rows = primary.execute(
        sql.SQL(
            "SELECT DISTINCT c.{col}::text FROM {child} AS c "
            "WHERE c.{col}::text = ANY(%s) AND NOT ({ckey} = ANY(%s))"
        ).format(col=sql.Identifier(column), child=child.ident, ckey=child.key_text("c")),
        [sorted(keys), sorted(going)],
    ).fetchall()
    return {str(k) for (k,) in rows}


def apply(
    primary: psycopg.Connection[Any],
    tables: list[Table],
    found: Deletes,
    quarantine: Writer,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Quarantine, then delete, children first (inside the caller's transaction)."""
    done: dict[str, int] = {}
    for t in reversed(tables):
        keys = found.keys.get(t.qualified)
        if not keys:
            continue
        if progress:
            progress(f"{t.name}: {len(keys):,} rows deleted on the standby, deleting them here")
        kept = quarantine.save(
            primary, "primary", t, keys, "deleted on the standby while it served"
        )
        if kept:
            cur = primary.execute(
                sql.SQL("DELETE FROM {} AS r WHERE {}").format(t.ident, t.key_in("r", kept))
            )
            done[t.qualified] = cur.rowcount
    return done

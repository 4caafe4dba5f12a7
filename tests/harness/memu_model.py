"""The model of a give-back: which memU rows each host must hold afterwards.

Pure functions over snapshots (no database access except :func:`snapshot`):

* :func:`snapshot` reads the four memU tables of one host: ``{table: {key: row}}``
  with rows as tuples in :data:`COLUMNS` order and embeddings as the raw bytes of
  ``vector_send`` / ``array_send`` (so comparisons are byte-exact).
* :func:`expected_giveback` is the oracle.  From the rows at the split (``s0``,
  equal on both hosts), the primary's and the standby's rows when the give-back
  starts, it returns the rows both hosts must hold when it has completed, with
  the reason for every row and the rows that must have been set aside (FK
  orphans).  ``baseline=False`` is a manual repair without a takeover baseline.
* :func:`check_giveback` compares the end state with the model and returns the
  broken invariants as :class:`Violation` (invariant, table, key, detail).

The rules (issue 8), with a baseline:

=============================================  ======================================
standby inserted                               inserted on the primary
standby updated, primary untouched             the standby's version (whatever its
                                               ``updated_at``)
updated on both                                greater ``updated_at``; equal: primary
standby deleted, primary untouched             deleted on the primary
standby deleted, primary changed               the primary's row stays (conflict)
primary deleted, standby updated               the standby's row returns, unless its
                                               parent is gone: FK orphan, set aside
primary deleted, standby untouched             stays deleted
=============================================  ======================================

A parent the standby deleted stays on the primary while a primary row that stays
references it.  A standby category whose ``(scope_key, lower(name))`` clashes with
a primary category is merged into the primary's (the primary's row unchanged),
its links re-pointed; a link that then clashes on ``(scope_key, item_id,
category_id)`` is merged away.  Without a baseline: every row only on the standby
is inserted (``discard_standby_only``: dropped, to quarantine), rows on both:
greater ``updated_at`` wins (equal: the primary's), nothing the primary holds is
deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from openclaw_failover.sandbox.memu import embedding_type

Row = tuple[Any, ...]
Snapshot = dict[str, dict[str, Row]]

#: The memU tables the model covers, parents first (alembic_version is compared as is).
TABLES: tuple[str, ...] = ("resources", "memory_categories", "memory_items", "category_items")
COLUMNS: dict[str, tuple[str, ...]] = {
    "resources": (
        "id", "scope_key", "url", "modality", "local_path", "caption", "embedding",
        "created_at", "updated_at",
    ),
    "memory_categories": (
        "id", "scope_key", "name", "description", "embedding", "summary", "created_at",
        "updated_at",
    ),
    "memory_items": (
        "id", "scope_key", "resource_id", "memory_type", "summary", "embedding", "created_at",
        "updated_at",
    ),
    "category_items": ("id", "scope_key", "item_id", "category_id", "created_at", "updated_at"),
}  # fmt: skip
#: (child table, FK column, parent table); every FK cascades on delete.
FKS: tuple[tuple[str, str, str], ...] = (
    ("memory_items", "resource_id", "resources"),
    ("category_items", "item_id", "memory_items"),
    ("category_items", "category_id", "memory_categories"),
)
HOSTS = ("primary", "standby")


def col(table: str, row: Row, name: str) -> Any:
    return row[COLUMNS[table].index(name)]


def with_col(table: str, row: Row, name: str, value: Any) -> Row:
    i = COLUMNS[table].index(name)
    return (*row[:i], value, *row[i + 1 :])


def snapshot(conn: psycopg.Connection[Any]) -> Snapshot:
    """The four memU tables of one host; embeddings as their binary send bytes."""
    send = "vector_send" if embedding_type(conn) == "vector" else "array_send"
    out: Snapshot = {}
    for table in TABLES:
        cols = [
            sql.SQL("{}({})").format(sql.SQL(send), sql.Identifier(c))
            if c == "embedding"
            else sql.Identifier(c)
            for c in COLUMNS[table]
        ]
        rows = conn.execute(
            sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(cols), sql.Identifier(table))
        ).fetchall()
        out[table] = {
            str(r[0]): tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows
        }
    if not conn.autocommit:
        conn.rollback()
    return out


def describe(table: str, row: Row | None) -> str:
    """A short form of a row for failure messages."""
    if row is None:
        return "absent"
    parts = []
    for name, value in zip(COLUMNS[table], row, strict=True):
        if name in ("id", "scope_key", "url", "local_path", "modality", "created_at"):
            continue
        if isinstance(value, bytes):
            text = f"<{len(value)} bytes>"
        elif isinstance(value, str) and len(value) > 24:
            text = repr(value[:24]) + "..."
        else:
            text = repr(value)
        parts.append(f"{name}={text}")
    return "(" + ", ".join(parts) + ")"


# --------------------------------------------------------------------------- the oracle


@dataclass
class Expected:
    """What both hosts must hold after a completed give-back, and why."""

    rows: Snapshot
    why: dict[tuple[str, str], str] = field(default_factory=dict)
    orphans: set[tuple[str, str]] = field(default_factory=set)  # set aside (quarantine, standby)
    merged: dict[tuple[str, str], str] = field(default_factory=dict)  # standby key -> primary key
    conflicts: set[tuple[str, str]] = field(default_factory=set)  # deleted on standby, kept
    kept_parents: set[tuple[str, str]] = field(default_factory=set)
    oracle_notes: list[str] = field(default_factory=list)  # the model could not decide


_DELETED_ON_STANDBY = "deleted on the standby, untouched on the primary: deleted"


def _newer(table: str, p: Row, s: Row) -> Row:
    return s if col(table, s, "updated_at") > col(table, p, "updated_at") else p


def _decide(table: str, a0: Row | None, p: Row | None, s: Row | None) -> tuple[Row | None, str]:
    """One key, ignoring foreign keys and unique indexes: (version or None, reason)."""
    if a0 is None:
        if p is not None and s is not None:
            return _newer(table, p, s), "inserted on both: greater updated_at (equal: primary)"
        if p is not None:
            return p, "inserted on the primary"
        return s, "inserted on the standby"
    changed_p, changed_s = p != a0, s != a0
    if not changed_p and not changed_s:
        return a0, "untouched since the split"
    if not changed_s:
        return p, "changed on the primary only" if p is not None else "deleted on the primary"
    if not changed_p:
        if s is None:
            return None, _DELETED_ON_STANDBY
        return s, "updated on the standby only: the standby's version"
    if p is None and s is None:
        return None, "deleted on both"
    if s is None:
        return p, "deleted on the standby but changed on the primary: the primary's row stays"
    if p is None:
        return s, "deleted on the primary, updated on the standby: returns"
    return _newer(table, p, s), "updated on both: greater updated_at (equal: primary)"


def _decide_repair(
    table: str, p: Row | None, s: Row | None, discard: bool
) -> tuple[Row | None, str]:
    if p is not None and s is not None:
        if p == s:
            return p, "equal on both"
        return _newer(table, p, s), "differs (no baseline): greater updated_at (equal: primary)"
    if p is not None:
        return p, "only on the primary (no baseline): kept"
    if discard:
        return None, "only on the standby, discard_standby_only: discarded (to quarantine)"
    return s, "only on the standby (no baseline): inserted on the primary"


def expected_giveback(
    s0: Snapshot | None,
    p: Snapshot,
    s: Snapshot,
    *,
    baseline: bool = True,
    discard_standby_only: bool = False,
    merged_from: Snapshot | None = None,
) -> Expected:
    """The rows of both hosts after a completed give-back (see the module docstring).

    ``merged_from``: the standby's rows when a merge ran while it still served.
    A row whose primary copy is exactly that version was written by the give-back,
    not changed by the primary: that version counts as the row's baseline.
    """
    exp = Expected(rows={t: {} for t in TABLES})
    pending_delete: dict[tuple[str, str], Row] = {}  # deleted on the standby: maybe kept
    for t in TABLES:
        base = (s0 or {}).get(t, {})
        for k in set(base) | set(p[t]) | set(s[t]):
            if baseline:
                a0 = base.get(k)
                merged = (merged_from or {}).get(t, {}).get(k)
                if merged is not None and p[t].get(k) == merged:
                    a0 = merged
                row, why = _decide(t, a0, p[t].get(k), s[t].get(k))
            else:
                row, why = _decide_repair(t, p[t].get(k), s[t].get(k), discard_standby_only)
            exp.why[(t, k)] = why
            if row is not None:
                exp.rows[t][k] = row
                if why.startswith("deleted on the standby but"):
                    exp.conflicts.add((t, k))
            elif why == _DELETED_ON_STANDBY:
                pending_delete[(t, k)] = p[t][k]
    _keep_referenced_parents(exp, pending_delete)
    _merge_category_clashes(exp, p)
    _set_orphans_aside(exp, p)
    _merge_link_clashes(exp, p)
    _self_check(exp)
    return exp


def _keep_referenced_parents(exp: Expected, pending: dict[tuple[str, str], Row]) -> None:
    """Bottom-up: a parent deleted on the standby stays while a kept row references it."""
    for child, column, parent in reversed(FKS):
        for row in list(exp.rows[child].values()):
            ref = str(col(child, row, column))
            if (parent, ref) in pending and ref not in exp.rows[parent]:
                exp.rows[parent][ref] = pending[(parent, ref)]
                exp.kept_parents.add((parent, ref))
                exp.why[(parent, ref)] = (
                    f"deleted on the standby, but kept: the primary's {child} "
                    f"{row[0]} still references it"
                )


def _name_key(row: Row) -> tuple[str, str]:
    return (
        str(col("memory_categories", row, "scope_key")),
        str(col("memory_categories", row, "name")).lower(),
    )


def _merge_category_clashes(exp: Expected, p: Snapshot) -> None:
    cats = exp.rows["memory_categories"]
    held = {_name_key(r): k for k, r in cats.items() if k in p["memory_categories"]}
    for k, row in sorted(cats.items()):
        if k in p["memory_categories"]:
            continue
        other = held.get(_name_key(row))
        if other is not None and other != k:
            del cats[k]
            exp.merged[("memory_categories", k)] = other
            exp.why[("memory_categories", k)] = (
                f"clashes on (scope_key, lower(name)) with the primary's {other}: merged into it"
            )
    remap = {k: v for (t, k), v in exp.merged.items() if t == "memory_categories"}
    links = exp.rows["category_items"]
    for k, row in list(links.items()):
        cat = str(col("category_items", row, "category_id"))
        if cat in remap:
            links[k] = with_col("category_items", row, "category_id", remap[cat])
            exp.why[("category_items", k)] += f"; re-pointed from category {cat} to {remap[cat]}"


def _set_orphans_aside(exp: Expected, p: Snapshot) -> None:
    """Top-down: a row new to the primary whose parent the primary lacks is set aside."""
    for child, column, parent in FKS:
        for k, row in sorted(exp.rows[child].items()):
            ref = str(col(child, row, column))
            if ref in exp.rows[parent]:
                continue
            if k in p[child]:
                exp.oracle_notes.append(
                    f"{child} {k}: the primary's row references {parent} {ref}, which the "
                    "model removes"
                )
                continue
            del exp.rows[child][k]
            exp.orphans.add((child, k))
            exp.why[(child, k)] = (
                f"FK orphan: its {parent} {ref} is gone from the primary: set aside in quarantine"
            )


def _merge_link_clashes(exp: Expected, p: Snapshot) -> None:
    links = exp.rows["category_items"]

    def ukey(row: Row) -> tuple[Any, ...]:
        return tuple(col("category_items", row, c) for c in ("scope_key", "item_id", "category_id"))

    held = {ukey(r): k for k, r in links.items() if k in p["category_items"]}
    seen: dict[tuple[Any, ...], str] = {}
    for k, row in sorted(links.items()):
        if k in p["category_items"]:
            continue
        u = ukey(row)
        other = held.get(u) or seen.get(u)
        if other is None:
            seen[u] = k
            continue
        if other in seen.values():
            exp.oracle_notes.append(f"category_items {k} and {other}: two new links clash")
        del links[k]
        exp.merged[("category_items", k)] = other
        exp.why[("category_items", k)] = (
            f"clashes on (scope_key, item_id, category_id) with {other}: merged away"
        )


def _self_check(exp: Expected) -> None:
    for child, column, parent in FKS:
        for k, row in exp.rows[child].items():
            ref = str(col(child, row, column))
            if ref not in exp.rows[parent]:
                exp.oracle_notes.append(f"{child} {k} -> {parent} {ref}: dangling in the model")


# --------------------------------------------------------------------------- invariants


@dataclass(frozen=True)
class Violation:
    invariant: str
    table: str
    key: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.table} {self.key}: " if self.table else ""
        return f"[{self.invariant}] {where}{self.detail}"


def compare_to_model(
    exp: Expected,
    s0: Snapshot | None,
    p1: Snapshot,
    s1: Snapshot,
    final: Snapshot,
    invariant: str = "model",
    *,
    p1_deletes_may_wait: bool = False,
) -> list[Violation]:
    """Rows on ``final`` (a host after the give-back) against the model, key by key.

    ``p1_deletes_may_wait``: (the merge while the standby still serves) a row the
    standby deleted may still be on the primary, unchanged; the final pass deletes it.
    """
    out = [Violation("oracle", "", "", n) for n in exp.oracle_notes]
    for t in TABLES:
        want, got = exp.rows[t], final[t]
        for k in sorted(set(want) | set(got)):
            if want.get(k) == got.get(k):
                continue
            waits = exp.why.get((t, k)) == _DELETED_ON_STANDBY or (t, k) in exp.kept_parents
            if p1_deletes_may_wait and waits and got.get(k) == p1[t].get(k):
                continue
            history = (
                (f"at split {describe(t, s0[t].get(k))}; " if s0 is not None else "no baseline; ")
                + f"primary at start {describe(t, p1[t].get(k))}; "
                + f"standby at start {describe(t, s1[t].get(k))}"
            )
            if k not in got:
                what = "missing (row lost or not merged)"
                for child, column, parent in FKS:
                    if child == t:
                        ref = str(col(t, want[k], column))
                        state = "present" if ref in got_parents(final, parent) else "absent"
                        what += f" [its {column} {ref}: {state}; {exp.why.get((parent, ref), '?')}]"
            elif k not in want:
                what = "present but the model says it must be gone"
            else:
                diff = [c for c, a, b in zip(COLUMNS[t], want[k], got[k], strict=True) if a != b]
                what = f"wrong version (columns {', '.join(diff)}): got {describe(t, got[k])}"
                for child, column, parent in FKS:
                    if child == t and column in diff:
                        ref = str(col(t, got[k], column))
                        what += f" [its {column} {ref}: {exp.why.get((parent, ref), '?')}]"
            rule = exp.why.get((t, k), "not known to the model (written by whom?)")
            out.append(Violation(invariant, t, k, f"{what}; rule: {rule}; {history}"))
    return out


def got_parents(final: Snapshot, parent: str) -> dict[str, Row]:
    return final[parent]


def check_quarantine(
    p1: Snapshot,
    s1: Snapshot,
    final_p: Snapshot,
    final_s: Snapshot,
    quarantined: Mapping[tuple[str, str], set[str]],
) -> list[Violation]:
    """Nothing is deleted or overwritten that exists nowhere else.

    Every row version a host held when the give-back started and no longer holds
    identically is in that host's quarantine.  A standby version is exempt when
    the primary holds it identically at the end, or held it at the start (then
    the primary's own check covers it).
    """
    out = []
    for t in TABLES:
        for k, row in p1[t].items():
            if final_p[t].get(k) != row and k not in quarantined.get(("primary", t), set()):
                what = "deleted" if k not in final_p[t] else "overwritten"
                out.append(
                    Violation(
                        "quarantine",
                        t,
                        k,
                        f"the primary's row was {what} but is not in quarantine (host primary): "
                        f"{describe(t, row)}",
                    )
                )
        for k, row in s1[t].items():
            if row in (final_s[t].get(k), final_p[t].get(k), p1[t].get(k)):
                continue
            if k not in quarantined.get(("standby", t), set()):
                what = "dropped" if k not in final_s[t] else "replaced"
                out.append(
                    Violation(
                        "quarantine",
                        t,
                        k,
                        f"the standby's own version was {what} and is not in quarantine "
                        f"(host standby): {describe(t, row)}",
                    )
                )
    return out


def check_orphans_quarantined(
    exp: Expected, quarantined: Mapping[tuple[str, str], set[str]]
) -> list[Violation]:
    return [
        Violation("orphan-set-aside", t, k, "FK orphan not in quarantine (host standby)")
        for t, k in sorted(exp.orphans)
        if k not in quarantined.get(("standby", t), set())
    ]

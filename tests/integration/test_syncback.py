"""Sync-back of rows against two real PostgreSQL clusters with real logical replication.

Each test runs on PostgreSQL 18 (embedded, pgvector), on Debian's PostgreSQL 15
(float8[] embeddings) and mixed (primary 18, standby 15).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from openclaw_failover.config.loader import Config, DatabaseConfig
from openclaw_failover.config.secrets import Masker
from openclaw_failover.syncback.report import SyncReport
from openclaw_failover.syncback.run import disable_subscription, sync_back
from tests.harness.pg import MEMU_TABLES, MemuPair, embedding_type, write_memory
from tests.unit.test_decide import make_cfg

pytestmark = pytest.mark.integration
PAIRS = ["pg18", "pg15", "mixed"]


def cfg_for(pair: MemuPair) -> Config:
    base = make_cfg()
    db = DatabaseConfig(pair.primary.dsn(), pair.standby.dsn(), connect_timeout=5)
    state_dir = Path(pair.standby.home).parent / f"{Path(pair.standby.home).name}-ocf-state"
    return Config(**{**base.__dict__, "database": db, "state_dir": state_dir})


def run(pair: MemuPair, **kw: Any) -> SyncReport:
    return sync_back(cfg_for(pair), mask=Masker(), **kw)


def split(pair: MemuPair) -> None:
    """What the takeover does: the standby stops applying the primary's changes."""
    pair.wait_caught_up()
    assert disable_subscription(cfg_for(pair), Masker()).startswith(
        "disabled subscription memu_sub; recorded"
    )


def rows(pair: MemuPair, side: str) -> dict[str, dict[Any, tuple[Any, ...]]]:
    cluster = pair.primary if side == "primary" else pair.standby
    return {t: pair.table_rows(cluster, t) for t in MEMU_TABLES}


def vector_bytes(conn: psycopg.Connection[Any], item_id: str) -> bytes:
    send = "vector_send" if embedding_type(conn) == "vector" else "array_send"
    row = conn.execute(
        f"SELECT {send}(embedding) FROM memory_items WHERE id = %s", [item_id]
    ).fetchone()
    assert row is not None
    return bytes(row[0])


def assert_flowing(pair: MemuPair) -> None:
    """An insert on the primary reaches the standby, with no apply error."""
    with pair.primary.connect() as p:
        m = write_memory(p, text="after sync-back", category="later")
    pair.wait_caught_up()
    with pair.standby.connect() as s:
        assert s.execute(
            "SELECT 1 FROM memory_items WHERE id = %s", [m["memory_item_id"]]
        ).fetchone()
    assert pair.apply_error_count() == 0
    pair.assert_equal()


@pytest.mark.parametrize("memu_pair", PAIRS, indirect=True)
def test_standby_memories_reach_the_primary_byte_identical(memu_pair: MemuPair) -> None:
    pair = memu_pair
    with pair.primary.connect() as p:
        write_memory(p, text="before the split")
    split(pair)
    with pair.standby.connect() as s:
        written = [
            write_memory(s, text=f"on the standby {i}", category="work", dim=16) for i in range(3)
        ]
    report = run(pair)
    assert report.ok, report.error
    by_table = {t.table: t for t in report.tables}
    assert by_table["memory_items"].inserted == 3 and by_table["resources"].inserted == 3
    with pair.primary.connect() as p, pair.standby.connect() as s:
        for m in written:
            assert vector_bytes(p, m["memory_item_id"]) == vector_bytes(s, m["memory_item_id"])
    pair.assert_equal()
    assert_flowing(pair)


@pytest.mark.parametrize("memu_pair", PAIRS, indirect=True)
def test_newer_updated_at_wins_older_does_not(memu_pair: MemuPair) -> None:
    pair = memu_pair
    with pair.primary.connect() as p:
        a = write_memory(p, text="a", updated_at=1000)
        b = write_memory(p, text="b", updated_at=1000)
    split(pair)
    with pair.standby.connect() as s:
        s.execute(
            "UPDATE memory_items SET summary = 'a from standby', updated_at = 3000 WHERE id = %s",
            [a["memory_item_id"]],
        )
        s.execute(
            "UPDATE memory_items SET summary = 'b from standby', updated_at = 1500 WHERE id = %s",
            [b["memory_item_id"]],
        )
    with pair.primary.connect() as p:
        p.execute(
            "UPDATE memory_items SET summary = 'b from primary', updated_at = 2000 WHERE id = %s",
            [b["memory_item_id"]],
        )
    report = run(pair)
    assert report.ok, report.error
    items = {t.table: t for t in report.tables}["memory_items"]
    assert (items.updated, items.kept_primary) == (1, 1)
    with pair.primary.connect() as p:
        summaries = dict(p.execute("SELECT id, summary FROM memory_items").fetchall())
    assert summaries[a["memory_item_id"]] == "a from standby"
    assert summaries[b["memory_item_id"]] == "b from primary"
    pair.assert_equal()


@pytest.mark.parametrize("memu_pair", PAIRS, indirect=True)
def test_same_category_on_both_sides_is_merged_and_links_repointed(memu_pair: MemuPair) -> None:
    pair = memu_pair
    split(pair)
    with pair.standby.connect() as s:
        ours = write_memory(s, text="standby's work memory", category="Work")
    with pair.primary.connect() as p:
        theirs = write_memory(p, text="primary's work memory", category="work")
    report = run(pair)
    assert report.ok, report.error
    cats = {t.table: t for t in report.tables}["memory_categories"]
    assert len(cats.merged) == 1 and ours["category_id"] in cats.merged[0]
    with pair.primary.connect() as p:
        assert p.execute(
            "SELECT count(*) FROM memory_categories WHERE lower(name) = 'work'"
        ).fetchone() == (1,)
        link = p.execute(
            "SELECT category_id FROM category_items WHERE item_id = %s", [ours["memory_item_id"]]
        ).fetchone()
        assert link == (theirs["category_id"],)  # re-pointed to the primary's category
        assert p.execute("SELECT count(*) FROM memory_items").fetchone() == (2,)
    pair.assert_equal()
    assert_flowing(pair)


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_different_schema_revisions_are_refused(memu_pair: MemuPair) -> None:
    pair = memu_pair
    split(pair)
    with pair.standby.connect() as s:
        write_memory(s, text="standby")
        s.execute("UPDATE alembic_version SET version_num = '0002'")
    before = rows(pair, "primary")
    report = run(pair)
    assert not report.ok and "schema revisions differ" in report.error
    assert "primary 0001, standby 0002" in report.error and "nothing written" in report.error
    assert rows(pair, "primary") == before


@pytest.mark.parametrize("memu_pair", ["pg18", "pg15"], indirect=True)
def test_connection_lost_mid_merge_leaves_primary_unchanged(memu_pair: MemuPair) -> None:
    pair = memu_pair
    split(pair)
    with pair.standby.connect() as s:
        for i in range(3):
            write_memory(s, text=f"standby {i}", category=f"c{i}")
    before = rows(pair, "primary")

    def cut(line: str) -> None:
        if line.startswith("merging category_items"):
            with pair.primary.connect() as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'ocf-syncback' AND pid <> pg_backend_pid()"
                )

    report = run(pair, progress=cut)
    assert not report.ok and report.error
    assert rows(pair, "primary") == before
    report = run(pair)
    assert report.ok, report.error
    pair.assert_equal()


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_second_run_changes_nothing(memu_pair: MemuPair) -> None:
    pair = memu_pair
    split(pair)
    with pair.standby.connect() as s:
        write_memory(s, text="standby")
    assert run(pair).ok
    primary, standby = rows(pair, "primary"), rows(pair, "standby")
    again = run(pair)
    assert again.ok and not any(t.inserted or t.updated or t.merged for t in again.tables)
    assert again.reconcile is None and "healthy" in again.reconcile_skipped
    assert rows(pair, "primary") == primary and rows(pair, "standby") == standby


@pytest.mark.parametrize("memu_pair", PAIRS, indirect=True)
def test_both_sides_wrote_while_apart_end_equal(memu_pair: MemuPair) -> None:
    pair = memu_pair
    with pair.primary.connect() as p:
        old = write_memory(p, text="shared before the split", category="home")
    split(pair)
    with pair.standby.connect() as s:
        st = [
            write_memory(s, text=f"standby {i}", category=c)
            for i, c in enumerate(["Work", "home", "travel"])
        ]
    with pair.primary.connect() as p:
        pr = [
            write_memory(p, text=f"primary {i}", category=c)
            for i, c in enumerate(["work", "music"])
        ]
        p.execute("DELETE FROM memory_items WHERE id = %s", [old["memory_item_id"]])
    report = run(pair)
    assert report.ok, report.error
    with pair.primary.connect() as p:
        ids = {r[0] for r in p.execute("SELECT id FROM memory_items").fetchall()}
    assert {m["memory_item_id"] for m in st + pr} <= ids  # nothing lost
    assert old["memory_item_id"] not in ids  # deleted on the primary: not brought back
    items = {t.table: t for t in report.tables}["memory_items"]
    assert items.inserted == 3  # only what the standby wrote since the split
    assert report.reconcile is not None and report.reconcile.deleted >= 1
    pair.assert_equal()
    assert_flowing(pair)


@pytest.mark.parametrize("memu_pair", ["pg18", "pg15"], indirect=True)
def test_primary_dying_during_give_back_leaves_the_standby_whole(memu_pair: MemuPair) -> None:
    pair = memu_pair
    split(pair)
    with pair.standby.connect() as s:
        for i in range(3):
            write_memory(s, text=f"standby {i}")
    before = rows(pair, "standby")

    def power_cut(line: str) -> None:
        if line.startswith("reconciling the standby"):
            pair.primary.kill()  # the merge is committed, the standby not yet reconciled

    report = run(pair, progress=power_cut)
    assert not report.ok
    after = rows(pair, "standby")
    for table, content in before.items():
        assert content.items() <= after[table].items(), table


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_dry_run_writes_nothing(memu_pair: MemuPair) -> None:
    pair = memu_pair
    split(pair)
    with pair.standby.connect() as s:
        write_memory(s, text="standby", category="Work")
    with pair.primary.connect() as p:
        write_memory(p, text="primary", category="work")
    primary, standby = rows(pair, "primary"), rows(pair, "standby")
    report = run(pair, dry_run=True)
    assert report.ok and report.dry_run
    assert {t.table: t.inserted for t in report.tables}["memory_items"] == 1
    assert sum(len(t.merged) for t in report.tables) == 1
    assert "would" in report.summary()
    assert rows(pair, "primary") == primary and rows(pair, "standby") == standby
    with pair.standby.connect() as s:
        assert s.execute("SELECT subenabled FROM pg_subscription").fetchone() == (False,)


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_stalled_subscription_is_repaired(memu_pair: MemuPair) -> None:
    pair = memu_pair
    pair.wait_caught_up()
    with pair.standby.connect() as s:  # a row the primary will also insert: insert_exists
        m = write_memory(s, text="conflict")
    with pair.primary.connect() as p:
        p.execute(
            "INSERT INTO resources (id, scope_key, url, modality, local_path) "
            "VALUES (%s, 'x', 'u', 'text', 'p')",
            [m["resource_id"]],
        )
    end = time.monotonic() + 20
    while pair.apply_error_count() == 0 and time.monotonic() < end:
        time.sleep(0.2)
    assert pair.apply_error_count() > 0
    report = run(pair, split=False)  # no takeover baseline: merge first, then repair
    assert report.ok, report.error
    assert report.reconcile is not None and report.reconcile.apply_errors_before
    by_table = {t.table: t for t in report.tables}
    assert by_table["resources"].kept_primary == 1  # the primary's row is newer
    assert by_table["memory_items"].inserted == 1
    assert "a row the primary deleted may have returned" in "\n".join(report.lines())
    with pair.primary.connect() as p:  # the standby's memory was merged, not deleted
        assert p.execute(
            "SELECT 1 FROM memory_items WHERE id = %s", [m["memory_item_id"]]
        ).fetchone()
    assert_flowing(pair)


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_a_standby_row_written_after_the_merge_is_never_deleted(memu_pair: MemuPair) -> None:
    pair = memu_pair
    split(pair)
    with pair.standby.connect() as s:
        write_memory(s, text="merged")
    late: list[Any] = []

    def write_late(line: str) -> None:
        if line.startswith("reconciling the standby") and not late:
            with pair.standby.connect() as s:
                late.append(write_memory(s, text="written during the sync-back"))

    report = run(pair, progress=write_late)
    assert not report.ok and "written after the merge" in report.error
    with pair.standby.connect() as s:
        assert s.execute(
            "SELECT 1 FROM memory_items WHERE id = %s", [late[0]["memory_item_id"]]
        ).fetchone()
    report = run(pair)  # the next try merges it, then reconciles
    assert report.ok, report.error
    with pair.primary.connect() as p:
        assert p.execute(
            "SELECT 1 FROM memory_items WHERE id = %s", [late[0]["memory_item_id"]]
        ).fetchone()
    pair.assert_equal()


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_recorded_and_own_leftover_slots_are_dropped_others_kept(memu_pair: MemuPair) -> None:
    pair = memu_pair
    split(pair)
    cfg = cfg_for(pair)
    with pair.primary.connect() as p:
        for name in ("leftover_from_a_crash", "someone_elses_slot"):
            p.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [name])
    (cfg.state_dir / "slots-to-drop.json").write_text('["leftover_from_a_crash"]')
    with pair.standby.connect() as s:
        write_memory(s, text="standby")
    report = run(pair)
    assert report.ok, report.error
    with pair.primary.connect() as p:
        slots = {r[0] for r in p.execute("SELECT slot_name FROM pg_replication_slots").fetchall()}
    assert "leftover_from_a_crash" not in slots and "someone_elses_slot" in slots
    assert "memu_sub" not in slots and report.reconcile and report.reconcile.slot in slots
    assert (cfg.state_dir / "slots-to-drop.json").read_text() == "[]"


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_while_serving_only_the_merge_runs(memu_pair: MemuPair) -> None:
    pair = memu_pair
    split(pair)
    with pair.standby.connect() as s:
        m = write_memory(s, text="standby")
    report = run(pair, serving=True)
    assert report.ok and report.reconcile is None and "still serving" in report.reconcile_skipped
    with pair.primary.connect() as p:
        assert p.execute(
            "SELECT 1 FROM memory_items WHERE id = %s", [m["memory_item_id"]]
        ).fetchone()
    with pair.standby.connect() as s:
        assert s.execute("SELECT subenabled FROM pg_subscription").fetchone() == (False,)


class EchoingServer:
    """A PostgreSQL stand-in on 127.0.0.1 whose startup error repeats the password it was given.

    It refuses SSL/GSS encryption (``N``), reads the startup message and answers
    with a FATAL ErrorResponse quoting ``secret``, as a hostile or careless
    server (or proxy) could: the client's error text then holds the secret, and
    only ocf's masking keeps it out of the report.
    """

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.answered = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError, struct.error):
                conn.settimeout(5)
                while True:
                    length, code = struct.unpack("!ii", conn.recv(8, socket.MSG_WAITALL))
                    if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                        conn.sendall(b"N")
                        continue
                    conn.recv(length - 8, socket.MSG_WAITALL)  # the rest of the startup message
                    text = f'password "{self.secret}" rejected for user "u"'
                    fields = b"".join(
                        kind + value.encode() + b"\0"
                        for kind, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", "28P01"))
                    )
                    body = fields + b"M" + text.encode() + b"\0\0"
                    self.answered += 1  # before sending: the client may be done at once
                    conn.sendall(b"E" + struct.pack("!i", len(body) + 4) + body)
                    break

    def close(self) -> None:
        self.sock.close()


def test_secrets_never_in_errors() -> None:
    secret = "s3cr3t-pw"
    server = EchoingServer(secret)
    try:
        dsn = f"host=127.0.0.1 port={server.port} dbname=memu user=u password={secret}"
        base = make_cfg()
        db = DatabaseConfig(dsn, dsn, connect_timeout=5)
        cfg = Config(**{**base.__dict__, "database": db})
        report = sync_back(cfg, mask=Masker(cfg.secrets))
    finally:
        server.close()
    assert server.answered >= 1  # the error really came back with the secret in it
    assert not report.ok and report.error
    assert "rejected" in report.error and '"***"' in report.error, report.error
    assert secret not in report.error


def test_not_configured_is_skipped_and_says_so() -> None:
    report = sync_back(make_cfg(), mask=Masker())
    assert report.ok and report.skipped and "no database: or files:" in report.summary()

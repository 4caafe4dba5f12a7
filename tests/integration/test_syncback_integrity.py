"""No path loses a memory (issue 8), each case against real PostgreSQL clusters.

Merge before any repair, quarantine before every delete or overwrite, the
standby's deletes reaching the primary, orphans that never block the merge,
the split-point boundary, and a give-back killed after its reconcile commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from openclaw_failover.cli import main
from openclaw_failover.config.secrets import Masker
from openclaw_failover.syncback import quarantine
from openclaw_failover.syncback.run import disable_subscription
from tests.harness.pg import MemuPair, write_memory
from tests.integration.test_syncback import assert_flowing, cfg_for, run, split

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def one(conn: Any, query: str, *params: Any) -> Any:
    row = conn.execute(query, list(params)).fetchone()
    return row[0] if row else None


def exists(pair: MemuPair, side: str, table: str, key: str) -> bool:
    cluster = pair.primary if side == "primary" else pair.standby
    with cluster.connect() as c:
        return one(c, f"SELECT count(*) FROM {table} WHERE id = %s", key) == 1


def settled_split(pair: MemuPair) -> None:
    """The takeover, once the slot has confirmed what the standby applied.

    A primary transaction the standby applied but had not yet acknowledged to the
    old slot counts as "changed since the split" (conservative: a delete of its row
    does not travel, the row stays and is reported); the tests of travelling
    deletes wait for the acknowledgement, as a real split after seconds would."""
    pair.wait_caught_up()
    with pair.primary.connect(autocommit=True) as p:
        target = str(one(p, "SELECT pg_current_wal_lsn()"))
        end = time.monotonic() + 40
        query = (
            "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
            "WHERE slot_name = 'memu_sub'"
        )
        while one(p, query, target) is not True:
            if time.monotonic() > end:
                pytest.fail("the subscription's slot never confirmed the primary's writes")
            time.sleep(0.2)
    split(pair)


def disable_by_hand(pair: MemuPair) -> None:
    """A failover made without ocf: no baseline, no key manifest."""
    pair.wait_caught_up()
    with pair.standby.connect(autocommit=True) as s:
        s.execute("ALTER SUBSCRIPTION memu_sub DISABLE")


@pytest.mark.parametrize("memu_pair", ["pg18", "mixed"], indirect=True)
def test_manual_syncback_without_baseline_merges_before_repairing(memu_pair: MemuPair) -> None:
    pair = memu_pair
    with pair.primary.connect() as p:
        old = write_memory(p, text="before the split")
    disable_by_hand(pair)
    with pair.standby.connect() as s:
        mine = [write_memory(s, text=f"standby only {i}") for i in range(3)]
        s.execute(
            "UPDATE memory_items SET summary = 'edited on the standby', updated_at = updated_at + 60 "
            "WHERE id = %s",
            [old["memory_item_id"]],
        )
    report = run(pair, split=False)
    assert report.ok, report.error
    assert report.no_baseline
    assert "nothing to do" not in report.summary()
    for m in mine:
        assert exists(pair, "primary", "memory_items", m["memory_item_id"])
        assert exists(pair, "primary", "resources", m["resource_id"])
    with pair.primary.connect() as p:
        summary = one(p, "SELECT summary FROM memory_items WHERE id = %s", old["memory_item_id"])
    assert summary == "edited on the standby"
    state_dir = cfg_for(pair).state_dir
    kept = quarantine.quarantined_keys(state_dir)
    assert old["memory_item_id"] in kept[("primary", "memory_items")]  # the replaced version
    assert_flowing(pair)


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_discard_standby_only_lists_then_quarantines(memu_pair: MemuPair) -> None:
    pair = memu_pair
    disable_by_hand(pair)
    with pair.standby.connect() as s:
        stray = write_memory(s, text="stray")
    dry = run(pair, split=False, discard_standby_only=True, dry_run=True)
    listed = "\n".join(dry.lines())
    assert f"would discard memory_items {stray['memory_item_id']}" in listed
    assert exists(pair, "standby", "memory_items", stray["memory_item_id"])  # dry: untouched
    report = run(pair, split=False, discard_standby_only=True)
    assert report.ok, report.error
    assert not exists(pair, "primary", "memory_items", stray["memory_item_id"])
    assert not exists(pair, "standby", "memory_items", stray["memory_item_id"])
    kept = quarantine.quarantined_keys(cfg_for(pair).state_dir)
    assert stray["memory_item_id"] in kept[("standby", "memory_items")]
    assert_flowing(pair)


def _wait_slot_at_tip(pair: MemuPair) -> None:
    """Idle until the subscription's slot catalog_xmin is the primary's next xid."""
    end = time.monotonic() + 30
    with pair.primary.connect(autocommit=True) as p:
        while time.monotonic() < end:
            p.execute("CHECKPOINT")  # logs the running transactions: the slot moves on
            pair.wait_caught_up()
            at_tip = one(
                p,
                "SELECT s.catalog_xmin::text::bigint = "
                "(txid_snapshot_xmax(txid_current_snapshot()) %% 4294967296) "
                "FROM pg_replication_slots s WHERE s.slot_name = 'memu_sub'",
            )
            if at_tip:
                return
            time.sleep(0.5)
    pytest.fail("the slot's catalog_xmin never reached the next xid")


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_primary_first_edit_after_an_idle_split_reaches_the_standby(memu_pair: MemuPair) -> None:
    pair = memu_pair
    with pair.primary.connect() as p:
        m = write_memory(p, text="old")
    _wait_slot_at_tip(pair)
    split(pair)
    with pair.primary.connect() as p:  # the first transaction after the split
        p.execute(
            "UPDATE memory_items SET summary = 'first edit', updated_at = updated_at + 1 "
            "WHERE id = %s",
            [m["memory_item_id"]],
        )
    with pair.standby.connect() as s:
        write_memory(s, text="standby wrote")
    assert run(pair, serving=True).ok
    report = run(pair)
    assert report.ok, report.error
    pair.assert_equal()
    with pair.standby.connect() as s:
        assert one(s, "SELECT summary FROM memory_items WHERE id = %s", m["memory_item_id"]) == (
            "first edit"
        )


@pytest.mark.parametrize("memu_pair", ["pg18", "mixed"], indirect=True)
def test_deletes_on_the_standby_reach_the_primary(memu_pair: MemuPair) -> None:
    pair = memu_pair
    with pair.primary.connect() as p:
        gone = write_memory(p, text="deleted on the standby", category="c-gone")
        edited = write_memory(p, text="deleted there, edited here", category="c-edit")
        linked = write_memory(p, text="resource deleted there, new link here", category="c-l")
    settled_split(pair)
    with pair.standby.connect() as s:
        s.execute("DELETE FROM resources WHERE id = %s", [gone["resource_id"]])  # cascades
        s.execute("DELETE FROM memory_items WHERE id = %s", [edited["memory_item_id"]])
        s.execute("DELETE FROM resources WHERE id = %s", [linked["resource_id"]])
    with pair.primary.connect() as p:
        p.execute(
            "UPDATE memory_items SET summary = 'edited here', updated_at = updated_at + 5 "
            "WHERE id = %s",
            [edited["memory_item_id"]],
        )
        p.execute(
            "INSERT INTO category_items (id, scope_key, item_id, category_id) "
            "VALUES ('new-link', 'default', %s, %s)",
            [linked["memory_item_id"], gone["category_id"]],
        )
    pre = run(pair, serving=True)
    assert pre.ok, pre.error
    report = run(pair)
    assert report.ok, report.error
    assert not exists(pair, "primary", "resources", gone["resource_id"])
    assert not exists(pair, "primary", "memory_items", gone["memory_item_id"])
    assert not exists(pair, "primary", "category_items", gone["category_item_id"])
    assert exists(pair, "primary", "memory_items", edited["memory_item_id"])  # conflict: kept
    assert exists(pair, "primary", "resources", linked["resource_id"])  # still referenced
    assert exists(pair, "primary", "category_items", "new-link")
    kept = quarantine.quarantined_keys(cfg_for(pair).state_dir)
    assert gone["resource_id"] in kept[("primary", "resources")]
    assert gone["category_item_id"] in kept[("primary", "category_items")]
    pair.assert_equal()
    assert_flowing(pair)


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_an_orphan_is_set_aside_and_never_blocks_the_rest(memu_pair: MemuPair) -> None:
    pair = memu_pair
    with pair.primary.connect() as p:
        m = write_memory(p, text="parent deleted on the primary")
    split(pair)
    with pair.standby.connect() as s:
        s.execute(
            "UPDATE memory_items SET summary = 'edited on the standby', updated_at = updated_at + 9 "
            "WHERE id = %s",
            [m["memory_item_id"]],
        )
        others = [write_memory(s, text=f"other {i}") for i in range(5)]
    with pair.primary.connect() as p:
        p.execute("DELETE FROM resources WHERE id = %s", [m["resource_id"]])
    report = run(pair)
    assert report.ok, report.error
    for o in others:
        assert exists(pair, "primary", "memory_items", o["memory_item_id"])
    assert not exists(pair, "primary", "memory_items", m["memory_item_id"])
    kept = quarantine.quarantined_keys(cfg_for(pair).state_dir)
    assert m["memory_item_id"] in kept[("standby", "memory_items")]
    assert "set aside" in report.summary()
    pair.assert_equal()
    assert_flowing(pair)


def _runner(pair: MemuPair, tmp_path: Path, mode: str, fault: str | None) -> int:
    spec = tmp_path / "spec.json"
    cfg = cfg_for(pair)
    assert cfg.database is not None
    spec.write_text(
        json.dumps(
            {
                "primary_dsn": cfg.database.primary_dsn,
                "standby_dsn": cfg.database.standby_dsn,
                "state_dir": str(cfg.state_dir),
                "mode": mode,
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OCF_FAULT_POINT", None)
    if fault:
        env["OCF_FAULT_POINT"] = fault
    proc = subprocess.run(
        [sys.executable, "-m", "tests.harness.syncback_runner", str(spec)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_a_give_back_killed_after_the_reconcile_commit_revives_nothing(
    memu_pair: MemuPair, tmp_path: Path
) -> None:
    pair = memu_pair
    split(pair)
    with pair.primary.connect() as p:  # copied to the standby by the reconcile
        later = write_memory(p, text="written on the primary during the split")
    with pair.standby.connect() as s:
        mine = write_memory(s, text="written on the standby")
    assert _runner(pair, tmp_path, "final", "reconcile:after-commit") == -9
    with pair.primary.connect() as p:  # deleted on the primary before the next check
        p.execute("DELETE FROM resources WHERE id = %s", [later["resource_id"]])
    assert _runner(pair, tmp_path, "final", None) == 0
    assert not exists(pair, "primary", "resources", later["resource_id"])
    assert not exists(pair, "primary", "memory_items", later["memory_item_id"])
    assert exists(pair, "primary", "memory_items", mine["memory_item_id"])
    pair.wait_caught_up()
    pair.assert_equal()
    assert_flowing(pair)


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_quarantine_list_and_restore(memu_pair: MemuPair, tmp_path: Path) -> None:
    pair = memu_pair
    with pair.primary.connect() as p:
        gone = write_memory(p, text="to be restored")
    settled_split(pair)
    with pair.standby.connect() as s:
        s.execute("DELETE FROM resources WHERE id = %s", [gone["resource_id"]])
    assert run(pair).ok
    assert not exists(pair, "primary", "memory_items", gone["memory_item_id"])
    cfg = cfg_for(pair)
    assert cfg.database is not None
    config = tmp_path / "config.yaml"
    for name in ("key", "known_hosts"):
        (tmp_path / name).write_text("")
    ssh = {
        "user": "u",
        "key_file": str(tmp_path / "key"),
        "known_hosts": str(tmp_path / "known_hosts"),
    }
    config.write_text(
        json.dumps(
            {
                "primary": {"host": "127.0.0.1", "ssh": ssh},
                "standby": {"gateway": {"start_command": "true"}},
                "state_dir": str(cfg.state_dir),
                "database": {
                    "primary_dsn": cfg.database.primary_dsn,
                    "standby_dsn": cfg.database.standby_dsn,
                },
            }
        )
    )
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "openclaw_failover",
            "-c",
            str(config),
            "quarantine",
            "list",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert listed.returncode == 0, listed.stderr
    batches = json.loads(listed.stdout)
    assert len(batches) == 1 and batches[0]["rows"] >= 3
    bid = batches[0]["id"]
    assert main(["-c", str(config), "quarantine", "restore", bid, "--dry-run"]) == 0
    assert not exists(pair, "primary", "memory_items", gone["memory_item_id"])
    assert main(["-c", str(config), "quarantine", "restore", bid]) == 0
    assert exists(pair, "primary", "resources", gone["resource_id"])
    assert exists(pair, "primary", "memory_items", gone["memory_item_id"])
    assert exists(pair, "primary", "category_items", gone["category_item_id"])
    assert main(["-c", str(config), "quarantine", "restore", "nope"]) == 2
    pair.wait_caught_up()
    pair.assert_equal()


def test_takeover_records_the_keys(pg18_pair: MemuPair) -> None:
    pair = pg18_pair
    with pair.primary.connect() as p:
        for i in range(3):
            write_memory(p, text=f"m{i}")
    pair.wait_caught_up()
    cfg = cfg_for(pair)
    step = disable_subscription(cfg, Masker())
    assert "recorded" in step, step
    from openclaw_failover.syncback.db import splitkeys

    index = splitkeys.recorded(cfg.state_dir)
    assert index is not None
    assert index["public.memory_items"] == 3


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_a_row_merged_while_serving_then_deleted_on_the_standby_goes(memu_pair: MemuPair) -> None:
    pair = memu_pair
    split(pair)
    with pair.standby.connect() as s:
        brief = write_memory(s, text="written, merged while serving, then deleted")
        kept = write_memory(s, text="written and kept")
    assert run(pair, serving=True).ok
    assert exists(pair, "primary", "memory_items", brief["memory_item_id"])
    with pair.standby.connect() as s:  # after the bulk merge, before the final pass
        s.execute("DELETE FROM resources WHERE id = %s", [brief["resource_id"]])
    report = run(pair)
    assert report.ok, report.error
    assert not exists(pair, "primary", "memory_items", brief["memory_item_id"])
    assert not exists(pair, "primary", "resources", brief["resource_id"])
    assert exists(pair, "primary", "memory_items", kept["memory_item_id"])
    kept_aside = quarantine.quarantined_keys(cfg_for(pair).state_dir)
    assert brief["memory_item_id"] in kept_aside[("primary", "memory_items")]
    pair.assert_equal()
    assert_flowing(pair)

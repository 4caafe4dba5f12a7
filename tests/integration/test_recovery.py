"""One state recovery for every command (issue 8): a lost state file never forgets
a fence, a pending give-back or a disabled subscription."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from openclaw_failover.cli import main
from openclaw_failover.core.decide import reconcile, syncback_mode
from openclaw_failover.core.state import Role
from openclaw_failover.engine.recovery import Facts, gather, recover
from openclaw_failover.engine.store import FENCE_MARKER, StateStore
from openclaw_failover.syncback.splitstate import BASELINE_FILE
from tests.unit.test_decide import make_cfg

NOW = 1_800_000_000.0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path) -> Path:
    for name in ("key", "known_hosts"):
        (tmp_path / name).write_text("")
    url = f"http://127.0.0.1:{closed_port()}/"
    doc: dict[str, Any] = {
        "primary": {
            "host": "127.0.0.1",
            "ssh": {
                "user": "u",
                "key_file": str(tmp_path / "key"),
                "known_hosts": str(tmp_path / "known_hosts"),
            },
        },
        "standby": {"gateway": {"health_url": url, "start_command": "true"}},
        "state_dir": str(tmp_path / "state"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(doc))
    (tmp_path / "state").mkdir(mode=0o700)
    return path


@pytest.mark.parametrize(
    ("facts", "role"),
    [
        (Facts(True, False, False, False), Role.FAILOVER),
        (Facts(False, True, False, False), Role.GIVING_BACK),
        (Facts(False, False, True, False), Role.GIVING_BACK),
        (Facts(False, False, False, True), Role.GIVING_BACK),
        (Facts(False, False, False, False), Role.PRIMARY),
    ],
)
def test_recover_chooses_the_role_from_the_facts(facts: Facts, role: Role, tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    state = recover(make_cfg(), store, "state file is missing", facts, NOW)
    assert state.role is role
    assert state.fenced is facts.fenced
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert events[-1]["type"] == "reconciled"


def test_reconcile_names_the_disabled_subscription() -> None:
    state, how = reconcile(False, NOW, subscription_disabled=True)
    assert state.role is Role.GIVING_BACK
    assert "subscription is disabled" in how


def test_gather_reads_the_marker_and_the_baseline(tmp_path: Path) -> None:
    cfg = make_cfg()
    cfg = type(cfg)(**{**cfg.__dict__, "state_dir": tmp_path})
    assert gather(cfg, False) == Facts(False, False, False, False)
    (tmp_path / FENCE_MARKER).write_text("")
    (tmp_path / BASELINE_FILE).write_text('{"xid": 5}')
    assert gather(cfg, False) == Facts(False, True, True, False)


@pytest.mark.parametrize("command", ["pause", "resume"])
def test_pause_and_resume_keep_a_fence_when_the_state_is_lost(command: str, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "state" / FENCE_MARKER).write_text("")
    assert main(["-c", str(config), command]) == 0
    state, _ = StateStore(tmp_path / "state").load()
    assert state is not None
    assert state.role is Role.GIVING_BACK  # not "primary": that would take over again
    assert state.fenced
    assert state.paused is (command == "pause")


def test_syncback_mode_by_role() -> None:
    assert syncback_mode(Role.FAILOVER, False, False) == (True, True)
    assert syncback_mode(Role.PRIMARY, True, False) == (True, True)
    assert syncback_mode(Role.GIVING_BACK, False, False) == (False, True)
    assert syncback_mode(Role.PRIMARY, False, True) == (False, True)
    assert syncback_mode(Role.PRIMARY, False, False) == (False, False)

"""End to end: the `ocf` CLI, as a separate process, against real parts.

A real OpenSSH sshd on 127.0.0.1 stands in for the primary's SSH; the two
gateways are real HTTP server processes started and stopped by real commands
(tests/harness/fake_service.py, which behaves like `systemctl --user`); the
Telegram Bot API is a local fake, used through the real python-telegram-bot.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from openclaw_failover.local import httpcheck
from tests.harness.fake_telegram import DEFAULT_TOKEN, FakeTelegram
from tests.harness.fixtures import deep_merge
from tests.harness.sshd import SSHServer, free_port

HARNESS = Path(__file__).resolve().parents[1] / "harness"
SERVICE = [sys.executable, str(HARNESS / "fake_service.py")]
FAKE_GATEWAY = [sys.executable, str(HARNESS / "fake_gateway_proc.py")]

pytestmark = pytest.mark.integration


@dataclass
class World:
    tmp: Path
    sshd: SSHServer
    telegram: FakeTelegram
    primary_port: int
    standby_port: int
    config_path: Path
    doc: dict[str, Any]

    @property
    def primary_dir(self) -> Path:
        return self.tmp / "primary-svc"

    @property
    def standby_dir(self) -> Path:
        return self.tmp / "standby-svc"

    @property
    def state_dir(self) -> Path:
        return self.tmp / "state"

    def primary_cmd(self, verb: str, status: int = 200) -> list[str]:
        cmd = [*SERVICE, verb, "--state-dir", str(self.primary_dir)]
        return (
            [*cmd, "--port", str(self.primary_port), "--status", str(status)]
            if verb == "start"
            else cmd
        )

    def standby_cmd(self, verb: str) -> list[str]:
        cmd = [*SERVICE, verb, "--state-dir", str(self.standby_dir)]
        return [*cmd, "--port", str(self.standby_port)] if verb == "start" else cmd

    def primary(self, verb: str, status: int = 200) -> None:
        subprocess.run(self.primary_cmd(verb, status), check=True, timeout=30)
        if verb == "start":
            wait_for(lambda: listening(self.primary_port), "primary gateway up")

    def answers(self, port: int) -> bool:
        return httpcheck.answers(f"http://127.0.0.1:{port}/", 1.0)

    def configure(self, **sections: Any) -> None:
        self.doc = deep_merge(self.doc, sections)
        self.config_path.write_text(yaml.safe_dump(self.doc))

    def ocf(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "OCF_TELEGRAM_TOKEN": DEFAULT_TOKEN}
        env.pop("INVOCATION_ID", None)
        env.pop("JOURNAL_STREAM", None)
        cmd = [sys.executable, "-m", "openclaw_failover", "--config", str(self.config_path), *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)

    def state(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "state.json").read_text())

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        path = self.state_dir / "events.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        events = [json.loads(line) for line in lines]
        return [e for e in events if kind is None or e["type"] == kind]

    def texts(self) -> list[str]:
        return [m.text for m in self.telegram.messages]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_for(predicate: Any, what: str, timeout: float = 15) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    srv = SSHServer(tmp_path / "sshd").start()
    telegram = FakeTelegram()
    telegram.start()
    w = World(tmp_path, srv, telegram, free_port(), free_port(), tmp_path / "config.yaml", {})
    w.doc = {
        "primary": {
            "name": "Mac Studio",
            "host": "127.0.0.1",
            "ssh": {
                "user": srv.user,
                "port": srv.port,
                "key_file": str(srv.client_key),
                "known_hosts": str(srv.known_hosts),
                "connect_timeout": 3,
            },
            "gateway": {"health_url": f"http://127.0.0.1:{w.primary_port}/"},
        },
        "standby": {
            "name": "RPi",
            "gateway": {
                "health_url": f"http://127.0.0.1:{w.standby_port}/",
                "start_command": w.standby_cmd("start"),
                "stop_command": w.standby_cmd("stop"),
                "start_timeout": 10,
                "stop_timeout": 10,
            },
        },
        "check": {"retries": 1, "retry_delay": 0.2, "probe_timeout": 2, "deadline": 60},
        "telegram": {
            "token": "${OCF_TELEGRAM_TOKEN}",
            "chat_id": 4242,
            "base_url": telegram.base_url,
        },
        "state_dir": str(w.state_dir),
    }
    w.configure()
    w.primary("start")
    try:
        yield w
    finally:
        for d in (w.primary_dir, w.standby_dir):
            subprocess.run([*SERVICE, "stop", "--state-dir", str(d)], timeout=30, check=False)
        pid = w.state_dir / "gateway.pid"
        if pid.exists():
            with contextlib.suppress(OSError, ValueError):
                os.killpg(int(pid.read_text().split()[0]), 9)
        telegram.stop()
        srv.close()


def test_healthy_check_is_silent_and_acts_not(world: World) -> None:
    r = world.ocf("check")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    st = world.state()
    assert st["role"] == "primary" and st["last_probe"]["status"] == "healthy"
    assert st["last_reason"] == "no action: primary healthy"
    assert not world.answers(world.standby_port)
    assert world.telegram.messages == [] and world.events("transition") == []


def test_healthy_tick_imports_neither_telegram_nor_psycopg(world: World) -> None:
    code = (
        "import sys; from openclaw_failover.cli import main; "
        f"rc = main(['--config', {str(world.config_path)!r}, 'check']); "
        "print(rc, [m for m in ('telegram', 'psycopg', 'requests', 'httpx') if m in sys.modules])"
    )
    env = {**os.environ, "OCF_TELEGRAM_TOKEN": DEFAULT_TOKEN}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "0 []", out.stdout + out.stderr
    assert world.state()["last_probe"]["status"] == "healthy"


def test_gateway_crash_takeover_then_give_back(world: World) -> None:
    world.primary("stop")  # the gateway crashes: connection refused on its port, SSH fine
    r = world.ocf("check")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("took over: primary gateway_down for 1 check")
    assert world.answers(world.standby_port)
    st = world.state()
    assert st["role"] == "failover" and st["takeovers"] == 1
    assert [t for t in world.texts() if "OFFLINE" in t], world.texts()
    assert "RPi takes over" in world.texts()[0]

    r = world.ocf("check")  # still down: keeps serving, silent
    assert (r.returncode, r.stdout) == (0, "")
    assert world.state()["last_reason"] == "no action: serving, primary still gateway_down"

    world.primary("start")
    r = world.ocf("check")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("gave back: primary healthy for 1 check")
    assert not world.answers(world.standby_port)
    st = world.state()
    assert st["role"] == "primary" and st["givebacks"] == 1 and st["outbox"] == []
    assert len(world.texts()) == 2 and "ONLINE" in world.texts()[1]
    assert "sync-back skipped" in world.texts()[1]
    roles = [(e["from"], e["to"]) for e in world.events("transition")]
    assert roles == [
        ("primary", "taking_over"),
        ("taking_over", "failover"),
        ("failover", "giving_back"),
        ("giving_back", "primary"),
    ]


def test_half_alive_primary_is_fenced_and_restarted_at_give_back(world: World) -> None:
    world.configure(
        primary={
            "gateway": {
                "stop_command": world.primary_cmd("stop"),
                "start_command": world.primary_cmd("start"),
            }
        }
    )
    world.primary("stop")
    world.primary("start", status=503)  # answers, but 5xx: half alive
    r = world.ocf("check")
    assert r.returncode == 0, r.stderr
    assert "took over" in r.stdout and "fenced" in r.stdout
    assert not world.answers(world.primary_port), "the primary's gateway was not fenced"
    assert world.state()["fenced"] is True
    # A fenced primary cannot come back by itself: SSH reaching it is enough.
    r = world.ocf("check")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("gave back: primary reachable for 1 check")
    assert world.answers(world.primary_port) and not world.answers(world.standby_port)
    assert world.state()["fenced"] is False


def test_sshd_down_takes_over(world: World) -> None:
    world.sshd.stop()
    r = world.ocf("check")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("took over: primary refused for 1 check")
    assert world.answers(world.standby_port)
    assert world.state()["last_probe"]["status"] == "refused"


def test_changed_host_key_alerts_and_never_takes_over(world: World) -> None:
    world.sshd.rotate_host_key()  # known_hosts still holds the old key
    world.primary("stop")
    r = world.ocf("check")
    assert r.returncode == 0, r.stderr
    assert not world.answers(world.standby_port)
    st = world.state()
    assert st["role"] == "primary" and st["last_probe"]["status"] == "auth_failed"
    assert len(world.texts()) == 1 and "Not failing over" in world.texts()[0]
    r = world.ocf("check")  # alerts at most once per hour
    assert len(world.texts()) == 1 and world.state()["role"] == "primary"


def test_start_command_failing_falls_back_to_direct_start(world: World) -> None:
    world.standby_dir.mkdir(parents=True, exist_ok=True)
    (world.standby_dir / "fail-start").touch()
    world.configure(
        standby={
            "gateway": {
                "fallback_start_command": [*FAKE_GATEWAY, "--port", str(world.standby_port)],
            }
        }
    )
    world.primary("stop")
    r = world.ocf("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("took over: primary gateway_down"), r.stdout
    assert "local gateway up (fallback)" in json.dumps(world.events("action"))
    assert world.answers(world.standby_port)
    pid = int((world.state_dir / "gateway.pid").read_text().split()[0])
    assert os.getsid(pid) == pid  # fully detached: its own session
    steps = world.events("action")[0]["steps"]
    assert any("Failed to connect to bus" in s for s in steps), steps
    assert any(s.startswith("fallback start: pid") for s in steps), steps


def test_nothing_starts_failover_failed_and_retried(world: World) -> None:
    world.configure(standby={"gateway": {"start_command": ["false"], "start_timeout": 1}})
    world.primary("stop")
    r = world.ocf("check")
    assert r.returncode == 1
    assert r.stdout.startswith("takeover failed")
    assert world.state()["role"] == "taking_over"
    assert len(world.texts()) == 1 and "FAILOVER FAILED" in world.texts()[0]
    world.configure(standby={"gateway": {"start_command": world.standby_cmd("start")}})
    r = world.ocf("check")
    assert r.returncode == 0 and world.state()["role"] == "failover"
    assert "OFFLINE" in world.texts()[-1]


def test_telegram_down_keeps_the_notice_and_delivers_it_later(world: World) -> None:
    world.telegram.down()
    world.primary("stop")
    r = world.ocf("check")
    assert r.returncode == 0, r.stderr  # a notification failure never fails the tick
    st = world.state()
    assert st["role"] == "failover" and len(st["outbox"]) == 1
    text = st["outbox"][0]["text"]
    assert st["outbox"][0]["attempts"] == 1
    status = json.loads(world.ocf("status", "--json").stdout)
    assert status["pending_notifications"][0]["kind"] == "took_over"
    world.telegram.up()
    r = world.ocf("check")
    assert world.texts() == [text]  # the original text (and time), once
    assert world.state()["outbox"] == []
    world.ocf("check")
    assert world.texts() == [text]


def test_two_concurrent_checks_only_one_acts(world: World) -> None:
    world.configure(check={"retry_delay": 2})
    world.primary("stop")
    env = {**os.environ, "OCF_TELEGRAM_TOKEN": DEFAULT_TOKEN}
    cmd = [
        sys.executable,
        "-m",
        "openclaw_failover",
        "--config",
        str(world.config_path),
        "-v",
        "check",
    ]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=90) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sum("another check is running" in err for _, err in outs) == 1, outs
    assert sum("took over" in out for out, _ in outs) == 1, outs
    starts = [
        json.loads(line)["verb"]
        for line in (world.standby_dir / "calls.jsonl").read_text().splitlines()
    ]
    assert starts.count("start") == 1
    assert len(world.events("transition")) == 2  # primary->taking_over->failover, once


def test_corrupt_state_while_failed_over_keeps_failover(world: World) -> None:
    world.primary("stop")
    assert world.ocf("check").returncode == 0
    (world.state_dir / "state.json").write_text("{ this is not json")
    r = world.ocf("-v", "check")
    assert r.returncode == 0, r.stderr
    assert "corrupt" in r.stderr and "assuming this standby serves" in r.stderr
    st = world.state()
    assert st["role"] == "failover"
    assert world.answers(world.standby_port)
    assert list(world.state_dir.glob("state.json.corrupt-*"))
    assert world.events("reconciled")


def test_status_human_and_json(world: World) -> None:
    world.ocf("check")
    r = world.ocf("status")
    assert r.returncode == 0 and "role:           primary" in r.stdout
    data = json.loads(world.ocf("status", "--json").stdout)
    assert data["role"] == "primary" and data["last_probe"]["status"] == "healthy"
    assert data["local_gateway"]["answering"] is False
    assert DEFAULT_TOKEN not in r.stdout and DEFAULT_TOKEN not in json.dumps(data)


def test_dry_run_changes_nothing(world: World) -> None:
    world.primary("stop")
    r = world.ocf("check", "--dry-run", "-v")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("dry run: would take over"), r.stdout
    # the log reads as a dry run too: no transition as if it happened
    assert "INFO role " not in r.stderr and "took over" not in r.stderr, r.stderr
    assert "dry run: would change role primary -> taking_over" in r.stderr, r.stderr
    assert "would notify: OpenClaw on Mac Studio OFFLINE" in r.stdout
    assert not world.state_dir.exists()
    assert not world.answers(world.standby_port) and world.telegram.messages == []


def test_pause_resume_and_manual_switchover(world: World) -> None:
    assert world.ocf("pause").returncode == 0
    world.primary("stop")
    r = world.ocf("check")
    assert (r.returncode, r.stdout) == (0, "")
    assert world.state()["last_reason"] == "paused: primary gateway_down, not acting"
    assert not world.answers(world.standby_port)
    assert world.ocf("resume").returncode == 0
    world.primary("start")
    r = world.ocf("takeover")  # healthy primary and no stop_command: refused
    assert r.returncode == 1 and "two gateways" in r.stdout
    world.configure(
        primary={
            "gateway": {
                "stop_command": world.primary_cmd("stop"),
                "start_command": world.primary_cmd("start"),
            }
        }
    )
    r = world.ocf("takeover")
    assert r.returncode == 0 and "took over: manual takeover" in r.stdout
    assert world.answers(world.standby_port) and not world.answers(world.primary_port)
    r = world.ocf("check")  # manual hold: no automatic give-back
    assert world.state()["role"] == "failover"
    r = world.ocf("release")
    assert r.returncode == 0 and r.stdout.startswith("gave back: manual release")
    assert world.answers(world.primary_port) and not world.answers(world.standby_port)


def test_bad_config_exit_2_and_state_untouched(world: World) -> None:
    world.ocf("check")
    before = (world.state_dir / "state.json").read_bytes()
    world.configure(check={"fall": 0, "bogus": 1})
    r = world.ocf("check")
    assert r.returncode == 2 and r.stdout == ""
    assert "At 'check.fall': must be at least 1, got 0" in r.stderr
    assert "At 'check.bogus': unknown key" in r.stderr
    assert (world.state_dir / "state.json").read_bytes() == before
    r = world.ocf("check", "--no-such-flag")
    assert r.returncode == 2


@pytest.mark.parametrize("memu_pair", ["pg18", "mixed"], indirect=True)
def test_takeover_and_give_back_with_row_sync_back(world: World, memu_pair: Any) -> None:
    from tests.harness.pg import write_memory

    pair = memu_pair
    world.configure(database={"primary_dsn": pair.primary.dsn(), "standby_dsn": pair.standby.dsn()})
    with pair.primary.connect() as p:
        write_memory(p, text="before")
    pair.wait_caught_up()
    world.primary("stop")
    r = world.ocf("check")
    assert r.returncode == 0 and r.stdout.startswith("took over"), r.stdout + r.stderr
    assert any("disabled subscription memu_sub" in s for s in world.events("action")[0]["steps"])
    with pair.standby.connect() as s:
        assert s.execute("SELECT subenabled FROM pg_subscription").fetchone() == (False,)
        mine = write_memory(s, text="written while the standby served", category="Work")
    with pair.primary.connect() as p:
        write_memory(p, text="written on the primary meanwhile", category="work")
    world.primary("start")
    r = world.ocf("check")
    assert r.returncode == 0 and r.stdout.startswith("gave back"), r.stdout + r.stderr
    notice = world.texts()[-1]
    assert "rows synced back: 3 inserted" in notice and "1 merged by unique key" in notice
    with pair.primary.connect() as p:
        assert p.execute(
            "SELECT 1 FROM memory_items WHERE id = %s", [mine["memory_item_id"]]
        ).fetchone()
    pair.assert_equal()
    with pair.primary.connect() as p:
        write_memory(p, text="after give-back")
    pair.wait_caught_up()
    pair.assert_equal()
    assert pair.apply_error_count() == 0
    status = json.loads(world.ocf("status", "--json").stdout)
    assert status["role"] == "primary" and "rows" in status["sync_back"]
    rep = status["replication"]
    assert rep["enabled"] and rep["worker_running"] and rep["apply_errors"] == 0, rep
    assert status["last_syncback"]["ok"] and "synced back" in status["last_syncback"]["summary"]
    text = world.ocf("status").stdout
    assert "replication:    enabled, worker running, slot active, 0 apply errors" in text
    assert "next check:     due" in text
    doctor = world.ocf("doctor", "--json")
    report = json.loads(doctor.stdout)
    by_status = {c["name"] + ": " + c["detail"]: c["status"] for c in report["checks"]}
    assert any(
        k.startswith("database: wal_level is logical") for k, v in by_status.items() if v == "ok"
    )
    assert any(k.startswith("schedule:") and v == "FAIL" for k, v in by_status.items())
    assert doctor.returncode == 1  # nothing schedules `ocf check` here


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_ocf_syncback_cli_dry_run_json_and_files(world: World, memu_pair: Any) -> None:
    from tests.harness.pg import write_memory

    pair = memu_pair
    standby_ws, primary_ws = world.tmp / "standby-ws", world.tmp / "primary-ws"
    for d in (standby_ws, primary_ws):
        d.mkdir()
        (d / "MEMORY.md").write_text("long-term v1\n")
    world.configure(
        database={"primary_dsn": pair.primary.dsn(), "standby_dsn": pair.standby.dsn()},
        files=[{"path": f"{standby_ws}/", "remote_path": f"{primary_ws}/"}],
    )
    r = world.ocf("syncback", "--dry-run")  # nothing to do yet, replication healthy
    assert r.returncode == 0, r.stdout + r.stderr
    world.primary("stop")
    assert world.ocf("check").stdout.startswith("took over")
    assert (world.state_dir / "files-manifest.json").exists()
    with pair.standby.connect() as s:
        write_memory(s, text="standby memory", category="Work")
    (standby_ws / "2026-11-30.md").write_text("a note from the standby\n")
    primary_rows = pair.table_rows(pair.primary, "memory_items")

    r = world.ocf("syncback", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "memory_items: 1 inserted, 0 updated" in r.stdout
    assert "files: would copy 1" in r.stdout
    assert pair.table_rows(pair.primary, "memory_items") == primary_rows
    assert not (primary_ws / "2026-11-30.md").exists()

    r = world.ocf("syncback", "--json")  # still serving: merge only
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["ok"] and data["rows_moved"] == 4 and data["bytes_moved"] > 0
    assert "still serving" in data["reconcile_skipped"]
    assert (primary_ws / "2026-11-30.md").read_text() == "a note from the standby\n"

    world.primary("start")
    r = world.ocf("check")
    assert r.stdout.startswith("gave back"), r.stdout + r.stderr
    pair.assert_equal()
    assert "files:" in world.texts()[-1]


def test_ocf_syncback_without_sync_sections(world: World) -> None:
    r = world.ocf("syncback")
    assert r.returncode == 0 and "no database: or files: section" in r.stdout


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_ocf_drill_measures_a_real_failover(world: World, memu_pair: Any) -> None:
    pair = memu_pair
    world.configure(
        primary={
            "gateway": {
                "stop_command": world.primary_cmd("stop"),
                "start_command": world.primary_cmd("start"),
            }
        },
        database={"primary_dsn": pair.primary.dsn(), "standby_dsn": pair.standby.dsn()},
    )
    r = world.ocf("drill", "--dry-run")
    assert r.returncode == 0 and "stop the primary's gateway over SSH" in r.stdout
    assert not (world.primary_dir / "calls.jsonl").read_text().count('"stop"')
    r = world.ocf("drill", "--yes", "--json", "--interval", "0.3", "--timeout", "60")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] and report["marker_on_primary"] is True
    assert 0 < report["detect_seconds"] <= report["takeover_seconds"]
    assert report["giveback_seconds"] > 0 and report["notices_sent"] >= 2
    assert world.state()["role"] == "primary" and world.answers(world.primary_port)
    pair.wait_caught_up()
    pair.assert_equal()
    with pair.primary.connect() as p:  # the marker was removed again
        assert p.execute(
            "SELECT count(*) FROM memory_items WHERE scope_key = 'ocf-drill'"
        ).fetchone() == (0,)


def test_ocf_drill_failure_restores_the_primary_gateway(world: World) -> None:
    world.configure(
        primary={
            "gateway": {
                "stop_command": world.primary_cmd("stop"),
                "start_command": world.primary_cmd("start"),
            }
        },
        standby={"gateway": {"start_command": ["false"], "start_timeout": 0.5}},
    )
    r = world.ocf("drill", "--yes", "--interval", "0.3", "--timeout", "2")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "drill failed" in r.stdout and "primary's gateway restored" in r.stdout
    assert world.answers(world.primary_port)


def test_ocf_drill_refuses_without_fencing_commands(world: World) -> None:
    r = world.ocf("drill", "--yes")
    assert r.returncode == 1 and "stop_command and start_command must both be set" in r.stdout
    assert world.answers(world.primary_port)


@pytest.mark.parametrize("memu_pair", ["pg18"], indirect=True)
def test_check_writes_metrics_and_pings(world: World, memu_pair: Any) -> None:
    import http.server
    import threading

    from prometheus_client.parser import text_string_to_metric_families

    hits: list[str] = []

    class Ping(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    prom = world.tmp / "textfile" / "ocf.prom"
    prom.parent.mkdir()
    pair = memu_pair
    world.configure(
        database={"primary_dsn": pair.primary.dsn(), "standby_dsn": pair.standby.dsn()},
        metrics={"textfile": str(prom)},
        monitoring={
            "ping_url": f"http://127.0.0.1:{server.server_port}/ping/abc",
            "ping_timeout": 2,
        },
    )
    try:
        assert world.ocf("check").returncode == 0
        names = {
            s.name: s for f in text_string_to_metric_families(prom.read_text()) for s in f.samples
        }
        assert names["ocf_takeovers_total"].value == 0 and "ocf_replication_lag_bytes" in names
        role = [
            s
            for f in text_string_to_metric_families(prom.read_text())
            for s in f.samples
            if s.name == "ocf_role" and s.labels["role"] == "primary"
        ]
        assert role and role[0].value == 1
        assert hits == ["/ping/abc"]
        world.configure(standby={"gateway": {"start_command": ["false"], "start_timeout": 0.5}})
        world.primary("stop")
        assert world.ocf("check").returncode == 1  # the takeover failed
        assert hits[-1] == "/ping/abc/fail"
    finally:
        server.shutdown()

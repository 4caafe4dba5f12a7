"""Monitoring and deployment: the Prometheus textfile, the dead-man's-switch ping,
`ocf history`, `ocf install cron|systemd` and the shipped cron / systemd / logrotate files."""

from __future__ import annotations

import calendar
import http.server
import json
import logging
import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.events import GaveBack, SyncCounts, SyncedBack
from openclaw_failover.core.model import CommandResult, Notice
from openclaw_failover.core.state import Role, State
from openclaw_failover.engine.store import StateStore
from openclaw_failover.monitor import metrics
from openclaw_failover.monitor.ping import ping, ping_target, succeeded
from openclaw_failover.ops import history, install, install_files
from openclaw_failover.ops import status as status_mod
from tests.harness.installing import PRIMARY, run_install, ssh_files

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NOW = 1_764_500_000.0  # 2025-11-30T10:53:20Z

# The names the README documents (counters listed with their _total sample name).
DOCUMENTED = {
    "ocf_role": "gauge",
    "ocf_role_since_timestamp_seconds": "gauge",
    "ocf_last_tick_timestamp_seconds": "gauge",
    "ocf_last_tick_duration_seconds": "gauge",
    "ocf_last_tick_exit_status": "gauge",
    "ocf_probe_status": "gauge",
    "ocf_probe_latency_seconds": "gauge",
    "ocf_consecutive_failed_checks": "gauge",
    "ocf_consecutive_slow_checks": "gauge",
    "ocf_witnesses_answered": "gauge",
    "ocf_isolated": "gauge",
    "ocf_takeovers_total": "counter",
    "ocf_givebacks_total": "counter",
    "ocf_last_syncback_rows": "gauge",
    "ocf_last_syncback_timestamp_seconds": "gauge",
    "ocf_replication_lag_bytes": "gauge",
    "ocf_replication_lag_seconds": "gauge",
    "ocf_pending_notices": "gauge",
    "ocf_paused": "gauge",
}


def _busy_state() -> State:
    return State(
        role=Role.FAILOVER,
        since=NOW - 600,
        paused=True,
        paused_since=NOW - 60,
        failed_ticks=4,
        slow_ticks=2,
        isolated_since=NOW - 30,
        last_witnesses={"answered": ["10.0.0.1:80"], "failed": [], "at": NOW},
        takeovers=3,
        givebacks=2,
        last_probe={"status": "unreachable", "latency": 5.012, "detail": "timed out", "at": NOW},
        last_tick_at=NOW,
        outbox=[
            Notice("n1", "took_over", "took over", NOW - 10),
            Notice("n2", "failover_failed", "failed", NOW - 5),
        ],
    )


def _parse(path: Path) -> dict[str, Any]:
    """{sample name: {labels tuple: value}} and {family name: type}."""
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(path.read_text()):
        types[family.name] = family.type
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return {"samples": samples, "types": types}


# --------------------------------------------------------------------------- metrics


def test_textfile_parses_and_carries_every_documented_metric(tmp_path: Path) -> None:
    path = tmp_path / "ocf.prom"
    metrics.write_textfile(
        path,
        _busy_state(),
        tick_seconds=1.25,
        exit_status=1,
        replication={"lag_bytes": 2048, "lag_seconds": 0.75},
        now=NOW,
        last_syncback=(NOW - 3600, 7),
    )
    parsed = _parse(path)
    samples, types = parsed["samples"], parsed["types"]
    assert set(samples) == set(DOCUMENTED), "exactly the documented names, every one"
    for name, kind in DOCUMENTED.items():
        family = name.removesuffix("_total") if kind == "counter" else name
        assert types[family] == kind, name
    assert set(metrics.METRICS) == set(DOCUMENTED)

    roles = samples["ocf_role"]
    assert {dict(k)["role"] for k in roles} == {"primary", "taking_over", "failover", "giving_back"}
    assert roles[(("role", "failover"),)] == 1 and sum(roles.values()) == 1
    probes = samples["ocf_probe_status"]
    assert {dict(k)["status"] for k in probes} >= {
        "healthy",
        "gateway_down",
        "gateway_slow",
        "slow",
        "unreachable",
        "refused",
        "auth_failed",
        "probe_error",
    }
    assert probes[(("status", "unreachable"),)] == 1 and sum(probes.values()) == 1

    def one(name: str) -> float:
        (value,) = samples[name].values()
        return value

    assert one("ocf_last_tick_timestamp_seconds") == NOW
    assert one("ocf_role_since_timestamp_seconds") == NOW - 600
    assert one("ocf_last_tick_duration_seconds") == 1.25
    assert one("ocf_last_tick_exit_status") == 1
    assert one("ocf_probe_latency_seconds") == pytest.approx(5.012)
    assert one("ocf_consecutive_failed_checks") == 4
    assert one("ocf_consecutive_slow_checks") == 2
    assert one("ocf_witnesses_answered") == 1
    assert one("ocf_isolated") == 1
    assert one("ocf_takeovers_total") == 3
    assert one("ocf_givebacks_total") == 2
    assert one("ocf_last_syncback_rows") == 7
    assert one("ocf_last_syncback_timestamp_seconds") == NOW - 3600
    assert one("ocf_replication_lag_bytes") == 2048
    assert one("ocf_replication_lag_seconds") == 0.75
    assert one("ocf_pending_notices") == 2
    assert one("ocf_paused") == 1
    text = path.read_text()
    assert all(f"# HELP {n} " in text for n in DOCUMENTED), "HELP for every metric"
    # node_exporter runs as another user and must read it; no timestamps on samples
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert all(len(line.split()) == 2 for line in text.splitlines() if not line.startswith("#"))


def test_unknown_values_are_left_out_and_odd_labels_escaped(tmp_path: Path) -> None:
    path = tmp_path / "ocf.prom"
    metrics.write_textfile(path, State(), tick_seconds=0.2, exit_status=0, now=NOW)
    samples = _parse(path)["samples"]
    for absent in (
        "ocf_probe_latency_seconds",
        "ocf_last_syncback_rows",
        "ocf_last_syncback_timestamp_seconds",
        "ocf_replication_lag_bytes",
        "ocf_replication_lag_seconds",
        "ocf_role_since_timestamp_seconds",
    ):
        assert absent not in samples
    assert sum(samples["ocf_probe_status"].values()) == 0
    assert samples["ocf_role"][(("role", "primary"),)] == 1
    assert "# TYPE ocf_replication_lag_bytes gauge" in path.read_text()

    odd = State(last_probe={"status": 'we"ird\\\nstatus', "latency": 0.1, "at": NOW})
    metrics.write_textfile(path, odd, tick_seconds=0.2, exit_status=0, now=NOW)
    probes = _parse(path)["samples"]["ocf_probe_status"]
    assert probes[(("status", 'we"ird\\\nstatus'),)] == 1


def test_atomic_write_leaves_no_temp_files_and_keeps_the_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ocf.prom"
    for exit_status in (0, 1):
        metrics.write_textfile(path, State(), tick_seconds=0.1, exit_status=exit_status, now=NOW)
    assert os.listdir(tmp_path) == ["ocf.prom"]
    before = path.read_text()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metrics.os, "replace", broken_replace)
    with caplog.at_level(logging.WARNING, logger="openclaw_failover.monitor.metrics"):
        metrics.write_textfile(path, _busy_state(), tick_seconds=9, exit_status=1, now=NOW)
    assert os.listdir(tmp_path) == ["ocf.prom"], "the temp file is removed"
    assert path.read_text() == before, "the collector still reads the previous, whole file"
    assert "No space left on device" in caplog.text


@pytest.mark.parametrize("where", ["missing-dir/ocf.prom", "a-file/ocf.prom"])
def test_a_failing_directory_logs_and_does_not_raise(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    path = tmp_path / where
    with caplog.at_level(logging.WARNING, logger="openclaw_failover.monitor.metrics"):
        metrics.write_textfile(path, State(), tick_seconds=0.1, exit_status=0, now=NOW)
    assert "cannot write the metrics file" in caplog.text and str(path) in caplog.text
    assert not path.exists()


def _old_event(store: StateStore, event_type: str, /, **data: Any) -> None:
    """A line as ocf wrote it before events were typed (schema 1, no "v"): still read."""
    now = time.time()
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    record = {"ts": round(now, 3), "at": at, "type": event_type, **data}
    store.ensure_dir()
    with store.events_path.open("a") as fh:
        fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")


def _give_back_event(store: StateStore) -> None:
    _old_event(
        store,
        "action",
        action="GiveBack",
        ok=True,
        duration=3.1,
        detail="",
        steps=[
            "while still serving: rows synced back: 3 inserted, 1 updated",
            "local gateway stopped",
            "rows synced back: 2 inserted, 0 updated; standby reconciled (6 rows); "
            "files: 1 copied, 0 conflict copies, 0 refused",
        ],
    )


def test_last_syncback_is_found_in_the_events_log(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert metrics.find_last_syncback(store.events_path) is None  # no file yet
    _old_event(store, "transition", **{"from": "failover", "to": "giving_back"}, reason="back")
    _give_back_event(store)
    found = metrics.find_last_syncback(store.events_path)
    assert found is not None and found[1] == 6 and abs(found[0] - time.time()) < 60

    # a failed sync-back and a skipped one do not count; a later manual one does
    _old_event(
        store, "syncback", ok=False, summary="rows synced back: 9 inserted, 9 updated; FAILED: x"
    )
    _old_event(
        store, "action", action="GiveBack", ok=True, steps=["sync-back skipped: no database"]
    )
    assert metrics.find_last_syncback(store.events_path) == found
    _old_event(store, "syncback", ok=True, summary="rows synced back: 4 inserted, 1 updated")
    newer = metrics.find_last_syncback(store.events_path)
    assert newer is not None and newer[1] == 5 and newer[0] >= found[0]

    # far behind many later lines (several read chunks): still found, and cheaply bounded
    with store.events_path.open("a") as fh:
        for i in range(3000):
            fh.write(json.dumps({"ts": NOW + i, "type": "tick", "reason": "x" * 40}) + "\n")
    assert metrics.find_last_syncback(store.events_path) == newer
    assert metrics.find_last_syncback(store.events_path, limit=10_000) is None

    path = tmp_path / "ocf.prom"
    metrics.write_textfile(
        path, State(), tick_seconds=0.1, exit_status=0, now=NOW, events_path=store.events_path
    )
    samples = _parse(path)["samples"]
    assert samples["ocf_last_syncback_rows"][()] == 5


def test_last_syncback_comes_from_typed_counts_not_sentences(tmp_path: Path) -> None:
    """A schema-2 give-back's rows are its counts: its summary sentence is not read."""
    store = StateStore(tmp_path)
    counts = SyncCounts(ok=True, summary="no rows in this sentence", inserted=7, updated=2)
    store.append_event(GaveBack(True, "", ("stopped",), 2.0, sync=counts), now=NOW - 60)
    assert metrics.find_last_syncback(store.events_path) == (NOW - 60, 9)
    failed = replace(counts, ok=False, summary="rows synced back: 1 inserted, 1 updated")
    store.append_event(GaveBack(False, "x", (), 1.0, sync=failed), now=NOW - 50)
    store.append_event(SyncedBack(replace(counts, skipped="sync-back skipped")), now=NOW - 40)
    store.append_event(GaveBack(False, "local gateway did not stop"), now=NOW - 30)
    assert metrics.find_last_syncback(store.events_path) == (NOW - 60, 9)
    store.append_event(SyncedBack(replace(counts, inserted=1, updated=0)), now=NOW - 20)
    assert metrics.find_last_syncback(store.events_path) == (NOW - 20, 1)


def test_status_and_history_show_a_typed_give_back(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    summary = "rows synced back: 6 inserted, 1 updated; files: 2 copied, 0 conflict copies"
    counts = SyncCounts(ok=True, summary=summary, inserted=6, updated=1, files=2)
    steps = ("while still serving: rows synced back: 5 inserted, 1 updated", "stopped")
    store.append_event(GaveBack(True, "", steps, 3.14, sync=counts), now=NOW)
    [line] = history.render(history.load(tmp_path, since=0)).splitlines()[1:]
    assert line == f"2025-11-30 10:53:20  give back  ok in 3.1s: {summary}"
    assert status_mod._last_syncback(store) == {
        "at": "2025-11-30T10:53:20Z",
        "ok": True,
        "summary": summary,
    }


def test_events_are_read_backwards_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "TAIL_CHUNK", 7)
    lines = [b"first line", b"x", b"", b"a rather longer line than a chunk", b"yz", b"last"]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    expected = [line for line in reversed(lines) if line]
    assert list(metrics._lines_backwards(path, limit=10_000)) == expected
    path.write_bytes(b"\n".join(lines))  # no final newline (a write cut short)
    assert list(metrics._lines_backwards(path, limit=10_000)) == expected
    assert list(metrics._lines_backwards(path, limit=9)) == [b"last", b"yz"]
    wanted = list(metrics._lines_backwards(path, limit=10_000, markers=(b"longer", b"first")))
    assert wanted[0] == b"a rather longer line than a chunk" and wanted[-1] == b"first line"


def test_monitoring_modules_stay_light() -> None:
    """A healthy tick imports neither prometheus_client, requests nor urllib.request."""
    code = (
        "import sys, openclaw_failover.monitor.metrics, openclaw_failover.monitor.ping; "
        "print([m for m in ('prometheus_client', 'requests', 'urllib.request') "
        "if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- ping


class _Recorder(http.server.BaseHTTPRequestHandler):
    paths: list[str]

    def do_GET(self) -> None:
        self.paths.append(self.path)
        code = 404 if self.path.startswith("/missing") else 200
        body = b"OK" if code == 200 else b"not found"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def ping_server() -> Iterator[tuple[str, list[str]]]:
    paths: list[str] = []
    handler = type("Handler", (_Recorder,), {"paths": paths})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", paths
    finally:
        server.shutdown()
        server.server_close()


def test_ping_hits_the_url_on_success_and_fail_on_failure(
    ping_server: tuple[str, list[str]],
) -> None:
    base, paths = ping_server
    url = f"{base}/ping/s3cr3t-uuid"
    line = ping(url, ok=True, timeout=5, mask=Masker())
    assert succeeded(line) and "HTTP 200" in line and "127.0.0.1" in line
    line = ping(url + "/", ok=False, timeout=5, mask=Masker())
    assert succeeded(line) and "failure" in line
    assert paths == ["/ping/s3cr3t-uuid", "/ping/s3cr3t-uuid/fail"]
    assert "s3cr3t-uuid" not in line, "the URL's token stays out of the log"


def test_ping_uptime_kuma_push_url_reports_down(ping_server: tuple[str, list[str]]) -> None:
    base, paths = ping_server
    url = f"{base}/api/push/T0K?status=up&msg=OK&ping="
    assert succeeded(ping(url, ok=True, timeout=5, mask=Masker()))
    assert succeeded(ping(url, ok=False, timeout=5, mask=Masker()))
    assert paths == [
        "/api/push/T0K?status=up&msg=OK&ping=",
        "/api/push/T0K?status=down&msg=OK&ping=",
    ]
    assert ping_target("https://hc-ping.com/abc", ok=False) == "https://hc-ping.com/abc/fail"


def test_ping_http_error_and_mask(ping_server: tuple[str, list[str]]) -> None:
    base, _ = ping_server
    line = ping(f"{base}/missing/uuid", ok=True, timeout=5, mask=Masker(["127.0.0.1"]))
    assert not succeeded(line) and "HTTP 404" in line and "127.0.0.1" not in line


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_dead_ping_url_never_raises() -> None:
    started = time.monotonic()
    refused = ping(f"http://127.0.0.1:{_closed_port()}/uuid", ok=True, timeout=2, mask=Masker())
    assert not succeeded(refused) and "refused" in refused.lower()
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/uuid"
        hung = ping(url, ok=False, timeout=0.5, mask=Masker())
    assert not succeeded(hung) and "timed out" in hung
    for bad in ("not a url", "ftp://example.invalid/x", "http://[::1/x", ""):
        line = ping(bad, ok=True, timeout=0.5, mask=Masker())
        assert not succeeded(line) and "\n" not in line
    assert time.monotonic() - started < 10


# --------------------------------------------------------------------------- history


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - 7 * 86400),
        ("12h", NOW - 12 * 3600),
        ("30m", NOW - 1800),
        ("90s", NOW - 90),
        ("2w", NOW - 14 * 86400),
        (" 1.5H ", NOW - 5400),
        ("2025-11-01", calendar.timegm((2025, 11, 1, 0, 0, 0))),
        ("2025-11-01T08:30", calendar.timegm((2025, 11, 1, 8, 30, 0))),
        ("2025-11-01 08:30:15Z", calendar.timegm((2025, 11, 1, 8, 30, 15))),
    ],
)
def test_parse_since(text: str, expected: float) -> None:
    assert history.parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "7x", "yesterday", "-7d", "2025-13-01", "2025-11-31x"])
def test_parse_since_errors_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"--since: expected a duration such as 7d"):
        history.parse_since(text, now=NOW)


def test_parse_since_refuses_the_future() -> None:
    with pytest.raises(ValueError, match="in the future"):
        history.parse_since("2030-01-01", now=NOW)


def _write_events(path: Path, events: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        for e in events:
            fh.write(json.dumps(e) + "\n")


def test_history_load_filters_by_time_and_skips_bad_lines(tmp_path: Path) -> None:
    assert history.load(tmp_path / "none", since=0) == []
    events = tmp_path / "events.jsonl"
    _write_events(events, [{"ts": NOW - 100, "type": "paused"}])
    with events.open("a") as fh:
        fh.write('{"ts": 17, "type": "cut sho\n[1, 2]\n{"type": "no ts"}\n')
    _write_events(events, [{"ts": NOW, "type": "resumed"}])
    assert [e.kind for e in history.load(tmp_path, since=0)] == ["paused", "resumed"]
    assert [e.kind for e in history.load(tmp_path, since=NOW - 50)] == ["resumed"]


def test_history_render_from_real_events(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    _old_event(
        store,
        "transition",
        **{"from": "primary", "to": "taking_over"},
        reason="primary unreachable",
    )
    _old_event(
        store,
        "action",
        action="TakeOver",
        ok=True,
        duration=6.93,
        detail="local gateway up (systemctl)",
        steps=["started"],
    )
    _old_event(store, "notice_queued", kind="took_over", id="a1", text="OpenClaw on mac OFFLINE")
    _old_event(store, "notice_failed", error="telegram: timed out")
    _old_event(store, "notice_sent", kind="took_over", id="a1")
    _old_event(store, "transition", **{"from": "failover", "to": "giving_back"}, reason="back")
    _give_back_event(store)
    _old_event(store, "notice_queued", kind="gave_back", id="b2", text="mac ONLINE\nsecond line")
    _old_event(store, "action", action="TakeOver", ok=False, duration=30, detail="nothing answers")
    _old_event(store, "syncback", ok=True, summary="rows synced back: 4 inserted, 1 updated")
    _old_event(store, "tick", reason="failover failed", status=1)
    _old_event(store, "paused")
    _old_event(store, "something_new", answer=42)
    table = history.render(history.load(tmp_path, since=0))
    lines = table.splitlines()
    assert lines[0].split() == ["TIME", "(UTC)", "EVENT", "DETAIL"]
    assert len(lines) == 13, "a line of an unknown type is skipped"
    body = "\n".join(lines[1:])
    assert "transition" in lines[1] and "primary -> taking_over: primary unreachable" in lines[1]
    assert "take over" in lines[2] and "ok in 6.9s: local gateway up (systemctl)" in lines[2]
    assert "took_over: OpenClaw on mac OFFLINE" in lines[3] and "not sent yet" not in lines[3]
    assert "notice failed" in lines[4] and "telegram: timed out" in lines[4]
    assert "notice sent" in lines[5]
    assert "give back" in lines[7] and "ok in 3.1s" in lines[7]
    assert "rows synced back: 3 inserted, 1 updated" in lines[7]
    assert "rows synced back: 2 inserted" in lines[7] and "local gateway stopped" not in lines[7]
    assert "gave_back (not sent yet): mac ONLINE second line" in lines[8]
    assert "FAILED in 30.0s: nothing answers" in lines[9]
    assert "sync-back" in lines[10] and "ok: rows synced back: 4 inserted" in lines[10]
    assert "check" in lines[11] and "failover failed (exit 1)" in lines[11]
    assert lines[12].split()[2] == "paused"
    assert "42" not in table and "something_new" not in table
    assert body.count("not sent yet") == 1
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    assert lines[1].startswith(stamp[:13]), "UTC times"
    assert history.render([]) == "no events"


# --------------------------------------------------------------------------- install


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home dir"  # a space: quoting is exercised
    config = home / ".config" / "openclaw-failover" / "config.yaml"
    config.parent.mkdir(parents=True)
    ssh_files(home)
    config.write_text(
        PRIMARY + "state_dir: ~/.local/state/ocf-test\n"
        "check:\n  interval: 30\n  deadline: 20\n"
        "metrics:\n  textfile: ${METRICS_DIR}/ocf.prom\n"
        "monitoring:\n  ping_url: https://hc-ping.com/uuid\n"
    )
    (config.parent / "env").write_text(
        "# secrets\nexport METRICS_DIR='/var/lib/node_exporter/tf'\n"
    )
    return home


def _config(home: Path) -> Path:
    return home / ".config" / "openclaw-failover" / "config.yaml"


def _tree(root: Path) -> list[tuple[str, float]]:
    return sorted((str(p), p.stat().st_mtime) for p in root.rglob("*"))


def _no_run(*args: Any, **kwargs: Any) -> CommandResult:
    raise AssertionError(f"a dry run ran {args}")


def test_install_dry_run_systemd_writes_nothing_and_prints_absolute_paths(home: Path) -> None:
    lines: list[str] = []
    before = _tree(home)
    code = run_install(
        "systemd",
        config_path=_config(home),
        dry_run=True,
        env={},
        say=lines.append,
        run=_no_run,
        is_root=False,
        home=home,
    )
    out = "\n".join(lines)
    assert code == 0, out
    assert _tree(home) == before, "a dry run writes nothing"
    units = home / ".config" / "systemd" / "user"
    assert f"would write {units}/openclaw-failover.service:" in out
    assert f"would write {units}/openclaw-failover.timer:" in out
    python = shlex.quote(str(Path(sys.executable).absolute()))
    config = f'"{_config(home)}"'  # the space makes systemd need quotes
    assert f"ExecStart={python} -m openclaw_failover --config {config} check" in out
    # EnvironmentFile= takes the rest of the line as the path: quotes would be part of it
    assert f"EnvironmentFile=-{home}/.config/openclaw-failover/env\n" in out
    assert f'ReadWritePaths="{home}/.local/state/ocf-test"' in out
    # the metrics dir, from the env file; "-": a missing folder does not stop the unit
    assert "ReadWritePaths=-/var/lib/node_exporter/tf" in out
    assert "OnUnitActiveSec=30s" in out and "TimeoutStartSec=28s" in out
    assert "would run: systemctl --user daemon-reload" in out
    assert "would run: systemctl --user enable --now openclaw-failover.timer" in out
    assert f"would create {home}/.local/state/ocf-test" in out
    for line in out.splitlines():
        if line.strip().startswith(("ExecStart=", "EnvironmentFile=", "ReadWritePaths=")):
            value = line.split("=", 1)[1].lstrip("-").lstrip('"')
            assert value.startswith("/"), f"not absolute: {line}"
    assert "%h" not in "\n".join(ln for ln in out.splitlines() if not ln.strip().startswith("#")), (
        "no specifier left: every path is this user's"
    )


def test_install_dry_run_cron_writes_nothing_and_prints_absolute_paths(home: Path) -> None:
    lines: list[str] = []
    _config(home).write_text(
        PRIMARY + "state_dir: ~/.local/state/ocf-test\ncheck:\n  interval: 120\n"
    )
    before = _tree(home)
    code = run_install(
        "cron",
        config_path=_config(home),
        dry_run=True,
        env={},
        say=lines.append,
        run=_no_run,
        is_root=False,
        home=home,
        command=[str(home / ".local" / "bin" / "ocf")],
    )
    out = "\n".join(lines)
    assert code == 0, out
    assert _tree(home) == before
    state = shlex.quote(f"{home}/.local/state/ocf-test")
    assert "would run: crontab -l" in out
    (line,) = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("*/2 * * * * ")]
    assert f"flock -n {shlex.quote(f'{home}/.local/state/ocf-test/cron.lock')} /bin/sh -c " in line
    assert line.endswith(f">> {shlex.quote(f'{home}/.local/state/ocf-test/cron.log')} 2>&1")
    assert state.strip("'") in line and str(_config(home)) in line
    assert "warning" not in out

    # as root: the cron.d file, for the given user
    cron_d = home / "etc" / "cron.d" / "openclaw-failover"
    lines.clear()
    code = run_install(
        "cron",
        config_path=_config(home),
        dry_run=True,
        env={},
        say=lines.append,
        run=_no_run,
        is_root=True,
        home=home,
        user="pi",
        command=["/opt/ocf/bin/ocf"],
        cron_d=cron_d,
    )
    out = "\n".join(lines)
    assert code == 0 and not cron_d.parent.exists()
    assert f"would write {cron_d}:" in out
    assert "*/2 * * * * pi umask 077; flock -n " in out and "PATH=/opt/ocf/bin:" in out


def test_install_refusals(home: Path) -> None:
    lines: list[str] = []
    kw: dict[str, Any] = {"dry_run": True, "env": {}, "say": lines.append, "home": home}
    assert run_install("systemd", config_path=_config(home), is_root=True, **kw) == 2
    assert "not as root" in lines[-1]
    assert run_install("anacron", config_path=_config(home), is_root=False, **kw) == 2
    assert "unknown kind" in lines[-1]
    assert run_install("cron", config_path=home / "nope.yaml", is_root=False, **kw) == 2
    assert "not found" in lines[-1]


def _fake_ocf(home: Path) -> Path:
    exe = home / "venv" / "bin" / "ocf"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return exe


def test_install_systemd_writes_units_and_enables_the_timer(home: Path) -> None:
    calls: list[tuple[list[str], dict[str, str]]] = []

    def run(argv: list[str], *, timeout: float, env: dict[str, str]) -> CommandResult:
        calls.append((list(argv), env))
        return CommandResult(tuple(argv), 0)

    lines: list[str] = []
    exe = _fake_ocf(home)
    kw: dict[str, Any] = {"env": {"HOME": str(home)}, "say": lines.append, "is_root": False}
    kw.update(home=home, command=[str(exe)], run=run, config_path=_config(home), dry_run=False)
    assert run_install("systemd", **kw) == 0, lines
    units = home / ".config" / "systemd" / "user"
    service = (units / "openclaw-failover.service").read_text()
    assert f'ExecStart="{exe}" --config "{_config(home)}" check' in service
    assert (units / "openclaw-failover.timer").read_text() == install_files.timer_unit(30)
    assert (home / ".local" / "state" / "ocf-test").is_dir()
    assert [c[0] for c in calls] == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "openclaw-failover.timer"],
    ]
    assert calls[0][1]["XDG_RUNTIME_DIR"].startswith("/run/user/")
    assert f"wrote {units}/openclaw-failover.service" in lines
    _assert_verified(_verify_units(units, home))  # what was installed is valid for systemd

    # a failing systemctl is reported clearly, with exit 1; unchanged files are said so
    def failing(argv: list[str], **_: Any) -> CommandResult:
        return CommandResult(tuple(argv), 1, stderr="Failed to connect to bus: No medium found")

    lines.clear()
    assert run_install("systemd", **{**kw, "run": failing}) == 1
    assert f"unchanged: {units}/openclaw-failover.service" in lines
    assert "daemon-reload` failed" in lines[-1] and "Failed to connect to bus" in lines[-1]


def test_install_crontab_replaces_only_its_own_block(home: Path, tmp_path: Path) -> None:
    exe = _fake_ocf(home)
    old = (
        f"MAILTO=me\n0 3 * * * backup\n{install_files.BEGIN}\n* * * * * old ocf\n{install_files.END}\n"
        "30 4 * * * after\n"
    )
    installed: list[str] = []

    def run(argv: list[str], **_: Any) -> CommandResult:
        if argv == ["crontab", "-l"]:
            return CommandResult(tuple(argv), 0, stdout=old)
        installed.append(Path(argv[1]).read_text())
        return CommandResult(tuple(argv), 0)

    lines: list[str] = []
    kw: dict[str, Any] = {"env": {}, "say": lines.append, "is_root": False, "home": home}
    kw.update(command=[str(exe)], config_path=_config(home), dry_run=False)
    assert run_install("cron", run=run, **kw) == 0, lines
    (new,) = installed
    assert new.startswith("MAILTO=me\n0 3 * * * backup\n30 4 * * * after\n# BEGIN openclaw-fail")
    assert (
        "old ocf" not in new
        and new.count(install_files.BEGIN) == 1
        and new.endswith(f"{install_files.END}\n")
    )
    assert "\n* * * * * umask 077; flock -n " in new, "every minute: cron's best for 30 s"
    assert "PATH=" in new and "; export PATH; " in new, (
        "PATH inside the job: other jobs keep theirs"
    )
    assert any("cron runs at most once a minute" in ln for ln in lines)
    assert any("replaced our block" in ln for ln in lines)

    def empty(argv: list[str], **_: Any) -> CommandResult:
        if argv == ["crontab", "-l"]:
            return CommandResult(tuple(argv), 1, stderr="no crontab for pi")
        installed.append(Path(argv[1]).read_text())
        return CommandResult(tuple(argv), 0)

    assert run_install("cron", run=empty, **kw) == 0
    assert installed[-1].startswith(install_files.BEGIN)

    def missing(argv: list[str], **_: Any) -> CommandResult:
        return CommandResult(tuple(argv), None, error="command not found: crontab")

    assert run_install("cron", run=missing, **kw) == 1
    assert "apt-get install cron" in lines[-1]


def test_install_cron_d_as_root_and_the_line_really_runs(home: Path) -> None:
    """The generated line, run by /bin/sh as cron would: env file exported, output in
    cron.log, and a second run while the first holds the lock does nothing."""
    record = home / "record"
    exe = home / "bin 100%" / "ocf"  # cron ends a command at an unescaped %
    exe.parent.mkdir()
    exe.write_text(f'#!/bin/sh\necho "args: $* token: $OCF_TOKEN" >> "{record}"\necho printed\n')
    exe.chmod(0o755)
    (_config(home).parent / "env").write_text("OCF_TOKEN=123:abc\nMETRICS_DIR=/srv/tf\n")
    state = home / ".local" / "state" / "ocf-test"
    state.mkdir(parents=True)
    cron_d = home / "cron.d" / "openclaw-failover"
    cron_d.parent.mkdir()
    lines: list[str] = []
    code = run_install(
        "cron",
        config_path=_config(home),
        dry_run=False,
        env={},
        say=lines.append,
        is_root=True,
        home=home,
        user="root",
        command=[str(exe)],
        cron_d=cron_d,
    )
    assert code == 0, lines
    assert stat.S_IMODE(cron_d.stat().st_mode) == 0o644
    text = cron_d.read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("* * * * * root ")]
    assert "bin 100\\%" in line and "100%" not in line.replace("\\%", "")
    assert "PATH=" in text and "SHELL=/bin/sh" in text
    command = line.split(" ", 6)[6].replace("\\%", "%")
    path = next(ln for ln in text.splitlines() if ln.startswith("PATH=")).split("=", 1)[1]
    env = {"PATH": path, "HOME": str(home)}
    subprocess.run(["/bin/sh", "-c", command], env=env, check=True, timeout=30)
    assert record.read_text() == f"args: --config {_config(home)} check token: 123:abc\n"
    assert (state / "cron.log").read_text() == "printed\n"
    assert stat.S_IMODE((state / "cron.log").stat().st_mode) == 0o600, "umask 077"
    holder = subprocess.Popen(["flock", str(state / "cron.lock"), "sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the holder has the lock
            probe = subprocess.run(["flock", "-n", str(state / "cron.lock"), "true"], check=False)
            if probe.returncode:
                break
            time.sleep(0.05)
        subprocess.run(["/bin/sh", "-c", command], env=env, check=False, timeout=30)
    finally:
        holder.kill()
        holder.wait()
    assert record.read_text().count("args:") == 1, "flock -n: the second run was skipped"


def test_cron_d_runs_as_the_config_owner_or_the_sudo_user(home: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the config file to another user")
    import pwd

    nobody = pwd.getpwnam("nobody")
    config = _config(home)
    keys = f"    key_file: {home}/.ssh/id_ed25519\n    known_hosts: {home}/.ssh/known_hosts\n"
    config.write_text(config.read_text().replace(PRIMARY, PRIMARY + keys))  # nobody has no ~
    os.chown(config, nobody.pw_uid, nobody.pw_gid)
    cfg = install.load("cron", config, {"SUDO_USER": "root"}, root=True)
    target = install.resolve_target("cron", cfg, env={"SUDO_USER": "root"}, root=True)
    assert (target.user, target.home) == ("nobody", Path(nobody.pw_dir))
    assert target.state_dir == Path(nobody.pw_dir) / ".local/state/ocf-test", "~ is their home"
    assert target.writable == [Path("/var/lib/node_exporter/tf")], "${VAR} from the env file"
    os.chown(config, 0, 0)
    cfg = install.load("cron", config, {}, root=True)
    kw: dict[str, Any] = {"kind": "cron", "cfg": cfg, "root": True}
    assert install.resolve_target(env={"SUDO_USER": "nobody"}, **kw).user == "nobody"
    assert install.resolve_target(env={}, **kw).user == "root"


def test_ocf_command_prefers_the_running_ocf(tmp_path: Path) -> None:
    exe = tmp_path / "bin" / "ocf"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert install.ocf_command(str(exe)) == (str(exe),)
    fallback = install.ocf_command("/usr/lib/python3/dist-packages/pytest")
    assert fallback == (str(Path(sys.executable).absolute()), "-m", "openclaw_failover")


def test_ocf_command_under_sudo_is_the_absolute_ocf_beside_the_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sudo ocf install cron`: root's PATH lacks ~/.local/bin, argv[0] is a bare "ocf"."""
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "ocf").write_text("#!/bin/sh\n")
    (venv / "ocf").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(venv / "python3"))
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    assert install.ocf_command("ocf") == (str(venv / "ocf"),)


# --------------------------------------------------------------------------- shipped files


def _pi_target() -> install_files.Target:
    home = Path("/home/pi")
    return install_files.Target(
        user="pi",
        home=home,
        command=(str(home / ".local/bin/ocf"),),
        config=home / ".config/openclaw-failover/config.yaml",
        env_file=home / ".config/openclaw-failover/env",
        state_dir=home / ".local/state/openclaw-failover",
        interval=120,
        interval_set=True,
        deadline=100,
        ping_timeout=None,
    )


def test_shipped_samples_are_what_ocf_install_writes() -> None:
    assert (DEPLOY / "cron" / "openclaw-failover").read_text() == install_files.cron_d_file(
        _pi_target()
    )
    service = install_files.service_unit(
        exec_start="%h/.local/bin/ocf check",
        env_file="-%h/.config/openclaw-failover/env",
        state_dir="%h/.local/state/openclaw-failover",
        writable=[],
        timeout=28,
    )
    assert (DEPLOY / "systemd" / "openclaw-failover.service").read_text() == service
    assert (DEPLOY / "systemd" / "openclaw-failover.timer").read_text() == install_files.timer_unit(
        30
    )
    text = service
    for setting in (
        "Type=oneshot",
        "KillMode=process",
        "TimeoutStartSec=28s",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=%h/.local/state/openclaw-failover",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "EnvironmentFile=-%h/.config/openclaw-failover/env",
    ):
        assert f"\n{setting}\n" in text, setting
    timer = install_files.timer_unit(30)
    assert "\nOnUnitActiveSec=30s\n" in timer and "\nAccuracySec=1s\n" in timer
    logrotate = (DEPLOY / "logrotate" / "openclaw-failover").read_text()
    assert "/home/pi/.local/state/openclaw-failover/cron.log {" in logrotate


def _verify_units(unit_dir: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify --user` on the two units; any output at all is a failure
    (it exits 0 on unknown keys and unparsable values, printing only a warning)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    runtime = home / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime), "PATH": os.environ["PATH"]}
    units = [str(unit_dir / "openclaw-failover.service"), str(unit_dir / "openclaw-failover.timer")]
    return subprocess.run(
        [analyze, "verify", "--user", *units],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _assert_verified(result: subprocess.CompletedProcess[str]) -> None:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and output == "", output


def _shipped_units(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "home"
    ocf = home / ".local" / "bin" / "ocf"  # ExecStart=%h/.local/bin/ocf must be executable
    ocf.parent.mkdir(parents=True)
    ocf.write_text("#!/bin/sh\n")
    ocf.chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    for name in ("openclaw-failover.service", "openclaw-failover.timer"):
        shutil.copy(DEPLOY / "systemd" / name, units / name)
    return units, home


def test_systemd_analyze_verify_passes_on_the_shipped_units(tmp_path: Path) -> None:
    units, home = _shipped_units(tmp_path)
    _assert_verified(_verify_units(units, home))


@pytest.mark.parametrize(
    ("line", "broken"),
    [
        ("KillMode=process", "KillMode=procss"),
        ("PrivateTmp=yes", "PrivateTemp=yes"),
        ("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "RestrictAddressFamilies=AF_UNX"),
        ("ExecStart=%h/.local/bin/ocf check", "ExecStart=%h/.local/bin/ocff check"),
    ],
)
def test_the_verify_check_can_fail(tmp_path: Path, line: str, broken: str) -> None:
    units, home = _shipped_units(tmp_path)
    service = units / "openclaw-failover.service"
    text = service.read_text()
    assert f"\n{line}\n" in text
    service.write_text(text.replace(f"\n{line}\n", f"\n{broken}\n"))
    with pytest.raises(AssertionError):
        _assert_verified(_verify_units(units, home))


def test_install_systemd_warns_when_check_interval_is_not_the_30s_timer(home: Path) -> None:
    _config(home).write_text(
        PRIMARY + "state_dir: ~/.local/state/ocf-test\ncheck:\n  interval: 120\n"
    )
    lines: list[str] = []
    kw: dict[str, Any] = {"dry_run": True, "env": {}, "run": _no_run, "is_root": False}
    code = run_install("systemd", config_path=_config(home), say=lines.append, home=home, **kw)
    out = "\n".join(lines)
    assert code == 0, out
    assert "warning: check.interval is 120 s, so the timer runs every 120 s, not every 30 s" in out
    assert "`check: {interval: 30, deadline: 20}`" in out
    assert "OnUnitActiveSec=120s" in out  # the timer follows check.interval


def test_install_without_check_interval_schedules_the_default_and_says_so(home: Path) -> None:
    """check.interval's schema default (120) is what `ocf status` assumes; a timer whose
    interval the config does not set runs every 30 s and asks for it to be set."""
    _config(home).write_text(
        PRIMARY + "state_dir: ~/.local/state/ocf-test\ncheck: {deadline: 20}\n"
    )
    kw: dict[str, Any] = {"dry_run": True, "env": {}, "run": _no_run, "is_root": False}
    lines: list[str] = []
    assert run_install("systemd", config_path=_config(home), say=lines.append, home=home, **kw) == 0
    out = "\n".join(lines)
    assert "warning: check.interval is not set: scheduling every 30 s" in out, out
    assert "OnUnitActiveSec=30s" in out
    lines.clear()
    assert run_install("cron", config_path=_config(home), say=lines.append, home=home, **kw) == 0
    out = "\n".join(lines)
    assert "warning: check.interval is not set: scheduling every 120 s" in out, out
    assert any(ln.strip().startswith("*/2 * * * * ") for ln in out.splitlines()), out


def test_ocf_install_validates_the_config_with_the_env_file(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI: ${VAR} from the env file beside the config (what the schedule loads), ~ the
    user's home; a value the check would refuse stops it with exit 2, nothing written."""
    from openclaw_failover.cli.app import Environment, main

    config = _config(home)
    (config.parent / "env").write_text("STATE='/srv/ocf state'\n")
    config.write_text(PRIMARY + "state_dir: ${STATE}\ncheck: {interval: 120}\n")
    env = Environment(env={"HOME": str(home), "PATH": os.defpath})
    argv = ["--config", str(config), "install", "cron", "--dry-run"]
    assert main(argv, env) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "would create /srv/ocf state" in out and "/srv/ocf state/cron.log" in out, out
    config.write_text(PRIMARY + "state_dir: ${STATE}\ncheck: {interval: 0}\n")
    assert main(argv, env) == 2
    err = capsys.readouterr().err
    assert "At 'check.interval': must be at least 1, got 0" in err, err
    assert not Path("/srv/ocf state").exists()

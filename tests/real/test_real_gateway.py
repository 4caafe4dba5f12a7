"""ocf against the real OpenClaw gateway (npm openclaw 2026.9.6 on Node 24).

The primary's gateway is reached through a real OpenSSH sshd on 127.0.0.1; the
standby's is started by ocf itself (its detached fallback: `node openclaw.mjs gateway
run`, which renames itself to `openclaw-gateway`).  At most two gateways run at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from openclaw_failover.config.loader import (
    Config,
    PrimaryConfig,
    SSHConfig,
    StandbyConfig,
    StandbyGateway,
)
from openclaw_failover.config.secrets import Masker
from openclaw_failover.local.gateway import LocalGateway
from tests.harness.sshd import SSHServer, require_openssh
from tests.real.conftest import Gateway, group_pids, rss_mb, wait_until

pytestmark = pytest.mark.real


@dataclass
class World:
    tmp: Path
    sshd: SSHServer
    primary: Gateway
    standby: Gateway
    config_path: Path
    doc: dict[str, Any]

    @property
    def state_dir(self) -> Path:
        return self.tmp / "state"

    def ocf(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = self.standby.env()  # the fallback gateway inherits the standby's HOME
        for name in ("INVOCATION_ID", "JOURNAL_STREAM"):
            env.pop(name, None)
        cmd = [sys.executable, "-m", "openclaw_failover", "--config", str(self.config_path), *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)

    def state(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "state.json").read_text())

    def actions(self) -> list[dict[str, Any]]:
        path = self.state_dir / "events.jsonl"
        events = [json.loads(line) for line in path.read_text().splitlines()]
        return [e for e in events if e["type"] == "action"]

    def fallback_pid(self) -> int:
        return int((self.state_dir / "gateway.pid").read_text().split()[0])


@pytest.fixture
def world(tmp_path: Path, gateways: Callable[..., Gateway]) -> Iterator[World]:
    require_openssh()
    primary = gateways("primary", profile=True)
    standby = gateways("standby")
    srv = SSHServer(tmp_path / "sshd").start()
    doc: dict[str, Any] = {
        "primary": {
            "name": "Mac",
            "host": "127.0.0.1",
            "ssh": {
                "user": srv.user,
                "port": srv.port,
                "key_file": str(srv.client_key),
                "known_hosts": str(srv.known_hosts),
                "connect_timeout": 5,
                "command_timeout": 60,
            },
            "gateway": {
                "health_url": f"http://127.0.0.1:{primary.port}/healthz",
                # What the README recommends for a gateway run without a service manager.
                "stop_command": primary.cli("gateway", "stop", "--force"),
                "start_command": ["sh", "-c", primary.start_script()],
            },
        },
        "standby": {
            "name": "Pi",
            "gateway": {
                "health_url": f"http://127.0.0.1:{standby.port}/healthz",
                "start_command": ["false"],  # no service manager here: the fallback runs
                "fallback_start_command": standby.node_argv("gateway", "run"),
                "stop_command": ["true"],
                "start_timeout": 120,
                "stop_timeout": 20,
            },
        },
        "check": {"retries": 1, "retry_delay": 0.2, "probe_timeout": 3, "deadline": 280},
        "state_dir": str(tmp_path / "state"),
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(doc))
    w = World(tmp_path, srv, primary, standby, config_path, doc)
    try:
        yield w
    finally:
        pidfile = w.state_dir / "gateway.pid"
        more = [w.fallback_pid()] if pidfile.exists() else []
        standby.kill_all(*more)
        srv.close()


def say(text: str) -> None:
    print(f"[real] {text}", file=sys.stderr)


def test_takeover_to_the_real_gateway_and_give_back_stops_it_despite_the_rename(
    world: World,
) -> None:
    """Healthy ticks; the primary frozen (a timeout); the primary's gateway killed: takeover,
    the standby's real gateway ready, a second `gateway run` on its state refused (78);
    the primary back: give-back stops the standby's gateway although it renamed itself to
    openclaw-gateway."""
    p, s = world.primary, world.standby
    p.start()
    say(f"primary healthy after {p.wait_healthy():.1f}s, ready after {p.wait_ready():.1f}s")
    say(f"primary gateway RSS with workers: {rss_mb(p.pid()):.0f} MB")

    for _ in range(2):  # healthy ticks: nothing happens
        r = world.ocf("check")
        assert (r.returncode, r.stdout) == (0, ""), r.stdout + r.stderr
        assert world.state()["last_probe"]["status"] == "healthy"
    assert s.health() is None
    check_frozen_primary_times_out(world)

    os.killpg(p.pid(), signal.SIGKILL)  # the primary's gateway dies; its SSH stays up
    wait_until(lambda: p.health() is None, "the primary's gateway to be gone", 15)
    t0 = time.monotonic()
    r = world.ocf("check")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("took over: primary gateway_down"), r.stdout + r.stderr
    assert world.state()["role"] == "failover"
    wait_until(lambda: s.health() == 200, "the standby's gateway to answer", 30)
    say(f"takeover (one check, fence + real gateway start): {took:.1f}s")
    say(f"standby ready {s.wait_ready():.1f}s after the takeover")
    steps = [st for a in world.actions() if a["action"] == "TakeOver" for st in a["steps"]]
    assert any(st.startswith("gateway ready (/readyz 200)") for st in steps), steps
    pid = world.fallback_pid()
    # The rename that used to make give-back refuse to stop it:
    assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"openclaw-gateway")
    assert os.getsid(pid) == pid
    workers = group_pids(pid)
    assert len(workers) > 1, "the real gateway runs worker processes in its group"
    say(f"standby gateway RSS with workers: {rss_mb(pid):.0f} MB ({len(workers)} processes)")
    check_second_gateway_is_refused_with_78(s, world.tmp)

    p.start()  # the primary's gateway is back (two instances now)
    p.wait_healthy()
    r = world.ocf("doctor", "--json")
    versions = [c["detail"] for c in json.loads(r.stdout)["checks"] if c["name"] == "openclaw"]
    say(f"ocf doctor: {versions}")
    assert len(versions) == 2, r.stdout
    assert versions[0].startswith(f"primary gateway: OpenClaw {p.install.version()}"), r.stdout
    assert versions[1] == f"standby gateway: OpenClaw {s.install.version()} (/startupz)", r.stdout
    t0 = time.monotonic()
    r = world.ocf("check")
    gave = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("gave back: primary healthy"), r.stdout + r.stderr
    say(f"give-back (one check, stop of the real gateway): {gave:.1f}s")
    steps = world.actions()[-1]["steps"]
    assert f"fallback pid {pid} stopped (SIGTERM)" in json.dumps(world.actions()), steps
    assert not group_pids(pid), "a worker of the stopped gateway survived"
    assert s.health() is None
    assert not (world.state_dir / "gateway.pid").exists()
    assert world.state()["role"] == "primary"
    r = world.ocf("check")  # and the next check is quiet: no retry, no second gateway
    assert (r.returncode, r.stdout) == (0, ""), r.stdout + r.stderr


def check_frozen_primary_times_out(world: World) -> None:
    """SIGSTOP: the port still accepts, nothing answers. A timeout, never "healthy" and
    never a refusal (the partition work calls it gateway_slow)."""
    p = world.primary
    os.killpg(p.pid(), signal.SIGSTOP)
    try:
        assert p.health() is None
        r = world.ocf("check", "--dry-run")
        out = r.stdout + r.stderr
        say(f"frozen primary: {r.stdout.strip()}")
        assert r.returncode == 0, out
        assert "healthy" not in r.stdout.split("(")[0], out
        assert "within 3s" in out or "gateway_slow" in out, out
    finally:
        os.killpg(p.pid(), signal.SIGCONT)
    wait_until(lambda: p.health() == 200, "the thawed gateway to answer", 30)
    r = world.ocf("check")
    assert (r.returncode, r.stdout) == (0, ""), r.stdout + r.stderr


def test_manual_takeover_fences_with_the_real_stop_command_and_release_restarts_it(
    world: World,
) -> None:
    """`openclaw gateway stop --force` over SSH stops the primary's running gateway (without
    --force it exits 1 non-interactively); release starts it again detached over SSH."""
    p, s = world.primary, world.standby
    p.start()
    p.wait_healthy()
    first = p.pid()

    t0 = time.monotonic()
    r = world.ocf("takeover")
    say(f"manual takeover with a real fence: {time.monotonic() - t0:.1f}s")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert world.state()["role"] == "failover", out
    steps = json.dumps(world.actions())
    assert "openclaw: exit 0" in steps and "fence holds: primary gateway_down" in steps, steps
    wait_until(lambda: not group_pids(first), "the fenced gateway's processes to end", 30)
    assert p.health() is None and s.health() == 200
    assert (world.state_dir / "fenced").exists()

    t0 = time.monotonic()
    r = world.ocf("release")
    say(f"release (stop standby, restart the primary over SSH): {time.monotonic() - t0:.1f}s")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert world.state()["role"] == "primary", out
    assert p.health() == 200 and s.health() is None
    assert p.pid() != first and os.getsid(p.pid()) == p.pid()  # restarted, detached


def check_second_gateway_is_refused_with_78(holder: Gateway, tmp_path: Path) -> None:
    """A gateway that holds the state (here on another port than the health URL) makes a
    second `gateway run` exit 78 at once: ocf reports it, and does not wait it out."""
    other_port = holder.port + 1 if holder.port < 65000 else holder.port - 1
    ssh = SSHConfig(user="u", key_file=tmp_path / "k", known_hosts=tmp_path / "kh")
    cfg = Config(
        primary=PrimaryConfig(host="primary.invalid", ssh=ssh),
        standby=StandbyConfig(
            gateway=StandbyGateway(
                start_command=("false",),
                stop_command=("true",),
                health_url=f"http://127.0.0.1:{other_port}/healthz",
                fallback_start_command=tuple(
                    holder.node_argv("gateway", "run", "--port", str(other_port))
                ),
                start_timeout=120,
            )
        ),
        state_dir=tmp_path / "state-second",
    )
    out = LocalGateway(cfg, mask=Masker(), env=holder.env()).start()
    assert not out.ok, out.steps
    report = out.steps[-1]
    say(f"second gateway: {report} after {out.duration:.1f}s")
    assert "exited early with code 78" in report, out.steps
    assert "another OpenClaw gateway" in report, out.steps
    assert out.duration < 60  # not the whole start_timeout
    wait_until(lambda: holder.health() == 200, "the first gateway to answer", 10)  # untouched

"""Leadership on etcd, end to end: three hosts' checks against a real 3-member etcd.

Each host is a real ``Tick`` (lock, decide, act, persist, notify) with its own config
and state folder; each gateway is a real HTTP server process started and stopped by
real commands (tests/harness/fake_service.py, like ``systemctl --user``).  The
standbys probe the primary's gateway over HTTP on 127.0.0.1 (the SSH path is tested
elsewhere).  A host cut off from etcd gets endpoints where nothing listens.  After
every step: at most one gateway serves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from openclaw_failover.config.loader import Config, load_config
from openclaw_failover.core.model import ProbeResult, ProbeStatus
from openclaw_failover.engine.coord import guard
from openclaw_failover.engine.tick import Tick, TickResult
from openclaw_failover.local import httpcheck
from tests.harness.etcd import EtcdCluster, etcd_problem, free_ports

HARNESS = Path(__file__).resolve().parents[1] / "harness"
SERVICE = [sys.executable, str(HARNESS / "fake_service.py")]
TTL = 3
INTERVAL = 1.0
NS_TTL = 6  # the partition test: three endpoints x 0.5 s timeouts per failed read

pytestmark = pytest.mark.skipif(bool(etcd_problem()), reason=etcd_problem() or "etcd")


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    with EtcdCluster(3) as c:
        yield c


@dataclass
class Host:
    name: str
    mode: str
    port: int
    dir: Path
    doc: dict[str, Any]
    wrap: list[str] = field(default_factory=list)  # ip netns exec NS: the host's namespace
    env: dict[str, str] = field(default_factory=dict)

    def service(self, verb: str) -> None:
        cmd = [*self.wrap, *SERVICE, verb, "--state-dir", str(self.dir / "svc")]
        if verb == "start":
            cmd += ["--port", str(self.port)]
        subprocess.run(cmd, check=True, timeout=30, capture_output=True)
        t0 = time.monotonic()
        while verb == "start" and not self.serves():  # like a Type=simple unit: not yet up
            assert time.monotonic() - t0 < 10, f"{self.name}'s gateway did not start"
            time.sleep(0.05)

    def serves(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/"
        if not self.wrap:
            return httpcheck.answers(url, 1.0)
        curl = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1", url]
        out = subprocess.run([*self.wrap, *curl], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() not in ("", "000")

    @property
    def config_path(self) -> Path:
        return self.dir / "config.yaml"

    def config(self) -> Config:
        """Written to a file and loaded from it (the leader guard reads it too)."""
        self.config_path.write_text(yaml.safe_dump(self.doc))
        return load_config(self.config_path, self.env)

    def events(self, kind: str) -> list[dict[str, Any]]:
        path = self.dir / "state" / "events.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [e for e in map(json.loads, lines) if e["type"] == kind]

    def notices(self) -> list[str]:
        return [e["text"] for e in self.events("notice_queued")]

    def role(self) -> str:
        return str(json.loads((self.dir / "state" / "state.json").read_text())["role"])


class Cluster:
    def __init__(self, tmp: Path, etcd: EtcdCluster, primary_ns: str | None = None) -> None:
        tmp.mkdir(exist_ok=True)
        self.tmp = tmp
        self.etcd = etcd
        self.primary_ns = primary_ns
        self.ttl = NS_TTL if primary_ns else TTL
        self.prefix = f"/ocf-scn/{uuid.uuid4().hex[:8]}"
        key = tmp / "key"
        key.write_text("")
        ports = free_ports(3)
        self.hosts: dict[str, Host] = {}
        self.primary = self._host("mac", "primary", ports[0], key, priority=1000)
        self.pi1 = self._host("pi1", "standby", ports[1], key, priority=200)
        self.pi2 = self._host("pi2", "standby", ports[2], key, priority=100)
        self.primary.service("start")

    def _host(self, name: str, mode: str, port: int, key: Path, priority: int) -> Host:
        d = self.tmp / name
        d.mkdir()
        svc = [*SERVICE, "--state-dir", str(d / "svc")]
        doc = {
            "primary": {"name": "mac", "host": "127.0.0.1",
                        "ssh": {"user": "u", "key_file": str(key), "known_hosts": str(key)}},
            "standby": {"name": name, "gateway": {
                "health_url": f"http://127.0.0.1:{port}/",
                "start_command": [*svc[:2], "start", *svc[2:], "--port", str(port)],
                "stop_command": [*svc[:2], "stop", *svc[2:]],
                "start_timeout": 10, "stop_timeout": 10}},
            "check": {"retries": 0, "retry_delay": 0, "deadline": 30, "interval": INTERVAL},
            "state_dir": str(d / "state"),
            "coordination": {"endpoints": self.etcd.endpoints, "name": name, "mode": mode,
                             "prefix": self.prefix, "ttl": self.ttl, "priority": priority,
                             "priority_delay": 2, "timeout": 0.5},
        }  # fmt: skip
        ns = self.primary_ns if mode == "primary" else None
        host = Host(name, mode, port, d, doc, wrap=["ip", "netns", "exec", ns] if ns else [])
        self.hosts[name] = host
        return host

    def probe_primary(self, cfg: Config, mask: object) -> ProbeResult:
        if self.primary.serves():
            return ProbeResult(ProbeStatus.HEALTHY, 0.0, "HTTP 200")
        return ProbeResult(ProbeStatus.GATEWAY_DOWN, 0.0, "connection refused")

    def check(self, host: Host, request: str | None = None) -> TickResult:
        tick = Tick(
            host.config(),
            os.environ,
            request=request,
            probe=self.probe_primary,
            witnesses=lambda cfg, mask: None,
            sleep=lambda s: None,
        )
        result = tick.run()
        self.assert_one_serves()
        return result

    def round(self, *hosts: Host) -> dict[str, TickResult]:
        return {h.name: self.check(h) for h in hosts or tuple(self.hosts.values())}

    def serving(self) -> list[str]:
        return [h.name for h in self.hosts.values() if h.serves()]

    def assert_one_serves(self) -> None:
        serving = self.serving()
        assert len(serving) <= 1, f"two gateways serve: {serving}"

    def holder(self) -> str | None:
        from openclaw_failover.engine.coord.etcd import EtcdClient

        kv = EtcdClient(self.etcd.endpoints).get(self.prefix + "/leader")
        return kv.value if kv else None

    def cut_off(self, host: Host) -> None:
        """This host reaches no etcd member (its endpoints lead nowhere)."""
        dead = [f"http://127.0.0.1:{p}" for p in free_ports(2)]
        host.doc["coordination"]["endpoints"] = dead

    def reconnect(self, host: Host) -> None:
        host.doc["coordination"]["endpoints"] = self.etcd.endpoints

    def run_until(self, done: Callable[[], bool], timeout: float, *hosts: Host) -> float:
        """Rounds every INTERVAL until ``done``; the seconds it took."""
        t0 = time.monotonic()
        while not done():
            assert time.monotonic() - t0 < timeout, f"not done within {timeout}s"
            started = time.monotonic()
            self.round(*hosts)
            time.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))
        return time.monotonic() - t0

    def close(self) -> None:
        for h in self.hosts.values():
            guard.stop(h.dir / "state")
            subprocess.run([*SERVICE, "stop", "--state-dir", str(h.dir / "svc")],
                           timeout=30, check=False, capture_output=True)  # fmt: skip


@pytest.fixture
def cluster(tmp_path: Path, etcd: EtcdCluster) -> Iterator[Cluster]:
    c = Cluster(tmp_path, etcd)
    try:
        yield c
    finally:
        c.close()


def test_primary_holds_the_key_standbys_stay(cluster: Cluster) -> None:
    cluster.round()
    assert cluster.holder() == "mac"
    assert cluster.serving() == ["mac"]
    assert any("Leader is now mac" in t for t in cluster.primary.notices())
    for _ in range(2):
        cluster.round()
    assert cluster.holder() == "mac" and cluster.serving() == ["mac"]


def test_primary_cut_off_from_etcd_fences_itself_then_one_standby_takes_over(
    cluster: Cluster,
) -> None:
    cluster.round()
    assert cluster.holder() == "mac"
    cut_at = time.time()  # the last refresh was before this
    cluster.cut_off(cluster.primary)
    cluster.run_until(lambda: not cluster.primary.serves(), TTL + 2)
    fence = [e for e in cluster.primary.events("self") if e["action"] == "fence_self"]
    assert len(fence) == 1 and fence[0]["ok"]
    fenced_after = fence[0]["ts"] - cut_at  # its gateway stopped answering by then
    assert fenced_after < TTL, f"fenced after {fenced_after:.1f}s, TTL {TTL}s"
    assert any("FENCED ITSELF" in t for t in cluster.primary.notices())
    took = cluster.run_until(lambda: cluster.serving() != [], TTL + 4)
    assert cluster.serving() == ["pi1"] and cluster.holder() == "pi1"
    print(f"\nprimary fenced itself after {fenced_after:.1f}s; pi1 serves {took:.1f}s later")
    # etcd answers the primary again: it waits (never two serving), pi1 gives back and
    # releases, then the primary takes the key and only then starts its gateway
    cluster.reconnect(cluster.primary)
    cluster.round(cluster.primary)
    assert cluster.serving() == ["pi1"] and cluster.holder() == "pi1"
    assert "waiting for pi1's give-back" in cluster.primary.events("coordination")[-1]["reason"]
    cluster.round(cluster.pi1, cluster.pi2)
    assert cluster.serving() == [] and cluster.holder() is None and cluster.pi1.role() == "primary"
    cluster.round(cluster.primary)
    assert cluster.serving() == ["mac"] and cluster.holder() == "mac"


def test_two_standbys_race_the_higher_priority_serves(cluster: Cluster) -> None:
    cluster.round()  # everybody's heartbeat is in etcd; mac holds the key
    cluster.primary.service("stop")  # the primary's gateway dies
    cluster.round(cluster.primary)  # mac releases the key (its gateway is down)
    assert cluster.holder() is None
    # the lower priority checks first, and checks again: it waits its delay
    cluster.round(cluster.pi2)
    assert cluster.serving() == [] and cluster.pi2.role() == "primary"
    assert "pi1 has a higher priority" in cluster.pi2.events("coordination")[-1]["reason"]
    cluster.round(cluster.pi1, cluster.pi2)
    assert cluster.serving() == ["pi1"] and cluster.holder() == "pi1"
    time.sleep(2)  # past pi2's delay: the key is held, it still does not take over
    cluster.round(cluster.pi2, cluster.pi1)
    assert cluster.serving() == ["pi1"] and cluster.pi2.role() == "primary"


def test_standby_cut_off_from_etcd_does_not_take_over(cluster: Cluster) -> None:
    cluster.round()
    cluster.cut_off(cluster.pi1)
    cluster.primary.service("stop")
    for _ in range(3):
        cluster.round(cluster.primary, cluster.pi1)
    assert cluster.serving() == []
    assert cluster.pi1.role() == "primary"
    lost = [t for t in cluster.pi1.notices() if "cannot reach an etcd quorum" in t]
    assert len(lost) == 1, cluster.pi1.notices()
    cluster.reconnect(cluster.pi1)
    cluster.round(cluster.pi1)
    assert cluster.serving() == ["pi1"]


def test_etcd_loses_quorum_nobody_changes_role(cluster: Cluster) -> None:
    cluster.round()
    cluster.primary.service("stop")  # the primary's gateway is down too
    cluster.etcd.kill("m0")
    cluster.etcd.kill("m1")
    try:
        for _ in range(2):
            cluster.round(cluster.pi1, cluster.pi2)
        assert cluster.serving() == []
        assert [cluster.pi1.role(), cluster.pi2.role()] == ["primary", "primary"]
        for h in (cluster.pi1, cluster.pi2):
            lost = [t for t in h.notices() if "no role change" in t]
            assert len(lost) == 1, h.notices()
    finally:
        cluster.etcd.restart("m0")
        cluster.etcd.restart("m1")
        cluster.etcd.wait_healthy()


def test_give_back_releases_the_key_last_and_the_primary_takes_it(cluster: Cluster) -> None:
    cluster.round()
    cluster.primary.service("stop")
    cluster.round(cluster.primary)
    cluster.round(cluster.pi1, cluster.pi2)
    assert cluster.serving() == ["pi1"] and cluster.holder() == "pi1"
    cluster.round(cluster.pi1)  # refreshed while serving
    assert cluster.holder() == "pi1"
    cluster.pi1.service("stop")  # (a give-back stops ours before the primary's restarts)
    cluster.primary.service("start")
    cluster.round(cluster.pi1)  # the primary is back: pi1 gives back, then releases
    assert cluster.pi1.role() == "primary" and cluster.holder() is None
    release = cluster.pi1.events("leader")[-1]
    assert release["action"] == "release" and release["ok"] is True
    cluster.round(cluster.primary)
    assert cluster.holder() == "mac" and cluster.serving() == ["mac"]


def _ocf(host: Host, *args: str) -> tuple[int, str]:
    host.config()  # written
    out = subprocess.run(
        [sys.executable, "-m", "openclaw_failover", "--config", str(host.config_path), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return out.returncode, out.stdout + out.stderr


def test_ocf_cluster_lists_every_member(cluster: Cluster) -> None:
    cluster.round()
    cluster.round()
    code, out = _ocf(cluster.pi2, "cluster", "--json")
    assert code == 0, out
    info = json.loads(out)
    assert info["leader"]["holder"] == "mac" and info["leader"]["ttl_left"] <= TTL
    members = {m["name"]: m for m in info["members"]}
    assert list(members) == ["mac", "pi1", "pi2"]  # the primary first, then by priority
    assert members["mac"]["leader"] and members["mac"]["gateway"] is True
    assert members["mac"]["role"] == "primary"
    assert members["pi1"]["role"] == "replica" and members["pi1"]["gateway"] is False
    assert all(0 <= m["heartbeat_age"] < 10 for m in members.values())
    assert [e["ok"] for e in info["etcd"]] == [True, True, True]
    assert sum(e["raft_leader"] for e in info["etcd"]) == 1
    cluster.round(cluster.primary)  # refreshed: the TTL is short, a process starts slowly
    code, text = _ocf(cluster.pi2, "cluster")
    print("\n" + text)
    assert code == 0 and "leader: mac (" in text and "| mac " in text and "raft leader" in text
    cluster.cut_off(cluster.pi2)
    code, text = _ocf(cluster.pi2, "cluster")
    assert code == 1 and "etcd cannot be asked: no etcd endpoint reachable" in text
    assert "Traceback" not in text


def test_leader_ocf_sigkilled_its_guard_stops_the_gateway_a_standby_takes_over(
    cluster: Cluster,
) -> None:
    cluster.round()
    assert cluster.holder() == "mac" and guard.running(cluster.primary.dir / "state")
    cluster.primary.config()
    watch = subprocess.Popen(
        [sys.executable, "-m", "openclaw_failover", "--config", str(cluster.primary.config_path),
         "watch", "--interval", str(INTERVAL)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(3 * INTERVAL)  # ocf watch refreshes the key for a few rounds
        assert watch.poll() is None and cluster.holder() == "mac"
    finally:
        watch.kill()  # SIGKILL: ocf cannot clean up
        watch.wait(10)
    killed = time.monotonic()
    cluster.run_until(lambda: cluster.serving() == ["pi1"], TTL + 2 * INTERVAL + 3,
                      cluster.pi1, cluster.pi2)  # fmt: skip
    took = time.monotonic() - killed
    assert cluster.holder() == "pi1"
    stopped = cluster.primary.events("guard")
    assert len(stopped) == 1 and stopped[0]["ok"] and "expired" in stopped[0]["reason"]
    assert took <= TTL + INTERVAL + 2.5, f"took {took:.1f}s"
    print(f"\nleader's ocf SIGKILLed: pi1 serves {took:.1f}s later (TTL {TTL}s, interval 1s)")


def test_give_back_with_two_standbys_every_database_ends_equal(
    cluster: Cluster,
    memu_pair_factory: Callable[..., Any],
    pg_cluster_factory: Callable[..., Any],
) -> None:
    """mac's memu -> pi1 (the pair's standby) and -> pi2 (a second subscriber with
    origin = none). pi1 serves and writes; its give-back merges its rows into mac's
    memu; they must reach pi2 too (a merge is a local write on the primary: no origin),
    and every database ends equal, replication flowing."""
    from tests.harness.pg import MemuPair, write_memory

    pair = memu_pair_factory("18", "18")
    s2 = pg_cluster_factory("18", memu=True)
    second = MemuPair(pair.primary, s2, vector=pair.vector, subscription="memu_sub2")
    s2.execute("DELETE FROM alembic_version")
    s2.execute(
        f"CREATE SUBSCRIPTION memu_sub2 CONNECTION '{pair.primary.dsn()}' "
        "PUBLICATION memu_pub WITH (origin = none)"
    )
    second.wait_caught_up()
    for host, standby, sub in ((cluster.pi1, pair.standby, "memu_sub"),
                               (cluster.pi2, s2, "memu_sub2")):  # fmt: skip
        host.doc["database"] = {"primary_dsn": pair.primary.dsn(),
                                "standby_dsn": standby.dsn(), "subscription": sub}  # fmt: skip
    with pair.primary.connect() as p:
        write_memory(p, text="before the failure")
    pair.wait_caught_up()
    second.wait_caught_up()
    cluster.round()
    code, out = _ocf(cluster.pi2, "cluster", "--json")
    assert code == 0, out
    lag = {m["name"]: m["lag_bytes"] for m in json.loads(out)["members"]}
    assert lag["mac"] is None and lag["pi1"] >= 0 and lag["pi2"] >= 0, lag
    cluster.primary.service("stop")
    cluster.round(cluster.primary)
    cluster.round(cluster.pi1, cluster.pi2)
    assert cluster.serving() == ["pi1"] and cluster.pi2.role() == "primary"
    with pair.standby.connect() as s:  # what pi1's gateway wrote while serving
        written = [write_memory(s, text=f"on pi1 {i}", category="work") for i in range(3)]
    cluster.primary.service("start")  # mac is back (its gateway starts with it)
    cluster.round(cluster.pi1)  # give-back: stop, sync back, release the key
    assert cluster.pi1.role() == "primary" and cluster.holder() is None
    cluster.round(cluster.primary, cluster.pi2)
    assert cluster.holder() == "mac" and cluster.serving() == ["mac"]
    pair.wait_caught_up()
    second.wait_caught_up()
    with s2.connect() as c:
        for m in written:
            row = c.execute("SELECT 1 FROM memory_items WHERE id = %s", [m["memory_item_id"]])
            assert row.fetchone(), "a merged row did not reach the other subscriber"
    pair.assert_equal()
    second.assert_equal()
    with pair.primary.connect() as p:
        later = write_memory(p, text="after the give-back", category="later")
    pair.wait_caught_up()
    second.wait_caught_up()
    for db in (pair.standby, s2):
        with db.connect() as c:
            got = c.execute("SELECT 1 FROM memory_items WHERE id = %s", [later["memory_item_id"]])
            assert got.fetchone()
    assert pair.apply_error_count() == 0 and second.apply_error_count() == 0


def _netns_problem() -> str:
    import shutil

    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    for tool, package in (("ip", "iproute2"), ("curl", "curl")):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install {package})"
    return ""


@pytest.mark.skipif(bool(_netns_problem()), reason=_netns_problem() or "netns")
def test_real_partition_primary_and_its_etcd_member_cut_off(tmp_path: Path) -> None:
    """The primary's host (its ocf watch, its gateway, etcd member m0) in a network
    namespace; the veth goes down: m0 answers it without quorum, the standbys cannot
    reach it. It fences itself before its lease runs out on the majority side, pi1
    takes over; healed, pi1 gives back and the primary starts only holding the key."""
    from tests.harness.etcd import EtcdPartitionLab

    lab = EtcdPartitionLab(tmp_path)
    assert lab.etcd is not None
    c = Cluster(tmp_path / "hosts", lab.etcd, primary_ns=lab.ns)
    parted = [False]

    def probe(cfg: Config, mask: object) -> ProbeResult:
        if parted[0]:
            return ProbeResult(ProbeStatus.UNREACHABLE, 1.0, "no route to host")
        if c.primary.serves():
            return ProbeResult(ProbeStatus.HEALTHY, 0.0, "HTTP 200")
        return ProbeResult(ProbeStatus.GATEWAY_DOWN, 0.0, "connection refused")

    c.probe_primary = probe  # type: ignore[method-assign]
    c.primary.config()
    watch = subprocess.Popen(
        lab.in_ns([sys.executable, "-m", "openclaw_failover", "--config",
                   str(c.primary.config_path), "watch", "--interval", "1"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        c.run_until(lambda: c.holder() == "mac", 15, c.pi1, c.pi2)
        c.round(c.pi1, c.pi2)
        assert c.serving() == ["mac"]
        lab.partition(True)
        parted[0] = True
        t0 = time.monotonic()
        c.run_until(lambda: c.serving() == ["pi1"], NS_TTL + 8, c.pi1, c.pi2)
        took = time.monotonic() - t0
        fence = [e for e in c.primary.events("self") if e["action"] == "fence_self"]
        guard_stop = c.primary.events("guard")
        assert fence or guard_stop, "the primary's gateway stopped by neither ocf nor its guard"
        assert c.holder() == "pi1"
        by = "ocf" if fence else "its guard"
        print(f"\npartition: primary fenced by {by}; pi1 serves {took:.1f}s after the cut")
        lab.partition(False)
        parted[0] = False
        c.run_until(lambda: c.serving() == ["mac"] and c.holder() == "mac", 25, c.pi1, c.pi2)
        assert c.pi1.role() == "primary" and c.pi2.role() == "primary"
    finally:
        watch.kill()
        watch.wait(10)
        c.close()
        lab.close()


def test_serving_standby_loses_quorum_its_gateway_stops_at_lease_end(cluster: Cluster) -> None:
    """No role change without etcd, but a leader never serves past its lease: its guard
    stops the gateway when the lease would end, and its check does not restart it until
    it holds the key again (quorum back)."""
    cluster.round()
    cluster.primary.service("stop")
    cluster.round(cluster.primary)
    cluster.round(cluster.pi1, cluster.pi2)
    assert cluster.serving() == ["pi1"]
    cluster.etcd.kill("m0")
    cluster.etcd.kill("m1")
    try:
        cluster.run_until(lambda: cluster.serving() == [], TTL + 6, cluster.pi1, cluster.pi2)
        assert cluster.pi1.events("guard"), "the gateway was not stopped by pi1's guard"
        for _ in range(2):  # not restarted, no role change
            cluster.round(cluster.pi1, cluster.pi2)
        assert cluster.serving() == [] and cluster.pi1.role() == "failover"
        assert "stays stopped" in cluster.pi1.events("coordination")[-1]["reason"]
    finally:
        cluster.etcd.restart("m0")
        cluster.etcd.restart("m1")
        cluster.etcd.wait_healthy()
    cluster.run_until(lambda: cluster.serving() == ["pi1"], 15, cluster.pi1, cluster.pi2)
    assert cluster.holder() == "pi1"


def test_two_equal_standbys_race_as_processes_exactly_one_serves(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Two `ocf check` processes, the same priority, each probing the primary over real
    SSH. Their transactions go through a proxy that holds each back 1.5 s, so both read
    the key as free first: the create-if-absent transaction lets exactly one take over."""
    from tests.harness.etcd import TxnDelayProxy
    from tests.harness.sshd import SSHServer, openssh_available

    if not openssh_available():
        pytest.skip("OpenSSH sshd not installed (apt-get install openssh-server)")
    srv = SSHServer(tmp_path / "sshd").start()
    proxy = TxnDelayProxy(("127.0.0.1", cluster.etcd.client_ports[1]), delay=1.5)
    try:
        for h in (cluster.pi1, cluster.pi2):
            h.doc["primary"]["ssh"] = {"user": srv.user, "port": srv.port,
                                       "key_file": str(srv.client_key),
                                       "known_hosts": str(srv.known_hosts),
                                       "connect_timeout": 3}  # fmt: skip
            h.doc["primary"]["gateway"] = {
                "health_url": f"http://127.0.0.1:{cluster.primary.port}/"
            }
            h.doc["coordination"]["priority"] = 100
            h.doc["coordination"]["endpoints"] = [proxy.endpoint]
            h.doc["coordination"]["timeout"] = 3
            h.doc["coordination"]["ttl"] = 10  # one check each, no refresh: outlive the asserts
        cluster.round()
        cluster.primary.service("stop")
        cluster.round(cluster.primary)
        assert cluster.holder() is None
        for h in (cluster.pi1, cluster.pi2):
            h.config()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "openclaw_failover",
                    "--config",
                    str(h.config_path),
                    "check",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for h in (cluster.pi1, cluster.pi2)
        ]
        outs = [p.communicate(timeout=60)[0] for p in procs]
        cluster.assert_one_serves()
        serving = cluster.serving()
        assert len(serving) == 1, outs
        assert cluster.holder() == serving[0]
        loser = cluster.pi2 if serving == ["pi1"] else cluster.pi1
        assert loser.role() == "primary"
        lost = [e for e in loser.events("leader") if e.get("action") == "acquire"]
        assert lost and lost[-1]["ok"] is False, loser.events("leader")  # it raced, and lost
    finally:
        proxy.close()
        srv.close()


def _doctor(host: Host) -> list[Any]:
    from openclaw_failover.config.secrets import Masker
    from openclaw_failover.ops.doctor.coordination import check_coordination
    from openclaw_failover.ops.doctor.run import DoctorContext, Sink

    cfg = host.config()
    ctx = DoctorContext(cfg=cfg, env={}, config_path=host.config_path, send_test=False,
                        now=time.time(), mask=Masker(cfg.secrets), state=None,
                        state_warning=None)  # fmt: skip
    sink = Sink("coordination", ctx.mask)
    check_coordination(ctx, sink)
    return sink.close()


def test_doctor_coordination_group(cluster: Cluster) -> None:
    cluster.round()
    checks = {c.id: c for c in _doctor(cluster.pi1)}
    assert [checks[i].status for i in ("coordination.endpoint", "coordination.endpoint#2",
                                       "coordination.endpoint#3")] == ["ok"] * 3  # fmt: skip
    assert checks["coordination.quorum"].status == "ok"
    assert "held by mac" in checks["coordination.quorum"].detail
    cluster.primary.doc["check"]["interval"] = 2  # ttl 3 s for a 2 s timer: warned
    mac = {c.id: c for c in _doctor(cluster.primary)}
    assert mac["coordination.ttl"].status == "warn"
    cluster.cut_off(cluster.pi1)
    checks = {c.id: c for c in _doctor(cluster.pi1)}
    assert checks["coordination.quorum"].status == "FAIL"
    assert "no etcd quorum" in checks["coordination.quorum"].detail
    assert checks["coordination.endpoint"].status == "warn"


def test_manual_takeover_is_refused_while_the_primary_holds_the_key(cluster: Cluster) -> None:
    from openclaw_failover.engine.tick import ExitStatus

    cluster.pi1.doc["primary"]["gateway"] = {"stop_command": "true"}  # it could fence
    cluster.round()
    result = cluster.check(cluster.pi1, request="takeover")
    assert result.status is ExitStatus.ACTION_FAILED
    assert "mac holds the leader key" in result.reason
    assert cluster.serving() == ["mac"] and cluster.pi1.role() == "primary"


def test_two_node_without_etcd_the_plain_logic_takes_over(cluster: Cluster) -> None:
    cluster.round()
    cluster.pi1.doc["coordination"]["on_coordinator_loss"] = "two_node"
    cluster.cut_off(cluster.pi1)
    cluster.primary.service("stop")
    cluster.round(cluster.primary, cluster.pi1)
    assert cluster.serving() == ["pi1"]  # no etcd asked: the two-host logic decided
    assert any("two-host logic" in e["reason"] for e in cluster.pi1.events("coordination"))
    lost = [t for t in cluster.pi1.notices() if "cannot reach an etcd quorum" in t]
    assert len(lost) == 1 and "two-host logic" in lost[0] and "no role change" not in lost[0]

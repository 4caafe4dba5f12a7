"""The etcd client and the leader key against a real 3-member etcd cluster, and the
pure coordination policy (no etcd needed)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from openclaw_failover.core.leadership import Do, Facts, choose
from openclaw_failover.engine.coord.etcd import (
    EtcdClient,
    EtcdError,
    EtcdRefused,
    NoQuorum,
    Unreachable,
)
from openclaw_failover.engine.coord.leader import Leadership
from tests.harness.etcd import EtcdCluster, etcd_problem, free_ports

needs_etcd = pytest.mark.skipif(bool(etcd_problem()), reason=etcd_problem() or "etcd")


@pytest.fixture(scope="module")
def cluster() -> Iterator[EtcdCluster]:
    if etcd_problem():
        pytest.skip(etcd_problem())
    with EtcdCluster(3) as c:
        yield c


@pytest.fixture
def prefix() -> str:
    return f"/ocf-test/{uuid.uuid4().hex[:8]}"


def client(c: EtcdCluster, timeout: float = 1.0) -> EtcdClient:
    return EtcdClient(c.endpoints, timeout=timeout)


# ------------------------------------------------------------------ client


@needs_etcd
def test_kv_roundtrip_and_endpoint_failover(cluster: EtcdCluster, prefix: str) -> None:
    dead = free_ports(1)[0]  # nothing listens there: connection refused
    etcd = EtcdClient([f"http://127.0.0.1:{dead}", *cluster.endpoints], timeout=1.0)
    etcd.put(f"{prefix}/a", "ünï")
    kv = etcd.get(f"{prefix}/a")
    assert kv is not None and kv.value == "ünï" and kv.create_revision > 0
    assert etcd.get(f"{prefix}/missing") is None
    assert [k.key for k in etcd.get_prefix(prefix + "/")] == [f"{prefix}/a"]
    assert etcd._preferred == 1  # the next request starts with the member that answered


def test_unreachable_when_no_endpoint_listens() -> None:
    ports = free_ports(2)
    etcd = EtcdClient([f"http://127.0.0.1:{p}" for p in ports], timeout=0.5)
    with pytest.raises(Unreachable, match=r"no etcd endpoint reachable: .*refused"):
        etcd.get("/x")


# ------------------------------------------------------------------ leader key


@needs_etcd
def test_create_if_absent_race_exactly_one_wins(cluster: EtcdCluster, prefix: str) -> None:
    for round_ in range(5):
        key_prefix = f"{prefix}/{round_}"
        members = [Leadership(client(cluster), key_prefix, f"s{i}", ttl=5) for i in range(3)]
        barrier = threading.Barrier(len(members))
        results: dict[str, bool] = {}

        def go(m: Leadership, barrier: threading.Barrier, results: dict[str, bool]) -> None:
            barrier.wait()
            results[m.name] = m.acquire().won

        threads = [threading.Thread(target=go, args=(m, barrier, results)) for m in members]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        winners = [n for n, won in results.items() if won]
        assert len(results) == 3 and len(winners) == 1, results
        view = members[0].read()
        assert view.holder == winners[0] and view.ttl_left is not None and view.ttl_left > 0


@needs_etcd
def test_lease_expiry_frees_the_key_within_ttl(cluster: EtcdCluster, prefix: str) -> None:
    a = Leadership(client(cluster), prefix, "a", ttl=2)
    b = Leadership(client(cluster), prefix, "b", ttl=2)
    assert a.acquire().won
    for _ in range(3):  # refreshed, it outlives its TTL
        time.sleep(1.0)
        assert a.refresh().holder == "a"
    assert b.read().holder == "a"
    lost = b.acquire()
    assert not lost.won and lost.view.holder == "a"
    t0 = time.monotonic()
    while b.read(with_ttl=False).holder is not None:  # a stopped refreshing
        assert time.monotonic() - t0 < 2 + 1.5, "the key outlived its lease"
        time.sleep(0.1)
    assert b.acquire().won
    assert a.refresh().holder == "b"  # a's refresh does not take it back


@needs_etcd
def test_release_only_by_the_holder(cluster: EtcdCluster, prefix: str) -> None:
    a = Leadership(client(cluster), prefix, "a", ttl=10)
    b = Leadership(client(cluster), prefix, "b", ttl=10)
    got = a.acquire()
    assert got.won
    assert not b.release()
    assert b.read().holder == "a"
    assert a.release()
    assert b.read().holder is None
    assert a.client.lease_ttl(got.view.lease) == -1  # the lease is revoked too
    assert not a.release()  # nothing left to release
    assert b.acquire().won


@needs_etcd
def test_release_compares_the_lease(cluster: EtcdCluster, prefix: str) -> None:
    """A key holding our name but another lease (a second process under our name took it
    after ours expired) is not deleted by a release that read the old lease."""
    a = Leadership(client(cluster), prefix, "a", ttl=10)
    assert a.acquire().won
    old = a.read()
    a.client.lease_revoke(old.lease)
    assert a.acquire().won
    new = a.read()
    assert new.lease != old.lease
    compare = [{"key": _b64(a.key), "target": "LEASE", "result": "EQUAL", "lease": str(old.lease)}]
    won, _ = a.client.txn(compare, [{"request_delete_range": {"key": _b64(a.key)}}])
    assert not won and a.read().holder == "a"


def _b64(text: str) -> str:
    from openclaw_failover.engine.coord.etcd import b64

    return b64(text)


@needs_etcd
def test_quorum_loss_is_typed_and_nobody_gets_the_key(cluster: EtcdCluster, prefix: str) -> None:
    a = Leadership(client(cluster), prefix, "a", ttl=2)
    b = Leadership(client(cluster), prefix, "b", ttl=2)
    cluster.kill("m0")
    cluster.kill("m1")
    try:
        t0 = time.monotonic()
        with pytest.raises(NoQuorum, match="no etcd quorum"):
            a.read()
        assert time.monotonic() - t0 < 3 * 1.0 + 1.0  # one timeout per endpoint at most
        for m in (a, b):
            with pytest.raises(NoQuorum):
                m.acquire()
    finally:
        cluster.restart("m0")
        cluster.restart("m1")
        cluster.wait_healthy()
    time.sleep(2.5)  # a lease granted just before the loss would have expired by now
    assert a.read().holder is None


@needs_etcd
def test_auth_token_and_wrong_password(prefix: str) -> None:
    with EtcdCluster(1) as one:
        root = EtcdClient(one.endpoints, timeout=2.0)
        root.call("auth/user/add", {"name": "root", "password": "s3cret-root"})
        root.call("auth/user/grant", {"user": "root", "role": "root"})
        root.call("auth/enable", {})
        with pytest.raises(EtcdRefused, match=r"user name is empty|permission denied"):
            EtcdClient(one.endpoints, timeout=2.0).get("/x")
        ok = EtcdClient(one.endpoints, timeout=2.0, user="root", password="s3cret-root")
        ok.put(f"{prefix}/k", "v")
        kv = ok.get(f"{prefix}/k")
        assert kv is not None and kv.value == "v"
        bad = EtcdClient(
            one.endpoints, timeout=2.0, user="root", password="wrong-pass", mask=_masker()
        )
        with pytest.raises(EtcdRefused, match="authentication failed") as err:
            bad.get("/x")
        assert "wrong-pass" not in str(err.value)


@needs_etcd
def test_tls_with_client_certificate(tmp_path, prefix: str) -> None:  # type: ignore[no-untyped-def]
    from tests.harness.etcd import make_tls

    tls = make_tls(tmp_path / "tls")
    with EtcdCluster(1, tmp_path, tls=tls) as one:
        assert one.endpoints[0].startswith("https://127.0.0.1:")
        ok = EtcdClient(one.endpoints, timeout=2.0, ca_file=str(tls.ca),
                        cert_file=str(tls.client_cert), key_file=str(tls.client_key))  # fmt: skip
        assert Leadership(ok, prefix, "a", ttl=5).acquire().won
        with pytest.raises(EtcdRefused, match="TLS"):  # the CA is not trusted by default
            EtcdClient(one.endpoints, timeout=2.0).get("/x")
        no_cert = EtcdClient(one.endpoints, timeout=2.0, ca_file=str(tls.ca))
        with pytest.raises(EtcdError):  # etcd wants a client certificate
            no_cert.get("/x")


def _masker():  # type: ignore[no-untyped-def]
    from openclaw_failover.config.secrets import Masker

    return Masker(["wrong-pass"])


# ------------------------------------------------------------------ policy (pure)

BASE = {"name": "pi2", "now": 1000.0, "ttl": 10.0, "interval": 2.0}


def standby(**kw: object) -> Facts:
    return Facts(mode="standby", **{**BASE, **kw})  # type: ignore[arg-type]


def primary(**kw: object) -> Facts:
    return Facts(mode="primary", **{**BASE, "name": "mac", **kw})  # type: ignore[arg-type]


def test_policy_standby_takes_over_only_when_free_and_primary_down() -> None:
    assert choose(standby(wants_takeover=True, primary_failed=True)).do is Do.ACQUIRE
    held = choose(standby(wants_takeover=True, primary_failed=True, holder="mac", ttl_left=4))
    assert held.do is Do.VETO and "mac holds the leader key (4s left" in held.reason
    healthy = choose(standby(wants_takeover=True, primary_failed=False))
    assert healthy.do is Do.VETO
    waits = choose(standby(wants_takeover=True, primary_failed=True, primary_waiting=True))
    assert waits.do is Do.VETO and "takes the key back" in waits.reason
    assert choose(standby()).do is Do.PROCEED


def test_policy_lower_priority_waits_its_delay() -> None:
    first = choose(
        standby(wants_takeover=True, primary_failed=True, higher_priority_alive="pi1", delay=5)
    )
    assert first.do is Do.VETO and first.free_since == 1000.0 and "pi1" in first.reason
    later = standby(
        wants_takeover=True,
        primary_failed=True,
        higher_priority_alive="pi1",
        delay=5,
        free_since=1000.0,
        now=1005.0,
    )
    assert choose(later).do is Do.ACQUIRE


def test_policy_no_quorum_holds_or_two_node() -> None:
    v = choose(standby(etcd_error="no etcd quorum", wants_takeover=True, primary_failed=True))
    assert v.do is Do.HOLD and v.reason.startswith("no role change")
    assert choose(standby(etcd_error="x", on_loss="two_node")).do is Do.TWO_NODE
    serving = {"etcd_error": "no etcd quorum", "serving": True}
    assert choose(standby(**serving, last_refresh=995.0)).do is Do.HOLD  # lease still on
    down = choose(standby(**serving, last_refresh=990.0))  # it ran out: no restart
    assert down.do is Do.HOLD_DOWN and "stays stopped" in down.reason


def test_policy_serving_standby() -> None:
    assert choose(standby(serving=True, holder="pi2")).do is Do.REFRESH
    waiting = standby(serving=True, holder="pi2", primary_waiting=True)
    assert choose(waiting).do is Do.GIVE_BACK
    manual = standby(serving=True, holder="pi2", primary_waiting=True, auto_failback=False)
    assert choose(manual).do is Do.REFRESH
    assert choose(standby(serving=True, holder=None)).do is Do.ACQUIRE
    assert choose(standby(serving=True, holder="pi1")).do is Do.STEP_DOWN
    assert choose(standby(gave_back=True, holder="pi2")).do is Do.RELEASE
    assert choose(standby(gave_back=True, holder="mac")).do is Do.PROCEED


def test_policy_primary_fences_itself_before_the_lease_runs_out() -> None:
    assert choose(primary(serving=True, holder="mac")).do is Do.REFRESH
    assert choose(primary(serving=True, holder=None)).do is Do.ACQUIRE
    assert choose(primary(serving=True, holder="pi2")).do is Do.PROCEED
    assert choose(primary(serving=False, holder="mac")).do is Do.RELEASE
    lost = {"serving": True, "etcd_error": "no etcd endpoint reachable"}
    assert choose(primary(**lost, last_refresh=995.0)).do is Do.HOLD  # 5s left, next in 2
    # the next check (now + interval) would come after last_refresh + ttl: fence now
    assert choose(primary(**lost, last_refresh=991.0)).do is Do.FENCE_SELF
    assert choose(primary(**lost, last_refresh=900.0, on_loss="two_node")).do is Do.HOLD
    fenced = {"serving": False, "self_fenced": True}
    assert choose(primary(**fenced, holder="pi2")).do is Do.PROCEED  # waits: never two
    assert choose(primary(**fenced, holder=None)).do is Do.ACQUIRE  # then starts
    assert choose(primary(**fenced, holder="mac")).do is Do.START_SELF
    assert choose(primary(serving=False, self_fenced=True, etcd_error="x")).do is Do.HOLD


# ------------------------------------------------------------------ config


def _doc(tmp_path, **coordination):  # type: ignore[no-untyped-def]
    key = tmp_path / "key"
    key.write_text("")
    return {
        "primary": {"host": "h", "ssh": {"user": "u", "key_file": str(key),
                                         "known_hosts": str(key)}},
        "standby": {"gateway": {"start_command": "true", "stop_command": "true"}},
        "check": {"interval": 30},
        "coordination": coordination,
    }  # fmt: skip


def test_config_coordination_defaults_and_secrets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from openclaw_failover.config.loader import parse_config

    cfg = parse_config(
        _doc(tmp_path, endpoints=["http://127.0.0.1:2379"], name="pi", user="ocf",
             password="${ETCD_PASSWORD}"),
        "c.yaml",
        {"ETCD_PASSWORD": "etcd-pass-1"},
    )  # fmt: skip
    cc = cfg.coordination
    assert cc is not None and cc.mode == "standby" and cc.ttl == 30
    assert (cc.on_coordinator_loss, cc.priority, cc.interval) == ("hold", 100, 30.0)
    assert "etcd-pass-1" in cfg.secrets
    plain = parse_config({k: v for k, v in _doc(tmp_path).items() if k != "coordination"}, "c", {})
    assert plain.coordination is None


def test_config_coordination_every_error_at_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from openclaw_failover.config.loader import ConfigError, parse_config

    doc = _doc(tmp_path, endpoints=["ftp://x", "http://h:2379"], ttl=1, mode="leader",
               on_coordinator_loss="panic", cert_file=str(tmp_path / "key"),
               password="etcd-pass-2")  # fmt: skip
    with pytest.raises(ConfigError) as err:
        parse_config(doc, "c.yaml", {})
    text = str(err.value)
    for expected in (
        "At 'coordination.name': required key is missing",
        "At 'coordination.mode': expected one of standby, primary",
        "At 'coordination.on_coordinator_loss': expected one of hold, two_node",
        "At 'coordination.endpoints[0]': expected http(s)://host:port",
        "At 'coordination.ttl': must be at least 2, got 1",
        "At 'coordination.key_file': required when coordination.cert_file is set",
        "At 'coordination.user': required when coordination.password is set",
    ):
        assert expected in text, text
    assert "etcd-pass-2" not in text


# ------------------------------------------------------------------ leader guard


class _Lease:
    """A lease as the guard sees it: answers, then etcd cannot be asked."""

    def __init__(self, answers: list[int | Exception]) -> None:
        self.answers = answers

    def lease_ttl(self, lease: int) -> int:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_guard_waits_for_the_lease_to_run_out_even_when_etcd_is_gone() -> None:
    from openclaw_failover.engine.coord.guard import watch_lease

    clock = [0.0]

    def sleep(s: float) -> None:
        clock[0] += s

    lease = _Lease([5, 4, NoQuorum("no etcd quorum")])
    why = watch_lease(lease, 1, poll=0.5, clock=lambda: clock[0], sleep=sleep)  # type: ignore[arg-type]
    assert "until the lease ran out" in why
    assert clock[0] == pytest.approx(0.5 + 4, abs=0.51)  # the last answer said 4 s left
    clock[0] = 0.0
    assert "expired" in watch_lease(
        _Lease([3, 2, -1]),  # type: ignore[arg-type]
        1, poll=0.5, clock=lambda: clock[0], sleep=sleep,
    )  # fmt: skip
    assert clock[0] == 1.0

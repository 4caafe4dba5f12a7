"""Network faults, for real: the primary's sshd and gateway in a network namespace.

The standby is this test process's namespace; faults are made with ``ip`` (and tc
netem where the kernel has it; see tests/harness/netns.py).  Every scenario runs
the real ``ocf check`` CLI, tick by tick, and asserts after each tick: the role,
that at most one gateway answers whenever the primary was reachable, the exact
takeover / give-back counts, and that each notice went out exactly once.
Needs root and iproute2 (CI has both); skips with the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from openclaw_failover.local import httpcheck
from tests.harness.fake_telegram import DEFAULT_TOKEN, FakeTelegram
from tests.harness.fixtures import deep_merge
from tests.harness.netns import SERVICE, Lab, lab_problem
from tests.harness.sshd import free_port

pytestmark = pytest.mark.integration

_PROBLEM = lab_problem()
if _PROBLEM:
    pytest.skip(f"network fault suite: {_PROBLEM}", allow_module_level=True)


class Standby:
    """ocf on the standby: its config, its gateway, its state, the Telegram it talks to."""

    def __init__(self, tmp: Path, lab: Lab, telegram: FakeTelegram) -> None:
        self.tmp, self.lab, self.telegram = tmp, lab, telegram
        self.port = free_port()
        self.dir = tmp / "standby-svc"
        self.state_dir = tmp / "state"
        self.config_path = tmp / "config.yaml"
        assert lab.sshd is not None
        ssh = lab.sshd
        self.doc: dict[str, Any] = {
            "primary": {
                "name": "Mac",
                "host": lab.ssh_host,
                "ssh": {
                    "user": ssh.user,
                    "port": lab.ssh_port,
                    "key_file": str(ssh.client_key),
                    "known_hosts": str(ssh.known_hosts),
                    "connect_timeout": 1.5,
                },
                "gateway": {
                    "health_url": "http://127.0.0.1:18789/",
                    "stop_command": lab.gateway_cmd("stop"),
                    "start_command": lab.gateway_cmd("start"),
                },
            },
            "standby": {
                "name": "Pi",
                "gateway": {
                    "health_url": f"http://127.0.0.1:{self.port}/",
                    "start_command": self._svc("start"),
                    "stop_command": self._svc("stop"),
                    "start_timeout": 10,
                    "stop_timeout": 10,
                },
            },
            "check": {
                "retries": 1,
                "retry_delay": 0.3,
                "probe_timeout": 1.5,
                "deadline": 60,
                "fall": 1,
                "rise": 1,
            },
            "telegram": {
                "token": "${OCF_TELEGRAM_TOKEN}",
                "chat_id": 4242,
                "base_url": telegram.base_url,
                "timeout": 2,
            },
            "state_dir": str(self.state_dir),
        }
        self.configure()

    def _svc(self, verb: str) -> list[str]:
        cmd = [*SERVICE, verb, "--state-dir", str(self.dir)]
        return [*cmd, "--port", str(self.port)] if verb == "start" else cmd

    def configure(self, **sections: Any) -> None:
        self.doc = deep_merge(self.doc, sections)
        self.doc["primary"]["host"] = self.lab.ssh_host
        self.doc["primary"]["ssh"]["port"] = self.lab.ssh_port
        self.config_path.write_text(yaml.safe_dump(self.doc))

    def ocf(self, *args: str, wait: bool = True) -> Any:
        env = {**os.environ, "OCF_TELEGRAM_TOKEN": DEFAULT_TOKEN}
        env.pop("INVOCATION_ID", None)
        env.pop("JOURNAL_STREAM", None)
        cmd = [sys.executable, "-m", "openclaw_failover", "--config", str(self.config_path)]
        if not wait:
            return subprocess.Popen(
                [*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
        return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=90)

    def tick(self, *, reachable: bool) -> dict[str, Any]:
        """One `ocf check`; then the invariant: never two gateways after a check that
        reached the primary."""
        r = self.ocf("check")
        assert r.returncode in (0, 1), r.stderr
        st = self.state()
        if reachable:
            both = self.local_answers() and self.lab.primary_answers()
            assert not both, f"two gateways answer after: {st['last_reason']}"
        return st

    def local_answers(self) -> bool:
        return httpcheck.answers(f"http://127.0.0.1:{self.port}/", 1.0)

    def state(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "state.json").read_text())

    def events(self, kind: str) -> list[dict[str, Any]]:
        path = self.state_dir / "events.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [e for e in map(json.loads, lines) if e["type"] == kind]

    def notices(self) -> Counter[str]:
        """Notices Telegram accepted, by kind (from the events log)."""
        return Counter(e["kind"] for e in self.events("notice_sent"))

    def counts(self) -> tuple[int, int]:
        st = self.state()
        return st["takeovers"], st["givebacks"]

    def close(self) -> None:
        subprocess.run(self._svc("stop"), timeout=30, check=False, capture_output=True)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(tmp_path / "lab") as lab:
        yield lab


@pytest.fixture
def standby(tmp_path: Path, lab: Lab) -> Iterator[Standby]:
    telegram = FakeTelegram()
    telegram.start()
    sb = Standby(tmp_path, lab, telegram)
    try:
        yield sb
    finally:
        sb.close()
        telegram.stop()


def _sent_exactly_once(sb: Standby, *kinds: str) -> None:
    assert sb.notices() == Counter(kinds), sb.notices()
    assert sb.state()["outbox"] == []


# --------------------------------------------------------------------------- scenarios


def test_black_hole_takes_over_and_the_healed_partition_leaves_one_gateway(
    standby: Standby, lab: Lab
) -> None:
    """All packets dropped: unreachable (never answered), takeover after `fall`; when the
    partition heals the primary's gateway (never fenced: it could not be reached) and
    ours both serve: detected and resolved in the same check (rise 1: give back)."""
    assert standby.tick(reachable=True)["role"] == "primary"
    lab.black_hole(True)
    st = standby.tick(reachable=False)
    assert st["role"] == "failover" and st["last_probe"]["status"] == "unreachable"
    assert "timed out" in st["last_probe"]["detail"]
    assert standby.local_answers() and lab.primary_answers()  # the partition: two bots
    lab.black_hole(False)
    st = standby.tick(reachable=True)
    assert st["role"] == "primary" and not standby.local_answers() and lab.primary_answers()
    assert standby.counts() == (1, 1)
    _sent_exactly_once(standby, "took_over", "gave_back")


def test_link_down_with_fall_2_and_a_witness_that_answers(standby: Standby, lab: Lab) -> None:
    """The primary's link goes down; the witness (the "router") still answers, so this
    standby is not the one cut off: it takes over after `fall` checks."""
    standby.configure(check={"fall": 2, "witnesses": [lab.witness]})
    lab.primary_link(False)
    st = standby.tick(reachable=False)
    assert st["role"] == "primary" and st["failed_ticks"] == 1
    st = standby.tick(reachable=False)
    assert st["role"] == "failover" and st["last_witnesses"]["answered"] == [lab.witness]
    lab.primary_link(True)
    st = standby.tick(reachable=True)
    assert st["role"] == "primary"
    assert standby.counts() == (1, 1)
    _sent_exactly_once(standby, "took_over", "gave_back")


def test_standby_uplink_down_with_a_witness_never_takes_over(standby: Standby, lab: Lab) -> None:
    """The standby's own uplink is down: primary and witness both vanish.  No takeover;
    one "isolated" notice, sent once the uplink is back.  (Telegram sits behind the same
    uplink; the fake Bot API on 127.0.0.1 is switched off for that time.)"""
    standby.configure(check={"fall": 2, "witnesses": [lab.witness]})
    standby.tick(reachable=True)
    lab.standby_uplink(False)
    standby.telegram.down()
    try:
        for _ in range(2):
            st = standby.tick(reachable=False)
            assert st["role"] == "primary", st["last_reason"]
        assert "this standby is isolated: 0/1 witnesses answer" in st["last_reason"]
        assert [n["kind"] for n in st["outbox"]] == ["isolated"]
        assert not standby.local_answers()
    finally:
        lab.standby_uplink(True)
        standby.telegram.up()
    st = standby.tick(reachable=True)
    assert st["role"] == "primary" and st["isolated_since"] is None
    standby.tick(reachable=True)
    assert standby.counts() == (0, 0)
    _sent_exactly_once(standby, "isolated")
    assert "did NOT take over" in standby.telegram.texts[0]


def test_loss_and_delay_with_fall_2_never_takes_over(standby: Standby, lab: Lab) -> None:
    """30% loss + 300 ms delay on the primary's replies, fall 2: slow, never dead."""
    how = lab.lossy(loss=0.3, delay=0.3)
    standby.configure(
        primary={"ssh": {"connect_timeout": 2}}, check={"fall": 2, "probe_timeout": 2}
    )
    classes: Counter[str] = Counter()
    for _ in range(5):
        st = standby.tick(reachable=True)
        classes[st["last_probe"]["status"]] += 1
        assert st["role"] == "primary", (how, st["last_reason"])
    assert standby.counts() == (0, 0)
    _sent_exactly_once(standby)
    assert not standby.local_answers()
    print(f"loss+delay via {how}: {dict(classes)}")


def test_partition_healed_during_the_retry_delay_is_no_takeover(standby: Standby, lab: Lab) -> None:
    standby.configure(check={"retries": 1, "retry_delay": 3})
    lab.black_hole(True)
    proc = standby.ocf("check", wait=False)
    try:
        log = standby.state_dir / "ocf.log"
        end = time.monotonic() + 30
        while "retrying in" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < end and proc.poll() is None, "the first probe never failed"
            time.sleep(0.05)
        lab.black_hole(False)  # healed while ocf waits retry_delay before probing again
        _out, err = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert proc.returncode == 0, err
    st = standby.state()
    assert st["role"] == "primary" and st["last_probe"]["status"] == "healthy"
    assert [e["status"] for e in standby.events("probe")] == ["healthy"]
    assert "probe 1 failed (unreachable: " in log.read_text()  # the first probe really failed
    assert standby.counts() == (0, 0) and not standby.local_answers()
    _sent_exactly_once(standby)


def test_flapping_every_check_with_rise_2_takes_over_once_without_ping_pong(
    standby: Standby, lab: Lab
) -> None:
    """The link flaps every check.  One takeover; while the partition comes and goes,
    the primary's gateway (back by itself) is stopped rather than running beside ours;
    after two healthy checks one give-back restarts it, ours stopped first."""
    standby.configure(check={"rise": 2})
    for i in range(4):
        down = i % 2 == 0
        lab.black_hole(down)
        st = standby.tick(reachable=not down)
        assert st["role"] == "failover", (i, st["last_reason"])
        assert standby.local_answers()
    assert "(1/2 checks)" in st["last_reason"]  # the last flap was up: one healthy check
    lab.black_hole(False)
    st = standby.tick(reachable=True)
    assert st["role"] == "primary", st["last_reason"]
    assert lab.primary_answers() and not standby.local_answers()
    assert standby.counts() == (1, 1)
    _sent_exactly_once(standby, "took_over", "both_serving", "gave_back")


def test_two_gateways_after_a_healed_partition_with_rise_2(standby: Standby, lab: Lab) -> None:
    """Both up after the partition: the primary's is stopped at once (not left running
    for `rise` checks), then handed back in order with handoff_delay."""
    standby.configure(check={"rise": 2, "handoff_delay": 0.5})
    lab.black_hole(True)
    assert standby.tick(reachable=False)["role"] == "failover"
    lab.black_hole(False)
    st = standby.tick(reachable=True)
    assert st["role"] == "failover" and st["fenced"] is True
    assert standby.local_answers() and not lab.primary_answers()
    st = standby.tick(reachable=True)
    assert st["role"] == "primary" and lab.primary_answers() and not standby.local_answers()
    steps = standby.events("action")[-1]["steps"]
    assert any("handoff delay: 0.5s" in s for s in steps), steps
    assert standby.counts() == (1, 1)
    _sent_exactly_once(standby, "took_over", "both_serving", "gave_back")


# --------------------------------------------------------------------------- ocf watch


def _wait(predicate: Any, what: str, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - start


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert proc.returncode == 0, err
    return out


def test_watch_takes_over_within_10s_of_a_power_loss_and_gives_back(
    standby: Standby, lab: Lab
) -> None:
    """Defaults (fall 1, retries 1, rise 1), one SSH connection kept open; the primary's
    link goes dark as in a power cut.  The dead transport is noticed by its keepalives,
    the reconnect fails, the standby serves within 10 s."""
    proc = standby.ocf("watch", wait=False)
    try:
        _wait(lambda: (standby.state_dir / "state.json").exists(), "the first round", 20)
        assert standby.state()["last_probe"]["status"] == "healthy"
        time.sleep(2.5)  # a few rounds over the same connection
        lab.primary_link(False)
        took = _wait(lambda: standby.state()["role"] == "failover", "the takeover", 30)
        assert standby.local_answers()
        assert took < 10, f"took over {took:.1f}s after the power loss"
        st = standby.state()
        assert st["role"] == "failover" and st["last_probe"]["status"] == "unreachable"
        assert "the open SSH connection" in st["last_probe"]["detail"]
        lab.primary_link(True)
        _wait(lambda: standby.state()["role"] == "primary", "the give-back", 40)
        assert lab.primary_answers() and not standby.local_answers()
    finally:
        lab.primary_link(True)
        out = _stop(proc)
    print(f"watch: took over {took:.1f}s after the power loss")
    assert "took over" in out and "gave back" in out
    assert standby.counts() == (1, 1)
    _sent_exactly_once(standby, "took_over", "gave_back")
    changes = standby.events("probe")
    assert [e["status"] for e in changes] == ["healthy", "unreachable", "healthy"], changes


def test_watch_under_loss_and_delay_never_takes_over(standby: Standby, lab: Lab) -> None:
    how = lab.lossy(loss=0.3, delay=0.3)
    standby.configure(
        primary={"ssh": {"connect_timeout": 2}}, check={"fall": 2, "probe_timeout": 2}
    )
    proc = standby.ocf("watch", wait=False)
    try:
        _wait(lambda: (standby.state_dir / "state.json").exists(), "the first round", 30)
        end = time.monotonic() + 25
        while time.monotonic() < end:
            assert not standby.local_answers(), (how, standby.state()["last_reason"])
            time.sleep(0.5)
    finally:
        _stop(proc)
    st = standby.state()
    assert st["role"] == "primary" and standby.counts() == (0, 0), st["last_reason"]
    classes = Counter(e["status"] for e in standby.events("probe"))
    print(f"watch under loss+delay via {how}: probe class changes {dict(classes)}")
    _sent_exactly_once(standby)


def test_watch_with_the_standby_uplink_down_never_takes_over(standby: Standby, lab: Lab) -> None:
    """`ocf watch`, the standby's own uplink down, a witness configured: the open
    connection dies, the reconnect fails, the witness is silent too: no takeover, one
    "isolated" notice, sent when the uplink is back."""
    standby.configure(check={"witnesses": [lab.witness]})
    proc = standby.ocf("watch", wait=False)
    try:
        _wait(lambda: (standby.state_dir / "state.json").exists(), "the first round", 20)
        lab.standby_uplink(False)
        standby.telegram.down()
        _wait(lambda: standby.state()["isolated_since"] is not None, "isolation", 30)
        time.sleep(4)  # more rounds while cut off
        assert not standby.local_answers() and standby.state()["role"] == "primary"
        lab.standby_uplink(True)
        standby.telegram.up()
        _wait(lambda: standby.notices()["isolated"] == 1, "the isolated notice", 30)
        _wait(lambda: standby.state()["last_probe"]["status"] == "healthy", "healthy", 30)
    finally:
        lab.standby_uplink(True)
        standby.telegram.up()
        _stop(proc)
    assert standby.counts() == (0, 0) and not standby.local_answers()
    _sent_exactly_once(standby, "isolated")

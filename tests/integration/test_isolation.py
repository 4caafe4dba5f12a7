"""Issue 10: witnesses (isolation awareness), slow probe classes, two serving gateways."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from openclaw_failover.config.loader import Config, ConfigError, parse_config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.decide import (
    GiveBack,
    Notify,
    TakeOver,
    decide,
    should_ask_witnesses,
)
from openclaw_failover.core.model import Observation, ProbeResult, ProbeStatus, WitnessReport
from openclaw_failover.core.results import FenceResult
from openclaw_failover.core.settle import settle
from openclaw_failover.core.state import Role, State
from openclaw_failover.primary.witness import ask_witness, check_witnesses
from tests.unit.test_decide import NOW, failover, kinds, make_cfg

S = ProbeStatus


def witnessed(quorum: int = 1) -> Config:
    cfg = make_cfg()
    check = replace(
        cfg.check, witnesses=("192.0.2.1:80", "api.telegram.org:443"), witness_quorum=quorum
    )
    return replace(cfg, check=check)


def seen(status: ProbeStatus, answered: int, local_up: bool | None = False) -> Observation:
    names = ("192.0.2.1:80", "api.telegram.org:443")
    report = WitnessReport(names[:answered], tuple((n, "timed out") for n in names[answered:]))
    return Observation((ProbeResult(status, 0.1, f"detail {status}"),), local_up, report)


# --------------------------------------------------------------------------- decide: witnesses


def test_isolated_standby_never_takes_over_and_notices_once() -> None:
    cfg = witnessed()
    d = decide(State(), seen(S.UNREACHABLE, 0), cfg, NOW)
    assert d.state.role is Role.PRIMARY
    assert "this standby is isolated: 0/2 witnesses answer" in d.reason
    assert kinds(d.actions) == ["Notify:isolated"]
    note = d.actions[0]
    assert isinstance(note, Notify) and "0/2 witnesses answer" in note.reason
    assert "192.0.2.1:80: timed out" in note.detail
    d = decide(d.state, seen(S.UNREACHABLE, 0), cfg, NOW + 30)
    assert d.actions == [] and d.state.isolated_since == NOW
    # back online, primary still gone: now it takes over, and forgets the isolation
    d = decide(d.state, seen(S.UNREACHABLE, 1), cfg, NOW + 60)
    assert kinds(d.actions) == ["TakeOver"] and d.state.isolated_since is None
    assert d.state.last_witnesses is not None and d.state.last_witnesses["answered"]


def test_quorum_two_needs_both() -> None:
    cfg = witnessed(quorum=2)
    assert kinds(decide(State(), seen(S.REFUSED, 1), cfg, NOW).actions) == ["Notify:isolated"]
    assert kinds(decide(State(), seen(S.REFUSED, 2), cfg, NOW).actions) == ["TakeOver"]


def test_witnesses_not_asked_means_no_takeover() -> None:
    cfg = witnessed()
    d = decide(State(), Observation((ProbeResult(S.UNREACHABLE, 0.1),), False), cfg, NOW)
    assert d.state.role is Role.PRIMARY and "witnesses were not asked" in d.reason


def test_witnesses_asked_only_when_a_takeover_could_follow() -> None:
    cfg = witnessed()
    bad, good = ProbeResult(S.UNREACHABLE, 1), ProbeResult(S.HEALTHY, 1)
    assert should_ask_witnesses(State(), bad, cfg)
    assert not should_ask_witnesses(State(), good, cfg)
    assert not should_ask_witnesses(State(role=Role.FAILOVER), bad, cfg)
    assert not should_ask_witnesses(State(), bad, make_cfg())  # none configured


def test_healthy_primary_clears_isolation() -> None:
    d = decide(State(isolated_since=NOW), seen(S.HEALTHY, 0), witnessed(), NOW)
    assert d.state.isolated_since is None


# --------------------------------------------------------------------------- decide: slow


def obs1(status: ProbeStatus, local_up: bool | None = False) -> Observation:
    return Observation((ProbeResult(status, 0.1, f"detail {status}"),), local_up)


@pytest.mark.parametrize("slow", [S.SLOW, S.GATEWAY_SLOW])
def test_slow_never_counts_towards_fall(slow: ProbeStatus) -> None:
    cfg = make_cfg(fall=1, fence=True)
    cfg = replace(cfg, check=replace(cfg.check, slow_fall=3))
    s = State()
    for i in (1, 2):
        d = decide(s, obs1(slow), cfg, NOW + i)
        assert d.actions == [] and f"{i}/3 slow checks, not counted towards fall" in d.reason
        s = d.state
    d = decide(s, obs1(slow), cfg, NOW + 3)
    assert kinds(d.actions) == ["TakeOver"]
    take = d.actions[0]
    assert isinstance(take, TakeOver) and not take.fence  # never fenced on a timeout


def test_slow_resets_the_fall_count_and_unreachable_extends_slow() -> None:
    cfg = make_cfg(fall=2)
    cfg = replace(cfg, check=replace(cfg.check, slow_fall=4))
    s = decide(State(), obs1(S.UNREACHABLE), cfg, NOW).state
    assert s.failed_ticks == 1
    s = decide(s, obs1(S.SLOW), cfg, NOW + 1).state
    assert (s.failed_ticks, s.slow_ticks) == (0, 1)
    s = decide(s, obs1(S.UNREACHABLE), cfg, NOW + 2).state
    assert (s.failed_ticks, s.slow_ticks, s.role) == (1, 2, Role.PRIMARY)
    s = decide(s, obs1(S.HEALTHY), cfg, NOW + 3).state
    assert (s.failed_ticks, s.slow_ticks) == (0, 0)


def test_a_slow_streak_takeover_names_the_streak_not_the_last_class() -> None:
    """The takeover after a slow streak ended by a refusal is not "gateway_down for 3
    checks" (one refusal, below fall): it names the streak and the last class."""
    cfg = make_cfg(fall=3)
    cfg = replace(cfg, check=replace(cfg.check, slow_fall=3))
    s = decide(State(), obs1(S.GATEWAY_SLOW), cfg, NOW).state
    s = decide(s, obs1(S.SLOW), cfg, NOW + 1).state
    d = decide(s, obs1(S.GATEWAY_DOWN), cfg, NOW + 2)
    assert kinds(d.actions) == ["TakeOver"]
    take = d.actions[0]
    assert isinstance(take, TakeOver)
    assert take.why == (
        "primary slow: no healthy answer for 3 checks (last gateway_down: detail gateway_down)"
    )
    assert "gateway_down for" not in d.reason
    d = decide(s, obs1(S.UNREACHABLE), cfg, NOW + 2)
    assert "no healthy answer for 3 checks (last unreachable" in d.reason
    waiting = decide(decide(State(), obs1(S.SLOW), cfg, NOW).state, obs1(S.REFUSED), cfg, NOW)
    assert waiting.actions == []
    assert "primary refused (1/3 failed checks; 2/3 since a slow one)" in waiting.reason


def test_fence_only_on_a_clear_refusal() -> None:
    cfg = make_cfg(fence=True)
    d = decide(State(), obs1(S.GATEWAY_DOWN), cfg, NOW)
    assert d.actions == [TakeOver(fence=True, why=d.actions[0].why)]  # type: ignore[union-attr]
    d = decide(State(role=Role.TAKING_OVER), obs1(S.GATEWAY_SLOW), cfg, NOW)
    assert isinstance(d.actions[0], TakeOver) and not d.actions[0].fence


# --------------------------------------------------------------------------- decide: two serving


def test_two_serving_gateways_fence_the_primary_while_rise_counts() -> None:
    """Never two bots after a check that reached the primary, and no ping-pong either:
    the primary's gateway (back by itself after a partition) is stopped while ours serves
    out ``rise``; then the give-back restarts it after ours stopped."""
    cfg = make_cfg(rise=2, fence=True)
    d = decide(failover(), obs1(S.HEALTHY, local_up=True), cfg, NOW)
    assert kinds(d.actions) == ["Notify:both_serving", "Fence"]
    assert d.state.role is Role.FAILOVER and "(1/2 checks)" in d.reason
    s = settle(d.state, d.actions[1], FenceResult(True), cfg, NOW)[0]
    assert s.fenced
    d = decide(s, obs1(S.GATEWAY_DOWN, local_up=True), cfg, NOW + 1)
    assert d.actions == [GiveBack(unfence=True, why="primary reachable for 2 checks")]
    # back again by itself soon after: fenced again, but notified only once
    d2 = decide(failover(last_alert_at=s.last_alert_at), obs1(S.HEALTHY, True), cfg, NOW + 9)
    assert kinds(d2.actions) == ["Fence"]


def test_two_serving_without_stop_command_gives_back_at_once() -> None:
    d = decide(failover(), obs1(S.HEALTHY, local_up=True), make_cfg(rise=3), NOW)
    assert kinds(d.actions) == ["Notify:both_serving", "GiveBack"]
    assert d.state.role is Role.GIVING_BACK
    d = decide(failover(), obs1(S.HEALTHY, local_up=True), make_cfg(rise=1), NOW)
    assert kinds(d.actions) == ["GiveBack"]  # as configured: the gave_back notice says it


def test_two_serving_with_manual_failback() -> None:
    cfg = make_cfg(failback="manual", fence=True)
    d = decide(failover(), obs1(S.HEALTHY, local_up=True), cfg, NOW)
    assert kinds(d.actions) == ["Notify:both_serving", "Fence"]
    assert "'ocf release'" in d.reason
    cfg = make_cfg(failback="manual")
    d = decide(failover(), obs1(S.HEALTHY, local_up=True), cfg, NOW)
    assert kinds(d.actions) == ["Notify:both_serving", "GiveBack"]
    give = d.actions[1]
    assert isinstance(give, GiveBack) and not give.unfence
    # the manual policy alone (primary back, ours not answering) still waits for release
    d = decide(failover(), obs1(S.HEALTHY, local_up=None), cfg, NOW)
    assert kinds(d.actions) == ["Notify:primary_back"]


# --------------------------------------------------------------------------- config


def _doc(**check: object) -> dict[str, object]:
    return {
        "primary": {
            "host": "h",
            "ssh": {"user": "u", "key_file": __file__, "known_hosts": __file__},
        },
        "check": check,
    }


def test_config_witness_quorum_defaults_to_one_and_is_validated() -> None:
    cfg = parse_config(_doc(witnesses=["10.0.0.1:80", "https://x.example/"]), "t", {})
    assert cfg.check.witness_quorum == 1
    assert parse_config(_doc(), "t", {}).check.witness_quorum == 0
    for bad, words in [
        ({"witnesses": ["router"]}, "expected host:port"),
        ({"witnesses": ["h:99999"]}, "port 1-65535"),
        ({"witnesses": ["ftp://h/"]}, "http(s) URL"),
        ({"witnesses": ["h:1"], "witness_quorum": 2}, "more than the 1 witnesses"),
        ({"witness_quorum": 1}, "check.witnesses is empty"),
        ({"slow_fall": 1}, "at least 2"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_config(_doc(**bad), "t", {})
        assert words in str(err.value), (bad, str(err.value))


# --------------------------------------------------------------------------- witness.py, real sockets


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def http_port() -> Iterator[int]:
    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    sock = socket.create_server(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def test_witnesses_over_real_sockets(listener: int, http_port: int) -> None:
    closed = _closed_port()
    assert ask_witness(f"127.0.0.1:{listener}", 1) == ""
    assert ask_witness(f"http://127.0.0.1:{http_port}/", 1) == ""  # a 404 is an answer
    assert "refused" in ask_witness(f"127.0.0.1:{closed}", 1).lower()
    cfg = make_cfg()
    witnesses = (f"127.0.0.1:{listener}", f"http://127.0.0.1:{closed}/")
    cfg = replace(cfg, check=replace(cfg.check, witnesses=witnesses, witness_quorum=1))
    report = check_witnesses(cfg, Masker(()))
    assert report is not None and report.answered == (f"127.0.0.1:{listener}",)
    assert [w for w, _ in report.failed] == [f"http://127.0.0.1:{closed}/"]
    assert check_witnesses(make_cfg(), Masker(())) is None


# --------------------------------------------------------------------------- doctor, status


def test_doctor_asks_every_witness_and_compares_with_the_quorum(listener: int) -> None:
    from types import SimpleNamespace

    from openclaw_failover.ops.doctor.network import doctor_witnesses
    from openclaw_failover.ops.doctor.run import Sink

    closed = _closed_port()
    cfg = make_cfg()
    witnesses = (f"127.0.0.1:{listener}", f"127.0.0.1:{closed}")
    for quorum, verdict in ((1, "ok"), (2, "FAIL")):
        check = replace(cfg.check, witnesses=witnesses, witness_quorum=quorum)
        sink = Sink("witnesses", Masker(()))
        ctx: Any = SimpleNamespace(cfg=replace(cfg, check=check), mask=Masker(()))
        doctor_witnesses(ctx, sink)
        lines = [(c.status, c.detail) for c in sink.close()]
        assert ("ok", f"witness 127.0.0.1:{listener} answers") in lines
        assert lines[1][0] == "warn" and f"127.0.0.1:{closed} does not answer" in lines[1][1]
        assert lines[-1][0] == verdict and f"1/2 witnesses answer, quorum {quorum}" in lines[-1][1]
    sink = Sink("witnesses", Masker(()))
    doctor_witnesses(SimpleNamespace(cfg=cfg, mask=Masker(())), sink)  # type: ignore[arg-type]
    assert [c.status for c in sink.close()] == ["skip"]


def test_status_shows_witnesses_isolation_and_slow_checks(tmp_path: Path) -> None:
    from openclaw_failover.engine.store import StateStore
    from openclaw_failover.ops import status

    cfg = replace(witnessed(), state_dir=tmp_path)
    state = State(
        slow_ticks=2,
        isolated_since=NOW,
        last_witnesses={"answered": [], "failed": [], "at": NOW},
        last_probe={"status": "slow", "latency": 2.0, "detail": "after its banner", "at": NOW},
    )
    info = status.collect(cfg, state, None, False, StateStore(tmp_path), now=NOW + 5)
    text = status.render(info)
    assert "witnesses:      2, quorum 1; last asked" in text and "ISOLATED since" in text
    assert "slow checks:    2 in a row" in text
    assert "last probe:     slow in 2.00s" in text


def test_manual_takeover_may_fence_a_slow_gateway_automatic_never() -> None:
    cfg = make_cfg(fence=True)
    d = decide(State(), obs1(S.GATEWAY_SLOW), cfg, NOW, request="takeover")
    assert isinstance(d.actions[0], TakeOver) and d.actions[0].fence and d.actions[0].strict
    cfg = replace(cfg, check=replace(cfg.check, slow_fall=2))
    s = decide(State(), obs1(S.GATEWAY_SLOW), cfg, NOW).state
    d = decide(s, obs1(S.GATEWAY_SLOW), cfg, NOW + 1)
    assert isinstance(d.actions[0], TakeOver) and not d.actions[0].fence


def test_a_slow_probe_is_retried_with_twice_the_budget(tmp_path: Path) -> None:
    from openclaw_failover.engine.tick import Tick

    budgets: list[tuple[float, float]] = []
    answers = iter([S.SLOW, S.HEALTHY])

    def probe(cfg: Config, mask: Masker) -> ProbeResult:
        budgets.append((cfg.primary.ssh.connect_timeout, cfg.check.probe_timeout))
        return ProbeResult(next(answers), 0.1)

    cfg = replace(make_cfg(), state_dir=tmp_path)
    obs = Tick(cfg, {}, probe=probe, sleep=lambda _: None).observe(State())
    assert [a.status for a in obs.attempts] == [S.SLOW, S.HEALTHY]
    assert budgets == [(10.0, 5.0), (20.0, 10.0)]
    assert obs.witnesses is None  # none configured

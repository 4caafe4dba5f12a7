"""Every rule of the pure state machine, and properties over random tick sequences."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openclaw_failover.config.loader import (
    CheckConfig,
    Config,
    PrimaryConfig,
    PrimaryGateway,
    SSHConfig,
    StandbyConfig,
    StandbyGateway,
)
from openclaw_failover.core.decide import (
    TRANSITIONS,
    Fence,
    GiveBack,
    Notify,
    RestartLocal,
    TakeOver,
    decide,
    reconcile,
    should_retry,
)
from openclaw_failover.core.events import SyncCounts
from openclaw_failover.core.model import Observation, ProbeResult, ProbeStatus
from openclaw_failover.core.results import (
    FenceResult,
    GiveBackResult,
    RestartResult,
    Result,
    TakeoverResult,
)
from openclaw_failover.core.results import GiveBackEnd as End
from openclaw_failover.core.settle import settle
from openclaw_failover.core.state import Role, State

S = ProbeStatus
NOW = 1_800_000_000.0


def make_cfg(
    *, fall: int = 1, rise: int = 1, failback: str = "auto", fence: bool = False
) -> Config:
    stop = ("openclaw", "gateway", "stop") if fence else None
    start = ("openclaw", "gateway", "start") if fence else None
    return Config(
        primary=PrimaryConfig(
            name="Mac Studio",
            host="127.0.0.1",
            ssh=SSHConfig(user="u", key_file=Path("/k"), known_hosts=Path("/kh")),
            gateway=PrimaryGateway(stop_command=stop, start_command=start),
        ),
        standby=StandbyConfig(
            name="RPi", gateway=StandbyGateway(start_command=("true",), stop_command=("true",))
        ),
        check=CheckConfig(fall=fall, rise=rise, failback=failback),
    )


def obs(*statuses: ProbeStatus, local_up: bool | None = None) -> Observation:
    return Observation(tuple(ProbeResult(s, 0.1, f"detail {s}") for s in statuses), local_up)


def kinds(actions: list) -> list[str]:
    return [type(a).__name__ if not isinstance(a, Notify) else f"Notify:{a.kind}" for a in actions]


# --------------------------------------------------------------------------- primary role


def test_healthy_tick_does_nothing() -> None:
    d = decide(State(failed_ticks=0), obs(S.HEALTHY), make_cfg(), NOW)
    assert d.actions == []
    assert d.reason == "no action: primary healthy"
    assert d.state.role is Role.PRIMARY
    assert d.state.last_probe and d.state.last_probe["status"] == "healthy"


def test_a_healthy_retry_makes_the_tick_healthy() -> None:
    d = decide(State(), obs(S.UNREACHABLE, S.HEALTHY), make_cfg(), NOW)
    assert d.actions == [] and d.state.failed_ticks == 0


def test_failed_tick_takes_over_with_fall_1() -> None:
    d = decide(State(), obs(S.UNREACHABLE, S.UNREACHABLE), make_cfg(), NOW)
    assert d.state.role is Role.TAKING_OVER
    assert d.actions == [TakeOver(fence=False, why=d.actions[0].why)]
    assert d.reason.startswith("taking over: primary unreachable for 1 check")


def test_fall_counts_failed_ticks() -> None:
    cfg = make_cfg(fall=3)
    s = State()
    for n in (1, 2):
        d = decide(s, obs(S.REFUSED), cfg, NOW + n)
        assert d.actions == [] and d.state.role is Role.PRIMARY
        assert f"({n}/3 failed checks)" in d.reason
        s = d.state
    d = decide(s, obs(S.REFUSED), cfg, NOW + 3)
    assert kinds(d.actions) == ["TakeOver"]
    assert "for 3 checks" in d.reason


def test_a_healthy_tick_resets_the_failure_count() -> None:
    cfg = make_cfg(fall=2)
    d = decide(State(), obs(S.REFUSED), cfg, NOW)
    d = decide(d.state, obs(S.HEALTHY), cfg, NOW + 1)
    d = decide(d.state, obs(S.REFUSED), cfg, NOW + 2)
    assert d.actions == [] and d.state.failed_ticks == 1


@pytest.mark.parametrize("fence", [True, False])
def test_gateway_down_fences_only_when_stop_command_set(fence: bool) -> None:
    d = decide(State(), obs(S.GATEWAY_DOWN), make_cfg(fence=fence), NOW)
    assert d.actions[0] == TakeOver(fence=fence, why=d.actions[0].why)


def test_unreachable_primary_is_never_fenced() -> None:
    d = decide(State(), obs(S.UNREACHABLE), make_cfg(fence=True), NOW)
    assert d.actions[0].fence is False


@pytest.mark.parametrize("status", [S.AUTH_FAILED, S.PROBE_ERROR])
def test_auth_failure_alerts_once_per_hour_and_never_fails_over(status: ProbeStatus) -> None:
    cfg = make_cfg()
    d = decide(State(), obs(status), cfg, NOW)
    assert kinds(d.actions) == ["Notify:auth_failure"]
    assert d.state.role is Role.PRIMARY and "alert sent" in d.reason
    d2 = decide(d.state, obs(status), cfg, NOW + 1800)
    assert d2.actions == [] and "alert already sent" in d2.reason
    d3 = decide(d2.state, obs(status), cfg, NOW + 3601)
    assert kinds(d3.actions) == ["Notify:auth_failure"]


def test_a_second_gateway_while_primary_serves_is_reported_once() -> None:
    cfg = make_cfg()
    d = decide(State(), obs(S.HEALTHY, local_up=True), cfg, NOW)
    assert kinds(d.actions) == ["Notify:two_gateways"] and "two bots" in d.reason
    assert d.state.role is Role.PRIMARY
    d = decide(d.state, obs(S.HEALTHY, local_up=True), cfg, NOW + 60)
    assert d.actions == []


def test_cannot_check_still_finishes_an_interrupted_takeover() -> None:
    d = decide(State(role=Role.TAKING_OVER), obs(S.AUTH_FAILED), make_cfg(), NOW)
    assert kinds(d.actions) == ["Notify:auth_failure", "TakeOver"]
    assert d.actions[1].fence is False


def test_cannot_check_still_restarts_our_own_gateway() -> None:
    d = decide(State(role=Role.FAILOVER), obs(S.PROBE_ERROR, local_up=False), make_cfg(), NOW)
    assert kinds(d.actions) == ["Notify:auth_failure", "RestartLocal"]


def test_paused_observes_but_never_acts() -> None:
    d = decide(State(paused=True), obs(S.UNREACHABLE), make_cfg(), NOW)
    assert d.actions == [] and d.state.role is Role.PRIMARY
    assert d.reason == "paused: primary unreachable, not acting"
    assert d.state.last_probe is not None


# --------------------------------------------------------------------------- failover role


def failover(**kw: object) -> State:
    return replace(State(role=Role.FAILOVER, since=NOW - 100), **kw)  # type: ignore[arg-type]


def test_failover_keeps_serving_while_primary_down() -> None:
    d = decide(failover(), obs(S.UNREACHABLE, local_up=True), make_cfg(), NOW)
    assert d.actions == [] and d.reason == "no action: serving, primary still unreachable"


def test_failover_restarts_a_dead_local_gateway() -> None:
    d = decide(failover(), obs(S.UNREACHABLE, local_up=False), make_cfg(), NOW)
    assert d.actions == [RestartLocal()]


def test_failover_gives_back_after_rise() -> None:
    cfg = make_cfg(rise=2, fence=True)
    d = decide(failover(fenced=True), obs(S.GATEWAY_DOWN, local_up=True), cfg, NOW)
    assert d.actions == [] and "(1/2 checks)" in d.reason
    d = decide(d.state, obs(S.GATEWAY_DOWN, local_up=True), cfg, NOW + 1)
    assert kinds(d.actions) == ["GiveBack"] and d.state.role is Role.GIVING_BACK
    assert d.reason == "giving back: primary reachable for 2 checks"


def test_failback_manual_never_gives_back_and_tells_once() -> None:
    cfg = make_cfg(failback="manual")
    d = decide(failover(), obs(S.HEALTHY), cfg, NOW)
    assert kinds(d.actions) == ["Notify:primary_back"]
    d = decide(d.state, obs(S.HEALTHY), cfg, NOW + 1)
    assert d.actions == [] and d.state.role is Role.FAILOVER
    assert "failback is manual" in d.reason


def test_fenced_primary_counts_as_back_when_ssh_works() -> None:
    d = decide(failover(fenced=True), obs(S.GATEWAY_DOWN), make_cfg(fence=True), NOW)
    assert d.actions == [GiveBack(unfence=True, why="primary reachable for 1 check")]


def test_fenced_primary_without_start_command_waits_for_a_healthy_gateway() -> None:
    cfg = make_cfg(fence=False)  # no primary start_command: we cannot restart it
    d = decide(failover(fenced=True), obs(S.GATEWAY_DOWN, local_up=True), cfg, NOW)
    assert d.actions == []
    d = decide(failover(fenced=True), obs(S.HEALTHY, local_up=True), cfg, NOW)
    assert kinds(d.actions) == ["GiveBack"]


def test_failed_unfence_is_retried_once_per_alert_interval() -> None:
    cfg = make_cfg(fence=True)
    s = failover(fenced=True, unfence_failed_at=NOW)
    assert decide(s, obs(S.GATEWAY_DOWN, local_up=True), cfg, NOW + 60).actions == []
    d = decide(s, obs(S.GATEWAY_DOWN, local_up=True), cfg, NOW + 3600)
    assert kinds(d.actions) == ["GiveBack"]
    d = decide(s, obs(S.HEALTHY, local_up=True), cfg, NOW + 60)  # restarted by hand
    assert kinds(d.actions) == ["GiveBack"]


def test_unfenced_primary_with_gateway_down_is_not_back() -> None:
    d = decide(failover(), obs(S.GATEWAY_DOWN, local_up=True), make_cfg(), NOW)
    assert d.actions == []


def test_auth_failure_while_serving_keeps_serving() -> None:
    d = decide(failover(), obs(S.AUTH_FAILED), make_cfg(), NOW)
    assert kinds(d.actions) == ["Notify:auth_failure"] and d.state.role is Role.FAILOVER


# --------------------------------------------------------------------------- transitional roles


def test_taking_over_is_retried() -> None:
    s = State(role=Role.TAKING_OVER)
    d = decide(s, obs(S.UNREACHABLE), make_cfg(), NOW)
    assert kinds(d.actions) == ["TakeOver"] and d.reason.startswith("retrying takeover")


def test_taking_over_abandoned_when_primary_recovers() -> None:
    d = decide(State(role=Role.TAKING_OVER), obs(S.HEALTHY), make_cfg(), NOW)
    assert kinds(d.actions) == ["GiveBack"] and d.state.role is Role.GIVING_BACK


def test_giving_back_retried_when_primary_healthy() -> None:
    d = decide(State(role=Role.GIVING_BACK), obs(S.HEALTHY), make_cfg(), NOW)
    assert kinds(d.actions) == ["GiveBack"]


def test_giving_back_takes_over_again_when_primary_dies() -> None:
    d = decide(State(role=Role.GIVING_BACK), obs(S.UNREACHABLE), make_cfg(), NOW)
    assert kinds(d.actions) == ["TakeOver"] and d.state.role is Role.TAKING_OVER


# --------------------------------------------------------------------------- manual requests


def test_manual_takeover_of_healthy_primary_needs_fencing() -> None:
    d = decide(State(), obs(S.HEALTHY), make_cfg(fence=False), NOW, request="takeover")
    assert d.refused and d.actions == [] and "two gateways" in d.reason
    d = decide(State(), obs(S.HEALTHY), make_cfg(fence=True), NOW, request="takeover")
    assert d.actions[0] == TakeOver(
        fence=True, why="manual takeover (primary healthy)", strict=True
    )
    assert d.state.manual_hold


@pytest.mark.parametrize("status", [S.AUTH_FAILED, S.PROBE_ERROR])
def test_manual_takeover_refused_when_primary_cannot_be_checked(status: ProbeStatus) -> None:
    d = decide(State(), obs(status), make_cfg(fence=True), NOW, request="takeover")
    assert d.refused and d.actions == [] and d.state.role is Role.PRIMARY


def test_manual_takeover_holds_until_release() -> None:
    cfg = make_cfg(fence=True)
    s = failover(fenced=True, manual_hold=True)
    d = decide(s, obs(S.GATEWAY_DOWN), cfg, NOW)
    assert kinds(d.actions) == ["Notify:primary_back"] and d.state.role is Role.FAILOVER
    d = decide(d.state, obs(S.GATEWAY_DOWN), cfg, NOW, request="release")
    assert kinds(d.actions) == ["GiveBack"] and not d.state.manual_hold


def test_release_refused_when_primary_not_reachable() -> None:
    d = decide(failover(), obs(S.UNREACHABLE), make_cfg(), NOW, request="release")
    assert d.refused and d.state.role is Role.FAILOVER


def test_release_in_primary_role_is_a_no_op() -> None:
    d = decide(State(), obs(S.HEALTHY), make_cfg(), NOW, request="release")
    assert not d.refused and d.actions == []


# --------------------------------------------------------------------------- settle


def test_takeover_success_records_failover_and_notifies() -> None:
    cfg = make_cfg()
    a = TakeOver(fence=True, why="primary gateway_down for 1 check")
    s, notes, reason = settle(
        State(role=Role.TAKING_OVER), a, TakeoverResult(True, fenced=True), cfg, NOW
    )
    assert s.role is Role.FAILOVER and s.fenced and s.takeovers == 1
    assert [n.kind for n in notes] == ["took_over"]
    assert reason == "took over: primary gateway_down for 1 check; primary's gateway fenced"


def test_aborted_takeover_returns_to_primary_silently() -> None:
    a = TakeOver(fence=True, why="manual takeover (primary healthy)", strict=True)
    s0 = State(role=Role.TAKING_OVER, manual_hold=True)
    s, notes, reason = settle(
        s0, a, TakeoverResult(False, aborted=True, detail="fence failed"), make_cfg(), NOW
    )
    assert s.role is Role.PRIMARY and not s.manual_hold and notes == []
    assert reason == "takeover aborted, nothing started: fence failed"


def test_settle_does_not_change_its_input() -> None:
    s0 = State(role=Role.TAKING_OVER)
    before = replace(s0)
    settle(s0, TakeOver(False, "x"), TakeoverResult(False, detail="boom"), make_cfg(), NOW)
    assert s0 == before and s0.last_alert_at == {}


def test_takeover_failure_notifies_once_per_interval() -> None:
    cfg = make_cfg()
    a = TakeOver(fence=False, why="x")
    s, notes, reason = settle(
        State(role=Role.TAKING_OVER), a, TakeoverResult(False, detail="boom"), cfg, NOW
    )
    assert s.role is Role.TAKING_OVER and [n.kind for n in notes] == ["failover_failed"]
    assert "takeover failed: boom" in reason
    s, notes, _ = settle(s, a, TakeoverResult(False, detail="boom"), cfg, NOW + 60)
    assert notes == []


def test_giveback_success_records_primary() -> None:
    a = GiveBack(unfence=True, why="primary reachable for 1 check")
    o = GiveBackResult(End.DONE, unfenced=True, sync=SyncCounts(summary="skipped"))
    s, notes, reason = settle(State(role=Role.GIVING_BACK, fenced=True), a, o, make_cfg(), NOW)
    assert s.role is Role.PRIMARY and not s.fenced and s.givebacks == 1
    assert [(n.kind, n.detail) for n in notes] == [("gave_back", "skipped")]
    assert reason == "gave back: primary reachable for 1 check"


def test_giveback_sync_failure_stays_giving_back() -> None:
    a = GiveBack(unfence=False, why="x")
    o = GiveBackResult(End.SYNC_FAILED, sync=SyncCounts(ok=False, summary="db down"))
    s, notes, _reason = settle(State(role=Role.GIVING_BACK), a, o, make_cfg(), NOW)
    assert s.role is Role.GIVING_BACK and [n.kind for n in notes] == ["syncback_failed"]


def test_giveback_local_not_stopped_stays_giving_back() -> None:
    o = GiveBackResult(End.STOP_FAILED, detail="still answering")
    s, notes, _ = settle(State(role=Role.GIVING_BACK), GiveBack(False, "x"), o, make_cfg(), NOW)
    assert s.role is Role.GIVING_BACK and [n.kind for n in notes] == ["giveback_failed"]


def test_giveback_undone_when_primary_cannot_restart() -> None:
    o = GiveBackResult(End.RESTORED, detail="no start")
    s, _notes, _ = settle(
        State(role=Role.GIVING_BACK, fenced=True), GiveBack(True, "x"), o, make_cfg(), NOW
    )
    assert s.role is Role.FAILOVER and s.fenced and s.unfence_failed_at == NOW


def test_giveback_leaving_nobody_serving_takes_over_again() -> None:
    o = GiveBackResult(End.NOBODY_SERVES, detail="both failed")
    s, _, reason = settle(
        State(role=Role.GIVING_BACK, fenced=True), GiveBack(True, "x"), o, make_cfg(), NOW
    )
    assert s.role is Role.TAKING_OVER and "nobody serves" in reason


def test_reconcile_from_local_gateway() -> None:
    assert reconcile(True, NOW)[0].role is Role.FAILOVER
    assert reconcile(False, NOW)[0].role is Role.PRIMARY


def test_reconcile_remembers_fencing_and_a_pending_give_back() -> None:
    s, how = reconcile(True, NOW, fenced=True)
    assert s.role is Role.FAILOVER and s.fenced and "fenced" in how
    s, how = reconcile(False, NOW, split=True)
    assert s.role is Role.GIVING_BACK and not s.fenced and "never given back" in how
    s, _ = reconcile(False, NOW, fenced=True)
    assert s.role is Role.GIVING_BACK and s.fenced
    # and the machine then gives back (a fenced primary: SSH is enough)
    d = decide(s, obs(S.GATEWAY_DOWN, local_up=False), make_cfg(fence=True), NOW)
    assert kinds(d.actions) == ["GiveBack"] and d.actions[0].unfence


def test_should_retry_only_where_it_matters() -> None:
    fail = ProbeResult(S.UNREACHABLE, 1.0)
    assert should_retry(State(), fail)
    assert should_retry(None, fail)
    assert not should_retry(State(role=Role.FAILOVER), fail)
    assert not should_retry(State(), ProbeResult(S.AUTH_FAILED, 1.0))


# --------------------------------------------------------------------------- properties

statuses = st.sampled_from(list(ProbeStatus))
ticks = st.lists(
    st.tuples(
        st.lists(statuses, min_size=1, max_size=3),
        st.sampled_from([None, True, False]),
        st.sampled_from([None, None, None, None, "takeover", "release"]),
        st.booleans(),  # outcome ok
        st.booleans(),  # secondary outcome flag
    ),
    min_size=1,
    max_size=25,
)
configs = st.builds(
    make_cfg,
    fall=st.integers(1, 3),
    rise=st.integers(1, 3),
    failback=st.sampled_from(["auto", "manual"]),
    fence=st.booleans(),
)


def _outcome(action: object, ok: bool, flag: bool) -> Result:
    if isinstance(action, GiveBack):
        if ok:
            return GiveBackResult(End.DONE, unfenced=True)
        return GiveBackResult(End.RESTORED if flag else End.STOP_FAILED)
    if isinstance(action, Fence):
        return FenceResult(ok)
    if isinstance(action, RestartLocal):
        return RestartResult(ok)
    return TakeoverResult(ok, fenced=ok and flag)


@settings(max_examples=500, deadline=None)
@given(
    cfg=configs,
    seq=ticks,
    paused=st.booleans(),
    role=st.sampled_from(list(Role)),
    fenced=st.booleans(),
)
def test_properties_over_random_ticks(
    cfg: Config, seq: list, paused: bool, role: Role, fenced: bool
) -> None:
    state = State(role=role, paused=paused, fenced=fenced and role is not Role.PRIMARY)
    now = NOW
    for statuses_, local_up, request, ok, flag in seq:
        now += 30
        o = obs(*statuses_, local_up=local_up)
        before = state
        d = decide(state, o, cfg, now, request)
        final = o.final.status
        runnable = [a for a in d.actions if not isinstance(a, Notify)]
        # never start and stop in one tick
        assert not (
            any(isinstance(a, TakeOver | RestartLocal) for a in runnable)
            and any(isinstance(a, GiveBack) for a in runnable)
        )
        assert len(runnable) <= 1
        # paused never acts (unless the user asked by hand)
        if before.paused and request is None:
            assert runnable == [] and d.state.role == before.role
        # auth_failed / probe_error never start a failover (an interrupted one is finished)
        if final in (S.AUTH_FAILED, S.PROBE_ERROR) and request is None:
            assert d.state.role == before.role
            if before.role is not Role.TAKING_OVER:
                assert not any(isinstance(a, TakeOver) for a in runnable)
        # never fail over from primary before `fall` failed ticks (or `slow_fall` checks
        # without a healthy answer once one was slow)
        if (
            before.role is Role.PRIMARY
            and request is None
            and any(isinstance(a, TakeOver) for a in runnable)
        ):
            assert (
                d.state.failed_ticks >= cfg.check.fall or d.state.slow_ticks >= cfg.check.slow_fall
            )
        # roles change only through documented transitions
        if d.state.role != before.role:
            assert (before.role, d.state.role) in TRANSITIONS
        state = d.state
        for action in runnable:
            new, _, _ = settle(state, action, _outcome(action, ok, flag), cfg, now)
            if new.role != state.role:
                assert (state.role, new.role) in TRANSITIONS
            state = new

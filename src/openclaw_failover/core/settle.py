"""Folding an action's result into the state, as pure functions: the new state, the
notices to queue and the one sentence of the check.  Each action has its own result
type (core.results); nothing here looks at the world.
"""

from __future__ import annotations

from dataclasses import replace

from openclaw_failover.config.loader import Config
from openclaw_failover.core.decide import (
    Action,
    Fence,
    GiveBack,
    Notify,
    RestartLocal,
    TakeOver,
    alert,
    enter_role,
    forget_alerts,
)
from openclaw_failover.core.results import (
    FenceResult,
    GiveBackEnd,
    GiveBackResult,
    RestartResult,
    Result,
    TakeoverResult,
)
from openclaw_failover.core.state import Role, State


def settle(
    state: State, action: Action, result: Result, cfg: Config, now: float
) -> tuple[State, list[Notify], str]:
    """Fold an action's result into the state; return notices to queue and the sentence."""
    if isinstance(action, TakeOver) and isinstance(result, TakeoverResult):
        return _settle_takeover(state, action, result, cfg, now)
    if isinstance(action, GiveBack) and isinstance(result, GiveBackResult):
        return _settle_giveback(state, action, result, cfg, now)
    if isinstance(action, Fence) and isinstance(result, FenceResult):
        if result.fenced:
            return replace(state, fenced=True), [], f"stopped the primary's gateway: {action.why}"
        return state, [], f"could not stop the primary's gateway: {result.detail}"
    if isinstance(action, RestartLocal) and isinstance(result, RestartResult):
        if result.started:
            return state, [], "restarted the local gateway"
        s, notes = alert(state, "failover_failed", cfg, now, detail=result.detail)
        return s, _notifies(notes), f"could not restart the local gateway: {result.detail}"
    raise TypeError(f"no result of {type(action).__name__} is {type(result).__name__}")


def _notifies(actions: list[Action]) -> list[Notify]:
    return [a for a in actions if isinstance(a, Notify)]


def _settle_takeover(
    s: State, a: TakeOver, o: TakeoverResult, cfg: Config, now: float
) -> tuple[State, list[Notify], str]:
    s = replace(s, fenced=s.fenced or o.fenced)
    if o.aborted:
        s = replace(enter_role(s, Role.PRIMARY, now), manual_hold=False, failed_ticks=0)
        return s, [], f"takeover aborted, nothing started: {o.detail}"
    if not o.started:
        s, notes = alert(s, "failover_failed", cfg, now, reason=a.why, detail=o.detail)
        return s, _notifies(notes), f"takeover failed: {o.detail}; retrying next check"
    s = replace(
        forget_alerts(enter_role(s, Role.FAILOVER, now), "failover_failed"),
        failed_ticks=0,
        healthy_ticks=0,
        takeovers=s.takeovers + 1,
        back_notified=False,
        unfence_failed_at=None,
    )
    s = replace(s, local_channels=o.channels)
    fenced = "; primary's gateway fenced" if o.fenced else ""
    channels = f"; local gateway {o.channels}" if o.channels else ""
    note = Notify("took_over", reason=a.why, detail=_gateway_channels(o.channels))
    return s, [note], f"took over: {a.why}{fenced}{channels}"


def _gateway_channels(channels: str) -> str:
    return f"The gateway here is {channels}." if channels else ""


def _settle_giveback(
    s: State, a: GiveBack, o: GiveBackResult, cfg: Config, now: float
) -> tuple[State, list[Notify], str]:
    if o.end is GiveBackEnd.RESTORED:
        s = replace(enter_role(s, Role.FAILOVER, now), healthy_ticks=0, unfence_failed_at=now)
        s, notes = alert(s, "giveback_failed", cfg, now, detail=o.detail)
        return s, _notifies(notes), f"give-back undone, still serving: {o.detail}"
    if o.end is GiveBackEnd.NOBODY_SERVES:
        # The primary's gateway did not restart and neither did ours: nobody serves.
        s = replace(enter_role(s, Role.TAKING_OVER, now), unfence_failed_at=now)
        s, notes = alert(s, "giveback_failed", cfg, now, detail=o.detail)
        return (
            s,
            _notifies(notes),
            f"give-back failed, nobody serves: {o.detail}; taking over again",
        )
    if o.unfenced:
        s = replace(s, fenced=False, unfence_failed_at=None)
    if o.end is GiveBackEnd.STOP_FAILED:
        s, notes = alert(s, "giveback_failed", cfg, now, detail=o.detail)
        return s, _notifies(notes), f"give-back failed: {o.detail}; retrying next check"
    if o.end is GiveBackEnd.SYNC_FAILED:
        s, notes = alert(s, "syncback_failed", cfg, now, detail=o.sync_summary)
        return s, _notifies(notes), f"sync-back failed: {o.sync_summary}; retrying next check"
    s = replace(
        forget_alerts(enter_role(s, Role.PRIMARY, now), "giveback_failed", "syncback_failed"),
        fenced=False,
        failed_ticks=0,
        healthy_ticks=0,
        givebacks=s.givebacks + 1,
        manual_hold=False,
        back_notified=False,
        unfence_failed_at=None,
    )
    return s, [Notify("gave_back", reason=a.why, detail=o.sync_summary)], f"gave back: {a.why}"

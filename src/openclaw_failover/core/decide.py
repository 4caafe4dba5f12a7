"""The state machine, as pure functions (no I/O, no clock, no randomness).

``decide(state, observation, config, now)`` returns the new state, the actions
to run and one readable sentence.  After the actions ran, ``core.settle`` folds
their results into the state the same way.  Every rule is unit- and
property-tested without I/O.

Roles and the only transitions between them::

    primary --(fall failed ticks | ocf takeover)--> taking_over
    taking_over --(local gateway answering)--> failover
    taking_over --(primary healthy again)--> giving_back
    taking_over --(aborted before anything started: fencing did not hold)--> primary
    failover --(rise healthy ticks, failback auto | ocf release)--> giving_back
    giving_back --(local stopped, synced back)--> primary
    giving_back --(give-back undone: primary could not restart)--> failover
    giving_back --(primary fails again for fall ticks, or nobody serves)--> taking_over
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from openclaw_failover.config.loader import Config
from openclaw_failover.core.model import Observation, ProbeResult, ProbeStatus, WitnessReport
from openclaw_failover.core.state import Role, State

TRANSITIONS: frozenset[tuple[Role, Role]] = frozenset(
    {
        (Role.PRIMARY, Role.TAKING_OVER),
        (Role.TAKING_OVER, Role.FAILOVER),
        (Role.TAKING_OVER, Role.GIVING_BACK),
        (Role.TAKING_OVER, Role.PRIMARY),
        (Role.FAILOVER, Role.GIVING_BACK),
        (Role.GIVING_BACK, Role.PRIMARY),
        (Role.GIVING_BACK, Role.FAILOVER),
        (Role.GIVING_BACK, Role.TAKING_OVER),
    }
)


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class TakeOver:
    """Fence the primary (if asked), start the local gateway, wait until it answers."""

    fence: bool
    why: str  # "primary unreachable for 2 checks"
    strict: bool = False  # manual: abort unless fencing succeeded


@dataclass(frozen=True)
class GiveBack:
    """Stop the local gateway, sync back, restart the primary's gateway if we fenced it."""

    unfence: bool
    why: str


@dataclass(frozen=True)
class Fence:
    """Stop the primary's gateway while this standby keeps serving (two were serving)."""

    why: str


@dataclass(frozen=True)
class RestartLocal:
    """Start the local gateway again while serving."""


@dataclass(frozen=True)
class Notify:
    """Queue a notice of ``kind`` (a key of config.DEFAULT_MESSAGES)."""

    kind: str
    reason: str = ""
    detail: str = ""


Action = TakeOver | GiveBack | RestartLocal | Fence | Notify


@dataclass(frozen=True)
class Decision:
    state: State
    actions: list[Action]
    reason: str
    refused: bool = False  # a manual request that was refused (exit 1)


# --------------------------------------------------------------------------- helpers


def should_retry(state: State | None, result: ProbeResult) -> bool:
    """Retry a failed or slow probe within the tick only where the verdict could start a
    takeover (a slow one with a longer budget: see tick.observe)."""
    if not (result.status.is_failure or result.status.is_slow):
        return False
    return state is None or state.role in (Role.PRIMARY, Role.GIVING_BACK)


def should_ask_witnesses(state: State | None, result: ProbeResult, cfg: Config) -> bool:
    """Ask the witnesses only where this tick's verdict could start a takeover."""
    return bool(cfg.check.witnesses) and should_retry(state, result)


def reconcile(
    local_up: bool,
    now: float,
    *,
    fenced: bool = False,
    split: bool = False,
    subscription_disabled: bool = False,
) -> tuple[State, str]:
    """A fresh state from reality, when the state file was missing or corrupt.

    ``fenced``: ocf's fence marker says it stopped the primary's gateway (which
    cannot come back by itself).  ``split``: a takeover's sync-back baseline was
    never cleared, so what the standby wrote has not been synced back yet.
    ``subscription_disabled``: the standby stopped applying the primary's changes
    (a takeover by hand, or a lost baseline): it may hold writes of its own.
    """
    fence = "; the primary's gateway was fenced by ocf" if fenced else ""
    if local_up:
        state = State(role=Role.FAILOVER, since=now, fenced=fenced)
        return state, f"local gateway is answering: assuming this standby serves (failover){fence}"
    if split or fenced or subscription_disabled:
        state = State(role=Role.GIVING_BACK, since=now, fenced=fenced)
        if split:
            why = "a takeover was never given back"
        elif fenced:
            why = "ocf fenced the primary's gateway"
        else:
            why = "the standby's subscription is disabled (it may hold writes of its own)"
        return state, f"local gateway is not answering, but {why}: give-back pending{fence}"
    return State(role=Role.PRIMARY, since=now), "local gateway is not answering: assuming primary"


def syncback_mode(role: Role, local_up: bool, split_recorded: bool) -> tuple[bool, bool]:
    """What a manual `ocf syncback` does: (serving, split).

    ``serving``: this standby serves, so only the merge into the primary runs.
    ``split``: a takeover happened, so its workspace files are synced too (the
    rows are always merged before the standby is made equal)."""
    serving = local_up or role in (Role.FAILOVER, Role.TAKING_OVER)
    return serving, serving or role is Role.GIVING_BACK or split_recorded


def alert(
    state: State, kind: str, cfg: Config, now: float, **kw: str
) -> tuple[State, list[Action]]:
    """A rate-limited notice: at most one per ``check.alert_interval`` per kind."""
    last = state.last_alert_at.get(kind)
    if last is not None and now - last < cfg.check.alert_interval:
        return state, []
    return replace(state, last_alert_at={**state.last_alert_at, kind: now}), [Notify(kind, **kw)]


def forget_alerts(state: State, *kinds: str) -> State:
    return replace(
        state, last_alert_at={k: v for k, v in state.last_alert_at.items() if k not in kinds}
    )


def _checks(n: int) -> str:
    return f"{n} check" + ("" if n == 1 else "s")


def _probe_record(result: ProbeResult, now: float) -> dict[str, object]:
    return {
        "status": str(result.status),
        "latency": round(result.latency, 3),
        "detail": result.detail,
        "method": result.method,
        "at": now,
    }


def enter_role(state: State, role: Role, now: float) -> State:
    channels = state.local_channels if role is Role.FAILOVER else ""
    return replace(state, role=role, since=now, local_channels=channels)


def _primary_back(s: State, status: ProbeStatus, cfg: Config, now: float) -> bool:
    """Has the primary returned?

    A fenced primary cannot answer by itself: SSH reaching it is enough when we
    can restart its gateway (``primary.gateway.start_command``).  After a failed
    restart we try again only once per ``alert_interval`` (no stop/start churn
    every check); a gateway started by hand counts at once.
    """
    if status is ProbeStatus.HEALTHY:
        return True
    if not (s.fenced and status.ssh_ok and cfg.primary.gateway.start_command is not None):
        return False
    return s.unfence_failed_at is None or now - s.unfence_failed_at >= cfg.check.alert_interval


def _can_fence(cfg: Config, status: ProbeStatus) -> bool:
    """Fence only on a clear answer over working SSH (the gateway refused, closed or
    answered 5xx; or is healthy, for a manual takeover), never on a timeout."""
    fenceable = (ProbeStatus.HEALTHY, ProbeStatus.GATEWAY_DOWN)
    return status in fenceable and cfg.primary.gateway.stop_command is not None


def _witness_line(w: WitnessReport | None, cfg: Config) -> str:
    if w is None:
        return f"the {len(cfg.check.witnesses)} witnesses were not asked"
    return f"{len(w.answered)}/{w.total} witnesses answer"


def _isolated(w: WitnessReport | None, cfg: Config) -> bool:
    if not cfg.check.witnesses:
        return False
    return w is None or len(w.answered) < cfg.check.witness_quorum


# --------------------------------------------------------------------------- decide


def decide(
    state: State, obs: Observation, cfg: Config, now: float, request: str | None = None
) -> Decision:
    """One tick of the state machine.  ``request`` is None, "takeover" or "release".

    A manual request is the user's explicit word, so it is carried out also while
    paused; an automatic decision never is.
    """
    result = obs.final
    s = replace(state, last_probe=_probe_record(result, now), last_tick_at=now)
    if obs.witnesses is not None:
        s = replace(s, last_witnesses={**obs.witnesses.to_json(), "at": now})
    if request == "takeover":
        return _manual_takeover(s, result, cfg, now)
    if request == "release":
        return _manual_release(s, result, cfg, now)
    if s.paused:
        return Decision(s, [], f"paused: primary {result.status}, not acting")
    if result.status in (ProbeStatus.AUTH_FAILED, ProbeStatus.PROBE_ERROR):
        return _cannot_check(s, obs, cfg, now)
    handler = {
        Role.PRIMARY: _in_primary,
        Role.TAKING_OVER: _in_taking_over,
        Role.FAILOVER: _in_failover,
        Role.GIVING_BACK: _in_giving_back,
    }[s.role]
    return handler(s, obs, cfg, now)


def _cannot_check(s: State, obs: Observation, cfg: Config, now: float) -> Decision:
    """The primary cannot be judged: never fail over, alert; but keep our own side right."""
    r = obs.final
    s, actions = alert(s, "auth_failure", cfg, now, detail=f"{r.status}: {r.detail}")
    sent = "alert sent" if actions else "alert already sent"
    why = f"cannot check {cfg.primary.name} ({r.detail}); {sent}"
    if s.role is Role.TAKING_OVER:  # decided on real evidence before: finish it
        return Decision(
            s,
            [*actions, TakeOver(fence=False, why="finishing an interrupted takeover")],
            f"finishing takeover: {why}",
        )
    if s.role is Role.FAILOVER and obs.local_up is False:
        return Decision(s, [*actions, RestartLocal()], f"restarting the local gateway: {why}")
    serving = " (still serving)" if s.role is Role.FAILOVER else ""
    return Decision(s, actions, f"no action{serving}: {why}")


def _in_primary(s: State, obs: Observation, cfg: Config, now: float) -> Decision:
    r = obs.final
    if r.status is not ProbeStatus.HEALTHY:
        return _count_failure(s, obs, cfg, now, waiting="primary")
    s = replace(s, failed_ticks=0, slow_ticks=0, isolated_since=None)
    if obs.local_up:
        s, actions = alert(s, "two_gateways", cfg, now)
        return Decision(
            s,
            actions,
            "primary healthy, but a gateway also answers on this standby: "
            "two bots may poll Telegram (not started by ocf; stop it)",
        )
    return Decision(s, [], "no action: primary healthy")


def _count_failure(s: State, obs: Observation, cfg: Config, now: float, waiting: str) -> Decision:
    """Never-answered / refused checks count towards ``fall``; a slow one (the primary
    answered, then a step timed out) resets that count and starts the longer
    ``slow_fall`` count, which every later check without a healthy answer extends."""
    r = obs.final
    failed = s.failed_ticks + 1 if r.status.is_failure else 0
    slow = s.slow_ticks + 1 if (r.status.is_slow or s.slow_ticks) else 0
    s = replace(s, failed_ticks=failed, slow_ticks=slow, healthy_ticks=0)
    c = cfg.check
    if failed < c.fall and (slow == 0 or slow < c.slow_fall):
        if r.status.is_slow:
            count = f"{slow}/{c.slow_fall} slow checks, not counted towards fall"
        else:
            count = f"{failed}/{c.fall} failed checks"
            count += f"; {slow}/{c.slow_fall} since a slow one" if slow else ""
        return Decision(s, [], f"{waiting}: primary {r.status} ({count})")
    if failed >= c.fall:
        why = f"primary {r.status} for {_checks(failed)} ({r.detail})"
    else:  # the slow streak: slow checks, extended by any check without a healthy answer
        why = f"primary slow: no healthy answer for {_checks(slow)} (last {r.status}: {r.detail})"
    if _isolated(obs.witnesses, cfg):
        return _stay_isolated(s, obs, cfg, now, why)
    s = replace(enter_role(s, Role.TAKING_OVER, now), isolated_since=None)
    return Decision(s, [TakeOver(fence=_can_fence(cfg, r.status), why=why)], f"taking over: {why}")


def _stay_isolated(s: State, obs: Observation, cfg: Config, now: float, why: str) -> Decision:
    """Too few witnesses answer: the fault may be ours, so a takeover could run two bots.
    One notice per isolation; it waits in the outbox until Telegram is reachable again."""
    line = f"this standby is isolated: {_witness_line(obs.witnesses, cfg)}"
    actions: list[Action] = []
    if s.isolated_since is None:
        s = replace(s, isolated_since=now)
        failed = "; ".join(f"{w}: {e}" for w, e in (obs.witnesses.failed if obs.witnesses else ()))
        actions.append(Notify("isolated", reason=line, detail=f"{why}. {failed}".strip()))
    return Decision(s, actions, f"not taking over: {line} ({why})")


def _in_taking_over(s: State, obs: Observation, cfg: Config, now: float) -> Decision:
    r = obs.final
    if r.status is ProbeStatus.HEALTHY:
        s = enter_role(s, Role.GIVING_BACK, now)
        why = "primary healthy again before the takeover completed"
        return Decision(s, [GiveBack(unfence=s.fenced, why=why)], f"abandoning takeover: {why}")
    fence = not s.fenced and _can_fence(cfg, r.status)
    why = f"primary {r.status} ({r.detail})"
    return Decision(s, [TakeOver(fence=fence, why=why)], f"retrying takeover: {why}")


def _in_failover(s: State, obs: Observation, cfg: Config, now: float) -> Decision:
    r = obs.final
    if not _primary_back(s, r.status, cfg, now):
        s = replace(s, healthy_ticks=0)
        if obs.local_up is False:
            return Decision(
                s,
                [RestartLocal()],
                "serving, but the local gateway is not answering: restarting it",
            )
        return Decision(s, [], f"no action: serving, primary still {r.status}")
    n = s.healthy_ticks + 1
    s = replace(s, healthy_ticks=n, failed_ticks=0, slow_ticks=0)
    back = "healthy" if r.status is ProbeStatus.HEALTHY else "reachable"
    if r.status is ProbeStatus.HEALTHY and obs.local_up is True:
        return _two_serving(s, cfg, now, n)
    if n < cfg.check.rise:
        return Decision(s, [], f"serving: primary {back} ({n}/{cfg.check.rise} checks)")
    if s.manual_hold or cfg.check.failback == "manual":
        actions: list[Action] = []
        if not s.back_notified:
            s = replace(s, back_notified=True)
            actions.append(Notify("primary_back"))
        return Decision(s, actions, f"serving: primary {back}; failback is manual ('ocf release')")
    why = f"primary {back} for {_checks(n)}"
    s = enter_role(s, Role.GIVING_BACK, now)
    return Decision(s, [GiveBack(unfence=s.fenced, why=why)], f"giving back: {why}")


def _two_serving(s: State, cfg: Config, now: float, n: int) -> Decision:
    """The primary's gateway serves (it came back by itself after a partition) while
    ours still answers: two bots poll Telegram.  Never leave both running after a check
    that reached the primary.  While we keep serving (``rise`` not reached, or failback
    manual) the primary's gateway is stopped when ``stop_command`` allows, and given back
    later in order (ours stopped first); otherwise ours stops now by giving back.
    The notice goes out once per ``alert_interval``."""
    why = f"primary healthy for {_checks(n)} while this standby's gateway also answers"
    keep = s.manual_hold or cfg.check.failback == "manual" or n < cfg.check.rise
    if keep and _can_fence(cfg, ProbeStatus.HEALTHY):
        s, notes = alert(s, "both_serving", cfg, now, reason=why)
        until = "'ocf release'" if n >= cfg.check.rise else f"{n}/{cfg.check.rise} checks"
        return Decision(
            s, [*notes, Fence(why=why)], f"two gateways: stopping the primary's ({until}): {why}"
        )
    early: list[Action] = []
    if keep:  # giving back earlier than configured: say so
        s, early = alert(s, "both_serving", cfg, now, reason=why)
        why = f"{why} (two bots)"
    else:  # the ordinary give-back: the primary's gateway is back by itself
        why = f"primary healthy for {_checks(n)}"
    s = replace(enter_role(s, Role.GIVING_BACK, now), manual_hold=False)
    return Decision(s, [*early, GiveBack(unfence=False, why=why)], f"giving back: {why}")


def _in_giving_back(s: State, obs: Observation, cfg: Config, now: float) -> Decision:
    r = obs.final
    if _primary_back(s, r.status, cfg, now):
        why = f"primary {r.status}"
        return Decision(s, [GiveBack(unfence=s.fenced, why=why)], f"retrying give-back: {why}")
    return _count_failure(s, obs, cfg, now, waiting="give-back pending")


def _manual_takeover(s: State, r: ProbeResult, cfg: Config, now: float) -> Decision:
    if s.role is Role.FAILOVER:
        return Decision(replace(s, manual_hold=True), [], "no action: already serving")
    if r.status in (ProbeStatus.AUTH_FAILED, ProbeStatus.PROBE_ERROR):
        return Decision(
            s,
            [],
            f"refused: cannot check the primary ({r.status}: {r.detail}), so taking over "
            "could run two gateways",
            refused=True,
        )
    # The user's explicit word: a slow gateway over working SSH may be stopped too.
    fence = r.status.ssh_ok and cfg.primary.gateway.stop_command is not None
    if r.status is ProbeStatus.HEALTHY and not fence:
        return Decision(
            s,
            [],
            "refused: the primary's gateway is healthy and primary.gateway.stop_command is "
            "not set, so taking over would run two gateways",
            refused=True,
        )
    s = replace(enter_role(s, Role.TAKING_OVER, now), manual_hold=True, failed_ticks=0)
    why = f"manual takeover (primary {r.status})"
    return Decision(s, [TakeOver(fence=fence, why=why, strict=True)], f"taking over: {why}")


def _manual_release(s: State, r: ProbeResult, cfg: Config, now: float) -> Decision:
    if s.role is Role.PRIMARY:
        return Decision(s, [], "no action: the primary already serves")
    fenced_ok = s.fenced and r.status.ssh_ok and cfg.primary.gateway.start_command is not None
    if not (r.status is ProbeStatus.HEALTHY or fenced_ok):
        return Decision(
            s,
            [],
            f"refused: the primary is not ready ({r.status}: {r.detail}); not giving back",
            refused=True,
        )
    s = replace(enter_role(s, Role.GIVING_BACK, now), manual_hold=False)
    return Decision(
        s, [GiveBack(unfence=s.fenced, why="manual release")], "giving back: manual release"
    )

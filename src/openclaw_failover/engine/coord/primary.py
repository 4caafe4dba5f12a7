"""``ocf check`` / ``ocf watch`` on the primary itself (``coordination.mode: primary``).

No SSH, no takeover: the primary holds the leader key while its own gateway (the
``standby.gateway`` section describes the gateway of the host ocf runs on) answers,
releases it when the gateway is down, and fences itself (stops its own gateway) when it
could not refresh the key before the lease runs out; it starts the gateway again once
etcd answers.  Every step is an event; taking the key and fencing itself are notices.
The check (``tick``) queues the notices, delivers them and saves the state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.decide import Action, Notify
from openclaw_failover.core.leadership import Do, Facts, Verdict, choose
from openclaw_failover.engine.coord.etcd import EtcdError
from openclaw_failover.engine.coord.leader import LeaderView
from openclaw_failover.engine.coord.step import Coordinator, Event
from openclaw_failover.local.gateway import GatewayOutcome


class Gateway(Protocol):
    """What primary mode needs of the local gateway (gateway.LocalGateway has it)."""

    def is_up(self) -> bool: ...
    def start(self) -> GatewayOutcome: ...
    def stop(self) -> GatewayOutcome: ...


@dataclass
class PrimaryStep:
    reason: str
    ok: bool = True
    acted: bool = False
    steps: list[str] = field(default_factory=list)
    notices: list[Action] = field(default_factory=list)


def run_primary(
    cfg: Config,
    gateway: Gateway,
    *,
    mask: Masker,
    event: Event,
    now: float,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> PrimaryStep:
    coord = Coordinator(cfg, mask=mask, event=event, dry_run=dry_run, env=env)
    cc = coord.cc
    up = gateway.is_up()
    started = time.monotonic()
    view, error = coord.read()
    # The next check comes one interval after this one, which itself takes as long as
    # etcd took to answer (or to time out): the lease must outlive both.
    took = time.monotonic() - started
    facts = Facts(
        mode="primary", name=cc.name, now=now + took, ttl=cc.ttl, interval=cc.interval + took,
        on_loss=cc.on_coordinator_loss, etcd_error=error,
        holder=view.holder if view else None, serving=up,
        last_refresh=coord.saved.last_refresh, self_fenced=coord.saved.self_fenced,
    )  # fmt: skip
    verdict = choose(facts)
    coord.observed(view, error, verdict, now)
    step = PrimaryStep(verdict.reason or "no action: primary serving")
    step.notices += coord.loss_notices(error, verdict, now)
    step.ok = _act(coord, gateway, verdict, view, now, step, event)
    step.notices += coord.take_pending()
    if verdict.do is Do.FENCE_SELF and step.ok:
        step.notices.append(Notify("fenced_self", reason=verdict.reason, detail=cc.name))
    coord.save()
    up_now = gateway.is_up() if step.acted else up
    coord.heartbeat(now, "fenced" if coord.saved.self_fenced else "primary", up_now)
    return step


def _act(
    coord: Coordinator,
    gateway: Gateway,
    verdict: Verdict,
    view: LeaderView | None,
    now: float,
    step: PrimaryStep,
    event: Event,
) -> bool:
    """Run the verdict; False when an action failed."""
    do = verdict.do
    if do is Do.REFRESH:
        return coord.refresh_key(view, now)
    if do is Do.ACQUIRE:
        won = coord.acquire_key(now, verdict.reason)
        if won and coord.saved.self_fenced:  # fenced before: start only now, holding the key
            return _act(coord, gateway, Verdict(Do.START_SELF, ""), view, now, step, event)
        return True
    if do is Do.RELEASE and not coord.dry_run:
        coord.stop_guard()  # first: a deliberate release must not stop the gateway
        try:
            released = coord.lead.release()
        except EtcdError as exc:
            event("leader", action="release", ok=False, error=str(exc))
            return False
        event("leader", action="release", ok=released, reason="primary's gateway down")
        coord.saved.holder = None
        return True
    if do in (Do.FENCE_SELF, Do.START_SELF) and not coord.dry_run:
        step.acted = True
        if do is Do.FENCE_SELF:
            coord.stop_guard()
        outcome = gateway.stop() if do is Do.FENCE_SELF else gateway.start()
        step.steps += outcome.steps
        event("self", action=str(do), ok=outcome.ok, steps=outcome.steps)
        if outcome.ok or do is Do.START_SELF:  # a failed start: down, not fenced (a
            coord.saved.self_fenced = do is Do.FENCE_SELF  # standby may take over then)
        if outcome.ok and do is Do.START_SELF and view and view.holder == coord.cc.name:
            coord.refresh_key(view, now)  # the key outlived our fence: keep it, guard it
        return outcome.ok
    return True

"""One coordination step per check: facts from etcd, the policy's verdict, its effect.

The check (``tick``) creates a :class:`Coordinator` only when ``coordination:`` is
configured.  On a standby it calls :meth:`Coordinator.gate` between ``decide`` and the
actions (a takeover happens only after this host took the leader key; without an etcd
quorum no role changes) and :meth:`Coordinator.after` once they ran (release the key
after a give-back).  What must outlive the process (the last refresh, since when the
key was seen free, since when etcd was lost) is kept in ``state_dir/coord.json``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.decide import Action, Decision, GiveBack, Notify, TakeOver
from openclaw_failover.core.leadership import Do, Facts, Verdict, choose
from openclaw_failover.core.model import Observation
from openclaw_failover.core.state import Role, State
from openclaw_failover.engine.coord import guard
from openclaw_failover.engine.coord.etcd import EtcdClient, EtcdError
from openclaw_failover.engine.coord.leader import Leadership, LeaderView, client_for
from openclaw_failover.local import safefs

log = logging.getLogger(__name__)
Event = Callable[..., None]
SERVING = (Role.TAKING_OVER, Role.FAILOVER)


@dataclass
class Saved:
    """coord.json: what one check tells the next about the leader key."""

    last_refresh: float | None = None
    free_since: float | None = None
    lost_since: float | None = None
    holder: str | None = None
    self_fenced: bool = False


class Coordinator:
    def __init__(
        self,
        cfg: Config,
        *,
        mask: Masker,
        event: Event,
        dry_run: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        assert cfg.coordination is not None
        self.env = os.environ if env is None else env
        self.cfg = cfg
        self.cc = cfg.coordination
        self.event = event
        self.dry_run = dry_run
        self.client = client_for(cfg, mask)
        self.lead = Leadership(self.client, self.cc.prefix, self.cc.name, self.cc.ttl)
        self.path = cfg.state_dir / "coord.json"
        self.saved = self._load()
        stopped = cfg.state_dir / guard.STOPPED
        if stopped.exists() and not dry_run:  # our guard fenced our gateway meanwhile
            self.saved.self_fenced = self.cc.mode == "primary"
            self.event("guard_seen", reason="the leader guard stopped this host's gateway")
            self.save()
            stopped.unlink(missing_ok=True)
        self._pending: list[Notify] = []  # leader_changed, queued by the next gate/after

    # ------------------------------------------------------------------ facts

    def read(self) -> tuple[LeaderView | None, str | None]:
        """The leader key (a linearizable read), or why etcd cannot be asked."""
        try:
            return self.lead.read(), None
        except EtcdError as exc:
            return None, str(exc)

    def higher_priority_alive(self, now: float) -> str | None:
        """A standby with a higher priority whose heartbeat is younger than the TTL."""
        for member in self.members():
            if member.get("name") == self.cc.name or member.get("mode") != "standby":
                continue
            fresh = now - float(member.get("at") or 0) <= self.cc.ttl
            if fresh and int(member.get("priority") or 0) > self.cc.priority:
                return str(member.get("name"))
        return None

    def primary_waiting(self, now: float) -> bool:
        """The primary's ocf fenced itself and is alive (a heartbeat younger than the TTL)."""
        return any(
            m.get("mode") == "primary"
            and m.get("role") == "fenced"
            and now - float(m.get("at") or 0) <= self.cc.ttl
            for m in self.members()
        )

    def members(self) -> list[dict[str, Any]]:
        return self.members_of(self.client, self.cc.prefix)

    @staticmethod
    def members_of(client: EtcdClient, prefix: str) -> list[dict[str, Any]]:
        """The heartbeats under ``<prefix>/members/`` (odd values skipped)."""
        out = []
        for kv in client.get_prefix(prefix.rstrip("/") + "/members/"):
            try:
                data = json.loads(kv.value)
            except ValueError:
                continue
            if isinstance(data, dict):
                out.append(data)
        return out

    def heartbeat(self, now: float, role: str, gateway_up: bool | None) -> None:
        """members/<name>: what ``ocf cluster`` lists (never fails the check)."""
        if self.dry_run:
            return
        db = self.cfg.database
        record = {"name": self.cc.name, "mode": self.cc.mode, "priority": self.cc.priority,
                  "role": role, "gateway": gateway_up, "at": round(now, 3),
                  "subscription": db.subscription if db and self.cc.mode == "standby" else None}  # fmt: skip
        try:
            self.client.put(f"{self.cc.prefix.rstrip('/')}/members/{self.cc.name}",
                            json.dumps(record))  # fmt: skip
        except EtcdError as exc:
            log.debug("heartbeat not written: %s", exc)

    # ------------------------------------------------------------------ standby

    def gate(
        self, state: State, obs: Observation, decision: Decision, now: float, manual: bool = False
    ) -> Decision:
        """The plain decision, allowed, vetoed or replaced by what the leader key says.
        ``manual``: `ocf takeover` / `ocf release`: a vetoed takeover is refused (exit 1);
        a release goes ahead without etcd (stopping our gateway is always safe)."""
        serving = state.role in SERVING
        wants = not serving and any(isinstance(a, TakeOver) for a in decision.actions)
        view, error = self.read()
        holder = view.holder if view else None
        higher, waiting = None, False
        if wants and error is None:
            higher = self._safe(lambda: self.higher_priority_alive(now))
        ours = view is not None and view.holder == self.cc.name
        if error is None and ((serving and ours) or wants):
            waiting = bool(self._safe(lambda: self.primary_waiting(now)))
        facts = Facts(
            mode="standby", name=self.cc.name, now=now, ttl=self.cc.ttl,
            interval=self.cc.interval, on_loss=self.cc.on_coordinator_loss,
            etcd_error=error, holder=holder,
            ttl_left=view.ttl_left if view else None, serving=serving,
            wants_takeover=wants, primary_failed=obs.final.status.is_failure,
            last_refresh=self.saved.last_refresh,
            free_since=self.saved.free_since, priority=self.cc.priority,
            higher_priority_alive=higher, delay=self.cc.priority_delay,
            primary_waiting=waiting,
            auto_failback=self.cfg.check.failback == "auto" and not state.manual_hold,
        )  # fmt: skip
        verdict = choose(facts)
        self.observed(view, error, verdict, now)
        notes = self.loss_notices(error, verdict, now)
        out = self._apply(state, decision, verdict, view, now, manual)
        self.saved.free_since = verdict.free_since
        self.save()
        self.heartbeat(now, _member_role(out.state.role), obs.local_up)
        return replace(out, actions=[*notes, *self.take_pending(), *out.actions])

    def _apply(
        self,
        state: State,
        decision: Decision,
        v: Verdict,
        view: LeaderView | None,
        now: float,
        manual: bool = False,
    ) -> Decision:
        if v.do in (Do.PROCEED, Do.TWO_NODE):
            return decision
        if v.do is Do.HOLD:
            giving_back = any(isinstance(a, GiveBack) for a in decision.actions)
            if decision.state.role != state.role and not (manual and giving_back):
                return _veto(state, decision, v.reason)
            return decision
        if v.do is Do.HOLD_DOWN:  # no restart of a gateway whose lease ran out
            return _veto(state, decision, v.reason)
        if v.do is Do.VETO:
            return _veto(state, decision, v.reason)
        if v.do is Do.GIVE_BACK:
            self.stop_guard()
            s = replace(decision.state, role=Role.GIVING_BACK, since=now)
            return Decision(
                s, [GiveBack(unfence=state.fenced, why=v.reason)], f"giving back: {v.reason}"
            )
        if v.do is Do.REFRESH and self.refresh_key(view, now):
            return decision
        if v.do is Do.ACQUIRE and self.acquire_key(now, v.reason):
            return decision
        if state.role in SERVING:  # lost the key (or another holds it): stop serving
            self.stop_guard()
            why = f"{self.cc.name} lost the leader key"
            s = replace(decision.state, role=Role.GIVING_BACK, since=now)
            return Decision(s, [GiveBack(unfence=state.fenced, why=why)], f"stepping down: {why}")
        return _veto(state, decision, "not taking over: another standby took the leader key")

    def after(self, before: State, after: State, now: float) -> list[Notify]:
        """Release the key once this standby no longer serves (after a give-back, an
        aborted takeover or a step-down): the last step, so the primary takes it then."""
        if after.role is not Role.PRIMARY or before.role is Role.PRIMARY:
            return []
        view, error = self.read()
        facts = Facts(mode="standby", name=self.cc.name, now=now, ttl=self.cc.ttl,
                      interval=self.cc.interval, etcd_error=error,
                      holder=view.holder if view else None, gave_back=True)  # fmt: skip
        verdict = choose(facts)
        if verdict.do is Do.RELEASE and not self.dry_run:
            self.stop_guard()  # first: a deliberate release must not stop the gateway
            released = self._safe(self.lead.release)
            self.event("leader", action="release", ok=bool(released), reason=verdict.reason)
            self.saved.holder = None if released else self.saved.holder
            self.save()
        return []

    # ------------------------------------------------------------------ key actions

    def refresh_key(self, view: LeaderView | None, now: float) -> bool:
        if self.dry_run:
            return True
        try:
            after = self.lead.refresh(view)
        except EtcdError as exc:
            self.event("leader", action="refresh", ok=False, error=str(exc))
            return False
        if after.holder == self.cc.name:
            self.saved.last_refresh = now
            self.start_guard(after.lease)
            return True
        self.event("leader", action="refresh", ok=False, error="the lease had expired")
        return False

    def acquire_key(self, now: float, reason: str) -> bool:
        if self.dry_run:
            return True
        try:
            got = self.lead.acquire()
        except EtcdError as exc:
            self.event("leader", action="acquire", ok=False, error=str(exc))
            return False
        self.event("leader", action="acquire", ok=got.won, holder=got.view.holder, reason=reason)
        if got.won:
            self.saved.last_refresh, self.saved.holder = now, self.cc.name
            self.start_guard(got.view.lease)
            self._pending.append(Notify("leader_changed", reason=reason, detail=self.cc.name))
        return got.won

    def start_guard(self, lease: int) -> None:
        """The watchdog that stops our gateway if our lease ends (see coord.guard)."""
        config = Path(self.cfg.source)
        if self.dry_run or not lease:
            return
        if not config.is_file():
            log.warning("no leader guard: the config %s is not a file", self.cfg.source)
            return
        try:
            guard.start(str(config.absolute()), lease, self.cfg.state_dir, self.env)
        except OSError as exc:
            log.warning("leader guard not started: %s", exc)
            self.event("guard", ok=False, error=str(exc))

    def stop_guard(self) -> None:
        if not self.dry_run:
            guard.stop(self.cfg.state_dir)

    def take_pending(self) -> list[Notify]:
        out, self._pending = self._pending, []
        return out

    # ------------------------------------------------------------------ bookkeeping

    def observed(
        self, view: LeaderView | None, error: str | None, verdict: Verdict, now: float
    ) -> None:
        holder = view.holder if view else None
        if error is None and holder != self.saved.holder:
            self.event("leader_seen", was=self.saved.holder, holder=holder)
            self.saved.holder = holder
        if verdict.reason:
            self.event("coordination", do=str(verdict.do), reason=verdict.reason)

    def loss_notices(self, error: str | None, verdict: Verdict, now: float) -> list[Notify]:
        """One notice when etcd is lost (and what ocf does about it), none while it stays lost."""
        if error is None:
            if self.saved.lost_since is not None:
                self.event("coordination_back", lost_for=round(now - self.saved.lost_since, 1))
            self.saved.lost_since = None
            return []
        if self.saved.lost_since is not None:
            return []
        self.saved.lost_since = now
        return [Notify("coordinator_lost", reason=verdict.reason, detail=self.cc.name)]

    def _safe(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except EtcdError as exc:
            log.warning("etcd: %s", exc)
            return None

    def _load(self) -> Saved:
        try:
            data = json.loads(safefs.read_bytes(self.path, 64 * 1024))
            return Saved(**{k: v for k, v in data.items() if k in Saved.__dataclass_fields__})
        except (OSError, ValueError, TypeError, AttributeError):
            return Saved()

    def save(self) -> None:
        if not self.dry_run:
            safefs.write_atomic(self.path, json.dumps(asdict(self.saved)).encode())


def _veto(state: State, decision: Decision, reason: str) -> Decision:
    """The plain decision without its role change and actions (its counters kept); a
    manual takeover (`ocf takeover`) vetoed is refused."""
    kept = replace(decision.state, role=state.role, since=state.since)
    notes: list[Action] = [a for a in decision.actions if isinstance(a, Notify)]
    manual = any(isinstance(a, TakeOver) and a.strict for a in decision.actions)
    return Decision(kept, notes, reason, refused=decision.refused or manual)


def _member_role(role: Role) -> str:
    """A standby's role as ``ocf cluster`` shows it (``primary`` there would mislead)."""
    return {Role.PRIMARY: "replica", Role.FAILOVER: "serving"}.get(role, str(role))

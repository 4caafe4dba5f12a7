"""One tick: lock -> observe -> decide -> act -> persist -> notify.

The state is persisted right after ``decide`` (the intent: a tick killed while
acting is resumed by the next one from ``taking_over`` / ``giving_back``),
again after each action, and after each notice Telegram accepted (so a notice
is never sent twice).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.decide import (
    Action,
    Decision,
    Notify,
    decide,
    should_ask_witnesses,
    should_retry,
)
from openclaw_failover.core.model import Notice, Observation, ProbeResult, WitnessReport
from openclaw_failover.core.results import FenceResult, GiveBackResult, Result, TakeoverResult
from openclaw_failover.core.settle import settle
from openclaw_failover.core.state import State
from openclaw_failover.engine.lock import Busy, DeadlineExceeded, deadline, exclusive
from openclaw_failover.engine.store import FENCE_MARKER, StateStore
from openclaw_failover.notify import telegram as notify

if TYPE_CHECKING:
    from openclaw_failover.core import events as ev

if TYPE_CHECKING:
    from openclaw_failover.engine.coord.step import Coordinator

log = logging.getLogger(__name__)


SLOW_RETRY_FACTOR = 2.0  # a probe retried after a slow one gets this much more time per step


def patient(cfg: Config) -> Config:
    """``cfg`` with the SSH and HTTP budgets of one probe multiplied by SLOW_RETRY_FACTOR."""
    ssh = cfg.primary.ssh
    primary = replace(
        cfg.primary, ssh=replace(ssh, connect_timeout=ssh.connect_timeout * SLOW_RETRY_FACTOR)
    )
    check = replace(cfg.check, probe_timeout=cfg.check.probe_timeout * SLOW_RETRY_FACTOR)
    return replace(cfg, primary=primary, check=check)


def _differs(old: State, new: State) -> bool:
    """More changed than the tick's time, sentence and probe timing (``ocf watch`` saves
    such a quiet tick only once per ``check.interval``: an SD card lives longer)."""

    def core(s: State) -> State:
        probe = (s.last_probe or {}).get("status")
        return replace(s, last_probe={"status": probe}, last_tick_at=None, last_reason="")

    return core(old) != core(new)


class ExitStatus(enum.IntEnum):
    """Process exit codes: a tick returns one; cli.app._dispatch maps every exception to one."""

    OK = 0  # the tick ran (whatever it decided)
    ACTION_FAILED = 1  # an action failed, a manual request was refused, or the deadline hit
    CONFIG_ERROR = 2  # configuration or usage error


@dataclass
class TickResult:
    status: ExitStatus
    reason: str
    acted: bool = False
    state: State | None = None
    steps: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # texts queued this tick


@dataclass
class Tick:
    """Everything one tick needs; the I/O parts are injectable for tests."""

    cfg: Config
    env: Mapping[str, str]
    dry_run: bool = False
    request: str | None = None  # None | "takeover" | "release"
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    probe: Callable[[Config, Masker], ProbeResult] | None = None
    witnesses: Callable[[Config, Masker], WitnessReport | None] | None = None
    ping: bool = True  # ping monitoring.ping_url after this tick (ocf watch: once per interval)
    save_quiet: bool = True  # save even a tick that changed nothing but its time and sentence

    def __post_init__(self) -> None:
        self.mask = self.cfg.masker
        self._ends_at = time.monotonic() + self.cfg.check.deadline
        self.store = StateStore(self.cfg.state_dir)
        if self.probe is None:
            from openclaw_failover.primary.probe import probe_primary

            self.probe = probe_primary
        if self.witnesses is None:
            from openclaw_failover.primary.witness import check_witnesses

            self.witnesses = check_witnesses
        from openclaw_failover.engine.actions import Actor

        self.actor = Actor(
            self.cfg,
            mask=self.mask,
            env=self.env,
            dry_run=self.dry_run,
            sleep=self.sleep,
            probe=self.probe,
        )

    # ------------------------------------------------------------------ pipeline

    def run(self, lock_wait: float = 0.0) -> TickResult:
        if self.dry_run:  # a dry run writes nothing, so it needs no lock
            return self._guarded()
        try:
            with exclusive(self.cfg.state_dir, wait=lock_wait):
                started = time.monotonic()
                result = self._guarded()
                self._monitor(result, time.monotonic() - started)
                return result
        except Busy:
            log.info("another check is running")
            status = ExitStatus.ACTION_FAILED if self.request else ExitStatus.OK
            return TickResult(status, "another check is running")

    def _monitor(self, result: TickResult, seconds: float) -> None:
        """Metrics textfile and the dead-man's-switch ping: after the state is saved,
        outside the deadline; neither can fail the check."""
        mon = self.cfg.monitoring
        if mon.metrics_textfile is not None:
            from openclaw_failover.monitor import metrics

            state = result.state or self.store.load()[0] or State()
            replication = None
            if self.cfg.database is not None:  # opted in to metrics: worth two connections
                from openclaw_failover.monitor.replstatus import replication_health

                replication = replication_health(self.cfg)
            metrics.write_textfile(
                mon.metrics_textfile,
                state,
                tick_seconds=seconds,
                exit_status=int(result.status),
                replication=replication,
                now=self.clock(),
                events_path=self.store.events_path,
            )
        if mon.ping_url and self.request is None and self.ping:  # the scheduled checks
            from openclaw_failover.monitor import ping

            line = ping.ping(
                mon.ping_url,
                ok=result.status is ExitStatus.OK,
                timeout=mon.ping_timeout,
                mask=self.mask,
            )
            (log.debug if ping.succeeded(line) else log.warning)("%s", line)

    def _guarded(self) -> TickResult:
        self._ends_at = time.monotonic() + self.cfg.check.deadline
        try:
            with deadline(self.cfg.check.deadline):
                return self._tick()
        except DeadlineExceeded as exc:
            from openclaw_failover.core import events as ev  # not on a healthy tick

            log.error("%s", exc)
            self._event(ev.DeadlineHit(str(exc)))
            return TickResult(ExitStatus.ACTION_FAILED, str(exc))

    def _tick(self) -> TickResult:
        coord = self._coordinator()  # None unless coordination: is configured
        if coord is not None and coord.cc.mode == "primary":
            return self._primary_tick()
        loaded, warning = self.store.load()
        obs = self.observe(loaded)
        now = self.clock()
        state = loaded if loaded is not None else self._reconciled(warning, obs, now)
        before = state
        decision = decide(state, obs, self.cfg, now, self.request)
        if coord is not None:  # the leader key allows, vetoes or replaces the decision
            decision = coord.gate(state, obs, decision, now, manual=self.request is not None)
        self._probe_changed(state, obs)
        result = TickResult(ExitStatus.OK, decision.reason, state=decision.state)
        if decision.refused:
            result.status = ExitStatus.ACTION_FAILED
        # Notices join the outbox before the state that caused them is saved, so a
        # tick killed from here on can never lose one.
        new = self._queue(decision.state, decision.actions, now)
        # The transition is logged, then saved (write-ahead): a check killed in between
        # leaves one event the next check repeats, never a transition missing from the log.
        state = self._transition(state, new, decision.reason)
        if decision.actions:  # the intent first: a tick killed while acting is resumed
            self._persist(state)
        state = self._act(state, decision, result)
        if coord is not None:  # release the key once we no longer serve: the last step
            state = self._queue(state, coord.after(before, state, self.clock()), now)
        state = self._deliver(state)
        state.last_reason = result.reason
        if self.save_quiet or loaded is None or _differs(loaded, state):
            self._persist(state)
        result.state = state
        self._log_reason(result)
        return result

    # ------------------------------------------------------------------ coordination

    def _coordinator(self) -> Coordinator | None:
        if self.cfg.coordination is None:
            return None
        from openclaw_failover.engine.coord.step import Coordinator  # etcd only when configured

        return Coordinator(
            self.cfg, mask=self.mask, event=self._coord_event, dry_run=self.dry_run, env=self.env
        )

    def _primary_tick(self) -> TickResult:
        """``coordination.mode: primary``: hold the leader key, or fence ourselves."""
        from openclaw_failover.engine.coord.primary import run_primary

        state = self.store.load()[0] or State()
        now = self.clock()
        step = run_primary(
            self.cfg, self.actor.local, mask=self.mask, event=self._coord_event, now=now,
            dry_run=self.dry_run, env=self.env,
        )  # fmt: skip
        status = ExitStatus.OK if step.ok else ExitStatus.ACTION_FAILED
        result = TickResult(status, step.reason, acted=step.acted, steps=step.steps)
        state = self._deliver(self._queue(state, step.notices, now))
        state = replace(state, last_reason=step.reason, last_tick_at=now)
        self._persist(state)
        result.state = state
        self._log_reason(result)
        return result

    # ------------------------------------------------------------------ stages

    def observe(self, state: State | None) -> Observation:
        """Probe the primary (with retries where it matters), the local gateway, and,
        when the verdict could start a takeover, the witnesses."""
        assert self.probe is not None and self.witnesses is not None
        attempts = [self.probe(self.cfg, self.mask)]
        while should_retry(state, attempts[-1]) and len(attempts) <= self.cfg.check.retries:
            log.info(
                "probe %d failed (%s: %s), retrying in %gs",
                len(attempts),
                attempts[-1].status,
                attempts[-1].detail,
                self.cfg.check.retry_delay,
            )
            self.sleep(self.cfg.check.retry_delay)
            cfg = patient(self.cfg) if attempts[-1].status.is_slow else self.cfg
            attempts.append(self.probe(cfg, self.mask))
        witnesses = None
        if should_ask_witnesses(state, attempts[-1], self.cfg):
            witnesses = self.witnesses(self.cfg, self.mask)
        return Observation(tuple(attempts), self.actor.local.is_up(), witnesses)

    def _reconciled(self, warning: str | None, obs: Observation, now: float) -> State:
        from openclaw_failover.engine import recovery

        local_up = obs.local_up if obs.local_up is not None else self.actor.local.is_up()
        facts = recovery.gather(self.cfg, local_up)
        return recovery.recover(self.cfg, self.store, warning, facts, now, dry_run=self.dry_run)

    def _act(self, state: State, decision: Decision, result: TickResult) -> State:
        for action in decision.actions:
            if isinstance(action, Notify):
                continue  # queued already
            result.acted = True
            started = time.monotonic()
            outcome = self.actor.run(action)
            now = self.clock()
            new, notes, reason = settle(state, action, outcome, self.cfg, now)
            result.steps += outcome.steps
            result.reason = reason
            if not outcome.ok:
                result.status = ExitStatus.ACTION_FAILED
            self._event(action_event(outcome, round(time.monotonic() - started, 3)))
            state = self._transition(state, self._queue(new, notes, now), reason)
            self._persist(state)
        result.notices = [n.text for n in state.outbox]
        return state

    def _queue(self, state: State, actions: Sequence[Action], now: float) -> State:
        """Render every Notify among ``actions`` into the state's outbox."""
        notices = [
            notify.new_notice(self.cfg, a.kind, reason=a.reason, detail=a.detail, now=now)
            for a in actions
            if isinstance(a, Notify)
        ]
        if not notices:
            return state
        from openclaw_failover.core import events as ev  # not on a healthy tick

        for notice in notices:
            self._event(ev.NoticeQueued(notice.kind, notice.id, notice.text))
        return replace(state, outbox=[*state.outbox, *notices])

    def _deliver(self, state: State) -> State:
        if not state.outbox:
            return state
        from openclaw_failover.core import events as ev  # not on a healthy tick

        if self.cfg.telegram is None:
            for notice in state.outbox:
                log.info("notice not sent (no telegram section): %s", notice.text)
                self._event(ev.NoticeDropped(notice.kind, notice.id, "no telegram"))
            return replace(state, outbox=[])
        left = self._ends_at - time.monotonic() - 1.0
        if left < 1.0:
            log.warning("no time left before the deadline to send notices; kept for the next check")
            return state
        telegram = replace(self.cfg.telegram, timeout=min(self.cfg.telegram.timeout, left / 4))
        cfg = replace(self.cfg, telegram=telegram)
        box = list(state.outbox)

        def on_sent(notice: Notice) -> None:
            box.remove(notice)
            self._event(ev.NoticeSent(notice.kind, notice.id))
            self._persist(replace(state, outbox=list(box)))

        report = notify.deliver(
            cfg,
            list(box),
            now=self.clock(),
            dry_run=self.dry_run,
            on_sent=on_sent,
            sleep=self.sleep,
        )
        for error in report.errors:
            log.warning("notification not sent, kept for the next check: %s", error)
            self._event(ev.NoticeFailed(error))
        return replace(state, outbox=list(report.remaining))

    # ------------------------------------------------------------------ persistence

    def _transition(self, old: State, new: State, reason: str) -> State:
        if old.role != new.role and self.dry_run:  # nothing happened: say what would
            log.info("dry run: would change role %s -> %s: %s", old.role, new.role, would(reason))
        elif old.role != new.role:
            from openclaw_failover.core import events as ev  # not on a healthy tick

            log.info("role %s -> %s: %s", old.role, new.role, reason)
            self._event(ev.Transition(str(old.role), str(new.role), reason))
        return new

    def _persist(self, state: State) -> None:
        if self.dry_run:
            return
        self.store.save(state)
        marker = self.cfg.state_dir / FENCE_MARKER  # exists exactly while fenced (see actions)
        if state.fenced:
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    def _coord_event(self, kind: str, **facts: Any) -> None:
        """coord/ reports ``kind`` and its facts; the log gets the typed event."""
        from openclaw_failover.core import events as ev  # only with coordination:

        self._event(ev.coord_event(kind, **facts))

    def _event(self, payload: ev.Payload) -> None:
        if not self.dry_run:
            self.store.append_event(payload)

    def _probe_changed(self, state: State, obs: Observation) -> None:
        """One event each time the probe's class changes (healthy -> slow -> unreachable
        ...): every class reaches `ocf history` without an event per check."""
        was = (state.last_probe or {}).get("status")
        final = obs.final
        if was != str(final.status):
            from openclaw_failover.core import events as ev  # only when it changed

            self._event(
                ev.ProbeChanged(None if was is None else str(was), str(final.status), final.detail)
            )

    def _log_reason(self, result: TickResult) -> None:
        if self.dry_run:
            result.reason = would(result.reason)
        prefix = "dry run: " if self.dry_run else ""
        log.info("%s%s", prefix, result.reason)
        if result.acted or result.status:
            from openclaw_failover.core import events as ev  # not on a healthy tick

            self._event(ev.TickDone(result.reason, int(result.status)))


def action_event(result: Result, duration: float) -> ev.Payload:
    """The typed event of one action's result (a give-back's carries its sync-back)."""
    from openclaw_failover.core import events as ev  # not on a healthy tick

    steps, ok, detail = tuple(result.steps), result.ok, result.detail
    if isinstance(result, GiveBackResult):
        return ev.GaveBack(ok, detail, steps, duration, sync=result.sync)
    if isinstance(result, TakeoverResult):
        return ev.TookOver(ok, detail, steps, duration, channels=result.channels)
    if isinstance(result, FenceResult):
        return ev.Fenced(ok, detail, steps, duration)
    return ev.RestartedLocal(ok, detail, steps, duration)


_WOULD = (
    ("took over", "would take over"),
    ("gave back", "would give back"),
    ("restarted", "would restart"),
)


def would(reason: str) -> str:
    """A dry run's sentence in the conditional: "took over: ..." -> "would take over: ..."."""
    for done, conditional in _WOULD:
        if reason.startswith(done):
            reason = conditional + reason[len(done) :]
            break
    return reason.replace("; primary's gateway fenced", "; would fence the primary's gateway")

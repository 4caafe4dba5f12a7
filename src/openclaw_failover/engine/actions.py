"""Carry out the state machine's actions: take over, give back, restart the local gateway.

Each action returns its own result type (:mod:`openclaw_failover.core.results`); it never
raises for an expected failure (a command that fails, a gateway that does not
come up).  Every step is listed in the result's ``steps`` for the events log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.core import choices
from openclaw_failover.core.decide import Action, Fence, GiveBack, RestartLocal, TakeOver
from openclaw_failover.core.model import CommandResult, ProbeResult, ProbeStatus
from openclaw_failover.core.results import (
    FenceResult,
    GiveBackResult,
    RestartResult,
    Result,
    TakeoverResult,
)
from openclaw_failover.core.results import GiveBackEnd as End
from openclaw_failover.engine.store import FENCE_MARKER
from openclaw_failover.local import safefs
from openclaw_failover.local.gateway import LocalGateway
from openclaw_failover.primary import remote

if TYPE_CHECKING:
    from openclaw_failover.local.readiness import Readiness
    from openclaw_failover.syncback.db.splitstart import TakeoverDb
    from openclaw_failover.syncback.report import SyncReport

log = logging.getLogger(__name__)

FENCE_SETTLE = 2.0  # seconds before checking that a fenced gateway stays down

RemoteRun = Callable[..., CommandResult]
Probe = Callable[[Config, Masker], ProbeResult]


@dataclass
class Actor:
    """Runs actions against the real world (or describes them, with ``dry_run``)."""

    cfg: Config
    mask: Masker
    env: Mapping[str, str]
    dry_run: bool = False
    sleep: Callable[[float], None] = time.sleep
    remote_run: RemoteRun = remote.run_remote
    probe: Probe | None = None
    gateway: LocalGateway | None = None
    # (url, seconds) -> Readiness; None: local.readiness.check_ready
    await_ready: Callable[[str, float], Readiness] | None = None

    def __post_init__(self) -> None:
        if self.gateway is None:
            self.gateway = LocalGateway(
                self.cfg, mask=self.mask, env=self.env, dry_run=self.dry_run
            )
        if self.probe is None:
            from openclaw_failover.primary.probe import probe_primary

            self.probe = probe_primary

    @property
    def local(self) -> LocalGateway:
        assert self.gateway is not None
        return self.gateway

    def run(self, action: Action) -> Result:
        if isinstance(action, TakeOver):
            return self.take_over(action)
        if isinstance(action, GiveBack):
            return self.give_back(action)
        if isinstance(action, RestartLocal):
            out = self.local.start()
            return RestartResult(out.ok, detail=_last(out.steps), steps=list(out.steps))
        if isinstance(action, Fence):
            steps: list[str] = []
            fenced = self._fence(steps)
            return FenceResult(fenced, detail=_last(steps), steps=steps)
        raise TypeError(f"not an executable action: {action!r}")

    # ------------------------------------------------------------------ take over

    def take_over(self, action: TakeOver) -> TakeoverResult:
        """(a) fence the primary, (b) start the local gateway, (c) wait until it answers."""
        steps: list[str] = []
        fenced = False
        if action.fence:
            fenced = self._fence(steps)
            problem = self._fence_problem(fenced, action.strict, steps)
            if problem:
                return TakeoverResult(False, aborted=True, detail=problem, steps=steps)
        pending = self._prepare_sync(steps)
        out = self.local.start()
        if pending is not None:  # the standby's keys were streamed while the gateway started
            steps.append(pending.finish())
        steps += out.steps
        if not out.ok:
            return TakeoverResult(False, fenced=fenced, detail=_last(out.steps), steps=steps)
        detail = f"local gateway up ({out.method})"
        channels = ""
        if not self.dry_run:
            ready = self._await_ready(out.duration)
            channels = ready.channel_problem(self.mask)
            line = self.mask(ready.line)
            steps.append(line + (f": {channels}" if channels else ""))
            if not ready.ready:
                detail += f"; {line}"
        return TakeoverResult(True, fenced=fenced, channels=channels, detail=detail, steps=steps)

    def _await_ready(self, spent: float) -> Readiness:
        """Readiness within what is left of start_timeout (at least 5 s)."""
        from openclaw_failover.local import readiness

        gw = self.cfg.standby.gateway
        left = max(gw.start_timeout - spent, 5.0)
        url = readiness.ready_url(gw)
        if self.await_ready is not None:
            return self.await_ready(url, left)
        return readiness.check_ready(url, left, mask=self.mask, sleep=self.sleep)

    def _fence(self, steps: list[str]) -> bool:
        command = self.cfg.primary.gateway.stop_command
        assert command is not None
        if not self.dry_run:  # before the stop: a lost state file must not forget it
            safefs.ensure_dir(self.cfg.state_dir)
            safefs.touch(self.cfg.state_dir / FENCE_MARKER)  # a symlink there is not followed
        res = self._remote(command)
        steps.append(f"fence primary: {res.summary()}")
        if not res.ok:
            log.warning("could not fence the primary's gateway: %s", res.summary())
        return res.ok and not self.dry_run

    def _fence_problem(self, fenced: bool, strict: bool, steps: list[str]) -> str:
        """Why the takeover must stop here, or "" to go on (core.choices decides)."""
        if self.dry_run:
            return ""
        after = None
        if fenced:  # does the fence hold?  Probe again once the stop settled.
            assert self.probe is not None
            self.sleep(FENCE_SETTLE)
            after = self.probe(self.cfg, self.mask)
            if after.status is ProbeStatus.HEALTHY:
                steps.append(f"primary's gateway answers again after fencing ({after.detail})")
            else:
                steps.append(f"fence holds: primary {after.status}")
        return choices.fence_verdict(strict=strict, fenced=fenced, after_fence=after)

    # ------------------------------------------------------------------ give back

    def give_back(self, action: GiveBack) -> GiveBackResult:
        """Stop the local gateway, sync back, then restart the primary's gateway if fenced.

        The bulk of the merge runs first, while this standby still serves (a
        long sync-back costs no downtime); the final pass after the stop only
        carries what was written in between.
        """
        steps: list[str] = []
        pre = self._sync(serving=True)
        if not pre.skipped:
            steps.append(f"while still serving: {pre.summary()}")
        stop = self.local.stop()
        steps += stop.steps
        if not stop.ok:
            return GiveBackResult(End.STOP_FAILED, detail=_last(stop.steps), steps=steps)
        try:
            final = self._sync()
        except BaseException:  # the tick's deadline: never leave nobody serving
            if choices.restore_local(unfence=action.unfence, unfenced=False):
                self.local.start()
            raise
        steps.append(final.summary())
        if pre.ok:
            final.absorb(pre)  # the notice counts both passes
        counts = final.counts()
        delay = choices.handoff_delay(self.cfg, unfence=action.unfence, dry_run=self.dry_run)
        if delay:  # Telegram's last long poll of ours expires first (no 409 Conflict)
            steps.append(f"handoff delay: {delay:g}s")
            self.sleep(delay)
        unfenced, detail = self._unfence(steps) if action.unfence else (False, "")
        if not choices.restore_local(unfence=action.unfence, unfenced=unfenced):
            end = End.DONE if final.ok else End.SYNC_FAILED
            return GiveBackResult(end, unfenced=unfenced, sync=counts, steps=steps)
        # Nobody would serve: start the local gateway again and keep serving.
        restart = self.local.start()
        steps += restart.steps
        end = End.RESTORED if restart.ok else End.NOBODY_SERVES
        return GiveBackResult(end, sync=counts, detail=detail, steps=steps)

    def _prepare_sync(self, steps: list[str]) -> TakeoverDb | None:
        """Before serving: stop applying the primary's changes, note the workspace files.

        Returns the database step still recording the standby's keys (joined
        once the local gateway was started)."""
        if self.dry_run:
            steps += ["would disable the subscription"] if self.cfg.database else []
            return None
        pending = None
        if self.cfg.database:
            from openclaw_failover.syncback.db import splitstart

            pending = splitstart.prepare(self.cfg, self.mask)
        if self.cfg.files:
            from openclaw_failover.syncback.files.sync import take_manifest

            try:
                steps.append(f"workspace manifest: {take_manifest(self.cfg)}")
            except OSError as exc:
                steps.append(f"could not record the workspace manifest: {exc.strerror or exc}")
        return pending

    def _sync(self, serving: bool = False) -> SyncReport:
        """Rows and files standby -> primary; ``serving``: merge only, no reconcile."""
        from openclaw_failover.syncback.run import sync_back

        return sync_back(self.cfg, mask=self.mask, dry_run=self.dry_run, serving=serving)

    def _unfence(self, steps: list[str]) -> tuple[bool, str]:
        assert self.probe is not None
        if self.dry_run:
            steps.append("would restart the primary's gateway")
            return True, ""
        if self.probe(self.cfg, self.mask).status is ProbeStatus.HEALTHY:
            steps.append("primary's gateway already answering")
            return True, ""
        command = self.cfg.primary.gateway.start_command
        if command is None:
            detail = (
                "primary.gateway.start_command is not set: cannot restart the fenced primary's "
                "gateway; start it by hand, then run 'ocf release'"
            )
            steps.append(detail)
            return False, detail
        res = self._remote(command)
        steps.append(f"restart primary's gateway: {res.summary()}")
        if not res.ok:
            return False, f"could not restart the primary's gateway ({res.summary()})"
        return self._wait_primary(steps)

    def _wait_primary(self, steps: list[str]) -> tuple[bool, str]:
        assert self.probe is not None
        timeout = self.cfg.standby.gateway.start_timeout
        end = time.monotonic() + timeout
        while True:
            result = self.probe(self.cfg, self.mask)
            if result.status is ProbeStatus.HEALTHY:
                steps.append(f"primary's gateway answering ({result.detail})")
                return True, ""
            if time.monotonic() >= end:
                detail = f"primary's gateway not answering after {timeout:g}s ({result.detail})"
                steps.append(detail)
                return False, detail
            self.sleep(1.0)

    def _remote(self, command: tuple[str, ...]) -> CommandResult:
        return self.remote_run(
            self.cfg,
            command,
            timeout=self.cfg.primary.ssh.command_timeout,
            mask=self.mask,
            dry_run=self.dry_run,
        )


def _last(steps: list[str]) -> str:
    return steps[-1] if steps else ""

"""The choices an action meets half-way, as pure functions: the actor reports what it
saw and does what these say.

``decide`` chooses which actions run; once one runs, a few forks depend on what
the world answered in between (did the fence hold? did the primary's gateway
come back?).  Those forks are decided here, not in ``engine.actions``, so every
choice of ocf lives in ``core`` and is unit-tested without I/O.
"""

from __future__ import annotations

from openclaw_failover.config.loader import Config
from openclaw_failover.core.model import ProbeResult, ProbeStatus

NO_FENCE = "could not stop the primary's gateway; not taking over (two gateways)"
FENCE_UNDONE = (
    "the primary's gateway answers again after stop_command (restarted by "
    "launchd KeepAlive? use the disabling form); not taking over"
)


def fence_verdict(*, strict: bool, fenced: bool, after_fence: ProbeResult | None) -> str:
    """Why a takeover must stop after its fence step, or "" to go on.

    A manual takeover (``strict``) needs the fence.  Any fence must hold: a gateway
    that answers again (macOS KeepAlive restarting it) would make two.  An automatic
    takeover whose fence failed goes on: the primary is gone, which is why we act.
    ``after_fence`` is the probe made after a successful fence (None when not fenced).
    """
    if not fenced:
        return NO_FENCE if strict else ""
    if after_fence is not None and after_fence.status is ProbeStatus.HEALTHY:
        return FENCE_UNDONE
    return ""


def handoff_delay(cfg: Config, *, unfence: bool, dry_run: bool) -> float:
    """Seconds to wait between stopping our gateway and restarting the primary's.

    Telegram may still hold our last long poll: waiting lets it expire before the
    primary's gateway polls, so neither gets a 409 Conflict.  Only when we restart
    the primary's gateway ourselves (``unfence``), never in a dry run.
    """
    return cfg.check.handoff_delay if unfence and not dry_run else 0.0


def restore_local(*, unfence: bool, unfenced: bool) -> bool:
    """After our gateway stopped: start it again (undo the give-back)?

    Yes when we were to restart the primary's gateway and could not: otherwise
    nobody would serve.  Also the answer when the give-back was interrupted
    (``unfenced`` False) after our gateway stopped.
    """
    return unfence and not unfenced

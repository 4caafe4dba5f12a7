"""The forks inside an action are chosen by core.choices, not by the actor."""

from __future__ import annotations

from dataclasses import replace

import pytest

from openclaw_failover.core.choices import (
    FENCE_UNDONE,
    NO_FENCE,
    fence_verdict,
    handoff_delay,
    restore_local,
)
from openclaw_failover.core.model import ProbeResult, ProbeStatus
from tests.unit.test_decide import make_cfg


def probe(status: ProbeStatus) -> ProbeResult:
    return ProbeResult(status, 0.01, str(status))


@pytest.mark.parametrize(
    ("strict", "fenced", "after", "verdict"),
    [
        (True, False, None, NO_FENCE),  # manual takeover without a fence: two gateways
        (False, False, None, ""),  # automatic: the primary is gone, go on
        (False, True, probe(ProbeStatus.REFUSED), ""),  # the fence holds
        (True, True, probe(ProbeStatus.UNREACHABLE), ""),
        (False, True, probe(ProbeStatus.HEALTHY), FENCE_UNDONE),  # KeepAlive restarted it
        (True, True, probe(ProbeStatus.HEALTHY), FENCE_UNDONE),
    ],
)
def test_fence_verdict(strict: bool, fenced: bool, after: ProbeResult | None, verdict: str) -> None:
    assert fence_verdict(strict=strict, fenced=fenced, after_fence=after) == verdict


def test_handoff_delay_only_when_we_restart_the_primary_for_real() -> None:
    cfg = make_cfg()
    cfg = replace(cfg, check=replace(cfg.check, handoff_delay=7.0))
    assert handoff_delay(cfg, unfence=True, dry_run=False) == 7.0
    assert handoff_delay(cfg, unfence=False, dry_run=False) == 0.0
    assert handoff_delay(cfg, unfence=True, dry_run=True) == 0.0


@pytest.mark.parametrize(
    ("unfence", "unfenced", "restore"),
    [(True, False, True), (True, True, False), (False, False, False)],
)
def test_restore_local_only_when_nobody_would_serve(
    unfence: bool, unfenced: bool, restore: bool
) -> None:
    assert restore_local(unfence=unfence, unfenced=unfenced) is restore

"""`ocf doctor`'s witnesses group: can this standby tell that it is not the one cut off?"""

from __future__ import annotations

from openclaw_failover.ops.doctor.base import DoctorContext, Sink
from openclaw_failover.primary.witness import check_witnesses


def doctor_witnesses(ctx: DoctorContext, out: Sink) -> None:
    """`ocf doctor`: ask every witness now and compare with the quorum."""
    check = ctx.cfg.check
    if not check.witnesses:
        out.skip(
            "no check.witnesses: a standby cut off from everything would still take over",
            'set check.witnesses (the LAN router, api.telegram.org:443); see README "Isolation"',
        )
        return
    report = check_witnesses(ctx.cfg, ctx.mask)
    assert report is not None
    for witness in report.answered:
        out.ok(f"witness {witness} answers")
    for witness, why in report.failed:
        out.warn(f"witness {witness} does not answer: {why}", "check the address and firewall")
    line = f"{len(report.answered)}/{report.total} witnesses answer, quorum {check.witness_quorum}"
    if len(report.answered) >= check.witness_quorum:
        out.ok(f"{line}: a takeover is allowed")
    else:
        out.fail(
            f"{line}: this standby counts itself isolated and would NOT take over",
            "fix the witnesses (or the network), or lower check.witness_quorum",
        )

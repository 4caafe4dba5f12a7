"""`ocf doctor`: check the whole setup, one line per check, with the fix for each problem.

Checks run in groups, in this order: config, ssh, gateway (local), database,
rsync, telegram, schedule, monitoring.  Every check has a stable ``id``
(``GROUP.CHECK``, e.g. ``schedule.check_schedule``) in ``--json``.  The groups run at the same time, each in a thread
of its own with a time budget (and every operation inside has its own
timeout); a group that crashes or overruns its budget becomes one FAIL line
and never stops the others.  The report keeps the order above whatever
finishes first.

Every text goes through one masker (the config's secrets, also URL-encoded)
before it is stored, so neither ``render()`` nor ``to_json()`` can show a
token or a password.  Nothing here changes anything, except ``--send-test``,
which sends one Telegram message.

The shared pieces (report, Sink, context, the config group) live in ``base``;
the groups in ``ssh`` (ssh, rsync), ``local`` (gateway, schedule), ``version``,
``db`` (database, from replstatus's facts), ``telegram``, ``network``
(witnesses) and ``monitoring``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from openclaw_failover.config.loader import Config
from openclaw_failover.engine.store import StateStore
from openclaw_failover.ops.doctor import db as doctor_db
from openclaw_failover.ops.doctor import local as doctor_local
from openclaw_failover.ops.doctor import monitoring as doctor_monitoring
from openclaw_failover.ops.doctor import network
from openclaw_failover.ops.doctor import ssh as doctor_ssh
from openclaw_failover.ops.doctor import telegram as doctor_telegram
from openclaw_failover.ops.doctor import version as doctor_version
from openclaw_failover.ops.doctor.base import (
    BUG_FIX,
    Check,
    DoctorContext,
    DoctorReport,
    GroupFn,
    Sink,
    check_config,
)

__all__ = ["Check", "DoctorContext", "DoctorReport", "Sink", "groups", "run_doctor"]

log = logging.getLogger(__name__)


def run_doctor(
    cfg: Config,
    *,
    env: Mapping[str, str],
    config_path: Path,
    send_test: bool = False,
    now: float | None = None,
) -> DoctorReport:
    """Run every check; never raises for a failed check (each becomes a line)."""
    state, warning = StateStore(cfg.state_dir).load()
    ctx = DoctorContext(
        cfg=cfg,
        env=env,
        config_path=config_path,
        send_test=send_test,
        now=time.time() if now is None else now,
        mask=cfg.masker,
        state=state,
        state_warning=warning,
    )
    started = []
    for name, fn, budget in groups(ctx):
        sink = Sink(name, ctx.mask)
        thread = threading.Thread(
            target=_guarded, args=(fn, ctx, sink), name=f"ocf-doctor-{name}", daemon=True
        )
        thread.start()
        started.append((sink, thread, time.monotonic() + budget, budget))
    report = DoctorReport()
    for sink, thread, ends_at, budget in started:
        thread.join(max(ends_at - time.monotonic(), 0.0))
        if thread.is_alive():
            sink.add(
                "FAIL",
                f"checks did not finish within {budget:g}s (something hangs)",
                "run `ocf -vv doctor` to see where it stops; " + BUG_FIX,
                id="timeout",
            )
        report.checks += sink.close()
    return report


def _guarded(fn: GroupFn, ctx: DoctorContext, sink: Sink) -> None:
    try:
        fn(ctx, sink)
    except Exception as exc:
        log.debug("doctor check %s crashed", sink.name, exc_info=True)
        sink.add("FAIL", f"check crashed: {type(exc).__name__}: {exc}", BUG_FIX, id="crashed")


def groups(ctx: DoctorContext) -> list[tuple[str, GroupFn, float]]:
    """(name, function, seconds it may take), in report order."""

    cfg = ctx.cfg
    ssh_budget = doctor_ssh.budget(cfg)
    db_budget = 4 * cfg.database.connect_timeout + 25 if cfg.database else 5.0
    tg_budget = 4 * cfg.telegram.timeout + 5 if cfg.telegram else 5.0
    return [
        ("config", check_config, 5.0),
        ("ssh", doctor_ssh.check_ssh, ssh_budget),
        ("gateway", doctor_local.check_gateway, 3 * doctor_local.LOCAL_TIMEOUT + 2),
        ("openclaw", doctor_version.check_versions, doctor_version.budget(ctx)),
        ("database", doctor_db.check_database, db_budget),
        ("rsync", doctor_ssh.check_rsync, ssh_budget + 5),
        ("telegram", doctor_telegram.check_telegram, tg_budget),
        ("schedule", doctor_local.check_schedule, 4 * doctor_local.LOCAL_TIMEOUT + 2),
        ("witnesses", network.doctor_witnesses, cfg.check.witness_timeout + 3),
        ("monitoring", doctor_monitoring.check_monitoring, cfg.monitoring.ping_timeout + 5),
        *_coordination(ctx),
    ]


def _coordination(ctx: DoctorContext) -> list[tuple[str, GroupFn, float]]:
    """The etcd checks, only with a coordination: section (the import only then)."""
    if ctx.cfg.coordination is None:
        return []
    from openclaw_failover.ops.doctor import coordination as coord_doctor

    return [("coordination", coord_doctor.check_coordination, coord_doctor.budget(ctx))]

"""`ocf status`: gather what is known (never acting) and render it."""

from __future__ import annotations

import time
from typing import Any

from openclaw_failover.config.loader import Config
from openclaw_failover.core.events import (
    ACTION_NAMES,
    DeadlineHit,
    Event,
    GaveBack,
    NoticeDropped,
    NoticeQueued,
    NoticeSent,
    SyncedBack,
    TickDone,
    Transition,
    parse_event,
)
from openclaw_failover.core.state import State
from openclaw_failover.engine.store import StateStore


def _iso(ts: Any) -> str | None:
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    except (OverflowError, OSError, ValueError):  # NaN or 1e300 from an odd file
        return None


def _line(value: Any) -> str:
    """A value from a file, on one line (a newline in it cannot fake a line)."""
    return " ".join(str(value).split())


def collect(
    cfg: Config,
    state: State | None,
    warning: str | None,
    local_up: bool,
    store: StateStore,
    *,
    now: float,
    events: int = 8,
) -> dict[str, Any]:
    """Everything `ocf status` shows, as a JSON-ready dict (no secrets in it)."""
    s = state or State()
    return {
        "role": str(s.role) if state else "unknown",
        "since": _iso(s.since) if state else None,
        "paused": s.paused,
        "paused_since": _iso(s.paused_since),
        "primary": {"name": cfg.primary.name, "host": cfg.primary.host},
        "standby": {"name": cfg.standby.name},
        "last_probe": s.last_probe,
        "last_tick": _iso(s.last_tick_at),
        "last_tick_age_seconds": round(now - s.last_tick_at, 1) if s.last_tick_at else None,
        "last_reason": s.last_reason,
        "interval_seconds": cfg.check.interval,
        "next_check_due": _iso(s.last_tick_at + cfg.check.interval) if s.last_tick_at else None,
        "check_overdue": bool(
            s.last_tick_at and now > s.last_tick_at + 2 * cfg.check.interval + cfg.check.deadline
        ),
        "counters": {
            "failed_checks": s.failed_ticks,
            "healthy_checks": s.healthy_ticks,
            "takeovers": s.takeovers,
            "givebacks": s.givebacks,
        },
        "witnesses": {
            "configured": list(cfg.check.witnesses),
            "quorum": cfg.check.witness_quorum,
            "last": s.last_witnesses,
            "isolated_since": _iso(s.isolated_since),
        },
        "slow_checks": s.slow_ticks,
        "fenced": s.fenced,
        "manual_hold": s.manual_hold,
        "failback": cfg.check.failback,
        "local_gateway": {
            "url": cfg.standby.gateway.health_url,
            "answering": local_up,
            "channels": s.local_channels or None,  # at the takeover: "up, but channel X failing"
        },
        "pending_notifications": [
            {
                "kind": n.kind,
                "created": _iso(n.created_at),
                "attempts": n.attempts,
                "last_error": n.last_error,
            }
            for n in s.outbox
        ],
        "notifications": "telegram" if cfg.telegram else "off (no telegram section)",
        "sync_back": _sync_status(cfg),
        "state_file": str(store.path),
        "replication": _replication(cfg),
        "last_syncback": _last_syncback(store),
        "state_warning": warning,
        "last_events": [e.to_json() for e in store.last_events(events)],
    }


def _replication(cfg: Config) -> dict[str, Any] | None:
    if cfg.database is None:
        return None
    from openclaw_failover.monitor.replstatus import replication_health

    return replication_health(cfg)


def _last_syncback(store: StateStore) -> dict[str, Any] | None:
    """The last sync-back: a give-back action or an `ocf syncback` run."""
    for event in reversed(store.last_events(500)):
        p = event.payload
        if isinstance(p, SyncedBack | GaveBack):
            ok = p.sync.ok if p.sync else isinstance(p, GaveBack) and p.ok
            summary = p.sync.summary if p.sync else ""
            return {"at": event.at, "ok": ok, "summary": summary}
    return None


def _event_line(event: Event) -> str:
    """One line of `last events:`: time, type, and the reason, notice or action."""
    p = event.payload
    action = ACTION_NAMES.get(event.kind)
    if isinstance(p, Transition | TickDone | DeadlineHit):
        extra = p.reason
    elif isinstance(p, NoticeQueued | NoticeSent | NoticeDropped):
        extra = p.notice
    else:
        extra = action or ""
    kind = "action" if action else str(event.kind)
    return f"  {event.at or '?'}  {kind:<14} {_line(extra)}"


def _replication_line(rep: dict[str, Any] | None) -> str:
    if rep is None:
        return "off (no database: section)"
    if "error" in rep and "enabled" not in rep:
        return f"error: {rep['error']}"
    parts = [
        "enabled" if rep.get("enabled") else "DISABLED",
        "worker running" if rep.get("worker_running") else "no worker",
        "slot active" if rep.get("slot_active") else "slot inactive",
        f"{rep.get('apply_errors', '?')} apply errors",
    ]
    if rep.get("lag_bytes") is not None:
        lag_s = rep.get("lag_seconds")
        parts.append(
            f"lag {rep['lag_bytes']} B" + (f" / {lag_s:.1f}s" if lag_s is not None else "")
        )
    if rep.get("error"):
        parts.append(f"error: {rep['error']}")
    return ", ".join(parts)


def _sync_status(cfg: Config) -> str:
    parts = []
    if cfg.database:
        parts.append(f"rows (subscription {cfg.database.subscription})")
    if cfg.files:
        parts.append(f"{len(cfg.files)} file root(s)")
    return " and ".join(parts) if parts else "off (no database: or files: section)"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _next_line(info: dict[str, Any]) -> str:
    every = f"every {info['interval_seconds']:g}s"
    if not info["next_check_due"]:
        return f"no check has run yet ({every})"
    if info["check_overdue"]:
        return f"OVERDUE since {info['next_check_due']} ({every}): is cron / the timer running?"
    return f"due {info['next_check_due']} ({every})"


def _probe_line(probe: dict[str, Any] | None) -> str:
    if not probe:
        return "none yet"
    at = _iso(probe.get("at"))
    latency = probe.get("latency")
    took = f"{latency:.2f}s" if isinstance(latency, int | float) else "?"
    detail = _line(probe.get("detail", ""))
    return f"{_line(probe.get('status', '?'))} in {took} at {at} ({detail})"


def _witness_line(w: dict[str, Any]) -> str:
    if not w["configured"]:
        return "none (a cut-off standby would take over)"
    line = f"{len(w['configured'])}, quorum {w['quorum']}"
    last = w["last"]
    if last:
        line += f"; last asked {_iso(last.get('at'))}: {len(last['answered'])} answered"
    if w["isolated_since"]:
        line += f"; ISOLATED since {w['isolated_since']} (no takeover)"
    return line


def render(info: dict[str, Any]) -> str:
    c = info["counters"]
    role = info["role"] + (f" since {info['since']}" if info["since"] else "")
    lines = [
        f"role:           {role}",
        f"paused:         {'yes, since ' + str(info['paused_since']) if info['paused'] else 'no'}",
        f"last check:     {_ago(info['last_tick_age_seconds'])}: {_line(info['last_reason']) or '-'}",
        f"last probe:     {_probe_line(info['last_probe'])}",
        f"next check:     {_next_line(info)}",
        f"counters:       failed {c['failed_checks']}, healthy {c['healthy_checks']}, "
        f"takeovers {c['takeovers']}, give-backs {c['givebacks']}",
        f"slow checks:    {info['slow_checks']} in a row (takeover at check.slow_fall)",
        f"witnesses:      {_witness_line(info['witnesses'])}",
        f"primary fenced: {'yes' if info['fenced'] else 'no'}",
        f"local gateway:  {'answering' if info['local_gateway']['answering'] else 'not answering'}"
        f" ({info['local_gateway']['url']})"
        + (f"; at takeover {_line(ch)}" if (ch := info["local_gateway"].get("channels")) else ""),
        f"notifications:  {info['notifications']}, {len(info['pending_notifications'])} pending",
    ]
    for n in info["pending_notifications"]:
        err = f", last error: {n['last_error']}" if n["last_error"] else ""
        lines.append(f"  - {n['kind']} from {n['created']} ({n['attempts']} attempts{err})")
    lines.append(f"sync-back:      {info['sync_back']}")
    last = info.get("last_syncback")
    if last:
        lines.append(
            f"last sync-back: {last['at']} {'ok' if last['ok'] else 'FAILED'}: {last['summary']}"
        )
    lines.append(f"replication:    {_replication_line(info.get('replication'))}")
    if info["state_warning"]:
        lines.append(f"warning:        {info['state_warning']}")
    if info["last_events"]:
        lines.append("last events:")
        for data in info["last_events"]:
            event = parse_event(data)
            if event is not None:
                lines.append(_event_line(event))
    return "\n".join(lines)

"""`ocf history`: what happened, from ``state_dir/events.jsonl``, as a table or JSON.

Times are UTC, like ``events.jsonl`` and ``ocf status``.  Events are read typed
(``core.events.parse_event``, either schema); a line that is not one (a write cut short
by a power loss, an unknown type) is skipped.  The log and its
rotated files are read from the end, in bounded memory, back to ``--since`` or to the
last MAX_EVENTS events.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable
from pathlib import Path

from openclaw_failover.config.secrets import shorten
from openclaw_failover.core.events import (
    DeadlineHit,
    Event,
    EventKind,
    Fenced,
    GaveBack,
    NoticeDropped,
    NoticeFailed,
    NoticeQueued,
    NoticeSent,
    ProbeChanged,
    Reconciled,
    RestartedLocal,
    SyncedBack,
    TickDone,
    TookOver,
    Transition,
)
from openclaw_failover.engine.store import StateStore, iter_events_backwards

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
_NAMES = {
    EventKind.TAKEOVER: "take over",
    EventKind.GIVEBACK: "give back",
    EventKind.RESTART_LOCAL: "restart local",
    EventKind.FENCE: "fence",
    EventKind.NOTICE_QUEUED: "notice",
    EventKind.NOTICE_SENT: "notice sent",
    EventKind.NOTICE_FAILED: "notice failed",
    EventKind.NOTICE_DROPPED: "notice dropped",
    EventKind.TICK: "check",
    EventKind.SYNCBACK: "sync-back",
}
MAX_DETAIL = 300
MAX_EVENTS = 20_000  # events shown at most (the newest)


def parse_since(text: str, *, now: float | None = None) -> float:
    """Unix time from ``7d``/``12h``/``30m``/``90s``/``2w`` (ago) or a UTC date/time.

    Dates: ``2026-11-01``, ``2026-11-01T08:30``, ``2026-11-01 08:30:00`` (optionally
    with a trailing ``Z``).  Raises ValueError with a message fit for the user.
    """
    now = time.time() if now is None else now
    value = text.strip()
    match = _DURATION.fullmatch(value.lower())
    if match:
        return now - float(match[1]) * _UNITS[match[2]]
    stamp = value.removesuffix("Z").removesuffix("z").replace(" ", "T", 1)
    for fmt in _DATE_FORMATS:
        try:
            parsed = time.strptime(stamp, fmt)
        except ValueError:
            continue
        since = float(calendar.timegm(parsed))
        if since > now:
            raise ValueError(f"--since {text!r} is in the future")
        return since
    raise ValueError(
        f"--since: expected a duration such as 7d, 12h, 30m or a UTC date such as "
        f"2026-11-01 or 2026-11-01T08:30, got {text!r}"
    )


def load(state_dir: Path, since: float) -> list[Event]:
    """The events at or after ``since`` (the newest MAX_EVENTS), oldest first."""
    out: list[Event] = []
    for event in iter_events_backwards(StateStore(Path(state_dir)).event_files()):
        if event.ts < since:
            break  # appended in time order: the rest is older
        out.append(event)
        if len(out) >= MAX_EVENTS:
            break
    return out[::-1]


def render(events: Iterable[Event]) -> str:
    """A table: time (UTC), event, detail; one line per event."""
    items = list(events)
    if not items:
        return "no events"
    settled = {e.payload.id for e in items if isinstance(e.payload, NoticeSent | NoticeDropped)}
    rows = [(_time(e.ts), _NAMES.get(e.kind, str(e.kind)), _detail(e, settled)) for e in items]
    width = max(len("EVENT"), *(len(r[1]) for r in rows))
    lines = [f"{'TIME (UTC)':<19}  {'EVENT':<{width}}  DETAIL"]
    lines += [f"{t:<19}  {n:<{width}}  {d}".rstrip() for t, n, d in rows]
    return "\n".join(lines)


def _time(ts: float) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
    except (OverflowError, OSError, ValueError):  # 1e300: an odd line
        return "?"


def _detail(e: Event, settled: set[str]) -> str:
    p = e.payload
    text = ""
    if isinstance(p, Transition):
        text = f"{p.from_role or '?'} -> {p.to_role or '?'}: {p.reason}"
    elif isinstance(p, TookOver | GaveBack | RestartedLocal | Fenced):
        text = _action(p)
    elif isinstance(p, NoticeQueued):
        pending = "" if p.id in settled else " (not sent yet)"
        text = f"{p.notice or '?'}{pending}: {p.text}"
    elif isinstance(p, NoticeSent):
        text = p.notice
    elif isinstance(p, NoticeDropped):
        text = f"{p.notice or '?'}: not sent ({p.why})"
    elif isinstance(p, NoticeFailed):
        text = f"kept for the next check: {p.error}"
    elif isinstance(p, SyncedBack):
        text = f"{'ok' if p.sync.ok else 'FAILED'}: {p.sync.summary}"
    elif isinstance(p, TickDone):
        text = p.reason + (f" (exit {p.status})" if p.status else "")
    elif isinstance(p, Reconciled):
        text = f"{p.warning}; {p.result}" + (f" (kept as {p.kept_as})" if p.kept_as else "")
    elif isinstance(p, DeadlineHit):
        text = p.reason
    elif isinstance(p, ProbeChanged):
        text = f"{p.was or '?'} -> {p.status or '?'}: {p.detail}"
    return shorten(text, MAX_DETAIL)


def _action(p: TookOver | GaveBack | RestartedLocal | Fenced) -> str:
    text = "ok" if p.ok else "FAILED"
    if p.duration is not None:
        text += f" in {p.duration:.1f}s"
    parts = [p.detail] if p.detail else []
    if isinstance(p, GaveBack) and p.sync and p.sync.summary:
        parts.append(p.sync.summary)
    return text + (": " + "; ".join(parts) if parts else "")

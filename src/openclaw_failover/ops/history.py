"""`ocf history`: what happened, from ``state_dir/events.jsonl``, as a table or JSON.

Times are UTC, like ``events.jsonl`` and ``ocf status``.  A line of the events log
that is not valid JSON (a write cut short by a power loss) is skipped.  The log and its
rotated files are read from the end, in bounded memory, back to ``--since`` or to the
last MAX_EVENTS events.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from openclaw_failover.engine.store import StateStore, iter_events_backwards

DEFAULT_SINCE = "7d"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
_ACTIONS = {"TakeOver": "take over", "GiveBack": "give back", "RestartLocal": "restart local"}
_NAMES = {
    "notice_queued": "notice",
    "notice_sent": "notice sent",
    "notice_failed": "notice failed",
    "notice_dropped": "notice dropped",
    "tick": "check",
    "syncback": "sync-back",
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


def load(state_dir: Path, since: float) -> list[dict[str, Any]]:
    """The events at or after ``since`` (the newest MAX_EVENTS), oldest first."""
    out: list[dict[str, Any]] = []
    for event in iter_events_backwards(StateStore(Path(state_dir)).event_files()):
        ts = event.get("ts")
        if not isinstance(ts, int | float) or isinstance(ts, bool) or ts != ts:
            continue
        if ts < since:
            break  # appended in time order: the rest is older
        out.append(event)
        if len(out) >= MAX_EVENTS:
            break
    return out[::-1]


def render(events: Iterable[Mapping[str, Any]]) -> str:
    """A table: time (UTC), event, detail; one line per event."""
    items = list(events)
    if not items:
        return "no events"
    settled = {
        str(e.get("id"))
        for e in items
        if e.get("type") in ("notice_sent", "notice_dropped") and e.get("id")
    }
    rows = [(_time(e.get("ts")), _name(e), _detail(e, settled)) for e in items]
    width = max(len("EVENT"), *(len(r[1]) for r in rows))
    lines = [f"{'TIME (UTC)':<19}  {'EVENT':<{width}}  DETAIL"]
    lines += [f"{t:<19}  {n:<{width}}  {d}".rstrip() for t, n, d in rows]
    return "\n".join(lines)


def _time(ts: Any) -> str:
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return "?"
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
    except (OverflowError, OSError, ValueError):  # NaN, 1e300: an odd line
        return "?"


def _name(e: Mapping[str, Any]) -> str:
    kind = str(e.get("type", "?"))
    if kind == "action":
        action = str(e.get("action", "action"))
        return _ACTIONS.get(action, action)
    return _NAMES.get(kind, kind)


def _detail(e: Mapping[str, Any], settled: set[str]) -> str:
    kind = e.get("type")
    if kind == "transition":
        text = f"{e.get('from', '?')} -> {e.get('to', '?')}: {e.get('reason', '')}"
    elif kind == "action":
        text = _action(e)
    elif kind == "notice_queued":
        pending = "" if str(e.get("id")) in settled else " (not sent yet)"
        text = f"{e.get('kind', '?')}{pending}: {e.get('text', '')}"
    elif kind == "notice_sent":
        text = str(e.get("kind", ""))
    elif kind == "notice_dropped":
        text = f"{e.get('kind', '?')}: not sent ({e.get('why', '')})"
    elif kind == "notice_failed":
        text = f"kept for the next check: {e.get('error', '')}"
    elif kind == "syncback":
        text = f"{'ok' if e.get('ok', True) else 'FAILED'}: {e.get('summary', '')}"
    elif kind == "tick":
        status = e.get("status")
        text = str(e.get("reason", "")) + (f" (exit {status})" if status else "")
    elif kind == "reconciled":
        text = f"{e.get('warning', '')}; {e.get('result', '')}"
        if e.get("kept_as"):
            text += f" (kept as {e['kept_as']})"
    elif kind == "deadline":
        text = str(e.get("reason", ""))
    elif kind == "probe":
        text = f"{e.get('was', '?')} -> {e.get('status', '?')}: {e.get('detail', '')}"
    else:
        extra = {k: v for k, v in e.items() if k not in ("ts", "at", "type")}
        text = json.dumps(extra, sort_keys=True, default=str) if extra else ""
    return _one_line(text)


def _action(e: Mapping[str, Any]) -> str:
    ok = e.get("ok")
    duration = e.get("duration")
    text = "ok" if ok else "FAILED"
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        text += f" in {duration:.1f}s"
    parts = []
    if e.get("action") == "GiveBack":
        given = e.get("steps")
        steps = [s for s in given if isinstance(s, str)] if isinstance(given, list) else []
        parts += [s for s in steps if _is_sync_step(s)]
    if e.get("detail"):
        parts.insert(0, str(e["detail"]))
    return text + (": " + "; ".join(parts) if parts else "")


def _is_sync_step(step: str) -> bool:
    step = step.removeprefix("while still serving: ")
    return step.startswith(("rows synced back", "files: ", "sync-back"))


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."

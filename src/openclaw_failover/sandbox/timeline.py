"""The demo's timeline: ``T+0:03  check failed (unreachable) ...``, with measured times.

Each tick runs the real ``ocf check`` code in-process; what it did is read
back from what ocf itself records: its log records (probe retries, captured
by :class:`Recorder`) and its events log (``events.jsonl``: transitions,
actions with their steps, notices queued and sent), each with its own
timestamp.  :func:`render_tick` merges them into timeline lines, in order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

INDENT = " " * 8
_RETRY = re.compile(r"^probe \d+ failed \(")
_ACTIONS = {
    "TakeOver": "take-over steps",
    "GiveBack": "give-back steps",
    "RestartLocal": "restart of the local gateway",
}


class Timeline:
    """Prints ``T+m:ss  text`` lines, relative to the scenario's start."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.t0 = time.time()

    def reset(self, t0: float | None = None) -> None:
        self.t0 = time.time() if t0 is None else t0

    def stamp(self, at: float | None = None) -> str:
        seconds = max(0.0, (time.time() if at is None else at) - self.t0)
        return f"T+{int(seconds // 60)}:{int(seconds % 60):02d}"

    def say(self, text: str, at: float | None = None) -> None:
        lines = text.splitlines() or [""]
        self.out.write(f"{self.stamp(at)}  {lines[0]}\n")
        for line in lines[1:]:
            self.out.write(f"{INDENT}{line}\n")
        self.out.flush()

    def plain(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()


class Recorder(logging.Handler):
    """Keeps ocf's log records of INFO and above as ``(time, level, message)``."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[float, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.created, record.levelno, record.getMessage()))

    def take(self) -> list[tuple[float, int, str]]:
        out, self.records = self.records, []
        return out


@contextlib.contextmanager
def capture_ocf_logs() -> Iterator[Recorder]:
    """Route the ``openclaw_failover`` logger to a :class:`Recorder` (restored after)."""
    logger = logging.getLogger("openclaw_failover")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    recorder = Recorder()
    for handler in saved[2]:
        logger.removeHandler(handler)
    logger.addHandler(recorder)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield recorder
    finally:
        logger.removeHandler(recorder)
        for handler in saved[2]:
            logger.addHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


class EventTail:
    """The events ocf appended to ``events.jsonl`` since the last :meth:`take`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.texts: dict[str, str] = {}  # notice id -> text (from notice_queued)

    def take(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        events = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
        for e in events:
            if e.get("type") == "notice_queued":
                self.texts[str(e.get("id"))] = str(e.get("text", ""))
        return events


@dataclass
class TickView:
    """What one tick did, for the timeline and the measurements."""

    started: float
    ended: float
    reason: str
    probe: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    lines: list[tuple[float, str]] = field(default_factory=list)

    def transition(self, to: str) -> dict[str, Any] | None:
        """The transition event into role ``to``, if the tick made it."""
        return next(
            (e for e in self.events if e.get("type") == "transition" and e.get("to") == to), None
        )

    def steps(self, action: str) -> list[str]:
        """The steps of the tick's ``action`` events (``TakeOver``, ``GiveBack``...)."""
        return [
            str(step)
            for e in self.events
            if e.get("type") == "action" and e.get("action") == action
            for step in e.get("steps", [])
        ]


def _verdict(probe: dict[str, Any]) -> str:
    status = str(probe.get("status", "?"))
    word = "ok" if status == "healthy" else "failed"
    return f"check {word} ({status}: {probe.get('detail', '')})"


def _event_lines(event: dict[str, Any], tail: EventTail, probe: dict[str, Any]) -> list[str]:
    kind, reason = event.get("type"), str(event.get("reason", ""))
    if kind == "transition" and event.get("to") in ("taking_over", "giving_back"):
        return [f"{_verdict(probe)}\n-> {reason}"]
    if kind == "transition":
        return [f"{event.get('from')} -> {event.get('to')}: {reason}"]
    if kind == "action":
        took = float(event.get("duration", 0.0))
        steps = "\n".join(f"  - {s}" for s in event.get("steps", []))
        label = _ACTIONS.get(str(event.get("action")), str(event.get("action")))
        return [f"{label} ({'ok' if event.get('ok') else 'FAILED'}, {took:.1f}s):\n{steps}"]
    if kind == "notice_sent":
        return [f'Telegram: "{tail.texts.get(str(event.get("id")), "?")}"']
    if kind in ("notice_failed", "deadline", "reconciled"):
        return [f"{kind}: {event.get('error') or event.get('reason') or event.get('warning')}"]
    return []


def render_tick(
    view: TickView, records: list[tuple[float, int, str]], tail: EventTail
) -> list[tuple[float, str]]:
    """The timeline lines of one tick, oldest first."""
    lines: list[tuple[float, str]] = []
    for at, level, message in records:
        if _RETRY.match(message):
            lines.append((at, f"check: {message}"))
        elif level >= logging.WARNING:
            lines.append((at, f"ocf warning: {message}"))
    for event in view.events:
        at = float(event.get("ts", view.ended))
        lines += [(at, text) for text in _event_lines(event, tail, view.probe)]
    if not any(e.get("type") == "transition" for e in view.events):
        lines.append((view.ended, f"{_verdict(view.probe)}: {view.reason}"))
    return sorted(lines, key=lambda item: item[0])

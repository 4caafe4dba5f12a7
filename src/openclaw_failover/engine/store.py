"""The state file (atomic JSON with a schema version) and the events log.

A missing, empty or corrupt state file is not a crash: ``StateStore.load``
returns ``None`` with a warning, the tick reconciles from reality and carries
on.  A corrupt file is kept beside the new one for inspection.  Corrupt means
anything odd too: a wrong type, NaN, a time beyond year 5000, a huge file.

``events.jsonl`` holds typed events (``core.events``: one JSON object per line, with
a schema version), is rotated by size (``events.jsonl.1`` .. ``.3``, the oldest
dropped) and read from its end in bounded memory.  Every file is opened without
following symlinks (see safefs).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from openclaw_failover.core.state import State
from openclaw_failover.local import safefs

if TYPE_CHECKING:
    from openclaw_failover.core.events import Event, Payload

log = logging.getLogger(__name__)
STATE_FILE = "state.json"
EVENTS_FILE = "events.jsonl"
EVENTS_MAX_BYTES = 4 * 1024 * 1024  # events.jsonl is rotated beyond this
EVENTS_KEEP = 3  # rotated files kept: events.jsonl.1 (newest) .. .3
MAX_EVENT_LINE = 64 * 1024  # a longer line in events.jsonl is skipped when read
MAX_STATE_BYTES = 4 * 1024 * 1024
FENCE_MARKER = (
    "fenced"  # exists while ocf keeps the primary's gateway stopped: survives a lost state
)


class StateStore:
    """Reads and writes ``state.json`` and appends to ``events.jsonl`` in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.path = state_dir / STATE_FILE
        self.events_path = state_dir / EVENTS_FILE

    def ensure_dir(self) -> None:
        safefs.ensure_dir(self.dir)

    def load(self) -> tuple[State | None, str | None]:
        """(state, None), or (None, warning) when the file is missing, empty or corrupt."""
        try:
            data = safefs.read_bytes(self.path, MAX_STATE_BYTES + 1)
            if len(data) > MAX_STATE_BYTES:
                return None, f"state file {self.path} is corrupt (larger than {MAX_STATE_BYTES})"
            raw = data.decode("utf-8")
        except FileNotFoundError:
            return None, f"state file {self.path} is missing"
        except OSError as exc:
            return None, f"state file {self.path} is unreadable ({exc.strerror or exc})"
        except UnicodeDecodeError:
            return None, f"state file {self.path} is corrupt (not UTF-8 text)"
        if not raw.strip():
            return None, f"state file {self.path} is empty"
        try:
            return State.from_json(json.loads(raw)), None
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            return None, f"state file {self.path} is corrupt ({str(exc)[:120]})"

    def set_aside(self) -> Path | None:
        """Move a corrupt state file out of the way (kept for inspection)."""
        if not self.path.exists():
            return None
        target = self.path.with_name(f"{STATE_FILE}.corrupt-{int(time.time())}")
        with contextlib.suppress(OSError):
            os.replace(self.path, target)
            return target
        return None

    def save(self, state: State) -> None:
        """Write atomically: temp file in the same directory, fsync, rename, fsync dir."""
        self.ensure_dir()
        data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode()
        safefs.write_atomic(self.path, data)
        _fsync_dir(self.dir)

    def append_event(self, payload: Payload, *, now: float | None = None) -> None:
        """Append one typed event (see core.events); a log failure is logged, never fatal."""
        from openclaw_failover.core.events import Event  # not on a healthy tick

        event = Event(round(time.time() if now is None else now, 3), payload)
        line = json.dumps(event.to_json(), sort_keys=True, default=str) + "\n"
        try:
            self.ensure_dir()
            self._rotate()
            safefs.append(self.events_path, line.encode("utf-8", "replace"))
        except OSError as exc:
            log.warning("cannot append to %s: %s", self.events_path, exc.strerror or exc)

    def _rotate(self) -> None:
        """events.jsonl -> .1 -> .2 -> .3 once it is larger than EVENTS_MAX_BYTES."""
        try:
            if os.lstat(self.events_path).st_size < EVENTS_MAX_BYTES:
                return
        except FileNotFoundError:
            return
        for n in range(EVENTS_KEEP - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(self._rotated(n), self._rotated(n + 1))
        os.replace(self.events_path, self._rotated(1))

    def _rotated(self, n: int) -> Path:
        return self.events_path.with_name(f"{EVENTS_FILE}.{n}")

    def event_files(self) -> list[Path]:
        """events.jsonl, then its rotated files, newest first."""
        return [self.events_path, *(self._rotated(n) for n in range(1, EVENTS_KEEP + 1))]

    def last_events(self, count: int) -> list[Event]:
        """The last ``count`` events, oldest first; odd lines skipped; bounded memory."""
        out: list[Event] = []
        for event in iter_events_backwards(self.event_files()):
            out.append(event)
            if len(out) >= count:
                break
        return out[::-1]


def iter_events_backwards(paths: list[Path]) -> Iterator[Event]:
    """Events from the end of each file in turn, typed by ``parse_event``: lines that are
    not an event (not UTF-8, cut short, too long, a list, an unknown type) are skipped."""
    from openclaw_failover.core.events import parse_event

    for path in paths:
        try:
            for line in safefs.lines_backwards(path, EVENTS_MAX_BYTES * 2):
                if len(line) > MAX_EVENT_LINE:
                    continue
                try:
                    event = parse_event(json.loads(line.decode("utf-8")))
                except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                    continue
                if event is not None:
                    yield event
        except OSError:
            continue


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        safefs.fsync_dir(path)

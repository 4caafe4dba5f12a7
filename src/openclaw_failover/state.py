"""The state file (atomic JSON with a schema version) and the events log.

A missing, empty or corrupt state file is not a crash: ``StateStore.load``
returns ``None`` with a warning, the tick reconciles from reality and carries
on.  A corrupt file is kept beside the new one for inspection.  Corrupt means
anything odd too: a wrong type, NaN, a time beyond year 5000, a huge file.

``events.jsonl`` is rotated by size (``events.jsonl.1`` .. ``.3``, the oldest
dropped) and read from its end in bounded memory.  Every file is opened without
following symlinks (see safefs).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from openclaw_failover import safefs
from openclaw_failover.model import Notice

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
STATE_FILE = "state.json"
EVENTS_FILE = "events.jsonl"
EVENTS_MAX_BYTES = 4 * 1024 * 1024  # events.jsonl is rotated beyond this
EVENTS_KEEP = 3  # rotated files kept: events.jsonl.1 (newest) .. .3
MAX_EVENT_LINE = 64 * 1024  # a longer line in events.jsonl is skipped when read
MAX_STATE_BYTES = 4 * 1024 * 1024
MAX_TIME = 1e11  # seconds since 1970: year 5138; a larger time is a corrupt file
FENCE_MARKER = (
    "fenced"  # exists while ocf keeps the primary's gateway stopped: survives a lost state
)


class Role(enum.StrEnum):
    PRIMARY = "primary"  # the primary serves; we watch
    TAKING_OVER = "taking_over"  # decided to take over; not yet confirmed serving
    FAILOVER = "failover"  # this standby serves
    GIVING_BACK = "giving_back"  # local gateway stopped / stopping; sync-back not yet done


@dataclass
class State:
    role: Role = Role.PRIMARY
    since: float = 0.0
    paused: bool = False
    paused_since: float | None = None
    failed_ticks: int = 0  # consecutive failed ticks (never answered / refused)
    slow_ticks: int = 0  # consecutive unhealthy ticks since the first slow one
    isolated_since: float | None = None  # too few witnesses answered (no takeover) since
    last_witnesses: dict[str, Any] | None = None  # the last WitnessReport, with "at"
    healthy_ticks: int = 0  # consecutive healthy ticks while serving
    fenced: bool = False  # we stopped the primary's gateway over SSH
    manual_hold: bool = False  # took over by hand: no automatic give-back
    back_notified: bool = False  # "primary back, failback is manual" already sent
    unfence_failed_at: float | None = None  # last failed restart of a fenced primary's gateway
    takeovers: int = 0
    givebacks: int = 0
    last_probe: dict[str, Any] | None = None
    last_tick_at: float | None = None
    last_reason: str = ""
    last_alert_at: dict[str, float] = field(default_factory=dict)
    outbox: list[Notice] = field(default_factory=list)
    local_channels: str = ""  # after a takeover: "up, but channel X failing: ..." or ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["role"] = str(self.role)
        return {"schema_version": SCHEMA_VERSION, **data}

    @classmethod
    def from_json(cls, data: Any) -> State:
        """Build a State; raise ValueError on anything unexpected."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {version!r}, expected {SCHEMA_VERSION}")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        _check_types(kwargs, _STATE_TYPES, "")
        outbox = kwargs.get("outbox", [])
        if not isinstance(outbox, list) or not all(isinstance(n, dict) for n in outbox):
            raise ValueError("outbox is not a list of notices")
        for i, notice in enumerate(outbox):
            _check_types(notice, _NOTICE_TYPES, f"outbox[{i}].")
        alerts = kwargs.get("last_alert_at", {})
        if not isinstance(alerts, dict) or not all(_is_number(v) for v in alerts.values()):
            raise ValueError("last_alert_at is not a mapping of times")
        try:
            kwargs["role"] = Role(kwargs.get("role", "primary"))
            kwargs["outbox"] = [Notice(**n) for n in outbox]
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None


def _is_number(value: Any) -> bool:
    """A finite number of sane size (NaN, infinities and 1e308 are corrupt)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return abs(value) <= MAX_TIME and (isinstance(value, int) or math.isfinite(value))


_TYPES: dict[str, Any] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10**12,
    "number": _is_number,
    "number?": lambda v: v is None or _is_number(v),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "dict?": lambda v: v is None or isinstance(v, dict),
}
_STATE_TYPES = {
    "role": "str",
    "since": "number",
    "paused": "bool",
    "paused_since": "number?",
    "failed_ticks": "int",
    "slow_ticks": "int",
    "isolated_since": "number?",
    "last_witnesses": "dict?",
    "healthy_ticks": "int",
    "fenced": "bool",
    "manual_hold": "bool",
    "back_notified": "bool",
    "unfence_failed_at": "number?",
    "takeovers": "int",
    "givebacks": "int",
    "last_probe": "dict?",
    "last_tick_at": "number?",
    "last_reason": "str",
    "local_channels": "str",
}
_NOTICE_TYPES = {
    "id": "str",
    "kind": "str",
    "text": "str",
    "created_at": "number",
    "attempts": "int",
    "last_error": "str",
    "next_try_at": "number",
}


def _check_types(data: dict[str, Any], types: dict[str, str], prefix: str) -> None:
    """Raise ValueError naming the first field of the wrong type (a corrupt file)."""
    for name, kind in types.items():
        if name in data and not _TYPES[kind](data[name]):
            raise ValueError(f"{prefix}{name} has the wrong type ({type(data[name]).__name__})")


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

    def event(self, event_type: str, /, **data: Any) -> None:
        """Append one event line; an event log failure is logged, never fatal."""
        now = time.time()
        record = {
            "ts": round(now, 3),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "type": event_type,
            **data,
        }
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
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

    def last_events(self, count: int) -> list[dict[str, Any]]:
        """The last ``count`` events, oldest first; odd lines skipped; bounded memory."""
        out: list[dict[str, Any]] = []
        for event in iter_events_backwards(self.event_files()):
            out.append(event)
            if len(out) >= count:
                break
        return out[::-1]


def iter_events_backwards(paths: list[Path]) -> Iterator[dict[str, Any]]:
    """Events from the end of each file in turn: lines that are not a JSON object
    (not UTF-8, cut short, too long, a list) are skipped."""
    for path in paths:
        try:
            for line in safefs.lines_backwards(path, EVENTS_MAX_BYTES * 2):
                if len(line) > MAX_EVENT_LINE:
                    continue
                try:
                    event = json.loads(line.decode("utf-8"))
                except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                    continue
                if isinstance(event, dict):
                    yield event
        except OSError:
            continue


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        safefs.fsync_dir(path)

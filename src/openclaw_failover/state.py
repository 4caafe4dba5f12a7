"""The state file (atomic JSON with a schema version) and the events log.

A missing, empty or corrupt state file is not a crash: ``StateStore.load``
returns ``None`` with a warning, the tick reconciles from reality and carries
on.  A corrupt file is kept beside the new one for inspection.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from openclaw_failover.model import Notice

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
STATE_FILE = "state.json"
EVENTS_FILE = "events.jsonl"
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
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Any] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
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
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def load(self) -> tuple[State | None, str | None]:
        """(state, None), or (None, warning) when the file is missing, empty or corrupt."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, f"state file {self.path} is missing"
        except OSError as exc:
            return None, f"state file {self.path} is unreadable ({exc.strerror})"
        except UnicodeDecodeError:
            return None, f"state file {self.path} is corrupt (not UTF-8 text)"
        if not raw.strip():
            return None, f"state file {self.path} is empty"
        try:
            return State.from_json(json.loads(raw)), None
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
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
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
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
        try:
            self.ensure_dir()
            with self.events_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        except OSError as exc:
            log.warning("cannot append to %s: %s", self.events_path, exc.strerror)

    def last_events(self, count: int) -> list[dict[str, Any]]:
        try:
            with self.events_path.open(encoding="utf-8") as fh:
                lines = fh.readlines()[-count:]
        except OSError:
            return []
        out = []
        for line in lines:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

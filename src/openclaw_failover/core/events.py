"""The events log's one contract: the kinds of event, their payloads, the line format.

``engine`` writes an :class:`Event` (``Event.to_json()``, one JSON line per event in
``events.jsonl``); ``ops.status``, ``ops.history``, ``ops.drill`` and ``monitor.metrics``
read lines back only through :func:`parse_event`, which gives the typed form or None.

A line (schema :data:`EVENT_SCHEMA`) is ``{"v": 2, "ts": ..., "at": ..., "type": ...,
<the payload's fields>}``.  It keeps the shape of the schema-less lines ocf wrote before
(schema 1), so ``jq`` filters and older readers still work: an action's result is
``"type": "action"`` with ``"action": "TakeOver" | "GiveBack" | "RestartLocal" | "Fence"``.
New in schema 2: ``"v"``, and a give-back's or ``ocf syncback``'s counts as data
(``"sync": {...}``, :class:`SyncCounts`) instead of only in sentences.

:func:`parse_event` reads both schemas; a schema-1 give-back's counts are recovered from
its step sentences here, and only here (never for a line with ``"v"``).  A line it cannot read (not an object, an
unknown type, no finite ``ts``) is None, never an exception; a field of the wrong type
takes its default.  Pure: no I/O.
"""

from __future__ import annotations

import enum
import math
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Self, get_args

EVENT_SCHEMA = 2


class EventKind(enum.StrEnum):
    TRANSITION = "transition"  # the role changed
    TAKEOVER = "takeover"  # a TakeOver action ran (ok or not)
    GIVEBACK = "giveback"  # a GiveBack action ran, with the sync-back's counts
    RESTART_LOCAL = "restart_local"  # the local gateway was started again while serving
    FENCE = "fence"  # the primary's gateway was stopped while this standby serves
    SYNCBACK = "syncback"  # `ocf syncback` ran
    NOTICE_QUEUED = "notice_queued"
    NOTICE_SENT = "notice_sent"
    NOTICE_DROPPED = "notice_dropped"  # no telegram: section
    NOTICE_FAILED = "notice_failed"  # kept in the outbox for the next check
    PROBE = "probe"  # the probe's class changed
    TICK = "tick"  # a check that acted or failed: its sentence and exit status
    DEADLINE = "deadline"
    RECONCILED = "reconciled"  # the state file was missing or corrupt
    PAUSED = "paused"
    RESUMED = "resumed"
    # coordination (etcd, see coord/): what happened to the leader key and the guard
    LEADER = "leader"  # this host acquired / refreshed / released the key (ok or not)
    LEADER_SEEN = "leader_seen"  # another host holds the key now
    GUARD = "guard"  # the lease guard started, failed, or stopped the gateway
    GUARD_SEEN = "guard_seen"  # a check found the guard had stopped the gateway
    COORDINATION = "coordination"  # the leader key allowed, vetoed or replaced a decision
    COORDINATION_BACK = "coordination_back"  # an etcd quorum answers again
    SELF = "self"  # mode primary: the primary fenced or started its own gateway


# An action's kind on the wire: "type": "action", "action": <name> (as in schema 1).
ACTION_NAMES: dict[EventKind, str] = {
    EventKind.TAKEOVER: "TakeOver",
    EventKind.GIVEBACK: "GiveBack",
    EventKind.RESTART_LOCAL: "RestartLocal",
    EventKind.FENCE: "Fence",
}
_BY_ACTION = {name: kind for kind, name in ACTION_NAMES.items()}


# --------------------------------------------------------------------------- coercion


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return ""


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return max(int(value), 0) if abs(value) < 2**62 else 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(s for s in value if isinstance(s, str)) if isinstance(value, list) else ()


# --------------------------------------------------------------------------- sync counts


@dataclass(frozen=True)
class SyncCounts:
    """What one sync-back did (both passes of a give-back), as data."""

    ok: bool = True
    summary: str = ""  # SyncReport.summary(): the one line of notices and logs
    skipped: str = ""  # why it did not run ("" when it ran)
    inserted: int = 0  # rows written into the primary
    updated: int = 0
    deleted: int = 0  # rows deleted on the primary because the standby deleted them
    quarantined: int = 0  # rows kept in quarantine before they were replaced or deleted
    files: int = 0  # workspace files copied to the primary
    bytes: int = 0  # checksums, keys and rows that crossed the network

    @property
    def rows(self) -> int:
        """Rows written into the primary (inserted + updated)."""
        return self.inserted + self.updated

    @property
    def succeeded(self) -> bool:
        """It ran and nothing failed (what ``ocf_last_syncback_*`` count)."""
        return self.ok and not self.skipped

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SyncCounts:
        ok = data.get("ok")
        return cls(
            ok=ok if isinstance(ok, bool) else True,
            summary=_text(data.get("summary")),
            skipped=_text(data.get("skipped")),
            **{k: _int(data.get(k)) for k in _COUNTS},
        )


_COUNTS = ("inserted", "updated", "deleted", "quarantined", "files", "bytes")


# --------------------------------------------------------------------------- payloads

_WIRE = {"from_role": "from", "to_role": "to", "notice": "kind"}  # field -> key on the wire


class _Texts:
    """A payload of text fields, each under its own name on the wire (or ``_WIRE``'s)."""

    def to_fields(self) -> dict[str, Any]:
        return {_WIRE.get(f.name, f.name): getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> Self:
        return cls(**{f.name: _text(d.get(_WIRE.get(f.name, f.name))) for f in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Transition(_Texts):
    KIND: ClassVar[EventKind] = EventKind.TRANSITION
    from_role: str
    to_role: str
    reason: str = ""


@dataclass(frozen=True)
class _ActionResult:
    ok: bool
    detail: str = ""
    steps: tuple[str, ...] = ()  # each step's one line, as the actor reported it
    duration: float | None = None  # seconds

    def to_fields(self) -> dict[str, Any]:
        out = {"ok": self.ok, "detail": self.detail, "steps": list(self.steps)}
        return out | ({"duration": self.duration} if self.duration is not None else {})

    @staticmethod
    def _common(d: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "ok": d.get("ok") is True,
            "detail": _text(d.get("detail")),
            "steps": _texts(d.get("steps")),
            "duration": _number(d.get("duration")),
        }

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> Self:
        return cls(**cls._common(d))


@dataclass(frozen=True)
class TookOver(_ActionResult):
    KIND: ClassVar[EventKind] = EventKind.TAKEOVER
    channels: str = ""  # "up, but channel X failing: ..." (masked) or ""

    def to_fields(self) -> dict[str, Any]:
        return super().to_fields() | ({"channels": self.channels} if self.channels else {})

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> Self:
        return cls(**cls._common(d), channels=_text(d.get("channels")))


@dataclass(frozen=True)
class RestartedLocal(_ActionResult):
    KIND: ClassVar[EventKind] = EventKind.RESTART_LOCAL


@dataclass(frozen=True)
class Fenced(_ActionResult):
    KIND: ClassVar[EventKind] = EventKind.FENCE


@dataclass(frozen=True)
class GaveBack(_ActionResult):
    KIND: ClassVar[EventKind] = EventKind.GIVEBACK
    sync: SyncCounts | None = None  # None: no sync-back ran (the local gateway did not stop)

    def to_fields(self) -> dict[str, Any]:
        return super().to_fields() | ({"sync": self.sync.to_json()} if self.sync else {})

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> Self:
        common = cls._common(d)
        given = d.get("sync")
        if isinstance(given, dict):
            return cls(**common, sync=SyncCounts.from_json(given))
        return cls(**common, sync=_legacy_sync(common) if "v" not in d else None)


@dataclass(frozen=True)
class SyncedBack:
    """``ocf syncback`` ran (a dry run or a skipped one is not logged)."""

    KIND: ClassVar[EventKind] = EventKind.SYNCBACK
    sync: SyncCounts

    def to_fields(self) -> dict[str, Any]:
        return {"ok": self.sync.ok, "summary": self.sync.summary, "sync": self.sync.to_json()}

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> SyncedBack:
        given = d.get("sync")
        if isinstance(given, dict) or "v" in d:
            return cls(SyncCounts.from_json(given if isinstance(given, dict) else {}))
        summary = _text(d.get("summary"))  # schema 1: ok, summary, rows, quarantined
        inserted, updated = _legacy_rows([summary])
        if not inserted + updated:
            inserted = _int(d.get("rows"))
        ok = d.get("ok") is not False and "FAILED" not in summary
        skipped = summary if summary.startswith("sync-back skipped") else ""
        quarantined = _int(d.get("quarantined"))
        return cls(SyncCounts(ok, summary, skipped, inserted, updated, 0, quarantined))


@dataclass(frozen=True)
class NoticeQueued(_Texts):
    KIND: ClassVar[EventKind] = EventKind.NOTICE_QUEUED
    notice: str  # the notice's kind ("took_over", ...)
    id: str
    text: str


@dataclass(frozen=True)
class NoticeSent(_Texts):
    KIND: ClassVar[EventKind] = EventKind.NOTICE_SENT
    notice: str
    id: str


@dataclass(frozen=True)
class NoticeDropped(_Texts):
    KIND: ClassVar[EventKind] = EventKind.NOTICE_DROPPED
    notice: str
    id: str
    why: str


@dataclass(frozen=True)
class NoticeFailed(_Texts):
    KIND: ClassVar[EventKind] = EventKind.NOTICE_FAILED
    error: str


@dataclass(frozen=True)
class ProbeChanged:
    KIND: ClassVar[EventKind] = EventKind.PROBE
    was: str | None  # None: no probe before
    status: str
    detail: str = ""

    def to_fields(self) -> dict[str, Any]:
        return {"was": self.was, "status": self.status, "detail": self.detail}

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> ProbeChanged:
        was = d.get("was")
        shown = _text(was) if was is not None else None
        return cls(shown, _text(d.get("status")), _text(d.get("detail")))


@dataclass(frozen=True)
class TickDone:
    KIND: ClassVar[EventKind] = EventKind.TICK
    reason: str
    status: int = 0  # the check's exit status

    def to_fields(self) -> dict[str, Any]:
        return {"reason": self.reason, "status": self.status}

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> TickDone:
        return cls(_text(d.get("reason")), _int(d.get("status")))


@dataclass(frozen=True)
class DeadlineHit(_Texts):
    KIND: ClassVar[EventKind] = EventKind.DEADLINE
    reason: str


@dataclass(frozen=True)
class Reconciled(_Texts):
    KIND: ClassVar[EventKind] = EventKind.RECONCILED
    warning: str
    result: str
    kept_as: str = ""  # where the unreadable state file was set aside


@dataclass(frozen=True)
class Paused(_Texts):
    KIND: ClassVar[EventKind] = EventKind.PAUSED


@dataclass(frozen=True)
class Resumed(_Texts):
    KIND: ClassVar[EventKind] = EventKind.RESUMED


@dataclass(frozen=True)
class _CoordFacts:
    """A coordination event: facts about the leader key, the guard or a verdict."""

    action: str = ""  # acquire | refresh | release | fence_self | start_self ...
    ok: bool | None = None
    holder: str = ""  # the key's holder (leader, leader_seen)
    was: str = ""  # the holder before (leader_seen)
    reason: str = ""
    error: str = ""  # masked
    steps: tuple[str, ...] = ()
    lost_for: float | None = None  # seconds without an etcd quorum (coordination_back)
    lease: str = ""  # the guard's lease id

    def to_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value not in ("", None, ()):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> Self:
        ok = d.get("ok")
        return cls(
            action=_text(d.get("action") or d.get("do")),
            ok=ok if isinstance(ok, bool) else None,
            holder=_text(d.get("holder")),
            was=_text(d.get("was")),
            reason=_text(d.get("reason")),
            error=_text(d.get("error")),
            steps=_texts(d.get("steps")),
            lost_for=_number(d.get("lost_for")),
            lease=_text(d.get("lease")),
        )


@dataclass(frozen=True)
class LeaderKey(_CoordFacts):
    KIND: ClassVar[EventKind] = EventKind.LEADER


@dataclass(frozen=True)
class LeaderSeen(_CoordFacts):
    KIND: ClassVar[EventKind] = EventKind.LEADER_SEEN


@dataclass(frozen=True)
class Guard(_CoordFacts):
    KIND: ClassVar[EventKind] = EventKind.GUARD


@dataclass(frozen=True)
class GuardSeen(_CoordFacts):
    KIND: ClassVar[EventKind] = EventKind.GUARD_SEEN


@dataclass(frozen=True)
class CoordVerdict(_CoordFacts):
    KIND: ClassVar[EventKind] = EventKind.COORDINATION


@dataclass(frozen=True)
class CoordBack(_CoordFacts):
    KIND: ClassVar[EventKind] = EventKind.COORDINATION_BACK


@dataclass(frozen=True)
class SelfAction(_CoordFacts):
    KIND: ClassVar[EventKind] = EventKind.SELF


COORD_EVENTS: dict[str, type[_CoordFacts]] = {
    cls.KIND.value: cls
    for cls in (LeaderKey, LeaderSeen, Guard, GuardSeen, CoordVerdict, CoordBack, SelfAction)
}


def coord_event(kind: str, **facts: Any) -> Payload:
    """The typed event coord/ reports as ``kind`` plus keyword facts (``do`` = action)."""
    return COORD_EVENTS[kind].read(facts)  # type: ignore[return-value]


Payload = (
    Transition
    | TookOver
    | GaveBack
    | RestartedLocal
    | Fenced
    | SyncedBack
    | NoticeQueued
    | NoticeSent
    | NoticeDropped
    | NoticeFailed
    | ProbeChanged
    | TickDone
    | DeadlineHit
    | Reconciled
    | Paused
    | Resumed
    | LeaderKey
    | LeaderSeen
    | Guard
    | GuardSeen
    | CoordVerdict
    | CoordBack
    | SelfAction
)
PAYLOADS: dict[EventKind, type[Payload]] = {cls.KIND: cls for cls in get_args(Payload)}


# --------------------------------------------------------------------------- the envelope


@dataclass(frozen=True)
class Event:
    """One line of ``events.jsonl``: when (Unix time) and what."""

    ts: float
    payload: Payload

    @property
    def kind(self) -> EventKind:
        return self.payload.KIND

    @property
    def at(self) -> str | None:
        """``ts`` as ISO 8601 UTC, or None when it cannot be shown (1e300 from a bad line)."""
        try:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.ts))
        except (OverflowError, OSError, ValueError):
            return None

    def to_json(self) -> dict[str, Any]:
        head: dict[str, Any] = {"v": EVENT_SCHEMA, "ts": round(self.ts, 3), "at": self.at}
        name = ACTION_NAMES.get(self.kind)
        kind = {"type": "action", "action": name} if name else {"type": str(self.kind)}
        return head | kind | self.payload.to_fields()


def parse_event(data: object) -> Event | None:
    """The typed event of one decoded line (schema 1 or 2), or None when it is not one."""
    if not isinstance(data, dict):
        return None
    ts = _number(data.get("ts"))
    kind_name = data.get("type")
    if ts is None or not isinstance(kind_name, str):
        return None
    if kind_name == "action":
        action = data.get("action")
        kind = _BY_ACTION.get(action) if isinstance(action, str) else None
    else:
        kind = EventKind(kind_name) if kind_name in _KIND_VALUES else None
    if kind is None or (kind in ACTION_NAMES and kind_name != "action"):
        return None  # an action's kind is only read in its wire form
    try:
        return Event(ts, PAYLOADS[kind].read(data))
    except (TypeError, ValueError, RecursionError):  # a payload beyond repair: skipped
        return None


_KIND_VALUES = frozenset(str(k) for k in EventKind)


# --------------------------------------------------------------------------- schema 1

# The one place sentences are read: schema-1 give-back lines carry their counts only
# in the step sentences that SyncReport.summary() wrote.
_LEGACY_ROWS = re.compile(r"rows synced back: (\d+) inserted, (\d+) updated")
_LEGACY_FILES = re.compile(r"files: (\d+) copied")


def _legacy_rows(texts: list[str]) -> tuple[int, int]:
    found = [m for t in texts for m in _LEGACY_ROWS.finditer(t)]
    return _int(sum(int(m[1]) for m in found)), _int(sum(int(m[2]) for m in found))


def _legacy_sync(common: Mapping[str, Any]) -> SyncCounts | None:
    """A schema-1 give-back's sync-back, from its steps (None when none ran)."""
    prefixes = ("rows synced back", "files: ", "sync-back")
    steps: tuple[str, ...] = common["steps"]
    sync = [s for s in steps if s.removeprefix("while still serving: ").startswith(prefixes)]
    if not sync:
        return None
    inserted, updated = _legacy_rows(sync)
    files = _int(sum(int(m[1]) for s in sync for m in _LEGACY_FILES.finditer(s)))
    skipped = next((s for s in sync if "sync-back skipped" in s), "")
    ok = not any("FAILED" in s for s in sync)
    return SyncCounts(ok, "; ".join(sync), skipped, inserted, updated, files=files)

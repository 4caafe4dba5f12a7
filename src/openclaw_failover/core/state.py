"""The standby's state (role, counters, the notice outbox) and its strict reader.

``State.from_json`` refuses anything odd (a wrong type, NaN, a time beyond year
5000) with ValueError, so a corrupt file is never half-trusted; reading and
writing the file is engine.store's job.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from openclaw_failover.core.model import Notice

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
MAX_TIME = 1e11  # seconds since 1970: year 5138; a larger time is a corrupt file


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

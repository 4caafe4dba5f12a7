"""Prometheus metrics in node_exporter's textfile-collector format, written after each check.

The file is written atomically (a temp file in the same directory, made world-readable
for node_exporter, then renamed), so the collector never reads half a file.  Writing it
never fails the check: a problem is logged as a warning and the check carries on.

No prometheus_client here (a healthy tick stays light): the text format is simple.
Samples carry no timestamps (the textfile collector rejects them); a value that is not
known (no probe yet, no sync-back yet, no replication figures) is left out, its HELP and
TYPE lines stay.

``ocf_last_syncback_*`` come from the newest successful sync-back in ``events.jsonl``
(a ``syncback`` event of ``ocf syncback``, or a give-back's, each with its counts as
data: ``core.events.SyncCounts``), read backwards from the end of the file through
``core.events.parse_event``, or from ``last_syncback=`` when the caller knows it.  Its
row count is the rows written into the primary (inserted plus updated, both passes of a
give-back); a files-only sync-back counts 0 rows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from openclaw_failover.core.events import Event, GaveBack, SyncedBack, parse_event
from openclaw_failover.core.model import ProbeStatus
from openclaw_failover.core.state import Role, State
from openclaw_failover.local import safefs

log = logging.getLogger(__name__)

ROLES = tuple(str(r) for r in Role)
PROBE_STATUSES = tuple(str(s) for s in ProbeStatus)

# name -> (type, help). The documented set: tests check that every one is written.
METRICS: dict[str, tuple[str, str]] = {
    "ocf_role": ("gauge", "1 for the current role of this standby, 0 for the others."),
    "ocf_role_since_timestamp_seconds": ("gauge", "When the current role began (Unix time)."),
    "ocf_last_tick_timestamp_seconds": ("gauge", "When the last check ended (Unix time)."),
    "ocf_last_tick_duration_seconds": ("gauge", "How long the last check took."),
    "ocf_last_tick_exit_status": (
        "gauge",
        "Exit status of the last check: 0 ran, 1 an action failed or the deadline hit.",
    ),
    "ocf_probe_status": ("gauge", "1 for the result of the last probe of the primary, 0 else."),
    "ocf_probe_latency_seconds": ("gauge", "How long the last probe of the primary took."),
    "ocf_consecutive_failed_checks": ("gauge", "Consecutive checks that found the primary down."),
    "ocf_consecutive_slow_checks": (
        "gauge",
        "Consecutive unhealthy checks since the primary answered too slowly (check.slow_fall).",
    ),
    "ocf_witnesses_answered": ("gauge", "Witnesses that answered when last asked."),
    "ocf_isolated": ("gauge", "1 while too few witnesses answer: no takeover."),
    "ocf_takeovers_total": ("counter", "Takeovers since the state file was created."),
    "ocf_givebacks_total": ("counter", "Give-backs since the state file was created."),
    "ocf_last_syncback_rows": (
        "gauge",
        "Rows the last successful sync-back wrote into the primary (inserted + updated).",
    ),
    "ocf_last_syncback_timestamp_seconds": (
        "gauge",
        "When the last successful sync-back finished (Unix time).",
    ),
    "ocf_replication_lag_bytes": ("gauge", "Replication lag primary -> standby in bytes."),
    "ocf_replication_lag_seconds": ("gauge", "Replication lag primary -> standby in seconds."),
    "ocf_pending_notices": ("gauge", "Notices waiting in the outbox (not yet accepted)."),
    "ocf_paused": ("gauge", "1 while paused (ocf pause): observing only, never acting."),
}

TAIL_CHUNK = 64 * 1024
TAIL_LIMIT = 4 * 1024 * 1024  # bytes of events.jsonl read backwards, at most, per check
_MARKERS = (b'"syncback"', b'"GiveBack"')  # only such lines can record a sync-back


def write_textfile(
    path: Path,
    state: State,
    *,
    tick_seconds: float,
    exit_status: int,
    replication: Mapping[str, float | None] | None = None,
    now: float,
    events_path: Path | None = None,
    last_syncback: tuple[float, int] | None = None,
) -> None:
    """Write the metrics of ``state`` and of the check that just ended to ``path``.

    ``replication``: optional ``{"lag_bytes": ..., "lag_seconds": ...}`` (None values
    are left out).  ``last_syncback``: ``(finished_at, rows)``; when None it is looked
    up in ``events_path`` (``StateStore.events_path``), if given.
    Never raises: an OSError (or any other problem) is logged as a warning.
    """
    try:
        if last_syncback is None and events_path is not None:
            last_syncback = find_last_syncback(events_path)
        text = render(
            state,
            tick_seconds=tick_seconds,
            exit_status=exit_status,
            replication=replication,
            now=now,
            last_syncback=last_syncback,
        )
        _write_atomically(Path(path), text)
    except OSError as exc:
        log.warning("cannot write the metrics file %s: %s", path, exc.strerror or exc)
    except Exception as exc:  # a metrics bug must never fail a check
        log.warning("cannot write the metrics file %s: %s: %s", path, type(exc).__name__, exc)


def render(
    state: State,
    *,
    tick_seconds: float,
    exit_status: int,
    replication: Mapping[str, float | None] | None = None,
    now: float,
    last_syncback: tuple[float, int] | None = None,
) -> str:
    """The textfile's content (exposition format 0.0.4, no timestamps)."""
    out = _Writer()
    role = str(state.role)
    out.family("ocf_role", [({"role": r}, 1 if r == role else 0) for r in _with(ROLES, role)])
    out.family("ocf_role_since_timestamp_seconds", [({}, state.since)] if state.since else [])
    out.family("ocf_last_tick_timestamp_seconds", [({}, now)])
    out.family("ocf_last_tick_duration_seconds", [({}, tick_seconds)])
    out.family("ocf_last_tick_exit_status", [({}, exit_status)])
    probe = state.last_probe or {}
    status = probe.get("status")
    statuses = _with(PROBE_STATUSES, status) if isinstance(status, str) else PROBE_STATUSES
    out.family("ocf_probe_status", [({"status": s}, 1 if s == status else 0) for s in statuses])
    latency = probe.get("latency")
    out.family("ocf_probe_latency_seconds", [({}, latency)] if _is_number(latency) else [])
    out.family("ocf_consecutive_failed_checks", [({}, state.failed_ticks)])
    out.family("ocf_consecutive_slow_checks", [({}, state.slow_ticks)])
    answered = (state.last_witnesses or {}).get("answered")
    seen: list[tuple[dict[str, str], Any]] = (
        [({}, len(answered))] if isinstance(answered, list) else []
    )
    out.family("ocf_witnesses_answered", seen)
    out.family("ocf_isolated", [({}, 1 if state.isolated_since is not None else 0)])
    out.family("ocf_takeovers_total", [({}, state.takeovers)])
    out.family("ocf_givebacks_total", [({}, state.givebacks)])
    at, rows = last_syncback if last_syncback else (None, None)
    out.family("ocf_last_syncback_rows", [({}, rows)] if rows is not None else [])
    out.family("ocf_last_syncback_timestamp_seconds", [({}, at)] if at is not None else [])
    repl = replication or {}
    for key in ("lag_bytes", "lag_seconds"):
        value = repl.get(key)
        out.family(f"ocf_replication_{key}", [({}, value)] if _is_number(value) else [])
    out.family("ocf_pending_notices", [({}, len(state.outbox))])
    out.family("ocf_paused", [({}, 1 if state.paused else 0)])
    return out.text()


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, samples: list[tuple[dict[str, str], Any]]) -> None:
        kind, text = METRICS[name]
        self.lines.append(f"# HELP {name} {_escape_help(text)}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _with(known: tuple[str, ...], value: str | None) -> tuple[str, ...]:
    """The known label values, plus ``value`` when it is an unexpected one."""
    return known if value is None or value in known else (*known, value)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number)


def _write_atomically(path: Path, text: str) -> None:
    """Temp file in the same directory (not matching *.prom), fsync, chmod 0644, rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # node_exporter usually runs as another user
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- sync-back


def find_last_syncback(events_path: Path, limit: int = TAIL_LIMIT) -> tuple[float, int] | None:
    """(finished_at, rows) of the newest successful sync-back in the events log, or None.

    Reads the file backwards in chunks, at most ``limit`` bytes, and parses only the
    lines that can be a sync-back; a missing or unreadable file is None.
    """
    try:
        for line in _lines_backwards(events_path, limit, _MARKERS):
            if not any(m in line for m in _MARKERS):
                continue
            try:
                event = parse_event(json.loads(line))
            except (ValueError, RecursionError):
                continue
            found = syncback_of(event) if event is not None else None
            if found is not None:
                return found
    except OSError:
        return None
    return None


def syncback_of(event: Event) -> tuple[float, int] | None:
    """(ts, rows) when ``event`` records a successful sync-back, else None."""
    p = event.payload
    if isinstance(p, SyncedBack | GaveBack) and p.sync is not None and p.sync.succeeded:
        return event.ts, p.sync.rows
    return None


def _lines_backwards(path: Path, limit: int, markers: tuple[bytes, ...] = ()) -> Iterator[bytes]:
    return safefs.lines_backwards(path, limit, markers, chunk=TAIL_CHUNK)

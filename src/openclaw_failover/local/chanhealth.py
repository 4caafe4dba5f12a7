"""Which of a gateway's channels fail, read from its readiness or health answer.

The real gateway (openclaw 2026.9.6) answers ``/readyz`` from loopback with
``{"ready": false, "failing": ["telegram"], "uptimeMs": ...}`` once a channel has
been unhealthy past its 120 s connect grace (or at once when it is blocked, e.g.
a 401), 503; ``failing`` also carries gateway-wide reasons (``startup-sidecars``
while it starts, ``gateway-draining``, ``state-database``, ``plugin-reload``,
``agent-database:<id>``, ``internal``), which are not channels.  The error text
itself lives in the gateway's health summary (``openclaw health --json``, the
``health`` RPC): ``{"channels": {"telegram": {"lastError": ..., "accounts":
{"default": {"lastError": "Telegram getUpdates conflict: ...", "healthState":
...}}}}}``; a body of that shape (a proxy, a newer gateway) gives the error too.

:func:`describe` makes the one line ocf reports: masked first (ocf's secrets and
any Bot API token in a URL), then shortened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openclaw_failover.config.secrets import shorten

NOT_CHANNELS = frozenset(
    {"startup-sidecars", "gateway-draining", "state-database", "plugin-reload", "internal"}
)
ERROR_CHARS = 160  # of one channel's error, after masking
LINE_CHARS = 300  # of the whole line
# A Bot API URL carries the bot's token ("/bot123456:AA.../getUpdates"); the gateway's
# token need not be one ocf knows, so it is masked by its shape as well.


@dataclass(frozen=True)
class ChannelFailure:
    channel: str
    error: str = ""  # as the gateway said it (not yet masked)


def _is_channel(name: str) -> bool:
    return bool(name) and name not in NOT_CHANNELS and not name.startswith("agent-database:")


def _error_of(entry: Any) -> str | None:
    """The error of one channel of a health summary, None when it looks healthy."""
    if not isinstance(entry, dict):
        return None
    candidates = [entry]
    accounts = entry.get("accounts")
    if isinstance(accounts, dict):
        candidates += [a for a in accounts.values() if isinstance(a, dict)]
    for item in candidates:
        raw = item.get("lastError")
        error = raw.strip() if isinstance(raw, str) else ""
        state = item.get("healthState")
        unhealthy = isinstance(state, str) and state not in ("", "healthy")
        if unhealthy or (error and not state):
            return error
    return None


def parse(body: str) -> list[ChannelFailure]:
    """The failing channels a readiness / health answer names, in its order; [] for
    anything else (not JSON, an older gateway's text, only gateway-wide reasons)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    found: dict[str, str] = {}
    failing = doc.get("failing")
    if isinstance(failing, list):
        for name in failing:
            if isinstance(name, str) and _is_channel(name.strip()):
                found.setdefault(name.strip(), "")
    channels = doc.get("channels")
    if isinstance(channels, dict):
        for name, entry in channels.items():
            error = _error_of(entry)
            if isinstance(name, str) and _is_channel(name) and error is not None:
                found[name] = error or found.get(name, "")
    return [ChannelFailure(name, error) for name, error in found.items()]


def only_channels(body: str) -> bool:
    """True when the answer's ``failing`` names channels and nothing gateway-wide: the
    gateway has started; waiting longer does not make it ready."""
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    failing = doc.get("failing") if isinstance(doc, dict) else None
    if not isinstance(failing, list) or not failing:
        return False
    return all(isinstance(n, str) and _is_channel(n.strip()) for n in failing)


def describe(failures: list[ChannelFailure], mask: Callable[[str], str]) -> str:
    """``up, but channel telegram failing: <error>``: masked, then shortened; "" for none."""
    if not failures:
        return ""
    parts = []
    for f in failures:
        error = shorten(mask(f.error), ERROR_CHARS)
        name = shorten(mask(f.channel), 40)
        parts.append(f"{name} failing: {error}" if error else f"{name} failing")
    noun = "channel" if len(failures) == 1 else "channels"
    return shorten(f"up, but {noun} {'; '.join(parts)}", LINE_CHARS)

"""After a takeover: is the standby's gateway ready, not only answering?

OpenClaw's gateway answers ``/healthz`` (liveness) seconds before ``/readyz``
(readiness: 503 ``{"ready":false,"failing":["startup-sidecars"]}`` while its
channels start, then 200).  ocf takes over once the gateway answers, then
waits for readiness within what is left of ``start_timeout`` and says which:
ready, no readiness endpoint (a 404: an older gateway, ready when answering),
or not ready and what it reported (a readiness URL that does not answer at all
is reported, not waited for).  A gateway whose readiness fails only for
channels (``"failing": ["telegram"]``) has started: it is not waited for, and
the failing channels are reported (:mod:`chanhealth`).  Only the takeover uses
this (urllib is not imported by a healthy check).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from openclaw_failover.config.loader import StandbyGateway
from openclaw_failover.config.secrets import shorten
from openclaw_failover.local import chanhealth

POLL = 0.5
REQUEST_TIMEOUT = 2.0
BODY = 200  # characters of a not-ready answer shown
READ = 65536  # bytes of an answer read (a health summary with channel errors)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    line: str  # masked
    channels: list[chanhealth.ChannelFailure] = field(default_factory=list)

    def channel_problem(self, mask: Callable[[str], str]) -> str:
        """``up, but channel X failing: ...`` (masked, shortened) or ""."""
        return chanhealth.describe(self.channels, mask)


def ready_url(gw: StandbyGateway) -> str:
    """``ready_url``, else the health URL's scheme, host and port with path /readyz."""
    if gw.ready_url:
        return gw.ready_url
    parts = urlsplit(gw.health_url)
    return urlunsplit((parts.scheme, parts.netloc, "/readyz", "", ""))


def _get(url: str) -> tuple[int, str]:
    """(status, start of the body); status 0 when nothing answered (the reason)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT) as resp:  # nosec B310 - http(s) from the schema
            return int(resp.status), resp.read(READ).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(READ).decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, str(reason) or type(exc).__name__


def check_ready(
    url: str,
    timeout: float,
    *,
    mask: Callable[[str], str] = str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Readiness:
    """Poll ``url`` for at most ``timeout`` seconds; what it said, masked."""
    end = clock() + timeout
    path = urlsplit(url).path or "/"
    while True:
        status, body = _get(url)
        channels = chanhealth.parse(body) if status else []
        if status == 200:
            return Readiness(True, f"gateway ready ({path} 200)", channels)
        if status == 404:
            return Readiness(True, f"no readiness endpoint ({path} 404): ready once answering")
        if not status:  # it answers on health_url: a wrong ready_url, not a slow gateway
            return Readiness(True, f"readiness not checked ({path}: {mask(body)})")
        why = f"HTTP {status}: {shorten(mask(body), BODY)}"
        if chanhealth.only_channels(body):  # started; a failing channel is reported
            return Readiness(False, f"gateway up, channels not ready ({path} {why})", channels)
        if clock() >= end:
            line = f"gateway answering but not ready after {timeout:g}s ({path} {why})"
            return Readiness(False, line, channels)
        sleep(POLL)


def await_ready(
    url: str,
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[bool, str]:
    """(ready, one line) after polling ``url`` for at most ``timeout`` seconds."""
    r = check_ready(url, timeout, sleep=sleep, clock=clock)
    return r.ready, r.line

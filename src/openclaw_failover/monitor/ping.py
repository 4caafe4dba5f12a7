"""The dead-man's-switch ping: who watches the watchdog.

The healthchecks.io convention: after a check that ran, GET the URL; after one that
failed, GET the URL + ``/fail``.  When the standby dies, or cron / the timer stops
running ``ocf check``, the pings stop and the service alerts.  An Uptime Kuma push URL
(``.../api/push/TOKEN?status=up&msg=OK&ping=``) works too: for a failure its
``status=up`` becomes ``status=down`` instead of a ``/fail`` suffix.

stdlib only (urllib, imported when a ping is sent); a short timeout; never raises.
The URL is never logged whole (its token lets anyone ping): only its host.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from openclaw_failover import __version__
from openclaw_failover.config.secrets import one_line, shorten

OK_PREFIX = "ping ok"
FAILED_PREFIX = "ping failed"
MAX_BODY = 1024


def ping_target(url: str, *, ok: bool) -> str:
    """The URL to GET: ``url`` itself on success, the failure form of it otherwise."""
    if ok:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "status" for k, _ in query):  # Uptime Kuma push monitor
        query = [(k, "down" if k == "status" else v) for k, v in query]
        return urlunsplit(parts._replace(query=urlencode(query)))
    path = parts.path.rstrip("/") + "/fail"
    return urlunsplit(parts._replace(path=path))


def ping(url: str, *, ok: bool, timeout: float, mask: Callable[[str], str]) -> str:
    """GET the success or failure URL; return one line for the log, never raise.

    The line starts with ``ping ok`` when the service took the ping (HTTP 2xx),
    ``ping failed`` otherwise (see :func:`succeeded`).
    """
    what = "success" if ok else "failure"
    try:
        target = ping_target(url, ok=ok)
        host = urlsplit(target).hostname or "?"
    except ValueError as exc:
        return shorten(mask(f"{FAILED_PREFIX}: bad ping URL: {exc}"), 300)
    started = time.monotonic()
    try:
        import urllib.error
        import urllib.request

        if urlsplit(target).scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: scheme {urlsplit(target).scheme!r}")
        request = urllib.request.Request(
            target, headers={"User-Agent": f"ocf/{__version__}"}, method="GET"
        )
        # the scheme is checked to be http(s) just above
        with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310
            response.read(MAX_BODY)
            code = int(response.status)
        took = time.monotonic() - started
        if 200 <= code < 300:
            return mask(f"{OK_PREFIX}: {what} sent to {host}, HTTP {code} in {took:.2f}s")
        return mask(f"{FAILED_PREFIX}: {what} to {host}: HTTP {code} in {took:.2f}s")
    except Exception as exc:  # never fail the check for a ping
        took = time.monotonic() - started
        why = _why(exc).replace(target, host).replace(url, host)  # the token stays out
        return shorten(mask(f"{FAILED_PREFIX}: {what} to {host}: {why} after {took:.2f}s"), 300)


def succeeded(line: str) -> bool:
    """Did the ping that returned ``line`` reach the service?"""
    return line.startswith(OK_PREFIX)


def _why(exc: Exception) -> str:
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return "timed out"
        text = getattr(reason, "strerror", None) or str(reason)
        return one_line(str(text))
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return one_line(exc.strerror)
    return one_line(f"{type(exc).__name__}: {exc}")

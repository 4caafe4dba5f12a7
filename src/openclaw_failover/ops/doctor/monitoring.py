"""`ocf doctor`: the monitoring group (``metrics.textfile`` and ``monitoring.ping_url``).

The metrics file's folder must exist and be writable by this user (the file is
replaced atomically after each check, so the folder is what matters).  The ping
URL's host must answer, but the ping itself is never sent: a success would tell
the monitoring service that a check ran.  Only ``scheme://host[:port]/`` is
requested, with HEAD, and any HTTP answer counts as reachable.  The URL is
shown by its host only (its path is a token that lets anyone ping).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from openclaw_failover import __version__
from openclaw_failover.ops.doctor.base import DoctorContext, Sink

PLACEHOLDER = "your-check-uuid"


def check_monitoring(ctx: DoctorContext, out: Sink) -> None:
    mon = ctx.cfg.monitoring
    if mon.metrics_textfile is None and not mon.ping_url:
        out.skip("no metrics: or monitoring: section")
        return
    if mon.metrics_textfile is not None:
        metrics_folder(out, mon.metrics_textfile)
    if mon.ping_url:
        ping_host(out, mon.ping_url, mon.ping_timeout)


def metrics_folder(out: Sink, textfile: os.PathLike[str]) -> None:
    path = os.fspath(textfile)
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        out.fail(
            f"metrics.textfile: folder {folder} does not exist",
            f"mkdir -p {folder} (node_exporter reads it with --collector.textfile.directory),"
            " or remove the metrics: section",
        )
    elif not os.access(folder, os.W_OK | os.X_OK):
        out.fail(
            f"metrics.textfile: folder {folder} is not writable by this user",
            f"give this user write access to {folder} (e.g. chgrp + chmod g+w)",
        )
    elif os.path.exists(path) and not os.access(path, os.W_OK):
        out.fail(f"metrics.textfile {path} is not writable", f"chown/chmod {path}")
    else:
        out.ok(f"metrics.textfile: folder {folder} is writable")


def ping_host(out: Sink, url: str, timeout: float) -> None:
    """HEAD ``scheme://host/``: reachable or not, without sending the ping."""
    import urllib.error
    import urllib.request

    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        out.fail(f"monitoring.ping_url is not a URL: {exc}", "fix monitoring.ping_url")
        return
    if parts.scheme not in ("http", "https") or not host:
        out.fail("monitoring.ping_url is not an http(s) URL", "fix monitoring.ping_url")
        return
    if PLACEHOLDER in url:
        out.fail(
            f"monitoring.ping_url is the example's placeholder ({host}/{PLACEHOLDER})",
            "put your own check's URL (healthchecks.io, Uptime Kuma), or remove monitoring:",
        )
        return
    base = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], "/", "", ""))
    request = urllib.request.Request(
        base, headers={"User-Agent": f"ocf/{__version__} doctor"}, method="HEAD"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # nosec B310 - http(s) checked
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)  # any HTTP answer: the host is there
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        out.fail(
            f"monitoring.ping_url: {host} not reachable: {reason}",
            "check DNS and the network from this host (the ping is sent after each check)",
        )
        return
    out.ok(f"monitoring.ping_url: {host} answers (HTTP {status}; no ping sent)")

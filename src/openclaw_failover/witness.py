"""Witnesses: can this standby reach the rest of the world?

Before a takeover the standby asks a few independent witnesses (the LAN router,
``api.telegram.org:443``, ...).  A witness is ``host:port`` (answered = a TCP
connection was accepted) or an http(s) URL (answered = any HTTP status).  This
module only observes; ``decide`` compares the count with ``check.witness_quorum``.
All witnesses are asked at once, so a check waits at most ``check.witness_timeout``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from openclaw_failover.config import Config
from openclaw_failover.model import WitnessReport
from openclaw_failover.runner import Masker

if TYPE_CHECKING:
    from openclaw_failover.doctor import DoctorContext, Sink


def ask_witness(witness: str, timeout: float) -> str:
    """'' when ``witness`` answered within ``timeout``, else why not (one line)."""
    try:
        if "://" in witness:
            _http(witness, timeout)
        else:
            host, _, port = witness.rpartition(":")
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except ssl.SSLError as exc:
        return f"TLS failed: {exc.reason or type(exc).__name__}"
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    except (http.client.HTTPException, ValueError) as exc:
        return f"no HTTP answer ({str(exc) or type(exc).__name__})"
    return ""


def _http(url: str, timeout: float) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, parts.port or 443, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)
    try:
        conn.request("HEAD", parts.path or "/")
        conn.getresponse()  # any HTTP status: somebody answered
    finally:
        conn.close()


def check_witnesses(cfg: Config, mask: Masker) -> WitnessReport | None:
    """Ask every configured witness at once; None when none are configured."""
    witnesses = cfg.check.witnesses
    if not witnesses:
        return None
    timeout = cfg.check.witness_timeout
    with ThreadPoolExecutor(max_workers=len(witnesses)) as pool:
        whys = list(pool.map(lambda w: ask_witness(w, timeout), witnesses))
    answered = tuple(w for w, why in zip(witnesses, whys, strict=True) if not why)
    failed = tuple((w, mask(why)) for w, why in zip(witnesses, whys, strict=True) if why)
    return WitnessReport(answered, failed)


def doctor_witnesses(ctx: DoctorContext, out: Sink) -> None:
    """`ocf doctor`: ask every witness now and compare with the quorum."""
    check = ctx.cfg.check
    if not check.witnesses:
        out.skip(
            "no check.witnesses: a standby cut off from everything would still take over",
            'set check.witnesses (the LAN router, api.telegram.org:443); see README "Isolation"',
        )
        return
    report = check_witnesses(ctx.cfg, ctx.mask)
    assert report is not None
    for witness in report.answered:
        out.ok(f"witness {witness} answers")
    for witness, why in report.failed:
        out.warn(f"witness {witness} does not answer: {why}", "check the address and firewall")
    line = f"{len(report.answered)}/{report.total} witnesses answer, quorum {check.witness_quorum}"
    if len(report.answered) >= check.witness_quorum:
        out.ok(f"{line}: a takeover is allowed")
    else:
        out.fail(
            f"{line}: this standby counts itself isolated and would NOT take over",
            "fix the witnesses (or the network), or lower check.witness_quorum",
        )

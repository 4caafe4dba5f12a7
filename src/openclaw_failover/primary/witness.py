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
from urllib.parse import urlsplit

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.model import WitnessReport


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

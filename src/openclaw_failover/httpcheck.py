"""A minimal HTTP health request, usable over any socket-like object.

The probe sends it through an SSH ``direct-tcpip`` channel; the local gateway
check sends it over a plain TCP socket.  Only the status line matters: any
answer below 500 means the gateway is alive (older OpenClaw versions answer
404 on ``/healthz``, and a 404 must never cause a failover).
"""

from __future__ import annotations

import http.client
import socket
from typing import Any
from urllib.parse import urlsplit

# A connected socket or anything socket-like (a paramiko Channel): it needs
# sendall, makefile, settimeout and close.
SocketLike = Any


def split_url(url: str) -> tuple[str, int, str]:
    """(host, port, path-with-query) of an http(s) URL."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname or "127.0.0.1", port, path


def is_alive(status: int) -> bool:
    """An HTTP status that proves the gateway is running."""
    return 100 <= status < 500


class _SockConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, sock: SocketLike, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.sock = sock

    def connect(self) -> None:  # the socket is already connected
        return None


def get_status_over(sock: SocketLike, url: str, timeout: float) -> int:
    """Send ``GET url`` over an already connected socket-like object; return the status.

    Raises OSError (including socket.timeout) or http.client.HTTPException.
    """
    host, port, path = split_url(url)
    sock.settimeout(timeout)
    conn = _SockConnection(host, port, sock, timeout)
    try:
        conn.request(
            "GET", path, headers={"User-Agent": "openclaw-failover", "Connection": "close"}
        )
        resp = conn.getresponse()
        return resp.status
    finally:
        conn.close()


def get_status(url: str, timeout: float) -> int:
    """``GET url`` over TCP (https: TLS without certificate checks, for loopback use)."""
    host, port, _ = split_url(url)
    sock = socket.create_connection((host, port), timeout=timeout)
    if url.startswith("https:"):
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname=host)
    return get_status_over(sock, url, timeout)


def answers(url: str, timeout: float) -> bool:
    """True when something at ``url`` gives an HTTP answer below 500."""
    try:
        return is_alive(get_status(url, timeout))
    except (OSError, http.client.HTTPException):
        return False

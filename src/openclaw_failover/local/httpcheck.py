"""A minimal HTTP health request, usable over any socket-like object.

The probe sends it through an SSH ``direct-tcpip`` channel; the local gateway
check sends it over a plain TCP socket.  Only the status line matters: any
answer below 500 means the gateway is alive (older OpenClaw versions answer
404 on ``/healthz``, and a 404 must never cause a failover).
"""

from __future__ import annotations

import re
import socket
from typing import Any
from urllib.parse import urlsplit

# A connected socket or anything socket-like (a paramiko Channel): it needs
# sendall, recv, settimeout and close.
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


class NoAnswer(ConnectionError):
    """The connection closed before an HTTP status line arrived."""


class BadAnswer(OSError):
    """Something answered, but not with an HTTP status line."""


_STATUS_LINE = re.compile(rb"HTTP/\d(?:\.\d)? (\d{3})(?:[ \r\n]|$)")
MAX_LINE = 4096


def get_status_over(sock: SocketLike, url: str, timeout: float) -> int:
    """Send ``GET url`` over an already connected socket-like object; return the status.

    Only the status line is read (HTTP/1.0, ``Connection: close``), so a tick
    needs no HTTP library.  Raises OSError: socket.timeout, NoAnswer, BadAnswer.
    """
    host, port, path = split_url(url)
    sock.settimeout(timeout)
    hostport = host if port in (80, 443) else f"{host}:{port}"
    request = (
        f"GET {path} HTTP/1.0\r\nHost: {hostport}\r\nUser-Agent: openclaw-failover\r\n"
        "Connection: close\r\n\r\n"
    )
    sock.sendall(request.encode("utf-8"))
    line = _read_line(sock)
    match = _STATUS_LINE.match(line)
    if not match:
        raise BadAnswer(f"not an HTTP answer: {line[:60]!r}")
    return int(match.group(1))


def _read_line(sock: SocketLike) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < MAX_LINE:
        chunk = sock.recv(MAX_LINE)
        if not chunk:
            if data:
                break
            raise NoAnswer("connection closed without an HTTP answer")
        data += chunk
    return data.split(b"\n", 1)[0]


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
    try:
        return get_status_over(sock, url, timeout)
    finally:
        sock.close()


def answers(url: str, timeout: float) -> bool:
    """True when something at ``url`` gives an HTTP answer below 500."""
    try:
        return is_alive(get_status(url, timeout))
    except (OSError, ValueError):
        return False

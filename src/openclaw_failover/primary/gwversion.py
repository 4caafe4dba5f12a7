"""The OpenClaw gateway's version, for `ocf doctor`: ``GET /startupz`` on each host.

The real gateway answers ``/startupz`` with ``{"ok":true,"status":"started","version":...}``.
The primary's is read through an SSH ``direct-tcpip`` channel (as the probe reaches its
health URL); the standby's over loopback.  A gateway that is not running (the standby's,
while the primary serves) is asked through its CLI instead: ``openclaw --version``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.local import httpcheck
from openclaw_failover.primary import remote

MAX_BODY = 64 * 1024
_VALUE_OPTIONS = ("--profile", "--container", "--log-level")
_CLI_VERSION = re.compile(r"OpenClaw (\d[\w.+-]*)")


def startupz_url(health_url: str) -> str:
    parts = urlsplit(health_url)
    return urlunsplit((parts.scheme, parts.netloc, "/startupz", "", ""))


def get_json_over(sock: httpcheck.SocketLike, url: str, timeout: float) -> tuple[int, object]:
    """``GET url`` (HTTP/1.0) over a connected socket-like: (status, JSON body). Raises
    OSError, or ValueError when the answer is not HTTP with a JSON body."""
    host, port, path = httpcheck.split_url(url)
    sock.settimeout(timeout)
    hostport = host if port in (80, 443) else f"{host}:{port}"
    sock.sendall(
        f"GET {path} HTTP/1.0\r\nHost: {hostport}\r\nUser-Agent: openclaw-failover\r\n"
        "Connection: close\r\n\r\n".encode("ascii")
    )
    data = b""
    while len(data) <= MAX_BODY:
        chunk = sock.recv(8192)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1:2]
    if not status or not status[0].isdigit():
        raise ValueError("not an HTTP answer")
    try:
        return int(status[0]), json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        raise ValueError(f"HTTP {int(status[0])}") from None


def _version(answer: tuple[int, object]) -> str:
    """The version in a /startupz answer; it is there while starting (503) too."""
    status, doc = answer
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or not version:
        raise ValueError(f"HTTP {status}" if status != 200 else "no version in the answer")
    return version[:40] + (", still starting" if status == 503 else "")


def local_version(url: str, timeout: float) -> str:
    """The version the gateway at ``url`` reports; raises OSError/ValueError."""
    host, port, _ = httpcheck.split_url(url)
    if urlsplit(url).scheme != "http":
        raise ValueError("only http:// health URLs are read")
    with socket.create_connection((host, port), timeout=timeout) as sock:
        return _version(get_json_over(sock, startupz_url(url), timeout))


def primary_version(cfg: Config, timeout: float) -> str:
    """The primary's gateway version through an SSH channel; raises RemoteError/OSError/
    ValueError."""
    url = cfg.primary.gateway.health_url
    if urlsplit(url).scheme != "http":
        raise ValueError("only http:// health URLs are read")
    host, port, _ = httpcheck.split_url(url)
    client = remote.connect(cfg)
    try:
        transport = client.get_transport()
        if transport is None:
            raise OSError("SSH session closed")
        chan = transport.open_channel(
            "direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=timeout
        )
        try:
            return _version(get_json_over(chan, startupz_url(url), timeout))
        finally:
            chan.close()
    finally:
        client.close()


def cli_version(
    command: Sequence[str] | None, env: Mapping[str, str], timeout: float, mask: Masker
) -> str:
    """``<openclaw> --version`` for a start command whose program is the openclaw CLI."""
    if not command or not os.path.basename(command[0]).startswith("openclaw"):
        raise ValueError("the start command does not run the openclaw CLI")
    try:
        res = subprocess.run(
            [command[0], "--version"],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ValueError(mask(f"{command[0]} --version: {exc}")) from None
    found = _CLI_VERSION.search(res.stdout)
    if res.returncode != 0 or not found:
        raise ValueError(mask(f"{command[0]} --version: exit {res.returncode}"))
    return found.group(1)


def command_problem(argv: Sequence[str] | None) -> str | None:
    """What is wrong with an ``openclaw ...`` start/stop command when run unattended, or None.

    Measured on openclaw 2026.9.6: ``gateway stop`` exits 1 without ``--force`` when not
    run from a terminal; ``gateway status`` exits 0 even when the gateway is down unless
    given ``--require-rpc``; ``health`` waits 60 s for a gateway that is down unless given
    ``--timeout``."""
    if not argv or not os.path.basename(argv[0]).startswith("openclaw"):
        return None
    args = list(argv[1:])
    for opt in _VALUE_OPTIONS:  # `--profile NAME`: NAME is not a subcommand
        while opt in args[:-1]:
            i = args.index(opt)
            del args[i : i + 2]
    words = [w for w in args if not w.startswith("-")]
    flags = {w.split("=", 1)[0] for w in argv[1:] if w.startswith("-")}
    if words[:2] == ["gateway", "stop"] and "--force" not in flags:
        return "`openclaw gateway stop` exits 1 unattended without --force"
    if words[:2] == ["gateway", "status"] and "--require-rpc" not in flags:
        return "`openclaw gateway status` exits 0 with the gateway down unless --require-rpc"
    if words[:1] == ["health"] and "--timeout" not in flags:
        return "`openclaw health` waits 60 s for a gateway that is down unless --timeout"
    return None

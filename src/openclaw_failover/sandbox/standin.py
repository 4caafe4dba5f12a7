"""ocf's built-in SSH stand-in for the sandbox's primary, when OpenSSH is not installed.

    python -m openclaw_failover.sandbox.standin --port N --host-key FILE --authorized-keys FILE

A minimal SSH server on 127.0.0.1 written with paramiko's server API, enough
for ocf's probe and fencing to work unchanged: public-key login with the keys
in ``--authorized-keys`` (any user name: it runs as whoever started it),
``direct-tcpip`` channels to 127.0.0.1 (a refused connection is reported as
``SSH_OPEN_CONNECT_FAILED``, as sshd does) and ``exec`` of commands through
``/bin/sh -c`` with their output and exit status.  No shell, no SFTP, no
stdin to commands: workspace files (rsync) are not synced in this mode.
Exits on SIGTERM or SIGINT, dropping every session (a host going down).
"""

from __future__ import annotations

import argparse
import contextlib
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import paramiko
from paramiko import common

LOOPBACK = "127.0.0.1"
_CHUNK = 32768


class _Server(paramiko.ServerInterface):
    """One connection's policy: who may log in, which channels and requests."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.forwards: dict[int, socket.socket] = {}

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if key.get_base64() in self.allowed:
            return common.AUTH_SUCCESSFUL
        return common.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return common.OPEN_SUCCEEDED
        return common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_direct_tcpip_request(
        self, chanid: int, origin: tuple[str, int], destination: tuple[str, int]
    ) -> int:
        host, port = destination
        if host not in (LOOPBACK, "localhost"):
            return common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        try:
            self.forwards[chanid] = socket.create_connection((LOOPBACK, port), timeout=5)
        except OSError:
            return common.OPEN_FAILED_CONNECT_FAILED
        return common.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        text = command.decode("utf-8", "replace")
        threading.Thread(target=_run, args=(channel, text), daemon=True).start()
        return True


def _run(channel: paramiko.Channel, command: str) -> None:
    """Run ``command`` like sshd would (``sh -c``); send its output and exit status."""
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=300,
            check=False,
        )
        channel.sendall(proc.stdout)
        channel.sendall_stderr(proc.stderr)
        channel.send_exit_status(proc.returncode)
    except subprocess.TimeoutExpired:
        channel.send_exit_status(124)
    except Exception as exc:
        with contextlib.suppress(Exception):
            channel.sendall_stderr(f"stand-in: {exc}\n".encode())
            channel.send_exit_status(255)
    finally:
        with contextlib.suppress(Exception):
            channel.shutdown_write()
            channel.close()


def _pump(channel: paramiko.Channel, sock: socket.socket) -> None:
    """Copy bytes both ways between a direct-tcpip channel and its TCP connection."""
    try:
        while True:
            watched: list[Any] = [channel, sock]
            ready, _, _ = select.select(watched, [], [], 1.0)
            if channel in ready:
                data = channel.recv(_CHUNK)
                if not data:
                    break
                sock.sendall(data)
            if sock in ready:
                data = sock.recv(_CHUNK)
                if not data:
                    break
                channel.sendall(data)
    except OSError:
        pass
    finally:
        sock.close()
        channel.close()


def _serve(conn: socket.socket, host_key: paramiko.PKey, allowed: set[str]) -> None:
    """One SSH connection: handshake, then hand out channels until it closes."""
    transport = paramiko.Transport(conn)
    transport.add_server_key(host_key)
    server = _Server(allowed)
    try:
        transport.start_server(server=server)
        while transport.is_active():
            channel = transport.accept(timeout=1.0)
            if channel is None:
                continue
            sock = server.forwards.pop(channel.get_id(), None)
            if sock is not None:
                threading.Thread(target=_pump, args=(channel, sock), daemon=True).start()
    except (paramiko.SSHException, EOFError, OSError):
        pass
    finally:
        transport.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m openclaw_failover.sandbox.standin")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host-key", required=True)
    ap.add_argument("--authorized-keys", required=True)
    args = ap.parse_args(argv)
    host_key = paramiko.Ed25519Key.from_private_key_file(args.host_key)
    lines = Path(args.authorized_keys).read_text().splitlines()
    allowed = {line.split()[1] for line in lines if len(line.split()) >= 2}
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((LOOPBACK, args.port))
    except OSError as exc:
        print(f"ssh stand-in: cannot listen on {LOOPBACK}:{args.port}: {exc}", file=sys.stderr)
        return 2
    listener.listen(16)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_serve, args=(conn, host_key, allowed), daemon=True).start()
    listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

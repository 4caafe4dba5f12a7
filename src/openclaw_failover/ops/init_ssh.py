"""`ocf init`: what it learns over SSH (host key, OS, the OpenClaw config) and proposes from it.

Host keys are fetched and shown, never trusted by themselves: :func:`add_known_host`
is called only after the user confirmed the fingerprint (or passed it with
``--accept-host-key``).  Commands run with the configured key and the
known_hosts file only (no agent, unknown keys rejected), like ``ocf check``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from openclaw_failover.config.secrets import describe
from openclaw_failover.primary.remote import check_key_file, known_hosts_name

DEFAULT_PORT = 18789
GATEWAY_LABEL = "ai.openclaw.gateway"
GATEWAY_UNIT = "openclaw-gateway.service"
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256")
#: ssh-keygen -lf on the primary: the host key file per key type.
HOST_KEY_FILES = {
    "ssh-ed25519": "/etc/ssh/ssh_host_ed25519_key.pub",
    "ecdsa-sha2-nistp256": "/etc/ssh/ssh_host_ecdsa_key.pub",
    "ssh-rsa": "/etc/ssh/ssh_host_rsa_key.pub",
}
#: One command, one connection: OS, uid, home, then the OpenClaw config (may be absent).
FACTS_COMMAND = 'uname -s; id -u; echo "$HOME"; cat "$HOME/.openclaw/openclaw.json" 2>/dev/null'


class InitError(Exception):
    """A step of `ocf init` cannot go on; the message says what to do."""


@dataclass(frozen=True)
class HostKey:
    key: paramiko.PKey

    @property
    def kind(self) -> str:
        return self.key.get_name()

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` as ``ssh-keygen -lf`` prints it."""
        digest = hashlib.sha256(self.key.asbytes()).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    def compare_command(self) -> str:
        """What to run on the primary to see the same fingerprint."""
        path = HOST_KEY_FILES.get(self.kind, "/etc/ssh/ssh_host_*_key.pub")
        return f"ssh-keygen -lf {path}"


@dataclass(frozen=True)
class PrimaryFacts:
    os: str  # macos | linux | other uname
    uid: str
    home: str
    gateway_port: int | None  # from ~/.openclaw/openclaw.json


def fetch_host_key(host: str, port: int, timeout: float, prefer: tuple[str, ...] = ()) -> HostKey:
    """The key the primary's sshd presents (key exchange only, no login)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise InitError(f"cannot reach {host}:{port}: {exc.strerror or exc}") from None
    transport = paramiko.Transport(sock)
    try:
        options = transport.get_security_options()
        wanted = [k for k in (*prefer, *KEY_TYPES) if k in options.key_types]
        options.key_types = tuple(dict.fromkeys(wanted))
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        return HostKey(transport.get_remote_server_key())
    except Exception as exc:
        raise InitError(f"no SSH host key from {host}:{port}: {describe(exc)}") from None
    finally:
        transport.close()


def known_host_keys(known_hosts: Path, host: str, port: int) -> dict[str, paramiko.PKey]:
    """The keys known_hosts holds for the primary (key type -> key); {} when none."""
    if not known_hosts.is_file():
        return {}
    try:
        keys = paramiko.HostKeys(str(known_hosts)).lookup(known_hosts_name(host, port))
    except (OSError, paramiko.SSHException) as exc:
        raise InitError(f"cannot read {known_hosts}: {describe(exc)}") from None
    return dict(keys) if keys else {}


def add_known_host(known_hosts: Path, host: str, port: int, key: HostKey) -> None:
    """Append the confirmed key (the folder 0700, a new file 0600)."""
    known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = f"{known_hosts_name(host, port)} {key.kind} {key.key.get_base64()}\n"
    fd = os.open(known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(line)


def run_on_primary(
    host: str, port: int, user: str, key_file: Path, known_hosts: Path, command: str, timeout: float
) -> str:
    """Run ``command`` on the primary (strict host key, this key only); its stdout."""
    try:
        pkey = check_key_file(key_file)
    except Exception as exc:
        raise InitError(f"SSH key {key_file}: {describe(exc)}") from None
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(str(known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            hostname=host,
            port=port,
            username=user,
            pkey=pkey,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            look_for_keys=False,
            allow_agent=False,
        )
        _stdin, stdout, _stderr = client.exec_command(command, timeout=timeout)
        return stdout.read().decode("utf-8", "replace")
    except paramiko.AuthenticationException:
        raise InitError(f"{user}@{host} does not accept the key {key_file}") from None
    except Exception as exc:
        raise InitError(f"SSH to {user}@{host}:{port} failed: {describe(exc)}") from None
    finally:
        client.close()


def parse_facts(output: str) -> PrimaryFacts:
    """:data:`FACTS_COMMAND`'s output -> what init proposes from."""
    lines = output.split("\n", 3)
    while len(lines) < 4:
        lines.append("")
    uname, uid, home, config = (part.strip() for part in lines)
    kind = {"Darwin": "macos", "Linux": "linux"}.get(uname, uname.lower() or "unknown")
    return PrimaryFacts(kind, uid, home, gateway_port(config))


def gateway_port(text: str) -> int | None:
    """``gateway.port`` from an OpenClaw config (JSON, or JSON5 with comments); None if absent."""
    if not text.strip():
        return None
    try:
        doc = json.loads(text)
        port = doc.get("gateway", {}).get("port") if isinstance(doc, dict) else None
    except (ValueError, AttributeError):
        match = re.search(r'["\']?gateway["\']?\s*:\s*\{[^{}]*?["\']?port["\']?\s*:\s*(\d+)', text)
        port = int(match.group(1)) if match else None
    return port if isinstance(port, int) and 0 < port < 65536 else None


def gateway_commands(facts: PrimaryFacts) -> tuple[str, str] | None:
    """(stop, start) for the primary's gateway, by its OS; None when it is neither."""
    if facts.os == "macos":
        plist = f"{facts.home or '~'}/Library/LaunchAgents/{GATEWAY_LABEL}.plist"
        # KeepAlive restarts a merely stopped gateway: fence by unloading the agent.
        return (
            f"launchctl bootout gui/{facts.uid}/{GATEWAY_LABEL}",
            f"launchctl bootstrap gui/{facts.uid} {plist}",
        )
    if facts.os == "linux":
        return (f"systemctl --user stop {GATEWAY_UNIT}", f"systemctl --user start {GATEWAY_UNIT}")
    return None

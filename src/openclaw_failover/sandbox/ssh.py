"""The primary's SSH in the sandbox: OpenSSH's sshd, or ocf's paramiko stand-in.

Both listen on 127.0.0.1 with a throwaway ed25519 host key, accept only the
throwaway client key, and allow ``direct-tcpip`` forwarding (ocf's probe) and
commands (ocf's fencing).  OpenSSH's ``sshd`` (when ``/usr/sbin/sshd`` is
installed) also serves SFTP and rsync, so workspace files sync back; the
stand-in (:mod:`openclaw_failover.sandbox.standin`) does not.  Keys are made
with ``cryptography`` (no ``ssh-keygen`` needed); ``known_hosts`` holds the host
key under ``[127.0.0.1]:PORT``, so ocf checks it as in production.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from openclaw_failover.sandbox.procs import LOOPBACK, Unit, UnitError, UnitSpec, free_port

SSHD = "/usr/sbin/sshd"
OPENSSH = "openssh"
STANDIN = "paramiko"


def openssh_available() -> bool:
    """OpenSSH's sshd is installed (and ``ssh`` and ``rsync`` for the file sync)."""
    return os.access(SSHD, os.X_OK)


def generate_key(path: Path, comment: str) -> Path:
    """A new unencrypted ed25519 key: ``path`` (OpenSSH format, 0600) and ``path.pub``."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    path.with_name(path.name + ".pub").write_bytes(public + f" {comment}\n".encode())
    return path


def public_key(path: Path) -> str:
    """``ssh-ed25519 AAAA... comment`` of the key at ``path``."""
    return path.with_name(path.name + ".pub").read_text().strip()


def read_banner(port: int, timeout: float = 1.0) -> str:
    """The first line the server on ``port`` sends (raises OSError)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        data = b""
        while b"\n" not in data:
            chunk = sock.recv(256)
            if not chunk:
                break
            data += chunk
    return data.decode("ascii", "replace").strip()


class PrimarySSH:
    """The primary's SSH server (``kind`` is :data:`OPENSSH` or :data:`STANDIN`).

    Files in ``directory``: ``host_key``, ``client_key`` (give it to ocf),
    ``authorized_keys``, ``known_hosts``, and the unit (``unit.json``, ``pid``,
    ``log``; ``sshd_config`` for OpenSSH).
    """

    def __init__(self, directory: Path, kind: str, *, root: Path | None = None) -> None:
        self.dir = directory
        self.kind = kind
        self.port = free_port()
        self.user = getpass.getuser()
        directory.mkdir(parents=True, exist_ok=True)
        self.host_key = generate_key(directory / "host_key", "ocf-sandbox-host")
        self.client_key = generate_key(directory / "client_key", "ocf-sandbox-client")
        self.authorized_keys = directory / "authorized_keys"
        self.authorized_keys.write_text(public_key(self.client_key) + "\n")
        self.known_hosts = directory / "known_hosts"
        key_type, blob = public_key(self.host_key).split()[:2]
        self.known_hosts.write_text(f"[{LOOPBACK}]:{self.port} {key_type} {blob}\n")
        argv = self._openssh_argv() if kind == OPENSSH else self._standin_argv()
        self.unit = Unit.create(directory, UnitSpec(argv, "SIGTERM"), root=root)

    def _openssh_argv(self) -> tuple[str, ...]:
        config = self.dir / "sshd_config"
        lines = [
            f"ListenAddress {LOOPBACK}:{self.port}",
            f"HostKey {self.host_key}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "AllowTcpForwarding yes",
            "UseDNS no",
            "PrintMotd no",
            "LogLevel INFO",
            "Subsystem sftp internal-sftp",
        ]
        config.write_text("\n".join(lines) + "\n")
        return (SSHD, "-D", "-e", "-f", str(config))

    def _standin_argv(self) -> tuple[str, ...]:
        module = "openclaw_failover.sandbox.standin"
        return (
            sys.executable,
            "-m",
            module,
            "--port",
            str(self.port),
            "--host-key",
            str(self.host_key),
            "--authorized-keys",
            str(self.authorized_keys),
        )

    def describe(self) -> str:
        """Which transport reaches the primary, for the demo's output."""
        if self.kind == OPENSSH:
            text = f"primary reached over OpenSSH sshd on {LOOPBACK}:{self.port}"
        else:
            text = (
                f"primary reached over ocf's built-in paramiko SSH stand-in on"
                f" {LOOPBACK}:{self.port} (OpenSSH sshd not installed)"
            )
        why = self.files_skipped()
        return text + (f"; workspace files are not synced: {why}" if why else "")

    def files_skipped(self) -> str:
        """Why workspace files cannot sync back over this SSH ("" when they can)."""
        if self.kind != OPENSSH:
            return "rsync needs OpenSSH"
        missing = [tool for tool in ("ssh", "rsync") if shutil.which(tool) is None]
        if missing:
            return f"{' and '.join(missing)} not installed"
        home = pwd.getpwuid(os.getuid()).pw_dir
        if not os.path.isdir(home):  # sshd refuses commands without one (rsync)
            return f"the home directory of {self.user} ({home}) does not exist"
        return ""

    @property
    def syncs_files(self) -> bool:
        """rsync and SFTP work: OpenSSH, ``ssh`` and ``rsync`` installed, a home directory."""
        return not self.files_skipped()

    @property
    def running(self) -> bool:
        return self.unit.running

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait for its SSH banner."""
        if self.kind == OPENSSH and os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        pid = self.unit.start()
        end = time.monotonic() + timeout
        while True:
            if self.unit.pid() != pid:
                raise UnitError(f"the primary's SSH server exited:\n{self.unit.log()}")
            try:
                if read_banner(self.port).startswith("SSH-"):
                    return
            except OSError:
                pass
            if time.monotonic() > end:
                self.unit.stop(kill=True)
                raise UnitError(f"the primary's SSH server is not answering:\n{self.unit.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server and every session it serves (a host going down)."""
        self.unit.stop(kill=True)


class BlackHole:
    """A port that accepts TCP connections and never answers: how a host that lost
    power looks from the LAN (no SSH banner: ``unreachable``, not ``refused``).
    ``port`` 0 picks a free one (then in :attr:`port`)."""

    def __init__(self, port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((LOOPBACK, port))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="black-hole", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._held.append(conn)  # held open, never answered

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()

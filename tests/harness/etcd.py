"""A 3-member etcd cluster on free loopback ports in a temporary folder, for tests.

Each member is its own ``etcd`` process (Debian's ``etcd-server``) with its own data
folder; :meth:`EtcdCluster.kill` SIGKILLs one, :meth:`EtcdCluster.restart` starts it
again on the same ports and data.  Timings are short (heartbeat 50 ms, election 500 ms)
so quorum loss and recovery take well under a second.  :meth:`EtcdCluster.close` stops
every member and removes the folder.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import requests

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def etcd_problem() -> str:
    """Why etcd cannot be used here ('' when it can)."""
    if not Path(ETCD).is_file():
        return "etcd is not installed (Debian: apt-get install etcd-server)"
    return ""


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class EtcdCluster:
    def __init__(self, size: int = 3, base: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ocf-etcd-", dir=base))
        ports = free_ports(2 * size)
        self.names = [f"m{i}" for i in range(size)]
        self.client_ports = ports[:size]
        self.peer_ports = ports[size:]
        self.procs: dict[str, subprocess.Popen[bytes] | None] = dict.fromkeys(self.names)
        self.initial = ",".join(
            f"{n}=http://127.0.0.1:{p}" for n, p in zip(self.names, self.peer_ports, strict=True)
        )

    @property
    def endpoints(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.client_ports]

    def endpoint(self, name: str) -> str:
        return self.endpoints[self.names.index(name)]

    def start(self) -> Self:
        for name in self.names:
            self._spawn(name, "new")
        self.wait_healthy()
        return self

    def _spawn(self, name: str, state: str) -> None:
        i = self.names.index(name)
        log = (self.dir / f"{name}.log").open("ab")
        client = f"http://127.0.0.1:{self.client_ports[i]}"
        peer = f"http://127.0.0.1:{self.peer_ports[i]}"
        argv = [
            ETCD,
            "--name", name,
            "--data-dir", str(self.dir / name),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", self.initial,
            "--initial-cluster-state", state,
            "--initial-cluster-token", self.dir.name,
            "--heartbeat-interval", "50",
            "--election-timeout", "500",
            "--log-level", "warn",
        ]  # fmt: skip
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        log.close()

    def kill(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        self.procs[name] = None

    def restart(self, name: str) -> None:
        self.kill(name)
        self._spawn(name, "existing")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until a linearizable read succeeds on every running member."""
        ends = time.monotonic() + timeout
        running = [n for n in self.names if self.procs[n] is not None]
        for name in running:
            while True:
                try:
                    r = requests.post(
                        self.endpoint(name) + "/v3/kv/range", json={"key": "eA=="}, timeout=1
                    )
                    if r.status_code == 200 and "error" not in r.json():
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > ends:
                    log = (self.dir / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise TimeoutError(f"etcd member {name} not healthy: {log}")
                time.sleep(0.1)

    def close(self) -> None:
        for name in self.names:
            with contextlib.suppress(Exception):
                self.kill(name)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

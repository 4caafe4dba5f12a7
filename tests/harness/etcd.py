"""A 3-member etcd cluster on free loopback ports in a temporary folder, for tests.

Each member is its own ``etcd`` process (Debian's ``etcd-server``) with its own data
folder; :meth:`EtcdCluster.kill` SIGKILLs one, :meth:`EtcdCluster.restart` starts it
again on the same ports and data.  Timings are short (heartbeat 50 ms, election 500 ms)
so quorum loss and recovery take well under a second.  :meth:`EtcdCluster.close` stops
every member and removes the folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import requests

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def etcd_problem() -> str:
    """Why etcd cannot be used here ('' when it can)."""
    if not Path(ETCD).is_file():
        return "etcd is not installed (Debian: apt-get install etcd-server)"
    return ""


@dataclass(frozen=True)
class TLSFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls(folder: Path) -> TLSFiles:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                         serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
        path.chmod(0o600)
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("ocf test CA")).issuer_name(name("ocf test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))  # fmt: skip

    def issue(cn: str, usage: x509.ObjectIdentifier, stem: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        # etcd's JSON gateway dials its own gRPC port with the server certificate: a
        # server certificate must be good for client auth too
        usages = list(dict.fromkeys([usage, ExtendedKeyUsageOID.CLIENT_AUTH]))
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False))  # fmt: skip
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        path = folder / f"{stem}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path, write_key(key, folder / f"{stem}-key.pem")

    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server = issue("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, "server")
    client = issue("ocf", ExtendedKeyUsageOID.CLIENT_AUTH, "client")
    return TLSFiles(ca_path, server[0], server[1], client[0], client[1])


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
    """``hosts[i]`` / ``netns[i]``: member i's address and network namespace (default
    127.0.0.1 in this namespace; see :class:`EtcdPartitionLab`)."""

    def __init__(
        self,
        size: int = 3,
        base: Path | None = None,
        hosts: list[str] | None = None,
        netns: list[str | None] | None = None,
        tls: TLSFiles | None = None,
    ) -> None:
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.dir = Path(tempfile.mkdtemp(prefix="ocf-etcd-", dir=base))
        ports = free_ports(2 * size)
        self.hosts = hosts or ["127.0.0.1"] * size
        self.netns = netns or [None] * size
        self.names = [f"m{i}" for i in range(size)]
        self.client_ports = ports[:size]
        self.peer_ports = ports[size:]
        self.procs: dict[str, subprocess.Popen[bytes] | None] = dict.fromkeys(self.names)
        self.initial = ",".join(
            f"{n}=http://{h}:{p}"
            for n, h, p in zip(self.names, self.hosts, self.peer_ports, strict=True)
        )

    @property
    def endpoints(self) -> list[str]:
        return [
            f"{self.scheme}://{h}:{p}" for h, p in zip(self.hosts, self.client_ports, strict=True)
        ]

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
        client = f"{self.scheme}://{self.hosts[i]}:{self.client_ports[i]}"
        peer = f"http://{self.hosts[i]}:{self.peer_ports[i]}"
        ns = self.netns[i]
        argv = [*(["ip", "netns", "exec", ns] if ns else []),
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
        if self.tls:  # clients must show a certificate the CA signed
            argv += ["--cert-file", str(self.tls.server_cert), "--key-file",
                     str(self.tls.server_key), "--trusted-ca-file", str(self.tls.ca),
                     "--client-cert-auth"]  # fmt: skip
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
                    tls: dict[str, object] = {}
                    if self.tls:
                        tls = {"verify": str(self.tls.ca),
                               "cert": (str(self.tls.client_cert), str(self.tls.client_key))}  # fmt: skip
                    r = requests.post(
                        self.endpoint(name) + "/v3/kv/range", json={"key": "eA=="}, timeout=1,
                        **tls,  # type: ignore[arg-type]
                    )  # fmt: skip
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


LAB_NET = "10.214.0.0/16"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


class EtcdPartitionLab:
    """A 3-member etcd where member m0 lives in a network namespace of its own (with
    whatever the test runs there: the primary's ocf), the others in this namespace:

        this ns 10.214.K.1 (m1, m2, the standbys) --veth-- 10.214.K.2 ns (m0, the primary)

    :meth:`partition` takes the veth down: m0 and everything in its namespace are cut
    off from the majority (m0 answers, without quorum).  An ``unreachable`` route for
    10.214.0.0/16 keeps lab traffic off the default route.  :meth:`close` removes the
    namespace (and the veth pair), the route and the etcd members.
    """

    def __init__(self, base: Path) -> None:
        tag = os.getpid() % 100000
        k = tag % 250
        self.ns, self.veth, self.veth_ns = f"ocfe{tag}", f"ocfes{tag}", f"ocfen{tag}"
        self.root_ip, self.ns_ip = f"10.214.{k}.1", f"10.214.{k}.2"
        self._own_route = False
        self.etcd: EtcdCluster | None = None
        try:
            made = _ip("route", "add", "unreachable", LAB_NET, check=False)
            self._own_route = made.returncode == 0
            _ip("netns", "add", self.ns)
            _ip("-n", self.ns, "link", "set", "lo", "up")
            _ip("link", "add", self.veth, "type", "veth", "peer", "name", self.veth_ns,
                "netns", self.ns)  # fmt: skip
            _ip("addr", "add", f"{self.root_ip}/24", "dev", self.veth)
            _ip("-n", self.ns, "addr", "add", f"{self.ns_ip}/24", "dev", self.veth_ns)
            _ip("link", "set", self.veth, "up")
            _ip("-n", self.ns, "link", "set", self.veth_ns, "up")
            hosts = [self.ns_ip, self.root_ip, self.root_ip]
            self.etcd = EtcdCluster(3, base, hosts=hosts, netns=[self.ns, None, None]).start()
        except BaseException:
            self.close()
            raise

    def partition(self, on: bool) -> None:
        _ip("link", "set", self.veth, "down" if on else "up")

    def in_ns(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def close(self) -> None:
        if self.etcd is not None:
            self.etcd.close()
        _ip("netns", "del", self.ns, check=False)
        _ip("link", "del", self.veth, check=False)
        if self._own_route:
            _ip("route", "del", "unreachable", LAB_NET, check=False)


class TxnDelayProxy:
    """127.0.0.1:port -> an etcd member; every request chunk that starts a transaction
    (``POST /v3/kv/txn``) is held back ``delay`` seconds, the rest passes at once.  Two
    clients that both read the leader key as free then both send their create-if-absent
    transaction after both reads: a real race, decided by etcd."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        import threading

        self.target, self.delay = target, delay
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        import threading

        while True:
            try:
                down, _ = self._sock.accept()
                up = socket.create_connection(self.target, timeout=5)
            except OSError:
                return
            up.settimeout(None)
            self._conns += [down, up]
            threading.Thread(target=self._pump, args=(down, up, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, requests_: bool) -> None:
        try:
            while data := src.recv(65536):
                if requests_ and data.startswith(b"POST /v3/kv/txn"):
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._sock.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()

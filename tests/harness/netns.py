"""A small network lab for fault tests: the primary in a network namespace of its own.

Layout (this test process and everything it runs is the standby, in the root
namespace; ``TAG`` makes the names unique per test process)::

    standby (root ns) 10.213.P.1 --veth-- 10.213.P.2  primary ns: sshd :2222, gateway 127.0.0.1:18789
    standby (root ns) 10.213.W.1 --veth-- 10.213.W.2  witness ns: TCP listener :8080 (the "router")

An ``unreachable`` route for 10.213.0.0/16 in the root namespace makes sure that
nothing meant for the lab ever leaves by the default route (a link that is down
gives "No route to host"); the namespaces have no default route at all.  Traffic
goes only to 127.0.0.0/8 and to these namespaces.  :meth:`Lab.close` deletes the
namespaces (and with them the veth pairs), the route, and every process started in
them, also when a test failed.

Faults:

* :meth:`Lab.black_hole`: the primary drops every reply to the standby (a
  ``blackhole`` route for the standby's address in the primary's namespace): SYNs
  arrive, nothing comes back; established sessions go silent.
* :meth:`Lab.primary_link`: the primary's end of its veth goes down/up.
* :meth:`Lab.standby_uplink`: the standby's own ends of both veths go down/up (it
  is cut off from the primary *and* the witness).
* :meth:`Lab.lossy`: 30% loss + 300 ms delay on the primary's replies.  With tc
  netem where the kernel has it; otherwise (no ``sch_netem``, as on the development
  machine) through :class:`LossyForwarder`, a TCP forwarder on 127.0.0.1 that
  delays every chunk of the primary's replies and models each lost packet as the
  TCP retransmission timeout it costs.  :attr:`Lab.ssh_host` / :attr:`Lab.ssh_port`
  always say where ocf must connect.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self

from tests.harness.sshd import SSHD, SSHServer

HARNESS = Path(__file__).resolve().parent
SERVICE = [sys.executable, str(HARNESS / "fake_service.py")]
LAB_NET = "10.213.0.0/16"
SSH_PORT = 2222
GATEWAY_PORT = 18789
WITNESS_PORT = 8080


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def lab_problem() -> str:
    """Why the lab cannot run here ('' when it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "iproute2 'ip' not installed (apt-get install iproute2)"
    if not os.access(SSHD, os.X_OK):
        return "OpenSSH sshd not installed (apt-get install openssh-server)"
    if shutil.which("curl") is None:
        return "curl not installed (apt-get install curl)"
    name = f"ocfchk{os.getpid() % 100000}"
    made = _ip("netns", "add", name, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return ""


def netem_problem(ns: str, dev: str) -> str:
    """Why netem cannot shape ``dev`` in ``ns`` ('' when it can): tried, then taken off.

    Without ``tc`` or without the kernel's ``sch_netem`` ("Error: Specified qdisc kind
    is unknown.") the caller falls back to :class:`LossyForwarder` and says why."""
    if shutil.which("tc") is None:
        return "tc not installed (apt-get install iproute2)"
    probe = ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "netem"]
    tried = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    if tried.returncode:
        said = " ".join((tried.stderr or tried.stdout).split()) or f"exit {tried.returncode}"
        return f"tc netem refused on this kernel (no sch_netem?): {said}"
    subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"])
    return ""


class NsSSHServer(SSHServer):
    """The harness's real sshd, run inside a namespace on ``host``:2222."""

    def __init__(self, directory: Path, ns: str, host: str, extra_names: tuple[str, ...]) -> None:
        self.ns = ns
        self.extra_names = extra_names
        super().__init__(directory, port=SSH_PORT)
        self.host = host
        self._write_config()
        self.write_known_hosts()

    def write_known_hosts(self, path: Path | None = None) -> Path:
        path = path or self.known_hosts
        key_type, blob = self._pub(self.host_key).split()[:2]
        names = [f"[{getattr(self, 'host', '127.0.0.1')}]:{self.port}", *self.extra_names]
        path.write_text("".join(f"{n} {key_type} {blob}\n" for n in names))
        return path

    def start(self, timeout: float = 10.0) -> Self:
        if self.running:
            return self
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        self._write_config()
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, SSHD, "-D", "-e", "-f", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=1) as sock,
            ):
                if sock.recv(64).startswith(b"SSH-"):
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"sshd in {self.ns} did not answer:\n{self.log()}")


class LossyForwarder:
    """127.0.0.1:port -> target; the target's replies are delayed by ``delay`` and each
    chunk is "lost" with probability ``loss``: it then arrives one retransmission
    timeout later (1 s, doubling while lost again), in order, like TCP over a lossy
    link.  A lost SYN-ACK delays the connection the same way."""

    def __init__(self, target: tuple[str, int], *, delay: float, loss: float) -> None:
        self.target, self.delay, self.loss = target, delay, loss
        self.rng = random.Random(1010)  # the same faults every run
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _penalty(self) -> float:
        wait, rto = 0.0, 1.0
        while self.rng.random() < self.loss and rto <= 8:
            wait, rto = wait + rto, rto * 2
        return wait

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(down,), daemon=True).start()

    def _serve(self, down: socket.socket) -> None:
        time.sleep(self.delay + self._penalty())  # the SYN-ACK's way back
        try:
            up = socket.create_connection(self.target, timeout=5)
        except OSError:
            down.close()
            return
        up.settimeout(None)
        self._conns += [down, up]
        threading.Thread(target=self._pump, args=(down, up, False), daemon=True).start()
        self._pump(up, down, True)

    def _pump(self, src: socket.socket, dst: socket.socket, faulty: bool) -> None:
        release = 0.0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if faulty:
                    release = max(release, time.monotonic() + self.delay + self._penalty())
                    time.sleep(max(release - time.monotonic(), 0.0))
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


class Lab:
    """The namespaces, veth pairs, route and servers of one test; a context manager."""

    def __init__(self, tmp: Path) -> None:
        tag = os.getpid() % 100000
        self.tmp = tmp
        self.ns_p, self.ns_w = f"ocfp{tag}", f"ocfw{tag}"
        self.veth_sp, self.veth_pp = f"ocfsp{tag}", f"ocfpp{tag}"
        self.veth_sw, self.veth_ww = f"ocfsw{tag}", f"ocfww{tag}"
        k = tag % 120
        self.net_p, self.net_w = f"10.213.{2 * k}", f"10.213.{2 * k + 1}"
        self.standby_ip, self.primary_ip = f"{self.net_p}.1", f"{self.net_p}.2"
        self.witness_ip = f"{self.net_w}.2"
        self.witness = f"{self.witness_ip}:{WITNESS_PORT}"
        self._own_route = False
        self._procs: list[subprocess.Popen[bytes]] = []
        self.forwarder: LossyForwarder | None = None
        self.netem = False
        self.sshd: NsSSHServer | None = None
        self.primary_dir = tmp / "primary-svc"
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ setup

    def _build(self) -> None:
        made = _ip("route", "add", "unreachable", LAB_NET, check=False)
        self._own_route = made.returncode == 0
        for ns, veth_s, veth_n, net in (
            (self.ns_p, self.veth_sp, self.veth_pp, self.net_p),
            (self.ns_w, self.veth_sw, self.veth_ww, self.net_w),
        ):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "add", veth_s, "type", "veth", "peer", "name", veth_n, "netns", ns)
            _ip("addr", "add", f"{net}.1/24", "dev", veth_s)
            _ip("-n", ns, "addr", "add", f"{net}.2/24", "dev", veth_n)
            _ip("link", "set", veth_s, "up")
            _ip("-n", ns, "link", "set", veth_n, "up")
        self.sshd = NsSSHServer(self.tmp / "sshd", self.ns_p, self.primary_ip, ()).start()
        self._spawn(self.ns_w, [sys.executable, "-c", _WITNESS.format(self.witness_ip)])
        self.gateway("start")
        self._wait(lambda: self.primary_answers(), "the primary's gateway")
        self._wait(lambda: _connects(self.witness_ip, WITNESS_PORT), "the witness")

    def _spawn(self, ns: str, argv: list[str]) -> None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._procs.append(proc)

    @staticmethod
    def _wait(predicate: Any, what: str, timeout: float = 15) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise RuntimeError(f"lab: timed out waiting for {what}")
            time.sleep(0.05)

    # ------------------------------------------------------------------ parts

    def gateway_cmd(self, verb: str) -> list[str]:
        """The fake `systemctl` for the primary's gateway (run in its namespace: over SSH)."""
        cmd = [*SERVICE, verb, "--state-dir", str(self.primary_dir)]
        return [*cmd, "--port", str(GATEWAY_PORT)] if verb == "start" else cmd

    def gateway(self, verb: str) -> None:
        argv = ["ip", "netns", "exec", self.ns_p, *self.gateway_cmd(verb)]
        subprocess.run(argv, check=True, timeout=30, capture_output=True)

    def primary_answers(self) -> bool:
        """The primary's gateway answers HTTP (asked inside its namespace)."""
        url = f"http://127.0.0.1:{GATEWAY_PORT}/"
        argv = ["ip", "netns", "exec", self.ns_p, "curl", "-s", "-o", "/dev/null"]
        out = subprocess.run(
            [*argv, "-w", "%{http_code}", "--max-time", "2", url],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() not in ("", "000")

    @property
    def ssh_host(self) -> str:
        return "127.0.0.1" if self.forwarder else self.primary_ip

    @property
    def ssh_port(self) -> int:
        return self.forwarder.port if self.forwarder else SSH_PORT

    # ------------------------------------------------------------------ faults

    def black_hole(self, on: bool) -> None:
        """Idempotent: on twice is on."""
        verb = "replace" if on else "del"
        done = _ip("-n", self.ns_p, "route", verb, "blackhole", f"{self.standby_ip}/32", check=on)
        assert on or done.returncode in (0, 2), done.stderr

    def primary_link(self, up: bool) -> None:
        _ip("-n", self.ns_p, "link", "set", self.veth_pp, "up" if up else "down")

    def standby_uplink(self, up: bool) -> None:
        for veth in (self.veth_sp, self.veth_sw):
            _ip("link", "set", veth, "up" if up else "down")

    def lossy(self, *, loss: float = 0.3, delay: float = 0.3) -> str:
        """Turn on loss + delay for the primary's replies; returns how: "netem", or
        "forwarder (<why netem is not used>)"."""
        problem = netem_problem(self.ns_p, self.veth_pp)
        if not problem:
            spec = ["delay", f"{int(delay * 1000)}ms", "loss", f"{loss * 100:g}%"]
            argv = ["ip", "netns", "exec", self.ns_p, "tc", "qdisc", "add", "dev", self.veth_pp]
            subprocess.run([*argv, "root", "netem", *spec], check=True, capture_output=True)
            self.netem = True
            return "netem"
        self.forwarder = LossyForwarder((self.primary_ip, SSH_PORT), delay=delay, loss=loss)
        assert self.sshd is not None
        self.sshd.extra_names = (f"[127.0.0.1]:{self.forwarder.port}",)
        self.sshd.write_known_hosts()
        return f"forwarder ({problem})"

    # ------------------------------------------------------------------ teardown

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.gateway("stop")
        if self.sshd is not None:
            self.sshd.close()
        if self.forwarder is not None:
            self.forwarder.close()
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
        for veth in (self.veth_sp, self.veth_sw):  # the pair goes with either end
            _ip("link", "del", veth, check=False)
        for ns in (self.ns_p, self.ns_w):
            _ip("netns", "del", ns, check=False)
        if self._own_route:
            _ip("route", "del", "unreachable", LAB_NET, check=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connects(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


_WITNESS = """
import socket
s = socket.create_server(("{0}", 8080))
while True:
    c, _ = s.accept()
    c.close()
"""

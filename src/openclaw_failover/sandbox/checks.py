"""What the demo verifies after each give-back, and the summary table it prints."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg

from openclaw_failover.sandbox import memu
from openclaw_failover.sandbox.core import Sandbox
from openclaw_failover.sandbox.timeline import Timeline

_ROWS = re.compile(r"rows synced back: (\d+) inserted, (\d+) updated")
_FILES = re.compile(r"files: (\d+) copied, (\d+) conflict")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Scenario:
    """One scenario's measurements and checks."""

    title: str
    takeover_s: float | None = None
    giveback_s: float | None = None
    rows_synced: str = "-"
    files_synced: str = "-"
    rows_sides: str = "-"
    replication: str = "-"
    telegram: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def check(self, tl: Timeline, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, ok, detail))
        tl.say(f"{'ok' if ok else 'FAILED'}: {name}" + (f" ({detail})" if detail else ""))
        return ok


def _present(sb: Sandbox, table: str, ids: list[str]) -> int:
    with sb.primary.cluster.connect() as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {table} WHERE id = ANY(%s)".encode(),  # table: our constant  # nosec B608
            (ids,),
        ).fetchone()
    return int(row[0]) if row else 0


def memories_on_primary(
    sb: Sandbox, s: Scenario, tl: Timeline, written: list[dict[str, Any]]
) -> None:
    found = {
        table: _present(sb, table, [str(w[key]) for w in written])
        for table, key in (
            ("resources", "resource_id"),
            ("memory_items", "memory_item_id"),
            ("category_items", "category_item_id"),
        )
    }
    ok = all(n == len(written) for n in found.values())
    detail = ", ".join(f"{table} {n}/{len(written)}" for table, n in found.items())
    s.check(tl, "every memory written on the standby is on the primary", ok, detail)


def standby_equals_primary(sb: Sandbox, s: Scenario, tl: Timeline) -> None:
    p, q = sb.primary.cluster, sb.standby.cluster
    try:
        memu.wait_caught_up(p, q, timeout=15)
        diffs = memu.differences(p, q)
    except (TimeoutError, psycopg.Error) as exc:
        s.check(tl, "the standby equals the primary", False, str(exc).splitlines()[0])
        return
    cp, cq = memu.counts(p), memu.counts(q)
    s.rows_sides = f"{sum(cp.values())} / {sum(cq.values())} ({cp['memory_items']} memories each)"
    detail = (
        "; ".join(f"{t}: {d}" for t, d in diffs.items()) or f"{sum(cp.values())} rows, 5 tables"
    )
    s.check(tl, "the standby equals the primary, row for row", not diffs, detail)


def replication_flows(sb: Sandbox, s: Scenario, tl: Timeline) -> None:
    """A new memory on the primary reaches the standby; no apply errors."""
    marker = f"replication check {uuid.uuid4().hex[:8]}"
    with sb.primary.cluster.connect() as conn:
        ids = memu.write_memory(conn, marker, "checks")
    start = time.monotonic()
    arrived = False
    while time.monotonic() - start < 15 and not arrived:
        arrived = bool(
            sb.standby.cluster.scalar(
                "SELECT count(*) FROM memory_items WHERE id = %s", (ids["memory_item_id"],)
            )
        )
        time.sleep(0.05)
    lag = time.monotonic() - start
    health = memu.subscription_health(sb.standby.cluster)
    ok = arrived and health.healthy
    s.replication = f"{'yes' if ok else 'NO'} ({lag:.2f}s, {health.apply_errors} apply errors)"
    detail = f"insert on the primary {'reached' if arrived else 'did NOT reach'} the standby"
    s.check(
        tl,
        "replication primary -> standby flows",
        ok,
        f"{detail} in {lag:.2f}s; {health.describe()}",
    )


def files_synced(sb: Sandbox, s: Scenario, tl: Timeline, steps: list[str]) -> None:
    why = sb.ssh.files_skipped()
    if why:
        s.files_synced = "skipped"
        s.check(tl, f"workspace files: sync skipped ({why})", True)
        return
    found = [m for step in steps if (m := _FILES.search(step))]
    copied = sum(int(m.group(1)) for m in found)
    conflicts = sum(int(m.group(2)) for m in found)
    s.files_synced = f"{copied} copied, {conflicts} conflict copies"
    local = sb.standby.workspace / "memory"
    differ = [
        f.name
        for f in sorted(local.glob("*.md"))
        if _sha(f.read_bytes()) != _sha(_read(sb.primary.workspace / "memory" / f.name))
    ]
    ok = copied >= 1 and not differ
    detail = s.files_synced + (
        f"; differ: {', '.join(differ)}" if differ else "; identical on both"
    )
    s.check(tl, "workspace files synced back (memory/*.md)", ok, detail)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Any) -> bytes:
    try:
        return bytes(path.read_bytes())
    except OSError:
        return b""


def rows_synced(s: Scenario, steps: list[str]) -> None:
    """Rows ocf reports it synced back, over every sync-back pass of the give-back."""
    found = [m for step in steps if (m := _ROWS.search(step))]
    if found:
        inserted = sum(int(m.group(1)) for m in found)
        updated = sum(int(m.group(2)) for m in found)
        s.rows_synced = f"{inserted} inserted, {updated} updated"


def telegram_sent(sb: Sandbox, s: Scenario, tl: Timeline, since: float) -> None:
    texts = [str(m["text"]) for m in sb.telegram_messages() if float(m["at"]) >= since]
    s.telegram = texts
    took = any("OFFLINE" in t for t in texts)
    gave = any("ONLINE" in t for t in texts)
    s.check(
        tl, "Telegram notices recorded: took over, gave back", took and gave, f"{len(texts)} sent"
    )


# --------------------------------------------------------------------------- summary


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _kinds(texts: list[str]) -> str:
    names = [
        "took over" if "OFFLINE" in t else "gave back" if "ONLINE" in t else "other" for t in texts
    ]
    return f"{len(texts)}: {', '.join(names)}" if texts else "0"


def summary_table(scenarios: list[Scenario]) -> list[str]:
    """The summary table: one row per measurement, one column per scenario."""
    rows: list[tuple[str, list[str]]] = [
        ("time to take over", [_secs(s.takeover_s) for s in scenarios]),
        ("time to give back", [_secs(s.giveback_s) for s in scenarios]),
        ("rows synced back", [s.rows_synced for s in scenarios]),
        ("files synced back", [s.files_synced for s in scenarios]),
        ("rows primary / standby", [s.rows_sides for s in scenarios]),
        ("replication healthy after", [s.replication for s in scenarios]),
        ("Telegram messages", [_kinds(s.telegram) for s in scenarios]),
        ("checks", [f"{sum(c.ok for c in s.checks)}/{len(s.checks)} ok" for s in scenarios]),
    ]
    header = ("", [s.title for s in scenarios])
    width0 = max(len(name) for name, _ in (*rows, header))
    widths = [max(len(r[1][i]) for r in (*rows, header)) for i in range(len(scenarios))]

    def line(name: str, cells: list[str]) -> str:
        body = " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
        return f"| {name.ljust(width0)} | {body} |"

    rule = "|" + "|".join("-" * (w + 2) for w in (width0, *widths)) + "|"
    return [line(*header), rule, *(line(name, cells) for name, cells in rows)]

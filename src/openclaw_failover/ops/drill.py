"""`ocf drill`: the original author's manual failover test, made a command.

Stop the primary's gateway over SSH, run checks until this standby serves,
write a marker memory on the standby, start the primary's gateway again, run
checks until the give-back (and sync-back) is done, verify the marker reached
the primary, and report the times.  Whatever goes wrong, the primary's gateway
is started again before the drill exits non-zero.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from openclaw_failover.config.loader import Config
from openclaw_failover.core.events import EventKind, GaveBack, SyncedBack
from openclaw_failover.core.state import Role, State
from openclaw_failover.engine.store import StateStore
from openclaw_failover.engine.tick import Tick
from openclaw_failover.primary import remote

Say = Callable[[str], None]


class DrillError(Exception):
    """A precondition or a step failed; the message says which."""


@dataclass
class DrillReport:
    ok: bool = False
    detect_seconds: float | None = None  # gateway stopped -> first failed check
    takeover_seconds: float | None = None  # gateway stopped -> standby serving
    giveback_seconds: float | None = None  # gateway started -> primary serving again
    marker: str = ""
    marker_on_primary: bool | None = None
    sync: str = ""
    notices_sent: int = 0
    checks: int = 0
    error: str = ""
    steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        def secs(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f} s"

        rows = [
            ("time to detect", secs(self.detect_seconds)),
            ("time to take over", secs(self.takeover_seconds)),
            ("time to give back", secs(self.giveback_seconds)),
            (
                "marker on the primary",
                {True: "yes", False: "NO", None: "-"}[self.marker_on_primary],
            ),
            ("sync-back", self.sync or "-"),
            ("notifications sent", str(self.notices_sent)),
            ("checks run", str(self.checks)),
            ("result", "ok" if self.ok else f"FAILED: {self.error}"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"| {k:<{width}} | {v} |" for k, v in rows)


def plan(cfg: Config, *, interactive: bool) -> list[str]:
    gw = cfg.primary.gateway
    marker = (
        "ask you to send a message to the bot"
        if interactive
        else "write a marker memory into the standby's database"
    )
    return [
        "check preconditions: the primary serves, not paused, last probe healthy, "
        "primary.gateway.stop_command and start_command set",
        f"stop the primary's gateway over SSH: {' '.join(gw.stop_command or ('?',))}",
        "run checks until this standby serves",
        marker,
        f"start the primary's gateway over SSH: {' '.join(gw.start_command or ('?',))}",
        "run checks until the give-back and sync-back are done",
        "verify the marker reached the primary; report the times",
    ]


@dataclass
class Drill:
    cfg: Config
    env: Mapping[str, str]
    say: Say
    interval: float = 5.0
    timeout: float = 300.0
    interactive: bool = False
    ask: Callable[[str], str] = input
    report: DrillReport = field(default_factory=DrillReport)
    _stopped: bool = False

    def __post_init__(self) -> None:
        self.mask = self.cfg.masker
        self.store = StateStore(self.cfg.state_dir)

    def run(self) -> DrillReport:
        try:
            self._run()
            self.report.ok = True
        except (DrillError, OSError) as exc:
            self.report.error = self.mask(str(exc))
            self.say(f"drill failed: {self.report.error}")
        finally:
            if self._stopped:
                self._start_primary(restoring=True)
        return self.report

    def _run(self) -> None:
        self._preconditions()
        outbox_before = self._sent_count()
        t0 = self._stop_primary()
        self._until(lambda s: s.role is Role.FAILOVER, "this standby serves", t0)
        self.report.takeover_seconds = time.monotonic() - t0
        self._marker()
        t1 = self._start_primary()
        self._until(lambda s: s.role is Role.PRIMARY, "the primary serves again", t1)
        self.report.giveback_seconds = time.monotonic() - t1
        self._verify_marker()
        self.report.notices_sent = self._sent_count() - outbox_before

    def _step(self, text: str) -> None:
        self.report.steps.append(text)
        self.say(text)

    def _preconditions(self) -> None:
        gw = self.cfg.primary.gateway
        if gw.stop_command is None or gw.start_command is None:
            raise DrillError("primary.gateway.stop_command and start_command must both be set")
        state = self._tick()
        if state.paused:
            raise DrillError("ocf is paused: run 'ocf resume' first")
        probe = (state.last_probe or {}).get("status")
        if state.role is not Role.PRIMARY or probe != "healthy":
            raise DrillError(
                f"the primary must serve and be healthy (role {state.role}, probe {probe})"
            )
        self._step("preconditions hold: the primary serves and is healthy")

    def _stop_primary(self) -> float:
        gw = self.cfg.primary.gateway
        assert gw.stop_command is not None
        res = remote.run_remote(
            self.cfg, gw.stop_command, timeout=self.cfg.primary.ssh.command_timeout, mask=self.mask
        )
        if not res.ok:
            raise DrillError(f"could not stop the primary's gateway: {res.summary()}")
        self._stopped = True
        self._step(f"T+0:00 primary's gateway stopped ({res.summary()})")
        return time.monotonic()

    def _start_primary(self, restoring: bool = False) -> float:
        gw = self.cfg.primary.gateway
        assert gw.start_command is not None
        res = remote.run_remote(
            self.cfg, gw.start_command, timeout=self.cfg.primary.ssh.command_timeout, mask=self.mask
        )
        word = "restored" if restoring else "started"
        if res.ok:
            self._stopped = False
            self._step(f"primary's gateway {word} ({res.summary()})")
        elif restoring:
            self.say(f"COULD NOT RESTORE the primary's gateway: {res.summary()}; start it by hand")
        else:
            raise DrillError(f"could not start the primary's gateway: {res.summary()}")
        return time.monotonic()

    def _tick(self) -> State:
        result = Tick(self.cfg, self.env).run(lock_wait=self.cfg.check.deadline)
        self.report.checks += 1
        if result.state is None:
            loaded, _ = self.store.load()
            if loaded is None:
                raise DrillError(f"check did not run: {result.reason}")
            return loaded
        return result.state

    def _until(self, done: Callable[[State], bool], what: str, t0: float) -> None:
        while True:
            state = self._tick()
            elapsed = time.monotonic() - t0
            probe = (state.last_probe or {}).get("status", "?")
            if self.report.detect_seconds is None and probe != "healthy" and self._stopped:
                self.report.detect_seconds = elapsed
            self.say(
                f"T+{int(elapsed) // 60}:{int(elapsed) % 60:02d} check: {state.last_reason or probe}"
            )
            if done(state):
                self._step(f"{what} after {elapsed:.1f} s")
                return
            if elapsed > self.timeout:
                raise DrillError(f"{what}: not after {self.timeout:g} s ({state.last_reason})")
            time.sleep(self.interval)

    def _marker(self) -> None:
        if self.interactive:
            self.ask(
                "Send a message to your bot now (it is served by this standby), then press Enter: "
            )
            self._step("you messaged the bot while this standby served")
            return
        db = self.cfg.database
        if db is None:
            self._step("no database: section: no marker memory written")
            return
        self.report.marker = write_marker(db.standby_dsn, int(db.connect_timeout))
        self._step(f"marker memory {self.report.marker} written on the standby")

    def _verify_marker(self) -> None:
        synced = [
            e.payload.sync
            for e in self.store.last_events(50)
            if isinstance(e.payload, GaveBack | SyncedBack) and e.payload.sync
        ]
        self.report.sync = synced[-1].summary if synced else ""
        if not self.report.marker or self.cfg.database is None:
            return
        import psycopg

        with psycopg.connect(
            self.cfg.database.primary_dsn, connect_timeout=int(self.cfg.database.connect_timeout)
        ) as p:
            row = p.execute(
                "SELECT 1 FROM memory_items WHERE id = %s", [self.report.marker]
            ).fetchone()
            self.report.marker_on_primary = row is not None
            if self.report.marker_on_primary:  # leave the user's memories as they were
                p.execute("DELETE FROM memory_items WHERE id = %s", [self.report.marker])
                p.execute(
                    "DELETE FROM resources WHERE scope_key = 'ocf-drill' AND id NOT IN "
                    "(SELECT resource_id FROM memory_items)"
                )
        if not self.report.marker_on_primary:
            raise DrillError(f"the marker memory {self.report.marker} did not reach the primary")
        self._step("the marker memory reached the primary (then removed; the removal replicates)")

    def _sent_count(self) -> int:
        return sum(1 for e in self.store.last_events(10_000) if e.kind is EventKind.NOTICE_SENT)


def write_marker(dsn: str, connect_timeout: int) -> str:
    """A memU-shaped memory (resource + item) that says it comes from the drill."""
    import psycopg

    resource, item = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with psycopg.connect(dsn, connect_timeout=connect_timeout) as conn:
        conn.execute(
            "INSERT INTO resources (id, scope_key, url, modality, local_path) "
            "VALUES (%s, 'ocf-drill', 'ocf://drill', 'text', '')",
            [resource],
        )
        conn.execute(
            "INSERT INTO memory_items (id, scope_key, resource_id, memory_type, summary) "
            "VALUES (%s, 'ocf-drill', %s, 'event', %s)",
            [item, resource, f"ocf drill marker written on the standby at {stamp}"],
        )
    return item

"""The original's two scenarios, played in the sandbox with a compressed clock.

1. **power loss**: the primary dies (SSH and gateway stop, its SSH port
   black-holes) -> the standby takes over -> memories are written on the
   standby -> the primary returns -> sync-back -> the standby releases.
2. **gateway crash**: only the primary's gateway dies (connection refused
   while SSH works) -> ocf fences it over SSH and takes over -> memories ->
   the next check gives back and restarts the primary's gateway over SSH.

A check is the real ``ocf check`` code (:class:`openclaw_failover.engine.tick.Tick`)
run in this process every two seconds instead of every two minutes.  After
each give-back the demo verifies the data (see :mod:`.checks`) and prints a
summary (:mod:`.demo`).  Run it in the main thread: a check's deadline is a
SIGALRM timer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import psycopg

from openclaw_failover.config.secrets import describe, shorten
from openclaw_failover.sandbox import checks, postgres
from openclaw_failover.sandbox.checks import Scenario
from openclaw_failover.sandbox.core import Sandbox, SandboxError
from openclaw_failover.sandbox.procs import UnitError
from openclaw_failover.sandbox.timeline import (
    EventTail,
    Recorder,
    TickView,
    Timeline,
    render_tick,
)

SCENARIOS = ("power_loss", "gateway_crash")
TITLES = {"power_loss": "power loss", "gateway_crash": "gateway crash"}
INTERVAL = 2.0  # seconds between the starts of two checks (the original: 2 minutes)
MEMORIES = {
    "power_loss": (
        ("The user is flying to Lisbon on Friday.", "travel"),
        ("The user now prefers oolong to green tea.", "preferences"),
        ("The user's sister Eva visits in May.", "family"),
    ),
    "gateway_crash": (
        ("The dentist appointment moved to Monday 9:00.", "appointments"),
        ("The user's bike is in the repair shop until Thursday.", "errands"),
        ("The user wants a reminder to water the plants.", "habits"),
    ),
}
FAILURES = (SandboxError, UnitError, postgres.PostgresError, TimeoutError, psycopg.Error, OSError)


class Demo:
    """Drives one sandbox through the scenarios; prints the timeline."""

    def __init__(self, sb: Sandbox, out: TextIO, recorder: Recorder) -> None:
        self.sb = sb
        self.tl = Timeline(out)
        self.recorder = recorder
        self.tail = EventTail(sb.root / "ocf" / "state" / "events.jsonl")
        self.last_start = 0.0

    # ------------------------------------------------------------------ ticks

    def tick(self) -> TickView:
        """One ``ocf check``; its lines go to the timeline."""
        wait = self.last_start + INTERVAL - time.time()
        if wait > 0:
            time.sleep(wait)
        self.recorder.take()
        self.last_start = started = time.time()
        result = self.sb.tick()
        state = result.state
        view = TickView(
            started, time.time(), result.reason, dict(state.last_probe or {}) if state else {}
        )
        view.events = self.tail.take()
        for at, text in render_tick(view, self.recorder.take(), self.tail):
            self.tl.say(text, at)
        return view

    def ticks_until(
        self, done: Callable[[TickView], bool], what: str, limit: float = 60
    ) -> TickView:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            view = self.tick()
            if done(view):
                return view
        raise SandboxError(f"no {what} within {limit:g}s")

    def quiet_tick(self) -> None:
        """A check whose output is not shown (the very first one creates the state)."""
        self.sb.tick()
        self.tail.take()
        self.recorder.take()

    # ------------------------------------------------------------------ steps

    def write_on_standby(self, name: str) -> list[dict[str, Any]]:
        written = [self.sb.post_memory("standby", text, cat) for text, cat in MEMORIES[name]]
        files = sorted({str(w.get("file")) for w in written})
        how = (
            "by the demo on the standby (the real gateway needs a model for that)"
            if self.sb.real
            else "through the standby's gateway (POST /memory)"
        )
        self.tl.say(
            f"{len(written)} memories written {how}:"
            f" rows in its database, lines in its workspace {', '.join(files)}"
        )
        return written

    def took_over(self, s: Scenario, view: TickView, since: float) -> None:
        event = view.transition("failover")
        at = float(event["ts"]) if event else view.ended
        s.takeover_s = at - since
        serving = self.sb.standby.answers()
        self.tl.say(f"the standby serves: time to take over {s.takeover_s:.1f} s")
        s.check(self.tl, "the standby's gateway answers", serving)

    def gave_back(self, s: Scenario, view: TickView, since: float) -> None:
        event = view.transition("primary")
        at = float(event["ts"]) if event else view.ended
        s.giveback_s = at - since
        self.tl.say(f"the primary serves again: time to give back {s.giveback_s:.1f} s")
        ok = self.sb.primary.answers() and not self.sb.standby.answers()
        s.check(self.tl, "the primary's gateway answers, the standby's is stopped", ok)

    def verify(
        self, s: Scenario, written: list[dict[str, Any]], view: TickView, since: float
    ) -> None:
        steps = view.steps("GiveBack")
        checks.rows_synced(s, steps)
        checks.memories_on_primary(self.sb, s, self.tl, written)
        checks.standby_equals_primary(self.sb, s, self.tl)
        checks.replication_flows(self.sb, s, self.tl)
        checks.files_synced(self.sb, s, self.tl, steps)
        checks.telegram_sent(self.sb, s, self.tl, since)

    # ------------------------------------------------------------------ scenarios

    def power_loss(self, s: Scenario) -> None:
        self.tick()  # healthy
        t_fail = time.time()
        self.sb.power_loss()
        self.tl.say(
            "power loss simulated: the primary's SSH and gateway stopped, its SSH port\n"
            "black-holed (no answer, like a dead host on the LAN); its database keeps\n"
            "running so the demo can sync back",
            t_fail,
        )
        self.last_start = t_fail - INTERVAL + 1.0  # the next check comes a second later
        view = self.ticks_until(lambda v: v.transition("failover") is not None, "takeover")
        self.took_over(s, view, t_fail)
        written = self.write_on_standby("power_loss")
        self.tick()  # still serving
        t_back = time.time()
        self.sb.power_restore()
        self.tl.say("power back: the primary boots, its gateway and SSH start", t_back)
        self.last_start = t_back - INTERVAL + 0.5
        view = self.ticks_until(lambda v: v.transition("primary") is not None, "give-back")
        self.gave_back(s, view, t_back)
        self.verify(s, written, view, t_fail)

    def gateway_crash(self, s: Scenario) -> None:
        self.tick()  # healthy
        t_fail = time.time()
        self.sb.crash_gateway()
        self.tl.say(
            "the primary's gateway crashed (killed); its SSH keeps working, so the\n"
            "probe gets connection refused on the gateway's port",
            t_fail,
        )
        self.last_start = t_fail - INTERVAL + 1.0
        view = self.ticks_until(lambda v: v.transition("failover") is not None, "takeover")
        self.took_over(s, view, t_fail)
        fenced = any(step.startswith("fence primary: ") for step in view.steps("TakeOver"))
        s.check(
            self.tl, "the primary's gateway was fenced over SSH before the standby started", fenced
        )
        written = self.write_on_standby("gateway_crash")
        t_back = time.time()
        self.tl.say(
            "the primary's host never went down and ocf fenced its gateway: the next\n"
            "check gives back and restarts it over SSH (primary.gateway.start_command)",
            t_back,
        )
        self.last_start = t_back - INTERVAL + 0.5
        view = self.ticks_until(lambda v: v.transition("primary") is not None, "give-back")
        self.gave_back(s, view, t_back)
        self.verify(s, written, view, t_fail)

    def play(self, names: Sequence[str]) -> list[Scenario]:
        done: list[Scenario] = []
        for number, name in enumerate(names, 1):
            s = Scenario(TITLES[name])
            done.append(s)
            self.tl.plain(f"\n== Scenario {number}: {s.title} (a check every {INTERVAL:g} s) ==")
            self.tl.reset()
            try:
                getattr(self, name)(s)
            except FAILURES as exc:
                s.check(self.tl, f"scenario {s.title} ran to the end", False, one_line(exc))
                break
        return done


def one_line(exc: BaseException) -> str:
    return shorten(describe(exc), 300)

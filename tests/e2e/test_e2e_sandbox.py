"""End to end on the two-node sandbox, the primary reached over a real OpenSSH sshd.

Each test builds its own sandbox (openclaw_failover.sandbox: two PostgreSQL
clusters with logical replication, two gateway processes, sshd, a fake Telegram
Bot API; about 2 s) and drives real ``ocf check`` ticks against it: as
``python -m openclaw_failover --config ... check`` subprocesses where a check is
killed or timed, in this process (``Sandbox.tick``) where only the outcome
matters.  Covered:

- the original's scenarios (SSH hangs, SSH refused, gateway crash): take over,
  memories written on the standby, give back with sync-back; the probe status of
  each, and the times (printed at the end of the module, run with ``-s``);
- a flapping primary with ``rise: 2``: no ping-pong;
- ``ocf check`` SIGKILLed at every step of a take-over and of a give-back, then
  run again: it converges (one gateway, the right role, no row lost, no notice
  twice, replication healthy, no replication slot leaked);
- Telegram down during a take-over, a 429 with ``retry_after`` (beyond and within
  the inline budget);
- the state file deleted or corrupted while failed over, also after fencing and
  with a give-back pending (the fence marker and the sync-back baseline survive it);
- ``ocf demo`` as a subprocess.

The kill points are paired, one take-over step and one give-back step per
sandbox (a take-over has to happen before a give-back anyway), to keep the
module within a few minutes.
"""

from __future__ import annotations

import collections
import copy
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from openclaw_failover.config.loader import DEFAULT_MESSAGES
from openclaw_failover.sandbox import memu, postgres, procs, ssh
from openclaw_failover.sandbox.core import Sandbox
from openclaw_failover.sandbox.postgres import INSTALL_HINT
from openclaw_failover.sandbox.telegram import DEFAULT_TOKEN, FakeBotAPI

HAVE_PG = postgres.embedded_bin_dir() is not None or bool(os.environ.get("OCF_PG_BIN"))
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_PG, reason=INSTALL_HINT),
    pytest.mark.skipif(
        not ssh.openssh_available(),
        reason="OpenSSH sshd not installed (apt-get install openssh-server)",
    ),
]

INTERVAL = 2.0  # seconds between the starts of two timed checks (the demo's compressed clock)
MEMORIES = (
    ("The user is flying to Lisbon on Friday.", "travel"),
    ("The user now prefers oolong to green tea.", "preferences"),
    ("The user's sister Eva visits in May.", "family"),
)
# A notice's kind, from its text (the default templates' fixed words).
KIND_MARKS = {
    "took_over": " OFFLINE - ",
    "gave_back": " ONLINE - ",
    "failover_failed": "FAILOVER FAILED",
    "giveback_failed": "GIVE-BACK FAILED",
    "syncback_failed": "SYNC-BACK FAILED",
    "auth_failure": "ALERT: ",
    "two_gateways": "WARNING: ",
    "primary_back": "failback is manual",
    "both_serving": "TWO BOTS - ",
    "isolated": "did NOT take over",
    "leader_changed": "Leader is now ",
    "coordinator_lost": "cannot reach an etcd quorum",
    "fenced_self": "FENCED ITSELF",
}
PRE_MERGE = re.compile(r"while still serving: rows synced back: (\d+) inserted")
FULL_CYCLE = ["taking_over", "failover", "giving_back", "primary"]
MEASURED: list[dict[str, Any]] = []  # scenario timings, printed when the module ends


# --------------------------------------------------------------------------- helpers


def wait_for(done: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    if not procs.wait_until(done, timeout, 0.02):
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args and procs.pid_alive(int(cmdline.parent.name)):
            found.append(f"{cmdline.parent.name}: {args}")
    return found


def kind_of(text: str) -> str:
    return next((kind for kind, mark in KIND_MARKS.items() if mark in text), "?")


def test_notice_kinds_are_told_apart_by_their_text() -> None:
    assert {kind: kind_of(text) for kind, text in DEFAULT_MESSAGES.items()} == {
        kind: kind for kind in DEFAULT_MESSAGES
    }


def sh_wrapper(script: str, argv: list[str]) -> list[str]:
    """``sh -c SCRIPT sh ARGV...``: the script runs the real command as ``"$@"``."""
    return ["sh", "-c", script, "sh", *argv]


def slow_before(argv: list[str], marker: Path, delay: float = 1.5) -> list[str]:
    """Touch ``marker``, wait, then run the real command (not exec'd: the wrapper, which
    names the marker, lives until the command is done)."""
    m = shlex.quote(str(marker))
    return sh_wrapper(f'touch {m}; sleep {delay}; "$@"; rc=$?; touch {m}.done; exit $rc', argv)


def slow_after(argv: list[str], marker: Path, delay: float = 1.5) -> list[str]:
    """Run the real command, touch ``marker``, wait, exit with its code."""
    m = shlex.quote(str(marker))
    return sh_wrapper(f'"$@"; rc=$?; touch {m}; sleep {delay}; exit $rc', argv)


def in_background(argv: list[str], marker: Path, delay: float = 2.0) -> list[str]:
    """Exit 0 at once (touching ``marker``) and run the real command ``delay`` s later:
    a start_command that succeeds long before the gateway answers."""
    m = shlex.quote(str(marker))
    script = f'(sleep {delay}; "$@") </dev/null >/dev/null 2>&1 & touch {m}; exit 0'
    return sh_wrapper(script, argv)


class BotAPI(FakeBotAPI):
    """The sandbox's fake Bot API run in this process on the same port and record, with
    the failure modes the tests need (the sandbox's has none):

    - ``rate_limit``: answer the next sendMessage requests 429 with these ``retry_after``;
    - ``hold``: hold every sendMessage unanswered until :attr:`release` (then 502,
      not recorded): a Telegram that hangs while a check is killed.
    """

    def __init__(self, port: int, record: Path) -> None:
        super().__init__(port, DEFAULT_TOKEN, record)
        self.rate_limit: list[int] = []
        self.hold = False
        self.holding = threading.Event()
        self.release = threading.Event()
        self.calls: list[tuple[float, int]] = []  # (when, HTTP status) of each sendMessage
        self._modes = threading.Lock()
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if not path.lower().endswith("/sendmessage"):
            return super().answer(path, params)
        with self._modes:
            wait = self.rate_limit.pop(0) if self.rate_limit else None
            hold = self.hold
        if wait is not None:
            result = (
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {wait}",
                    "parameters": {"retry_after": wait},
                },
            )
        elif hold:
            self.holding.set()
            self.release.wait(60)
            result = 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        else:
            result = super().answer(path, params)
        self.calls.append((time.time(), result[0]))
        return result

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a killed client's broken pipe

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        self._thread.join(5)


class Rig:
    """A sandbox, its ocf config (editable), state, events and notices, and the
    ``ocf check`` subprocesses, held database connections and Bot API of one test."""

    def __init__(self, sb: Sandbox, marks: Path) -> None:
        self.sb = sb
        self.marks = marks
        self.original: dict[str, Any] = yaml.safe_load(sb.config_path.read_text())
        self.doc = copy.deepcopy(self.original)
        self.state_dir = Path(self.original["state_dir"])
        self.children: list[subprocess.Popen[bytes]] = []
        self.held: list[psycopg.Connection[Any]] = []
        self.bot: BotAPI | None = None
        self.outputs: list[str] = []

    # ---------------------------------------------------------------- config

    def configure(self, **check: Any) -> None:
        self.doc["check"].update(check)
        self._write()

    def command(self, side: str, verb: str) -> list[str]:
        """The sandbox's own ``start``/``stop`` command of ``side``'s gateway."""
        return list(self.original[side]["gateway"][f"{verb}_command"])

    def set_command(self, side: str, verb: str, argv: list[str]) -> None:
        self.doc[side]["gateway"][f"{verb}_command"] = argv
        self._write()

    def restore_commands(self) -> None:
        for side in ("primary", "standby"):
            self.doc[side]["gateway"] = copy.deepcopy(self.original[side]["gateway"])
        self._write()

    def _write(self) -> None:
        self.sb.config_path.write_text(yaml.safe_dump(self.doc, sort_keys=False))

    # ---------------------------------------------------------------- ocf

    def argv(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "openclaw_failover",
            "--config",
            str(self.sb.config_path),
            *args,
        ]

    @staticmethod
    def env() -> dict[str, str]:
        env = dict(os.environ)
        for name in ("INVOCATION_ID", "JOURNAL_STREAM", "OCF_CONFIG"):
            env.pop(name, None)  # not under systemd: the log stays in state_dir
        return env

    def check(self) -> subprocess.CompletedProcess[str]:
        """One ``ocf check`` subprocess, to its end."""
        r = subprocess.run(
            self.argv("check"), capture_output=True, text=True, timeout=90, env=self.env()
        )
        self.outputs.append(f"$ ocf check -> {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def spawn(self) -> subprocess.Popen[bytes]:
        """``ocf check`` started, not waited for (output in the marks directory)."""
        out = (self.marks / f"check-{len(self.children)}.out").open("wb")
        proc = subprocess.Popen(
            self.argv("check"), stdout=out, stderr=subprocess.STDOUT, env=self.env()
        )
        out.close()
        self.children.append(proc)
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        number = self.children.index(proc)
        return (self.marks / f"check-{number}.out").read_text(errors="replace")

    # ---------------------------------------------------------------- what ocf recorded

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state_dir / "state.json").read_text())
        return data

    def role(self) -> str:
        return str(self.state()["role"])

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = (self.state_dir / "events.jsonl").read_text().splitlines()
        except FileNotFoundError:
            return []
        events = [json.loads(line) for line in lines if line.strip()]
        return [e for e in events if kind is None or e["type"] == kind]

    def roles(self) -> list[str]:
        """The roles entered, in order (from the transition events)."""
        return [str(e["to"]) for e in self.events("transition")]

    def transition(self, to: str) -> dict[str, Any]:
        found = [e for e in self.events("transition") if e["to"] == to]
        assert found, f"no transition to {to}: {self.roles()}"
        return found[-1]

    def sent(self) -> list[str]:
        """Texts the Bot API accepted, oldest first."""
        return [str(m["text"]) for m in self.sb.telegram_messages()]

    def sent_kinds(self) -> collections.Counter[str]:
        return collections.Counter(kind_of(text) for text in self.sent())

    def serving(self) -> str:
        """Whose gateway answers: primary, standby, both or none."""
        up = (self.sb.primary.answers(), self.sb.standby.answers())
        return {(True, False): "primary", (False, True): "standby", (True, True): "both"}.get(
            up, "none"
        )

    def story(self) -> str:
        """For assertion messages: roles, the last events and check outputs."""
        tail = "\n".join(json.dumps(e)[:400] for e in self.events()[-25:])
        checks = "\n".join(self.outputs[-6:])
        return f"roles {self.roles()}\nevents:\n{tail}\nchecks:\n{checks}"

    # ---------------------------------------------------------------- Telegram

    def install_bot(self) -> BotAPI:
        """Replace the sandbox's Bot API process by :class:`BotAPI` on the same port."""
        self.sb.telegram.stop()
        return self.telegram_up()

    def telegram_up(self) -> BotAPI:
        port = int(self.sb.telegram.spec().extra["port"])
        self.bot = BotAPI(port, self.sb.root / "telegram" / "messages.jsonl")
        return self.bot

    def telegram_down(self) -> None:
        """Nothing listens on the Bot API's port any more (connection refused)."""
        if self.bot is not None:
            self.bot.stop()
            self.bot = None

    # ---------------------------------------------------------------- databases

    def hold(self, cluster: postgres.Cluster, *statements: str) -> psycopg.Connection[Any]:
        """A connection with an open transaction that ran ``statements`` (locks held)."""
        conn = psycopg.connect(cluster.dsn(), connect_timeout=10)
        for statement in statements:
            conn.execute(statement.encode())
        self.held.append(conn)
        return conn

    def release_held(self) -> None:
        for conn in self.held:
            conn.rollback()
            conn.close()
        self.held.clear()

    def close(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.release_held()
        self.telegram_down()


def syncback_sessions(cluster: postgres.Cluster) -> list[dict[str, Any]]:
    """ocf's sync-back connections to ``cluster`` (application_name ocf-syncback)."""
    rows = cluster.scalar(
        "SELECT coalesce(json_agg(json_build_object('backend', backend_type, 'state', state,"
        " 'wait', wait_event_type, 'event', wait_event, 'query', query)), '[]')"
        " FROM pg_stat_activity WHERE application_name = 'ocf-syncback' AND pid <> pg_backend_pid()"
    )
    return list(rows)


def waits_on_lock(cluster: postgres.Cluster, backend: str = "client backend") -> bool:
    return any(s["wait"] == "Lock" and s["backend"] == backend for s in syncback_sessions(cluster))


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with Sandbox(transport="openssh") as sb:
        r = Rig(sb, tmp_path)
        try:
            yield r
        finally:
            r.close()


@pytest.fixture(scope="module", autouse=True)
def print_measurements() -> Iterator[None]:
    yield
    if not MEASURED:
        return
    print(f"\n\ntimes measured on the sandbox (a check every {INTERVAL:g} s, the first one")
    print(f"{INTERVAL / 2:g} s after the failure / the return; ocf check as a subprocess):")
    for m in MEASURED:
        print(
            f"  {m['scenario']:<15} take over {m['takeover']:5.1f} s (its check {m['takeover_check']:.1f} s)"
            f"   give back {m['giveback']:5.1f} s (its check {m['giveback_check']:.1f} s)"
        )


# --------------------------------------------------------------------------- data checks


def write_memories(sb: Sandbox, node: str, tag: str) -> list[dict[str, Any]]:
    return [sb.post_memory(node, f"{text} ({tag})", category) for text, category in MEMORIES]


def found_on_primary(sb: Sandbox, written: list[dict[str, Any]]) -> dict[str, int]:
    found = {}
    with sb.primary.cluster.connect() as conn:
        for table, key in (
            ("resources", "resource_id"),
            ("memory_items", "memory_item_id"),
            ("category_items", "category_item_id"),
        ):
            row = conn.execute(
                f"SELECT count(*) FROM {table} WHERE id = ANY(%s)".encode(),
                ([str(w[key]) for w in written],),
            ).fetchone()
            found[table] = int(row[0]) if row else 0
    return found


def slots(sb: Sandbox) -> list[tuple[str, bool]]:
    with sb.primary.cluster.connect() as conn:
        rows = conn.execute(
            "SELECT slot_name, active FROM pg_replication_slots ORDER BY slot_name"
        ).fetchall()
    return [(str(name), bool(active)) for name, active in rows]


def assert_synced_back(rig: Rig, written: list[dict[str, Any]]) -> None:
    """Every memory written on the standby is on the primary; the standby equals the
    primary; replication flows with 0 apply errors on exactly one slot; files synced."""
    sb = rig.sb
    found = found_on_primary(sb, written)
    assert found == dict.fromkeys(found, len(written)), f"{found}\n{rig.story()}"
    memu.wait_caught_up(sb.primary.cluster, sb.standby.cluster, timeout=15)
    assert memu.differences(sb.primary.cluster, sb.standby.cluster) == {}, rig.story()
    marker = f"replication check {uuid.uuid4().hex[:8]}"
    with sb.primary.cluster.connect() as conn:
        ids = memu.write_memory(conn, marker, "checks")
    wait_for(
        lambda: bool(
            sb.standby.cluster.scalar(
                "SELECT count(*) FROM memory_items WHERE id = %s", (ids["memory_item_id"],)
            )
        ),
        "a row written on the primary to reach the standby",
        15,
    )
    health = memu.subscription_health(sb.standby.cluster)
    assert health.healthy and health.apply_errors == 0, health.describe()
    own = sb.standby.cluster.scalar(
        "SELECT subslotname FROM pg_subscription WHERE subname = %s", (memu.SUBSCRIPTION,)
    )
    wait_for(lambda: slots(sb) == [(own, True)], f"only the subscription's slot {own}", 15)
    local = sb.standby.workspace / "memory"
    names = sorted(f.name for f in local.glob("*.md"))
    assert names, "the standby's gateway wrote no workspace file"
    for name in names:
        theirs = sb.primary.workspace / "memory" / name
        assert theirs.read_bytes() == (local / name).read_bytes(), f"memory/{name} differs"


def assert_notices(rig: Rig, **expected: int) -> None:
    """Telegram got exactly these kinds, each this often, and no text twice."""
    texts = rig.sent()
    assert rig.sent_kinds() == collections.Counter(expected), f"{texts}\n{rig.story()}"
    assert len(set(texts)) == len(texts), texts


# --------------------------------------------------------------------------- scenarios


def ssh_hangs(sb: Sandbox) -> None:
    sb.power_loss()  # sshd and gateway gone, the SSH port accepts and never answers


def ssh_refused(sb: Sandbox) -> None:
    sb.ssh.stop()  # the host is up but sshd is stopped: the port refuses
    sb.primary.gateway.stop(kill=True)


def gateway_crash(sb: Sandbox) -> None:
    sb.crash_gateway()  # SSH fine, connection refused on the gateway's port


SCENARIOS = {
    "ssh_hangs": (ssh_hangs, "unreachable", " within 2s)"),  # no banner / handshake
    "ssh_refused": (ssh_refused, "refused", "(connection refused by 127.0.0.1:"),
    "gateway_crash": (gateway_crash, "gateway_down", "(connection refused on 127.0.0.1:"),
}


@dataclass
class Ticker:
    """``ocf check`` subprocesses every :data:`INTERVAL` seconds, like cron on a fast clock."""

    rig: Rig
    last_start: float = 0.0
    ticks: list[tuple[float, float, str]] = field(default_factory=list)  # start, end, stdout

    def tick(self) -> subprocess.CompletedProcess[str]:
        wait = self.last_start + INTERVAL - time.time()
        if wait > 0:
            time.sleep(wait)
        self.last_start = started = time.time()
        r = self.rig.check()
        assert r.returncode == 0, f"{r.stdout}{r.stderr}\n{self.rig.story()}"
        self.ticks.append((started, time.time(), r.stdout))
        return r

    def after(self, event: float) -> None:
        """The next check starts half an interval after ``event`` (the mean wait)."""
        self.last_start = event - INTERVAL / 2

    def until(self, role: str, limit: int = 6) -> tuple[float, dict[str, Any]]:
        """Checks until ``role`` is entered; (start of that check, the transition)."""
        for _ in range(limit):
            self.tick()
            entered = [e for e in self.rig.events("transition") if e["to"] == role]
            if entered and float(entered[-1]["ts"]) >= self.last_start:
                return self.last_start, entered[-1]
        raise AssertionError(f"no {role} after {limit} checks\n{self.rig.story()}")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_takes_over_and_gives_back_with_sync_back(rig: Rig, name: str) -> None:
    fail, status, detail = SCENARIOS[name]
    sb, clock = rig.sb, Ticker(rig)
    assert clock.tick().stdout == ""  # healthy: silent
    assert rig.role() == "primary" and rig.serving() == "primary"

    t_fail = time.time()
    fail(sb)
    clock.after(t_fail)
    started, entered = clock.until("failover")
    takeover = rig.transition("taking_over")
    assert takeover["reason"].startswith(f"taking over: primary {status} for 1 check ("), takeover
    assert detail in takeover["reason"], takeover
    probe = rig.state()["last_probe"]
    assert (probe["status"], rig.role(), rig.serving()) == (status, "failover", "standby"), probe
    steps = [s for e in rig.events("action") if e["action"] == "TakeOver" for s in e["steps"]]
    fenced = any(s.startswith("fence primary: ") for s in steps)
    assert fenced is (name == "gateway_crash"), steps  # fencing needs SSH
    assert any(s.startswith("disabled subscription memu_sub") for s in steps), steps
    assert not memu.subscription_health(sb.standby.cluster).enabled
    took, took_check = float(entered["ts"]) - t_fail, float(entered["ts"]) - started

    written = write_memories(sb, "standby", name)
    if name == "gateway_crash":
        # The fenced primary cannot come back by itself: SSH reaching it is its return,
        # so the next check gives back (and restarts the primary's gateway).
        t_back = time.time()
        clock.after(t_back)
    else:
        r = clock.tick()  # the primary is still down: keep serving, quietly
        assert (r.stdout, rig.role(), rig.serving()) == ("", "failover", "standby"), rig.story()
        assert rig.state()["last_probe"]["status"] == status
        t_back = time.time()
        sb.power_restore()
        clock.after(t_back)
    started, entered = clock.until("primary")
    gave, gave_check = float(entered["ts"]) - t_back, float(entered["ts"]) - started
    assert rig.serving() == "primary", rig.story()
    giveback = [e for e in rig.events("action") if e["action"] == "GiveBack"][-1]
    assert giveback["ok"], giveback
    merged = [m for s in giveback["steps"] if (m := PRE_MERGE.match(s))]
    assert merged and int(merged[0].group(1)) >= 3 * len(written), giveback  # 3 rows a memory
    assert ("restart primary's gateway: " in " ".join(giveback["steps"])) is (
        name == "gateway_crash"
    )
    assert_synced_back(rig, written)
    assert rig.roles() == FULL_CYCLE, rig.story()
    assert_notices(rig, took_over=1, gave_back=1)
    st = rig.state()
    assert (st["takeovers"], st["givebacks"], st["fenced"], st["outbox"]) == (1, 1, False, [])

    r = clock.tick()  # and it stays that way: healthy, silent, replication flowing
    assert (r.stdout, rig.role(), rig.serving()) == ("", "primary", "primary"), rig.story()
    assert memu.subscription_health(sb.standby.cluster).healthy
    MEASURED.append(
        {
            "scenario": name,
            "takeover": took,
            "takeover_check": took_check,
            "giveback": gave,
            "giveback_check": gave_check,
        }
    )


# --------------------------------------------------------------------------- flapping


def test_flapping_primary_with_rise_2_does_not_ping_pong(rig: Rig) -> None:
    sb = rig.sb
    rig.configure(rise=2, fall=1)

    def tick(role: str) -> str:
        reason = sb.tick().reason
        assert rig.role() == role, f"{reason}\n{rig.story()}"
        return reason

    assert tick("primary") == "no action: primary healthy"
    ssh_refused(sb)  # down
    assert tick("failover").startswith("took over: primary refused for 1 check")
    gateway = sb.standby.gateway.pid()
    written = write_memories(sb, "standby", "flapping")
    # up: one healthy check is not enough to give back, but the primary's gateway (booted
    # again) must not serve beside ours meanwhile: it is stopped (issue 10)
    both = "primary healthy for 1 check while this standby's gateway also answers"
    sb.power_restore()
    assert tick("failover") == f"stopped the primary's gateway: {both}"
    assert rig.state()["healthy_ticks"] == 1 and not sb.primary.answers()
    ssh_refused(sb)  # down again: the count starts over, and no second take-over
    assert tick("failover") == "no action: serving, primary still refused"
    assert rig.state()["healthy_ticks"] == 0
    sb.power_restore()  # up, and its gateway booted again: stopped again
    assert tick("failover") == f"stopped the primary's gateway: {both}"
    assert sb.standby.gateway.pid() == gateway  # served all along, never restarted
    assert tick("primary") == "gave back: primary reachable for 2 checks"  # up, twice in a row
    assert rig.serving() == "primary"
    for _ in range(2):  # healthy: nothing more happens
        assert tick("primary") == "no action: primary healthy"
    assert rig.roles() == FULL_CYCLE, rig.story()
    actions = [e["action"] for e in rig.events("action")]
    assert actions == ["TakeOver", "Fence", "Fence", "GiveBack"], rig.story()
    st = rig.state()
    assert (st["takeovers"], st["givebacks"]) == (1, 1)
    assert_notices(rig, took_over=1, both_serving=1, gave_back=1)
    assert_synced_back(rig, written)


# --------------------------------------------------------------------------- SIGKILL


@dataclass(frozen=True)
class KillPoint:
    """One step of a take-over or give-back, made observable and long enough to hit.

    ``arm`` prepares the step (a slow wrapper around a command, a lock held, a Telegram
    that hangs) and returns the predicate that is true while the step is in progress;
    ``role`` is the role state.json must hold at that moment (the intent was saved
    before acting)."""

    arm: Callable[[Rig], Callable[[], bool]]
    role: str


def _intent(to: str) -> Callable[[Rig], Callable[[], bool]]:
    # state.json, not events.jsonl: the transition event is appended just before the
    # state is saved, so a check killed right after the event has not saved it yet.
    return lambda rig: lambda: rig.role() == to


def _fence(rig: Rig) -> Callable[[], bool]:
    mark = rig.marks / "fence"
    rig.set_command("primary", "stop", slow_before(rig.command("primary", "stop"), mark))
    return mark.exists


def _fence_settle(rig: Rig) -> Callable[[], bool]:
    mark = rig.marks / "fence"
    rig.set_command("primary", "stop", slow_before(rig.command("primary", "stop"), mark, 0.1))
    return Path(f"{mark}.done").exists  # fenced; ocf waits before probing that it holds


def _disable_subscription(rig: Rig) -> Callable[[], bool]:
    standby = rig.sb.standby.cluster
    rig.hold(standby, f"ALTER SUBSCRIPTION {memu.SUBSCRIPTION} SET (synchronous_commit = 'off')")
    return lambda: waits_on_lock(standby)  # ALTER SUBSCRIPTION ... DISABLE waits for us


def _start_local(rig: Rig) -> Callable[[], bool]:
    mark = rig.marks / "start"
    rig.set_command("standby", "start", slow_before(rig.command("standby", "start"), mark))
    return lambda: mark.exists() and not rig.sb.standby.answers(0.2)


def _wait_for_health(rig: Rig) -> Callable[[], bool]:
    mark = rig.marks / "start"
    rig.set_command("standby", "start", in_background(rig.command("standby", "start"), mark))
    seen: list[float] = []

    def ready() -> bool:  # start_command exited 0; ocf polls the health URL
        if not mark.exists():
            return False
        seen.append(time.monotonic())
        return seen[-1] - seen[0] > 0.3 and not rig.sb.standby.answers(0.2)

    return ready


def _notify(rig: Rig) -> Callable[[], bool]:
    bot = rig.bot or rig.install_bot()
    bot.holding.clear()
    bot.release.clear()
    bot.hold = True
    return bot.holding.is_set


def _merge_while_serving(rig: Rig) -> Callable[[], bool]:
    primary = rig.sb.primary.cluster
    rig.hold(primary, "LOCK TABLE resources IN SHARE MODE")  # the merge's INSERT waits
    return lambda: waits_on_lock(primary) and rig.sb.standby.answers(0.5)


def _stop_local(rig: Rig) -> Callable[[], bool]:
    mark = rig.marks / "stop"
    rig.set_command("standby", "stop", slow_before(rig.command("standby", "stop"), mark))
    return lambda: mark.exists() and rig.sb.standby.answers(0.5)


def _final_merge(rig: Rig) -> Callable[[], bool]:
    mark = rig.marks / "stopped"
    rig.set_command("standby", "stop", slow_after(rig.command("standby", "stop"), mark, 1.0))
    standby = rig.sb.standby.cluster

    def ready() -> bool:  # the local gateway is stopped: lock the standby, the final pass waits
        if not mark.exists():
            return False
        if not rig.held:
            rig.hold(standby, "LOCK TABLE resources IN ACCESS EXCLUSIVE MODE")
        return waits_on_lock(standby) and not rig.sb.standby.answers(0.2)

    return ready


def _reconcile(rig: Rig) -> Callable[[], bool]:
    primary = rig.sb.primary.cluster
    rig.hold(primary, "SELECT txid_current()")  # a new logical slot waits for running xids
    return lambda: waits_on_lock(primary, backend="walsender")


def _restart_primary(rig: Rig) -> Callable[[], bool]:
    mark = rig.marks / "unfence"
    rig.set_command("primary", "start", slow_before(rig.command("primary", "start"), mark))
    return lambda: mark.exists() and not rig.sb.primary.answers(0.2)


TAKEOVER_KILLS = {
    "intent saved": KillPoint(_intent("taking_over"), "taking_over"),
    "fence": KillPoint(_fence, "taking_over"),
    "fence settle": KillPoint(_fence_settle, "taking_over"),
    "disable subscription": KillPoint(_disable_subscription, "taking_over"),
    "start local gateway": KillPoint(_start_local, "taking_over"),
    "wait for health": KillPoint(_wait_for_health, "taking_over"),
    "notify": KillPoint(_notify, "failover"),
}
GIVEBACK_KILLS = {
    "intent saved": KillPoint(_intent("giving_back"), "giving_back"),
    "merge while serving": KillPoint(_merge_while_serving, "giving_back"),
    "stop local gateway": KillPoint(_stop_local, "giving_back"),
    "final merge": KillPoint(_final_merge, "giving_back"),
    "reconcile": KillPoint(_reconcile, "giving_back"),
    "restart primary": KillPoint(_restart_primary, "giving_back"),
    "notify": KillPoint(_notify, "primary"),
}
# One sandbox per pair: a take-over killed at one step, then a give-back killed at one.
KILL_PAIRS = list(zip(TAKEOVER_KILLS, GIVEBACK_KILLS, strict=True))


def kill_check_at(rig: Rig, point: KillPoint, what: str) -> None:
    """Run ``ocf check``, SIGKILL it while ``point``'s step is in progress, then let what
    it left running finish (as before the next cron tick) and lift the obstacles."""
    ready = point.arm(rig)
    proc = rig.spawn()
    end = time.monotonic() + 30
    try:
        while not ready():
            if proc.poll() is not None:
                raise AssertionError(
                    f"ocf check ended (exit {proc.returncode}) before {what}:\n"
                    f"{rig.output(proc)}\n{rig.story()}"
                )
            if time.monotonic() > end:
                raise AssertionError(f"{what} never observed\n{rig.story()}")
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, f"missed {what}: {rig.output(proc)}"
    assert rig.role() == point.role, f"at {what}\n{rig.story()}"
    rig.restore_commands()
    rig.release_held()
    if rig.bot is not None:
        rig.bot.hold = False
        rig.bot.release.set()
    wait_for(lambda: not processes_mentioning(f"{rig.marks}/"), "the killed check's commands", 30)
    wait_for(
        lambda: (
            not (
                syncback_sessions(rig.sb.primary.cluster)
                or syncback_sessions(rig.sb.standby.cluster)
            )
        ),
        "the killed check's database sessions to end",
        30,
    )


def converge(rig: Rig, role: str, tries: int = 3) -> None:
    """``ocf check`` until ``role`` holds and only its gateway answers (the first one
    must do it); then one more check must find nothing to do."""
    serving = {"failover": "standby", "primary": "primary"}[role]
    for n in range(1, tries + 1):  # noqa: B007 (reported)
        rig.check()
        if rig.role() == role and rig.serving() == serving:
            break
    else:
        raise AssertionError(f"not {role} after {tries} checks\n{rig.story()}")
    assert n == 1, f"a killed check is finished by the next one (README), not {n}\n{rig.story()}"
    r = rig.check()
    assert (r.returncode, r.stdout) == (0, ""), rig.story()
    assert (rig.role(), rig.serving()) == (role, serving), rig.story()
    assert rig.state()["outbox"] == [], rig.story()


@pytest.mark.parametrize(
    ("takeover_at", "giveback_at"),
    KILL_PAIRS,
    ids=[f"{a}/{b}".replace(" ", "-") for a, b in KILL_PAIRS],
)
def test_check_killed_mid_takeover_and_mid_giveback_converges(
    rig: Rig, takeover_at: str, giveback_at: str
) -> None:
    sb = rig.sb
    # rise 99: the fenced primary (reachable over SSH) would be given back at the next
    # check; the test lowers it when the give-back may start.
    rig.configure(retries=0, rise=99)
    assert sb.tick().reason == "no action: primary healthy"
    sb.crash_gateway()

    kill_check_at(rig, TAKEOVER_KILLS[takeover_at], f"take-over step {takeover_at!r}")
    converge(rig, "failover")
    st = rig.state()
    assert (st["fenced"], st["takeovers"]) == (True, 1), rig.story()
    assert not memu.subscription_health(sb.standby.cluster).enabled
    assert_notices(rig, took_over=1)
    written = write_memories(sb, "standby", takeover_at)

    rig.configure(rise=1)
    kill_check_at(rig, GIVEBACK_KILLS[giveback_at], f"give-back step {giveback_at!r}")
    converge(rig, "primary")
    assert rig.roles() == FULL_CYCLE, rig.story()
    st = rig.state()
    assert (st["fenced"], st["takeovers"], st["givebacks"]) == (False, 1, 1), rig.story()
    assert_notices(rig, took_over=1, gave_back=1)
    assert_synced_back(rig, written)


# --------------------------------------------------------------------------- Telegram


def test_telegram_down_during_takeover_then_rate_limited(rig: Rig) -> None:
    sb = rig.sb
    bot = rig.install_bot()
    assert sb.tick().reason == "no action: primary healthy"
    rig.telegram_down()  # connection refused on the Bot API's port
    ssh_refused(sb)
    assert sb.tick().reason.startswith("took over: primary refused")
    assert (rig.role(), rig.serving(), rig.sent()) == ("failover", "standby", [])
    [notice] = rig.state()["outbox"]  # kept, with its text rendered at the take-over
    assert (notice["kind"], notice["attempts"]) == ("took_over", 1), notice
    assert notice["last_error"].startswith("network error"), notice
    [queued] = rig.events("notice_queued")
    assert queued["text"] == notice["text"]

    sb.tick()  # still down: tried again, still kept, the failover undisturbed
    assert [n["attempts"] for n in rig.state()["outbox"]] == [2]
    assert (rig.role(), rig.serving()) == ("failover", "standby")

    # Back, but rate limited for longer than a check waits inline (5 s): retry_after kept.
    bot = rig.telegram_up()
    bot.rate_limit = [6]
    before = time.time()
    sb.tick()
    assert [status for _, status in bot.calls] == [429]
    [notice] = rig.state()["outbox"]
    assert "rate limited by Telegram: retry after 6s" in notice["last_error"], notice
    assert notice["next_try_at"] >= before + 6, notice
    sb.tick()  # before retry_after is over, Telegram is not asked
    assert len(bot.calls) == 1 and rig.sent() == []
    wait_for(lambda: time.time() > notice["next_try_at"] + 0.1, "retry_after to pass", 10)
    sb.tick()
    assert [status for _, status in bot.calls] == [429, 200]
    assert rig.sent() == [queued["text"]]  # once, with its original text and time
    assert rig.state()["outbox"] == []
    sb.tick()
    assert len(bot.calls) == 2

    # A short 429 (within the inline budget) during the give-back: waited out in that check.
    bot.rate_limit = [2]
    sb.power_restore()
    assert sb.tick().reason == "gave back: primary healthy for 1 check"
    (t429, first), (t200, second) = bot.calls[2:]
    assert (first, second) == (429, 200)
    assert t200 - t429 >= 2, bot.calls
    assert rig.state()["outbox"] == []
    assert_notices(rig, took_over=1, gave_back=1)


# --------------------------------------------------------------------------- state file


def damage_state(rig: Rig, how: str) -> bytes:
    path = rig.state_dir / "state.json"
    if how == "deleted":
        path.unlink()
        return b""
    garbage = path.read_bytes()[:40]  # torn in the middle of a write
    path.write_bytes(garbage)
    return garbage


@pytest.mark.parametrize("how", ["deleted", "corrupted"])
def test_state_file_lost_while_failed_over_keeps_serving(rig: Rig, how: str) -> None:
    sb = rig.sb
    assert sb.tick().reason == "no action: primary healthy"
    ssh_refused(sb)
    assert sb.tick().reason.startswith("took over: primary refused")
    written = write_memories(sb, "standby", how)
    garbage = damage_state(rig, how)

    r = rig.check()
    assert (r.returncode, r.stdout) == (0, ""), rig.story()
    assert (rig.role(), rig.serving()) == ("failover", "standby"), rig.story()
    [event] = rig.events("reconciled")[-1:]
    assert event["result"].startswith("local gateway is answering: assuming this standby serves")
    if garbage:
        assert Path(event["kept_as"]).read_bytes() == garbage
    assert rig.roles() == ["taking_over", "failover"]  # no second take-over, no give-back
    assert [e["action"] for e in rig.events("action")] == ["TakeOver"]
    r = rig.check()  # and the next check too
    assert (r.returncode, r.stdout, rig.role()) == (0, "", "failover"), rig.story()

    sb.power_restore()  # the give-back and sync-back work from the rebuilt state
    r = rig.check()
    assert r.stdout.startswith("gave back: primary healthy"), rig.story()
    assert (rig.role(), rig.serving()) == ("primary", "primary")
    assert_synced_back(rig, written)
    assert_notices(rig, took_over=1, gave_back=1)


def test_state_file_lost_after_fencing_still_gives_back(rig: Rig) -> None:
    sb = rig.sb
    assert sb.tick().reason == "no action: primary healthy"
    sb.crash_gateway()
    assert sb.tick().reason.endswith("primary's gateway fenced")
    damage_state(rig, "deleted")
    for _ in range(3):
        rig.check()
        if rig.role() == "primary":
            break
    assert (rig.role(), rig.serving()) == ("primary", "primary"), rig.story()


def test_state_file_lost_with_a_give_back_pending_still_syncs_back(rig: Rig) -> None:
    sb = rig.sb
    assert sb.tick().reason == "no action: primary healthy"
    ssh_refused(sb)
    assert sb.tick().reason.startswith("took over: primary refused")
    written = write_memories(sb, "standby", "pending")
    sb.power_restore()
    sb.standby.gateway.stop()  # as a give-back killed after stopping it would leave it
    damage_state(rig, "deleted")
    for _ in range(3):
        rig.check()
    assert found_on_primary(sb, written)["memory_items"] == len(written), rig.story()
    assert memu.subscription_health(sb.standby.cluster).healthy


# --------------------------------------------------------------------------- ocf demo


def test_ocf_demo_as_a_subprocess_exits_0() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "openclaw_failover", "demo", "--transport", "openssh"],
        capture_output=True,
        text=True,
        timeout=180,
        env=Rig.env(),
    )
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    summary = out.split("== Summary ==", 1)[1]
    assert re.search(r"^\| time to take over +\| \d+\.\d s +\| \d+\.\d s +\|$", summary, re.M)
    assert re.search(r"^\| time to give back +\| \d+\.\d s +\| \d+\.\d s +\|$", summary, re.M)
    notices = r"^\| Telegram messages +\| 2: took over, gave back +\| 2: took over, gave back +\|$"
    assert re.search(notices, summary, re.M), summary
    assert re.search(r"^all \d+ checks hold \(\d+ s in all\)$", out, re.M), out
    assert "FAILED" not in out

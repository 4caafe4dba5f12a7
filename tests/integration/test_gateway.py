"""LocalGateway against real processes and real HTTP on 127.0.0.1.

The stand-in gateway is tests/harness/fake_gateway_proc.py; tests/harness/fake_service.py
plays ``systemctl --user start|stop`` (and fails like it does under cron when a
marker file exists).  Every process started here is killed at teardown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openclaw_failover.config.loader import (
    Config,
    PrimaryConfig,
    SSHConfig,
    StandbyConfig,
    StandbyGateway,
)
from openclaw_failover.config.secrets import Masker
from openclaw_failover.local.gateway import GatewayOutcome, LocalGateway
from openclaw_failover.local.httpcheck import answers

HARNESS = Path(__file__).resolve().parents[1] / "harness"
FAKE_GATEWAY = str(HARNESS / "fake_gateway_proc.py")
FAKE_SERVICE = str(HARNESS / "fake_service.py")
PY = sys.executable
SECRET = "s3cr3t-T0KEN-value"
CRON_ENV = {"PATH": "/usr/bin:/bin"}  # what cron gives a job: no session variables


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def alive(pid: int) -> bool:
    """Exists and is not a zombie (orphans may never be reaped in a container)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return True
    return text.rpartition(")")[2].split()[0] not in ("Z", "X")


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}/healthz"


def read_pid(path: Path) -> int:
    """The pid on the pid file's first line (the second records its start time)."""
    return int(path.read_text().split("\n")[0])


@dataclasses.dataclass
class Env:
    """One test's world: a port, the fake service's dir, ocf's state dir."""

    tmp: Path
    port: int
    svc: Path
    state: Path
    pids: list[int]
    popens: list[subprocess.Popen[bytes]]
    gateways: list[LocalGateway]

    def service(self, verb: str, *extra: str) -> tuple[str, ...]:
        base = (PY, FAKE_SERVICE, verb, "--state-dir", str(self.svc))
        return base + (("--port", str(self.port)) if verb == "start" else ()) + extra

    def fallback(self, *extra: str) -> tuple[str, ...]:
        return (PY, FAKE_GATEWAY, "--port", str(self.port), *extra)

    def config(self, **gw: Any) -> Config:
        fields: dict[str, Any] = {
            "start_command": self.service("start"),
            "stop_command": self.service("stop"),
            "health_url": url(self.port),
            "start_timeout": 10.0,
            "stop_timeout": 5.0,
            "command_timeout": 10.0,
        }
        fields.update(gw)
        ssh = SSHConfig(user="u", key_file=self.tmp / "key", known_hosts=self.tmp / "kh")
        return Config(
            primary=PrimaryConfig(host="primary.invalid", ssh=ssh),
            standby=StandbyConfig(gateway=StandbyGateway(**fields)),
            state_dir=self.state,
        )

    def gateway(
        self,
        cfg: Config | None = None,
        *,
        env: dict[str, str] | None = None,
        mask: Masker | None = None,
        dry_run: bool = False,
    ) -> LocalGateway:
        gw = LocalGateway(
            cfg or self.config(),
            mask=mask or Masker(),
            env=CRON_ENV if env is None else env,
            dry_run=dry_run,
        )
        self.gateways.append(gw)
        return gw

    def spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL)
        self.popens.append(proc)
        return proc

    def run_gateway_directly(self, *extra: str) -> subprocess.Popen[bytes]:
        proc = self.spawn([PY, FAKE_GATEWAY, "--port", str(self.port), *extra])
        assert wait_for(lambda: answers(url(self.port), 1.0)), "fake gateway did not start"
        return proc

    def fail_service(self, marker: str = "fail") -> None:
        (self.svc / marker).touch()

    def service_calls(self) -> list[dict[str, Any]]:
        path = self.svc / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


def _kill(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Env]:
    svc = tmp_path / "svc"
    svc.mkdir()
    env = Env(tmp_path, free_port(), svc, tmp_path / "state", [], [], [])
    try:
        yield env
    finally:
        pids = list(env.pids)
        for pidfile in (svc / "service.pid", env.state / "gateway.pid"):
            if pidfile.exists():
                pids.append(read_pid(pidfile))
        for gw in env.gateways:
            pids += list(gw._children)
        for proc in env.popens:
            pids.append(proc.pid)
        for pid in pids:
            if pid != os.getpid() and alive(pid):
                _kill(pid)
        for gw in env.gateways:
            for child in gw._children.values():
                child.wait(timeout=10)
        for proc in env.popens:
            proc.wait(timeout=10)
        # SIGKILL to a process that is not our child completes asynchronously.
        others = [pid for pid in pids if pid != os.getpid()]
        assert wait_for(lambda: not any(alive(pid) for pid in others)), "a process survived"


def last(out: GatewayOutcome) -> str:
    return out.steps[-1] if out.steps else ""


# --------------------------------------------------------------------------- start


def test_start_via_start_command_then_stop(world: Env) -> None:
    gw = world.gateway()
    assert not gw.is_up()

    out = gw.start()

    assert out.ok, out.steps
    assert out.method == "start_command"
    assert out.steps[0] == "start_command: ok"
    assert last(out).startswith("gateway answering after ")
    assert gw.is_up()
    assert [c["verb"] for c in world.service_calls()] == ["start"]
    assert not (world.state / "gateway.pid").exists()

    stopped = gw.stop()

    assert stopped.ok, stopped.steps
    assert stopped.method == "stop_command"
    assert stopped.steps[0] == "stop_command: ok"
    assert not gw.is_up()
    assert not (world.svc / "service.pid").exists()


def test_start_command_fails_then_fallback_runs_detached(world: Env) -> None:
    world.fail_service()
    gw = world.gateway(world.config(fallback_start_command=world.fallback()))

    out = gw.start()

    assert out.ok, out.steps
    assert out.method == "fallback"
    assert out.steps[0] == (
        "start_command: exit 1: Failed to connect to bus: No such file or directory"
    )
    pid = read_pid(world.state / "gateway.pid")
    assert out.steps[1].startswith(f"fallback start: pid {pid}, log ")
    assert out.steps[1].endswith("gateway.log")
    assert last(out).startswith("gateway answering after ")
    assert os.getsid(pid) == pid != os.getsid(0)  # own session: cron's exit cannot touch it
    assert os.getpgid(pid) == pid
    assert stat.S_IMODE(world.state.stat().st_mode) == 0o700
    log_file = world.state / "gateway.log"
    assert wait_for(lambda: "listening on 127.0.0.1" in log_file.read_text())
    assert "# ocf " in log_file.read_text()
    assert not list(world.state.glob(".gateway.pid.*"))  # no temp file left behind

    stopped = gw.stop()

    assert stopped.ok, stopped.steps
    assert stopped.method == "fallback"
    assert f"fallback pid {pid} stopped (SIGTERM)" in stopped.steps
    assert not alive(pid)
    assert not (world.state / "gateway.pid").exists()
    assert not gw.is_up()


CHILD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from openclaw_failover.config.loader import (
        Config, PrimaryConfig, SSHConfig, StandbyConfig, StandbyGateway)
    from openclaw_failover.local.gateway import LocalGateway
    from openclaw_failover.config.secrets import Masker

    a = json.loads(sys.argv[1])
    ssh = SSHConfig(user="u", key_file=Path("k"), known_hosts=Path("kh"))
    gw = StandbyGateway(
        start_command=tuple(a["start"]), stop_command=tuple(a["stop"]),
        fallback_start_command=tuple(a["fallback"]), health_url=a["url"], start_timeout=10,
    )
    cfg = Config(PrimaryConfig(host="h", ssh=ssh), StandbyConfig(gateway=gw),
                 state_dir=Path(a["state"]))
    out = LocalGateway(cfg, mask=Masker(), env={}).start()
    print(json.dumps({"ok": out.ok, "method": out.method, "steps": out.steps}))
    """
)


def test_fallback_survives_the_process_that_started_it(world: Env) -> None:
    """Like cron: `ocf` starts the fallback and exits; the gateway keeps serving."""
    world.fail_service()
    args = {
        "start": world.service("start"),
        "stop": world.service("stop"),
        "fallback": world.fallback(),
        "url": url(world.port),
        "state": str(world.state),
    }
    child = subprocess.run(
        [PY, "-c", CHILD_SCRIPT, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    assert result["ok"] and result["method"] == "fallback", result

    pid = read_pid(world.state / "gateway.pid")
    time.sleep(0.5)
    assert alive(pid)
    assert answers(url(world.port), 2.0)

    stopped = world.gateway(world.config(fallback_start_command=world.fallback())).stop()
    assert stopped.ok, stopped.steps
    assert not alive(pid)
    assert not (world.state / "gateway.pid").exists()


def test_start_command_not_found_uses_fallback(world: Env) -> None:
    cfg = world.config(
        start_command=("/nonexistent/systemctl", "--user", "start", "x"),
        fallback_start_command=world.fallback(),
    )
    out = world.gateway(cfg).start()
    assert out.ok, out.steps
    assert out.method == "fallback"
    assert out.steps[0] == "start_command: command not found: /nonexistent/systemctl"


def test_start_command_timing_out_uses_fallback(world: Env) -> None:
    cfg = world.config(
        start_command=world.service("start", "--block", "30"),
        fallback_start_command=world.fallback(),
        command_timeout=0.5,
    )
    out = world.gateway(cfg).start()
    assert out.ok, out.steps
    assert out.method == "fallback"
    assert out.steps[0].startswith("start_command: timed out after")


def test_start_command_succeeds_but_nothing_answers(world: Env) -> None:
    """No fallback then: a slow service start plus a direct start could run two gateways."""
    cfg = world.config(
        start_command=(PY, "-c", "pass"),
        fallback_start_command=world.fallback(),
        start_timeout=1.0,
    )
    out = world.gateway(cfg).start()

    assert not out.ok
    assert out.method == "start_command"
    assert out.steps[0] == "start_command: ok"
    assert last(out) == (
        "gateway not answering after 1s (start_command succeeded; fallback not tried)"
    )
    assert out.duration >= 1.0
    assert not (world.state / "gateway.pid").exists()
    assert not answers(url(world.port), 1.0)


def test_start_command_fails_without_fallback(world: Env) -> None:
    world.fail_service()
    out = world.gateway().start()
    assert not out.ok
    assert out.method == ""
    assert last(out) == (
        "start_command failed (exit 1: Failed to connect to bus: No such file or directory), "
        "no fallback configured"
    )


def test_already_running_runs_no_command(world: Env) -> None:
    world.run_gateway_directly()
    marker = world.tmp / "start-ran"
    cfg = world.config(
        start_command=(PY, "-c", f"open({str(marker)!r}, 'w')"),
        fallback_start_command=world.fallback(),
    )
    out = world.gateway(cfg).start()

    assert out.ok
    assert out.method == "already running"
    assert out.steps == [f"gateway already answering at {url(world.port)}"]
    assert not marker.exists()
    assert not world.state.exists()


def test_fallback_exiting_early_reports_code_and_last_log_line(world: Env) -> None:
    world.fail_service()
    script = "import sys; print('starting'); print('fatal: bad config', flush=True); sys.exit(4)"
    cfg = world.config(fallback_start_command=(PY, "-c", script), start_timeout=30.0)
    out = world.gateway(cfg).start()

    assert not out.ok
    assert out.method == "fallback"
    assert "exited early with code 4; last log line: fatal: bad config" in last(out)
    assert out.duration < 30  # it stopped waiting when the process died
    assert not (world.state / "gateway.pid").exists()


def test_fallback_that_cannot_start(world: Env) -> None:
    world.fail_service()
    cfg = world.config(fallback_start_command=("/nonexistent/openclaw", "gateway"))
    out = world.gateway(cfg).start()
    assert not out.ok
    assert last(out) == "fallback start: command not found: /nonexistent/openclaw"
    assert not (world.state / "gateway.pid").exists()


def test_slow_fallback_is_not_started_twice(world: Env) -> None:
    world.fail_service()
    slow = world.config(
        fallback_start_command=world.fallback("--delay-start", "2"), start_timeout=0.3
    )
    first = world.gateway(slow).start()
    assert not first.ok
    pid = read_pid(world.state / "gateway.pid")
    assert alive(pid)

    patient = dataclasses.replace(
        slow,
        standby=StandbyConfig(
            gateway=dataclasses.replace(slow.standby.gateway, start_timeout=20.0)
        ),
    )
    second = world.gateway(patient).start()

    assert second.ok, second.steps
    assert f"fallback already running: pid {pid}; not starting another" in second.steps
    assert read_pid(world.state / "gateway.pid") == pid
    assert not any(s.startswith("fallback start:") for s in second.steps)


def test_live_fallback_is_awaited_before_start_command_runs_again(world: Env) -> None:
    world.fail_service()
    slow = world.config(
        fallback_start_command=world.fallback("--delay-start", "2"), start_timeout=0.3
    )
    assert not world.gateway(slow).start().ok
    pid = read_pid(world.state / "gateway.pid")
    (world.svc / "fail").unlink()  # systemctl works again: it must still not be run
    calls_before = len(world.service_calls())
    patient = dataclasses.replace(
        slow,
        standby=StandbyConfig(
            gateway=dataclasses.replace(slow.standby.gateway, start_timeout=20.0)
        ),
    )
    second = world.gateway(patient).start()
    assert second.ok and second.method == "fallback", second.steps
    assert len(world.service_calls()) == calls_before
    assert read_pid(world.state / "gateway.pid") == pid


# --------------------------------------------------------------------------- stop


@pytest.mark.parametrize("marker", [None, "fail", "not-loaded"])
def test_stop_when_nothing_runs_is_ok(world: Env, marker: str | None) -> None:
    if marker:
        world.fail_service(marker)
    out = world.gateway().stop()
    assert out.ok, out.steps
    assert last(out).startswith("gateway not answering after ")
    assert out.method == ("" if marker else "stop_command")


def test_stop_command_fails_and_gateway_still_answers(world: Env) -> None:
    world.run_gateway_directly()
    world.fail_service()
    out = world.gateway(world.config(stop_timeout=1.0)).stop()

    assert not out.ok
    assert out.steps[0].startswith("stop_command: exit 1: Failed to connect to bus")
    assert last(out) == "gateway still answering after 1s"
    assert answers(url(world.port), 1.0)


def test_fallback_ignoring_sigterm_is_killed(world: Env) -> None:
    world.fail_service()
    cfg = world.config(
        fallback_start_command=world.fallback("--ignore-term"),
        stop_timeout=1.0,
    )
    gw = world.gateway(cfg)
    assert gw.start().ok
    pid = read_pid(world.state / "gateway.pid")

    out = gw.stop()

    assert out.ok, out.steps
    assert f"fallback pid {pid} ignored SIGTERM for 1s: killed" in out.steps
    assert not alive(pid)
    assert not (world.state / "gateway.pid").exists()


def test_stale_pid_of_another_program_is_never_killed(world: Env) -> None:
    other = world.spawn(["sleep", "60"])
    world.state.mkdir(mode=0o700)
    (world.state / "gateway.pid").write_text(f"{other.pid}\n")
    gw = world.gateway(world.config(fallback_start_command=world.fallback()))

    out = gw.stop()

    assert out.ok, out.steps
    assert f"removed stale pid file: pid {other.pid} is another program, not killed" in out.steps
    assert alive(other.pid)
    assert not (world.state / "gateway.pid").exists()


def proc_start(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]


def test_pid_file_records_the_start_time(world: Env) -> None:
    world.fail_service()
    gw = world.gateway(world.config(fallback_start_command=world.fallback()))
    assert gw.start().ok
    pid = read_pid(world.state / "gateway.pid")
    assert (world.state / "gateway.pid").read_text() == f"{pid}\nstart {proc_start(pid)}\n"


def test_renamed_fallback_is_stopped_by_a_later_run(world: Env) -> None:
    """The real gateway renames itself to openclaw-gateway: the next `ocf check` (a new
    process, not the fallback's parent) still recognises and stops it, workers too."""
    world.fail_service()
    cfg = world.config(
        fallback_start_command=world.fallback("--rename", "openclaw-gateway", "--worker")
    )
    assert world.gateway(cfg).start().ok
    pid = read_pid(world.state / "gateway.pid")
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert cmdline.startswith(b"openclaw-gateway\0") and b"python" not in cmdline
    workers = [
        int(d)
        for d in os.listdir("/proc")
        if d.isdigit() and int(d) != pid and _pgid(int(d)) == pid
    ]
    assert workers, "the fake gateway started no worker"
    world.pids += workers

    out = world.gateway(cfg).stop()  # a new LocalGateway: the pid is not its child

    assert out.ok, out.steps
    assert out.method == "fallback"
    assert f"fallback pid {pid} stopped (SIGTERM)" in out.steps
    assert not alive(pid)
    assert not any(alive(w) for w in workers)  # stop waited for the whole group
    assert not (world.state / "gateway.pid").exists()


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return -1


def test_recycled_pid_with_another_start_time_is_never_killed(world: Env) -> None:
    """Same pid, different start time: another process that got the pid; a session
    leader whose command line even starts with openclaw is not enough."""
    other = world.spawn(["sleep", "60"])
    world.state.mkdir(mode=0o700)
    start = int(proc_start(other.pid)) - 100
    (world.state / "gateway.pid").write_text(f"{other.pid}\nstart {start}\n")
    gw = world.gateway(world.config(fallback_start_command=("sleep", "60")))

    out = gw.stop()

    assert out.ok, out.steps
    assert f"removed stale pid file: pid {other.pid} is another program, not killed" in out.steps
    assert alive(other.pid)


def test_stale_pid_is_replaced_on_start(world: Env) -> None:
    other = world.spawn(["sleep", "60"])
    world.state.mkdir(mode=0o700)
    (world.state / "gateway.pid").write_text(f"{other.pid}\n")
    world.fail_service()
    gw = world.gateway(world.config(fallback_start_command=world.fallback()))

    out = gw.start()

    assert out.ok, out.steps
    assert alive(other.pid)
    new = read_pid(world.state / "gateway.pid")
    assert new != other.pid
    assert f"fallback start: pid {new}" in out.steps[-2]


@pytest.mark.parametrize("content", ["dead", "garbage"])
def test_dead_or_unreadable_pid_file_is_removed(world: Env, content: str) -> None:
    world.state.mkdir(mode=0o700)
    if content == "dead":
        gone = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True)
        text = gone.stdout.decode()
    else:
        text = "not a pid\n"
    (world.state / "gateway.pid").write_text(text)

    out = world.gateway(world.config(fallback_start_command=world.fallback())).stop()

    assert out.ok, out.steps
    assert not (world.state / "gateway.pid").exists()
    expected = "is not running" if content == "dead" else "removed unreadable pid file"
    assert any(expected in s for s in out.steps), out.steps


# --------------------------------------------------------------------------- dry run


def test_dry_run_runs_nothing(world: Env) -> None:
    world.fail_service()
    cfg = world.config(fallback_start_command=world.fallback())
    gw = world.gateway(cfg, dry_run=True)

    start = gw.start()
    stop = gw.stop()

    assert start.ok and stop.ok
    assert start.steps[0] == "would run: " + " ".join(world.service("start"))
    assert start.steps[1] == "would run (detached, if that fails): " + " ".join(world.fallback())
    assert stop.steps == ["would run: " + " ".join(world.service("stop"))]
    assert world.service_calls() == []  # the fake systemctl was never invoked
    assert not answers(url(world.port), 1.0)
    assert not world.state.exists()
    assert gw._children == {}


def test_dry_run_stop_names_the_running_fallback_but_leaves_it(world: Env) -> None:
    world.fail_service()
    cfg = world.config(fallback_start_command=world.fallback())
    assert world.gateway(cfg).start().ok
    pid = read_pid(world.state / "gateway.pid")

    out = world.gateway(cfg, dry_run=True).stop()

    assert out.ok
    assert f"would stop fallback pid {pid} (SIGTERM to its process group)" in out.steps
    assert alive(pid)
    assert answers(url(world.port), 1.0)


# --------------------------------------------------------------------------- environment


def test_start_command_gets_user_session_env_under_cron(world: Env) -> None:
    out = world.gateway(env=dict(CRON_ENV)).start()
    assert out.ok, out.steps

    seen = world.service_calls()[0]["env"]
    uid = os.getuid()
    assert seen["XDG_RUNTIME_DIR"] == f"/run/user/{uid}"
    assert seen["DBUS_SESSION_BUS_ADDRESS"] == f"unix:path=/run/user/{uid}/bus"


def test_start_and_stop_keep_given_session_env(world: Env) -> None:
    env = {
        **CRON_ENV,
        "XDG_RUNTIME_DIR": "/tmp/xdg-test",
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/tmp/xdg-test/custom-bus",
    }
    gw = world.gateway(env=env)
    assert gw.start().ok
    assert gw.stop().ok

    calls = world.service_calls()
    assert [c["verb"] for c in calls] == ["start", "stop"]
    for call in calls:
        assert call["env"]["XDG_RUNTIME_DIR"] == "/tmp/xdg-test"
        assert call["env"]["DBUS_SESSION_BUS_ADDRESS"] == "unix:path=/tmp/xdg-test/custom-bus"


def test_fallback_gets_user_session_env(world: Env) -> None:
    world.fail_service()
    dump = world.tmp / "env.json"
    script = (
        "import json, os, sys, runpy; "
        "json.dump({k: os.environ.get(k) for k in ('XDG_RUNTIME_DIR', 'DBUS_SESSION_BUS_ADDRESS')},"
        f" open({str(dump)!r}, 'w')); "
        f"sys.argv = [{FAKE_GATEWAY!r}, '--port', '{world.port}']; "
        f"runpy.run_path({FAKE_GATEWAY!r}, run_name='__main__')"
    )
    out = world.gateway(world.config(fallback_start_command=(PY, "-c", script))).start()
    assert out.ok, out.steps
    seen = json.loads(dump.read_text())
    assert seen["XDG_RUNTIME_DIR"] == f"/run/user/{os.getuid()}"
    assert seen["DBUS_SESSION_BUS_ADDRESS"] is not None


# --------------------------------------------------------------------------- secrets


def test_secrets_are_masked_in_steps_and_logs(world: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    failing = (PY, "-c", "import sys; print('bad token', sys.argv[1], file=sys.stderr); exit(1)")
    fallback = (PY, "-c", "import sys; print('fatal: token', sys.argv[1]); exit(4)")
    cfg = world.config(start_command=(*failing, SECRET), fallback_start_command=(*fallback, SECRET))
    mask = Masker([SECRET])

    out = world.gateway(cfg, mask=mask).start()
    dry = world.gateway(cfg, mask=mask, dry_run=True)
    dry_steps = dry.start().steps + dry.stop().steps

    assert not out.ok
    assert out.steps[0] == "start_command: exit 1: bad token ***"
    assert "exited early with code 4; last log line: fatal: token ***" in last(out)
    assert any("***" in s for s in dry_steps)
    text = "\n".join(out.steps + dry_steps) + caplog.text
    assert SECRET not in text
    assert "starting detached" in caplog.text  # the Popen is logged, masked


# --------------------------------------------------------------------------- harness


def test_fake_service_fails_like_systemctl_under_cron(world: Env) -> None:
    res = subprocess.run(
        list(world.service("start")),
        capture_output=True,
        text=True,
        env={**os.environ, "FAKE_SYSTEMCTL_FAIL": "1"},
        timeout=30,
        check=False,
    )
    assert res.returncode == 1
    assert "Failed to connect to bus" in res.stderr
    assert not (world.svc / "service.pid").exists()


def test_fake_gateway_answers_status_and_exits_cleanly_on_sigterm(world: Env) -> None:
    pidfile = world.tmp / "gw.pid"
    proc = world.run_gateway_directly("--status", "404", "--pidfile", str(pidfile))
    assert read_pid(pidfile) == proc.pid
    assert answers(url(world.port), 1.0)  # 404 still counts as alive
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert not pidfile.exists()


def test_readiness_waits_for_200_reports_503_and_accepts_404() -> None:
    import http.server
    import threading

    from openclaw_failover.local import readiness

    answers = {"/readyz": [503, 503, 200], "/old/readyz": [404]}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            queue = answers.get(self.path, [500])
            code = queue.pop(0) if len(queue) > 1 else queue[0]
            body = b'{"ready":false,"failing":["startup-sidecars"]}' if code == 503 else b"{}"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        gw = StandbyGateway(("true",), ("true",), health_url=f"{base}/healthz")
        assert readiness.ready_url(gw) == f"{base}/readyz"
        ok, line = readiness.await_ready(f"{base}/readyz", 10, sleep=lambda _: None)
        assert ok and "ready (/readyz 200)" in line
        ok, line = readiness.await_ready(f"{base}/old/readyz", 10, sleep=lambda _: None)
        assert ok and "404" in line
        answers["/readyz"] = [503]
        clock = iter(range(100))
        ok, line = readiness.await_ready(
            f"{base}/readyz", 3, sleep=lambda _: None, clock=lambda: float(next(clock))
        )
        assert not ok and "not ready after 3s" in line and "startup-sidecars" in line
    finally:
        server.shutdown()
        server.server_close()
    ok, line = readiness.await_ready(f"{base}/readyz", 10, sleep=lambda _: None)
    assert ok and line.startswith("readiness not checked")

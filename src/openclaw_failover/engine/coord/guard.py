"""The leader's watchdog: stop this host's gateway when its leader key's lease runs out.

``python -m openclaw_failover.engine.coord.guard --config C --lease ID`` is started detached
(own session, ``state_dir/guard.pid`` with its start time, output in
``state_dir/guard.log``) by the check when this host takes or holds the leader key, and
stopped (SIGTERM) by the check before it releases the key on purpose.  It polls the
lease's time to live.  When the lease expired (this host's ocf was killed, or stopped
refreshing), or etcd could not be asked until the moment the lease would run out, it
stops this host's gateway (``standby.gateway.stop_command``), records a ``guard`` event,
leaves ``state_dir/guard.stopped`` (the next check then knows its gateway is fenced:
a primary starts it again only once it holds the key) and exits.  So a leader whose ocf dies stops serving when its lease ends, and a standby
(whose probe then fails) takes over: Patroni's watchdog, in software.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from openclaw_failover.engine.coord.etcd import EtcdClient, EtcdError
from openclaw_failover.local import procid

PID_FILE = "guard.pid"
LOG_FILE = "guard.log"
STOPPED = "guard.stopped"  # the guard stopped the gateway: the check learns it is fenced


def watch_lease(
    client: EtcdClient,
    lease: int,
    *,
    poll: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Return (why) once the lease has expired or would have; never before."""
    expires: float | None = None
    while True:
        try:
            left = client.lease_ttl(lease)
        except EtcdError as exc:
            if expires is not None and clock() >= expires:
                return f"etcd could not be asked until the lease ran out ({exc})"
        else:
            if left <= 0:
                return "the leader key's lease expired"
            expires = clock() + left
        sleep(poll)


# ------------------------------------------------------------------ process management


def running(state_dir: Path) -> tuple[int, int] | None:
    """(pid, lease) of the guard recorded in ``state_dir``, when it still runs."""
    path = state_dir / PID_FILE
    rec = procid.read(path)
    if rec is None or procid.same_process(rec) is False:
        return None
    try:
        os.kill(rec.pid, 0)
        lines = path.read_text(encoding="ascii").split("\n")
    except (OSError, UnicodeDecodeError):
        return None
    lease = [int(x.split()[1]) for x in lines if x.startswith("lease ") and x[6:].isdigit()]
    return (rec.pid, lease[0]) if lease else None


def start(config: str, lease: int, state_dir: Path, env: Mapping[str, str]) -> int:
    """Start a guard for ``lease`` (after stopping one for another lease); its pid."""
    current = running(state_dir)
    if current is not None and current[1] == lease:
        return current[0]
    stop(state_dir)
    argv = [sys.executable, "-m", "openclaw_failover.engine.coord.guard", "--config", config]
    argv += ["--lease", str(lease)]
    fd = os.open(
        state_dir / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600
    )
    try:
        proc = subprocess.Popen(  # nosec B603
            argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, env=dict(env),
        )  # fmt: skip
    finally:
        os.close(fd)
    procid.write(state_dir / PID_FILE, proc.pid)
    with (state_dir / PID_FILE).open("a", encoding="ascii") as fh:
        fh.write(f"lease {lease}\n")
    return proc.pid


def stop(state_dir: Path) -> bool:
    """Stop the guard (before a deliberate release): True when one was running."""
    current = running(state_dir)
    (state_dir / PID_FILE).unlink(missing_ok=True)
    if current is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(current[0], signal.SIGTERM)
    return True


# ------------------------------------------------------------------ entry point


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ocf-guard")
    ap.add_argument("--config", required=True)
    ap.add_argument("--lease", type=int, required=True)
    args = ap.parse_args(argv)
    from openclaw_failover.config.loader import ConfigError, load_config
    from openclaw_failover.core.events import coord_event
    from openclaw_failover.engine.coord.leader import client_for
    from openclaw_failover.engine.store import StateStore
    from openclaw_failover.local.gateway import LocalGateway

    try:
        cfg = load_config(Path(args.config))
    except ConfigError as exc:
        print(f"ocf guard: {exc.render()}", file=sys.stderr)
        return 2
    assert cfg.coordination is not None
    mask = cfg.masker
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    poll = min(0.5, cfg.coordination.ttl / 6)
    why = watch_lease(client_for(cfg, mask), args.lease, poll=poll)
    outcome = LocalGateway(cfg, mask=mask, env=os.environ).stop()
    (cfg.state_dir / STOPPED).touch()
    StateStore(cfg.state_dir).append_event(
        coord_event("guard", reason=why, ok=outcome.ok, steps=outcome.steps, lease=args.lease)
    )
    print(f"ocf guard: {why}: gateway stopped ({'ok' if outcome.ok else 'FAILED'})")
    rec = procid.read(cfg.state_dir / PID_FILE)
    if rec is not None and rec.pid == os.getpid():  # never a newer guard's record
        (cfg.state_dir / PID_FILE).unlink(missing_ok=True)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())

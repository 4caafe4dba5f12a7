#!/usr/bin/env python3
"""Simulates ``systemctl --user start|stop|is-active UNIT`` for a fake gateway (stdlib only).

    python tests/harness/fake_service.py start|stop|is-active --port N --state-dir D
        [--status 200] [--delay-start S] [--die-after S] [--ignore-term] [--block S]
        [--ready-status N --ready-body JSON]

start      starts tests/harness/fake_gateway_proc.py in its own session (like a
           Type=simple unit: returns at once), pid in D/service.pid, output
           appended to D/service.log; exit 0 also when it already runs
stop       SIGTERM (then SIGKILL after 5 s) to the recorded process; exit 0
           also when nothing runs (like stopping an inactive unit)
is-active  exit 0 when the recorded process runs, else 3
--block S  sleep S seconds before doing anything (a hanging systemctl)
--ready-status N, --ready-body JSON   passed on: the gateway's /readyz answer

Each call appends its verb and the user-session variables it saw to
D/calls.jsonl.  It fails like systemctl under cron, printing
"Failed to connect to bus: No such file or directory" and exiting 1, when
FAKE_SYSTEMCTL_FAIL=1 or the marker file D/fail exists (D/fail-start or
D/fail-stop fail only that verb).  D/not-loaded makes stop fail with exit 5
("Unit ... not loaded.").
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GATEWAY = HERE / "fake_gateway_proc.py"
SESSION_VARS = ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "HOME")


def pid_alive(pid: int) -> bool:
    """Exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def read_pid(state: Path) -> int | None:
    try:
        text = (state / "service.pid").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def start(args: argparse.Namespace, state: Path) -> int:
    pid = read_pid(state)
    if pid is not None and pid_alive(pid):
        return 0
    argv = [sys.executable, str(GATEWAY), "--port", str(args.port), "--status", str(args.status)]
    if args.delay_start:
        argv += ["--delay-start", str(args.delay_start)]
    if args.die_after:
        argv += ["--die-after", str(args.die_after)]
    if args.ignore_term:
        argv.append("--ignore-term")
    if args.ready_status:
        argv += ["--ready-status", str(args.ready_status), "--ready-body", args.ready_body]
    with open(state / "service.log", "ab") as logf:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    (state / "service.pid").write_text(f"{proc.pid}\n")
    proc.returncode = 0  # do not warn about a child we leave running on purpose
    return 0


def stop(state: Path) -> int:
    if (state / "not-loaded").exists():
        print("Failed to stop fake.service: Unit fake.service not loaded.", file=sys.stderr)
        return 5
    pid = read_pid(state)
    if pid is not None and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    (state / "service.pid").unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("verb", choices=("start", "stop", "is-active"))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--delay-start", type=float, default=0.0)
    ap.add_argument("--die-after", type=float, default=0.0)
    ap.add_argument("--ignore-term", action="store_true")
    ap.add_argument("--block", type=float, default=0.0)
    ap.add_argument("--ready-status", type=int, default=0)
    ap.add_argument("--ready-body", default="")
    args = ap.parse_args(argv)
    state = Path(args.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    seen = {k: os.environ.get(k) for k in SESSION_VARS}
    with open(state / "calls.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"verb": args.verb, "env": seen}) + "\n")
    if args.block:
        time.sleep(args.block)
    markers = ("fail", f"fail-{args.verb}")
    if os.environ.get("FAKE_SYSTEMCTL_FAIL") == "1" or any((state / m).exists() for m in markers):
        print("Failed to connect to bus: No such file or directory", file=sys.stderr)
        return 1
    if args.verb == "start":
        if not args.port:
            ap.error("start needs --port")
        return start(args, state)
    if args.verb == "stop":
        return stop(state)
    pid = read_pid(state)
    return 0 if pid is not None and pid_alive(pid) else 3


if __name__ == "__main__":
    sys.exit(main())

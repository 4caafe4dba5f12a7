#!/usr/bin/env python3
"""A stand-in OpenClaw gateway: answers HTTP GET on 127.0.0.1:PORT (stdlib only).

    python tests/harness/fake_gateway_proc.py --port N [--status 200] [--pidfile F]
        [--die-after S] [--delay-start S] [--ignore-term] [--rename NAME] [--worker]
        [--ready-status N --ready-body JSON]

--delay-start S  sleep S seconds before listening (a slow gateway start)
--ready-status N, --ready-body JSON
                 answer GET /readyz with this status and body (the real gateway's
                 readiness, e.g. 503 {"ready":false,"failing":["telegram"]})
--die-after S    exit with code 3 after S seconds of serving (a crash)
--ignore-term    ignore SIGTERM (needs SIGKILL)
--pidfile F      write the pid to F once listening; removed on a clean exit
--rename NAME    re-exec itself (same pid) with NAME as its whole visible program name,
                 as `openclaw gateway run` renames itself to `openclaw-gateway`
--worker         also run a child process in the same process group (the real
                 gateway's workers): it ignores SIGTERM and exits 1 s after its parent

Exits 0 on SIGTERM (or SIGINT), 2 when the port cannot be bound.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any


def _handler(status: int, ready: tuple[int, str] | None = None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"ok": true, "fake": "openclaw-gateway"}\n'
            code = status
            if ready is not None and self.path.split("?")[0] == "/readyz":
                code, body = ready[0], ready[1].encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: health polls
            return None

    return Handler


# Run this file by path without naming the interpreter in the command line.
_REEXEC = (
    "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)
_WORKER = (
    "import os, signal, time\n"
    "parent = os.getppid()\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "while os.getppid() == parent: time.sleep(0.05)\n"
    "time.sleep(1.0)\n"
)


def _start_worker() -> None:
    import subprocess

    python = os.environ.get("FAKE_GATEWAY_PYTHON") or sys.executable
    subprocess.Popen([python, "-c", _WORKER], stdin=subprocess.DEVNULL)


def _say(text: str) -> None:
    print(f"fake-gateway[{os.getpid()}]: {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--pidfile")
    ap.add_argument("--die-after", type=float, default=0.0)
    ap.add_argument("--delay-start", type=float, default=0.0)
    ap.add_argument("--ignore-term", action="store_true")
    ap.add_argument("--rename")
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--ready-status", type=int, default=0)
    ap.add_argument("--ready-body", default="")
    args = ap.parse_args(argv)
    ready = (args.ready_status, args.ready_body) if args.ready_status else None
    if args.rename and os.environ.get("FAKE_GATEWAY_RENAMED") != args.rename:
        os.environ["FAKE_GATEWAY_RENAMED"] = args.rename
        os.environ["FAKE_GATEWAY_PYTHON"] = sys.executable  # lost with the new argv[0]
        # Same pid, new command line: nothing of the started program's name is left.
        os.execv(sys.executable, [args.rename, "-c", _REEXEC, *sys.argv])
    if args.worker:
        _start_worker()

    stop: list[int] = []  # the exit code, once a signal asked to stop

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.append(0)

    signal.signal(signal.SIGTERM, signal.SIG_IGN if args.ignore_term else on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.delay_start > 0:
        _say(f"starting in {args.delay_start:g}s")
        until = time.monotonic() + args.delay_start
        while not stop and time.monotonic() < until:
            time.sleep(0.05)
    if stop:
        _say("stopped by signal before listening")
        return stop[0]
    try:
        server = ThreadingHTTPServer((args.host, args.port), _handler(args.status, ready))
    except OSError as exc:
        _say(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return 2
    server.daemon_threads = True
    server.block_on_close = False  # never wait for a hanging client at exit
    server.timeout = 0.1  # handle_request() returns at least this often to look at `stop`
    if args.pidfile:
        with open(args.pidfile, "w", encoding="ascii") as fh:
            fh.write(f"{os.getpid()}\n")
    _say(f"listening on {args.host}:{args.port}, answering {args.status}")
    die_at = time.monotonic() + args.die_after if args.die_after > 0 else None
    try:
        while not stop:
            if die_at is not None and time.monotonic() >= die_at:
                _say(f"dying after {args.die_after:g}s as asked")
                return 3
            server.handle_request()
    finally:
        server.server_close()
    _say("stopped by signal")
    if args.pidfile:
        with contextlib.suppress(OSError):
            os.unlink(args.pidfile)
    return stop[0]


if __name__ == "__main__":
    sys.exit(main())

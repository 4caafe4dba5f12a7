"""``ocf demo``: build the sandbox, play the original's two scenarios, print a summary.

:func:`run_demo` is the whole command: progress while building, a timeline
per scenario (:mod:`.scenarios`), the summary table, the Telegram messages
that would have been sent, and the checks.  Exit 0 only when every check
holds; 2 when PostgreSQL is missing; 1 when something failed; 130 on Ctrl-C.
Everything it started is stopped and its directory removed at the end, on
Ctrl-C, SIGTERM, SIGHUP or an error, unless ``keep`` (then it prints how to use
the sandbox by hand and how to stop it).  Call it from the main thread.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import TextIO

from openclaw_failover.sandbox import postgres, realgw
from openclaw_failover.sandbox.checks import Scenario, summary_table
from openclaw_failover.sandbox.core import Sandbox
from openclaw_failover.sandbox.scenarios import FAILURES, SCENARIOS, Demo, one_line
from openclaw_failover.sandbox.timeline import capture_ocf_logs

STAND_INS = (
    "the stand-in gateways, measured by the demo: take over in 2.9-7.0 s, give back in 1.6-4.1 s"
)
ORIGINAL = (
    "the original, checking every 2 minutes: take over in about 1-3 min, give back in 1-2 min"
)


def run_demo(
    *,
    keep: bool = False,
    out: TextIO = sys.stdout,
    err: TextIO | None = None,
    transport: str = "auto",
    scenarios: Sequence[str] = SCENARIOS,
    real_gateway: bool = False,
) -> int:
    """Play the demo; the exit code.  ``transport``: auto, openssh or paramiko.
    ``real_gateway``: run the real OpenClaw gateway (see :mod:`.realgw`) instead of the
    stand-ins; exit 2 when it is not installed."""
    err = sys.stderr if err is None else err
    try:
        postgres.find_bin_dir()
    except postgres.PostgresMissing as exc:
        err.write(f"{exc}\n")
        return 2
    unknown = [name for name in scenarios if name not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r} (known: {', '.join(SCENARIOS)})")
    real = realgw.find() if real_gateway else None
    if real_gateway and real is None:
        err.write(f"{realgw.MISSING}\n")
        return 2
    out.write("ocf demo: the original failover setup, rebuilt on this machine\n")
    if real is not None:
        out.write(
            f"with the real OpenClaw gateway {real.version()} ({real.bin}); memories are"
            " written by the demo itself (an agent turn needs a model)\n"
        )
    t0 = time.monotonic()
    sb = Sandbox(transport=transport, say=lambda line: _progress(out, t0, line), real_gateway=real)
    kept = False
    with _signals_interrupt(), capture_ocf_logs() as recorder:
        try:
            out.write("\nbuilding the sandbox\n")
            sb.start()
            demo = Demo(sb, out, recorder)
            demo.quiet_tick()  # the first check creates ocf's state
            results = demo.play(scenarios)
            code = _report(out, sb, results, time.monotonic() - t0)
            if keep:
                kept = True
                sb.detach()
                _keep_instructions(out, sb)
            return code
        except KeyboardInterrupt:
            out.write("\ninterrupted: stopping the sandbox\n")
            return 130
        except FAILURES as exc:
            out.write(f"\nFAILED: {one_line(exc)}\n")
            return 1
        finally:
            if not kept:
                _close(sb, out)


def _progress(out: TextIO, t0: float, line: str) -> None:
    out.write(f"  +{time.monotonic() - t0:.1f}s  {line}\n")
    out.flush()


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end the demo like Ctrl-C does (so it cleans up)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    saved = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _close(sb: Sandbox, out: TextIO) -> None:
    """Stop and remove everything; a second Ctrl-C does not cut the cleanup short."""
    main = threading.current_thread() is threading.main_thread()
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        if sb.started:
            sb.close()
            out.write(f"sandbox stopped and {sb.root} removed\n")
    finally:
        if saved is not None:
            signal.signal(signal.SIGINT, saved)
    out.flush()


def _report(out: TextIO, sb: Sandbox, results: list[Scenario], took: float) -> int:
    out.write("\n== Summary ==\n")
    for row in summary_table(results):
        out.write(row + "\n")
    out.write(f"({ORIGINAL})\n")
    if sb.real is not None:
        out.write(f"({STAND_INS})\n")
    out.write("\nTelegram messages that would have been sent (recorded by the fake Bot API):\n")
    for number, text in enumerate((t for s in results for t in s.telegram), 1):
        out.write(f"  {number}. {text}\n")
    failed = [(s.title, c) for s in results for c in s.checks if not c.ok]
    total = sum(len(s.checks) for s in results)
    out.write(f"\n{sb.ssh.describe()}\n")
    if failed or not results or not all(s.checks for s in results):
        out.write(f"\nFAILED: {len(failed)} of {total} checks failed:\n")
        for title, c in failed:
            out.write(f"  - {title}: {c.name}" + (f" ({c.detail})" if c.detail else "") + "\n")
        out.flush()
        return 1
    out.write(f"\nall {total} checks hold ({took:.0f} s in all)\n")
    out.flush()
    return 0


def _keep_instructions(out: TextIO, sb: Sandbox) -> None:
    pids = sb.pids()
    config = sb.config_path
    python = sys.executable
    out.write(
        f"\nThe sandbox keeps running (--keep) in {sb.root}:\n"
        f"  config:  {config}\n"
        f"  ocf --config {config} status\n"
        f"  ocf --config {config} check -v\n"
        f"  ocf --config {config} syncback --dry-run\n"
        f"  (or {python} -m openclaw_failover instead of ocf)\n"
        f"  write a memory on the primary:  curl -s -X POST -H 'Content-Type: application/json'"
        f' -d \'{{"text": "hello", "category": "notes"}}\' {sb.primary.url}memory\n'
        f"  crash the primary's gateway:    {python} -m openclaw_failover.sandbox unit stop"
        f" {sb.primary.gateway.dir}\n"
        f"  stop the sandbox:  {python} -m openclaw_failover.sandbox stop {sb.root}\n"
        f"  (its processes: {', '.join(f'{n} {p}' for n, p in pids.items())}; listed in"
        f" {sb.root / 'pids'})\n"
    )
    out.flush()


__all__ = ["SCENARIOS", "one_line", "run_demo"]

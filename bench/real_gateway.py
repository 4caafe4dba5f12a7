"""Benchmark: the real OpenClaw gateway's start, memory and stop, as ocf's fallback runs it.

One instance at a time, in a throwaway HOME on a free loopback port: started detached
(own session, own log), timed until ``/healthz`` and ``/readyz`` answer 200, its
resident memory summed over its process group (the gateway and its workers) while
ready, then stopped with SIGTERM to the group and timed until every process ended.
Prints each run and the medians next to the baseline measured when issue 13 was filed.

    python bench/real_gateway.py [--runs 3]   (needs: python -m openclaw_failover.sandbox.realgw install)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openclaw_failover.sandbox import realgw  # noqa: E402
from tests.harness.sshd import free_port  # noqa: E402
from tests.real.conftest import group_pids, http_status, rss_mb  # noqa: E402

BASELINE = {"health": 8.0, "ready": 10.0, "rss": 1000.0, "stop": 2.0}  # issue 13's figures


def one_run(inst: realgw.Install, tmp: Path) -> dict[str, float]:
    port = free_port()
    home = tmp / f"home-{port}"
    realgw.write_home(home, port, "bench-token")
    log = open(tmp / f"gateway-{port}.log", "ab")  # noqa: SIM115
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(inst.bin), "gateway", "run"],
        env={**os.environ, "HOME": str(home)},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        found: dict[str, float] = {}
        while "ready" not in found:
            if proc.poll() is not None:
                raise SystemExit(f"gateway exited with {proc.returncode}; see {log.name}")
            now = time.monotonic() - t0
            if now > 180:
                raise SystemExit("gateway not ready after 180 s")
            if "health" not in found and http_status(port, "/healthz") == 200:
                found["health"] = now
            if "health" in found and http_status(port, "/readyz") == 200:
                found["ready"] = time.monotonic() - t0
            time.sleep(0.2)
        samples = []
        for _ in range(5):
            samples.append(rss_mb(proc.pid))
            time.sleep(0.5)
        found["rss"] = max(samples)
        t1 = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        while proc.poll() is None or group_pids(proc.pid):
            if time.monotonic() - t1 > 30:
                raise SystemExit("gateway ignored SIGTERM for 30 s")
            time.sleep(0.05)
        found["stop"] = time.monotonic() - t1
        return found
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    inst = realgw.find()
    if inst is None:
        print(realgw.MISSING, file=sys.stderr)
        return 1
    load = os.getloadavg()[0]
    print(f"openclaw {inst.version()}, node {inst.node}, load average {load:.1f}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="ocf-bench-real-") as tmp:
        for i in range(args.runs):
            r = one_run(inst, Path(tmp))
            runs.append(r)
            print(
                f"run {i + 1}: /healthz {r['health']:.1f} s, /readyz {r['ready']:.1f} s, "
                f"RSS with workers {r['rss']:.0f} MB, stop (SIGTERM, whole group) {r['stop']:.1f} s"
            )
    print("| | median | baseline (issue 13) |\n|---|---|---|")
    for key, label, unit in (
        ("health", "/healthz answers", "s"),
        ("ready", "/readyz answers", "s"),
        ("rss", "RSS with workers", "MB"),
        ("stop", "stop after SIGTERM", "s"),
    ):
        med = statistics.median(r[key] for r in runs)
        print(f"| {label} | {med:.1f} {unit} | {BASELINE[key]:g} {unit} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

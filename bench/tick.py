"""Benchmark: a healthy `ocf check` over SSH against the original's bash probe.

Starts a real sshd on 127.0.0.1 (throwaway keys) and a stand-in gateway, then
times, alternating, N runs of

  ocf:      ocf --config C check                       (a whole healthy tick, new process)
  original: bash -c 'ssh -i KEY -p PORT user@127.0.0.1 curl -sf URL'   (same key and host)

and prints the median and p90 of both, the ratio (target <= 1.0), and the peak
memory (max RSS) of the ocf process (target < 45 MB).

    python bench/tick.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.sshd import FakeGateway, SSHServer  # noqa: E402

TARGET_RATIO = 1.0
TARGET_RSS_MB = 45.0


def timed(argv: list[str]) -> tuple[float, float, int]:
    """(wall seconds, max RSS in MB, exit code) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {err.strip()}")
    return wall, usage.ru_maxrss / 1024, proc.returncode


def write_config(tmp: Path, srv: SSHServer, gateway: FakeGateway) -> Path:
    cfg = tmp / "config.yaml"
    cfg.write_text(
        f"""primary:
  host: 127.0.0.1
  ssh: {{user: {srv.user}, port: {srv.port}, key_file: {srv.client_key},
        known_hosts: {srv.known_hosts}}}
  gateway: {{health_url: "{gateway.url}"}}
standby:
  gateway: {{start_command: "true", stop_command: "true", health_url: "http://127.0.0.1:9/"}}
state_dir: {tmp}/state
"""
    )
    return cfg


def summary(name: str, walls: list[float]) -> str:
    walls = sorted(walls)
    p90 = walls[max(0, int(len(walls) * 0.9) - 1)]
    return f"{name:<10} median {statistics.median(walls) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocf-bench-") as t:
        tmp = Path(t)
        with SSHServer(tmp / "sshd") as srv, FakeGateway() as gateway:
            cfg = write_config(tmp, srv, gateway)
            ocf = [sys.executable, "-m", "openclaw_failover", "--config", str(cfg), "check"]
            ssh = shlex.join(
                [
                    "ssh",
                    "-i",
                    str(srv.client_key),
                    "-p",
                    str(srv.port),
                    "-o",
                    f"UserKnownHostsFile={srv.known_hosts}",
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    "BatchMode=yes",
                    f"{srv.user}@127.0.0.1",
                    "curl",
                    "-sf",
                    gateway.url,
                ]
            )
            original = ["bash", "-c", ssh]
            for argv in (ocf, original):  # warm up caches, and check both work
                timed(argv)
            ocf_walls, ocf_rss, orig_walls = [], [], []
            for _ in range(args.runs):
                wall, rss, _ = timed(ocf)
                ocf_walls.append(wall)
                ocf_rss.append(rss)
                orig_walls.append(timed(original)[0])
    ratio = statistics.median(ocf_walls) / statistics.median(orig_walls)
    print(f"healthy tick over SSH to 127.0.0.1, {args.runs} runs each, alternating")
    print(summary("ocf check", ocf_walls))
    print(summary("original", orig_walls) + "   (bash: ssh host curl -sf URL)")
    print(f"ratio      {ratio:.2f}x   (target <= {TARGET_RATIO:.1f}x)")
    print(f"ocf peak memory (max RSS) {max(ocf_rss):.1f} MB   (target < {TARGET_RSS_MB:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

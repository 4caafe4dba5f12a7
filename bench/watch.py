"""Benchmark: what `ocf watch` costs on a healthy standby, next to cron and the timer.

Starts a real sshd on 127.0.0.1 (throwaway keys) and a stand-in gateway, then

  watch: runs `ocf watch` (a check every 2 s over one SSH connection) for --seconds
         after a warm-up and reads its CPU time and RSS from /proc;
  tick:  runs --runs healthy `ocf check` processes (a new process and SSH handshake
         each) and takes their CPU time and peak RSS from wait4();

and prints CPU seconds per hour of watching and percent of one core for: watch
(every 2 s), the systemd timer (a tick every 30 s) and cron (a tick every 120 s),
with RSS.  Targets for watch: < 1% of one core, < 60 MB RSS.

With --takeover (root, iproute2: the network lab of tests/harness/netns.py) it also
measures, with the default timeouts, the time from a power loss (the primary's link
goes dark) to this standby serving: for one `ocf check` (add the wait for the next
cron / timer run) and for `ocf watch`.

    python bench/watch.py [--seconds 120] [--runs 10] [--takeover]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.netns import Lab, lab_problem  # noqa: E402
from tests.harness.sshd import FakeGateway, SSHServer  # noqa: E402

TARGET_CPU_PERCENT = 1.0
TARGET_RSS_MB = 60.0
TICKS = os.sysconf("SC_CLK_TCK")
OCF = [sys.executable, "-m", "openclaw_failover"]


def write_config(
    tmp: Path, host: str, port: int, srv: SSHServer, url: str, extra: str = ""
) -> Path:
    cfg = tmp / "config.yaml"
    cfg.write_text(
        f"""primary:
  host: {host}
  ssh: {{user: {srv.user}, port: {port}, key_file: {srv.client_key},
        known_hosts: {srv.known_hosts}}}
  gateway: {{health_url: "{url}"}}
standby:
  gateway: {{start_command: "true", stop_command: "true", health_url: "http://127.0.0.1:9/"}}
state_dir: {tmp}/state
{extra}"""
    )
    return cfg


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure_watch(cfg: Path, seconds: float) -> tuple[float, float, float]:
    """(CPU seconds per hour, RSS MB at the end, peak RSS MB) of `ocf watch`."""
    proc = subprocess.Popen([*OCF, "--config", str(cfg), "watch"], stderr=subprocess.PIPE)
    try:
        time.sleep(6)  # warm-up: imports, first connection
        if proc.poll() is not None:
            raise SystemExit(
                f"ocf watch exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        rss, peak = rss_mb(proc.pid), rss_mb(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return (cpu1 - cpu0) / (t1 - t0) * 3600, rss, peak


def measure_tick(cfg: Path, runs: int) -> tuple[float, float]:
    """(median CPU seconds per `ocf check`, max peak RSS MB)."""
    cpus, peaks = [], []
    for _ in range(runs):
        proc = subprocess.Popen([*OCF, "--config", str(cfg), "check"], stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(
                f"ocf check failed: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        cpus.append(usage.ru_utime + usage.ru_stime)
        peaks.append(usage.ru_maxrss / 1024)
    return statistics.median(cpus), max(peaks)


def costs(seconds: float, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ocf-bench-") as t:
        tmp = Path(t)
        with SSHServer(tmp / "sshd") as srv, FakeGateway() as gateway:
            cfg = write_config(tmp, "127.0.0.1", srv.port, srv, gateway.url)
            per_tick, tick_peak = measure_tick(cfg, runs)
            watch_cpu, watch_rss, watch_peak = measure_watch(cfg, seconds)
    print(f"healthy standby, {seconds:g} s of `ocf watch`, {runs} `ocf check` runs")
    print(f"{'':<26}{'CPU s/hour':>11}{'% of a core':>13}{'RSS MB':>9}")
    rows = [
        ("ocf watch (every 2 s)", watch_cpu, f"{watch_rss:.1f} (peak {watch_peak:.1f})"),
        ("systemd timer (30 s)", per_tick * 120, f"{tick_peak:.1f} peak, per tick"),
        ("cron (120 s)", per_tick * 30, f"{tick_peak:.1f} peak, per tick"),
    ]
    for name, cpu, rss in rows:
        print(f"{name:<26}{cpu:>11.1f}{cpu / 36:>12.2f}%  {rss}")
    ok = watch_cpu / 36 < TARGET_CPU_PERCENT and watch_peak < TARGET_RSS_MB
    print(
        f"targets for watch: < {TARGET_CPU_PERCENT:g}% of a core, < {TARGET_RSS_MB:g} MB: "
        + ("met" if ok else "NOT met")
    )


def takeover() -> None:
    problem = lab_problem()
    if problem:
        raise SystemExit(f"--takeover: {problem}")
    with tempfile.TemporaryDirectory(prefix="ocf-bench-") as t:
        tmp = Path(t)
        for mode in ("check", "watch"):
            with Lab(tmp / mode / "lab") as lab:
                assert lab.sshd is not None
                standby = tmp / mode / "standby-up"
                url = "http://127.0.0.1:18789/"
                cfg = write_config(tmp / mode, lab.ssh_host, lab.ssh_port, lab.sshd, url)
                # the local start command leaves a mark: its mtime is the takeover
                text = cfg.read_text().replace(
                    'start_command: "true"', f'start_command: "touch {standby}"'
                )
                cfg.write_text(text)
                print(
                    f"{mode}: {takeover_time(cfg, lab, standby, mode):.1f} s from power loss to takeover"
                )


def takeover_time(cfg: Path, lab: Lab, marker: Path, mode: str) -> float:
    argv = [*OCF, "--config", str(cfg), mode]
    if mode == "watch":
        proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        time.sleep(6)
    lab.primary_link(False)
    fault, start = time.time(), time.monotonic()
    if mode == "check":
        subprocess.run(argv, capture_output=True, timeout=200)
    else:
        while not marker.exists() and time.monotonic() - start < 60:
            time.sleep(0.05)
        proc.kill()  # it is waiting for the stand-in local gateway, which never answers
        proc.wait(timeout=30)
    if not marker.exists():
        raise SystemExit(f"{mode}: no takeover")
    return marker.stat().st_mtime - fault


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--takeover", action="store_true")
    parser.add_argument("--no-costs", action="store_true", help="only --takeover")
    args = parser.parse_args()
    if not args.no_costs:
        costs(args.seconds, args.runs)
    if args.takeover:
        takeover()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

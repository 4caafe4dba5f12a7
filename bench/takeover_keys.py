"""Benchmark: what recording the standby's keys adds to a takeover.

The takeover's database step (disable_subscription) disables the subscription,
notes the split baseline and streams the standby's keys, as 64-bit hashes, to
state_dir/split-keys/ so its deletes can travel at give-back.  For each size N
(memories: a resource, a memory item and a link each, plus N/20 categories) it
prints the step's time, the manifest's bytes and the process's peak RSS, next
to the baseline: the same step without the key manifest (disable + baseline).

    python bench/takeover_keys.py [--sizes 10000,100000] [--dim 64]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openclaw_failover.config.secrets import Masker  # noqa: E402
from openclaw_failover.syncback.db import splitkeys  # noqa: E402
from openclaw_failover.syncback.run import disable_subscription  # noqa: E402
from tests.harness.pg import bulk_memories, make_memu_pair  # noqa: E402
from tests.integration.test_syncback import cfg_for  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(n: int, dim: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ocf-bench-takeover-") as tmp:
        pair = make_memu_pair(Path(tmp), "18", "18", None)
        try:
            with pair.primary.connect() as p:
                bulk_memories(p, n, dim=dim)
            pair.wait_caught_up(timeout=600)
            cfg = cfg_for(pair)
            cfg.state_dir.mkdir(parents=True, exist_ok=True)
            with pair.standby.connect(autocommit=True) as s:  # baseline: without the manifest
                start = time.perf_counter()
                s.execute("ALTER SUBSCRIPTION memu_sub DISABLE")
                s.execute("SELECT txid_current()")
                plain = time.perf_counter() - start
                s.execute("ALTER SUBSCRIPTION memu_sub ENABLE")
            pair.wait_caught_up(timeout=600)
            start = time.perf_counter()
            step = disable_subscription(cfg, Masker())
            took = time.perf_counter() - start
            size = sum(f.stat().st_size for f in (cfg.state_dir / splitkeys.DIR).iterdir())
            print(
                f"{n:>9,} memories  takeover db step {took:6.3f} s (without keys {plain:6.3f} s)"
                f"  manifest {size / 1e6:7.2f} MB  peak RSS {peak_rss_mb():6.1f} MB   [{step}]"
            )
        finally:
            pair.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--dim", type=int, default=64)
    args = ap.parse_args()
    for n in (int(x) for x in args.sizes.split(",")):
        one(n, args.dim)
    return 0


if __name__ == "__main__":
    sys.exit(main())

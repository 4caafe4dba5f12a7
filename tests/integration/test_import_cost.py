"""The healthy tick pays only for what it uses: heavy or rarely needed modules are
imported where they are used (bench/tick.py measures the time; this keeps the set)."""

from __future__ import annotations

import json
import subprocess
import sys

NOT_ON_A_HEALTHY_TICK = [
    "openclaw_failover.core.events",  # only when something is logged
    "openclaw_failover.syncback.run",
    "openclaw_failover.engine.coord",  # only when coordination: is configured
    "psycopg",
    "telegram",
    "requests",
]


def test_importing_the_cli_and_the_tick_leaves_the_rest_unloaded() -> None:
    code = (
        "import json, sys, openclaw_failover.cli, openclaw_failover.engine.tick; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not loaded & set(NOT_ON_A_HEALTHY_TICK), sorted(loaded & set(NOT_ON_A_HEALTHY_TICK))

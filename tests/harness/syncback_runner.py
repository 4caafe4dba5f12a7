"""Run one sync-back in a process of its own, so a test can SIGKILL it at a fault point.

    python -m tests.harness.syncback_runner SPEC.json

``SPEC.json``: ``{"primary_dsn", "standby_dsn", "subscription", "state_dir",
"mode"}`` with ``mode`` one of ``serving`` (merge only, the standby still
serves), ``final`` (merge, then the standby made equal and re-subscribed) and
``repair`` (no takeover baseline: ``split=False``); optional
``"discard_standby_only": true``.  The Config is built like
``tests/integration/test_syncback.py``'s ``cfg_for``.  Prints ``report.to_json()`` as one
JSON line; exit status 0 when the report is ok, 1 when not, 2 on a bad spec.
``OCF_FAULT_POINT=<name>`` in the environment makes the sync-back kill itself
at that point (openclaw_failover.local.faults).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from openclaw_failover.config.loader import Config, DatabaseConfig

MODES = {
    "serving": {"serving": True},
    "final": {"serving": False},
    "repair": {"serving": False, "split": False},
}


def build_config(spec: dict[str, Any]) -> Config:
    from tests.unit.test_decide import make_cfg

    base = make_cfg()
    db = DatabaseConfig(
        spec["primary_dsn"],
        spec["standby_dsn"],
        subscription=spec.get("subscription", "memu_sub"),
        connect_timeout=5,
    )
    return Config(**{**base.__dict__, "database": db, "state_dir": Path(spec["state_dir"])})


def kwargs_for(spec: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``sync_back`` for this spec (KeyError: a bad mode)."""
    kwargs: dict[str, Any] = dict(MODES[spec["mode"]])
    if spec.get("discard_standby_only"):
        kwargs["discard_standby_only"] = True
    return kwargs


def main(argv: list[str]) -> int:
    from openclaw_failover.config.secrets import Masker
    from openclaw_failover.syncback.run import sync_back

    if len(argv) != 1:
        print("usage: python -m tests.harness.syncback_runner SPEC.json", file=sys.stderr)
        return 2
    try:
        spec = json.loads(Path(argv[0]).read_text())
        kwargs = kwargs_for(spec)
    except (OSError, ValueError, KeyError) as exc:
        print(f"bad spec {argv[0]}: {exc}", file=sys.stderr)
        return 2
    report = sync_back(build_config(spec), mask=Masker(), **kwargs)
    print(json.dumps(report.to_json(), default=str))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

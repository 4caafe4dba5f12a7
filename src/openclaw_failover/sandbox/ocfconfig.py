"""The ``ocf`` configuration the sandbox writes: a normal config file, pointing at the sandbox.

Every part is real: the primary is reached over SSH (with the throwaway key
and known_hosts), the standby's gateway is started and stopped by commands
(``python -m openclaw_failover.sandbox unit start|stop DIR``, which behave like
``systemctl --user start|stop``), the primary's gateway is fenced and restarted
by the same commands run over SSH, notices go to the fake Bot API, and
sync-back uses both databases and (with OpenSSH) rsync.  Only the clock is
compressed: timeouts of a few seconds and a retry after one.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from openclaw_failover.sandbox.telegram import DEFAULT_TOKEN

CHAT_ID = 4242
#: check: timings of the compressed clock.
REAL_START_TIMEOUT = 150  # seconds: the real gateway's start on a loaded machine, with margin
CHECK = {"retries": 1, "retry_delay": 1, "probe_timeout": 2, "deadline": 20, "fall": 1, "rise": 1}


@dataclass(frozen=True)
class Endpoints:
    """Where everything is: what :func:`build` needs."""

    root: Path
    ssh_user: str
    ssh_port: int
    client_key: Path
    known_hosts: Path
    primary_gateway: Path  # unit directories
    standby_gateway: Path
    primary_port: int
    standby_port: int
    primary_dsn: str
    standby_dsn: str
    telegram_port: int
    files: tuple[Path, Path] | None  # (standby folder, primary folder), None: no file sync
    real: bool = False  # the real OpenClaw gateway: /healthz, and time for its start


def unit_command(verb: str, unit: Path, *, remote: bool = False) -> list[str]:
    """``python -m openclaw_failover.sandbox unit VERB DIR`` (as a list of arguments).

    Run over SSH (``remote``), the command does not inherit our environment:
    a ``PYTHONPATH`` we rely on is passed along through ``env``."""
    argv = [sys.executable, "-m", "openclaw_failover.sandbox", "unit", verb, str(unit)]
    path = os.environ.get("PYTHONPATH")
    return ["/usr/bin/env", f"PYTHONPATH={path}", *argv] if remote and path else argv


def build(e: Endpoints) -> dict[str, Any]:
    """The config document."""
    doc: dict[str, Any] = {
        "primary": {
            "name": "primary",
            "host": "127.0.0.1",
            "ssh": {
                "user": e.ssh_user,
                "port": e.ssh_port,
                "key_file": str(e.client_key),
                "known_hosts": str(e.known_hosts),
                "connect_timeout": 2,
                "command_timeout": 10,
            },
            "gateway": {
                "health_url": f"http://127.0.0.1:{e.primary_port}/",
                "stop_command": unit_command("stop", e.primary_gateway, remote=True),
                "start_command": unit_command("start", e.primary_gateway, remote=True),
            },
        },
        "standby": {
            "name": "standby",
            "gateway": {
                "health_url": f"http://127.0.0.1:{e.standby_port}/",
                "start_command": unit_command("start", e.standby_gateway),
                "stop_command": unit_command("stop", e.standby_gateway),
                "start_timeout": 10,
                "stop_timeout": 10,
                "command_timeout": 10,
            },
        },
        "check": dict(CHECK),
        "telegram": {
            "token": DEFAULT_TOKEN,
            "chat_id": CHAT_ID,
            "timeout": 5,
            "base_url": f"http://127.0.0.1:{e.telegram_port}/bot",
        },
        "state_dir": str(e.root / "ocf" / "state"),
        "database": {
            "primary_dsn": e.primary_dsn,
            "standby_dsn": e.standby_dsn,
            "subscription": "memu_sub",
            "connect_timeout": 5,
        },
    }
    if e.real:  # answers /healthz after 8-45 s; stopped (SIGTERM) in about 2 s
        doc["primary"]["gateway"]["health_url"] += "healthz"
        doc["standby"]["gateway"].update(
            health_url=doc["standby"]["gateway"]["health_url"] + "healthz",
            start_timeout=REAL_START_TIMEOUT,
            stop_timeout=30,
            command_timeout=30,
        )
        doc["check"].update(deadline=REAL_START_TIMEOUT + 60, probe_timeout=5)
    if e.files is not None:
        local, remote = e.files
        doc["files"] = [{"path": f"{local}/", "remote_path": f"{remote}/"}]
    return doc


HEADER = """\
# ocf configuration of the sandbox in {root}
# (written by openclaw_failover.sandbox; a normal config: try `ocf --config {path} status`)
"""


def write(e: Endpoints, path: Path) -> Path:
    """Write the config to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = HEADER.format(root=e.root, path=path) + yaml.safe_dump(build(e), sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path

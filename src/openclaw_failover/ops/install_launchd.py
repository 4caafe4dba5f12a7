"""`ocf install launchd [--dry-run]`: a macOS LaunchAgent running `ocf watch` on the primary.

With ``coordination.mode: primary`` the primary runs ocf too (it holds the leader key
while its gateway answers, and fences itself when it cannot refresh it).  On a Mac that
is a LaunchAgent, ``~/Library/LaunchAgents/ai.openclaw.failover.plist``:
``/bin/sh -c`` exports the env file beside the config (``${VAR}`` values: the bot
token, the etcd password), then execs ``ocf --config C watch``; ``RunAtLoad``,
``KeepAlive`` (launchd restarts a watch that exited), ``ThrottleInterval`` 10 s, its
output appended to ``state_dir/launchd.log``.  Written with ``plistlib``; then
``launchctl bootout`` (an older copy) and ``launchctl bootstrap gui/<uid>`` when
``launchctl`` exists (macOS), else the commands are printed.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

from openclaw_failover.ops.install_files import Run, Say, Target, write_file
from openclaw_failover.ops.installguard import COMMAND_TIMEOUT, InstallError

LABEL = "ai.openclaw.failover"


def plist_path(home: Path) -> Path:
    return home / "Library" / "LaunchAgents" / f"{LABEL}.plist"


def launch_agent(target: Target, *, interval: float = 2.0) -> str:
    """The LaunchAgent's XML: ocf watch every ``interval`` seconds, env file exported."""
    env = shlex.quote(str(target.env_file))
    watch = shlex.join(
        [*target.command, "--config", str(target.config), "watch", "--interval", f"{interval:g}"]
    )
    script = f"umask 077; set -a; if [ -r {env} ]; then . {env}; fi; set +a; exec {watch}"
    log = str(target.state_dir / "launchd.log")
    agent = {
        "Label": LABEL,
        "ProgramArguments": ["/bin/sh", "-c", script],
        "RunAtLoad": True,
        "KeepAlive": True,
        "ThrottleInterval": 10,
        "ProcessType": "Interactive",  # never throttled by App Nap: it guards the gateway
        "StandardOutPath": log,
        "StandardErrorPath": log,
        "EnvironmentVariables": {"PATH": "/usr/local/bin:/opt/homebrew/bin:/usr/bin:/bin"},
        "WorkingDirectory": str(target.home),
    }
    return plistlib.dumps(agent, sort_keys=False).decode()


def install_launchd(
    target: Target, *, dry_run: bool, say: Say, run: Run, uid: int | None = None
) -> None:
    path = plist_path(target.home)
    write_file(path, launch_agent(target), mode=0o644, dry_run=dry_run, say=say)
    domain = f"gui/{os.getuid() if uid is None else uid}"
    commands = [
        ["launchctl", "bootout", f"{domain}/{LABEL}"],
        ["launchctl", "bootstrap", domain, str(path)],
    ]
    if dry_run or shutil.which("launchctl") is None:
        what = "would run" if dry_run else "launchctl not found (not macOS?): run on the Mac"
        for argv in commands:
            say(f"{what}: {shlex.join(argv)}")
        return
    run(commands[0], timeout=COMMAND_TIMEOUT)  # not loaded yet: fails, that is fine
    _checked(run, commands[1], say)


def _checked(run: Run, argv: Sequence[str], say: Say) -> None:
    result = run(list(argv), timeout=COMMAND_TIMEOUT)
    if result.returncode != 0:
        why = (result.stderr or result.error or "").strip()
        raise InstallError(f"{shlex.join(argv)} failed: {why}")
    say(f"ran: {shlex.join(argv)}")

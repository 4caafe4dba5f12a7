"""The one wrapper through which every local external command runs.

It applies a timeout, never uses a shell, logs the command at debug level with
secrets masked, and returns a typed :class:`CommandResult`.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.model import CommandResult

log = logging.getLogger(__name__)


def user_session_env(env: Mapping[str, str], uid: int | None = None) -> dict[str, str]:
    """Fill in what `systemctl --user` needs under cron's bare environment.

    Cron starts jobs without XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS, so
    `systemctl --user` cannot find the user manager (the original's pitfall).
    """
    out = dict(env)
    uid = os.getuid() if uid is None else uid
    runtime = out.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    out.setdefault("XDG_RUNTIME_DIR", runtime)
    out.setdefault("DBUS_SESSION_BUS_ADDRESS", f"unix:path={runtime}/bus")
    return out


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    mask: Masker | None = None,
    env: Mapping[str, str] | None = None,
    dry_run: bool = False,
    cwd: Path | None = None,
) -> CommandResult:
    """Run ``argv`` (no shell) with a timeout and return what happened."""
    mask = mask or Masker()
    args = tuple(str(a) for a in argv)
    shown = mask(shlex.join(args))
    if dry_run:
        log.debug("dry run, not running: %s", shown)
        return CommandResult(args, None, dry_run=True)
    log.debug("running (timeout %.0fs): %s", timeout, shown)
    start = time.monotonic()
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        result = CommandResult(
            args,
            None,
            stdout=mask(_text(exc.stdout)),
            stderr=mask(_text(exc.stderr)),
            duration=time.monotonic() - start,
            timed_out=True,
        )
    except FileNotFoundError:
        result = CommandResult(args, None, error=f"command not found: {mask(args[0])}")
    except OSError as exc:
        result = CommandResult(args, None, error=mask(f"cannot run: {exc.strerror or exc}"))
    else:
        result = CommandResult(
            args,
            proc.returncode,
            stdout=mask(proc.stdout),
            stderr=mask(proc.stderr),
            duration=time.monotonic() - start,
        )
    log.debug("%s", mask(result.summary()))
    return result


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data

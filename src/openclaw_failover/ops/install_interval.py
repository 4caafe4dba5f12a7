"""`ocf install systemd`: offer to set ``check.interval`` to the timer's 30 s.

The timer runs every ``check.interval`` seconds (the period `ocf status` and `ocf
doctor` expect).  The example config says 120 (cron's 2 minutes), so a timer
installed from it runs every 2 minutes, not every 30 s as the README's systemd
schedule does.  Before installing, ``ocf install systemd`` offers to change the
config: asked on a terminal, done without asking with ``--set-interval``, only
warned about otherwise.  ``check.deadline`` comes down to 20 as well when the
check (plus ``monitoring.ping_timeout``) would not fit below the 30 s timer's
``TimeoutStartSec``.

The edit touches only those values (or adds ``interval:`` at the top of the
``check:`` block, or a ``check:`` block at the end): every other line, comment
and the order stay.  The result must read back as the same document with only
those keys changed and must pass the config's validation; it replaces the file
atomically (temp file, fsync, rename).  A ``check:`` written in flow style is not
edited: the one line says what to set by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from openclaw_failover.config import safeyaml
from openclaw_failover.local import safefs
from openclaw_failover.ops.install_files import TIMER_INTERVAL, Say, timeout_start
from openclaw_failover.ops.installguard import InstallError

TIMER_DEADLINE = 20  # the README's `check: {interval: 30, deadline: 20}`
Ask = Callable[[str], bool]


def proposal(doc: Mapping[str, Any]) -> dict[str, int]:
    """The ``check:`` values to change for a 30 s timer ({} when it runs every 30 s already)."""
    check = doc.get("check") if isinstance(doc.get("check"), dict) else {}
    assert isinstance(check, dict)
    if _number(check.get("interval")) == TIMER_INTERVAL:
        return {}
    changes = {"interval": int(TIMER_INTERVAL)}
    monitoring = doc.get("monitoring") if isinstance(doc.get("monitoring"), dict) else {}
    assert isinstance(monitoring, dict)
    ping = (_number(monitoring.get("ping_timeout")) or 5.0) if monitoring.get("ping_url") else 0
    deadline = _number(check.get("deadline")) or 100.0
    if deadline + ping >= timeout_start(TIMER_INTERVAL):
        changes["deadline"] = TIMER_DEADLINE
    return changes


def offer(
    path: Path,
    env: Mapping[str, str],
    *,
    set_interval: bool,
    ask: Ask | None,
    dry_run: bool,
    say: Say,
) -> int:
    """Change ``check:`` in ``path`` for a 30 s timer when ``set_interval`` or ``ask`` says
    so; ``ask`` is None off a terminal (then `ocf install` only warns).  0, or 2 with one
    line when the file cannot be changed safely (then it is left as it was)."""
    try:
        _offer(path.resolve(), env, set_interval=set_interval, ask=ask, dry_run=dry_run, say=say)
    except InstallError as exc:
        say(f"ocf install systemd: {exc}")
        return exc.status
    return 0


def _offer(
    path: Path,
    env: Mapping[str, str],
    *,
    set_interval: bool,
    ask: Ask | None,
    dry_run: bool,
    say: Say,
) -> None:
    try:
        text = path.read_bytes().decode("utf-8")
        changes = proposal(safeyaml.load(text.encode()))
    except (OSError, ValueError) as exc:
        raise InstallError(f"cannot read {path}: {exc}", 2) from None
    if not changes:
        return
    what = ", ".join(f"check.{k}: {v}" for k, v in changes.items())
    if not set_interval:
        question = f"The timer runs every check.interval: set {what} in {path} (every 30 s)?"
        if ask is None or not ask(question):
            return  # `ocf install` warns, naming --set-interval
    if dry_run:
        say(f"dry run: would set {what} in {path} (what follows reads the file as it is)")
        return
    new = rewrite(text, changes)
    _validate(text, new, changes, path, env)
    try:
        safefs.write_atomic(path, new.encode("utf-8"))
        safefs.fsync_dir(path.parent)
    except OSError as exc:
        raise InstallError(f"cannot write {path}: {exc}", 1) from None
    say(f"set {what} in {path} (the rest of the file unchanged)")


def rewrite(text: str, changes: Mapping[str, int]) -> str:
    """``text`` with ``check.KEY: VALUE`` for each change, comments and order kept."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if re.match(r"check:\s*(#.*)?$", ln)), None)
    if start is None:
        if any(re.match(r"check\s*:", ln) for ln in lines):
            raise _flow_style(changes)
        tail = "" if not text or text.endswith("\n") else "\n"
        body = "".join(f"  {k}: {v}\n" for k, v in changes.items())
        return f"{text}{tail}check:\n{body}"
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][:1] in (" ", "#")):
        end += 1
    block = lines[start + 1 : end]
    indents = [len(ln) - len(ln.lstrip(" ")) for ln in block if ln.strip() and ln[:1] == " "]
    indent = " " * (min(indents) if indents else 2)
    for key, value in changes.items():
        pattern = re.compile(rf"^{indent}{key}:([ \t]*)([^#\n]*?)([ \t]*(#.*)?)$", re.S)
        for i, ln in enumerate(block):
            match = pattern.match(ln.rstrip("\n"))
            if match:
                gap = match.group(1) or " "
                block[i] = f"{indent}{key}:{gap}{value}{match.group(3)}\n"
                break
        else:
            block.insert(0, f"{indent}{key}: {value}\n")
    return "".join([*lines[: start + 1], *block, *lines[end:]])


def _validate(
    old: str, new: str, changes: Mapping[str, int], path: Path, env: Mapping[str, str]
) -> None:
    from openclaw_failover.config.loader import ConfigError, parse_config

    before, after = safeyaml.load(old.encode()), safeyaml.load(new.encode())
    expected = dict(before)
    expected["check"] = {**(before.get("check") or {}), **changes}
    if after != expected:
        raise _flow_style(changes)  # the text edit did not do what it should: hands off
    try:
        parse_config(after, str(path), env)
    except ConfigError as exc:
        raise InstallError(f"check.interval not changed: {exc.problems[0]}", 2) from None


def _flow_style(changes: Mapping[str, int]) -> InstallError:
    wanted = ", ".join(f"{k}: {v}" for k, v in changes.items())
    return InstallError(
        f"cannot edit the check: section of this config safely: set `check: {{{wanted}}}`"
        " by hand, or run without --set-interval",
        2,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)

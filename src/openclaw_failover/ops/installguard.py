"""What keeps `sudo ocf install cron` from handing root to the config's owner.

A control character in any value written into a cron line or a unit is refused (a
newline would add a root cron line); the config file and its folder must belong to
root or to the target user and be writable by nobody else; the state folder is created
by ``mkdir`` running as the target user (its uid and gid, no other groups, umask 077),
so root never creates or chowns anything a symlink could redirect.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
COMMAND_TIMEOUT = 30.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class InstallError(Exception):
    """Cannot install; ``status`` is the exit code (1 failed, 2 usage)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def make_state_dir(
    path: Path, user: str, *, dry_run: bool, say: Callable[[str], None], as_target: bool
) -> None:
    """Create the state folder with ``user``'s rights, then check it is theirs.

    As root (``as_target``) a child process running as the target user (its uid, gid,
    no supplementary groups) creates it: root never creates or chowns anything there."""
    if not _lexists(path):
        if dry_run:
            say(f"would create {path} (mode 0700, as {user})")
            return
        try:
            if as_target and _uid_of(user) != os.geteuid():
                _mkdir_as(user, path)
            else:
                path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except (OSError, subprocess.SubprocessError) as exc:
            raise InstallError(
                f"cannot create {path} as {user}: "
                f"{getattr(exc, 'strerror', None) or exc}; create it yourself: "
                f"install -d -m 0700 -o {user} {shlex.quote(str(path))}"
            ) from None
        say(f"created {path}")
    _check_state_dir(path, _uid_of(user) if as_target else os.geteuid(), user)


def _lexists(path: Path) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def _uid_of(user: str) -> int:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise InstallError(f"no such user: {user}", 2) from None


def _mkdir_as(user: str, path: Path) -> None:
    """``mkdir -p -m 0700`` run as ``user`` (its uid and gid, no other groups, umask 077)."""
    entry = pwd.getpwnam(user)
    mkdir = shutil.which("mkdir", path=SYSTEM_PATH) or "/bin/mkdir"
    proc = subprocess.run(  # a fixed program, no shell, the target's rights
        [mkdir, "-p", "-m", "0700", "--", str(path)],
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=[],
        umask=0o077,
        cwd="/",
        env={"PATH": SYSTEM_PATH, "LC_ALL": "C"},
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if proc.returncode:
        lines = proc.stderr.strip().splitlines()
        raise OSError(lines[-1] if lines else f"mkdir exited {proc.returncode}")


def _check_state_dir(path: Path, uid: int, user: str) -> None:
    """The state folder must be a real directory of ``user``, writable by nobody else."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise InstallError(f"cannot check {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise InstallError(f"state_dir {path} is not a directory (a symlink or a file)", 2)
    if st.st_uid != uid:
        raise InstallError(
            f"state_dir {path} is owned by uid {st.st_uid}, not by {user}: "
            f"`ocf check` as {user} would refuse it",
            2,
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InstallError(f"state_dir {path} is writable by group or others: chmod 700 it", 2)


def check_config_owner(config: Path, user: str | None) -> None:
    """As root: the config and its folder belong to root or the target user, and are
    writable by nobody else (whoever can edit them chooses what root writes)."""
    for path in (config, config.parent):
        try:
            st = os.stat(path)
        except OSError:
            continue  # a missing config is reported by install.load
        if st.st_uid != 0 and user is not None and st.st_uid != _uid_of(user):
            raise InstallError(f"{path} is owned by uid {st.st_uid}, not root or {user}", 2)
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise InstallError(
                f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}): "
                f"refusing to install a root cron job from it; chmod go-w it",
                2,
            )


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_control_chars(values: list[tuple[str, str]]) -> None:
    """Refuse a control character (a newline adds a cron line) in any written value."""
    for what, value in values:
        found = _CONTROL.search(value)
        if found:
            raise InstallError(
                f"{what} contains a control character (U+{ord(found.group()):04X}): "
                f"refusing to write it into a schedule",
                2,
            )

"""`sudo ocf install cron`: nothing the config's owner controls reaches root.

A newline in a config value must not add a root cron line; a config file or folder
that others can write is refused; the state folder is created with the target user's
rights (root never creates or chowns it), and a symlink or someone else's folder is
refused.  Root is needed to hand files to another user (CI runs as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openclaw_failover.ops import install_files
from tests.harness.installing import PRIMARY, run_install, ssh_files

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (sudo ocf install cron)")


@pytest.fixture
def world() -> Iterator[Path]:
    """A folder every user can enter (pytest's tmp_path is 0700 root)."""
    root = Path(tempfile.mkdtemp(prefix="ocf-install-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _setup(world: Path, state_dir: str, owner: str = "root") -> tuple[Path, Path]:
    conf_dir = world / "conf"
    conf_dir.mkdir(mode=0o755)
    config = conf_dir / "config.yaml"
    ssh_files(world)  # the tests' home
    config.write_text(f"{PRIMARY}state_dir: {state_dir}\ncheck: {{interval: 120, deadline: 20}}\n")
    entry = pwd.getpwnam(owner)
    os.chown(config, entry.pw_uid, entry.pw_gid)
    cron_d = world / "cron.d" / "openclaw-failover"
    cron_d.parent.mkdir()
    return config, cron_d


def _install(config: Path, cron_d: Path, **kw: Any) -> tuple[int, str]:
    lines: list[str] = []
    args: dict[str, Any] = {
        "config_path": config,
        "dry_run": False,
        "env": {},
        "say": lines.append,
        "is_root": True,
        "command": ["/usr/local/bin/ocf"],
        "cron_d": cron_d,
    }
    args.update(kw)
    code = run_install("cron", **args)
    return code, "\n".join(lines)


@needs_root
@pytest.mark.parametrize(
    "value",
    [
        '"/tmp/x\\n* * * * * root touch /tmp/pwned\\n#"',
        '"/tmp/x\\r* * * * * root touch /tmp/pwned"',
        '"/tmp/x\\u2028y"',
        '"/tmp/\\x00"',
    ],
)
def test_a_control_character_never_reaches_a_cron_line(world: Path, value: str) -> None:
    config, cron_d = _setup(world, value)
    code, out = _install(config, cron_d, user="root", home=world)
    assert code == 2, out
    assert "control character" in out or "not valid YAML" in out, out
    assert not cron_d.exists(), "nothing written"


@needs_root
def test_a_newline_from_the_environment_never_reaches_a_cron_line(world: Path) -> None:
    config, cron_d = _setup(world, "${STATE}/s")
    code, out = _install(config, cron_d, user="root", home=world, env={"STATE": "/x\n* * * *"})
    assert code == 2 and "control character" in out, out
    assert not cron_d.exists()


@needs_root
@pytest.mark.parametrize("which", ["file", "folder"])
@pytest.mark.parametrize("mode", [0o777, 0o775, 0o666])
def test_a_config_others_can_write_is_refused(world: Path, which: str, mode: int) -> None:
    config, cron_d = _setup(world, str(world / "state"))
    target = config if which == "file" else config.parent
    if which == "folder" and not mode & 0o100:
        mode |= 0o111
    target.chmod(mode)
    code, out = _install(config, cron_d, user="root", home=world)
    assert code == 2 and "writable by group or others" in out, out
    assert not cron_d.exists() and not (world / "state").exists()


@needs_root
def test_a_config_owned_by_a_third_user_is_refused(world: Path) -> None:
    config, cron_d = _setup(world, str(world / "state"), owner="daemon")
    code, out = _install(config, cron_d, user="nobody", home=world)
    assert code == 2 and "not root or nobody" in out, out
    assert not cron_d.exists()


@needs_root
def test_the_state_folder_is_created_by_the_target_user(world: Path) -> None:
    """Created by a child running as nobody: owned by nobody, 0700, never chowned."""
    shared = world / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # nobody may create in it (like /tmp, without the sticky bit)
    config, cron_d = _setup(world, str(shared / "a" / "state"), owner="nobody")
    code, out = _install(config, cron_d, home=world)
    assert code == 0, out
    st = os.lstat(shared / "a" / "state")
    nobody = pwd.getpwnam("nobody")
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert os.lstat(shared / "a").st_uid == nobody.pw_uid, "parents too: root made nothing"
    assert " nobody umask 077; flock -n " in cron_d.read_text()


@needs_root
def test_a_state_folder_the_user_cannot_create_is_not_made_by_root(world: Path) -> None:
    """Root could create it and chown it: that would hand a root-made folder to the user."""
    locked = world / "locked"
    locked.mkdir(mode=0o755)  # root's: nobody cannot create in it
    config, cron_d = _setup(world, str(locked / "state"), owner="nobody")
    code, out = _install(config, cron_d, home=world)
    assert code == 1 and "cannot create" in out and "install -d -m 0700 -o nobody" in out, out
    assert not (locked / "state").exists()
    assert not cron_d.exists()


@needs_root
def test_a_state_folder_that_is_a_symlink_is_refused(world: Path) -> None:
    """A symlink planted where the state folder goes: never followed, never chowned."""
    precious = world / "precious"
    precious.mkdir(mode=0o700)
    link = world / "state"
    link.symlink_to(precious)
    config, cron_d = _setup(world, str(link), owner="nobody")
    code, out = _install(config, cron_d, home=world)
    assert code == 2 and "not a directory" in out, out
    assert os.lstat(precious).st_uid == 0, "root's folder stays root's"
    assert not cron_d.exists()


@needs_root
def test_a_state_folder_owned_by_someone_else_is_refused(world: Path) -> None:
    state = world / "state"
    state.mkdir(mode=0o700)  # root's
    config, cron_d = _setup(world, str(state), owner="nobody")
    code, out = _install(config, cron_d, home=world)
    assert code == 2 and "not by nobody" in out, out
    assert os.lstat(state).st_uid == 0
    assert not cron_d.exists()


def test_cron_line_of_a_clean_target_has_no_extra_line() -> None:
    target = install_files.Target(
        user="pi",
        home=Path("/home/pi"),
        command=("/home/pi/.local/bin/ocf",),
        config=Path("/home/pi/.config/openclaw-failover/config.yaml"),
        env_file=Path("/home/pi/.config/openclaw-failover/env"),
        state_dir=Path("/home/pi/state 100%"),
        interval=120,
        interval_set=True,
        deadline=100,
        ping_timeout=None,
    )
    assert len(install_files.cron_line(target, with_user=True).splitlines()) == 1

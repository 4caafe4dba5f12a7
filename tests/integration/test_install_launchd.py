"""`ocf install launchd`: the primary's LaunchAgent (its contents; `plutil -lint` where
macOS has it; the LaunchAgent actually runs the command it names)."""

from __future__ import annotations

import plistlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

from openclaw_failover.core.model import CommandResult
from openclaw_failover.ops.install_launchd import LABEL, plist_path
from tests.harness.installing import PRIMARY, run_install, ssh_files


def _home(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "home dir"  # a space: quoting is exercised
    config = home / ".config" / "openclaw-failover" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(PRIMARY + "state_dir: ~/.local/state/ocf-test\n")
    ssh_files(home)
    (config.parent / "env").write_text("export OCF_TELEGRAM_TOKEN='1:abc'\n")
    return home, config


def test_install_launchd_writes_a_launch_agent_running_ocf_watch(tmp_path: Path) -> None:
    home, config = _home(tmp_path)
    calls: list[list[str]] = []

    def run(argv: list[str], **kw: Any) -> CommandResult:
        calls.append(list(argv))
        return CommandResult(tuple(argv), 0)

    lines: list[str] = []
    exe = home / "venv" / "bin" / "ocf"
    kw: dict[str, Any] = {"env": {"HOME": str(home)}, "say": lines.append, "is_root": False}
    code = run_install(
        "launchd", config_path=config, dry_run=False, home=home, command=[str(exe)], run=run, **kw
    )
    assert code == 0, lines
    path = plist_path(home)
    assert path == home / "Library" / "LaunchAgents" / "ai.openclaw.failover.plist"
    agent = plistlib.loads(path.read_bytes())
    assert agent["Label"] == LABEL and agent["RunAtLoad"] is True and agent["KeepAlive"] is True
    argv = agent["ProgramArguments"]
    assert argv[:2] == ["/bin/sh", "-c"]
    script = argv[2]
    assert f"'{config.parent / 'env'}'" in script  # the env file, quoted (a space in it)
    assert script.endswith(f"exec '{exe}' --config '{config}' watch --interval 2")
    log = str(home / ".local" / "state" / "ocf-test" / "launchd.log")
    assert agent["StandardOutPath"] == agent["StandardErrorPath"] == log
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    if shutil.which("plutil"):  # macOS
        lint = subprocess.run(["plutil", "-lint", str(path)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        assert [c[:2] for c in calls] == [["launchctl", "bootout"], ["launchctl", "bootstrap"]]
    else:
        assert calls == [] and any("launchctl not found" in line for line in lines)


def test_launch_agent_script_runs_ocf_with_the_env_file(tmp_path: Path) -> None:
    """What launchd would run: /bin/sh -c SCRIPT exports the env file and execs ocf."""
    home, config = _home(tmp_path)
    fake = tmp_path / "bin" / "ocf"
    fake.parent.mkdir()
    out = tmp_path / "seen"
    fake.write_text(f'#!/bin/sh\necho "$OCF_TELEGRAM_TOKEN $*" > "{out}"\n')
    fake.chmod(0o755)
    lines: list[str] = []
    code = run_install(
        "launchd", config_path=config, dry_run=False, env={}, say=lines.append,
        is_root=False, home=home, command=[str(fake)],
    )  # fmt: skip
    assert code == 0, lines
    argv = plistlib.loads(plist_path(home).read_bytes())["ProgramArguments"]
    subprocess.run(argv, check=True, timeout=10)
    assert out.read_text().strip() == f"1:abc --config {config} watch --interval 2"


def test_install_launchd_dry_run_and_root(tmp_path: Path) -> None:
    home, config = _home(tmp_path)
    lines: list[str] = []
    kw: dict[str, Any] = {"env": {}, "say": lines.append, "home": home, "config_path": config}
    assert run_install("launchd", dry_run=True, is_root=False, **kw) == 0
    assert not plist_path(home).exists()
    assert any("would run: launchctl bootstrap gui/" in line for line in lines)
    assert "<key>KeepAlive</key>" in "\n".join(lines)
    assert run_install("launchd", dry_run=True, is_root=True, **kw) == 2
    assert "LaunchAgent" in lines[-1] and "not as root" in lines[-1]

"""`ocf watch`: one SSH connection kept open, reconnects, and its systemd service.

Faults on a real network are in tests/integration/test_netfaults.py; here the real sshd on
127.0.0.1 (tests/harness/sshd.py) and the installer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.model import CommandResult, ProbeStatus
from openclaw_failover.engine.watch import Transport, watch_config
from tests.harness.fixtures import fake_gateway, make_config, sshd  # noqa: F401
from tests.harness.installing import PRIMARY, run_install, ssh_files
from tests.harness.sshd import FakeGateway, SSHServer

S = ProbeStatus
NO_MASK = Masker(())


@pytest.mark.integration
def test_one_connection_for_many_probes_and_a_reconnect_after_sshd_restarts(
    make_config: Callable[..., Config],  # noqa: F811
    sshd: SSHServer,  # noqa: F811
    fake_gateway: FakeGateway,  # noqa: F811
) -> None:
    cfg = make_config()
    transport = Transport()
    try:
        results = [transport.probe(cfg, NO_MASK) for _ in range(3)]
        assert [r.status for r in results] == [S.HEALTHY] * 3
        assert transport.connects == 1, "one SSH handshake for three probes"
        sshd.restart()  # kills the session: the transport dies, sshd is back at once
        result = transport.probe(cfg, NO_MASK)
        assert result.status is S.HEALTHY, result  # not "unreachable": it was reconnected
        assert "the open SSH connection" in result.detail and transport.connects == 2
        fake_gateway.stop()
        assert transport.probe(cfg, NO_MASK).status is S.GATEWAY_DOWN
        sshd.stop()
        result = transport.probe(cfg, NO_MASK)
        assert result.status is S.REFUSED and "reconnecting" in result.detail, result
    finally:
        transport.close()


def test_watch_config_waits_at_most_one_interval_between_retries(
    make_config: Callable[..., Config],  # noqa: F811
) -> None:
    cfg = make_config(1, "http://127.0.0.1:1/", check={"retry_delay": 10})
    assert cfg.check.retry_delay == 10
    assert watch_config(cfg, 2.0).check.retry_delay == 2.0
    assert watch_config(cfg, 30.0).check.retry_delay == 10


def _home(tmp_path: Path) -> tuple[Path, Path, Path]:
    home = tmp_path / "home dir"  # a space: EnvironmentFile= must not quote it
    config = home / ".config" / "openclaw-failover" / "config.yaml"
    config.parent.mkdir(parents=True)
    ssh_files(home)
    config.write_text(PRIMARY + "state_dir: ~/.local/state/ocf-test\ncheck:\n  deadline: 20\n")
    (config.parent / "env").write_text("# secrets\n")
    exe = home / "venv" / "bin" / "ocf"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return home, config, exe


def test_install_systemd_watch_writes_a_hardened_service_and_enables_it(tmp_path: Path) -> None:
    home, config, exe = _home(tmp_path)
    calls: list[list[str]] = []

    def run(argv: list[str], *, timeout: float, env: dict[str, str]) -> CommandResult:
        calls.append(list(argv))
        return CommandResult(tuple(argv), 0)

    lines: list[str] = []
    kw: dict[str, Any] = {"env": {"HOME": str(home)}, "say": lines.append, "is_root": False}
    kw.update(home=home, command=[str(exe)], run=run, config_path=config, dry_run=False)
    assert run_install("systemd", watch=True, **kw) == 0, lines
    unit = home / ".config" / "systemd" / "user" / "openclaw-failover-watch.service"
    text = unit.read_text()
    assert f'ExecStart="{exe}" --config "{config}" watch' in text
    assert f"\nEnvironmentFile=-{config.parent}/env\n" in text
    for line in ("Restart=always", "NoNewPrivileges=yes", "ProtectSystem=strict"):
        assert f"\n{line}\n" in text
    assert "\nTimeoutStopSec=30s\n" in text  # deadline 20 + 10: a takeover is not cut short
    assert calls == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "openclaw-failover-watch.service"],
    ]
    assert not (unit.parent / "openclaw-failover.timer").exists()
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime), "PATH": os.environ["PATH"]}
    out = subprocess.run(
        [analyze, "verify", "--user", str(unit)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and (out.stdout + out.stderr).strip() == "", out.stderr


def test_install_cron_watch_is_a_usage_error(tmp_path: Path) -> None:
    home, config, exe = _home(tmp_path)
    lines: list[str] = []
    code = run_install(
        "cron",
        config_path=config,
        dry_run=True,
        env={"HOME": str(home)},
        say=lines.append,
        is_root=False,
        home=home,
        command=[str(exe)],
        watch=True,
    )
    assert code == 2 and "ocf install systemd --watch" in lines[-1]


def test_a_quiet_round_is_saved_only_when_asked(tmp_path: Path) -> None:
    """`ocf watch` saves a round that changed nothing once per check.interval only."""
    from dataclasses import replace

    from openclaw_failover.core.model import ProbeResult
    from openclaw_failover.engine.store import StateStore
    from openclaw_failover.engine.tick import Tick
    from tests.unit.test_decide import make_cfg

    status = [S.HEALTHY]
    clock = iter(range(1_800_000_000, 1_800_000_100))

    def probe(cfg: Config, mask: Masker) -> ProbeResult:
        return ProbeResult(status[0], 0.1, "x")

    cfg = replace(make_cfg(fall=3), state_dir=tmp_path)

    def run(save_quiet: bool) -> float | None:
        tick = Tick(cfg, {}, probe=probe, clock=lambda: float(next(clock)), sleep=lambda _: None)
        tick.save_quiet = save_quiet
        tick.run()
        state = StateStore(tmp_path).load()[0]
        assert state is not None
        return state.last_tick_at

    first = run(True)
    assert run(False) == first, "a quiet round was saved"
    status[0] = S.UNREACHABLE  # the probe class changed, a failed check counted: saved
    assert run(False) != first
    assert run(True) != first

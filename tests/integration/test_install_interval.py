"""`ocf install systemd` offers to set check.interval to the timer's 30 s (asked on a
terminal, `--set-interval` without asking), editing only those values of the config."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from openclaw_failover.cli.app import Environment, main
from openclaw_failover.ops.install_interval import offer, proposal, rewrite
from openclaw_failover.ops.installguard import InstallError
from tests.harness.installing import run_install

EXAMPLE = (Path(__file__).resolve().parents[2] / "config.example.yaml").read_text()
ENV = {"OCF_TELEGRAM_TOKEN": "123:abc", "MEMU_PASSWORD": "pw"}


def _changed_lines(old: str, new: str) -> list[tuple[str, str]]:
    a, b = old.splitlines(), new.splitlines()
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def test_the_example_config_gets_interval_30_and_deadline_20_and_nothing_else() -> None:
    changes = proposal(yaml.safe_load(EXAMPLE))
    assert changes == {"interval": 30, "deadline": 20}  # 100 s would not fit TimeoutStartSec 28
    new = rewrite(EXAMPLE, changes)
    changed = _changed_lines(EXAMPLE, new)
    assert [x.split("#")[0].strip() for x, _ in changed] == ["deadline: 100", "interval: 120"]
    assert [y.split("#")[0].strip() for _, y in changed] == ["deadline: 20", "interval: 30"]
    assert all("#" in y for _, y in changed)  # their comments stay
    doc, before = yaml.safe_load(new), yaml.safe_load(EXAMPLE)
    before["check"].update(interval=30, deadline=20)
    assert doc == before
    assert proposal(doc) == {}  # nothing more to offer


def test_rewrite_adds_a_missing_interval_or_check_section_and_refuses_flow_style() -> None:
    text = "state_dir: /s\ncheck:\n    fall: 2   # two\n    deadline: 20\nstate: x\n"
    new = rewrite(text, {"interval": 30})
    assert (
        new
        == "state_dir: /s\ncheck:\n    interval: 30\n    fall: 2   # two\n    deadline: 20\nstate: x\n"
    )
    assert rewrite("state_dir: /s", {"interval": 30}) == "state_dir: /s\ncheck:\n  interval: 30\n"
    assert proposal({"check": {"deadline": 10}}) == {"interval": 30}
    with pytest.raises(InstallError, match="by hand"):
        rewrite("check: {interval: 120}\n", {"interval": 30})


def _config(tmp_path: Path, text: str = EXAMPLE) -> Path:
    """The config in ``tmp_path``, its SSH key and known_hosts there too (they must exist)."""
    ssh = tmp_path / "ssh"
    ssh.mkdir(exist_ok=True)
    for name in ("id_ed25519", "known_hosts"):
        (ssh / name).touch(mode=0o600)
    path = tmp_path / "config.yaml"
    path.write_text(text.replace("~/.ssh/", f"{ssh}/"))
    path.chmod(0o640)
    return path


def test_yes_sets_it_then_the_timer_runs_every_30s_without_a_warning(tmp_path: Path) -> None:
    path = _config(tmp_path)
    lines: list[str] = []
    asked: list[str] = []

    def ask(question: str) -> bool:
        asked.append(question)
        return True

    code = offer(path, ENV, set_interval=False, ask=ask, dry_run=False, say=lines.append)
    assert code == 0, lines
    assert "set check.interval: 30, check.deadline: 20 in" in lines[-1]
    assert "check.interval" in asked[0] and str(path) in asked[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # replaced atomically (temp file, 0600)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "ssh"]  # no temp file
    out = _install_dry_run(path, tmp_path)
    assert "OnUnitActiveSec=30s" in out and "TimeoutStartSec=28" in out
    assert "warning: check.interval" not in out


def test_no_or_no_terminal_leaves_the_file_and_the_warning_names_the_flag(tmp_path: Path) -> None:
    path = _config(tmp_path)
    before = path.read_bytes()
    for ask in (lambda _q: False, None):
        assert offer(path, ENV, set_interval=False, ask=ask, dry_run=False, say=print) == 0
        assert path.read_bytes() == before
    out = _install_dry_run(path, tmp_path)
    assert "OnUnitActiveSec=120s" in out
    assert "`ocf install systemd --set-interval` does both" in out


def test_set_interval_with_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = _config(tmp_path)
    before = path.read_text()
    lines: list[str] = []
    code = offer(path, ENV, set_interval=True, ask=None, dry_run=True, say=lines.append)
    assert code == 0 and path.read_text() == before
    assert lines == [
        f"dry run: would set check.interval: 30, check.deadline: 20 in {path}"
        " (what follows reads the file as it is)"
    ]


def test_a_layout_it_cannot_edit_safely_is_left_unchanged_with_one_line(tmp_path: Path) -> None:
    text = EXAMPLE.replace("  interval: 120 ", "  interval:\n    120 ", 1)
    assert yaml.safe_load(text)["check"]["interval"] == 120
    for bad in (text, "check: {interval: 120, deadline: 20}\n"):
        path = _config(tmp_path, bad)
        lines: list[str] = []
        code = offer(path, ENV, set_interval=True, ask=None, dry_run=False, say=lines.append)
        assert code == 2 and path.read_text() == bad.replace("~/.ssh/", f"{tmp_path}/ssh/")
        assert len(lines) == 1 and "by hand" in lines[0], lines


def test_cli_set_interval_is_only_for_the_timer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path)
    env = Environment(env={**os.environ, **ENV})
    for kind in (["cron"], ["systemd", "--watch"]):
        argv = ["install", *kind, "--set-interval"]
        assert main(["--config", str(path), *argv], env) == 2
        assert "--set-interval is for the timer" in capsys.readouterr().err
    assert "interval: 120" in path.read_text()


def test_cli_set_interval_dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # the timer is a user's: not as root
    path = _config(tmp_path)
    env = Environment(env={**os.environ, **ENV, "HOME": str(tmp_path)})
    code = main(["--config", str(path), "install", "systemd", "--set-interval", "-n"], env)
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"dry run: would set check.interval: 30, check.deadline: 20 in {path}" in out
    assert "interval: 120" in path.read_text()


def _install_dry_run(path: Path, home: Path) -> str:
    lines: list[str] = []
    code = run_install(
        "systemd",
        config_path=path,
        env=ENV,
        say=lines.append,
        is_root=False,
        home=home,
        dry_run=True,
    )
    assert code == 0, lines
    return "\n".join(lines)


def _on_a_terminal(path: Path, answer: str) -> tuple[int, str]:
    """`ocf --config PATH install systemd -n` with a pty as its terminal, ``answer`` typed."""
    import pty
    import select
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "os.geteuid = lambda: 1000  # a user's timer: the offer is skipped as root\n"
        "from openclaw_failover.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = [sys.executable, "-c", code, "--config", str(path), "install", "systemd", "-n"]
    primary, secondary = pty.openpty()
    env = {**os.environ, **ENV, "HOME": str(path.parent)}
    proc = subprocess.Popen(argv, stdin=secondary, stdout=secondary, stderr=secondary, env=env)
    os.close(secondary)
    out, sent = b"", False
    while True:
        ready, _, _ = select.select([primary], [], [], 30)
        assert ready, f"no output within 30 s: {out!r}"
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
        if not sent and b"[Y/n]" in out:
            os.write(primary, answer.encode() + b"\n")
            sent = True
    os.close(primary)
    return proc.wait(timeout=30), out.decode(errors="replace")


@pytest.mark.parametrize("answer", ["y", "n"])
def test_cli_asks_on_a_terminal(tmp_path: Path, answer: str) -> None:
    path = _config(tmp_path)
    before = path.read_text()
    code, out = _on_a_terminal(path, answer)
    assert code == 0, out
    assert f"set check.interval: 30, check.deadline: 20 in {path} (every 30 s)? [Y/n]" in out
    would_set = f"dry run: would set check.interval: 30, check.deadline: 20 in {path}"
    assert (would_set in out) == (answer == "y"), out
    assert "OnUnitActiveSec=120s" in out and "--set-interval` does both" in out  # as it is
    assert path.read_text() == before  # a dry run (-n) writes nothing either way

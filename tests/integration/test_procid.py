"""procid: a pid file with the process start time, read back through /proc and, as on
macOS, through `ps -o lstart=` (forced here by hiding /proc)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from openclaw_failover.local import procid


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("proc_fs", [True, False], ids=["proc", "ps"])
def test_start_time_survives_and_tells_processes_apart(
    child: subprocess.Popen[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    proc_fs: bool,
) -> None:
    if not proc_fs:
        monkeypatch.setattr(procid, "PROC", tmp_path / "no-proc")
    rec = procid.write(tmp_path / "gateway.pid", child.pid)
    assert rec.start is not None
    assert procid.read(tmp_path / "gateway.pid") == rec
    assert procid.same_process(rec) is True
    other = procid.PidRecord(child.pid, rec.start + "0")  # the pid, reused later
    assert procid.same_process(other) is False
    assert procid.same_process(procid.PidRecord(child.pid, None)) is None  # old pid file
    assert procid.group_alive(child.pid)
    procid.signal_group(child.pid, signal.SIGTERM)
    child.wait(timeout=10)
    assert not procid.group_alive(child.pid)
    assert procid.start_time(child.pid) is None


@pytest.mark.parametrize("text", ["", "abc\n", "1\n", "-5\n", "12 34\n"])
def test_unreadable_pid_files(tmp_path: Path, text: str) -> None:
    (tmp_path / "p").write_text(text)
    assert procid.read(tmp_path / "p") is None


def test_old_pid_file_without_start_time(tmp_path: Path) -> None:
    (tmp_path / "p").write_text("4242\n")
    assert procid.read(tmp_path / "p") == procid.PidRecord(4242, None)


def test_signal_group_only_signals_the_pid_when_it_leads_no_group() -> None:
    """A process in our own group (no session of its own): only it gets the signal."""
    proc = subprocess.Popen(["sleep", "60"])  # same process group as this test
    try:
        procid.signal_group(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()

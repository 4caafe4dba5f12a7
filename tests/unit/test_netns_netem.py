"""The network lab's choice between tc netem and the TCP forwarder, with `tc` mocked.

The development machine's kernel has no ``sch_netem``, so tests/integration/test_netfaults.py
only ever runs the forwarder there; these tests run both branches of
:func:`netns.netem_problem` and :meth:`netns.Lab.lossy` everywhere (no root, no
namespace: ``tc``'s answer is mocked) and check that the fallback says why.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.harness import netns

UNKNOWN = "Error: Specified qdisc kind is unknown.\n"


class FakeRun:
    """Records every command; answers ``tc qdisc add ... netem`` with ``rc``/``stderr``."""

    def __init__(self, rc: int = 0, stderr: str = "") -> None:
        self.rc, self.stderr = rc, stderr
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        if "add" in argv and "netem" in argv:
            if self.rc and kw.get("check"):
                raise subprocess.CalledProcessError(self.rc, argv, stderr=self.stderr)
            return subprocess.CompletedProcess(argv, self.rc, "", self.stderr)
        return subprocess.CompletedProcess(argv, 0, "", "")


@pytest.fixture
def tc_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.shutil, "which", lambda name: f"/usr/sbin/{name}")


def test_no_tc_binary_is_the_stated_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    run = FakeRun()
    monkeypatch.setattr(netns.shutil, "which", lambda name: None)
    monkeypatch.setattr(netns.subprocess, "run", run)
    assert netns.netem_problem("ns", "veth") == "tc not installed (apt-get install iproute2)"
    assert run.calls == []


@pytest.mark.usefixtures("tc_here")
def test_a_kernel_without_netem_is_the_stated_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    run = FakeRun(rc=2, stderr=UNKNOWN)
    monkeypatch.setattr(netns.subprocess, "run", run)
    problem = netns.netem_problem("ocfp1", "ocfpp1")
    assert problem == (
        "tc netem refused on this kernel (no sch_netem?): Error: Specified qdisc kind is unknown."
    )
    assert run.calls == [
        ["ip", "netns", "exec", "ocfp1", "tc", "qdisc", "add", "dev", "ocfpp1", "root", "netem"]
    ]  # nothing to take off again


@pytest.mark.usefixtures("tc_here")
def test_netem_present_is_tried_then_taken_off(monkeypatch: pytest.MonkeyPatch) -> None:
    run = FakeRun(rc=0)
    monkeypatch.setattr(netns.subprocess, "run", run)
    assert netns.netem_problem("ocfp1", "ocfpp1") == ""
    delete = ["ip", "netns", "exec", "ocfp1", "tc", "qdisc", "del", "dev", "ocfpp1", "root"]
    assert run.calls[-1] == delete


class _SSHD:
    extra_names: tuple[str, ...] = ()
    known_hosts_written = 0

    def write_known_hosts(self, path: Path | None = None) -> Path:
        self.known_hosts_written += 1
        return Path("known_hosts")


def _lab() -> Any:
    """A Lab object without namespaces: only what ``lossy`` reads."""
    lab = netns.Lab.__new__(netns.Lab)
    lab.ns_p, lab.veth_pp, lab.primary_ip = "ocfp1", "ocfpp1", "127.0.0.1"
    lab.netem, lab.forwarder, lab.sshd = False, None, _SSHD()
    return lab


@pytest.mark.usefixtures("tc_here")
def test_lossy_uses_netem_where_the_kernel_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    run = FakeRun(rc=0)
    monkeypatch.setattr(netns.subprocess, "run", run)
    lab = _lab()
    assert lab.lossy(loss=0.3, delay=0.3) == "netem"
    assert lab.netem and lab.forwarder is None
    assert run.calls[-1] == [
        *("ip", "netns", "exec", "ocfp1", "tc", "qdisc", "add", "dev", "ocfpp1", "root"),
        *("netem", "delay", "300ms", "loss", "30%"),
    ]


@pytest.mark.usefixtures("tc_here")
def test_lossy_falls_back_to_the_forwarder_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.subprocess, "run", FakeRun(rc=2, stderr=UNKNOWN))
    lab = _lab()
    try:
        how = lab.lossy(loss=0.3, delay=0.3)
        assert how == (
            "forwarder (tc netem refused on this kernel (no sch_netem?): "
            "Error: Specified qdisc kind is unknown.)"
        )
        assert not lab.netem and lab.forwarder is not None
        assert lab.sshd.extra_names == (f"[127.0.0.1]:{lab.forwarder.port}",)
        assert lab.sshd.known_hosts_written == 1
    finally:
        if lab.forwarder is not None:
            lab.forwarder.close()

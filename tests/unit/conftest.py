"""The unit tier: no network, no subprocess, no server.  A unit test that tries is a bug
in the test (it belongs in tests/integration), so the attempt fails loudly."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest


class NoIOInUnitTests(AssertionError):
    pass


@pytest.fixture(autouse=True)
def _no_network_or_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NoIOInUnitTests("a unit test may not open a connection or run a command")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)

"""pytest fixtures around :mod:`tests.harness.sshd`.

Register once, in ``tests/conftest.py``::

    pytest_plugins = ["tests.harness.fixtures"]

Fixtures (all function-scoped, all torn down after the test):

``sshd``
    A started :class:`SSHServer` (forwarding allowed).  Skips without OpenSSH.
``make_sshd``
    Factory: ``make_sshd(allow_tcp_forwarding=False, set_env={...})`` returns
    another started :class:`SSHServer`; keyword arguments go to its constructor.
``fake_gateway``
    A started :class:`FakeGateway` answering 200; set ``.status`` to change it.
``hang_listener``
    A :class:`HangListener`: accepts TCP and never answers.
``make_config``
    Factory building a real :class:`Config` through ``parse_config`` (so it is
    validated like a user's file): ``make_config()`` points at the ``sshd`` and
    ``fake_gateway`` fixtures; ``make_config(server, gateway, **sections)``
    picks other ones and deep-merges ``sections`` into the document, e.g.
    ``make_config(check={"probe_timeout": 1}, primary={"ssh": {"connect_timeout": 1}})``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from openclaw_failover.config.loader import Config, parse_config
from tests.harness.sshd import (
    LOOPBACK,
    FakeGateway,
    HangListener,
    SSHServer,
    generate_key,
    require_openssh,
)

# Test-friendly defaults: short timeouts, no pause between retries.
TEST_CONNECT_TIMEOUT = 5
TEST_PROBE_TIMEOUT = 3


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``extra`` merged in, recursing into mappings."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def config_dict(
    *,
    port: int,
    user: str,
    key_file: Path,
    known_hosts: Path,
    health_url: str,
    state_dir: Path,
    host: str = LOOPBACK,
) -> dict[str, Any]:
    """The YAML document (as a dict) of a config pointing at local test servers."""
    return {
        "primary": {
            "name": "primary",
            "host": host,
            "ssh": {
                "user": user,
                "port": port,
                "key_file": str(key_file),
                "known_hosts": str(known_hosts),
                "connect_timeout": TEST_CONNECT_TIMEOUT,
                "command_timeout": 10,
            },
            "gateway": {"health_url": health_url},
        },
        "standby": {
            "name": "standby",
            "gateway": {"start_command": ["true"], "stop_command": ["true"]},
        },
        "check": {"probe_timeout": TEST_PROBE_TIMEOUT, "retry_delay": 0},
        "state_dir": str(state_dir),
    }


def build_config(document: Mapping[str, Any], **sections: Any) -> Config:
    """``parse_config`` of ``document`` with ``sections`` deep-merged in (no env expansion)."""
    return parse_config(deep_merge(dict(document), sections), "test", env={})


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SSHServer]:
    """A running OpenSSH server on 127.0.0.1 (skips when OpenSSH is missing)."""
    server = SSHServer(tmp_path / "sshd")
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def make_sshd(tmp_path: Path) -> Iterator[Callable[..., SSHServer]]:
    """Factory for extra running servers: ``make_sshd(allow_tcp_forwarding=False)``."""
    servers: list[SSHServer] = []

    def make(**options: Any) -> SSHServer:
        server = SSHServer(tmp_path / f"sshd-{len(servers) + 1}", **options)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def fake_gateway() -> Iterator[FakeGateway]:
    """An HTTP server on 127.0.0.1 answering 200 (change ``.status`` at will)."""
    gateway = FakeGateway()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def hang_listener() -> Iterator[HangListener]:
    """A TCP port on 127.0.0.1 that accepts and never answers."""
    listener = HangListener()
    try:
        yield listener
    finally:
        listener.stop()


@pytest.fixture
def make_config(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Config]:
    """Factory: ``make_config(server=None, gateway=None, **sections) -> Config``.

    ``server``: an :class:`SSHServer` (default: the ``sshd`` fixture) or a
    :class:`HangListener` / port number (then a throwaway key and an empty
    known_hosts are made).  ``gateway``: a :class:`FakeGateway`, a URL, or
    default the ``fake_gateway`` fixture.  ``sections`` are deep-merged into
    the document before validation.
    """

    def make(
        server: SSHServer | HangListener | int | None = None,
        gateway: FakeGateway | str | None = None,
        **sections: Any,
    ) -> Config:
        if server is None:
            server = request.getfixturevalue("sshd")
        if gateway is None:
            gateway = request.getfixturevalue("fake_gateway")
        url = gateway if isinstance(gateway, str) else gateway.url
        if isinstance(server, SSHServer):
            doc = config_dict(
                port=server.port,
                user=server.user,
                key_file=server.client_key,
                known_hosts=server.known_hosts,
                health_url=url,
                state_dir=tmp_path / "state",
            )
        else:
            port = server if isinstance(server, int) else server.port
            doc = config_dict(
                port=port,
                user="nobody",
                key_file=_throwaway_key(tmp_path),
                known_hosts=_empty_file(tmp_path / "known_hosts.empty"),
                health_url=url,
                state_dir=tmp_path / "state",
            )
        return build_config(doc, **sections)

    return make


def _throwaway_key(tmp_path: Path) -> Path:
    key = tmp_path / "throwaway_key"
    if not key.exists():
        require_openssh()
        generate_key(key)
    return key


def _empty_file(path: Path) -> Path:
    path.touch()
    return path

"""remote.connect / run_remote and probe.probe_primary.

Unit tests feed paramiko's exceptions (and fake clients) to the classifier;
integration tests run a real OpenSSH sshd on 127.0.0.1 (tests/harness) and a
fake gateway behind it, and check what a probe from the standby would see.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paramiko.ssh_exception import (
    AuthenticationException,
    BadAuthenticationType,
    BadHostKeyException,
    ChannelException,
    IncompatiblePeer,
    NoValidConnectionsError,
    PasswordRequiredException,
    SSHException,
)

from openclaw_failover.config.loader import Config, parse_config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.model import CommandResult, ProbeStatus
from openclaw_failover.primary import probe, remote
from openclaw_failover.primary.probe import CURL_MISSING, curl_argv, probe_primary
from openclaw_failover.primary.remote import (
    RemoteError,
    classify_connect_error,
    connect,
    run_remote,
)
from tests.harness.fixtures import config_dict
from tests.harness.sshd import FakeGateway, HangListener, SSHServer, free_port

S = ProbeStatus
SECRET = "tg-T0KEN-s3cr3t-value"
NO_MASK = Masker()

# --------------------------------------------------------------------------- helpers


def write_key(path: Path) -> Path:
    """An unencrypted OpenSSH ed25519 private key, made without ssh-keygen."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    return path


@pytest.fixture
def offline_cfg(tmp_path: Path) -> Config:
    """A config whose files exist but whose primary is never contacted (port 22 form)."""
    known = tmp_path / "known_hosts"
    known.write_text("")
    doc = config_dict(
        port=2222,
        user="ocf",
        key_file=write_key(tmp_path / "id_ed25519"),
        known_hosts=known,
        health_url="http://127.0.0.1:18789/",
        state_dir=tmp_path / "state",
        host="127.0.0.77",
    )
    doc["telegram"] = {"token": SECRET, "chat_id": 42}
    return parse_config(doc, "test", env={})


def some_key(tmp_path: Path, name: str) -> paramiko.PKey:
    return paramiko.Ed25519Key.from_private_key_file(str(write_key(tmp_path / name)))


# --------------------------------------------------------------------------- classification


def _refused() -> BaseException:
    return NoValidConnectionsError(
        {("127.0.0.77", 2222): ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")}
    )


def _no_route() -> BaseException:
    return NoValidConnectionsError(
        {("127.0.0.77", 2222): OSError(errno.EHOSTUNREACH, "No route to host")}
    )


def _banner_error(cause: BaseException) -> Callable[[], BaseException]:
    """paramiko's banner error, chained like Transport._check_banner raises it."""

    def make() -> BaseException:
        exc = SSHException("Error reading SSH protocol banner" + str(cause))
        exc.__context__ = cause  # what `raise ... ` inside `except` records
        return exc

    return make


CLASSIFY_TABLE: list[tuple[str, Callable[[], BaseException], bool | str, ProbeStatus, str]] = [
    ("novalid-refused", _refused, False, S.REFUSED, "connection refused by 127.0.0.77:2222"),
    ("novalid-noroute", _no_route, False, S.UNREACHABLE, "no route to 127.0.0.77:2222"),
    (
        "refused",
        lambda: ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        False,
        S.REFUSED,
        "connection refused",
    ),
    ("timeout", lambda: TimeoutError("timed out"), False, S.UNREACHABLE, "timed out after 5s"),
    (
        "enetunreach",
        lambda: OSError(errno.ENETUNREACH, "Network is unreachable"),
        False,
        S.UNREACHABLE,
        "Network is unreachable",
    ),
    (
        "ehostunreach",
        lambda: OSError(errno.EHOSTUNREACH, "No route to host"),
        False,
        S.UNREACHABLE,
        "No route to host",
    ),
    (
        "reset",
        lambda: ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
        False,
        S.UNREACHABLE,
        "reset",
    ),
    (
        "dns",
        lambda: socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        False,
        S.UNREACHABLE,
        "cannot resolve 127.0.0.77",
    ),
    (
        "banner-timeout",
        lambda: SSHException("Error reading SSH protocol banner"),
        False,
        S.UNREACHABLE,
        "sent no SSH banner within 5s",
    ),
    (
        "banner-eof",
        _banner_error(EOFError()),
        False,
        S.UNREACHABLE,
        "127.0.0.77:2222 closed the connection before sending its SSH banner",
    ),
    (
        "banner-timeout-chained",
        _banner_error(TimeoutError()),
        False,
        S.UNREACHABLE,
        "accepted the TCP connection but sent no SSH banner within 5s",
    ),
    (
        "banner-reset",
        lambda: SSHException(
            "Error reading SSH protocol banner[Errno 104] Connection reset by peer"
        ),
        False,
        S.UNREACHABLE,
        "reset the connection",
    ),
    ("eof", EOFError, False, S.UNREACHABLE, "closed the connection"),
    (
        "handshake-timeout",
        lambda: SSHException("No existing session"),
        False,
        S.UNREACHABLE,
        "accepted the TCP connection but sent no SSH banner within 5s",
    ),
    (
        "kex-timeout-after-banner",
        lambda: SSHException("No existing session"),
        "banner",
        S.SLOW,
        "did not complete within 5s (after the primary answered with its SSH banner)",
    ),
    ("eof-after-banner", EOFError, "banner", S.SLOW, "after the primary answered"),
    (
        "unknown-host",
        lambda: SSHException("Server '[127.0.0.77]:2222' not found in known_hosts"),
        True,
        S.AUTH_FAILED,
        "host key unknown: [127.0.0.77]:2222 is not in",
    ),
    (
        "auth-failed",
        lambda: AuthenticationException("Authentication failed."),
        True,
        S.AUTH_FAILED,
        "key rejected: ocf@127.0.0.77:2222 did not accept",
    ),
    (
        "auth-type",
        lambda: BadAuthenticationType("Bad authentication type", ["password"]),
        True,
        S.AUTH_FAILED,
        "allows only: password",
    ),
    (
        "passphrase",
        lambda: PasswordRequiredException("Private key file is encrypted"),
        True,
        S.AUTH_FAILED,
        "id_ed25519 is protected by a passphrase",
    ),
    (
        "auth-timeout",
        lambda: AuthenticationException("Authentication timeout."),
        True,
        S.SLOW,
        "timed out after 5s (the host key was verified: the primary answered)",
    ),
    (
        "auth-eof",
        lambda: AuthenticationException("Authentication failed: transport shut down or saw EOF"),
        True,
        S.SLOW,
        "closed the connection during login",
    ),
    # paramiko reports a rejected RSA key as the last key class it tried to load
    ("paramiko-key-quirk", lambda: SSHException("Invalid key"), True, S.AUTH_FAILED, "rejected"),
    ("incompatible", lambda: IncompatiblePeer("no kex"), False, S.AUTH_FAILED, "algorithms"),
    ("odd-before-kex", lambda: ValueError("odd"), False, S.UNREACHABLE, "handshake"),
    ("odd-after-kex", lambda: ValueError("odd"), True, S.AUTH_FAILED, "login"),
]


@pytest.mark.parametrize(
    ("make_exc", "after_kex", "status", "words"),
    [row[1:] for row in CLASSIFY_TABLE],
    ids=[row[0] for row in CLASSIFY_TABLE],
)
def test_classification_table(
    offline_cfg: Config,
    make_exc: Callable[[], BaseException],
    after_kex: bool | str,
    status: ProbeStatus,
    words: str,
) -> None:
    """``after_kex`` "banner": the banner came, the key exchange did not finish."""
    err = classify_connect_error(
        make_exc(), offline_cfg, after_kex=after_kex is True, answered=bool(after_kex)
    )
    assert err.status is status
    assert words in err.detail
    assert "\n" not in err.detail


def test_changed_host_key_names_both_fingerprints(offline_cfg: Config, tmp_path: Path) -> None:
    got, expected = some_key(tmp_path, "new"), some_key(tmp_path, "old")
    err = classify_connect_error(
        BadHostKeyException("127.0.0.77", got, expected), offline_cfg, after_kex=True
    )
    assert err.status is S.AUTH_FAILED
    assert "host key CHANGED for [127.0.0.77]:2222" in err.detail
    assert got.fingerprint in err.detail and expected.fingerprint in err.detail


class FakeTransport:
    def __init__(self, after_kex: bool = False) -> None:
        self.initial_kex_done = after_kex
        self.active = True
        self.channel_error: BaseException | None = None

    def is_active(self) -> bool:
        return self.active

    def open_channel(self, *args: Any, **kwargs: Any) -> Any:
        assert self.channel_error is not None, "test did not say what the channel does"
        raise self.channel_error


class FakeClient:
    """Stands in for paramiko.SSHClient; records what connect() asked of it."""

    instances: list[FakeClient] = []
    raises: BaseException | None = None
    after_kex = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closed = False
        self.transport = FakeTransport(self.after_kex)
        FakeClient.instances.append(self)

    def load_host_keys(self, path: str) -> None:
        self.calls.append(("load_host_keys", path))

    def load_system_host_keys(self, *args: Any) -> None:
        self.calls.append(("load_system_host_keys", args))

    def set_missing_host_key_policy(self, policy: Any) -> None:
        self.calls.append(("policy", policy))

    def connect(self, **kwargs: Any) -> None:
        self.calls.append(("connect", kwargs))
        if self.raises is not None:
            raise self.raises

    def get_transport(self) -> FakeTransport:
        return self.transport

    def close(self) -> None:
        self.closed = True


FAKE_SOCKET = object()


@pytest.fixture
def fake_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeClient]]:
    FakeClient.instances = []
    FakeClient.raises = None
    FakeClient.after_kex = False
    monkeypatch.setattr(paramiko, "SSHClient", FakeClient)
    # No real TCP connection from the unit tests.
    monkeypatch.setattr(remote, "_tcp_connect", lambda host, port, timeout: FAKE_SOCKET)
    yield FakeClient


def test_connect_is_strict_about_host_keys_and_keys(
    offline_cfg: Config, fake_client: type[FakeClient]
) -> None:
    client: Any = connect(offline_cfg)
    assert isinstance(client, FakeClient)
    calls = dict(client.calls)
    assert calls["load_host_keys"] == str(offline_cfg.primary.ssh.known_hosts)
    assert "load_system_host_keys" not in calls
    assert isinstance(calls["connect"]["pkey"], paramiko.PKey)  # only the configured key
    assert isinstance(calls["policy"], paramiko.RejectPolicy)
    ssh = offline_cfg.primary.ssh
    assert calls["connect"] == {
        "hostname": "127.0.0.77",
        "port": 2222,
        "username": "ocf",
        "pkey": calls["connect"]["pkey"],
        "sock": FAKE_SOCKET,
        "timeout": ssh.connect_timeout,
        "banner_timeout": ssh.connect_timeout,
        "auth_timeout": ssh.connect_timeout,
        "channel_timeout": ssh.connect_timeout,
        "look_for_keys": False,
        "allow_agent": False,
    }


@pytest.mark.parametrize(
    ("exc", "after_kex", "status"),
    [
        (_refused(), False, S.REFUSED),
        (EOFError(), False, S.UNREACHABLE),
        (SSHException("Invalid key"), True, S.AUTH_FAILED),
        (RuntimeError(f"bug mentioning {SECRET}"), False, S.UNREACHABLE),
    ],
)
def test_connect_never_lets_a_raw_exception_escape(
    offline_cfg: Config,
    fake_client: type[FakeClient],
    exc: BaseException,
    after_kex: bool,
    status: ProbeStatus,
) -> None:
    fake_client.raises = exc
    fake_client.after_kex = after_kex
    with pytest.raises(RemoteError) as info:
        connect(offline_cfg)
    assert info.value.status is status
    assert SECRET not in info.value.detail
    assert fake_client.instances[-1].closed


def test_unreadable_key_file_is_auth_failed_naming_it(
    offline_cfg: Config, fake_client: type[FakeClient]
) -> None:
    offline_cfg.primary.ssh.key_file.unlink()
    with pytest.raises(RemoteError) as info:
        connect(offline_cfg)
    assert info.value.status is S.AUTH_FAILED
    assert str(offline_cfg.primary.ssh.key_file) in info.value.detail
    assert fake_client.instances == []  # never got as far as the network


def test_passphrase_key_is_auth_failed_naming_it(
    offline_cfg: Config, fake_client: type[FakeClient]
) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    offline_cfg.primary.ssh.key_file.write_bytes(pem)
    with pytest.raises(RemoteError) as info:
        connect(offline_cfg)
    assert info.value.status is S.AUTH_FAILED
    assert "passphrase" in info.value.detail
    assert str(offline_cfg.primary.ssh.key_file) in info.value.detail


def test_missing_known_hosts_is_auth_failed(
    offline_cfg: Config, fake_client: type[FakeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: FakeClient, path: str) -> None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)

    monkeypatch.setattr(fake_client, "load_host_keys", boom)
    with pytest.raises(RemoteError) as info:
        connect(offline_cfg)
    assert info.value.status is S.AUTH_FAILED
    assert "known_hosts" in info.value.detail


def test_run_remote_reports_connect_failure_as_error(
    offline_cfg: Config, fake_client: type[FakeClient]
) -> None:
    fake_client.raises = _refused()
    result = run_remote(offline_cfg, ["true"], timeout=5, mask=NO_MASK)
    assert result.returncode is None and not result.ok
    assert "connection refused" in result.error
    assert result.summary() == f"true: {result.error}"


def test_run_remote_dry_run_does_not_connect(
    offline_cfg: Config, fake_client: type[FakeClient]
) -> None:
    result = run_remote(offline_cfg, ["rm", "-rf", "/x"], timeout=5, mask=NO_MASK, dry_run=True)
    assert result.dry_run and result.ok and result.argv == ("rm", "-rf", "/x")
    assert fake_client.instances == []


# --------------------------------------------------------------------------- probe (faked SSH)


@pytest.fixture
def probe_world(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[FakeClient, list[tuple[str, ...]], list[CommandResult]]]:
    """probe.remote.connect returns a FakeClient; run_remote answers from a script."""
    FakeClient.instances = []
    FakeClient.after_kex = True
    client = FakeClient()
    ran: list[tuple[str, ...]] = []
    answers: list[CommandResult] = []

    def fake_run(cfg: Config, argv: Any, **kwargs: Any) -> CommandResult:
        assert kwargs["client"] is client
        ran.append(tuple(argv))
        return answers.pop(0)

    monkeypatch.setattr(remote, "connect", lambda cfg: client)
    monkeypatch.setattr(remote, "run_remote", fake_run)
    yield client, ran, answers


def test_forwarding_prohibited_falls_back_to_curl(
    offline_cfg: Config, probe_world: tuple[FakeClient, list[tuple[str, ...]], list[CommandResult]]
) -> None:
    client, ran, answers = probe_world
    client.transport.channel_error = ChannelException(1, "Administratively prohibited")
    answers.append(CommandResult(("curl",), 0, stdout="404"))
    result = probe_primary(offline_cfg, NO_MASK)
    assert (result.status, result.method, result.http_status) == (S.HEALTHY, "curl", 404)
    assert ran == [tuple(curl_argv("http://127.0.0.1:18789/", 3))]
    assert client.closed


def test_target_port_refused_is_gateway_down(
    offline_cfg: Config, probe_world: tuple[FakeClient, list[tuple[str, ...]], list[CommandResult]]
) -> None:
    client, ran, _ = probe_world
    client.transport.channel_error = ChannelException(2, "Connect failed")
    result = probe_primary(offline_cfg, NO_MASK)
    assert result.status is S.GATEWAY_DOWN
    assert result.detail == "connection refused on 127.0.0.1:18789"
    assert ran == [] and client.closed


def test_probe_never_raises(
    offline_cfg: Config, probe_world: tuple[FakeClient, list[tuple[str, ...]], list[CommandResult]]
) -> None:
    client, _, _ = probe_world
    client.transport.channel_error = RuntimeError(f"surprise {SECRET}")
    result = probe_primary(offline_cfg, Masker(offline_cfg.secrets))
    assert result.status is S.PROBE_ERROR
    assert SECRET not in result.detail and "***" in result.detail
    assert client.closed


def test_probe_passes_connect_failures_through(
    offline_cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(cfg: Config) -> Any:
        raise RemoteError(S.REFUSED, "connection refused by 127.0.0.77:2222")

    monkeypatch.setattr(remote, "connect", refuse)
    result = probe_primary(offline_cfg, NO_MASK)
    assert (result.status, result.detail, result.method) == (
        S.REFUSED,
        "connection refused by 127.0.0.77:2222",
        "",
    )
    assert result.latency >= 0


def test_https_health_url_uses_curl(
    tmp_path: Path,
    offline_cfg: Config,
    probe_world: tuple[FakeClient, list[tuple[str, ...]], list[CommandResult]],
) -> None:
    _, ran, answers = probe_world
    doc = config_dict(
        port=22,
        user="u",
        key_file=offline_cfg.primary.ssh.key_file,
        known_hosts=offline_cfg.primary.ssh.known_hosts,
        health_url="https://127.0.0.1:18789/healthz",
        state_dir=tmp_path,
    )
    answers.append(CommandResult(("curl",), 0, stdout="200"))
    result = probe_primary(parse_config(doc, "t", env={}), NO_MASK)
    assert result.status is S.HEALTHY and result.method == "curl"
    assert "-k" in ran[0] and ran[0][-1] == "https://127.0.0.1:18789/healthz"


def test_curl_command_is_quoted_for_the_remote_shell() -> None:
    assert shlex.join(curl_argv("http://127.0.0.1:18789/", 5)) == (
        "curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:18789/"
    )


CURL_TABLE: list[tuple[CommandResult, ProbeStatus, int | None, str]] = [
    (CommandResult(("curl",), 0, stdout="200"), S.HEALTHY, 200, "HTTP 200 via curl"),
    (CommandResult(("curl",), 0, stdout="404"), S.HEALTHY, 404, "HTTP 404 via curl"),
    (CommandResult(("curl",), 0, stdout="motd\n302"), S.HEALTHY, 302, "HTTP 302"),
    (CommandResult(("curl",), 0, stdout="502"), S.GATEWAY_DOWN, 502, "HTTP 502"),
    (CommandResult(("curl",), 7, stdout="000"), S.GATEWAY_DOWN, None, "connection refused"),
    (CommandResult(("curl",), 28, stdout="000"), S.GATEWAY_SLOW, None, "within 3s"),
    (CommandResult(("curl",), 0, stdout="000"), S.GATEWAY_DOWN, None, "HTTP 000"),
    (CommandResult(("curl",), 18, stdout="200"), S.GATEWAY_DOWN, 200, "curl exit 18"),
    (
        CommandResult(("curl",), 127, stderr="sh: curl: not found"),
        S.PROBE_ERROR,
        None,
        CURL_MISSING,
    ),
    (CommandResult(("curl",), 1, stderr="curl: not found"), S.PROBE_ERROR, None, CURL_MISSING),
    (CommandResult(("curl",), 0, stdout="hello"), S.PROBE_ERROR, None, "no HTTP status"),
    (CommandResult(("curl",), None, timed_out=True), S.GATEWAY_SLOW, None, "timed out"),
]


@pytest.mark.parametrize(("result", "status", "code", "words"), CURL_TABLE)
def test_curl_outcomes(
    result: CommandResult, status: ProbeStatus, code: int | None, words: str
) -> None:
    outcome = probe._interpret_curl(result, "http://127.0.0.1:18789/", 3)
    assert (outcome.status, outcome.http_status) == (status, code)
    assert words in outcome.detail


# --------------------------------------------------------------------------- integration helpers


class ReplyListener:
    """Accepts TCP on 127.0.0.1, sends ``reply`` and closes: a broken gateway."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(self.reply)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.sock.close()
        self.thread.join(timeout=5)


integration = pytest.mark.integration


# --------------------------------------------------------------------------- integration: probe


@integration
@pytest.mark.parametrize(("status", "verdict"), [(200, S.HEALTHY), (404, S.HEALTHY)])
def test_live_gateway_is_healthy(
    make_config: Callable[..., Config],
    fake_gateway: FakeGateway,
    status: int,
    verdict: ProbeStatus,
) -> None:
    fake_gateway.status = status
    result = probe_primary(make_config(), NO_MASK)
    assert result.status is verdict, result
    assert (result.method, result.http_status) == ("direct-tcpip", status)
    assert result.detail == f"HTTP {status} via direct-tcpip"
    assert result.latency > 0
    assert fake_gateway.requests == ["/"]


@integration
def test_gateway_500_is_down(make_config: Callable[..., Config], fake_gateway: FakeGateway) -> None:
    fake_gateway.status = 500
    result = probe_primary(make_config(), NO_MASK)
    assert (result.status, result.http_status) == (S.GATEWAY_DOWN, 500)


@integration
def test_gateway_port_closed_is_down(
    make_config: Callable[..., Config], fake_gateway: FakeGateway
) -> None:
    cfg = make_config()
    fake_gateway.stop()
    result = probe_primary(cfg, NO_MASK)
    assert result.status is S.GATEWAY_DOWN
    assert result.detail == f"connection refused on 127.0.0.1:{fake_gateway.port}"
    assert result.method == "direct-tcpip"


@integration
def test_gateway_that_never_answers_is_slow_not_down(
    make_config: Callable[..., Config], hang_listener: HangListener
) -> None:
    """A timeout on a working SSH session is "gateway_slow": never fenced, never `fall`."""
    url = f"http://127.0.0.1:{hang_listener.port}/"
    result = probe_primary(make_config(gateway=url, check={"probe_timeout": 0.5}), NO_MASK)
    assert result.status is S.GATEWAY_SLOW
    assert "no HTTP answer within 0.5s" in result.detail


@integration
@pytest.mark.parametrize(
    ("reply", "words"),
    [(b"", "closed without an HTTP answer"), (b"garbage\r\n\r\n", "garbage")],
    ids=["reset", "garbage"],
)
def test_broken_gateway_is_down(
    make_config: Callable[..., Config], reply: bytes, words: str
) -> None:
    broken = ReplyListener(reply)
    try:
        result = probe_primary(make_config(gateway=broken.url), NO_MASK)
    finally:
        broken.stop()
    assert result.status is S.GATEWAY_DOWN
    assert words in result.detail


@integration
def test_sshd_stopped_is_refused_and_recovers_on_same_port(
    make_config: Callable[..., Config], sshd: SSHServer
) -> None:
    cfg = make_config()
    sshd.stop()
    down = probe_primary(cfg, NO_MASK)
    assert down.status is S.REFUSED
    assert down.detail == f"connection refused by 127.0.0.1:{sshd.port}"
    sshd.start()
    assert probe_primary(cfg, NO_MASK).status is S.HEALTHY


@integration
def test_ssh_that_hangs_is_unreachable(
    make_config: Callable[..., Config], hang_listener: HangListener
) -> None:
    cfg = make_config(hang_listener, primary={"ssh": {"connect_timeout": 1}})
    result = probe_primary(cfg, NO_MASK)
    assert result.status is S.UNREACHABLE, result
    assert str(hang_listener.port) in result.detail


class _ScriptedSSH:
    """A TCP port on 127.0.0.1 that sends ``greeting`` to each connection, then
    closes it (``close``) or holds it open without another byte."""

    def __init__(self, greeting: bytes, close: bool) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self._greeting, self._close = greeting, close
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.sendall(self._greeting)
            if self._close:
                conn.close()
            else:
                self.held.append(conn)

    def stop(self) -> None:
        self._sock.close()
        for conn in self.held:
            conn.close()


@integration
@pytest.mark.parametrize(
    ("greeting", "close", "status", "words"),
    [
        # closed, or reset when our own banner was on its way: either way before its banner
        (b"", True, S.UNREACHABLE, "the connection before sending its SSH banner"),
        (b"", False, S.UNREACHABLE, "accepted the TCP connection but sent no SSH banner within 1s"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", False, S.SLOW, "after the primary answered"),
    ],
    ids=["closed-before-banner", "no-banner", "banner-then-silence"],
)
def test_never_answered_versus_answered_then_slow(
    make_config: Callable[..., Config], greeting: bytes, close: bool, status: S, words: str
) -> None:
    """The messages say what happened: a closed connection is not "no banner within 1s"."""
    server = _ScriptedSSH(greeting, close)
    try:
        cfg = make_config(server.port, primary={"ssh": {"connect_timeout": 1}})
        result = probe_primary(cfg, NO_MASK)
    finally:
        server.stop()
    assert result.status is status, result
    assert words in result.detail and ("within" in result.detail) == (not close), result


@integration
def test_ssh_closed_at_once_is_named_as_closed_not_as_a_banner_timeout(
    make_config: Callable[..., Config],
) -> None:
    """A port that accepts and closes at once: "closed the connection", not "no banner in 10s"."""
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        cfg = make_config(port, primary={"ssh": {"connect_timeout": 10}})
        result = probe_primary(cfg, NO_MASK)
    finally:
        listener.close()
    assert result.status is S.UNREACHABLE, result
    # the kernel reports the close as a FIN or, when our banner was still unread, a reset
    said = ("closed the connection", "reset the connection")
    assert any(f"{w} before sending its SSH banner" in result.detail for w in said), result
    assert "within 10s" not in result.detail


@integration
def test_changed_host_key_is_auth_failed(
    make_config: Callable[..., Config], sshd: SSHServer
) -> None:
    cfg = make_config()
    sshd.rotate_host_key()
    result = probe_primary(cfg, NO_MASK)
    assert result.status is S.AUTH_FAILED
    assert "host key CHANGED" in result.detail
    sshd.write_known_hosts()  # trusting the new key fixes it
    assert probe_primary(cfg, NO_MASK).status is S.HEALTHY


@integration
def test_unknown_host_is_auth_failed(
    make_config: Callable[..., Config], sshd: SSHServer, tmp_path: Path
) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    result = probe_primary(make_config(primary={"ssh": {"known_hosts": str(empty)}}), NO_MASK)
    assert result.status is S.AUTH_FAILED
    assert f"host key unknown: [127.0.0.1]:{sshd.port}" in result.detail


@integration
def test_known_hosts_without_port_does_not_match_a_non_22_port(
    make_config: Callable[..., Config], sshd: SSHServer, tmp_path: Path
) -> None:
    """Like OpenSSH: a bare ``127.0.0.1`` entry is for port 22 only."""
    bare = tmp_path / "bare_known_hosts"
    bare.write_text(sshd.known_hosts_line().replace(sshd.known_hosts_name, "127.0.0.1", 1))
    result = probe_primary(make_config(primary={"ssh": {"known_hosts": str(bare)}}), NO_MASK)
    assert result.status is S.AUTH_FAILED and "host key unknown" in result.detail


@integration
def test_hashed_known_hosts_entry_works(
    make_config: Callable[..., Config], sshd: SSHServer
) -> None:
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(sshd.known_hosts)], check=True)
    assert sshd.known_hosts.read_text().startswith("|1|")
    assert probe_primary(make_config(), NO_MASK).status is S.HEALTHY


@integration
@pytest.mark.parametrize("key_type", ["ed25519", "rsa"])
def test_wrong_client_key_is_auth_failed(
    make_config: Callable[..., Config], sshd: SSHServer, key_type: str
) -> None:
    stranger = sshd.make_client_key(f"stranger_{key_type}", key_type=key_type)
    result = probe_primary(make_config(primary={"ssh": {"key_file": str(stranger)}}), NO_MASK)
    assert result.status is S.AUTH_FAILED
    assert f"key rejected: {sshd.user}@127.0.0.1:{sshd.port} did not accept" in result.detail


@integration
def test_authorized_rsa_key_works(make_config: Callable[..., Config], sshd: SSHServer) -> None:
    rsa = sshd.make_client_key("friend_rsa", key_type="rsa", authorize=True)
    result = probe_primary(make_config(primary={"ssh": {"key_file": str(rsa)}}), NO_MASK)
    assert result.status is S.HEALTHY, result


@integration
@pytest.mark.parametrize(("status", "verdict"), [(404, S.HEALTHY), (503, S.GATEWAY_DOWN)])
def test_forwarding_disabled_falls_back_to_curl(
    make_sshd: Callable[..., SSHServer],
    make_config: Callable[..., Config],
    fake_gateway: FakeGateway,
    status: int,
    verdict: ProbeStatus,
) -> None:
    fake_gateway.status = status
    server = make_sshd(allow_tcp_forwarding=False)
    result = probe_primary(make_config(server), NO_MASK)
    assert (result.status, result.method, result.http_status) == (verdict, "curl", status)
    assert result.detail == f"HTTP {status} via curl"
    assert fake_gateway.requests == ["/"]


@integration
def test_forwarding_disabled_and_gateway_closed_is_down(
    make_sshd: Callable[..., SSHServer], make_config: Callable[..., Config]
) -> None:
    server = make_sshd(allow_tcp_forwarding=False)
    closed = f"http://127.0.0.1:{free_port()}/"
    result = probe_primary(make_config(server, closed), NO_MASK)
    assert (result.status, result.method) == (S.GATEWAY_DOWN, "curl")
    assert "connection refused" in result.detail


@integration
def test_forwarding_disabled_and_no_curl_is_probe_error(
    make_sshd: Callable[..., SSHServer], make_config: Callable[..., Config]
) -> None:
    server = make_sshd(allow_tcp_forwarding=False, set_env={"PATH": "/nonexistent"})
    result = probe_primary(make_config(server), NO_MASK)
    assert result.status is S.PROBE_ERROR
    assert result.detail == CURL_MISSING
    assert not result.status.is_failure


@integration
def test_healthy_probe_imports_no_heavy_modules(
    make_config: Callable[..., Config], fake_gateway: FakeGateway, sshd: SSHServer, tmp_path: Path
) -> None:
    doc = config_dict(
        port=sshd.port,
        user=sshd.user,
        key_file=sshd.client_key,
        known_hosts=sshd.known_hosts,
        health_url=fake_gateway.url,
        state_dir=tmp_path / "state",
    )
    code = (
        "import json, sys\n"
        "from openclaw_failover.config.loader import parse_config\n"
        "from openclaw_failover.primary.probe import probe_primary\n"
        "from openclaw_failover.local.runner import Masker\n"
        "r = probe_primary(parse_config(json.loads(sys.argv[1]), 't', env={}), Masker())\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'telegram', 'psycopg', "
        "'requests', 'httpx', 'urllib3'})\n"
        "print(json.dumps([r.status.value, heavy]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(doc)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == ["healthy", []]


@integration
def test_primary_dying_after_login_is_unreachable(
    make_config: Callable[..., Config], sshd: SSHServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def connect_then_die(cfg: Config) -> paramiko.SSHClient:
        client = connect(cfg)
        sshd.stop()  # the host goes down between login and the HTTP check
        transport = client.get_transport()
        assert transport is not None
        transport.join(timeout=10)  # paramiko notices the closed connection
        return client

    cfg = make_config()
    monkeypatch.setattr(remote, "connect", connect_then_die)
    result = probe_primary(cfg, NO_MASK)
    assert result.status is S.UNREACHABLE, result
    assert "lost during the probe" in result.detail


# --------------------------------------------------------------------------- integration: run_remote


@integration
def test_run_remote_captures_exit_code_and_output(make_config: Callable[..., Config]) -> None:
    result = run_remote(
        make_config(), ["sh", "-c", "echo out; echo 'e r' >&2; exit 3"], timeout=10, mask=NO_MASK
    )
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "e r\n")
    assert not result.timed_out and not result.error


@integration
def test_run_remote_quotes_arguments(make_config: Callable[..., Config]) -> None:
    result = run_remote(
        make_config(), ["printf", "%s|", "a b", "$HOME", "'"], timeout=10, mask=NO_MASK
    )
    assert result.ok and result.stdout == "a b|$HOME|'|"


@integration
def test_run_remote_gives_no_stdin(make_config: Callable[..., Config]) -> None:
    result = run_remote(make_config(), ["cat"], timeout=10, mask=NO_MASK)
    assert result.ok and result.stdout == "" and not result.timed_out


@integration
def test_run_remote_times_out_a_hung_command(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    pid_file = tmp_path / "sleep.pid"
    argv = ["sh", "-c", 'echo $$ > "$0"; exec sleep 30', str(pid_file)]
    try:
        result = run_remote(make_config(), argv, timeout=1, mask=NO_MASK)
    finally:
        # sshd honours the "signal" request only under privilege separation (not
        # for root logins): make sure no sleep outlives the test either way.
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert pid_file.exists()  # the command did start
    assert result.timed_out and result.returncode is None and not result.ok
    assert "timed out" in result.summary()


@integration
def test_run_remote_masks_secrets_everywhere(
    make_config: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    mask = Masker([SECRET])
    with caplog.at_level(logging.DEBUG, logger="openclaw_failover"):
        result = run_remote(
            make_config(), ["sh", "-c", f"echo {SECRET}; echo {SECRET} >&2"], timeout=10, mask=mask
        )
    assert (result.stdout, result.stderr) == ("***\n", "***\n")
    assert "running on 127.0.0.1:" in caplog.text and "***" in caplog.text  # logged, masked
    assert SECRET not in caplog.text


@integration
def test_run_remote_reuses_a_given_client(make_config: Callable[..., Config]) -> None:
    cfg = make_config()
    client = connect(cfg)
    try:
        first = run_remote(cfg, ["echo", "1"], timeout=10, mask=NO_MASK, client=client)
        second = run_remote(cfg, ["echo", "2"], timeout=10, mask=NO_MASK, client=client)
        transport = client.get_transport()
        assert transport is not None and transport.is_active()
    finally:
        client.close()
    assert (first.stdout, second.stdout) == ("1\n", "2\n")


@integration
def test_run_remote_when_sshd_is_down(make_config: Callable[..., Config], sshd: SSHServer) -> None:
    cfg = make_config()
    sshd.stop()
    result = run_remote(cfg, ["true"], timeout=10, mask=NO_MASK)
    assert result.returncode is None and "connection refused" in result.error


@integration
def test_run_remote_on_a_dead_connection(
    make_config: Callable[..., Config], sshd: SSHServer
) -> None:
    cfg = make_config()
    client = connect(cfg)
    try:
        sshd.stop()
        result = run_remote(cfg, ["true"], timeout=10, mask=NO_MASK, client=client)
    finally:
        client.close()
    assert result.returncode is None and not result.timed_out
    assert result.error.startswith(f"SSH to 127.0.0.1:{sshd.port} failed")


# --------------------------------------------------------------------------- harness


@integration
@pytest.mark.parametrize("sessions", [True, False])
def test_sshd_stop_ends_sessions_unless_asked_not_to(
    make_config: Callable[..., Config], sshd: SSHServer, sessions: bool
) -> None:
    cfg = make_config()
    client = connect(cfg)
    try:
        sshd.stop(sessions=sessions)
        result = run_remote(cfg, ["echo", "still here"], timeout=10, mask=NO_MASK, client=client)
    finally:
        client.close()
    assert result.ok is (not sessions), result


@integration
def test_fake_gateway_restarts_on_the_same_port() -> None:
    from openclaw_failover.local.httpcheck import get_status

    gw = FakeGateway(status=404)
    try:
        port = gw.port
        assert get_status(gw.url, 5) == 404
        gw.stop()
        with pytest.raises(OSError):
            get_status(gw.url, 5)
        gw.start()
        gw.status = 500
        assert gw.port == port and get_status(gw.url, 5) == 500
    finally:
        gw.stop()

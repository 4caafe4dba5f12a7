"""`ocf doctor`'s version group: /startupz on the primary (through a real sshd's
direct-tcpip channel) and on the standby, or the standby's installed CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.ops.doctor import version as doctor_version
from openclaw_failover.ops.doctor.run import Check, DoctorContext, Sink
from openclaw_failover.primary import gwversion
from tests.harness.sshd import SSHServer, free_port

pytestmark = pytest.mark.integration


class Startupz:
    """Answers /startupz like the real gateway (or 404, like an older one)."""

    def __init__(self, version: str | None, *, starting: bool = False) -> None:
        self.version = version
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/startupz" and outer.version is not None:
                    status = "starting" if starting else "started"
                    doc = {"ok": not starting, "status": status, "version": outer.version}
                    body, code = json.dumps(doc).encode(), 503 if starting else 200
                else:
                    body, code = b'{"error":"not found"}', 404
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/healthz"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers() -> Iterator[Callable[[str | None], Startupz]]:
    made: list[Startupz] = []

    def make(version: str | None, starting: bool = False) -> Startupz:
        made.append(Startupz(version, starting=starting))
        return made[-1]

    yield make
    for srv in made:
        srv.close()


def run(cfg: Config, env: dict[str, str] | None = None) -> list[Check]:
    ctx = DoctorContext(
        cfg=cfg,
        env=env or {"PATH": "/usr/bin:/bin"},
        config_path=Path("/nonexistent"),
        send_test=False,
        now=0.0,
        mask=Masker(),
        state=None,
        state_warning=None,
    )
    sink = Sink("openclaw", ctx.mask)
    doctor_version.check_versions(ctx, sink)
    return sink.close()


def lines(found: list[Check]) -> list[tuple[str, str]]:
    return [(c.status, c.detail) for c in found]


def test_same_version_on_both_hosts(
    sshd: SSHServer, make_config: Callable[..., Config], servers: Callable[..., Startupz]
) -> None:
    primary, standby = servers("2026.9.6"), servers("2026.9.6")
    cfg = make_config(sshd, primary.url, standby={"gateway": {"health_url": standby.url}})
    assert lines(run(cfg)) == [
        ("ok", "primary gateway: OpenClaw 2026.9.6 (/startupz)"),
        ("ok", "standby gateway: OpenClaw 2026.9.6 (/startupz)"),
    ]


def test_a_starting_gateway_already_tells_its_version(
    sshd: SSHServer, make_config: Callable[..., Config], servers: Callable[..., Startupz]
) -> None:
    """/startupz answers 503 until startup finished, with the version in the body."""
    primary, standby = servers("2026.9.6", starting=True), servers("2026.9.6")
    cfg = make_config(sshd, primary.url, standby={"gateway": {"health_url": standby.url}})
    assert lines(run(cfg)) == [
        ("ok", "primary gateway: OpenClaw 2026.9.6, still starting (/startupz)"),
        ("ok", "standby gateway: OpenClaw 2026.9.6 (/startupz)"),
    ]


def test_different_versions_warn_with_both(
    sshd: SSHServer, make_config: Callable[..., Config], servers: Callable[..., Startupz]
) -> None:
    primary, standby = servers("2026.9.6"), servers("2026.10.1")
    cfg = make_config(sshd, primary.url, standby={"gateway": {"health_url": standby.url}})
    found = run(cfg)
    warn = found[-1]
    assert (warn.status, warn.detail) == (
        "warn",
        "gateway versions differ: primary 2026.9.6, standby 2026.10.1",
    )
    assert "openclaw@2026.10.1" in warn.fix


def test_standby_not_running_asks_its_cli(
    sshd: SSHServer,
    make_config: Callable[..., Config],
    servers: Callable[..., Startupz],
    tmp_path: Path,
) -> None:
    cli = tmp_path / "bin" / "openclaw"
    cli.parent.mkdir()
    cli.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "OpenClaw 2026.9.5 (eb377ac)"\n')
    cli.chmod(0o755)
    primary = servers("2026.9.6")
    gateway = {
        "health_url": f"http://127.0.0.1:{free_port()}/healthz",  # nothing listens
        "fallback_start_command": [str(cli), "gateway", "run"],
    }
    found = run(make_config(sshd, primary.url, standby={"gateway": gateway}))
    assert lines(found)[1] == (
        "ok",
        "standby gateway: OpenClaw 2026.9.5 (installed, openclaw --version)",
    )
    assert lines(found)[2][0] == "warn"


def test_older_gateway_without_startupz_is_unknown_not_a_failure(
    sshd: SSHServer, make_config: Callable[..., Config], servers: Callable[..., Startupz]
) -> None:
    primary, standby = servers(None), servers("2026.9.6")
    cfg = make_config(sshd, primary.url, standby={"gateway": {"health_url": standby.url}})
    assert lines(run(cfg)) == [
        ("skip", "primary gateway version unknown: HTTP 404"),
        ("ok", "standby gateway: OpenClaw 2026.9.6 (/startupz)"),
    ]


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("openclaw gateway stop", "exits 1 unattended without --force"),
        ("/opt/oc/bin/openclaw --profile work gateway status --json", "--require-rpc"),
        ("openclaw health --json", "waits 60 s"),
        ("openclaw gateway stop --force", None),
        ("openclaw gateway status --require-rpc", None),
        ("openclaw health --timeout 3000", None),
        ("systemctl --user stop openclaw-gateway.service", None),
    ],
)
def test_openclaw_commands_that_fail_unattended(command: str, problem: str | None) -> None:
    found = gwversion.command_problem(command.split())
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_doctor_fails_an_unforced_stop_command(
    sshd: SSHServer, make_config: Callable[..., Config], servers: Callable[..., Startupz]
) -> None:
    primary, standby = servers("2026.9.6"), servers("2026.9.6")
    cfg = make_config(
        sshd,
        primary.url,
        primary={"gateway": {"stop_command": "openclaw gateway stop"}},
        standby={"gateway": {"health_url": standby.url}},
    )
    bad = [c for c in run(cfg) if c.status == "FAIL"]
    assert [c.detail for c in bad] == [
        "primary.gateway.stop_command: `openclaw gateway stop` exits 1 unattended without --force"
    ]
    assert "--force" in bad[0].fix

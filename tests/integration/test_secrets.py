"""No piece of a secret anywhere: state folder, logs, events, status, history, notices.

A real `ocf check` takes over (the primary's SSH port is closed), its start command
fails and prints an API key it was given, the failover-failed notice goes to a fake
Bot API whose error pages echo the request (the bot token) after a long preamble,
as a proxy or a wrong base_url does.  Then `ocf status`, `ocf status --json`,
`ocf history` and `ocf history --json` run.  Every file in the state folder and all
output are searched for every 8-character piece of each secret.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from openclaw_failover.cli import app as cli
from openclaw_failover.config.loader import load_config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.monitor import ping

TOKEN = "987654:ZqXwVuTsRqPoNmLkJiHgFeDcBa_yx"
API_KEY = "k3y-VALUE-Qm7Rt9Wz-abcd"
PING_PATH = "/ping/5f3a9c1e-d00d-4b1d-beef-sEcReTpAtH"
# Long enough that a text cut at 300 characters before masking ends inside the token.
PADDING = ("Not Found: no such path on this server. " * 7)[:258]


def _pieces(secret: str, size: int = 8) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with an error page that echoes its path."""

    style = "json404"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path
        if self.style == "json404":
            code, body = 404, json.dumps({"ok": False, "description": PADDING + path})
        elif self.style == "json400-encoded":
            code, body = 400, json.dumps({"ok": False, "description": PADDING + quote(path)})
        else:  # an HTML page of a proxy
            code, body = 502, f"<html><h1>502</h1>{PADDING[:180]}<p>{path}</p></html>"
        data = body.encode()
        self.send_response(code)
        self.send_header(
            "Content-Type", "application/json" if "json" in self.style else "text/html"
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(params=["json404", "json400-encoded", "html502"])
def echo_server(request: pytest.FixtureRequest) -> Iterator[int]:
    handler = type("Handler", (_EchoHandler,), {"style": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _config(tmp: Path, port: int) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "id")],
        check=True,
        capture_output=True,
    )
    (tmp / "kh").write_text("")
    path = tmp / "config.yaml"
    path.write_text(
        f"""\
primary:
  host: 127.0.0.1
  ssh: {{user: nobody, port: {_free_port()}, key_file: {tmp / "id"}, known_hosts: {tmp / "kh"},
        connect_timeout: 1}}
standby:
  gateway:
    health_url: http://127.0.0.1:{_free_port()}/
    start_command: ["/bin/sh", "-c", "echo \\"cannot start: api key $0 rejected\\" >&2; exit 3",
                    "${{MY_API_KEY}}"]
    stop_command: /bin/true
    start_timeout: 1
check: {{retries: 0, deadline: 30}}
telegram:
  token: ${{OCF_TELEGRAM_TOKEN}}
  chat_id: 12345
  base_url: http://127.0.0.1:{port}/bot
  timeout: 5
monitoring:
  ping_url: http://127.0.0.1:{port}{PING_PATH}
  ping_timeout: 2
state_dir: {tmp / "state"}
"""
    )
    return path


needs_keygen = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed (openssh-client)"
)


@needs_keygen
def test_no_piece_of_any_secret_after_error_pages_that_echo_the_request(
    tmp_path: Path, echo_server: int, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, echo_server)
    env = {
        "OCF_TELEGRAM_TOKEN": TOKEN,
        "MY_API_KEY": API_KEY,
        "HOME": str(tmp_path),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    outputs = []
    for args in (
        ["-vv", "check"],
        ["check"],
        ["status"],
        ["status", "--json"],
        ["history"],
        ["history", "--json"],
    ):
        code = cli.main(["--config", str(config), *args], cli.Environment(env=dict(env)))
        captured = capsys.readouterr()
        outputs.append((args, code, captured.out + captured.err))
    text = "\n".join(out for _, _, out in outputs)
    assert "took over" in text or "FAILOVER FAILED" in text or "failover" in text, text
    state = tmp_path / "state"
    files = {p: p.read_bytes().decode("utf-8", "replace") for p in state.rglob("*") if p.is_file()}
    assert any(
        "bot token rejected" in t or "Bad Gateway" in t or "bad request" in t
        for t in files.values()
    ), files.keys()
    assert "***" in "".join(files.values()), "the echoed token was masked, not missing"
    for secret in (TOKEN, API_KEY, PING_PATH):
        for piece in _pieces(secret):
            for where, content in [("output", text), *((str(p), t) for p, t in files.items())]:
                assert piece not in content, f"{piece!r} of a secret in {where}"
                assert quote(piece, safe="") not in content, f"{piece!r} encoded in {where}"


@needs_keygen
def test_the_ping_url_path_is_masked_in_a_urllib_error(tmp_path: Path) -> None:
    """The ping URL's path is a secret (it lets anyone ping): an InvalidURL echoes it."""
    config = _config(tmp_path, _free_port())
    cfg = load_config(config, {"OCF_TELEGRAM_TOKEN": TOKEN, "MY_API_KEY": API_KEY})
    assert cfg.monitoring.ping_url
    line = ping.ping(cfg.monitoring.ping_url + " x", ok=True, timeout=1, mask=Masker(cfg.secrets))
    assert line.startswith("ping failed")
    for piece in _pieces(PING_PATH):
        assert piece not in line, line


def test_notify_masks_first_then_shortens() -> None:
    """A long Bot API error holding the token: masked whole, then cut to one line."""
    from telegram.error import InvalidToken

    from openclaw_failover.config.loader import TelegramConfig
    from openclaw_failover.core.model import Notice
    from openclaw_failover.notify import telegram as notify

    tg = TelegramConfig(token=TOKEN, chat_id=1)
    for pad in range(240, 300, 5):  # the token straddles the 300th character somewhere
        report = notify.DeliveryReport()
        sender = notify._Sender(tg, Masker([TOKEN]), report, now=0.0, on_sent=None, sleep=print)
        notice = Notice(id="n1", kind="took_over", text="t", created_at=0.0)
        sender._failed(notice, InvalidToken("x" * pad + "/bot" + TOKEN + "/sendMessage"))
        for shown in (notice.last_error, *report.errors):
            assert all(p not in shown for p in _pieces(TOKEN)), (pad, shown)


def test_syncback_masks_first_then_shortens() -> None:
    from openclaw_failover.syncback import run as syncback

    shown = syncback.error_line(RuntimeError("y" * 290 + "password=" + API_KEY), Masker([API_KEY]))
    assert all(p not in shown for p in _pieces(API_KEY)), shown


def test_masker_masks_url_encoded_forms() -> None:
    mask = Masker([TOKEN, "p@ss w/rd"])
    for form in (TOKEN, quote(TOKEN, safe=""), "p%40ss%20w%2Frd", "p%40ss+w%2Frd", "p%40ss%20w/rd"):
        assert mask(f"a {form} b") == "a *** b", form

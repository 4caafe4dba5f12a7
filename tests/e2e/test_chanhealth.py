"""A gateway that is up but whose channel fails: parsed, masked, reported.

Unit tests of :mod:`openclaw_failover.local.chanhealth` on the real gateway's answers
(openclaw 2026.9.6's ``/readyz``, its health summary's channel entries), of
:func:`readiness.check_ready` against a real HTTP server, and an end-to-end
takeover with the `ocf` CLI whose standby gateway (a real HTTP server process)
answers ``/readyz`` with a Telegram 409 conflict: the notice, the reason, the
event and `ocf status` (text and ``--json``) say so, with no token anywhere.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from openclaw_failover.config.secrets import Masker
from openclaw_failover.local import chanhealth, readiness
from openclaw_failover.local.chanhealth import ChannelFailure
from tests.e2e.test_e2e_check import World, world  # noqa: F401 - the fixture
from tests.harness.fake_telegram import DEFAULT_TOKEN

# A bot token ocf does not know (the gateway's own bot), seen only in a Bot API URL.
OTHER_TOKEN = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CONFLICT = (
    "Telegram getUpdates conflict: Call to 'getUpdates' failed! (409: Conflict: terminated "
    "by other getUpdates request; make sure that only one bot instance is running)."
    " Another OpenClaw gateway, script, or Telegram poller may be using this bot token"
)
# /readyz of the real gateway, from loopback, once its Telegram channel failed
READYZ_409 = {"ready": False, "failing": ["telegram"], "uptimeMs": 131000}
# the same with the health summary's channel entry (`openclaw health --json`)
SUMMARY_409 = {
    **READYZ_409,
    "channels": {
        "telegram": {
            "accounts": {
                "default": {
                    "accountId": "default",
                    "healthState": "disconnected",
                    "lastError": f"{CONFLICT} (POST https://api.telegram.org/bot{OTHER_TOKEN}"
                    f"/getUpdates, bot {DEFAULT_TOKEN})",
                }
            }
        },
        "discord": {"accounts": {"default": {"healthState": "healthy", "lastError": "old"}}},
    },
}


def _no_token(text: str) -> None:
    for token in (DEFAULT_TOKEN, OTHER_TOKEN):
        secret = token.split(":", 1)[1]
        for i in range(len(secret) - 7):  # not even a cut-off piece of one
            assert secret[i : i + 8] not in text, text


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "body",
    [
        '{"ready":false,"failing":["startup-sidecars"],"uptimeMs":4100}',
        '{"ready":false,"failing":["gateway-draining","plugin-reload","internal"]}',
        '{"ready":false,"failing":["agent-database:main","state-database"]}',
        '{"ready":true,"failing":[],"uptimeMs":50000}',
        '{"ready":false}',  # not from loopback: no details
        '{"ok":true,"status":"live"}',  # /healthz
        "<html>Control UI</html>",
        "[1, 2]",
        "",
    ],
)
def test_no_channel_failure_in_gateway_wide_or_odd_answers(body: str) -> None:
    assert chanhealth.parse(body) == []
    assert chanhealth.describe(chanhealth.parse(body), str) == ""


def test_readyz_names_the_failing_channel() -> None:
    assert chanhealth.parse(json.dumps(READYZ_409)) == [ChannelFailure("telegram")]
    assert chanhealth.only_channels(json.dumps(READYZ_409))
    body = '{"ready":false,"failing":["startup-sidecars","telegram"]}'
    assert chanhealth.parse(body) == [ChannelFailure("telegram")]
    assert not chanhealth.only_channels(body)  # still starting: wait on
    assert not chanhealth.only_channels('{"ready":false,"failing":[]}')
    line = chanhealth.describe(chanhealth.parse(json.dumps(READYZ_409)), str)
    assert line == "up, but channel telegram failing"


def test_health_summary_gives_the_error_of_an_unhealthy_account_only() -> None:
    failures = chanhealth.parse(json.dumps(SUMMARY_409))
    assert [f.channel for f in failures] == ["telegram"]  # discord is healthy (old error)
    assert failures[0].error.startswith("Telegram getUpdates conflict: Call to 'getUpdates'")
    body = {"channels": {"signal": {"lastError": "signal-cli exited 1"}}}
    assert chanhealth.parse(json.dumps(body)) == [ChannelFailure("signal", "signal-cli exited 1")]
    two = {"failing": ["telegram", "whatsapp"]}
    assert chanhealth.describe(chanhealth.parse(json.dumps(two)), str) == (
        "up, but channels telegram failing; whatsapp failing"
    )


def test_describe_masks_first_then_shortens() -> None:
    mask = Masker([DEFAULT_TOKEN])
    line = chanhealth.describe(chanhealth.parse(json.dumps(SUMMARY_409)), mask)
    assert line.startswith(
        "up, but channel telegram failing: Telegram getUpdates conflict: Call to 'getUpdates' "
        "failed! (409: Conflict: terminated by other getUpdates request;"
    )
    assert line.endswith("...") and len(line) <= chanhealth.LINE_CHARS
    _no_token(line)
    # a token right where the error is cut: masked before the cut, no piece survives
    for at in range(chanhealth.ERROR_CHARS - 40, chanhealth.ERROR_CHARS + 5):
        for tail in (f"https://api.telegram.org/bot{OTHER_TOKEN}/getUpdates", DEFAULT_TOKEN):
            error = "x" * at + " " + tail
            _no_token(chanhealth.describe([ChannelFailure("telegram", error)], mask))


# --------------------------------------------------------------------------- readiness


class Answers(ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1 answering /readyz from a script of answers."""

    def __init__(self, script: list[tuple[int, str]]) -> None:
        self.script, self.asked = script, 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(inner) -> None:  # the server is `self`
                code, body = self.script[min(self.asked, len(self.script) - 1)]
                self.asked += 1
                data = body.encode()
                inner.send_response(code)
                inner.send_header("Content-Type", "application/json")
                inner.send_header("Content-Length", str(len(data)))
                inner.end_headers()
                inner.wfile.write(data)

            def log_message(inner, format: str, *args: Any) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/readyz"


@pytest.fixture
def answers() -> Iterator[Any]:
    made: list[Answers] = []

    def make(*script: tuple[int, str]) -> Answers:
        srv = Answers(list(script))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.shutdown()
        srv.server_close()


def test_check_ready_waits_out_startup_then_reports_the_channel(answers: Any) -> None:
    starting = (503, '{"ready":false,"failing":["startup-sidecars"],"uptimeMs":900}')
    srv = answers(starting, starting, (503, json.dumps(SUMMARY_409)))
    mask = Masker([DEFAULT_TOKEN])
    t0 = time.monotonic()
    r = readiness.check_ready(srv.url, 30, mask=mask, sleep=lambda _: None)
    assert time.monotonic() - t0 < 5 and srv.asked == 3  # not waited out the 30 s
    assert not r.ready and r.line.startswith("gateway up, channels not ready (/readyz HTTP 503:")
    assert [f.channel for f in r.channels] == ["telegram"]
    assert r.channel_problem(mask).startswith("up, but channel telegram failing: Telegram getUp")
    _no_token(r.line)
    _no_token(r.channel_problem(mask))


def test_check_ready_ready_and_stuck_starting(answers: Any) -> None:
    srv = answers((200, '{"ready":true,"failing":[],"uptimeMs":20000}'))
    r = readiness.check_ready(srv.url, 5, sleep=lambda _: None)
    assert (r.ready, r.line, r.channels) == (True, "gateway ready (/readyz 200)", [])
    srv = answers((503, '{"ready":false,"failing":["startup-sidecars","telegram"]}'))
    clock = iter(range(100))
    r = readiness.check_ready(srv.url, 3, sleep=lambda _: None, clock=lambda: next(clock))
    assert not r.ready and "not ready after 3s" in r.line and srv.asked > 1
    assert r.channel_problem(str) == "up, but channel telegram failing"


# --------------------------------------------------------------------------- end to end


def test_takeover_reports_the_failing_channel_in_notice_status_and_events(world: World) -> None:  # noqa: F811
    start = world.standby_cmd("start")
    start += ["--ready-status", "503", "--ready-body", json.dumps(SUMMARY_409)]
    world.configure(standby={"gateway": {"start_command": start, "start_timeout": 30}})
    world.primary("stop")
    t0 = time.monotonic()
    r = world.ocf("check")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert took < 25, took  # a failing channel is reported, not waited for
    assert r.stdout.startswith("took over: primary gateway_down for 1 check")
    assert "; local gateway up, but channel telegram failing: Telegram getUpdates conflict" in (
        r.stdout
    )
    notice = world.texts()[0]
    assert notice.startswith("OpenClaw on Mac Studio OFFLINE - RPi takes over!")
    assert "The gateway here is up, but channel telegram failing: Telegram getUpdates " in notice
    assert "409: Conflict: terminated by other getUpdates request" in notice

    status = world.ocf("status")
    assert status.returncode == 0, status.stderr
    gw_line = next(x for x in status.stdout.splitlines() if x.startswith("local gateway:"))
    assert "answering" in gw_line and "; at takeover up, but channel telegram failing: " in gw_line
    data = json.loads(world.ocf("status", "--json").stdout)
    assert data["local_gateway"]["channels"].startswith("up, but channel telegram failing: Tele")
    action = world.events("action")[-1]
    assert (
        action["action"] == "TakeOver" and action["channels"] == data["local_gateway"]["channels"]
    )
    for text in (r.stdout, r.stderr, notice, status.stdout, json.dumps(data)):
        _no_token(text)
    for path in world.state_dir.iterdir():
        if path.is_file():
            _no_token(path.read_text(errors="replace"))

    world.primary("start")  # give back: the channel problem is no longer shown
    assert world.ocf("check").returncode == 0
    data = json.loads(world.ocf("status", "--json").stdout)
    assert data["role"] == "primary" and data["local_gateway"]["channels"] is None

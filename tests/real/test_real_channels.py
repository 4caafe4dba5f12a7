"""The real gateway's readiness with a failing Telegram channel, read by ocf.

The gateway's Telegram channel is pointed (``channels.telegram.apiRoot``) at the
sandbox's fake Bot API on 127.0.0.1, which does not know the gateway's token and
answers 401: the real gateway marks the channel blocked and its ``/readyz`` says
``{"ready":false,"failing":["telegram"],...}`` as soon as the channel started.
ocf's readiness check must stop waiting then and report "up, but channel telegram
failing", with no token in what it says.

A 409 conflict is not used here: the real gateway (2026.9.6) keeps a conflicting
poller "healthy" for its 120 s channel connect grace (measured: ``failing:
["telegram"]`` at 126 s of uptime), longer than this tier's budget per test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from openclaw_failover.config.secrets import Masker
from openclaw_failover.local import readiness
from openclaw_failover.sandbox.telegram import FakeBotAPI
from tests.harness.sshd import free_port
from tests.real.conftest import Gateway

pytestmark = pytest.mark.real

GATEWAY_BOT_TOKEN = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # not the fake API's


def test_real_gateway_with_a_blocked_telegram_channel_is_up_but_failing(
    gateways: Callable[..., Gateway], tmp_path: Path
) -> None:
    api = FakeBotAPI(free_port(), "123456789:SANDBOX-other-token", tmp_path / "sent.jsonl")
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        gw = gateways("standby")
        cfg_path = gw.state_dir / "openclaw.json"
        doc = json.loads(cfg_path.read_text())
        doc["channels"] = {
            "telegram": {
                "enabled": True,
                "botToken": GATEWAY_BOT_TOKEN,
                "apiRoot": f"http://127.0.0.1:{api.server_address[1]}",
                "dmPolicy": "pairing",
            }
        }
        cfg_path.write_text(json.dumps(doc))
        gw.start()
        gw.wait_healthy()
        mask = Masker([GATEWAY_BOT_TOKEN])
        t0 = time.monotonic()
        r = readiness.check_ready(f"http://127.0.0.1:{gw.port}/readyz", 90, mask=mask)
        took = time.monotonic() - t0
        print(f"real gateway readiness after {took:.1f}s: {r.line}")
        assert not r.ready, r.line
        assert r.line.startswith("gateway up, channels not ready (/readyz HTTP 503:"), r.line
        assert [f.channel for f in r.channels] == ["telegram"]
        assert r.channel_problem(mask) == "up, but channel telegram failing"
        assert took < 80, took  # stopped at the channel failure, not at the timeout
        secret = GATEWAY_BOT_TOKEN.split(":")[1]
        assert secret not in r.line
    finally:
        api.shutdown()
        api.server_close()

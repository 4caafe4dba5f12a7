"""`ocf demo --real-gateway`, the gateway-crash scenario (about 3-5 minutes).

Not collected by default (the file name does not start with test_), to keep the real
tier's CI time near 5 minutes; run it with `make test-real-demo`, i.e.
`pytest -m real tests/real/demo_real.py`.
"""

from __future__ import annotations

import io
import re
import time

import pytest

from openclaw_failover.sandbox import postgres, realgw
from openclaw_failover.sandbox.demo import run_demo
from tests.harness.sshd import require_openssh

pytestmark = pytest.mark.real


def test_demo_with_the_real_gateway_takes_over_and_gives_back(
    openclaw: realgw.Install,
) -> None:
    require_openssh()
    try:
        postgres.find_bin_dir()
    except postgres.PostgresMissing as exc:
        pytest.skip(str(exc))
    out = io.StringIO()
    t0 = time.monotonic()
    code = run_demo(out=out, scenarios=["gateway_crash"], real_gateway=True)
    text = out.getvalue()
    print(text)
    print(f"demo took {time.monotonic() - t0:.0f}s")
    assert code == 0, text
    assert f"with the real OpenClaw gateway {openclaw.version()}" in text
    assert "memories written by the demo on the standby" in text
    assert "-> failover: took over: primary gateway_down" in text
    assert "-> primary: gave back: primary " in text
    assert "(the stand-in gateways, measured by the demo:" in text
    assert re.search(r"^all \d+ checks hold", text, re.M), text

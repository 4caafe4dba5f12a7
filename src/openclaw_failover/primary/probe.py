"""One probe of the primary's gateway, through SSH.

The gateway listens on the primary's loopback, so the probe logs in over SSH
and asks from there: preferably through a ``direct-tcpip`` channel (sshd opens
the TCP connection to the health URL for us, nothing runs on the primary), and
when the primary's sshd forbids forwarding, by running ``curl`` there.

Any HTTP answer below 500 means the gateway is alive (a 404 included).  The
result is classified so the caller can tell "the gateway refused / is down" from
"the gateway was slow" (a timeout: never fenced, counted only towards the longer
``check.slow_fall``) from "the whole host is gone" from "we cannot even check"
(the latter never fails over).
Imports stay light: no telegram, database or requests modules on this path.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass

import paramiko
from paramiko.ssh_exception import ChannelException, SSHException

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker, describe, one_line
from openclaw_failover.core.model import CommandResult, ProbeResult, ProbeStatus
from openclaw_failover.local.httpcheck import (
    BadAnswer,
    NoAnswer,
    get_status_over,
    is_alive,
    split_url,
)
from openclaw_failover.primary import remote

log = logging.getLogger(__name__)

DIRECT = "direct-tcpip"
CURL = "curl"
OPEN_CONNECT_FAILED = 2  # SSH_OPEN_CONNECT_FAILED: sshd could not connect to the target
CURL_MISSING = "port forwarding refused by the primary's sshd and curl is not installed there"
_CURL_REASONS = {
    6: "cannot resolve the gateway host",
    7: "connection refused on {target}",
    28: "no answer from {target} within {timeout:g}s",
    52: "{target} closed the connection without answering",
    56: "connection to {target} was reset",
}
_DOWN = ProbeStatus.GATEWAY_DOWN
_CURL_SLOW = 28  # curl: operation timed out
_CURL_MARGIN = 5.0  # seconds the SSH exec may take beyond curl's own --max-time


@dataclass(frozen=True)
class _Outcome:
    status: ProbeStatus
    detail: str
    method: str = ""
    http_status: int | None = None


class _UseCurl(Exception):
    """The primary's sshd refused the direct-tcpip channel: fall back to curl."""


def probe_primary(cfg: Config, mask: Masker) -> ProbeResult:
    """Probe the primary's gateway once; never raises.

    ``latency`` covers the whole attempt, SSH connect included.
    """
    start = time.monotonic()
    try:
        client = remote.connect(cfg)
    except remote.RemoteError as err:
        outcome = _Outcome(err.status, err.detail)
    except Exception as exc:  # connect() classifies everything; belt and braces
        outcome = _Outcome(ProbeStatus.PROBE_ERROR, f"probe failed: {describe(exc)}")
    else:
        try:
            return probe_over(cfg, client, mask, start)
        finally:
            with contextlib.suppress(Exception):
                client.close()
    return _result(outcome, start, mask)


def probe_over(
    cfg: Config, client: paramiko.SSHClient, mask: Masker, start: float, prefix: str = ""
) -> ProbeResult:
    """Probe the gateway over an already open SSH connection (``ocf watch`` keeps one);
    never raises.  ``prefix`` goes before the detail."""
    try:
        outcome = _probe_connected(cfg, client, mask)
    except Exception as exc:
        log.debug("probe failed unexpectedly", exc_info=True)
        outcome = _Outcome(ProbeStatus.PROBE_ERROR, f"probe failed: {describe(exc)}")
    if prefix:
        outcome = _Outcome(
            outcome.status, prefix + outcome.detail, outcome.method, outcome.http_status
        )
    return _result(outcome, start, mask)


def result_of(status: ProbeStatus, detail: str, start: float, mask: Masker) -> ProbeResult:
    """A ProbeResult for an outcome found outside this module (a failed reconnect)."""
    return _result(_Outcome(status, detail), start, mask)


def _result(outcome: _Outcome, start: float, mask: Masker) -> ProbeResult:
    result = ProbeResult(
        status=outcome.status,
        latency=time.monotonic() - start,
        detail=mask(one_line(outcome.detail)),
        method=outcome.method,
        http_status=outcome.http_status,
    )
    log.debug("probe %s: %s (%.2fs)", result.status.value, result.detail, result.latency)
    return result


def _probe_connected(cfg: Config, client: paramiko.SSHClient, mask: Masker) -> _Outcome:
    url = cfg.primary.gateway.health_url
    if url.startswith("https:"):  # no TLS over a raw channel: let curl do it
        return _probe_curl(cfg, client, mask, forwarding_refused=False)
    try:
        return _probe_direct(cfg, client)
    except _UseCurl as refused:
        log.debug("direct-tcpip refused (%s), falling back to curl", refused)
        return _probe_curl(cfg, client, mask, forwarding_refused=True)


def _probe_direct(cfg: Config, client: paramiko.SSHClient) -> _Outcome:
    url = cfg.primary.gateway.health_url
    timeout = cfg.check.probe_timeout
    host, port, _ = split_url(url)
    target = f"{host}:{port}"
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        return _lost(cfg)
    try:
        chan = transport.open_channel(DIRECT, (host, port), ("127.0.0.1", 0), timeout=timeout)
    except ChannelException as exc:
        if exc.code == OPEN_CONNECT_FAILED:
            return _Outcome(ProbeStatus.GATEWAY_DOWN, f"connection refused on {target}", DIRECT)
        raise _UseCurl(f"code {exc.code}: {exc.text}") from None
    except (SSHException, OSError, EOFError) as exc:
        if not transport.is_active():
            return _lost(cfg)
        if isinstance(exc, TimeoutError) or "timeout" in str(exc).lower():
            why = f"sshd did not open a channel to {target} within {timeout:g}s"
            return _Outcome(ProbeStatus.GATEWAY_SLOW, why, DIRECT)
        why = f"cannot open a channel to {target}: {describe(exc)}"
        return _Outcome(ProbeStatus.GATEWAY_DOWN, why, DIRECT)
    try:
        status = get_status_over(chan, url, timeout)
    except (OSError, EOFError, SSHException) as exc:
        if not transport.is_active():
            return _lost(cfg)
        why = _http_failure(exc, timeout)
        verdict = ProbeStatus.GATEWAY_SLOW if isinstance(exc, TimeoutError) else _DOWN
        return _Outcome(verdict, f"{why} from {target} via {DIRECT}", DIRECT)
    finally:
        chan.close()
    verdict = ProbeStatus.HEALTHY if is_alive(status) else ProbeStatus.GATEWAY_DOWN
    return _Outcome(verdict, f"HTTP {status} via {DIRECT}", DIRECT, status)


def _http_failure(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no HTTP answer within {timeout:g}s"
    if isinstance(exc, NoAnswer):
        return "connection closed without an HTTP answer"
    if isinstance(exc, BadAnswer):
        return "garbage instead of an HTTP answer"
    return f"no HTTP answer ({describe(exc)})"


def _lost(cfg: Config) -> _Outcome:
    return _Outcome(
        ProbeStatus.UNREACHABLE, f"SSH connection to {remote.endpoint(cfg)} lost during the probe"
    )


def curl_argv(url: str, timeout: float) -> list[str]:
    """The curl command run on the primary when port forwarding is refused."""
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", f"{timeout:g}"]
    if url.startswith("https:"):
        argv.append("-k")  # loopback health check, like httpcheck.get_status
    return [*argv, url]


def _probe_curl(
    cfg: Config, client: paramiko.SSHClient, mask: Masker, *, forwarding_refused: bool
) -> _Outcome:
    url = cfg.primary.gateway.health_url
    timeout = cfg.check.probe_timeout
    result = remote.run_remote(
        cfg, curl_argv(url, timeout), timeout=timeout + _CURL_MARGIN, mask=mask, client=client
    )
    transport = client.get_transport()
    if result.error and (transport is None or not transport.is_active()):
        return _lost(cfg)
    return _interpret_curl(result, url, timeout, forwarding_refused=forwarding_refused)


def _interpret_curl(
    result: CommandResult, url: str, timeout: float, *, forwarding_refused: bool = True
) -> _Outcome:
    """Classify the outcome of :func:`curl_argv` run on the primary."""
    host, port, _ = split_url(url)
    target = f"{host}:{port}"
    if result.error:
        return _Outcome(ProbeStatus.PROBE_ERROR, f"cannot run curl on the primary: {result.error}")
    if result.timed_out:
        return _Outcome(ProbeStatus.GATEWAY_SLOW, "curl on the primary timed out", CURL)
    missing = result.returncode in (126, 127) or (
        result.returncode != 0 and "not found" in result.stderr.lower()
    )
    if missing:
        why = CURL_MISSING if forwarding_refused else "curl is not installed on the primary"
        return _Outcome(ProbeStatus.PROBE_ERROR, why, CURL)
    match = re.search(r"(\d{3})\s*$", result.stdout)
    if result.returncode == 0 and match is None:
        shown = one_line(result.stdout)[:80]
        return _Outcome(ProbeStatus.PROBE_ERROR, f"curl printed no HTTP status: {shown!r}", CURL)
    code = int(match.group(1)) if match else 0
    if result.returncode != 0 or code == 0:
        reason = _CURL_REASONS.get(result.returncode or 0)
        text = (
            reason.format(target=target, timeout=timeout)
            if reason
            else f"curl exit {result.returncode}, HTTP {code:03d} from {target}"
        )
        verdict = ProbeStatus.GATEWAY_SLOW if result.returncode == _CURL_SLOW else _DOWN
        return _Outcome(verdict, f"{text} via curl", CURL, code or None)
    verdict = ProbeStatus.HEALTHY if is_alive(code) else ProbeStatus.GATEWAY_DOWN
    return _Outcome(verdict, f"HTTP {code} via curl", CURL, code)

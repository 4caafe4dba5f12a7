"""`ocf watch`: the same check, every few seconds, over one SSH connection kept open.

Each round is an ordinary tick (lock -> observe -> decide -> act -> persist ->
notify: the same state file, lock, events, notices and metrics as ``ocf check``;
cron or the timer may keep running beside it, the lock keeps them apart).  Only
the probe differs: it reuses one SSH transport instead of paying a handshake per
probe.

* The transport sends a keepalive every :data:`KEEPALIVE` seconds and its socket
  has ``TCP_USER_TIMEOUT`` :data:`DEAD_AFTER`: data left unacknowledged that long
  (the primary lost power, or the link went dark) kills it.  A dead transport is
  evidence, but not a verdict by itself: ocf reconnects at once, and only that
  reconnect's failure is classified (never answered / refused / slow, like any
  probe).  Until a reconnect succeeds, each attempt gets at most
  :data:`RECONNECT_TIMEOUT` seconds.
* A slow channel on a live transport is ``gateway_slow``: never a failure.
* Retries use ``min(check.retry_delay, interval)``; the next round is the next
  retry anyway.
* A round that changed nothing (same role, counters, probe class, outbox) is saved,
  and the dead-man's-switch pinged, only once per ``check.interval``: the state file
  is not rewritten every 2 s on the Pi's SD card.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from types import FrameType

import paramiko

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.model import ProbeResult
from openclaw_failover.engine.tick import Tick, TickResult
from openclaw_failover.primary import probe, remote

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0
KEEPALIVE = 1  # seconds of silence before paramiko sends an SSH keepalive
DEAD_AFTER = 3.0  # seconds data may stay unacknowledged before the kernel drops the link
RECONNECT_TIMEOUT = 3.0  # seconds for a reconnect after the transport died


class Transport:
    """One SSH connection to the primary, opened on demand and kept open."""

    def __init__(self) -> None:
        self.client: paramiko.SSHClient | None = None
        self.connects = 0
        self.lost = False  # the last connection died and no reconnect has succeeded yet

    def probe(self, cfg: Config, mask: Masker) -> ProbeResult:
        """Probe over the open transport; when it is (or turns out) dead, reconnect at
        once and let that attempt decide.  Never raises."""
        start = time.monotonic()
        lost = ""
        if self.client is not None and _active(self.client):
            result = probe.probe_over(cfg, self.client, mask, start)
            if _active(self.client):
                return result
            lost = f"the open SSH connection died ({result.detail}); reconnecting: "
        elif self.client is not None:
            lost = f"the open SSH connection to {remote.endpoint(cfg)} died; reconnecting: "
        self.close()
        self.lost = self.lost or bool(lost)
        if self.lost:
            timeout = min(cfg.primary.ssh.connect_timeout, RECONNECT_TIMEOUT)
            ssh = replace(cfg.primary.ssh, connect_timeout=timeout)
            cfg = replace(cfg, primary=replace(cfg.primary, ssh=ssh))
        try:
            self.client = remote.connect(cfg)
        except remote.RemoteError as err:
            return probe.result_of(err.status, lost + err.detail, start, mask)
        self.connects += 1
        self.lost = False
        _tune(self.client)
        result = probe.probe_over(cfg, self.client, mask, start, prefix=lost)
        if not _active(self.client):
            self.close()
        return result

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
        self.client = None


def _active(client: paramiko.SSHClient) -> bool:
    transport = client.get_transport()
    return transport is not None and transport.is_active()


def _tune(client: paramiko.SSHClient) -> None:
    transport = client.get_transport()
    if transport is None:
        return
    transport.set_keepalive(KEEPALIVE)
    sock = transport.sock
    if isinstance(sock, socket.socket) and hasattr(socket, "TCP_USER_TIMEOUT"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(DEAD_AFTER * 1000))


def watch_config(cfg: Config, interval: float) -> Config:
    """The config one round runs with: retries wait at most one interval."""
    check = replace(cfg.check, retry_delay=min(cfg.check.retry_delay, interval))
    coordination = cfg.coordination and replace(cfg.coordination, interval=interval)
    return replace(cfg, check=check, coordination=coordination)


def run_watch(
    cfg: Config,
    env: Mapping[str, str],
    *,
    interval: float = DEFAULT_INTERVAL,
    rounds: int | None = None,
    stop: threading.Event | None = None,
) -> TickResult | None:
    """Run rounds every ``interval`` seconds until SIGTERM/SIGINT (or ``rounds``)."""
    stop = stop or threading.Event()
    _on_signals(stop)
    cfg = watch_config(cfg, interval)
    transport = Transport()
    last_ping = last_save = 0.0
    result = None
    done = 0
    log.info("watching %s every %gs", remote.endpoint(cfg), interval)
    try:
        while not stop.is_set():
            started = time.monotonic()
            ping = started - last_ping >= cfg.check.interval
            save = started - last_save >= cfg.check.interval
            tick = Tick(cfg, env, probe=transport.probe, ping=ping, save_quiet=save)
            result = tick.run()
            last_ping = started if ping else last_ping
            last_save = started if save else last_save
            if result.acted or result.status:
                print(result.reason, flush=True)
            done += 1
            if rounds is not None and done >= rounds:
                break
            stop.wait(max(interval - (time.monotonic() - started), 0.05))
    finally:
        transport.close()
    log.info("watch stopped")
    return result


def _on_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def watch_unit(
    *,
    exec_start: str,
    env_file: str,
    state_dir: str,
    mkdir_dir: str,
    writable: list[str],
    stop_timeout: int,
    gateway_dir: str,
) -> str:
    """The user service for `ocf watch`; arguments already in unit-file syntax."""
    extra = "".join(f"ReadWritePaths={w}\n" for w in writable)
    return f"""\
# openclaw-failover: `ocf watch`, a check every 2 s over one SSH connection kept open.
# A user unit: install it as the user who owns the standby gateway, not as root.
#   ocf install systemd --watch     # writes it, daemon-reload, enable --now
# It uses the same state, lock and notices as `ocf check`: an old timer or cron entry
# may stay (the lock keeps them apart) but is no longer needed:
#   systemctl --user disable --now openclaw-failover.timer
[Unit]
Description=openclaw-failover: watch the primary OpenClaw gateway
After=network-online.target
# Never give up restarting (the default rate limit would stop after 5 quick failures).
StartLimitIntervalSec=0

[Service]
Type=simple
EnvironmentFile={env_file}
ExecStartPre=+/bin/mkdir -p {mkdir_dir}
ExecStart={exec_start}
Restart=always
RestartSec=5
# SIGTERM ends the watch after the current check (a takeover is not cut short).
TimeoutStopSec={stop_timeout}s
# A fallback gateway started from here is detached and must survive a restart.
KillMode=process
# Healthy-state cost, measured by bench/watch.py: well below these.
MemoryHigh=80M
MemoryMax=150M
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ReadWritePaths={state_dir}
ReadWritePaths={gateway_dir}
{extra}RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
SystemCallArchitectures=native

[Install]
WantedBy=default.target
"""

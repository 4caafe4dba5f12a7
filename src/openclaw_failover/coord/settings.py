"""The ``coordination:`` config section: its schema, its dataclass, its cross-checks.

Imported by ``openclaw_failover.config`` (stdlib and ``schema`` only: no requests, no
etcd client), so validating a config costs nothing more when the section is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openclaw_failover.schema import Key, Schema, Validator


@dataclass(frozen=True)
class CoordinationConfig:
    endpoints: tuple[str, ...]
    name: str  # this host's member name
    mode: str = "standby"  # "standby" | "primary" (ocf running on the primary itself)
    prefix: str = "/openclaw-failover/default"
    ttl: int = 30
    priority: int = 100  # higher wins among standbys
    priority_delay: float = 10.0
    timeout: float = 2.0
    on_coordinator_loss: str = "hold"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    user: str | None = None
    password: str | None = None
    interval: float = 120.0  # seconds between checks: check.interval, or ocf watch's


SCHEMA: Schema = {
    "endpoints": Key("strlist", "etcd client URLs (http(s)://host:port), tried in order", None),
    "name": Key("str", "this host's member name (unique in the cluster)", required=True),
    "mode": Key(
        "choice",
        "standby (ocf on a standby) or primary (ocf on the primary: holds the key)",
        "standby",
        choices=("standby", "primary"),
    ),
    "prefix": Key("str", "key prefix naming this cluster", "/openclaw-failover/default"),
    "ttl": Key(
        "int", "seconds the leader key lives without a refresh", 30, minimum=2, maximum=3600
    ),
    "priority": Key("int", "higher wins among standbys", 100, minimum=0, maximum=1000000),
    "priority_delay": Key(
        "number",
        "seconds a standby waits when a live standby has a higher priority",
        10,
        minimum=0,
        maximum=3600,
    ),
    "timeout": Key("number", "seconds per etcd request", 2, minimum=0.1, maximum=60),
    "on_coordinator_loss": Key(
        "choice",
        "without an etcd quorum: hold (no role change) or two_node (the two-host logic)",
        "hold",
        choices=("hold", "two_node"),
    ),
    "ca_file": Key("path", "CA bundle to verify etcd's certificate", None, must_exist=True),
    "cert_file": Key("path", "client certificate for etcd", None, must_exist=True),
    "key_file": Key("path", "its private key", None, must_exist=True),
    "user": Key("str", "etcd user (authentication on)", None),
    "password": Key("str", "its password, use ${VAR}", None, secret=True),
}


def check(v: Validator, section: dict[str, Any] | None) -> None:
    """Cross-checks: endpoints present and well-formed, pairs set together.  (The TTL must
    outlive the time between two checks: ``ocf watch --interval`` or check.interval for
    the timer/cron, which validation cannot tell apart; README says so.)"""
    if section is None:
        return
    endpoints = section.get("endpoints")
    if not endpoints:
        v.err("coordination.endpoints", "required: at least one etcd client URL")
    for i, endpoint in enumerate(endpoints or ()):
        parts = urlsplit(endpoint)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("http", "https") or not parts.hostname or not port:
            v.err(f"coordination.endpoints[{i}]", "expected http(s)://host:port")
    for a, b in (("cert_file", "key_file"), ("user", "password")):
        if (section.get(a) is None) != (section.get(b) is None):
            have, lack = (a, b) if section.get(a) is not None else (b, a)
            v.err(f"coordination.{lack}", f"required when coordination.{have} is set")


def build(section: dict[str, Any] | None, interval: float) -> CoordinationConfig | None:
    if section is None:
        return None
    return CoordinationConfig(
        **{**section, "endpoints": tuple(section["endpoints"] or ())}, interval=interval
    )

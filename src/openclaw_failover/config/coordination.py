"""The ``coordination:`` config section (leadership on etcd, see ``coord``): its schema
section, its dataclass, its cross-checks.  Part of the one schema (``config.schema``);
stdlib only, so validating a config costs nothing more when the section is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openclaw_failover.config.validate import Key, Section, Validator


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


NOTE = (
    'Optional: leadership on etcd, for three or more hosts (see README "Three hosts and\n'
    'more: leadership on etcd"). Whoever holds the leader key serves the gateway. Every\n'
    "host runs ocf with the same prefix and endpoints and its own name; the primary with\n"
    "mode: primary. Without this section ocf is the plain two-host failover."
)

COORDINATION = Section(
    {
        "endpoints": Key(
            "strlist",
            "etcd client URLs (http(s)://host:port), tried in order",
            None,
            example=[
                "http://192.168.0.199:2379",
                "http://192.168.0.42:2379",
                "http://192.168.0.50:2379",
            ],
        ),
        "name": Key(
            "str", "this host's member name (unique in the cluster)", required=True, example="pi"
        ),
        "mode": Key(
            "choice",
            "standby, or primary on the primary (it holds the key)",
            "standby",
            choices=("standby", "primary"),
        ),
        "prefix": Key(
            "str",
            "key prefix naming this cluster",
            "/openclaw-failover/default",
            example="/openclaw-failover/home",
        ),
        "ttl": Key(
            "int",
            "seconds the key lives unrefreshed; > check.interval",
            30,
            minimum=2,
            maximum=3600,
        ),
        "priority": Key("int", "higher wins among standbys", 100, minimum=0, maximum=1000000),
        "priority_delay": Key(
            "number",
            "seconds a lower-priority standby waits first",
            10,
            minimum=0,
            maximum=3600,
        ),
        "timeout": Key("number", "seconds per etcd request", 2, minimum=0.1, maximum=60),
        "on_coordinator_loss": Key(
            "choice",
            "no etcd quorum: hold (nobody changes role) or two_node",
            "hold",
            choices=("hold", "two_node"),
        ),
        "ca_file": Key(
            "path",
            "TLS: CA bundle of etcd's certificate (https endpoints)",
            None,
            must_exist=True,
            example="/etc/ocf/etcd-ca.pem",
        ),
        "cert_file": Key(
            "path",
            "TLS client certificate, with key_file",
            None,
            must_exist=True,
            example="/etc/ocf/etcd-client.pem",
        ),
        "key_file": Key(
            "path", "its private key", None, must_exist=True, example="/etc/ocf/etcd-client-key.pem"
        ),
        "user": Key("str", "etcd user (authentication on), with password", None, example="ocf"),
        "password": Key(
            "str", "its password, use ${VAR}", None, secret=True, example="${ETCD_PASSWORD}"
        ),
    },
    note=NOTE,
    optional=True,
    commented=True,
)


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

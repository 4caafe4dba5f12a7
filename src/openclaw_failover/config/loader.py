"""Load and validate the YAML configuration into frozen dataclasses.

The keys, their types, defaults and ranges are in schema.py (the one source: the
dataclass defaults below are read from it).  Validation walks the whole document and
collects *every* problem as ``At 'a.b': message`` before giving up, so a user
fixes their file in one go.  ``${VAR}`` in any string value is replaced from
the environment, so secrets stay out of the file.
"""

from __future__ import annotations

import os
import re
import stat
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from openclaw_failover.config import coordination, safeyaml
from openclaw_failover.config.coordination import CoordinationConfig
from openclaw_failover.config.schema import (
    DEFAULT_MESSAGES,
    SCHEMA,
    TEMPLATE_FIELDS,
    Command,
    default,
)
from openclaw_failover.config.secrets import Masker
from openclaw_failover.config.validate import Key, Schema, Validator
from openclaw_failover.config.validate import iter_keys as _iter_keys

SEARCH_PATHS = (
    "~/.config/openclaw-failover/config.yaml",
    "/etc/openclaw-failover/config.yaml",
)

__all__ = ["DEFAULT_MESSAGES", "Config", "ConfigError", "load_config", "parse_config"]


class ConfigError(Exception):
    """The configuration is missing or invalid; ``problems`` lists every error."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return f"{self.source}: {self.problems[0]}"
        lines = [f"{self.source}: {len(self.problems)} problems"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


# --------------------------------------------------------------------------- dataclasses

NO_WITNESSES = 0  # CheckConfig.witness_quorum without witnesses (the schema says None)


@dataclass(frozen=True)
class SSHConfig:
    user: str
    key_file: Path
    known_hosts: Path
    port: int = default("primary.ssh.port")
    connect_timeout: float = default("primary.ssh.connect_timeout")
    command_timeout: float = default("primary.ssh.command_timeout")


@dataclass(frozen=True)
class PrimaryGateway:
    health_url: str = default("primary.gateway.health_url")
    stop_command: Command | None = default("primary.gateway.stop_command")
    start_command: Command | None = default("primary.gateway.start_command")


@dataclass(frozen=True)
class PrimaryConfig:
    host: str
    ssh: SSHConfig
    name: str = default("primary.name")
    gateway: PrimaryGateway = field(default_factory=PrimaryGateway)


@dataclass(frozen=True)
class StandbyGateway:
    start_command: Command
    stop_command: Command
    health_url: str = default("standby.gateway.health_url")
    fallback_start_command: Command | None = default("standby.gateway.fallback_start_command")
    ready_url: str | None = default("standby.gateway.ready_url")  # None: health_url's, /readyz
    start_timeout: float = default("standby.gateway.start_timeout")
    stop_timeout: float = default("standby.gateway.stop_timeout")
    command_timeout: float = default("standby.gateway.command_timeout")


@dataclass(frozen=True)
class StandbyConfig:
    gateway: StandbyGateway
    name: str = default("standby.name")


@dataclass(frozen=True)
class CheckConfig:
    retries: int = default("check.retries")
    retry_delay: float = default("check.retry_delay")
    fall: int = default("check.fall")
    rise: int = default("check.rise")
    failback: str = default("check.failback")
    probe_timeout: float = default("check.probe_timeout")
    deadline: float = default("check.deadline")
    alert_interval: float = default("check.alert_interval")
    interval: float = default("check.interval")
    slow_fall: int = default("check.slow_fall")
    witnesses: tuple[str, ...] = default("check.witnesses")
    witness_quorum: int = NO_WITNESSES  # the schema's None: 1 with witnesses, else 0
    witness_timeout: float = default("check.witness_timeout")
    handoff_delay: float = default("check.handoff_delay")


@dataclass(frozen=True)
class TelegramConfig:
    token: str
    chat_id: int | str
    base_url: str = default("telegram.base_url")
    timeout: float = default("telegram.timeout")


@dataclass(frozen=True)
class DatabaseConfig:
    primary_dsn: str
    standby_dsn: str
    subscription: str = default("database.subscription")
    tables: tuple[str, ...] = default("database.tables")  # (): the publications' tables
    connect_timeout: float = default("database.connect_timeout")
    quarantine_days: float = default("database.quarantine_days")
    quarantine_max_mb: float = default("database.quarantine_max_mb")


@dataclass(frozen=True)
class FileRoot:
    path: Path  # on the standby
    remote_path: str  # on the primary, "~/" allowed


@dataclass(frozen=True)
class MonitoringConfig:
    metrics_textfile: Path | None = default("metrics.textfile")
    ping_url: str | None = default("monitoring.ping_url")
    ping_timeout: float = default("monitoring.ping_timeout")


@dataclass(frozen=True)
class Config:
    primary: PrimaryConfig
    standby: StandbyConfig
    check: CheckConfig = field(default_factory=CheckConfig)
    telegram: TelegramConfig | None = None
    state_dir: Path = field(default_factory=lambda: default("state_dir"))  # ~ when built
    messages: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MESSAGES))
    database: DatabaseConfig | None = None
    files: tuple[FileRoot, ...] = ()
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    coordination: CoordinationConfig | None = None  # leadership on etcd (see coord/)
    source: str = "<config>"
    # ${VAR} values whose name says TOKEN/PASSWORD/SECRET/KEY, the ping URL's path+query
    extra_secrets: tuple[str, ...] = ()
    given: frozenset[str] = frozenset()  # the keys the file sets ("check.interval")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs, output or notices."""
        out = [self.telegram.token] if self.telegram and self.telegram.token else []
        out += self.extra_secrets
        if self.database:
            out += [
                p
                for d in (self.database.primary_dsn, self.database.standby_dsn)
                if (p := dsn_password(d))
            ]
        return tuple(dict.fromkeys(out))

    @property
    def masker(self) -> Masker:
        """The one masker for these secrets (raw and URL-encoded); a command builds it once."""
        return Masker(self.secrets)


_DSN_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']+)")


def dsn_password(dsn: str) -> str:
    """The password in a libpq conninfo string or URL ('' when none), without psycopg."""
    if "://" in dsn:
        return unquote(urlsplit(dsn).password or "")
    match = _DSN_PASSWORD.search(dsn)
    if not match:
        return ""
    value = match.group(1)
    if value.startswith("'"):
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


# --------------------------------------------------------------------------- validation


def _check_templates(v: Validator, messages: dict[str, Any] | None) -> None:
    """Known fields only, and no conversion or format spec: ``{time:>100000}`` would
    make a huge notice (and take a minute to tidy up)."""
    for name, text in (messages or {}).items():
        if not isinstance(text, str):
            continue
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            v.err(f"messages.{name}", f"bad template: {exc}")
            continue
        names = {f for _, f, _, _ in parsed if f is not None}
        if any(spec or conv for _, f, spec, conv in parsed if f is not None):
            v.err(f"messages.{name}", "a field takes no format spec or conversion: write {time}")
            continue
        unknown = sorted(n for n in names if n not in TEMPLATE_FIELDS)
        if unknown:
            allowed = ", ".join("{" + f + "}" for f in sorted(TEMPLATE_FIELDS))
            v.err(f"messages.{name}", f"unknown field {{{unknown[0]}}} (allowed: {allowed})")


def _check_witnesses(v: Validator, check: dict[str, Any]) -> None:
    witnesses = check.get("witnesses") or ()
    for i, witness in enumerate(witnesses):
        problem = witness_problem(witness)
        if problem:
            v.err(f"check.witnesses[{i}]", problem)
    quorum = check.get("witness_quorum")
    if quorum is not None and not witnesses:
        v.err("check.witness_quorum", "set, but check.witnesses is empty")
    elif quorum is not None and quorum > len(witnesses):
        v.err("check.witness_quorum", f"{quorum} is more than the {len(witnesses)} witnesses")


def witness_problem(witness: str) -> str:
    """Why ``witness`` is not ``host:port`` or an http(s) URL ('' when it is fine)."""
    if "://" in witness:
        parts = urlsplit(witness)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"expected host:port or an http(s) URL, got {witness!r}"
        return ""
    host, sep, port = witness.rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        return f"expected host:port (port 1-65535) or an http(s) URL, got {witness!r}"
    return ""


# --------------------------------------------------------------------------- public API


def find_config(explicit: str | None, env: Mapping[str, str]) -> Path:
    """Return the config file to use, in the documented search order."""
    if explicit:
        return Path(explicit).expanduser()
    if env.get("OCF_CONFIG"):
        return Path(env["OCF_CONFIG"]).expanduser()
    for candidate in SEARCH_PATHS:
        path = Path(candidate).expanduser()
        if path.is_file():
            return path
    tried = ", ".join(SEARCH_PATHS)
    raise ConfigError(
        "config",
        [
            f"no config file found (tried --config, $OCF_CONFIG, {tried}); "
            "create one with `ocf init`, or start from `ocf config example`"
        ],
    )


def load_config(
    path: Path, env: Mapping[str, str] | None = None, *, home: Path | None = None
) -> Config:
    """Read, validate and build the configuration; raise ConfigError listing every problem.

    ``home``: what ``~`` in a path means (another user's home, for `ocf install`)."""
    env = os.environ if env is None else env
    source = str(path)
    return parse_config(read_yaml(path, source), source, env, home=home)


def read_yaml(path: Path, source: str) -> Any:
    """The YAML document in ``path`` (see safeyaml: no aliases, duplicates, huge files)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO never hangs
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError(source, ["cannot read config: not a regular file"])
            data = fh.read(safeyaml.MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(source, [f"cannot read config: {exc.strerror or exc}"]) from None
    except ValueError as exc:  # a NUL in the path
        raise ConfigError(source, [f"cannot read config: {exc}"]) from None
    try:
        return safeyaml.load(data)
    except safeyaml.Refused as exc:
        raise ConfigError(source, [str(exc)]) from None


def parse_config(
    data: Any, source: str, env: Mapping[str, str], *, home: Path | None = None
) -> Config:
    v = Validator(env, home=home)
    doc = v.section(SCHEMA, data if data is not None else {}, "")
    _check_templates(v, doc.get("messages"))
    _check_witnesses(v, doc.get("check") or {})
    coordination.check(v, doc.get("coordination"))
    if v.problems:
        mask = Masker([*v.secrets, *_dsn_passwords(data)])
        raise ConfigError(source, [mask(p) for p in v.problems])
    built = _build(doc, source)
    return replace(built, extra_secrets=tuple(v.secrets), given=frozenset(v.given))


def _dsn_passwords(data: Any) -> list[str]:
    """Passwords in the raw database section: masked in problems even when it is invalid."""
    section = data.get("database") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        return []
    dsns = [section.get(k) for k in ("primary_dsn", "standby_dsn")]
    return [p for d in dsns if isinstance(d, str) for p in [_safe_password(d)] if p]


def _safe_password(dsn: str) -> str:
    try:
        return dsn_password(dsn)
    except ValueError:
        return ""


def _build(doc: dict[str, Any], source: str) -> Config:
    p, s, c, t = doc["primary"], doc["standby"], doc["check"], doc["telegram"]
    telegram = None
    if t is not None:
        telegram = TelegramConfig(
            token=t["token"],
            chat_id=t["chat_id"],
            base_url=t["base_url"],
            timeout=t["timeout"],
        )
    messages = dict(DEFAULT_MESSAGES)
    messages.update({k: val for k, val in (doc["messages"] or {}).items() if val})
    return Config(
        primary=PrimaryConfig(
            name=p["name"],
            host=p["host"],
            ssh=SSHConfig(**p["ssh"]),
            gateway=PrimaryGateway(**p["gateway"]),
        ),
        standby=StandbyConfig(name=s["name"], gateway=StandbyGateway(**s["gateway"])),
        check=_check_config(c),
        telegram=telegram,
        state_dir=doc["state_dir"],
        messages=messages,
        database=_database(doc["database"]),
        files=tuple(FileRoot(f["path"], f["remote_path"]) for f in doc["files"] or ()),
        monitoring=_monitoring(doc["metrics"], doc["monitoring"]),
        coordination=coordination.build(doc["coordination"], c["interval"]),
        source=source,
    )


def _monitoring(metrics: dict[str, Any] | None, ping: dict[str, Any] | None) -> MonitoringConfig:
    fields = {"metrics_textfile": metrics["textfile"]} if metrics else {}
    return MonitoringConfig(**fields, **(ping or {}))


def _check_config(c: dict[str, Any]) -> CheckConfig:
    witnesses = tuple(c.pop("witnesses") or ())
    quorum = c.pop("witness_quorum") or (1 if witnesses else NO_WITNESSES)
    return CheckConfig(**c, witnesses=witnesses, witness_quorum=quorum)


def _database(d: dict[str, Any] | None) -> DatabaseConfig | None:
    if d is None:
        return None
    return DatabaseConfig(
        primary_dsn=d["primary_dsn"],
        standby_dsn=d["standby_dsn"],
        subscription=d["subscription"],
        tables=tuple(d["tables"] or ()),
        connect_timeout=d["connect_timeout"],
        quarantine_days=d["quarantine_days"],
        quarantine_max_mb=d["quarantine_max_mb"],
    )


def iter_keys(schema: Schema = SCHEMA, prefix: str = "") -> list[tuple[str, Key]]:
    """Every leaf key of the config schema as (dotted path, Key): for docs and tests."""
    return _iter_keys(schema, prefix)

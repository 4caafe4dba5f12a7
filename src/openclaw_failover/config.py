"""Load and validate the YAML configuration.

The schema below (see schema.py) is declarative: every key has a type, a default
(or is required) and a one-line description.  Validation walks the whole document and
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

from openclaw_failover import safeyaml
from openclaw_failover.coord import settings as coord_settings
from openclaw_failover.coord.settings import CoordinationConfig
from openclaw_failover.runner import Masker
from openclaw_failover.schema import Command, Key, ListOf, Schema, Validator
from openclaw_failover.schema import iter_keys as _iter_keys

SEARCH_PATHS = (
    "~/.config/openclaw-failover/config.yaml",
    "/etc/openclaw-failover/config.yaml",
)
DEFAULT_STATE_DIR = "~/.local/state/openclaw-failover"
TELEGRAM_BASE_URL = "https://api.telegram.org/bot"

# Notice kinds and their default texts.  Fields available to every template:
# {primary} {standby} {reason} {time} {detail}
DEFAULT_MESSAGES: dict[str, str] = {
    "took_over": "OpenClaw on {primary} OFFLINE - {standby} takes over! ({reason}; {time})",
    "gave_back": "{primary} ONLINE - {standby} stopped, gateway back on {primary}. "
    "{detail} ({time})",
    "failover_failed": "FAILOVER FAILED - {standby} could not start the gateway! {detail} ({time})",
    "giveback_failed": "GIVE-BACK FAILED - {standby} keeps serving. {detail} ({time})",
    "syncback_failed": "SYNC-BACK FAILED - data stays on {standby}, retrying every check. "
    "{detail} ({time})",
    "auth_failure": "ALERT: {standby} cannot check {primary}: {detail}. "
    "Not failing over; fix SSH access. ({time})",
    "two_gateways": "WARNING: {primary} serves, but a gateway also answers on {standby}: "
    "two bots may poll Telegram. ocf did not start it; stop it. ({time})",
    "primary_back": "{primary} is reachable again; failback is manual: "
    "run 'ocf release' on {standby}. ({time})",
    "both_serving": "TWO BOTS - {primary}'s gateway served again while {standby}'s still "
    "answered; ocf stopped one of them. ({reason}; {time})",
    "isolated": "{standby} was cut off and did NOT take over from {primary}: {reason}. "
    "{detail} ({time})",
    # coordination (etcd): {detail} names the host the notice is about
    "leader_changed": "Leader is now {detail}: it serves the gateway. ({reason}; {time})",
    "coordinator_lost": "{detail} cannot reach an etcd quorum. ({reason}; {time})",
    "fenced_self": "{detail} FENCED ITSELF - it could not refresh its leader key, its gateway "
    "is stopped. ({reason}; {time})",
}
TEMPLATE_FIELDS = frozenset({"primary", "standby", "reason", "time", "detail"})


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


@dataclass(frozen=True)
class SSHConfig:
    user: str
    key_file: Path
    known_hosts: Path
    port: int = 22
    connect_timeout: float = 10.0
    command_timeout: float = 30.0


@dataclass(frozen=True)
class PrimaryGateway:
    health_url: str = "http://127.0.0.1:18789/healthz"
    stop_command: Command | None = None
    start_command: Command | None = None


@dataclass(frozen=True)
class PrimaryConfig:
    host: str
    ssh: SSHConfig
    name: str = "primary"
    gateway: PrimaryGateway = field(default_factory=PrimaryGateway)


@dataclass(frozen=True)
class StandbyGateway:
    start_command: Command
    stop_command: Command
    health_url: str = "http://127.0.0.1:18789/healthz"
    fallback_start_command: Command | None = None
    ready_url: str | None = None  # None: health_url's host and port, path /readyz
    start_timeout: float = 60.0
    stop_timeout: float = 30.0
    command_timeout: float = 30.0


@dataclass(frozen=True)
class StandbyConfig:
    gateway: StandbyGateway
    name: str = "standby"


@dataclass(frozen=True)
class CheckConfig:
    retries: int = 1
    retry_delay: float = 10.0
    fall: int = 1
    rise: int = 1
    failback: str = "auto"
    probe_timeout: float = 5.0
    deadline: float = 100.0
    alert_interval: float = 3600.0
    interval: float = 120.0  # how often cron / the timer runs `ocf check` (status, doctor)
    slow_fall: int = 5  # checks in a row without a healthy answer, any of them slow
    witnesses: tuple[str, ...] = ()  # "host:port" (TCP connect) or http(s) URLs
    witness_quorum: int = 0  # 0 = no witnesses configured
    witness_timeout: float = 2.0
    handoff_delay: float = 0.0  # seconds between stopping ours and restarting the primary's


@dataclass(frozen=True)
class TelegramConfig:
    token: str
    chat_id: int | str
    base_url: str = TELEGRAM_BASE_URL
    timeout: float = 10.0


@dataclass(frozen=True)
class DatabaseConfig:
    primary_dsn: str
    standby_dsn: str
    subscription: str = "memu_sub"
    tables: tuple[str, ...] = ()  # empty: every table the subscription's publications carry
    connect_timeout: float = 10.0
    quarantine_days: float = 30.0
    quarantine_max_mb: float = 1024.0


@dataclass(frozen=True)
class FileRoot:
    path: Path  # on the standby
    remote_path: str  # on the primary, "~/" allowed


@dataclass(frozen=True)
class MonitoringConfig:
    metrics_textfile: Path | None = None
    ping_url: str | None = None
    ping_timeout: float = 5.0


@dataclass(frozen=True)
class Config:
    primary: PrimaryConfig
    standby: StandbyConfig
    check: CheckConfig = field(default_factory=CheckConfig)
    telegram: TelegramConfig | None = None
    state_dir: Path = field(default_factory=lambda: Path(DEFAULT_STATE_DIR).expanduser())
    messages: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MESSAGES))
    database: DatabaseConfig | None = None
    files: tuple[FileRoot, ...] = ()
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    coordination: CoordinationConfig | None = None  # leadership on etcd (coord/)
    source: str = "<config>"
    # ${VAR} values whose name says TOKEN/PASSWORD/SECRET/KEY, the ping URL's path+query
    extra_secrets: tuple[str, ...] = ()

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


# --------------------------------------------------------------------------- schema


SSH_SCHEMA: Schema = {
    "user": Key("str", "SSH user on the primary", required=True),
    "port": Key("int", "SSH port", 22, minimum=1, maximum=65535),
    "key_file": Key("path", "private key (unencrypted)", "~/.ssh/id_ed25519", must_exist=True),
    "known_hosts": Key(
        "path", "known_hosts holding the primary's host key", "~/.ssh/known_hosts", must_exist=True
    ),
    "connect_timeout": Key(
        "number", "seconds for TCP connect, banner and auth", 10, minimum=0.1, maximum=600
    ),
    "command_timeout": Key(
        "number", "seconds for a command run over SSH", 30, minimum=0.1, maximum=3600
    ),
}

SCHEMA: Schema = {
    "primary": {
        "name": Key("str", "name used in messages", "primary"),
        "host": Key("str", "address of the primary", required=True),
        "ssh": SSH_SCHEMA,
        "gateway": {
            "health_url": Key(
                "url", "gateway URL as seen on the primary", "http://127.0.0.1:18789/healthz"
            ),
            "stop_command": Key("command", "run over SSH to fence a half-alive primary", None),
            "start_command": Key("command", "run over SSH at give-back after fencing", None),
        },
    },
    "standby": {
        "name": Key("str", "name used in messages", "standby"),
        "gateway": {
            "health_url": Key("url", "local gateway URL", "http://127.0.0.1:18789/healthz"),
            "ready_url": Key(
                "url",
                "readiness URL checked after a takeover (default: health_url's host and port, "
                "path /readyz; a 404 means the gateway has none)",
                None,
            ),
            "start_command": Key(
                "command",
                "starts the local gateway",
                "systemctl --user start openclaw-gateway.service",
            ),
            "fallback_start_command": Key("command", "direct start if start_command fails", None),
            "stop_command": Key(
                "command",
                "stops the local gateway",
                "systemctl --user stop openclaw-gateway.service",
            ),
            # The real gateway answers /healthz after about 8-16 s (45 s on a loaded 2-core box).
            "start_timeout": Key(
                "number", "seconds to wait for the local gateway", 60, minimum=0, maximum=3600
            ),
            "stop_timeout": Key(
                "number", "seconds to wait for it to stop", 30, minimum=0, maximum=3600
            ),
            "command_timeout": Key(
                "number", "seconds a start/stop command may run", 30, minimum=0.1, maximum=3600
            ),
        },
    },
    "check": {
        "retries": Key(
            "int", "extra probes after a failed one, per tick", 1, minimum=0, maximum=100
        ),
        "retry_delay": Key("number", "seconds between probes", 10, minimum=0, maximum=3600),
        "fall": Key("int", "failed ticks before taking over", 1, minimum=1, maximum=10000),
        "rise": Key("int", "healthy ticks before giving back", 1, minimum=1, maximum=10000),
        "failback": Key("choice", "auto or manual", "auto", choices=("auto", "manual")),
        "probe_timeout": Key(
            "number", "seconds for one HTTP health request", 5, minimum=0.1, maximum=600
        ),
        "deadline": Key(
            "number",
            "a whole tick is aborted after this many seconds",
            100,
            minimum=1,
            maximum=86400,
        ),
        "alert_interval": Key(
            "number", "seconds between repeated alerts", 3600, minimum=0, maximum=31 * 86400
        ),
        "interval": Key(
            "number", "seconds between scheduled checks (cron/timer)", 120, minimum=1, maximum=86400
        ),
        "slow_fall": Key(
            "int",
            "checks in a row where the primary answered but too slowly (or not at all) "
            "before taking over; never fenced",
            5,
            minimum=2,
            maximum=10000,
        ),
        "witnesses": Key(
            "strlist", "host:port (TCP connect) or http(s) URLs this standby must reach", []
        ),
        "witness_quorum": Key(
            "int",
            "witnesses that must answer before a takeover (default 1)",
            None,
            minimum=1,
            maximum=100,
        ),
        "witness_timeout": Key("number", "seconds per witness", 2, minimum=0.1, maximum=60),
        "handoff_delay": Key(
            "number",
            "seconds between stopping this standby's gateway and restarting the primary's "
            "(Telegram's long poll)",
            0,
            minimum=0,
            maximum=600,
        ),
    },
    "telegram": {
        "token": Key("str", "bot token, use ${VAR}", required=True, secret=True),
        "chat_id": Key("chat", "chat to notify", required=True),
        "base_url": Key("url", "Bot API base, everything before the token", TELEGRAM_BASE_URL),
        "timeout": Key("number", "seconds per Bot API request", 10, minimum=0.1, maximum=600),
    },
    "messages": {
        name: Key("str", f"template for the {name} notice", text, multiline=True)
        for name, text in DEFAULT_MESSAGES.items()
    },
    "state_dir": Key("path", "state, events, logs", DEFAULT_STATE_DIR),
    "metrics": {
        "textfile": Key("path", "Prometheus textfile written each check (node_exporter)", None),
    },
    "monitoring": {
        "ping_url": Key("url", "dead-man's-switch URL pinged after each check", None, secret=True),
        "ping_timeout": Key("number", "seconds for the ping", 5, minimum=0.1, maximum=600),
    },
    "database": {
        "primary_dsn": Key("str", "libpq conninfo or URL of the primary's memu", required=True),
        "standby_dsn": Key("str", "libpq conninfo or URL of the standby's memu", required=True),
        "subscription": Key("str", "the standby's subscription", "memu_sub"),
        "tables": Key("strlist", "tables to sync (default: the publications' tables)", []),
        "connect_timeout": Key(
            "number", "seconds to connect to either database", 10, minimum=1, maximum=600
        ),
        "quarantine_days": Key(
            "number",
            "days a quarantine batch (rows sync-back replaced or deleted) is kept",
            30,
            minimum=1,
            maximum=3650,
        ),
        "quarantine_max_mb": Key(
            "number",
            "size cap of the quarantine folder in MB (oldest batches go first)",
            1024,
            minimum=1,
            maximum=1048576,
        ),
    },
    "files": ListOf(
        {
            "path": Key("path", "file or folder on the standby", required=True),
            "remote_path": Key("str", "the same on the primary", required=True),
        },
        "workspace files synced back standby -> primary",
    ),
    "coordination": coord_settings.SCHEMA,
}
OPTIONAL_SECTIONS = frozenset(
    {"telegram", "messages", "database", "metrics", "monitoring", "coordination"}
)
NOT_BUILT: dict[str, str] = {}


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


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and build the configuration; raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    source = str(path)
    return parse_config(read_yaml(path, source), source, env)


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


def parse_config(data: Any, source: str, env: Mapping[str, str]) -> Config:
    v = Validator(env, optional_sections=OPTIONAL_SECTIONS, not_built=NOT_BUILT)
    doc = v.section(SCHEMA, data if data is not None else {}, "")
    _check_templates(v, doc.get("messages"))
    _check_witnesses(v, doc.get("check") or {})
    coord_settings.check(v, doc.get("coordination"))
    if v.problems:
        mask = Masker([*v.secrets, *_dsn_passwords(data)])
        raise ConfigError(source, [mask(p) for p in v.problems])
    return replace(_build(doc, source), extra_secrets=tuple(v.secrets))


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
        monitoring=MonitoringConfig(
            metrics_textfile=(doc["metrics"] or {}).get("textfile"),
            ping_url=(doc["monitoring"] or {}).get("ping_url"),
            ping_timeout=(doc["monitoring"] or {}).get("ping_timeout") or 5.0,
        ),
        coordination=coord_settings.build(doc["coordination"], c["interval"]),
        source=source,
    )


def _check_config(c: dict[str, Any]) -> CheckConfig:
    witnesses = tuple(c.pop("witnesses") or ())
    quorum = c.pop("witness_quorum") or (1 if witnesses else 0)
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

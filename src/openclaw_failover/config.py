"""Load and validate the YAML configuration.

The schema below is declarative: every key has a type, a default (or is
required) and a one-line description.  Validation walks the whole document and
collects *every* problem as ``At 'a.b': message`` before giving up, so a user
fixes their file in one go.  ``${VAR}`` in any string value is replaced from
the environment, so secrets stay out of the file.
"""

from __future__ import annotations

import os
import re
import shlex
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

Command = tuple[str, ...]

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
    "primary_back": "{primary} is reachable again; failback is manual: "
    "run 'ocf release' on {standby}. ({time})",
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
    health_url: str = "http://127.0.0.1:18789/"
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
    health_url: str = "http://127.0.0.1:18789/"
    fallback_start_command: Command | None = None
    start_timeout: float = 30.0
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


@dataclass(frozen=True)
class TelegramConfig:
    token: str
    chat_id: int | str
    base_url: str = TELEGRAM_BASE_URL
    timeout: float = 10.0


@dataclass(frozen=True)
class Config:
    primary: PrimaryConfig
    standby: StandbyConfig
    check: CheckConfig = field(default_factory=CheckConfig)
    telegram: TelegramConfig | None = None
    state_dir: Path = field(default_factory=lambda: Path(DEFAULT_STATE_DIR).expanduser())
    messages: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MESSAGES))
    source: str = "<config>"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs, output or notices."""
        return (self.telegram.token,) if self.telegram and self.telegram.token else ()


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Key:
    """One leaf of the schema."""

    kind: str  # str | int | number | bool | command | path | url | chat | choice
    doc: str
    default: Any = None
    required: bool = False
    minimum: float | None = None
    choices: tuple[str, ...] = ()
    must_exist: bool = False
    secret: bool = False


Schema = dict[str, "Key | Schema"]

SSH_SCHEMA: Schema = {
    "user": Key("str", "SSH user on the primary", required=True),
    "port": Key("int", "SSH port", 22, minimum=1),
    "key_file": Key("path", "private key (unencrypted)", "~/.ssh/id_ed25519", must_exist=True),
    "known_hosts": Key(
        "path", "known_hosts holding the primary's host key", "~/.ssh/known_hosts", must_exist=True
    ),
    "connect_timeout": Key("number", "seconds for TCP connect, banner and auth", 10, minimum=0.1),
    "command_timeout": Key("number", "seconds for a command run over SSH", 30, minimum=0.1),
}

SCHEMA: Schema = {
    "primary": {
        "name": Key("str", "name used in messages", "primary"),
        "host": Key("str", "address of the primary", required=True),
        "ssh": SSH_SCHEMA,
        "gateway": {
            "health_url": Key(
                "url", "gateway URL as seen on the primary", "http://127.0.0.1:18789/"
            ),
            "stop_command": Key("command", "run over SSH to fence a half-alive primary", None),
            "start_command": Key("command", "run over SSH at give-back after fencing", None),
        },
    },
    "standby": {
        "name": Key("str", "name used in messages", "standby"),
        "gateway": {
            "health_url": Key("url", "local gateway URL", "http://127.0.0.1:18789/"),
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
            "start_timeout": Key("number", "seconds to wait for the local gateway", 30, minimum=0),
            "stop_timeout": Key("number", "seconds to wait for it to stop", 30, minimum=0),
            "command_timeout": Key(
                "number", "seconds a start/stop command may run", 30, minimum=0.1
            ),
        },
    },
    "check": {
        "retries": Key("int", "extra probes after a failed one, per tick", 1, minimum=0),
        "retry_delay": Key("number", "seconds between probes", 10, minimum=0),
        "fall": Key("int", "failed ticks before taking over", 1, minimum=1),
        "rise": Key("int", "healthy ticks before giving back", 1, minimum=1),
        "failback": Key("choice", "auto or manual", "auto", choices=("auto", "manual")),
        "probe_timeout": Key("number", "seconds for one HTTP health request", 5, minimum=0.1),
        "deadline": Key(
            "number", "a whole tick is aborted after this many seconds", 100, minimum=1
        ),
        "alert_interval": Key("number", "seconds between repeated alerts", 3600, minimum=0),
    },
    "telegram": {
        "token": Key("str", "bot token, use ${VAR}", required=True, secret=True),
        "chat_id": Key("chat", "chat to notify", required=True),
        "base_url": Key("url", "Bot API base, everything before the token", TELEGRAM_BASE_URL),
        "timeout": Key("number", "seconds per Bot API request", 10, minimum=0.1),
    },
    "messages": {
        name: Key("str", f"template for the {name} notice", text)
        for name, text in DEFAULT_MESSAGES.items()
    },
    "state_dir": Key("path", "state, events, logs", DEFAULT_STATE_DIR),
}
OPTIONAL_SECTIONS = frozenset({"telegram", "messages"})
NOT_BUILT = {
    "database": "sync-back of database rows is not built yet (issue #3); remove this section",
    "files": "sync-back of workspace files is not built yet (issue #3); remove this section",
}

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


# --------------------------------------------------------------------------- validation


class _Validator:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def err(self, path: str, msg: str) -> None:
        self.problems.append(f"At '{path}': {msg}")

    def section(self, schema: Schema, data: Any, path: str) -> dict[str, Any]:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.err(path or "<top>", f"expected a mapping, got {_typename(data)}")
            return {}
        out: dict[str, Any] = {}
        for key in data:
            if key not in schema:
                where = f"{path}.{key}" if path else str(key)
                if not path and key in NOT_BUILT:
                    self.err(where, NOT_BUILT[key])
                else:
                    self.err(where, f"unknown key (expected one of: {', '.join(schema)})")
        for key, sub in schema.items():
            where = f"{path}.{key}" if path else key
            present = key in data and data[key] is not None
            if isinstance(sub, dict):
                if not path and key in OPTIONAL_SECTIONS and not present:
                    out[key] = None
                else:
                    out[key] = self.section(sub, data.get(key), where)
            elif not present:
                if sub.required:
                    self.err(where, "required key is missing")
                out[key] = self.leaf(sub, sub.default, where) if sub.default is not None else None
            else:
                out[key] = self.leaf(sub, data[key], where)
        return out

    def leaf(self, key: Key, value: Any, path: str) -> Any:
        before = len(self.problems)
        value = self.expand(value, path)
        if len(self.problems) > before:  # an unset ${VAR}: one error is enough
            return None
        check = _CHECKS[key.kind]
        try:
            result = check(key, value)
        except ValueError as exc:
            self.err(path, str(exc))
            return None
        if key.minimum is not None and isinstance(result, int | float) and result < key.minimum:
            self.err(path, f"must be at least {key.minimum:g}, got {result}")
        if key.must_exist and isinstance(result, Path) and not result.is_file():
            self.err(path, f"file not found: {result}")
        return result

    def expand(self, value: Any, path: str) -> Any:
        if isinstance(value, list):
            return [self.expand(v, path) for v in value]
        if not isinstance(value, str):
            return value

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.env:
                self.err(path, f"environment variable {name} is not set")
                return ""
            return self.env[name]

        return _ENV_RE.sub(sub, value)


def _typename(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _as_str(key: Key, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {_typename(value)}")
    return value


def _as_int(key: Key, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {_typename(value)}")
    return value


def _as_number(key: Key, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number of seconds, got {_typename(value)}")
    return float(value)


def _as_bool(key: Key, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_typename(value)}")
    return value


def _as_choice(key: Key, value: Any) -> str:
    if value not in key.choices:
        raise ValueError(f"expected one of {', '.join(key.choices)}, got {value!r}")
    return str(value)


def _as_path(key: Key, value: Any) -> Path:
    return Path(_as_str(key, value)).expanduser()


def _as_url(key: Key, value: Any) -> str:
    text = _as_str(key, value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}")
    return text


def _as_chat(key: Key, value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+|@\w{4,}", value.strip()):
        text = value.strip()
        return int(text) if text.lstrip("-").isdigit() else text
    raise ValueError("expected a numeric chat id or @channelname")


def _as_command(key: Key, value: Any) -> Command:
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split command: {exc}") from None
    elif isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        argv = [str(v) for v in value]
    else:
        raise ValueError(
            f"expected a command string or a list of arguments, got {_typename(value)}"
        )
    if not argv or not argv[0]:
        raise ValueError("command is empty")
    return tuple(argv)


_CHECKS: dict[str, Callable[[Key, Any], Any]] = {
    "str": _as_str,
    "int": _as_int,
    "number": _as_number,
    "bool": _as_bool,
    "choice": _as_choice,
    "path": _as_path,
    "url": _as_url,
    "chat": _as_chat,
    "command": _as_command,
}


def _check_templates(v: _Validator, messages: dict[str, Any] | None) -> None:
    for name, text in (messages or {}).items():
        if not isinstance(text, str):
            continue
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        except ValueError as exc:
            v.err(f"messages.{name}", f"bad template: {exc}")
            continue
        unknown = sorted(n for n in names if n not in TEMPLATE_FIELDS)
        if unknown:
            allowed = ", ".join("{" + f + "}" for f in sorted(TEMPLATE_FIELDS))
            v.err(f"messages.{name}", f"unknown field {{{unknown[0]}}} (allowed: {allowed})")


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
    raise ConfigError("config", [f"no config file found (tried --config, $OCF_CONFIG, {tried})"])


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and build the configuration; raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f"cannot read config: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(source, [f"not valid YAML{where}: {problem}"]) from None
    return parse_config(data, source, env)


def parse_config(data: Any, source: str, env: Mapping[str, str]) -> Config:
    v = _Validator(env)
    doc = v.section(SCHEMA, data if data is not None else {}, "")
    _check_templates(v, doc.get("messages"))
    if v.problems:
        raise ConfigError(source, v.problems)
    return _build(doc, source)


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
        check=CheckConfig(**c),
        telegram=telegram,
        state_dir=doc["state_dir"],
        messages=messages,
        source=source,
    )


def iter_keys(schema: Schema = SCHEMA, prefix: str = "") -> list[tuple[str, Key]]:
    """Every leaf key of the schema as (dotted path, Key): for docs and tests."""
    out: list[tuple[str, Key]] = []
    for name, sub in schema.items():
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(sub, dict):
            out += iter_keys(sub, path)
        else:
            out.append((path, sub))
    return out

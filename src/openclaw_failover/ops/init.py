"""`ocf init`: write a working config on the standby from a few answers.

Pieces: :class:`Answers` (what the user said, or the flags with ``--yes``),
:func:`build_config` (the config document), :func:`write_env_file` (secrets,
0600), :func:`write_config` (never overwrites without keeping the old file),
local discovery (:func:`local_gateway`, :func:`find_subscription`,
:func:`default_files`).  The conversation itself is in :mod:`cli_init`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from openclaw_failover.config import schema
from openclaw_failover.config.envfile import read_env_file as read_env_file  # (re-exported)
from openclaw_failover.ops.init_ssh import DEFAULT_PORT, GATEWAY_UNIT, InitError

TOKEN_VAR = "OCF_TELEGRAM_TOKEN"
DB_PASSWORD_VAR = "MEMU_PASSWORD"
HEADER = """\
# ocf configuration, written by `ocf init` on {when}.
# Every key: `ocf config example`.  Secrets are in the env file beside this one
# ({env_file}); ${{VAR}} values come from it (the timer and cron load it).
"""


@dataclass
class Answers:
    host: str
    user: str
    port: int = schema.key("primary.ssh.port").default
    key_file: str = schema.key("primary.ssh.key_file").default
    known_hosts: str = schema.key("primary.ssh.known_hosts").default
    primary_name: str = schema.key("primary.name").default
    standby_name: str = schema.key("standby.name").default
    primary_health_url: str = f"http://127.0.0.1:{DEFAULT_PORT}/"
    primary_stop: str | None = None
    primary_start: str | None = None
    standby_health_url: str = f"http://127.0.0.1:{DEFAULT_PORT}/"
    standby_start: str = ""
    standby_stop: str = ""
    standby_fallback: str | None = None
    telegram_token: str | None = None
    chat_id: str | None = None
    telegram_base_url: str | None = None
    primary_dsn: str | None = None
    standby_dsn: str | None = None
    subscription: str | None = None
    db_password: str | None = None
    files: list[tuple[str, str]] = field(default_factory=list)
    state_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # --set KEY=VALUE


def local_gateway(env: Mapping[str, str], port: int) -> tuple[str, str, str | None]:
    """(start, stop, fallback start) for this host's gateway.

    The systemd user unit when there is one (or no other way is known); the
    direct ``openclaw gateway run`` as the fallback where ``openclaw`` is on PATH.
    """
    start = f"systemctl --user start {GATEWAY_UNIT}"
    stop = f"systemctl --user stop {GATEWAY_UNIT}"
    openclaw = shutil.which("openclaw", path=env.get("PATH"))
    fallback = f"{openclaw} gateway run --port {port}" if openclaw else None
    return start, stop, fallback


def find_subscription(standby_dsn: str, timeout: float = 5.0) -> tuple[str, dict[str, str]] | None:
    """The standby's subscription: (name, the primary's conninfo as a dict); None if none.

    Needs a superuser (pg_subscription.subconninfo); raises InitError when the
    database cannot be reached."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        with psycopg.connect(standby_dsn, connect_timeout=int(timeout), autocommit=True) as conn:
            row = conn.execute(
                "SELECT subname, subconninfo FROM pg_subscription "
                "WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " ORDER BY subname LIMIT 1"
            ).fetchone()
    except psycopg.Error as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InitError(f"standby database: {text}") from None
    if row is None:
        return None
    info = {k: str(v) for k, v in conninfo_to_dict(row[1]).items() if v is not None}
    return str(row[0]), info


def primary_dsn_from(info: Mapping[str, str]) -> tuple[str, str | None]:
    """The subscription's conninfo as ``primary_dsn`` with the password moved to ${MEMU_PASSWORD}.

    Returns (dsn, password or None)."""
    parts, password = [], None
    for key, value in info.items():
        if key == "password":
            password = value
            continue
        parts.append(f"{key}={_quote(value)}")
    if password is not None:
        parts.append(f"password=${{{DB_PASSWORD_VAR}}}")
    return " ".join(parts), password


def _quote(value: str) -> str:
    if value and not any(c in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def default_files(home: Path) -> list[tuple[str, str]]:
    """The OpenClaw workspace's memory files, where they exist on this host."""
    found = []
    memory = home / ".openclaw" / "workspace" / "memory"
    if memory.is_dir():
        found.append(("~/.openclaw/workspace/memory/", "~/.openclaw/workspace/memory/"))
    if (home / ".openclaw" / "workspace" / "MEMORY.md").is_file():
        found.append(("~/.openclaw/workspace/MEMORY.md", "~/.openclaw/workspace/MEMORY.md"))
    return found


def build_config(a: Answers) -> dict[str, Any]:
    """The config document; secrets appear only as ${VAR}."""
    primary_gw: dict[str, Any] = {"health_url": a.primary_health_url}
    if a.primary_stop:
        primary_gw["stop_command"] = a.primary_stop
    if a.primary_start:
        primary_gw["start_command"] = a.primary_start
    standby_gw: dict[str, Any] = {
        "health_url": a.standby_health_url,
        "start_command": a.standby_start,
        "stop_command": a.standby_stop,
    }
    if a.standby_fallback:
        standby_gw["fallback_start_command"] = a.standby_fallback
    doc: dict[str, Any] = {
        "primary": {
            "name": a.primary_name,
            "host": a.host,
            "ssh": {
                "user": a.user,
                "port": a.port,
                "key_file": a.key_file,
                "known_hosts": a.known_hosts,
            },
            "gateway": primary_gw,
        },
        "standby": {"name": a.standby_name, "gateway": standby_gw},
    }
    if a.telegram_token and a.chat_id:
        chat: int | str = int(a.chat_id) if a.chat_id.lstrip("-").isdigit() else a.chat_id
        doc["telegram"] = {"token": f"${{{TOKEN_VAR}}}", "chat_id": chat}
        if a.telegram_base_url:
            doc["telegram"]["base_url"] = a.telegram_base_url
    if a.state_dir:
        doc["state_dir"] = a.state_dir
    if a.primary_dsn and a.standby_dsn and a.subscription:
        doc["database"] = {
            "primary_dsn": a.primary_dsn,
            "standby_dsn": a.standby_dsn,
            "subscription": a.subscription,
        }
    if a.files:
        doc["files"] = [{"path": local, "remote_path": remote} for local, remote in a.files]
    for dotted, value in a.extra.items():
        _set(doc, dotted, value)
    return doc


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = doc
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise InitError(f"--set {dotted}: {key} is not a section")
        node = child
    node[last] = value


def parse_set(items: tuple[str, ...]) -> dict[str, Any]:
    """``--set check.interval=30`` -> {"check.interval": 30} (values read as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InitError(f"--set {item!r}: expected KEY=VALUE, e.g. check.interval=30")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def env_values(a: Answers) -> dict[str, str]:
    """What goes into the env file."""
    values = {}
    if a.telegram_token and a.chat_id:
        values[TOKEN_VAR] = a.telegram_token
    if a.db_password is not None and "database" in build_config(a):
        values[DB_PASSWORD_VAR] = a.db_password
    return values


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Set ``values`` in the env file (other lines kept), mode 0600 from its first byte."""
    old = read_env_file(path)
    merged = {**old, **values}
    lines = [f"{key}={shlex.quote(value)}\n" for key, value in merged.items()]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_config(path: Path, doc: Mapping[str, Any], *, force: bool) -> Path | None:
    """Write the config; an existing one is refused, or with ``force`` kept as ``.bak-TIME``.

    Returns where the old file went (None when there was none)."""
    backup = None
    if path.exists():
        if not force:
            raise InitError(f"{path} exists; keep it, or run again with --force (it is kept)")
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(path, backup)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    env_file = path.parent / "env"
    text = HEADER.format(when=time.strftime("%Y-%m-%d %H:%M"), env_file=env_file)
    text += yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return backup


def config_path(explicit: str | None, env: Mapping[str, str]) -> Path:
    """Where init writes: --config, $OCF_CONFIG, else ~/.config/openclaw-failover/config.yaml."""
    if explicit:
        return Path(explicit).expanduser()
    if env.get("OCF_CONFIG"):
        return Path(env["OCF_CONFIG"]).expanduser()
    home = Path(env.get("HOME") or Path.home())
    return home / ".config" / "openclaw-failover" / "config.yaml"

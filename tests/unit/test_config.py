"""Config loading: search order, ${VAR}, every error at once with its key path, the example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from openclaw_failover.config.loader import (
    DEFAULT_MESSAGES,
    ConfigError,
    find_config,
    iter_keys,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "id").write_text("key")
    (tmp_path / "kh").write_text("")
    return {"key_file": str(tmp_path / "id"), "known_hosts": str(tmp_path / "kh")}


def minimal(keys: dict[str, str], **extra: object) -> dict:
    doc: dict = {"primary": {"host": "127.0.0.9", "ssh": {"user": "u", **keys}}}
    doc.update(extra)
    return doc


def test_minimal_config_has_the_seed_defaults(keys: dict[str, str]) -> None:
    cfg = parse_config(minimal(keys), "c.yaml", {})
    assert (cfg.check.retries, cfg.check.retry_delay, cfg.check.fall, cfg.check.rise) == (
        1,
        10,
        1,
        1,
    )
    assert cfg.check.failback == "auto"
    assert cfg.standby.gateway.start_command == (
        "systemctl",
        "--user",
        "start",
        "openclaw-gateway.service",
    )
    assert cfg.primary.gateway.health_url == "http://127.0.0.1:18789/healthz"
    assert cfg.standby.gateway.health_url == "http://127.0.0.1:18789/healthz"
    assert cfg.standby.gateway.start_timeout == 60  # the real gateway's start, with margin
    assert cfg.telegram is None
    assert cfg.state_dir == Path("~/.local/state/openclaw-failover").expanduser()


def test_commands_string_or_list(keys: dict[str, str]) -> None:
    doc = minimal(
        keys,
        standby={
            "gateway": {
                "start_command": "openclaw gateway run --name 'my gw'",
                "stop_command": ["pkill", "-f", "openclaw gateway"],
            }
        },
    )
    cfg = parse_config(doc, "c", {})
    assert cfg.standby.gateway.start_command == ("openclaw", "gateway", "run", "--name", "my gw")
    assert cfg.standby.gateway.stop_command == ("pkill", "-f", "openclaw gateway")


def test_env_expansion_and_secrets(keys: dict[str, str]) -> None:
    doc = minimal(keys, telegram={"token": "${TOK}", "chat_id": "-100123"})
    cfg = parse_config(doc, "c", {"TOK": "123:SECRET"})
    assert cfg.telegram and cfg.telegram.token == "123:SECRET"
    assert cfg.telegram.chat_id == -100123
    assert cfg.secrets == ("123:SECRET",)


def test_every_error_at_once_with_key_paths(keys: dict[str, str]) -> None:
    doc = {
        "primary": {"ssh": {"user": "u", "port": "ssh", "bogus": 1, **keys}},
        "check": {"fall": 0, "failback": "sometimes", "retry_delay": "10s"},
        "telegram": {"token": "${NOPE}", "chat_id": 1},
        "surprise": True,
    }
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "/etc/ocf.yaml", {})
    text = info.value.render()
    assert text.startswith("/etc/ocf.yaml: 8 problems")
    for expected in [
        "At 'primary.host': required key is missing",
        "At 'primary.ssh.port': expected a whole number, got a string",
        "At 'primary.ssh.bogus': unknown key",
        "At 'check.fall': must be at least 1, got 0",
        "At 'check.failback': expected one of auto, manual, got 'sometimes'",
        "At 'check.retry_delay': expected a number of seconds, got a string",
        "At 'telegram.token': environment variable NOPE is not set",
        "At 'surprise': unknown key",
    ]:
        assert expected in text


def test_unknown_top_level_key_is_an_error(keys: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"At 'surprise': unknown key"):
        parse_config(minimal(keys, surprise=1), "c", {})


def test_missing_key_file_is_named(tmp_path: Path) -> None:
    doc = {
        "primary": {
            "host": "h",
            "ssh": {
                "user": "u",
                "key_file": str(tmp_path / "nokey"),
                "known_hosts": str(tmp_path / "nokh"),
            },
        }
    }
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "c", {})
    assert f"At 'primary.ssh.key_file': file not found: {tmp_path / 'nokey'}" in info.value.render()
    assert "At 'primary.ssh.known_hosts': file not found" in info.value.render()


def test_database_and_files_sections(keys: dict[str, str]) -> None:
    doc = minimal(
        keys,
        database={
            "primary_dsn": "host=127.0.0.9 dbname=memu user=memu password=${PGPASS}",
            "standby_dsn": "postgresql://postgres:s%40fe@127.0.0.1:5433/memu",
        },
        files=[{"path": "~/ws/memory/", "remote_path": "~/ws/memory/"}],
    )
    cfg = parse_config(doc, "c", {"PGPASS": "hunter22"})
    assert cfg.database and cfg.database.subscription == "memu_sub" and cfg.database.tables == ()
    assert cfg.files[0].path == Path("~/ws/memory/").expanduser()
    assert cfg.files[0].remote_path == "~/ws/memory/"
    assert set(cfg.secrets) == {"hunter22", "s@fe"}


def test_without_sync_sections_sync_is_off(keys: dict[str, str]) -> None:
    cfg = parse_config(minimal(keys), "c", {})
    assert cfg.database is None and cfg.files == ()


def test_files_errors_name_the_item(keys: dict[str, str]) -> None:
    doc = minimal(keys, files=[{"path": "a", "remote_path": "b"}, {"path": "c", "remot": "d"}])
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "c", {})
    text = info.value.render()
    assert "At 'files[1].remot': unknown key" in text
    assert "At 'files[1].remote_path': required key is missing" in text
    with pytest.raises(ConfigError, match=r"At 'files': expected a list, got a mapping"):
        parse_config(minimal(keys, files={"path": "a"}), "c", {})
    with pytest.raises(ConfigError, match=r"At 'database.standby_dsn': required key is missing"):
        parse_config(minimal(keys, database={"primary_dsn": "x"}), "c", {})


def test_bad_template_field(keys: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"At 'messages.took_over': unknown field \{host\}"):
        parse_config(minimal(keys, messages={"took_over": "{host} down"}), "c", {})


def test_custom_template_kept_others_default(keys: dict[str, str]) -> None:
    cfg = parse_config(minimal(keys, messages={"took_over": "{standby} up"}), "c", {})
    assert cfg.messages["took_over"] == "{standby} up"
    assert cfg.messages["gave_back"] == DEFAULT_MESSAGES["gave_back"]


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("primary:\n  host: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c.yaml: not valid YAML \(line \d+, column \d+\)"):
        load_config(path, {})


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config"):
        load_config(tmp_path / "missing.yaml", {})


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_config("/x/explicit.yaml", {"OCF_CONFIG": "/y"}) == Path("/x/explicit.yaml")
    assert find_config(None, {"OCF_CONFIG": "/y/env.yaml"}) == Path("/y/env.yaml")
    monkeypatch.setenv("HOME", str(tmp_path))
    user = tmp_path / ".config/openclaw-failover/config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("x: 1")
    assert find_config(None, {}) == user
    user.unlink()
    if not Path("/etc/openclaw-failover/config.yaml").exists():
        with pytest.raises(ConfigError, match="no config file found"):
            find_config(None, {})


def test_example_config_documents_every_key_and_loads(keys: dict[str, str]) -> None:
    text = (ROOT / "config.example.yaml").read_text()
    doc = yaml.safe_load(text)
    documented = set()
    for path, _ in iter_keys():
        node = doc
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        leaf = path.split(".")[-1]
        if node is not None or re.search(rf"^\s*#?\s*(-\s*)?{leaf}:", text, re.M):
            documented.add(path)
    missing = {p for p, _ in iter_keys()} - documented
    assert not missing, f"keys not documented in config.example.yaml: {sorted(missing)}"
    doc["primary"]["ssh"].update(keys)
    env = {"OCF_TELEGRAM_TOKEN": "1:abc", "MEMU_PASSWORD": "pw-from-env"}
    cfg = parse_config(doc, "config.example.yaml", env)
    assert cfg.database and "pw-from-env" in cfg.secrets
    assert cfg.primary.gateway.stop_command == ("openclaw", "gateway", "stop", "--force")

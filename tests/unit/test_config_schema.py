"""The schema is the one source: the dataclass defaults, config.example.yaml (both copies)
and the README's key reference are what it gives."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from openclaw_failover.config import coordination, example, loader, schema
from openclaw_failover.config.validate import iter_keys

ROOT = Path(__file__).resolve().parents[2]

# Which dataclass holds each section of the schema (a prefix is put before the field names).
SECTIONS: dict[str, tuple[type, str]] = {
    "": (loader.Config, ""),
    "primary": (loader.PrimaryConfig, ""),
    "primary.ssh": (loader.SSHConfig, ""),
    "primary.gateway": (loader.PrimaryGateway, ""),
    "standby": (loader.StandbyConfig, ""),
    "standby.gateway": (loader.StandbyGateway, ""),
    "check": (loader.CheckConfig, ""),
    "telegram": (loader.TelegramConfig, ""),
    "database": (loader.DatabaseConfig, ""),
    "files": (loader.FileRoot, ""),
    "metrics": (loader.MonitoringConfig, "metrics_"),
    "monitoring": (loader.MonitoringConfig, ""),
    "coordination": (coordination.CoordinationConfig, ""),
}
# Fields that are not config keys: nested sections, and what the loader adds.
NOT_KEYS = {
    "Config": {"primary", "standby", "check", "telegram", "messages", "database", "files"},
    "PrimaryConfig": {"ssh", "gateway"},
    "StandbyConfig": {"gateway"},
    "CoordinationConfig": {"interval"},  # check.interval, or ocf watch's
}
NOT_KEYS["Config"] |= {"monitoring", "coordination", "source", "extra_secrets", "given"}
# The schema says None ("1 when witnesses are set"); the dataclass holds the outcome.
DERIVED = {"check.witness_quorum": loader.NO_WITNESSES}


def _field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def test_every_key_has_a_dataclass_field_with_the_schema_default() -> None:
    seen: set[tuple[str, str]] = set()
    for path, key in iter_keys(schema.SCHEMA):
        section, _, name = path.rpartition(".")
        if section == "messages":
            assert loader.DEFAULT_MESSAGES[name] == key.default
            continue
        cls, prefix = SECTIONS[section]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        field = fields.get(prefix + name)
        assert field is not None, f"{path}: no field {prefix + name} in {cls.__name__}"
        seen.add((cls.__name__, field.name))
        value = _field_default(field)
        if value is dataclasses.MISSING:  # the dataclass asks for it: fine
            continue
        want = DERIVED[path] if path in DERIVED else schema.default(path)
        assert value == want, f"{cls.__name__}.{field.name} = {value!r}, schema: {want!r}"
    for cls, _ in set(SECTIONS.values()):
        for f in dataclasses.fields(cls):
            if f.name not in NOT_KEYS.get(cls.__name__, set()):
                assert (cls.__name__, f.name) in seen, f"{cls.__name__}.{f.name}: not in the schema"


def test_messages_default_to_the_schema_texts() -> None:
    cfg_messages = _field_default(
        {f.name: f for f in dataclasses.fields(loader.Config)}["messages"]
    )
    assert cfg_messages == {k: schema.key(f"messages.{k}").default for k in schema.NOTICES}


def test_schema_default_is_what_the_loader_builds(tmp_path: Path) -> None:
    assert schema.default("check.retry_delay") == 10.0 and isinstance(
        schema.default("check.retry_delay"), float
    )
    assert schema.default("standby.gateway.start_command") == (
        "systemctl",
        "--user",
        "start",
        "openclaw-gateway.service",
    )
    assert schema.default("state_dir") == Path("~/.local/state/openclaw-failover").expanduser()
    with pytest.raises(KeyError):
        schema.key("check")


def test_the_example_and_the_readme_reference_are_generated_from_the_schema() -> None:
    for path, text in example.targets(ROOT).items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(ROOT)} is not what the schema gives: run `make config-docs`"
        )


def test_every_schema_key_is_in_the_example_and_the_reference() -> None:
    text = example.render_example()
    reference = example.render_reference()
    for path, key in iter_keys(schema.SCHEMA):
        name = path.rsplit(".", 1)[-1]
        assert f"{name}: " in text or f"{name}:\n" in text, path
        shown = path.replace("files.", "files[].")
        assert f"| `{shown}` |" in reference, path
        assert key.doc.replace("|", "\\|") in reference, path


def test_the_generated_example_loads(tmp_path: Path) -> None:
    doc = yaml.safe_load(example.render_example())
    (tmp_path / "id").write_text("key")
    (tmp_path / "kh").write_text("")
    doc["primary"]["ssh"].update(key_file=str(tmp_path / "id"), known_hosts=str(tmp_path / "kh"))
    env = {"OCF_TELEGRAM_TOKEN": "1:abc", "MEMU_PASSWORD": "pw"}
    cfg = loader.parse_config(doc, "example", env)
    assert cfg.primary.name == "Mac Studio" and cfg.check.witnesses == ()
    assert "metrics" not in doc and "monitoring" not in doc


def test_check_mode_names_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in example.targets(ROOT):
        copy = tmp_path / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert example.main(["--check", str(tmp_path)]) == 0
    stale = tmp_path / "src" / "openclaw_failover" / "config" / "example.yaml"
    stale.write_text(stale.read_text().replace("retries: 1", "retries: 2"))
    assert example.main(["--check", str(tmp_path)]) == 1
    assert "example.yaml is not what the schema gives" in capsys.readouterr().err
    assert example.main(["--write", str(tmp_path)]) == 0
    assert example.main(["--check", str(tmp_path)]) == 0
    assert example.main(["--bogus"]) == 2

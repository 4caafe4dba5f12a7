"""Random config documents and state/events files: exit 2 or success, never a crash or a hang.

Also: events.jsonl is rotated by size, and `ocf status` / `ocf history` read it from
the end in bounded memory.
"""

from __future__ import annotations

import json
import math
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openclaw_failover.cli import app as cli
from openclaw_failover.config.loader import ConfigError, load_config
from openclaw_failover.core import state as state_mod
from openclaw_failover.core.events import TickDone
from openclaw_failover.engine import store as store_mod
from openclaw_failover.engine.store import StateStore
from openclaw_failover.ops import history

FUZZ = settings(
    max_examples=120,
    deadline=5000,  # ms per example: a slow input is a failure (no hang)
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

_KEYS = [
    "primary", "standby", "check", "telegram", "messages", "state_dir", "monitoring",
    "database", "files", "host", "ssh", "port", "user", "gateway", "health_url",
    "start_command", "deadline", "fall", "retries", "connect_timeout", "ping_url", "token",
    "chat_id", "took_over", "interval", "path", "remote_path", "tables", "x",
]  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["http://127.0.0.1:99999/", "${NOPE}", "{time:>9}", "a\nb", "\x00", "~/x"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4)
    ),
    max_leaves=25,
)


def _base(tmp: Path) -> dict[str, Any]:
    return {
        "primary": {
            "host": "127.0.0.1",
            "ssh": {"user": "u", "key_file": str(tmp / "id"), "known_hosts": str(tmp / "kh")},
        },
        "standby": {"gateway": {"health_url": "http://127.0.0.1:9/"}},
        "state_dir": str(tmp / "state"),
    }


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "id").write_text("key")
    (tmp_path / "kh").write_text("")
    return tmp_path


def _load(path: Path) -> str:
    """'ok' or 'refused'; anything else raises (the test fails)."""
    started = time.monotonic()
    try:
        load_config(path, {})
        outcome = "ok"
    except ConfigError as exc:
        assert exc.render().strip(), "a refusal says why"
        outcome = "refused"
    assert time.monotonic() - started < 5
    return outcome


@FUZZ
@given(extra=st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=5))
def test_random_config_documents_load_or_are_refused(tmp: Path, extra: dict[str, Any]) -> None:
    path = tmp / "config.yaml"
    doc = _merge(_base(tmp), extra)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    _load(path)


@FUZZ
@given(data=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_random_bytes_as_config_are_refused_cleanly(tmp: Path, data: bytes) -> None:
    path = tmp / "config.yaml"
    path.write_bytes(data)
    _load(path)


_STATE_FIELDS = st.sampled_from(
    ["role", "since", "paused", "failed_ticks", "takeovers", "last_probe", "last_tick_at",
     "last_reason", "outbox", "last_alert_at", "schema_version", "fenced", "paused_since"]
)  # fmt: skip


@FUZZ
@given(
    changes=st.dictionaries(_STATE_FIELDS, _VALUES, max_size=4),
    garbage=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_random_state_files_load_or_are_set_aside(
    tmp: Path, changes: dict[str, Any], garbage: bytes | None, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp / "state"
    state_dir.mkdir(mode=0o700, exist_ok=True)
    store = StateStore(state_dir)
    if garbage is not None:
        data = garbage
    else:
        doc = {**state_mod.State().to_json(), **changes}
        data = json.dumps(doc, default=str, allow_nan=True).encode()
    (state_dir / "state.json").write_bytes(data)
    loaded, warning = store.load()
    assert (loaded is None) == (warning is not None)
    if loaded is not None:  # everything the state holds is usable
        for value in (loaded.since, loaded.last_tick_at, loaded.paused_since):
            assert value is None or math.isfinite(value)
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(_base(tmp)))
    code = cli.main(["--config", str(config), "status", "--json"], cli.Environment(env={}))
    out = capsys.readouterr()
    assert code == 0, out
    assert "unexpected error" not in out.err and "Traceback" not in out.err
    json.loads(out.out)


@FUZZ
@given(lines=st.lists(st.binary(max_size=80) | _VALUES.map(lambda v: json.dumps(v).encode())))
def test_random_events_lines_are_skipped_or_shown(
    tmp: Path, lines: list[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp / "state"
    state_dir.mkdir(mode=0o700, exist_ok=True)
    (state_dir / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(_base(tmp)))
    for args in (["status"], ["history", "--since", "1000w"], ["history", "--json"]):
        code = cli.main(["--config", str(config), *args], cli.Environment(env={}))
        out = capsys.readouterr()
        assert code == 0, out
        assert "unexpected error" not in out.err and "Traceback" not in out.err


# --------------------------------------------------------------------------- rotation


def test_events_are_rotated_by_size_and_history_reads_across_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_mod, "EVENTS_MAX_BYTES", 2000)
    store = StateStore(tmp_path / "state")
    for i in range(200):
        store.append_event(TickDone(f"check {i:03d}"))
    files = sorted(p.name for p in store.dir.iterdir() if p.name.startswith("events"))
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2", "events.jsonl.3"]
    for name in files:
        path = store.dir / name
        assert path.stat().st_size < 2000 + 200
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    shown = [getattr(e.payload, "reason", None) for e in history.load(store.dir, 0)]
    assert shown == sorted(shown) and shown[-1] == "check 199", "newest last, in order"
    assert len(shown) > 50, "the rotated files are read too"
    last = [e.payload for e in store.last_events(3)]
    assert last == [TickDone("check 197"), TickDone("check 198"), TickDone("check 199")]


def test_status_and_history_read_a_huge_events_log_in_bounded_memory(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    line = json.dumps({"ts": time.time(), "type": "tick", "reason": "x" * 200}) + "\n"
    block = line.encode() * 10_000  # ~2.3 MB
    with open(state_dir / "events.jsonl", "wb") as fh:
        for _ in range(20):  # ~46 MB
            fh.write(block)
    size = os.path.getsize(state_dir / "events.jsonl")
    tracemalloc.start()
    try:
        last = StateStore(state_dir).last_events(8)
        _, peak_status = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        events = history.load(state_dir, 0)
        _, peak_history = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(last) == 8
    assert peak_status < 1_000_000, f"status: {peak_status} bytes for a {size} byte log"
    assert len(events) == history.MAX_EVENTS
    assert peak_history < size / 2, f"history: {peak_history} bytes for a {size} byte log"

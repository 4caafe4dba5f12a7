"""State file round trip, atomic writes, corrupt files; the lock and the tick deadline."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from openclaw_failover.core.events import NoticeSent, Transition
from openclaw_failover.core.model import Notice
from openclaw_failover.core.state import SCHEMA_VERSION, Role, State
from openclaw_failover.engine.lock import Busy, DeadlineExceeded, deadline, exclusive
from openclaw_failover.engine.store import StateStore


def test_round_trip_with_outbox(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s")
    state = State(
        role=Role.FAILOVER,
        since=12.5,
        fenced=True,
        takeovers=3,
        outbox=[Notice("id1", "took_over", "text", 10.0, attempts=2, last_error="down")],
    )
    store.save(state)
    loaded, warning = store.load()
    assert warning is None and loaded == state
    raw = json.loads(store.path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION and raw["role"] == "failover"
    assert oct(store.dir.stat().st_mode & 0o777) == "0o700"


@pytest.mark.parametrize(
    ("content", "word"),
    [
        (None, "missing"),
        ("", "empty"),
        ("{not json", "corrupt"),
        ('{"schema_version": 99}', "corrupt"),
        ('{"schema_version": 1, "role": "boss"}', "corrupt"),
        ("[1,2]", "corrupt"),
        ('{"schema_version": 1, "failed_ticks": "x"}', "corrupt"),
    ],
)
def test_bad_state_files_are_warnings_not_crashes(
    tmp_path: Path, content: str | None, word: str
) -> None:
    store = StateStore(tmp_path)
    if content is not None:
        store.path.write_text(content)
    state, warning = store.load()
    assert state is None and warning and word in warning and str(store.path) in warning


def test_corrupt_file_is_kept_aside(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.path.write_text("garbage")
    aside = store.set_aside()
    assert aside and aside.read_text() == "garbage" and not store.path.exists()


def test_save_leaves_no_temp_files_and_replaces_atomically(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    for n in range(5):
        store.save(State(takeovers=n))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert store.load()[0].takeovers == 4  # type: ignore[union-attr]


def test_events_are_appended_as_json_lines(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.append_event(Transition("primary", "taking_over", "x"))
    store.append_event(NoticeSent("took_over", "n1"))
    events = store.last_events(10)
    assert [e.payload for e in events] == [
        Transition("primary", "taking_over", "x"),
        NoticeSent("took_over", "n1"),
    ]
    lines = [json.loads(line) for line in store.events_path.read_text().splitlines()]
    assert [(d["v"], d["type"]) for d in lines] == [(2, "transition"), (2, "notice_sent")]
    assert lines[0]["from"] == "primary" and lines[0]["at"].endswith("Z")


def _hold(path: str, seconds: float, ready: multiprocessing.synchronize.Event) -> None:
    with exclusive(Path(path)):
        ready.set()
        time.sleep(seconds)


def test_lock_excludes_a_second_process(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(tmp_path), 2.0, ready))
    proc.start()
    try:
        assert ready.wait(10)
        with pytest.raises(Busy, match="another check is running"), exclusive(tmp_path):
            pass
    finally:
        proc.join()
    with exclusive(tmp_path):  # free again once the holder exits
        assert (tmp_path / "ocf.lock").read_text().strip() == str(os.getpid())


def test_lock_wait_gets_it_when_released(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(tmp_path), 0.5, ready))
    proc.start()
    try:
        assert ready.wait(10)
        held_from = time.monotonic()
        with exclusive(tmp_path, wait=30):
            waited = time.monotonic() - held_from
            assert (tmp_path / "ocf.lock").read_text().strip() == str(os.getpid())
    finally:
        proc.join()
    # it waited for the holder's 0.5 s, instead of taking a lock that was held
    assert waited >= 0.4


def test_deadline_interrupts_a_hung_call() -> None:
    with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.2s"), deadline(0.2):
        time.sleep(5)


def test_deadline_is_cleared_after_the_block() -> None:
    handler = signal.getsignal(signal.SIGALRM)
    with deadline(0.2):
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # no alarm left to fire
    assert signal.getsignal(signal.SIGALRM) is handler  # the previous handler is back
    time.sleep(0.4)  # and none fires: DeadlineExceeded would fail the test here


@pytest.mark.parametrize(
    "fields",
    [
        {"last_alert_at": None},
        {"paused": "false"},
        {"since": "yesterday"},
        {"failed_ticks": 1.5},
        {"outbox": [{"id": "a", "kind": "k", "text": "t", "created_at": 1, "next_try_at": "x"}]},
        {"outbox": "nope"},
        {"last_alert_at": {"auth_failure": "now"}},
    ],
)
def test_fields_of_the_wrong_type_are_corruption(tmp_path: Path, fields: dict) -> None:
    store = StateStore(tmp_path)
    store.path.write_text(
        json.dumps({"schema_version": SCHEMA_VERSION, "role": "failover", **fields})
    )
    state, warning = store.load()
    assert state is None and warning and "corrupt" in warning


def test_bytes_that_are_not_utf8_are_corruption(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.path.write_bytes(b'{"schema_version": 1, "role": "\xff\xfe"}')
    state, warning = store.load()
    assert state is None and warning and "not UTF-8" in warning

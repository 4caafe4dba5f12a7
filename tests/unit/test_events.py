"""Typed events (core.events): every kind round-trips, old lines still read, garbage is
skipped, and no decoded line of any shape makes parse_event raise."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openclaw_failover.core import events as ev
from openclaw_failover.core.events import EVENT_SCHEMA, Event, EventKind, SyncCounts, parse_event
from openclaw_failover.core.model import ProbeStatus
from openclaw_failover.core.results import (
    FenceResult,
    GiveBackEnd,
    GiveBackResult,
    RestartResult,
    Result,
    TakeoverResult,
)
from openclaw_failover.core.state import Role, State
from openclaw_failover.engine.actions import Actor
from openclaw_failover.engine.store import StateStore
from openclaw_failover.engine.tick import action_event
from openclaw_failover.ops import history
from openclaw_failover.syncback.db.merge import TableMerge
from openclaw_failover.syncback.files.sync import FileSyncReport
from openclaw_failover.syncback.report import SyncReport

TS = 1796234448.578
SYNC = SyncCounts(
    ok=True,
    summary="rows synced back: 5 inserted, 1 updated; files: 1 copied",
    inserted=5,
    updated=1,
    deleted=2,
    quarantined=3,
    files=1,
    bytes=4096,
)
SAMPLES: list[ev.Payload] = [
    ev.Transition("primary", "taking_over", "primary unreachable for 1 check"),
    ev.TookOver(True, "local gateway up (systemctl)", ("fence primary: exit 0",), 6.931),
    ev.GaveBack(True, "", ("local gateway stopped", SYNC.summary), 3.104, sync=SYNC),
    ev.RestartedLocal(False, "could not start", ("start: exit 1",), 0.5),
    ev.Fenced(True, "fence primary: exit 0", ("fence primary: exit 0",), 1.2),
    ev.SyncedBack(SYNC),
    ev.NoticeQueued("took_over", "n-1", "OpenClaw on mac OFFLINE\nsecond line"),
    ev.NoticeSent("took_over", "n-1"),
    ev.NoticeDropped("gave_back", "n-2", "no telegram"),
    ev.NoticeFailed("telegram: timed out"),
    ev.ProbeChanged(None, "unreachable", "connect timeout after 10s"),
    ev.TickDone("failover failed", 1),
    ev.DeadlineHit("check deadline of 120s exceeded"),
    ev.Reconciled("state file x is missing", "primary", "state.json.corrupt-1"),
    ev.Paused(),
    ev.Resumed(),
    ev.LeaderKey(action="acquire", ok=True, holder="pi", reason="primary unreachable"),
    ev.LeaderSeen(was="mac", holder="pi"),
    ev.Guard(ok=True, reason="lease 7 expired", steps=("stopped",), lease="7"),
    ev.GuardSeen(reason="the leader guard stopped this host's gateway"),
    ev.CoordVerdict(action="veto", reason="pi1 has a higher priority"),
    ev.CoordBack(lost_for=12.5),
    ev.SelfAction(action="fence_self", ok=True, steps=("gateway stopped",)),
]


def test_coord_event_builds_the_typed_payload_from_coord_facts() -> None:
    payload = ev.coord_event("coordination", do="take_over", reason="key expired")
    assert payload == ev.CoordVerdict(action="take_over", reason="key expired")
    line = Event(TS, ev.coord_event("leader", action="release", ok=False, error="x")).to_json()
    assert line["type"] == "leader" and line["ok"] is False and "holder" not in line


def test_every_kind_has_one_payload_and_a_sample() -> None:
    assert set(ev.PAYLOADS) == set(EventKind)
    assert {p.KIND for p in SAMPLES} == set(EventKind)


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: str(p.KIND))
def test_every_kind_round_trips_through_a_json_line(payload: ev.Payload) -> None:
    event = Event(TS, payload)
    line = json.dumps(event.to_json(), sort_keys=True)
    data = json.loads(line)
    assert data["v"] == EVENT_SCHEMA and data["ts"] == TS and data["at"] == "2026-12-02T18:00:48Z"
    if payload.KIND in ev.ACTION_NAMES:  # the schema-1 shape, kept for jq and old readers
        assert (data["type"], data["action"]) == ("action", ev.ACTION_NAMES[payload.KIND])
    else:
        assert data["type"] == str(payload.KIND)
    assert parse_event(data) == event


def test_a_give_back_carries_its_sync_report_as_data() -> None:
    files = FileSyncReport(copied=["MEMORY.md", "notes/a.md"])
    pre = SyncReport(tables=[TableMerge("memory_items", inserted=3, updated=1, bytes=100)])
    final = SyncReport(
        tables=[TableMerge("memory_items", inserted=2, deleted=1, bytes=50)],
        files=files,
        quarantined=1,
        quarantine="1 rows kept in quarantine (/q)",
    ).absorb(pre)
    result = GiveBackResult(GiveBackEnd.DONE, sync=final.counts(), steps=["stopped"])
    payload = action_event(result, 2.5)
    data = json.loads(json.dumps(Event(TS, payload).to_json()))
    assert data["sync"] == {
        "ok": True,
        "summary": final.summary(),
        "skipped": "",
        "inserted": 5,
        "updated": 1,
        "deleted": 1,
        "quarantined": 1,
        "files": 2,
        "bytes": 150,
    }
    event = parse_event(data)
    assert event is not None and isinstance(event.payload, ev.GaveBack)
    assert event.payload.sync is not None and event.payload.sync.rows == 6


def test_each_action_has_its_own_kind() -> None:
    results: list[Result] = [
        TakeoverResult(True, detail="d", steps=["s"]),
        GiveBackResult(GiveBackEnd.DONE, detail="d", steps=["s"]),
        FenceResult(True, detail="d", steps=["s"]),
        RestartResult(True, detail="d", steps=["s"]),
    ]
    kinds = [action_event(r, 1.0).KIND for r in results]
    assert kinds == [
        EventKind.TAKEOVER,
        EventKind.GIVEBACK,
        EventKind.FENCE,
        EventKind.RESTART_LOCAL,
    ]


# Lines as ocf wrote them before events were typed (schema 1: no "v"), produced by that
# code's StateStore.event with the fields its tick, recovery and `ocf syncback` passed.
OLD_LINES = """\
{"at": "2026-12-02T18:00:48Z", "detail": "connect timeout after 10s", "status": "unreachable", "ts": 1796234448.576, "type": "probe", "was": null}
{"at": "2026-12-02T18:00:48Z", "from": "primary", "reason": "primary unreachable for 1 check", "to": "taking_over", "ts": 1796234448.578, "type": "transition"}
{"action": "TakeOver", "at": "2026-12-02T18:00:48Z", "detail": "local gateway up (systemctl)", "duration": 6.931, "ok": true, "steps": ["fence primary: exit 0", "disabled subscription memu_sub", "started openclaw-gateway (systemctl)", "gateway ready"], "ts": 1796234448.578, "type": "action"}
{"at": "2026-12-02T18:00:48Z", "id": "n-1", "kind": "took_over", "text": "OpenClaw on mac OFFLINE - RPi takes over!", "ts": 1796234448.578, "type": "notice_queued"}
{"at": "2026-12-02T18:00:48Z", "error": "telegram: timed out", "ts": 1796234448.578, "type": "notice_failed"}
{"at": "2026-12-02T18:00:48Z", "id": "n-1", "kind": "took_over", "ts": 1796234448.578, "type": "notice_sent"}
{"at": "2026-12-02T18:00:48Z", "id": "n-2", "kind": "gave_back", "ts": 1796234448.578, "type": "notice_dropped", "why": "no telegram"}
{"action": "GiveBack", "at": "2026-12-02T18:00:48Z", "detail": "", "duration": 3.104, "ok": true, "steps": ["while still serving: rows synced back: 3 inserted, 1 updated", "local gateway stopped (systemctl)", "rows synced back: 2 inserted, 0 updated; files: 1 copied, 0 conflict copies, 0 refused", "restart primary's gateway: exit 0", "primary's gateway answering (HTTP 200 via direct-tcpip)"], "ts": 1796234448.578, "type": "action"}
{"at": "2026-12-02T18:00:48Z", "ok": true, "quarantined": 2, "rows": 5, "summary": "rows synced back: 4 inserted, 1 updated; 2 rows kept in quarantine (/q)", "ts": 1796234448.579, "type": "syncback"}
{"action": "RestartLocal", "at": "2026-12-02T18:00:48Z", "detail": "could not start", "duration": 0.5, "ok": false, "steps": ["start: exit 1"], "ts": 1796234448.579, "type": "action"}
{"action": "Fence", "at": "2026-12-02T18:00:48Z", "detail": "fence primary: exit 0", "duration": 1.2, "ok": true, "steps": ["fence primary: exit 0"], "ts": 1796234448.579, "type": "action"}
{"at": "2026-12-02T18:00:48Z", "reason": "failover failed", "status": 1, "ts": 1796234448.579, "type": "tick"}
{"at": "2026-12-02T18:00:48Z", "reason": "check deadline of 120s exceeded", "ts": 1796234448.579, "type": "deadline"}
{"at": "2026-12-02T18:00:48Z", "kept_as": "", "result": "primary (local gateway not answering)", "ts": 1796234448.579, "type": "reconciled", "warning": "state file x is missing"}
{"at": "2026-12-02T18:00:48Z", "ts": 1796234448.579, "type": "paused"}
{"at": "2026-12-02T18:00:48Z", "ts": 1796234448.579, "type": "resumed"}
"""


def _old() -> list[Event]:
    found = [parse_event(json.loads(line)) for line in OLD_LINES.splitlines()]
    assert all(e is not None for e in found)
    return [e for e in found if e is not None]


def test_old_lines_read_into_the_typed_form() -> None:
    old = _old()
    assert [e.kind for e in old] == [
        EventKind.PROBE,
        EventKind.TRANSITION,
        EventKind.TAKEOVER,
        EventKind.NOTICE_QUEUED,
        EventKind.NOTICE_FAILED,
        EventKind.NOTICE_SENT,
        EventKind.NOTICE_DROPPED,
        EventKind.GIVEBACK,
        EventKind.SYNCBACK,
        EventKind.RESTART_LOCAL,
        EventKind.FENCE,
        EventKind.TICK,
        EventKind.DEADLINE,
        EventKind.RECONCILED,
        EventKind.PAUSED,
        EventKind.RESUMED,
    ]
    assert old[0].payload == ev.ProbeChanged(None, "unreachable", "connect timeout after 10s")
    assert old[1].payload == ev.Transition(
        "primary", "taking_over", "primary unreachable for 1 check"
    )
    assert old[2].ts == TS and old[2].payload == ev.TookOver(
        True,
        "local gateway up (systemctl)",
        (
            "fence primary: exit 0",
            "disabled subscription memu_sub",
            "started openclaw-gateway (systemctl)",
            "gateway ready",
        ),
        6.931,
    )
    assert old[3].payload == ev.NoticeQueued(
        "took_over", "n-1", "OpenClaw on mac OFFLINE - RPi takes over!"
    )
    assert old[11].payload == ev.TickDone("failover failed", 1)


def test_an_old_give_back_gets_its_counts_from_its_steps() -> None:
    give_back = _old()[7].payload
    assert isinstance(give_back, ev.GaveBack) and give_back.ok and give_back.duration == 3.104
    assert give_back.sync == SyncCounts(
        ok=True,
        summary="while still serving: rows synced back: 3 inserted, 1 updated; "
        "rows synced back: 2 inserted, 0 updated; files: 1 copied, 0 conflict copies, 0 refused",
        inserted=5,
        updated=1,
        files=1,
    )
    syncback = _old()[8].payload
    assert isinstance(syncback, ev.SyncedBack)
    assert (syncback.sync.rows, syncback.sync.quarantined, syncback.sync.ok) == (5, 2, True)


@pytest.mark.parametrize(
    ("line", "ok", "skipped"),
    [
        ('{"ts": 1, "type": "action", "action": "GiveBack", "ok": true, '
         '"steps": ["sync-back skipped: no database: or files: section in the config"]}',
         True, True),
        ('{"ts": 1, "type": "action", "action": "GiveBack", "ok": false, '
         '"steps": ["rows synced back: 1 inserted, 0 updated; FAILED: timeout"]}', False, False),
        ('{"ts": 1, "type": "syncback", "ok": false, "summary": "FAILED: x"}', False, False),
        ('{"ts": 1, "type": "syncback", "ok": true, "summary": "x; FAILED: y"}', False, False),
    ],
)  # fmt: skip
def test_old_failed_or_skipped_sync_backs_do_not_count(line: str, ok: bool, skipped: bool) -> None:
    event = parse_event(json.loads(line))
    assert event is not None and isinstance(event.payload, ev.GaveBack | ev.SyncedBack)
    sync = event.payload.sync
    assert sync is not None and sync.ok is ok and bool(sync.skipped) is skipped
    assert not sync.succeeded


def test_an_old_give_back_without_sync_steps_has_no_sync() -> None:
    line = {"ts": 1, "type": "action", "action": "GiveBack", "ok": False, "steps": ["stop: 1"]}
    event = parse_event(line)
    assert event is not None and isinstance(event.payload, ev.GaveBack)
    assert event.payload.sync is None


def test_an_old_line_with_absurd_counts_reads_and_round_trips() -> None:
    step = f"rows synced back: {'9' * 30} inserted, {'9' * 5000} updated; files: {'9' * 30} copied"
    line = {"ts": 1, "type": "action", "action": "GiveBack", "ok": True, "steps": [step]}
    assert parse_event(line) is None  # beyond Python's digit limit: skipped, not raised
    line["steps"] = [step.replace("9" * 5000, "1")]
    event = parse_event(line)
    assert event is not None and isinstance(event.payload, ev.GaveBack) and event.payload.sync
    assert (event.payload.sync.inserted, event.payload.sync.files) == (0, 0)  # out of range
    assert parse_event(json.loads(json.dumps(event.to_json()))) == event


def test_sentences_are_never_read_in_a_schema_2_line() -> None:
    steps = ["while still serving: rows synced back: 3 inserted, 1 updated", "still answering"]
    line = Event(TS, ev.GaveBack(False, "still answering", tuple(steps), 1.0)).to_json()
    event = parse_event(line)
    assert event is not None and isinstance(event.payload, ev.GaveBack)
    assert event.payload.sync is None and "v" in line
    summary = "rows synced back: 9 inserted, 9 updated"
    synced = parse_event({"v": 2, "ts": 1, "type": "syncback", "ok": True, "summary": summary})
    assert synced is not None and isinstance(synced.payload, ev.SyncedBack)
    assert synced.payload.sync.rows == 0


def test_old_lines_render_in_history_as_before() -> None:
    """The table the code before typed events printed for OLD_LINES, but for two fixes:
    the first probe's ``None`` is ``?`` and a fence is named ``fence``, not ``Fence``."""
    expected = """\
TIME (UTC)           EVENT           DETAIL
2026-12-02 18:00:48  probe           ? -> unreachable: connect timeout after 10s
2026-12-02 18:00:48  transition      primary -> taking_over: primary unreachable for 1 check
2026-12-02 18:00:48  take over       ok in 6.9s: local gateway up (systemctl)
2026-12-02 18:00:48  notice          took_over: OpenClaw on mac OFFLINE - RPi takes over!
2026-12-02 18:00:48  notice failed   kept for the next check: telegram: timed out
2026-12-02 18:00:48  notice sent     took_over
2026-12-02 18:00:48  notice dropped  gave_back: not sent (no telegram)
2026-12-02 18:00:48  give back       ok in 3.1s: while still serving: rows synced back: 3 inserted, 1 updated; rows synced back: 2 inserted, 0 updated; files: 1 copied, 0 conflict copies, 0 refused
2026-12-02 18:00:48  sync-back       ok: rows synced back: 4 inserted, 1 updated; 2 rows kept in quarantine (/q)
2026-12-02 18:00:48  restart local   FAILED in 0.5s: could not start
2026-12-02 18:00:48  fence           ok in 1.2s: fence primary: exit 0
2026-12-02 18:00:48  check           failover failed (exit 1)
2026-12-02 18:00:48  deadline        check deadline of 120s exceeded
2026-12-02 18:00:48  reconciled      state file x is missing; primary (local gateway not answering)
2026-12-02 18:00:48  paused
2026-12-02 18:00:48  resumed"""
    assert history.render(_old()) == expected


@pytest.mark.parametrize(
    "data",
    [
        None,
        [1, 2],
        "tick",
        42,
        {},
        {"type": "tick"},  # no ts
        {"ts": "now", "type": "tick"},
        {"ts": True, "type": "tick"},
        {"ts": math.nan, "type": "tick"},
        {"ts": math.inf, "type": "tick"},
        {"ts": 1, "type": {}},
        {"ts": 1, "type": "something_new", "answer": 42},
        {"ts": 1, "type": "action"},  # no action name
        {"ts": 1, "type": "action", "action": "Notify"},
        {"ts": 1, "type": "giveback"},  # an action's kind is only read in its wire form
    ],
)
def test_garbage_is_skipped(data: Any) -> None:
    assert parse_event(data) is None


def test_fields_of_the_wrong_type_take_their_defaults() -> None:
    event = parse_event(
        {"ts": 1, "type": "action", "action": "GiveBack", "ok": "yes", "steps": [1, None, "s"],
         "duration": math.nan, "sync": {"inserted": -4, "updated": 1e300, "ok": "no"}}
    )  # fmt: skip
    assert event is not None and isinstance(event.payload, ev.GaveBack)
    assert event.payload == ev.GaveBack(False, "", ("s",), None, SyncCounts())
    tick = parse_event({"ts": 1e300, "type": "tick", "reason": ["x"], "status": "1"})
    assert tick is not None and tick.payload == ev.TickDone("", 0) and tick.at is None


_FIELDS = ["v", "ok", "steps", "sync", "summary", "rows", "reason", "from", "to", "kind", "id",
           "text", "why", "error", "was", "status", "detail", "duration", "warning", "result",
           "kept_as", "skipped", "inserted", "updated", "deleted", "quarantined", "files",
           "bytes"]  # fmt: skip
_KEYS = st.sampled_from(["ts", "type", "action", *_FIELDS])
_TYPES = st.sampled_from([*(str(k) for k in EventKind), "action", "other"])
_ACTIONS = st.sampled_from([*ev.ACTION_NAMES.values(), "Notify"])
ODD = [math.nan, math.inf, -math.inf, 1e300, -1, 2**70, True, None, "", [1, None], {"a": {}}]
_ODD = st.sampled_from(ODD)
_LEAVES = (
    _ODD | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | _TYPES | _ACTIONS
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=12,
)
# a line shaped like an event: a type, a ts, and any of the payloads' fields, odd or not
_SHAPED = st.fixed_dictionaries(
    {"ts": st.floats() | st.integers() | _ODD, "type": _TYPES, "action": _ACTIONS},
    optional={k: _VALUES for k in _FIELDS},
)


@settings(max_examples=300, deadline=None)
@given(line=st.dictionaries(_KEYS, _VALUES, max_size=10) | _SHAPED)
def test_any_decoded_line_reads_or_is_skipped_never_raises(line: dict[str, Any]) -> None:
    event = parse_event(line)
    if event is not None:
        # what was read is written back and read again unchanged (ts to the millisecond)
        again = parse_event(json.loads(json.dumps(event.to_json())))
        assert again is not None and again.payload == event.payload and again.kind is event.kind
        assert parse_event(again.to_json()) == again


@pytest.mark.parametrize("kind", [*(str(k) for k in EventKind if k not in ev.ACTION_NAMES),
                                  *ev.ACTION_NAMES.values()])  # fmt: skip
def test_every_field_of_every_kind_survives_every_odd_value(kind: str) -> None:
    head = (
        {"ts": TS, "type": "action", "action": kind}
        if kind[0].isupper()
        else {"ts": TS, "type": kind}
    )
    for key in _FIELDS:
        for odd in ODD:
            event = parse_event({**head, key: odd, "sync": {key: odd}})
            assert event is not None, (key, odd)
            assert parse_event(json.loads(json.dumps(event.to_json()))) == event


def test_a_check_that_gives_back_writes_both_passes_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the tick: the give-back's line holds the two sync-back passes as numbers."""
    from tests.unit.test_actions import FakeLocal, FakeProbe, mocked_tick, tick_cfg

    passes = {
        True: SyncReport(tables=[TableMerge("memory_items", inserted=3, updated=1, bytes=10)]),
        False: SyncReport(
            tables=[TableMerge("memory_items", inserted=2, deleted=1, bytes=5)],
            files=FileSyncReport(copied=["MEMORY.md"]),
        ),
    }
    monkeypatch.setattr(Actor, "_sync", lambda self, serving=False: passes[serving])
    store = StateStore(tmp_path)
    store.save(State(role=Role.FAILOVER, since=1.0, takeovers=1))
    probe = FakeProbe([ProbeStatus.HEALTHY])
    result = mocked_tick(tick_cfg(tmp_path), probe, FakeLocal(up=True)).run()
    assert result.reason.startswith("gave back"), result.reason
    [give_back] = [e.payload for e in store.last_events(50) if e.kind is EventKind.GIVEBACK]
    assert isinstance(give_back, ev.GaveBack) and give_back.ok and give_back.sync is not None
    sync = give_back.sync
    assert (sync.inserted, sync.updated, sync.deleted, sync.files, sync.bytes) == (5, 1, 1, 1, 15)
    assert sync.summary == passes[False].summary() and sync.succeeded

"""Action paths with mocked SSH, local gateway and probe; the tick pipeline with mocks."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from openclaw_failover.config.loader import Config, PrimaryGateway
from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.decide import GiveBack, RestartLocal, TakeOver
from openclaw_failover.core.model import CommandResult, ProbeResult, ProbeStatus
from openclaw_failover.core.results import GiveBackEnd as End
from openclaw_failover.core.state import Role, State
from openclaw_failover.engine.actions import Actor
from openclaw_failover.engine.store import StateStore
from openclaw_failover.engine.tick import ExitStatus, Tick
from openclaw_failover.local.gateway import GatewayOutcome, LocalGateway
from openclaw_failover.local.readiness import Readiness
from openclaw_failover.syncback.run import NOT_CONFIGURED as SYNC_NOT_CONFIGURED
from tests.unit.test_decide import make_cfg

S = ProbeStatus


@dataclass
class FakeLocal:
    start_ok: list[bool] = field(default_factory=lambda: [True])
    stop_ok: bool = True
    up: bool = False
    calls: list[str] = field(default_factory=list)

    def is_up(self, timeout: float = 2.0) -> bool:
        return self.up

    def start(self) -> GatewayOutcome:
        self.calls.append("start")
        ok = self.start_ok.pop(0) if len(self.start_ok) > 1 else self.start_ok[0]
        self.up = ok
        return GatewayOutcome(
            ok, ["gateway answering" if ok else "gateway not answering"], "start_command"
        )

    def stop(self) -> GatewayOutcome:
        self.calls.append("stop")
        self.up = not self.stop_ok
        return GatewayOutcome(self.stop_ok, ["stopped" if self.stop_ok else "still answering"])


@dataclass
class FakeRemote:
    ok: bool = True
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def __call__(self, cfg: Config, argv: Any, **kw: Any) -> CommandResult:
        self.calls.append(tuple(argv))
        return CommandResult(tuple(argv), 0 if self.ok else 1, stderr="" if self.ok else "boom")


@dataclass
class FakeProbe:
    statuses: list[ProbeStatus]
    calls: int = 0

    def __call__(self, cfg: Config, mask: Masker) -> ProbeResult:
        self.calls += 1
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return ProbeResult(status, 0.01, f"probe {status}")


def actor(cfg: Config, local: FakeLocal, remote: FakeRemote, probe: FakeProbe) -> Actor:
    return Actor(
        cfg,
        mask=Masker(),
        env={},
        sleep=lambda s: None,
        remote_run=remote,
        probe=probe,
        gateway=local,  # type: ignore[arg-type]
        await_ready=lambda url, seconds: Readiness(True, f"ready at {url}"),
    )


def with_primary_start(cfg: Config, start: bool) -> Config:
    gw = PrimaryGateway(
        stop_command=("gw", "stop"), start_command=("gw", "start") if start else None
    )
    return Config(
        **{**cfg.__dict__, "primary": type(cfg.primary)(**{**cfg.primary.__dict__, "gateway": gw})}
    )


def test_take_over_fences_then_starts() -> None:
    local, remote = FakeLocal(), FakeRemote()
    out = actor(make_cfg(fence=True), local, remote, FakeProbe([S.GATEWAY_DOWN])).take_over(
        TakeOver(fence=True, why="x")
    )
    assert out.ok and out.fenced
    assert remote.calls == [("openclaw", "gateway", "stop")] and local.calls == ["start"]
    assert out.steps[0].startswith("fence primary: openclaw: exit 0")


def test_take_over_goes_on_when_fencing_fails_but_says_so() -> None:
    local, remote = FakeLocal(), FakeRemote(ok=False)
    out = actor(make_cfg(fence=True), local, remote, FakeProbe([S.GATEWAY_DOWN])).take_over(
        TakeOver(fence=True, why="x")
    )
    assert out.ok and not out.fenced and "exit 1: boom" in out.steps[0]


def test_manual_take_over_aborts_when_fencing_fails() -> None:
    local, remote = FakeLocal(), FakeRemote(ok=False)
    out = actor(make_cfg(fence=True), local, remote, FakeProbe([S.HEALTHY])).take_over(
        TakeOver(fence=True, why="manual", strict=True)
    )
    assert out.aborted and not out.ok and local.calls == []
    assert "not taking over" in out.detail


def test_take_over_aborts_when_the_fenced_gateway_comes_back() -> None:
    local, remote = FakeLocal(), FakeRemote()
    out = actor(make_cfg(fence=True), local, remote, FakeProbe([S.HEALTHY])).take_over(
        TakeOver(fence=True, why="x")
    )
    assert out.aborted and local.calls == [] and "KeepAlive" in out.detail


def test_take_over_fails_when_nothing_answers() -> None:
    local = FakeLocal(start_ok=[False])
    out = actor(make_cfg(), local, FakeRemote(), FakeProbe([S.UNREACHABLE])).take_over(
        TakeOver(fence=False, why="x")
    )
    assert not out.ok and out.detail == "gateway not answering"


def test_give_back_stops_before_sync_and_skips_unconfigured_sync() -> None:
    local = FakeLocal(up=True)
    out = actor(make_cfg(), local, FakeRemote(), FakeProbe([S.HEALTHY])).give_back(
        GiveBack(unfence=False, why="x")
    )
    assert out.end is End.DONE and out.sync_summary == SYNC_NOT_CONFIGURED
    assert local.calls == ["stop"] and out.steps.index("stopped") < out.steps.index(
        SYNC_NOT_CONFIGURED
    )


def test_give_back_fails_when_local_does_not_stop() -> None:
    local = FakeLocal(stop_ok=False, up=True)
    out = actor(make_cfg(), local, FakeRemote(), FakeProbe([S.HEALTHY])).give_back(
        GiveBack(False, "x")
    )
    assert out.end is End.STOP_FAILED and out.detail == "still answering"


def test_give_back_restarts_fenced_primary_and_waits() -> None:
    remote, probe = FakeRemote(), FakeProbe([S.GATEWAY_DOWN, S.GATEWAY_DOWN, S.HEALTHY])
    out = actor(with_primary_start(make_cfg(), True), FakeLocal(up=True), remote, probe).give_back(
        GiveBack(unfence=True, why="x")
    )
    assert out.ok and out.unfenced and remote.calls == [("gw", "start")] and probe.calls == 3


def test_give_back_unfence_skipped_when_primary_already_answers() -> None:
    remote = FakeRemote()
    out = actor(
        with_primary_start(make_cfg(), True), FakeLocal(up=True), remote, FakeProbe([S.HEALTHY])
    ).give_back(GiveBack(unfence=True, why="x"))
    assert out.unfenced and remote.calls == []


@pytest.mark.parametrize(("start", "remote_ok"), [(False, True), (True, False)])
def test_give_back_undone_when_fenced_primary_cannot_restart(start: bool, remote_ok: bool) -> None:
    local = FakeLocal(up=True)
    out = actor(
        with_primary_start(make_cfg(), start),
        local,
        FakeRemote(ok=remote_ok),
        FakeProbe([S.GATEWAY_DOWN]),
    ).give_back(GiveBack(unfence=True, why="x"))
    assert out.end is End.RESTORED and local.calls == ["stop", "start"] and local.up


def test_give_back_nobody_serves_when_restore_fails_too() -> None:
    local = FakeLocal(up=True, start_ok=[False])
    out = actor(
        with_primary_start(make_cfg(), False), local, FakeRemote(), FakeProbe([S.GATEWAY_DOWN])
    ).give_back(GiveBack(unfence=True, why="x"))
    assert out.end is End.NOBODY_SERVES


def test_wait_for_primary_gives_up_after_start_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = with_primary_start(make_cfg(), True)
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(time, "monotonic", lambda: float(next(clock)))
    local = FakeLocal(up=True)
    out = actor(cfg, local, FakeRemote(), FakeProbe([S.GATEWAY_DOWN])).give_back(
        GiveBack(True, "x")
    )
    waited = f"not answering after {cfg.standby.gateway.start_timeout:g}s"
    assert out.end is End.RESTORED and waited in out.detail


def test_restart_local() -> None:
    local = FakeLocal()
    out = actor(make_cfg(), local, FakeRemote(), FakeProbe([S.UNREACHABLE])).run(RestartLocal())
    assert out.ok and local.calls == ["start"]


# --------------------------------------------------------------------------- the tick, mocked


def tick_cfg(tmp_path: Path, **check: Any) -> Config:
    cfg = make_cfg()
    return Config(
        **{
            **cfg.__dict__,
            "state_dir": tmp_path,
            "check": type(cfg.check)(**{**cfg.check.__dict__, **check}),
        }
    )


def mocked_tick(cfg: Config, probe: FakeProbe, local: FakeLocal, **kw: Any) -> Tick:
    tick = Tick(cfg, {}, probe=probe, sleep=lambda s: None, **kw)
    tick.actor = actor(cfg, local, FakeRemote(), probe)
    return tick


def test_retries_then_takes_over_and_records_intent_first(tmp_path: Path) -> None:
    cfg = tick_cfg(tmp_path, retries=2)
    probe, local = FakeProbe([S.UNREACHABLE]), FakeLocal()
    seen: list[str] = []
    real_start = local.start

    def start() -> GatewayOutcome:  # the intent is on disk before the gateway starts
        seen.append(json.loads((tmp_path / "state.json").read_text())["role"])
        return real_start()

    local.start = start  # type: ignore[method-assign]
    result = mocked_tick(cfg, probe, local).run()
    assert probe.calls == 3 and seen == ["taking_over"]
    assert result.status is ExitStatus.OK and result.reason.startswith(
        "took over: primary unreachable"
    )
    assert StateStore(tmp_path).load()[0].role is Role.FAILOVER  # type: ignore[union-attr]


def test_no_retry_when_first_probe_healthy(tmp_path: Path) -> None:
    probe = FakeProbe([S.HEALTHY])
    result = mocked_tick(tick_cfg(tmp_path, retries=3), probe, FakeLocal()).run()
    assert probe.calls == 1 and result.reason == "no action: primary healthy" and not result.acted


def test_deadline_aborts_the_tick_and_the_next_one_resumes(tmp_path: Path) -> None:
    cfg = tick_cfg(tmp_path, deadline=1)
    local = FakeLocal()

    def hang() -> GatewayOutcome:
        time.sleep(10)
        raise AssertionError("not reached")

    local.start = hang  # type: ignore[method-assign]
    result = mocked_tick(cfg, FakeProbe([S.REFUSED]), local).run()
    assert result.status is ExitStatus.ACTION_FAILED and "deadline" in result.reason
    assert StateStore(tmp_path).load()[0].role is Role.TAKING_OVER  # type: ignore[union-attr]
    result = mocked_tick(cfg, FakeProbe([S.REFUSED]), FakeLocal()).run()
    assert result.reason.startswith("took over") and result.status is ExitStatus.OK


def test_dry_run_writes_nothing_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LocalGateway, "is_up", lambda self, timeout=2.0: False)
    cfg = tick_cfg(tmp_path / "state")
    remote = FakeRemote()
    tick = Tick(cfg, {}, probe=FakeProbe([S.REFUSED]), dry_run=True, sleep=lambda s: None)
    # the real LocalGateway in dry-run mode: the unit tier's guard fails the test if it runs
    # a command or opens a connection
    tick.actor = Actor(
        cfg,
        mask=Masker(),
        env={},
        dry_run=True,
        probe=FakeProbe([S.REFUSED]),
        remote_run=remote,
    )
    result = tick.run()
    assert result.reason.startswith("would take over") and not (tmp_path / "state").exists()
    assert remote.calls == []  # the primary was not fenced
    assert any("OFFLINE" in n for n in result.notices)


def test_notices_without_telegram_are_logged_and_dropped(tmp_path: Path) -> None:
    result = mocked_tick(tick_cfg(tmp_path), FakeProbe([S.REFUSED]), FakeLocal()).run()
    state = StateStore(tmp_path).load()[0]
    assert state is not None and state.outbox == []
    events = [json.loads(x)["type"] for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert "notice_dropped" in events and result.status is ExitStatus.OK


def test_missing_state_reconciles_to_failover_when_local_answers(tmp_path: Path) -> None:
    result = mocked_tick(tick_cfg(tmp_path), FakeProbe([S.UNREACHABLE]), FakeLocal(up=True)).run()
    assert result.state is not None and result.state.role is Role.FAILOVER
    assert result.reason == "no action: serving, primary still unreachable"
    assert State().role is Role.PRIMARY


def test_a_tick_killed_while_sending_keeps_the_notice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openclaw_failover.config.loader import TelegramConfig
    from openclaw_failover.notify import telegram as notify

    cfg = tick_cfg(tmp_path, deadline=4)
    cfg = Config(**{**cfg.__dict__, "telegram": TelegramConfig("1:x", 1, "http://127.0.0.1:9/bot")})

    def hang(*args: Any, **kwargs: Any) -> Any:
        time.sleep(10)

    monkeypatch.setattr(notify, "deliver", hang)
    result = mocked_tick(cfg, FakeProbe([S.AUTH_FAILED]), FakeLocal()).run()
    assert result.status is ExitStatus.ACTION_FAILED and "deadline" in result.reason
    state = StateStore(tmp_path).load()[0]
    assert state is not None and state.last_alert_at.get("auth_failure") is not None
    assert [n.kind for n in state.outbox] == ["auth_failure"]

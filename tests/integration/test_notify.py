"""Notices: rendering, masking, and delivery through the real python-telegram-bot
against a local fake Bot API (tests/harness/fake_telegram.py)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openclaw_failover.config.loader import (
    DEFAULT_MESSAGES,
    Config,
    PrimaryConfig,
    SSHConfig,
    StandbyConfig,
    StandbyGateway,
    TelegramConfig,
)
from openclaw_failover.core.model import Notice
from openclaw_failover.notify.telegram import MAX_TEXT, DeliveryReport, deliver, new_notice, render
from tests.harness.fake_telegram import FakeTelegram

TOKEN = "987654321:AAH-secret_Token_value_for_ocf_tests"
AT = datetime(2026, 11, 30, 14, 2, 37, tzinfo=UTC).timestamp()
WHEN = "2026-11-30 14:02 UTC"
NOW = 1_800_000_000.0


def make_cfg(
    base_url: str = "http://127.0.0.1:9/bot",
    *,
    token: str = TOKEN,
    chat_id: int | str = 4242,
    timeout: float = 3.0,
    messages: dict[str, str] | None = None,
) -> Config:
    ssh = SSHConfig(
        user="ocf", key_file=Path("/nonexistent/id"), known_hosts=Path("/nonexistent/kh")
    )
    gateway = StandbyGateway(start_command=("true",), stop_command=("true",))
    return Config(
        primary=PrimaryConfig(host="127.0.0.9", ssh=ssh, name="alpha"),
        standby=StandbyConfig(gateway=gateway, name="bravo"),
        telegram=TelegramConfig(token=token, chat_id=chat_id, base_url=base_url, timeout=timeout),
        messages=dict(DEFAULT_MESSAGES) if messages is None else messages,
    )


def notice(cfg: Config, n: int = 0, kind: str = "took_over") -> Notice:
    return new_notice(cfg, kind, reason=f"reason {n}", detail=f"detail {n}", now=AT + 60 * n)


class Sleeps:
    """Injected instead of time.sleep: records the waits, sleeps not at all."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    with FakeTelegram(valid_token=TOKEN) as fake:
        yield fake


@pytest.fixture
def cfg(tg: FakeTelegram) -> Config:
    return make_cfg(tg.base_url)


def assert_no_token(*texts: object) -> None:
    for text in texts:
        assert TOKEN not in str(text)
        assert quote(TOKEN, safe="") not in str(text)


# --------------------------------------------------------------------------- render


@pytest.mark.parametrize("kind", sorted(DEFAULT_MESSAGES))
def test_render_every_default_kind(kind: str) -> None:
    text = render(make_cfg(), kind, reason="HTTP 502", detail="exit 1: unit failed", at=AT)
    assert WHEN in text
    assert "{" not in text and "}" not in text and "\x00" not in text
    for field in ("primary", "standby", "reason", "detail"):
        value = {"primary": "alpha", "standby": "bravo", "reason": "HTTP 502"}.get(
            field, "exit 1: unit failed"
        )
        assert (value in text) == ("{" + field + "}" in DEFAULT_MESSAGES[kind])


@pytest.mark.parametrize("kind", sorted(DEFAULT_MESSAGES))
def test_render_every_default_kind_with_empty_fields_is_tidy(kind: str) -> None:
    text = render(make_cfg(), kind, at=AT)
    assert text.endswith(f"({WHEN})") or text.endswith(WHEN)
    for junk in ("()", "( ", " )", "(;", "; )", ": .", " .", "  ", "\x00"):
        assert junk not in text, (junk, text)


def test_render_exact_default_texts() -> None:
    cfg = make_cfg()
    assert render(cfg, "took_over", reason="gateway down", at=AT) == (
        f"OpenClaw on alpha OFFLINE - bravo takes over! (gateway down; {WHEN})"
    )
    assert (
        render(cfg, "took_over", at=AT) == f"OpenClaw on alpha OFFLINE - bravo takes over! ({WHEN})"
    )
    assert render(cfg, "gave_back", at=AT) == (
        f"alpha ONLINE - bravo stopped, gateway back on alpha. ({WHEN})"
    )
    assert render(cfg, "auth_failure", detail="host key changed", at=AT) == (
        f"ALERT: bravo cannot check alpha: host key changed. Not failing over; fix SSH access. ({WHEN})"
    )
    assert render(cfg, "auth_failure", at=AT) == (
        f"ALERT: bravo cannot check alpha. Not failing over; fix SSH access. ({WHEN})"
    )


def test_render_custom_template() -> None:
    cfg = make_cfg(
        messages={**DEFAULT_MESSAGES, "took_over": "[{time}] {standby} <- {primary}: {reason}"}
    )
    assert render(cfg, "took_over", reason="refused", at=AT) == f"[{WHEN}] bravo <- alpha: refused"
    assert render(cfg, "took_over", at=AT) == f"[{WHEN}] bravo <- alpha"


def test_render_time_is_utc_from_epoch() -> None:
    assert WHEN in render(make_cfg(), "primary_back", at=AT)
    assert "1970-01-01 00:00 UTC" in render(make_cfg(), "primary_back", at=0)


def test_render_masks_the_token_everywhere() -> None:
    cfg = make_cfg(messages={**DEFAULT_MESSAGES, "gave_back": "token " + TOKEN + " {detail}"})
    detail = f"curl https://api.telegram.org/bot{TOKEN}/getMe and {quote(TOKEN, safe='')}"
    for kind in ("gave_back", "failover_failed"):
        text = render(cfg, kind, reason=TOKEN, detail=detail, at=AT)
        assert_no_token(text)
        assert "***" in text


def test_render_unknown_kind_and_broken_template_never_raise() -> None:
    cfg = make_cfg(messages={**DEFAULT_MESSAGES, "took_over": "bad {nope} {0} {", "odd": ""})
    assert (
        render(cfg, "took_over", reason="r", at=AT)
        == DEFAULT_MESSAGES["took_over"]
        .format(primary="alpha", standby="bravo", reason="r", time=WHEN, detail="")
        .strip()
    )
    assert render(cfg, "mystery", detail="d", at=AT) == f"bravo: mystery d ({WHEN})"
    assert render(cfg, "odd", at=AT) == f"bravo: odd ({WHEN})"


def test_render_truncates_to_telegram_limit() -> None:
    text = render(make_cfg(), "failover_failed", detail="x" * 10_000, at=AT)
    assert len(text) == MAX_TEXT and text.endswith("\u2026")


@settings(max_examples=200, deadline=None)
@given(reason=st.text(), detail=st.text(), prefix=st.text(max_size=5))
def test_render_never_raises_never_leaks(reason: str, detail: str, prefix: str) -> None:
    cfg = make_cfg()
    for kind in ("took_over", "auth_failure", "x{y}"):
        text = render(cfg, kind, reason=reason + TOKEN, detail=prefix + TOKEN + detail, at=AT)
        assert TOKEN not in text and "\x00" not in text and 0 < len(text) <= MAX_TEXT


def test_new_notice() -> None:
    cfg = make_cfg()
    a = new_notice(cfg, "took_over", reason="r", now=AT)
    b = new_notice(cfg, "took_over", reason="r", now=AT)
    assert a.id != b.id and len(a.id) == 32 and int(a.id, 16) >= 0
    assert (a.kind, a.created_at, a.attempts, a.last_error, a.next_try_at) == (
        "took_over",
        AT,
        0,
        "",
        0,
    )
    assert a.text == render(cfg, "took_over", reason="r", at=AT)


# --------------------------------------------------------------------------- deliver: happy path


def test_delivers_each_notice_once_oldest_first(tg: FakeTelegram, cfg: Config) -> None:
    first, second = notice(cfg, 1), notice(cfg, 2)
    seen: list[tuple[str, int]] = []
    report = deliver(
        cfg, [second, first], now=NOW, on_sent=lambda n: seen.append((n.id, len(tg.messages)))
    )
    assert [n.id for n in report.sent] == [first.id, second.id]
    assert report.remaining == [] and report.errors == [] and report.ok
    # on_sent runs right after each send, before the next one
    assert seen == [(first.id, 1), (second.id, 2)]
    assert tg.texts == [first.text, second.text]
    assert {(m.token, m.chat_id) for m in tg.messages} == {(TOKEN, 4242)}
    assert not tg.calls("getMe"), "no getMe round trip is needed before sendMessage"
    again = deliver(cfg, report.remaining, now=NOW + 60)
    assert again.sent == [] and len(tg.messages) == 2


def test_channel_chat_id(tg: FakeTelegram) -> None:
    cfg = make_cfg(tg.base_url, chat_id="@ocf_alerts")
    report = deliver(cfg, [notice(cfg)], now=NOW)
    assert len(report.sent) == 1 and tg.messages[0].chat_id == "@ocf_alerts"


def test_empty_outbox_sends_nothing(tg: FakeTelegram, cfg: Config) -> None:
    report = deliver(cfg, [], now=NOW)
    assert report == DeliveryReport()
    assert tg.requests == []


def test_dry_run_sends_nothing(tg: FakeTelegram, cfg: Config) -> None:
    due, later = notice(cfg, 1), notice(cfg, 2)
    later.next_try_at = NOW + 100
    report = deliver(cfg, [later, due], now=NOW, dry_run=True)
    assert report.would_send == [due]
    assert report.remaining == [due, later] and report.sent == []
    assert tg.requests == [] and due.attempts == 0


def test_not_configured(tg: FakeTelegram) -> None:
    cfg = replace(make_cfg(tg.base_url), telegram=None)
    n = notice(cfg)
    report = deliver(cfg, [n], now=NOW)
    assert not report.configured and report.remaining == [n] and report.sent == []
    assert "not configured" in report.errors[0]
    assert tg.requests == [] and n.attempts == 0


def test_skips_notices_not_yet_due(tg: FakeTelegram, cfg: Config) -> None:
    deferred, due = notice(cfg, 1), notice(cfg, 2)
    deferred.next_try_at = NOW + 30
    report = deliver(cfg, [deferred, due], now=NOW)
    assert report.sent == [due] and report.remaining == [deferred]
    assert tg.texts == [due.text]


# --------------------------------------------------------------------------- deliver: failures


def test_server_down_keeps_the_notice_then_delivers_it_once(tg: FakeTelegram, cfg: Config) -> None:
    first, second = notice(cfg, 1), notice(cfg, 2)
    original = first.text
    tg.down()
    report = deliver(cfg, [first, second], now=NOW)
    assert report.sent == [] and report.remaining == [first, second]
    assert first.attempts == 1 and "network error" in first.last_error
    assert second.attempts == 0, "stops after the first network error"
    assert len(report.errors) == 1 and "\n" not in first.last_error
    assert_no_token(first.last_error, report.errors)

    tg.up()
    report = deliver(cfg, report.remaining, now=NOW + 3600)
    assert report.sent == [first, second] and report.remaining == []
    assert tg.texts == [original, second.text]
    assert "(reason 1; 2026-11-30 14:03 UTC)" in tg.texts[0], "keeps the time it was created at"
    assert deliver(cfg, report.remaining, now=NOW + 7200).sent == []
    assert len(tg.messages) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_keeps_the_notice_in_order(tg: FakeTelegram, cfg: Config, status: int) -> None:
    first, second = notice(cfg, 1), notice(cfg, 2)
    tg.fail_with(status, count=1)
    report = deliver(cfg, [first, second], now=NOW)
    assert report.remaining == [first, second] and first.attempts == 1 and second.attempts == 0
    assert first.last_error.startswith("network error")
    assert len(tg.requests) == 1
    report = deliver(cfg, report.remaining, now=NOW + 60)
    assert tg.texts == [first.text, second.text]


def test_html_error_page_becomes_one_line(tg: FakeTelegram, cfg: Config) -> None:
    n = notice(cfg)
    tg.fail_with(502, body=b"<html>\n<head><title>502 Bad Gateway</title></head>\n" + b"x" * 2000)
    report = deliver(cfg, [n], now=NOW)
    assert report.remaining == [n] and "\n" not in n.last_error and len(n.last_error) <= 300


def test_short_rate_limit_is_waited_out_inline(tg: FakeTelegram, cfg: Config) -> None:
    n = notice(cfg)
    tg.rate_limit(3)
    sleeps = Sleeps()
    report = deliver(cfg, [n], now=NOW, sleep=sleeps, max_inline_wait=5)
    assert sleeps.calls == [3]
    assert report.sent == [n] and tg.texts == [n.text]
    assert [r.status for r in tg.calls("sendMessage")] == [429, 200]


def test_long_rate_limit_defers_the_notice(tg: FakeTelegram, cfg: Config) -> None:
    first, second = notice(cfg, 1), notice(cfg, 2)
    tg.rate_limit(60)
    sleeps = Sleeps()
    report = deliver(cfg, [first, second], now=NOW, sleep=sleeps, max_inline_wait=5)
    assert sleeps.calls == [] and report.sent == []
    assert first.next_try_at == NOW + 60 and "retry after 60s" in first.last_error
    assert report.remaining == [first, second] and len(tg.requests) == 1
    # not retried before its time ...
    report = deliver(cfg, report.remaining, now=NOW + 30, sleep=sleeps)
    assert report.remaining[0] is first and first.id not in {n.id for n in report.sent}
    assert [r.params["text"] for r in tg.calls("sendMessage")].count(first.text) == 1
    # ... and sent once it is due
    report = deliver(cfg, report.remaining, now=NOW + 61, sleep=sleeps)
    assert tg.texts == [second.text, first.text] and report.remaining == []


def test_rate_limit_again_after_waiting_defers(tg: FakeTelegram, cfg: Config) -> None:
    n = notice(cfg)
    tg.rate_limit(2, count=2)
    sleeps = Sleeps()
    report = deliver(cfg, [n], now=NOW, sleep=sleeps, max_inline_wait=5)
    assert sleeps.calls == [2], "waits inline once only"
    assert report.remaining == [n] and n.next_try_at == NOW + 2 + 2 and n.attempts == 2


def test_inline_wait_budget_is_per_call(tg: FakeTelegram, cfg: Config) -> None:
    first, second = notice(cfg, 1), notice(cfg, 2)
    sleeps = Sleeps()

    def limit_again(sent: Notice) -> None:
        tg.rate_limit(3)

    tg.rate_limit(3)
    report = deliver(
        cfg, [first, second], now=NOW, sleep=sleeps, on_sent=limit_again, max_inline_wait=5
    )
    assert sleeps.calls == [3] and report.sent == [first] and second.next_try_at == NOW + 3 + 3


def test_rejected_token_is_kept_and_never_shown(tg: FakeTelegram) -> None:
    tg.valid_token = "111:someOtherValidToken"
    cfg = make_cfg(tg.base_url)
    first, second = notice(cfg, 1), notice(cfg, 2)
    report = deliver(cfg, [first, second], now=NOW)
    assert report.remaining == [first, second] and first.attempts == 1 and second.attempts == 0
    assert "token rejected" in first.last_error
    assert [r.status for r in tg.requests] == [401]
    assert_no_token(first.last_error, report.errors, report)


def test_unknown_chat_is_kept(tg: FakeTelegram) -> None:
    tg.chats = {1}
    cfg = make_cfg(tg.base_url)
    first, second = notice(cfg, 1), notice(cfg, 2)
    report = deliver(cfg, [first, second], now=NOW)
    assert report.remaining == [first, second] and "telegram.chat_id" in first.last_error
    assert second.attempts == 0


def test_forbidden_is_kept(tg: FakeTelegram, cfg: Config) -> None:
    tg.fail_with(403, description="Forbidden: bot was blocked by the user")
    n = notice(cfg)
    report = deliver(cfg, [n], now=NOW)
    assert report.remaining == [n] and "blocked" in n.last_error


def test_bad_request_for_one_notice_goes_on_with_the_next(tg: FakeTelegram, cfg: Config) -> None:
    first, second = notice(cfg, 1), notice(cfg, 2)
    tg.fail_with(400, count=1, description="Bad Request: can't parse entities")
    report = deliver(cfg, [first, second], now=NOW)
    assert report.sent == [second] and report.remaining == [first]
    assert "bad request" in first.last_error


def test_timeout_is_kept_and_says_it_may_have_arrived(tg: FakeTelegram) -> None:
    cfg = make_cfg(tg.base_url, timeout=0.3)
    n = notice(cfg)
    tg.slow(1.5)
    report = deliver(cfg, [n], now=NOW)
    assert report.remaining == [n] and n.attempts == 1
    assert "timed out after 0.3s" in n.last_error and "may have arrived" in n.last_error


def test_unexpected_exception_becomes_last_error(
    tg: FakeTelegram, cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from telegram import Bot

    async def boom(self: Bot, *args: object, **kwargs: object) -> None:
        raise RuntimeError(f"boom {TOKEN}")

    monkeypatch.setattr(Bot, "send_message", boom)
    n = notice(cfg)
    report = deliver(cfg, [n], now=NOW)
    assert report.remaining == [n] and n.last_error == "unexpected error: RuntimeError: boom ***"


def test_setup_failure_never_raises(tg: FakeTelegram) -> None:
    cfg = make_cfg(tg.base_url + "{token}/{nope}")  # PTB's Bot() raises KeyError for {nope}
    first, second = notice(cfg, 1), notice(cfg, 2)
    report = deliver(cfg, [first, second], now=NOW)
    assert report.remaining == [first, second] and tg.requests == []
    assert first.attempts == 1 and second.attempts == 0
    assert first.last_error.startswith("unexpected error: KeyError") and "nope" in first.last_error
    assert report.errors == [f"took_over notice {first.id[:8]}: {first.last_error}"]


def test_empty_token_never_raises(tg: FakeTelegram) -> None:
    cfg = make_cfg(tg.base_url, token="")
    n = notice(cfg)
    report = deliver(cfg, [n], now=NOW)
    assert report.remaining == [n] and "token rejected" in n.last_error and tg.requests == []


def test_failing_on_sent_stops_without_raising(tg: FakeTelegram, cfg: Config) -> None:
    first, second = notice(cfg, 1), notice(cfg, 2)

    def disk_full(sent: Notice) -> None:
        raise OSError(28, "No space left on device")

    report = deliver(cfg, [first, second], now=NOW, on_sent=disk_full)
    assert report.sent == [first] and report.remaining == [second]
    assert "No space left" in report.errors[0] and tg.texts == [first.text]


def test_token_never_in_logs_or_report(
    tg: FakeTelegram, cfg: Config, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("telegram", "httpx", "httpcore"):  # as if the user asked for everything
        caplog.set_level(logging.DEBUG, logger=name)
    reports = [deliver(cfg, [notice(cfg, 0)], now=NOW)]
    tg.down()
    reports.append(deliver(cfg, [notice(cfg, 1)], now=NOW))
    tg.up()
    for mode in (lambda: tg.fail_with(500, count=1), lambda: tg.rate_limit(99)):
        mode()
        reports.append(deliver(cfg, [notice(cfg, 2)], now=NOW))
    tg.valid_token = "111:another"
    reports.append(deliver(cfg, [notice(cfg, 3)], now=NOW))
    slow = make_cfg(tg.base_url, timeout=0.2)
    tg.valid_token = TOKEN
    tg.slow(1)
    reports.append(deliver(slow, [notice(slow, 4)], now=NOW))

    assert len(reports[0].sent) == 1 and all(r.remaining for r in reports[1:])
    assert any("sent took_over notice" in r.getMessage() for r in caplog.records)
    assert any("could not send" in r.getMessage() for r in caplog.records)
    assert_no_token(caplog.text, *(r.getMessage() for r in caplog.records), *reports)
    assert_no_token(*(n.last_error for r in reports for n in r.remaining))


# --------------------------------------------------------------------------- import cost


IMPORT_CHECK = textwrap.dedent(
    """
    import sys
    from dataclasses import replace
    from openclaw_failover.config.loader import (
        Config, PrimaryConfig, SSHConfig, StandbyConfig, StandbyGateway, TelegramConfig)
    import openclaw_failover.notify.telegram as notify

    ssh = SSHConfig(user="u", key_file="k", known_hosts="h")
    cfg = Config(
        primary=PrimaryConfig(host="h", ssh=ssh),
        standby=StandbyConfig(gateway=StandbyGateway(start_command=("t",), stop_command=("t",))),
        telegram=TelegramConfig(token="1:abcdefgh", chat_id=1, base_url=sys.argv[1]),
    )
    notify.deliver(cfg, [], now=100.0)
    later = notify.new_notice(cfg, "took_over", reason="r", now=100.0)
    later.next_try_at = 500.0
    notify.deliver(cfg, [later], now=200.0)
    notify.deliver(cfg, [later], now=900.0, dry_run=True)
    notify.deliver(replace(cfg, telegram=None), [later], now=900.0)
    print("idle", "telegram" in sys.modules, "httpx" in sys.modules)
    notify.deliver(cfg, [later], now=900.0)
    print("sending", "telegram" in sys.modules)
    """
)


def test_a_healthy_tick_never_imports_telegram(tg: FakeTelegram) -> None:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, tg.base_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    assert out[:2] == ["idle False False", "sending True"]

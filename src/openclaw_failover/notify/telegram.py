"""Render notices and deliver the outbox to the owner on Telegram.

A notice is rendered once, when it is created (so it keeps its original time),
and waits in the state's outbox until Telegram accepts it.  :func:`deliver`
sends the outbox oldest first and never raises: every failure is recorded on
the notice (``attempts``, ``last_error``, ``next_try_at``) and in the report.

python-telegram-bot is imported only when there is something to send: a
healthy tick with an empty outbox never pays for importing it.

Failure policy of :func:`deliver` (a failed notice is always kept):

* 429 RetryAfter: if the wait fits in ``max_inline_wait`` (a budget for the
  whole call) sleep and try once more; otherwise set ``next_try_at`` and stop.
* network error, timeout, 5xx: stop, keep order; the next tick retries.
* token rejected (401/404), forbidden (403), "chat not found", chat migrated:
  the configuration is wrong and every notice would fail alike, so stop.
* any other 400 concerns this notice only (e.g. text rejected): go on with
  the next one.
* anything unexpected: recorded like a network error; stop.

A read timeout is ambiguous (Telegram may have accepted the message): the
notice is kept and sent again, so delivery is at-least-once in that case.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from openclaw_failover.config.loader import DEFAULT_MESSAGES, Config, TelegramConfig
from openclaw_failover.config.secrets import Masker, shorten
from openclaw_failover.core.model import Notice

if TYPE_CHECKING:
    from telegram import Bot

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # Telegram's limit for one message
MAX_ERROR = 300  # characters kept of an error text
GENERIC_TEMPLATE = "{standby}: {kind} {detail} ({time})"
# Third-party loggers that would print the token: httpx logs every request URL at
# INFO, PTB's Bot logs its base URL at DEBUG.  PTB's errors all reach us as
# exceptions and are logged here, masked, so its own logger is silenced.
QUIET_LOGGERS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "telegram": logging.CRITICAL,
}

_BLANKS = re.compile(r"[ \t]+")
_EMPTY = "\x00"  # stands in for an empty field while tidying the rendered text
_TIDY = (
    (re.compile(r"[ \t]*\([ \t]*\x00[ \t]*\)"), ""),  # "(E)" -> ""
    (re.compile(r"\x00[ \t]*[;,][ \t]*"), ""),  # "(E; t)" -> "(t)"
    (re.compile(r"[ \t]*[;,:][ \t]*\x00"), ""),  # "x: E." -> "x."
    (re.compile(r"[ \t]*\x00"), ""),  # "a. E (t)" -> "a. (t)"
)


# --------------------------------------------------------------------------- rendering


def format_time(at: float) -> str:
    """Epoch seconds as ``2026-11-30 14:02 UTC``."""
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def render(cfg: Config, kind: str, *, reason: str = "", detail: str = "", at: float) -> str:
    """The text of a ``kind`` notice: the configured template, filled in and masked.

    Empty ``reason``/``detail`` are dropped together with their separators and
    empty parentheses.  An unknown kind or a broken template falls back to the
    default text (or a generic one); rendering never raises.
    """
    mask = cfg.masker

    def field(text: str) -> str:
        """Masked, runs of blanks collapsed (the tidying below stays linear), bounded."""
        text = _BLANKS.sub(" ", mask(text.replace(_EMPTY, ""))).strip()
        return text[:MAX_TEXT] or _EMPTY

    values = {
        "primary": cfg.primary.name,
        "standby": cfg.standby.name,
        "reason": field(reason),
        "detail": field(detail),
        "time": format_time(at),
        "kind": kind,
    }
    templates = [cfg.messages.get(kind), DEFAULT_MESSAGES.get(kind), GENERIC_TEMPLATE]
    text = ""
    for template in templates:
        if not template:
            continue
        try:
            text = template.format(**values)
            break
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            log.warning("bad template for %s notice (%s); using the default", kind, exc)
    for pattern, replacement in _TIDY:
        text = pattern.sub(replacement, text)
    text = text.strip() or f"{kind} ({values['time']})"
    return _fit(mask(text))


def new_notice(cfg: Config, kind: str, *, reason: str = "", detail: str = "", now: float) -> Notice:
    """A new notice of ``kind``, rendered now, with a fresh unique id."""
    text = render(cfg, kind, reason=reason, detail=detail, at=now)
    return Notice(id=uuid.uuid4().hex, kind=kind, text=text, created_at=now)


def _fit(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "\u2026"


# --------------------------------------------------------------------------- delivery


@dataclass
class DeliveryReport:
    """What :func:`deliver` did.  Notices are the outbox's own objects, updated in place."""

    sent: list[Notice] = field(default_factory=list)  # accepted by Telegram, in order
    remaining: list[Notice] = field(default_factory=list)  # still to send, oldest first
    errors: list[str] = field(default_factory=list)  # one line each, masked
    would_send: list[Notice] = field(default_factory=list)  # dry run: due notices
    configured: bool = True  # False: no telegram section, nothing can be sent

    @property
    def ok(self) -> bool:
        """Nothing failed (deferred or not-yet-due notices are not failures)."""
        return not self.errors


def deliver(
    cfg: Config,
    outbox: list[Notice],
    *,
    now: float,
    dry_run: bool = False,
    on_sent: Callable[[Notice], None] | None = None,
    sleep: Callable[[float], object] = time.sleep,
    max_inline_wait: float = 5.0,
) -> DeliveryReport:
    """Send the due notices of ``outbox`` oldest first; never raises.

    ``on_sent(notice)`` is called right after Telegram accepted each notice, so
    the caller can persist its state before the next send.  Notices whose
    ``next_try_at`` is in the future are skipped.  The outbox list itself is not
    modified but its notices are updated in place (``attempts`` counts failed
    requests, a 429 waited out inline included); ``report.remaining`` is what
    should stay in the outbox.  Without a telegram section nothing is sent and
    ``report.configured`` is False; a dry run reports the due notices in
    ``would_send``.  Neither imports python-telegram-bot.
    """
    queue = sorted(outbox, key=lambda n: n.created_at)
    due = [n for n in queue if n.next_try_at <= now]
    report = DeliveryReport(remaining=list(queue), configured=cfg.telegram is not None)
    if cfg.telegram is None:
        if queue:
            report.errors.append(f"Telegram is not configured: {len(queue)} notice(s) not sent")
        return report
    if dry_run:
        report.would_send = due
        return report
    if not due:
        return report
    sender = _Sender(cfg.telegram, cfg.masker, report, now=now, on_sent=on_sent, sleep=sleep)
    sender.inline_budget = max_inline_wait
    try:
        import asyncio  # here, not at the top: ~40 ms a healthy tick need not pay

        with warnings.catch_warnings():
            # PTB 22 warns about its own use of RetryAfter.retry_after as an int
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"telegram\b")
            asyncio.run(sender.run(due))
    except Exception as exc:  # import, loop or client setup failed: nothing escapes
        sender.crashed(exc, due)
    sent_ids = {n.id for n in report.sent}
    report.remaining = [n for n in queue if n.id not in sent_ids]
    return report


def quiet_http_loggers() -> None:
    """Raise the level of the loggers that would print the bot token."""
    for name, level in QUIET_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level < level:
            logger.setLevel(level)


class _Sender:
    """One delivery run: one Bot, one HTTP client, one event loop."""

    def __init__(
        self,
        tg: TelegramConfig,
        mask: Masker,
        report: DeliveryReport,
        *,
        now: float,
        on_sent: Callable[[Notice], None] | None,
        sleep: Callable[[float], object],
    ) -> None:
        self.tg = tg
        self.mask = mask
        self.report = report
        self.now = now
        self.on_sent = on_sent
        self.sleep = sleep
        self.inline_budget = 0.0
        self.slept = 0.0
        self.current: Notice | None = None
        self.started = False

    async def run(self, due: Iterable[Notice]) -> None:
        quiet_http_loggers()
        from telegram import Bot
        from telegram.request import HTTPXRequest

        t = self.tg.timeout
        request = HTTPXRequest(connect_timeout=t, read_timeout=t, write_timeout=t, pool_timeout=t)
        try:
            # No bot.initialize(): it would cost a getMe round trip and is not needed.
            bot = Bot(
                self.tg.token,
                base_url=self.tg.base_url,
                request=request,
                get_updates_request=request,
            )
            for notice in due:
                self.started = True
                self.current = notice
                go_on = await self._deliver_one(bot, notice)
                self.current = None
                if not go_on:
                    break
        finally:
            await request.shutdown()

    async def _deliver_one(self, bot: Bot, notice: Notice) -> bool:
        """Send one notice (retrying once after a short 429); True: go on with the next."""
        from telegram.error import RetryAfter

        try:
            await self._send(bot, notice)
        except RetryAfter as exc:
            wait = _retry_after(exc)
            if wait > self.inline_budget:
                return self._failed(notice, exc)
            notice.attempts += 1
            log.info("Telegram rate limit: waiting %gs before sending again", wait)
            self.inline_budget -= wait
            self.slept += wait
            self.sleep(wait)
            try:
                await self._send(bot, notice)
            except Exception as again:
                return self._failed(notice, again)
        except Exception as exc:
            return self._failed(notice, exc)
        return self._sent(notice)

    async def _send(self, bot: Bot, notice: Notice) -> None:
        text = _fit(notice.text.strip() or f"{notice.kind} notice")
        message = await bot.send_message(chat_id=self.tg.chat_id, text=text)
        log.debug("Telegram accepted notice %s as message %s", notice.id[:8], message.message_id)

    def _sent(self, notice: Notice) -> bool:
        self.report.sent.append(notice)
        log.info("sent %s notice %s to Telegram", notice.kind, notice.id[:8])
        if self.on_sent is None:
            return True
        try:
            self.on_sent(notice)
        except Exception as exc:  # cannot record it: stop rather than risk resending
            error = shorten(self.mask(f"saving state after sending failed: {exc!r}"), MAX_ERROR)
            self.report.errors.append(f"{notice.kind} notice {notice.id[:8]}: {error}")
            log.error("%s", self.report.errors[-1])
            return False
        return True

    def _failed(self, notice: Notice, exc: BaseException) -> bool:
        error, go_on, wait = _classify(exc, self.tg.timeout)
        notice.attempts += 1
        notice.last_error = shorten(self.mask(error), MAX_ERROR)
        if wait is not None:
            notice.next_try_at = self.now + self.slept + wait
        self.report.errors.append(f"{notice.kind} notice {notice.id[:8]}: {notice.last_error}")
        log.warning("could not send %s", self.report.errors[-1])
        return go_on

    def crashed(self, exc: Exception, due: list[Notice]) -> None:
        """Record an exception that escaped the run (setup or teardown failed)."""
        done = {n.id for n in self.report.sent}
        target = self.current or (None if self.started else due[0])
        if target is not None and target.id not in done:
            self._failed(target, exc)
            return
        error = shorten(self.mask(f"unexpected error: {type(exc).__name__}: {exc}"), MAX_ERROR)
        self.report.errors.append(error)
        log.warning("Telegram delivery: %s", error)


def _retry_after(exc: Any) -> float:
    """RetryAfter.retry_after in seconds (an int or, with PTB_TIMEDELTA, a timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 warns on every read of the int form
        value = exc.retry_after
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return max(seconds, 0.0)


def _classify(exc: BaseException, timeout: float) -> tuple[str, bool, float | None]:
    """(error text, go on with the next notice?, seconds to wait before retrying)."""
    text = " ".join(str(exc).split()) or type(exc).__name__  # whole: masked, then shortened
    try:
        from telegram import error as tg
    except ImportError:  # python-telegram-bot itself is missing or broken
        return f"unexpected error: {type(exc).__name__}: {text}", False, None
    if isinstance(exc, tg.RetryAfter):
        wait = _retry_after(exc)
        return f"rate limited by Telegram: retry after {wait:g}s", False, wait
    if isinstance(exc, tg.InvalidToken):
        return f"bot token rejected ({text}): check telegram.token and base_url", False, None
    if isinstance(exc, tg.Forbidden):
        return f"forbidden ({text}): has the owner started or blocked the bot?", False, None
    if isinstance(exc, tg.ChatMigrated):
        return f"chat moved to {exc.new_chat_id}: update telegram.chat_id", False, None
    if isinstance(exc, tg.BadRequest):  # a NetworkError subclass: test it first
        if "chat" in text.lower():
            return f"bad request ({text}): check telegram.chat_id", False, None
        return f"bad request ({text})", True, None
    if isinstance(exc, tg.TimedOut):
        cause = type(exc.__cause__).__name__
        maybe = "; the message may have arrived" if cause in ("ReadTimeout", "WriteTimeout") else ""
        return f"timed out after {timeout:g}s{maybe}", False, None
    if isinstance(exc, tg.NetworkError):
        return f"network error: {text}", False, None
    if isinstance(exc, tg.TelegramError):
        return f"Telegram error: {text}", False, None
    return f"unexpected error: {type(exc).__name__}: {text}", False, None

"""`ocf doctor`: the telegram group (token valid, chat reachable, optionally a test message).

Uses python-telegram-bot like notify.py does (imported here, only when the
doctor runs), with ``telegram.base_url`` and ``telegram.timeout`` from the
config.  Every text goes through the Sink's masker: the token never shows.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import TYPE_CHECKING

from openclaw_failover.config.loader import TelegramConfig
from openclaw_failover.notify import telegram as notify
from openclaw_failover.ops.doctor.base import DoctorContext, Sink

if TYPE_CHECKING:
    from telegram import Bot

TOKEN_FIX = "check telegram.token (from @BotFather) and telegram.base_url"
NETWORK_FIX = "check this standby's internet access (or telegram.base_url)"
CHAT_FIX = (
    "send /start to the bot from the chat that should get notices, then set telegram.chat_id "
    "to that chat's id (getUpdates shows it)"
)


def check_telegram(ctx: DoctorContext, out: Sink) -> None:
    tg = ctx.cfg.telegram
    if tg is None:
        out.skip("no telegram: section: notices are only logged")
        return
    notify.quiet_http_loggers()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"telegram\b")
        asyncio.run(_check(ctx, tg, out))


async def _check(ctx: DoctorContext, tg: TelegramConfig, out: Sink) -> None:
    from telegram import Bot
    from telegram.request import HTTPXRequest

    t = tg.timeout
    request = HTTPXRequest(connect_timeout=t, read_timeout=t, write_timeout=t, pool_timeout=t)
    try:
        bot = Bot(tg.token, base_url=tg.base_url, request=request, get_updates_request=request)
        if not await _get_me(bot, tg, out):
            out.skip("chat not checked: the token does not work")
            return
        chat_ok = await _get_chat(bot, tg, out)
        if ctx.send_test and chat_ok is not False:
            await _send_test(ctx, bot, tg, out)
        elif not ctx.send_test:
            out.skip("no test message sent (ocf doctor --send-test sends one)")
    finally:
        await request.shutdown()


async def _get_me(bot: Bot, tg: TelegramConfig, out: Sink) -> bool:
    try:
        me = await bot.get_me()
    except Exception as exc:
        text, fix = _explain(exc, tg)
        out.fail(f"getMe failed: {text}", fix)
        return False
    out.ok(f"token valid: bot @{me.username} ({tg.base_url})")
    return True


async def _get_chat(bot: Bot, tg: TelegramConfig, out: Sink) -> bool | None:
    """True: reachable; False: not; None: this Bot API cannot tell (no getChat)."""
    from telegram.error import InvalidToken

    try:
        chat = await bot.get_chat(tg.chat_id)
    except InvalidToken as exc:  # 401/404 right after a good getMe: getChat is unknown here
        out.warn(
            f"chat {tg.chat_id} not checked: {tg.base_url} does not answer getChat ({exc})",
            "ocf doctor --send-test checks the chat by sending a test message",
        )
        return None
    except Exception as exc:
        text, fix = _explain(exc, tg)
        out.fail(f"chat {tg.chat_id} not reachable: {text}", fix)
        return False
    name = chat.title or chat.username or chat.first_name or ""
    out.ok(f"chat {tg.chat_id} reachable ({chat.type}{' ' + name if name else ''})")
    return True


async def _send_test(ctx: DoctorContext, bot: Bot, tg: TelegramConfig, out: Sink) -> None:
    when = notify.format_time(ctx.now)
    text = f"ocf doctor: test message from {ctx.cfg.standby.name} ({when}). Notices arrive here."
    try:
        message = await bot.send_message(chat_id=tg.chat_id, text=text)
    except Exception as exc:
        detail, fix = _explain(exc, tg)
        out.fail(f"test message not sent: {detail}", fix)
        return
    out.ok(f"test message sent to chat {tg.chat_id} (message {message.message_id})")


def _explain(exc: BaseException, tg: TelegramConfig) -> tuple[str, str]:
    """(what went wrong, the fix) for a Bot API error."""
    from telegram import error

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, error.RetryAfter):
        return f"rate limited by Telegram ({text})", "run ocf doctor again in a minute"
    if isinstance(exc, error.InvalidToken):
        return f"token rejected by {tg.base_url} ({text})", TOKEN_FIX
    if isinstance(exc, error.Forbidden):
        return f"forbidden ({text})", "unblock the bot, or add it back to the chat"
    if isinstance(exc, error.ChatMigrated):
        return f"chat moved to {exc.new_chat_id}", f"set telegram.chat_id: {exc.new_chat_id}"
    if isinstance(exc, error.BadRequest):
        return f"bad request ({text})", CHAT_FIX if "chat" in text.lower() else TOKEN_FIX
    if isinstance(exc, error.TimedOut):
        return f"no answer within {tg.timeout:g}s", NETWORK_FIX
    if isinstance(exc, error.NetworkError):
        return f"network error ({text})", NETWORK_FIX
    return f"{type(exc).__name__}: {text}", NETWORK_FIX

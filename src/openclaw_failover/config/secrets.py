"""The one masker: every text that leaves ocf (logs, events, status, notices, errors)
passes through a :class:`Masker` built from the config's secrets, then, if it must be
short, through :func:`shorten` (mask first, then shorten).  The text helpers that
put a message on one line live here too, so there is one of each.  A command builds it once:
``cfg.masker``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
# A Telegram Bot API token in a URL (``/bot<id>:<secret>/``), also one ocf was not told
# about (the gateway's own bot): masked by its shape.
_BOT_TOKEN = re.compile(r"bot\d{3,}:[A-Za-z0-9_-]{8,}")


class Masker:
    """Replaces every known secret in a text by ``***``: the one masker of ocf.

    Any Bot API token in a URL is masked by its shape too.  Each secret is also masked
    in its URL-encoded forms (``quote`` with and without
    ``/`` kept, ``quote_plus``), as an error page or a log line may echo a request.
    Callers mask first and shorten afterwards (:func:`shorten`): a secret cut in
    half by a shortening would no longer be found.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:
                forms.update((secret, quote(secret, safe=""), quote(secret), quote_plus(secret)))
        self.secrets = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return _BOT_TOKEN.sub("bot" + MASK, text)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) as one space."""
    return " ".join(str(text).split())


def joined_lines(text: str) -> str:
    """Several lines (libpq's messages) as one, joined with "; "."""
    return "; ".join(line for line in (one_line(x) for x in str(text).splitlines()) if line)


def describe(exc: BaseException) -> str:
    """An exception on one line: its message, or its type's name when that is empty."""
    return joined_lines(str(exc)) or type(exc).__name__


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters; call it on masked text only."""
    line = one_line(text)
    return line if len(line) <= limit else line[: limit - 3] + "..."

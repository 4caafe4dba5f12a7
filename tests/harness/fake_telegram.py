"""A local stand-in for the Telegram Bot API, for tests.

``FakeTelegram`` is a threaded HTTP server on 127.0.0.1 that answers the two
Bot API methods ocf uses (``getMe`` and ``sendMessage``) with the JSON the real
API sends, so python-telegram-bot parses it exactly as in production::

    with FakeTelegram(valid_token=TOKEN) as tg:
        bot = Bot(TOKEN, base_url=tg.base_url)   # -> http://127.0.0.1:PORT/bot<TOKEN>/...
        ...
        assert tg.messages[0].text == "hello"

Failure modes can be switched at runtime from the test thread: ``fail_with``
(any HTTP status), ``rate_limit`` (429 with ``retry_after``), ``slow`` (answer
late, for client timeouts) and ``down``/``up`` (stop listening, so connections
are refused, then listen again on the same port).  Every request is recorded
in ``requests``; every accepted message in ``messages``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DEFAULT_TOKEN = "123456789:AAFakeTokenForTests_abcdefghijklmno"
MAX_TEXT = 4096
CHANNEL_ID = -1001234567890


@dataclass(frozen=True)
class SentMessage:
    """One message the fake accepted."""

    token: str
    chat_id: int | str
    text: str
    message_id: int


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request the fake received, whatever it answered."""

    method: str  # Bot API method as sent ("sendMessage"); "" if the path was not /bot<token>/...
    token: str
    status: int  # HTTP status of the answer
    params: dict[str, str] = field(default_factory=dict)
    at: float = 0.0  # time.time() when it arrived


@dataclass
class _Mode:
    fail_status: int = 0
    fail_count: int | None = None  # None = until heal()
    fail_description: str = ""
    fail_body: bytes | None = None
    rate_retry_after: int = 0
    rate_count: int = 0
    delay: float = 0.0


class FakeTelegram:
    """A fake Bot API server; use as a context manager (``start``/``stop`` also work)."""

    def __init__(
        self,
        valid_token: str = DEFAULT_TOKEN,
        *,
        chats: set[int | str] | None = None,
        port: int = 0,
    ) -> None:
        self.valid_token = valid_token
        self.chats = chats  # known chat ids; None = every chat exists
        self.port = port
        self.messages: list[SentMessage] = []
        self.requests: list[ApiRequest] = []
        self._mode = _Mode()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._next_id = 1

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeTelegram:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.up()

    def stop(self) -> None:
        self.down()

    @property
    def base_url(self) -> str:
        """Everything before the token, as python-telegram-bot's ``base_url`` wants it."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def up(self) -> None:
        """Listen (again) on the same port."""
        if self._server is not None:
            return
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-telegram"
        )
        self._thread.daemon = True
        self._thread.start()

    def down(self) -> None:
        """Stop listening: new connections are refused until ``up()``."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    # ------------------------------------------------------------------ modes

    def fail_with(
        self,
        status: int,
        *,
        count: int | None = None,
        description: str = "",
        body: bytes | None = None,
    ) -> None:
        """Answer every request (or the next ``count``) with HTTP ``status``.

        The body is Bot API error JSON with ``description`` (default: the
        status phrase), or ``body`` verbatim (e.g. an nginx HTML page for 502).
        """
        with self._lock:
            self._mode.fail_status = status
            self._mode.fail_count = count
            self._mode.fail_description = description
            self._mode.fail_body = body

    def rate_limit(self, retry_after: int, count: int = 1) -> None:
        """Answer the next ``count`` requests with 429 and ``retry_after`` seconds."""
        with self._lock:
            self._mode.rate_retry_after = retry_after
            self._mode.rate_count = count

    def slow(self, seconds: float) -> None:
        """Wait ``seconds`` before answering each request (0 = answer at once)."""
        with self._lock:
            self._mode.delay = seconds

    def heal(self) -> None:
        """Clear every failure mode (does not bring a downed server up)."""
        with self._lock:
            self._mode = _Mode()

    @property
    def texts(self) -> list[str]:
        """Texts of the accepted messages, in order."""
        with self._lock:
            return [m.text for m in self.messages]

    def calls(self, method: str) -> list[ApiRequest]:
        """Requests received for one Bot API method (case-insensitive)."""
        with self._lock:
            return [r for r in self.requests if r.method.lower() == method.lower()]

    # ------------------------------------------------------------------ request handling

    def _answer(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        """Decide the answer for one request (called from a server thread)."""
        with self._lock:
            delay = self._mode.delay
        if delay:
            time.sleep(delay)
        token, method = _split_path(path)
        with self._lock:
            status, payload = self._decide(token, method, params)
            self.requests.append(ApiRequest(method, token, status, dict(params), time.time()))
        if isinstance(payload, bytes):
            return status, payload
        return status, json.dumps(payload).encode()

    def _decide(self, token: str, method: str, params: dict[str, str]) -> tuple[int, Any]:
        mode = self._mode
        if mode.rate_count > 0:
            mode.rate_count -= 1
            n = mode.rate_retry_after
            return 429, _error(429, f"Too Many Requests: retry after {n}", retry_after=n)
        if mode.fail_status and mode.fail_count != 0:
            if mode.fail_count is not None:
                mode.fail_count -= 1
            status = mode.fail_status
            if mode.fail_body is not None:
                return status, mode.fail_body
            text = mode.fail_description or HTTPStatus(status).phrase
            return status, _error(status, text)
        if not method:
            return 404, _error(404, "Not Found")
        if token != self.valid_token:
            return 401, _error(401, "Unauthorized")
        if method.lower() == "getme":
            return 200, {"ok": True, "result": self._bot_user()}
        if method.lower() == "sendmessage":
            return self._send_message(token, params)
        return 404, _error(404, "Not Found")

    def _send_message(self, token: str, params: dict[str, str]) -> tuple[int, Any]:
        raw_chat = params.get("chat_id", "").strip()
        text = params.get("text", "")
        if not raw_chat:
            return 400, _error(400, "Bad Request: chat_id is empty")
        chat_id: int | str = int(raw_chat) if raw_chat.lstrip("-").isdigit() else raw_chat
        if self.chats is not None and chat_id not in self.chats:
            return 400, _error(400, "Bad Request: chat not found")
        if not text.strip():
            return 400, _error(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            return 400, _error(400, "Bad Request: message is too long")
        message_id = self._next_id
        self._next_id += 1
        self.messages.append(SentMessage(token, chat_id, text, message_id))
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": self._bot_user(),
            "text": text,
        }
        return 200, {"ok": True, "result": message}

    def _bot_user(self) -> dict[str, Any]:
        bot_id = self.valid_token.split(":", 1)[0]
        return {
            "id": int(bot_id) if bot_id.isdigit() else 1,
            "is_bot": True,
            "first_name": "Fake OCF Bot",
            "username": "fake_ocf_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }


def _split_path(path: str) -> tuple[str, str]:
    """``/bot<token>/<method>`` -> (token, method); ("", "") when it does not match."""
    if not path.startswith("/bot"):
        return "", ""
    token, _, method = path[len("/bot") :].partition("/")
    if not token or not method or "/" in method:
        return "", ""
    return token, method


def _chat(chat_id: int | str) -> dict[str, Any]:
    if isinstance(chat_id, int):
        return {"id": chat_id, "type": "private", "first_name": "Owner"}
    name = chat_id.lstrip("@")
    return {"id": CHANNEL_ID, "type": "channel", "title": name, "username": name}


def _error(code: int, description: str, *, retry_after: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so down() leaves no kept-alive socket behind.
    protocol_version = "HTTP/1.0"
    server_version = "FakeTelegram/1.0"

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(self.rfile.read(length) if length else b"")

    def _handle(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query))
        params.update(_parse_body(self.headers.get("Content-Type", ""), body))
        fake: FakeTelegram = self.server.fake  # type: ignore[attr-defined]
        status, payload = fake._answer(parts.path, params)
        is_json = payload.startswith(b"{")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if is_json else "text/html")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (timed out) before the answer: as in real life
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""


def _parse_body(content_type: str, body: bytes) -> dict[str, str]:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        data = json.loads(body)
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    if content_type.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return {}

"""A local stand-in for the Telegram Bot API that records what would have been sent.

    python -m openclaw_failover.sandbox.telegram --port N --token T --record FILE

Answers the two methods ocf uses, ``getMe`` and ``sendMessage``, with the JSON
the real API sends (so python-telegram-bot parses it as in production), at
``http://127.0.0.1:N/bot<T>/<method>``.  Every accepted message is appended to
``FILE`` as one JSON line ``{"chat_id": ..., "text": ..., "at": ...}``; a wrong
token gets 401 like the real API.  :func:`read_messages` reads ``FILE``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DEFAULT_TOKEN = "123456789:SANDBOX-fake-token-not-a-secret"


def read_messages(record: Path) -> list[dict[str, Any]]:
    """The messages recorded so far, oldest first."""
    try:
        lines = record.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


class FakeBotAPI(ThreadingHTTPServer):
    """The server; usable in-process too (``serve_forever`` in a thread)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, token: str, record: Path) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.token = token
        self.record = record
        self.lock = threading.Lock()
        self.next_id = 1

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        token, _, method = path.removeprefix("/bot").partition("/")
        if not path.startswith("/bot") or not method:
            return 404, _error(404, "Not Found")
        if token != self.token:
            return 401, _error(401, "Unauthorized")
        bot = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "ocf sandbox bot",
            "username": "ocf_sandbox_bot",
        }
        if method.lower() == "getme":
            return 200, {"ok": True, "result": bot}
        if method.lower() != "sendmessage":
            return 404, _error(404, "Not Found")
        text, chat = params.get("text", ""), params.get("chat_id", "")
        if not text.strip() or not chat:
            return 400, _error(400, "Bad Request: message text or chat_id is empty")
        chat_id: int | str = int(chat) if chat.lstrip("-").isdigit() else chat
        with self.lock:
            message_id, self.next_id = self.next_id, self.next_id + 1
            with self.record.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"chat_id": chat_id, "text": text, "at": time.time()}) + "\n")
        chat_obj = {"id": chat_id, "type": "private", "first_name": "Owner"}
        result = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat_obj,
            "from": bot,
            "text": text,
        }
        return 200, {"ok": True, "result": result}


def _error(code: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": description}


class _Handler(BaseHTTPRequestHandler):
    server: FakeBotAPI
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(self.rfile.read(length) if length else b"")

    def _handle(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query))
        ctype = self.headers.get("Content-Type", "")
        if body and ctype.startswith("application/json"):
            data = json.loads(body)
            params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()})
        elif body and ctype.startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        status, payload = self.server.answer(parts.path, params)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m openclaw_failover.sandbox.telegram")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", default=DEFAULT_TOKEN)
    ap.add_argument("--record", required=True, help="JSON lines file of the messages sent")
    args = ap.parse_args(argv)
    try:
        server = FakeBotAPI(args.port, args.token, Path(args.record))
    except OSError as exc:
        print(f"fake telegram: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 2

    def on_signal(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

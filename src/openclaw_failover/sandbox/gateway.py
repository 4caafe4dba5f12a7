"""A stand-in OpenClaw gateway: a small HTTP server process on 127.0.0.1.

    python -m openclaw_failover.sandbox.gateway --port N --dsn DSN --workspace DIR [--name NAME]

``GET`` any path: ``200 {"ok": true, "name": NAME}`` (the health check).
``POST /memory`` with ``{"text": "...", "category": "...", "scope": "..."}``:
writes the memory into its own database as OpenClaw does through memU
(resource, memory item with its embedding, category got or created, link; see
:func:`~openclaw_failover.sandbox.memu.write_memory`), appends a line to
``DIR/memory/<UTC date>.md`` and answers ``200`` with the ids and the file.
Exits 0 on SIGTERM or SIGINT, 2 when the port cannot be bound.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

MAX_BODY = 64 * 1024


def memory_file(workspace: Path, at: float | None = None) -> Path:
    """``workspace/memory/<UTC date>.md``: where a memory written at ``at`` is noted."""
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() if at is None else at))
    return workspace / "memory" / f"{day}.md"


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, name: str, dsn: str, workspace: Path) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.name = name
        self.dsn = dsn
        self.workspace = workspace
        self.file_lock = threading.Lock()

    def remember(self, body: dict[str, Any]) -> dict[str, Any]:
        """Write the memory (database, then the workspace file); its ids."""
        import psycopg

        from openclaw_failover.sandbox.memu import DEFAULT_SCOPE, write_memory

        text = str(body.get("text") or "").strip()
        if not text:
            raise ValueError("text is empty")
        category = str(body.get("category") or "personal_info")
        scope = str(body.get("scope") or DEFAULT_SCOPE)
        with psycopg.connect(self.dsn, connect_timeout=5) as conn:
            ids: dict[str, Any] = dict(write_memory(conn, text, category, scope))
        path = memory_file(self.workspace)
        with self.file_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(f"- {time.strftime('%H:%M:%S', time.gmtime())} [{category}] {text}\n")
        ids["file"] = str(path.relative_to(self.workspace))
        return ids


class _Handler(BaseHTTPRequestHandler):
    server: GatewayServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(200, {"ok": True, "name": self.server.name})

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/memory":
            self._answer(404, {"ok": False, "error": "POST /memory only"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(min(length, MAX_BODY)) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            result = self.server.remember(body)
        except (ValueError, UnicodeDecodeError) as exc:
            self._answer(400, {"ok": False, "error": str(exc)})
            return
        except Exception as exc:  # the database is down, ...: a 500, as a gateway would
            self._answer(500, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            return
        self._answer(200, {"ok": True, "name": self.server.name, **result})

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        if self.command == "POST":  # health checks stay out of the log
            sys.stderr.write(f"{self.server.name}: {format % args}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m openclaw_failover.sandbox.gateway")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dsn", required=True, help="libpq conninfo of this gateway's memU")
    ap.add_argument("--workspace", required=True, help="folder of memory/<date>.md")
    ap.add_argument("--name", default="gateway")
    args = ap.parse_args(argv)
    try:
        server = GatewayServer(args.port, args.name, args.dsn, Path(args.workspace))
    except OSError as exc:
        print(f"{args.name}: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 2

    def on_signal(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"{args.name}: pid {os.getpid()} listening on 127.0.0.1:{args.port}", file=sys.stderr)
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

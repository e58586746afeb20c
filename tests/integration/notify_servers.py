"""Real HTTP servers on 127.0.0.1 for the notifier tests (stdlib ``http.server`` in a thread).

:class:`BotApi` speaks the Telegram Bot API's ``sendMessage`` semantics
(https://core.telegram.org/bots/api#making-requests): ``POST /bot<token>/sendMessage`` with a
JSON body; ``{"ok": true, "result": {...}}`` on success; ``{"ok": false, "error_code",
"description", "parameters": {"retry_after": s}}`` on errors; 401 for a wrong token, 400 for an
unknown chat. Like Telegram it enforces its limits itself: a request arriving sooner than the
configured interval after the previous one to the same chat, beyond the per-group
per-minute count or the overall per-second count, gets 429 with ``retry_after`` (and is
counted in :attr:`BotApi.violations`). A ``script`` callable can answer a request instead (a
429 storm, 500s).

:class:`WebhookReceiver` takes JSON POSTs, with its own optional script.

Every request is recorded with the server's monotonic receive time.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ALERT_IN_LINK = re.compile(r"alert=(\d+-\d+)")

Reply = tuple[int, dict[str, Any], dict[str, str]]
"""(status, JSON body, headers)."""


@dataclass
class Request:
    """One request as received: monotonic time (s), destination, alert stream id, status."""

    t: float
    dest: str
    stream_id: str | None
    status: int
    body: dict[str, Any] = field(default_factory=dict)


class _Server:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                status, body, headers = owner.answer(self.path, raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, path: str, raw: bytes) -> Reply:
        raise NotImplementedError

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def ok(self, dest: str) -> list[Request]:
        """Successful requests to ``dest``, in arrival order."""
        with self.lock:
            return [r for r in self.requests if r.dest == dest and r.status == 200]


class BotApi(_Server):
    """A Bot API server for one bot ``token``; ``bad_chats`` answer 400 chat not found.

    ``script(n, chat_id)`` (n: 0-based request count) may return a :data:`Reply` to answer
    instead of the normal handling (the request is still counted against the limits).
    """

    def __init__(
        self,
        token: str,
        per_chat_interval_s: float,
        per_group_per_min: int,
        global_per_s: int,
        bad_chats: tuple[str, ...] = (),
        script: Callable[[int, str], Reply | None] | None = None,
    ) -> None:
        super().__init__()
        self.token = token
        self.per_chat_interval_s = per_chat_interval_s
        self.per_group_per_min = per_group_per_min
        self.global_per_s = global_per_s
        self.bad_chats = bad_chats
        self.script = script
        self.violations = 0
        self._last: dict[str, float] = {}
        self._group: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._message_id = 0

    def _over_limit(self, chat: str, now: float) -> bool:
        over = now - self._last.get(chat, -1e18) < self.per_chat_interval_s
        if chat.startswith(("-", "@")):
            window = self._group.setdefault(chat, deque())
            while window and now - window[0] >= 60.0:
                window.popleft()
            over = over or len(window) >= self.per_group_per_min
            window.append(now)
        while self._all and now - self._all[0] >= 1.0:
            self._all.popleft()
        over = over or len(self._all) >= self.global_per_s
        self._all.append(now)
        self._last[chat] = now
        return over

    def answer(self, path: str, raw: bytes) -> Reply:
        now = time.monotonic()
        if path != f"/bot{self.token}/sendMessage":
            reply: Reply = (
                401,
                {"ok": False, "error_code": 401, "description": "Unauthorized"},
                {},
            )
            with self.lock:
                self.requests.append(Request(now, "?", None, 401))
            return reply
        body = json.loads(raw)
        chat = str(body.get("chat_id"))
        m = ALERT_IN_LINK.search(body.get("text", ""))
        sid = m.group(1) if m else None
        with self.lock:
            n = len(self.requests)
            over = self._over_limit(chat, now)
            self.violations += over
            reply = self.script(n, chat) if self.script else None
            if reply is None and over:
                reply = (429, {"ok": False, "error_code": 429,
                               "description": "Too Many Requests: retry after 1",
                               "parameters": {"retry_after": 1}}, {})  # fmt: skip
            if reply is None and chat in self.bad_chats:
                reply = (400, {"ok": False, "error_code": 400,
                               "description": "Bad Request: chat not found"}, {})  # fmt: skip
            if reply is None:
                self._message_id += 1
                result = {"message_id": self._message_id, "chat": {"id": chat}}
                reply = (200, {"ok": True, "result": result}, {})
            self.requests.append(Request(now, chat, sid, reply[0], body))
        return reply


class WebhookReceiver(_Server):
    """Takes JSON POSTs on any path (``dest`` = the path); ``script(n)`` may answer instead."""

    def __init__(self, script: Callable[[int], Reply | None] | None = None) -> None:
        super().__init__()
        self.script = script

    def answer(self, path: str, raw: bytes) -> Reply:
        now = time.monotonic()
        body = json.loads(raw)
        sid = body.get("stream_id")
        if sid is None:  # discord/slack: the id is in the link of the text
            m = ALERT_IN_LINK.search(body.get("content") or body.get("text") or "")
            sid = m.group(1) if m else None
        with self.lock:
            reply = self.script(len(self.requests)) if self.script else None
            reply = reply or (200, {}, {})
            self.requests.append(Request(now, path, sid, reply[0], body))
        return reply

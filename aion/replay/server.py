"""A loopback WebSocket server that replays a recorded session in Kite's ticker protocol.

It lets aion run without Kite credentials (DESIGN.md, "Running without Kite
credentials"): ``aion scan`` connects to it with the very same client code it
uses for ``wss://ws.kite.trade``.

What it speaks (Kite Connect WebSocket API, https://kite.trade/docs/connect/v3/websocket/):

- Handshake ``ws://HOST:PORT/?api_key=...&access_token=...``; both query parameters
  must be present and non-empty (and equal ``expected_credentials`` when given),
  otherwise the handshake is rejected with HTTP 403, as Kite does for a bad token.
  The token is never logged: every log record of the server is redacted.
- Client text messages ``{"a": "subscribe", "v": [tokens]}``,
  ``{"a": "unsubscribe", "v": [tokens]}`` and ``{"a": "mode", "v": [mode, [tokens]]}``
  with mode ``ltp``/``quote``/``full``. ``subscribe`` puts a new token in ``quote``
  mode (Kite's default) and keeps the mode of a token already subscribed;
  ``mode`` also subscribes the tokens it names. At most 3000 tokens per connection.
  A bad message is answered with a text frame ``{"type": "error", "data": "..."}``
  and otherwise ignored.
- Binary frames carry only the client's subscribed tokens, each packet cut to the
  client's mode (``filter_frame``); a frame with none of them is not sent.
- A heartbeat (a 1-byte binary message, ``b"\\x00"``) is sent whenever nothing else
  was sent to a client for ``heartbeat_interval_s`` of wall time.
- After the last frame of the session, a client gets the text frame
  ``SESSION_COMPLETE_MESSAGE`` once and then heartbeats until it disconnects
  (like Kite after the market closes).

Clock semantics:

- ``speed=S`` (a float > 0): one session clock for the whole server, like the
  exchange. It starts when the server starts (with ``wait_for_client=True``: when
  the first client subscribes) at the session's ``start_ns`` (header; else the
  first frame's timestamp) and advances S session seconds per wall second, whether
  or not clients are connected. A frame is due when its timestamp is <= the
  session clock. A client joins ``JOIN_SETTLE_S`` (50 ms) after its first
  ``subscribe``/``mode`` message (so the subscribe and mode messages sent together
  apply to its first frame) and from then on receives every due frame from the
  session clock at that moment on; a client that connects or reconnects late has
  missed what was sent meanwhile, exactly as with the live feed. With ``start_at`` the
  clock starts at that ``time.monotonic()`` instant instead (clients subscribed before it
  get the session from its first frame).
- ``speed=None`` (as fast as possible): there is no wall-clock pacing. The clock
  starts at the first subscription and is the furthest frame any client has been
  sent (the "head"). A client joins at the head (the first one at frame 0) and gets
  every later frame as fast as it reads them: the server thread blocks in ``send``
  when the client's TCP window is full, so backpressure paces the replay. A client
  that reconnects resumes at the head, i.e. where the session had got to.

Several clients are not kept together: each client thread sends at its own pace (at max
speed, as fast as its client reads), as a live feed's connections are. A scanner on several
connections orders its minute closes itself (:mod:`aion.pipeline.merge`).

Network delay (``jitter_s``, paced replays): each frame is sent up to ``jitter_s`` wall
seconds after it is due (uniform, drawn per frame from ``seed``, i.e. ``jitter_s * speed``
session seconds; a client still gets the frames in session order), and several servers started
with one ``start_at`` share one session clock, like the connections of one exchange: a
live-style scan of independent connections.

One thread per client (``websockets.sync.server``): that thread both paces the
frames and reads the client's messages (``recv`` with a timeout between batches),
so subscription changes and sends never race.

Fault modes (for the feed's reliability tests; the real-world failures they imitate are
in the comments of each):

- :meth:`ReplayServer.restart`: close every connection, stop listening for a while, listen
  again on the same port; the session clock keeps running (like the exchange).
- :meth:`ReplayServer.go_silent`: the clients connected now get nothing at all, not even
  heartbeats, while their sockets stay open (pykiteconnect issue #229).
- ``drop_after_frames``: close each connection abruptly after it was sent N frames.
- ``reject_handshakes``: refuse every handshake with HTTP 403 (expired access token).
- ``max_tokens_per_message``: answer a subscribe/mode message naming more tokens with the
  text error ``max tokens exceeded`` and ignore it (pykiteconnect PR #67).
- :meth:`ReplayServer.inject`: send arbitrary frames (garbage or truncated binary frames,
  bad text) to the clients connected now, between session frames.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from aion.kite.decode import is_heartbeat
from aion.kite.encode import filter_frame
from aion.kite.wire import MAX_TOKENS_PER_CONNECTION, MODE_NAMES, MODE_QUOTE, MalformedFrame
from aion.replay.session_file import FrameFile

log = logging.getLogger(__name__)

#: Text frame sent to a client after the last frame of the session.
SESSION_COMPLETE_MESSAGE = json.dumps({"type": "message", "data": "replay: session complete"})

#: Kite's heartbeat: a 1-byte binary message.
HEARTBEAT_FRAME = b"\x00"

#: A binary frame that is not Kite's format: it announces 0xDEAD packets, the first of
#: 0xBEEF bytes (no packet has that length), so the decoder rejects it.
GARBAGE_FRAME = b"\xde\xad\xbe\xef" * 8

#: The text error Kite sends when a subscription exceeds the tokens it allows.
MAX_TOKENS_ERROR = "max tokens exceeded"


_MODE_BY_NAME = {name: mode for mode, name in MODE_NAMES.items()}
#: A client joins this long after its first subscription message, so that the
#: subscribe and mode messages a client sends together all apply to its first frame.
JOIN_SETTLE_S = 0.05
#: Longest wait for ``start_clients`` subscriptions after the first one (then the clock starts).
START_WAIT_S = 5.0
_START_POLL_S = 0.01  # how often a client waiting for the others looks again
_BATCH = 256  # frames sent between two looks at the client's messages
_MAX_WAIT_S = 0.25  # longest sleep of a client thread (keeps shutdown prompt)
_TOKEN_RE = re.compile(r"(access_token=)[^&\s'\"]*")


class SessionLike(Protocol):
    """What the server needs of a session (``aion.replay.session_file.Session``)."""

    @property
    def ts_ns(self) -> np.ndarray: ...

    @property
    def frames(self) -> Sequence[bytes]: ...


def redact(text: str) -> str:
    """``text`` with the value of any ``access_token=`` query parameter replaced by ``***``."""
    return _TOKEN_RE.sub(r"\1***", text)


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, ()
        return True


_ws_log = logging.getLogger(__name__ + ".ws")
_ws_log.addFilter(_RedactingFilter())
log.addFilter(_RedactingFilter())


@dataclass
class ReplayStats:
    """Counters of a replay server (read by the CLI status line and by tests)."""

    clients: int = 0  # connected now
    connections: int = 0  # accepted since start
    rejected: int = 0  # handshakes refused with 403
    frames_sent: int = 0  # binary frames (not heartbeats), summed over clients
    bytes_sent: int = 0  # bytes of those frames
    heartbeats_sent: int = 0
    errors_sent: int = 0  # error text frames answering bad client messages
    bad_frames: int = 0  # malformed recorded frames skipped (per client)
    injected: int = 0  # frames sent by inject(), summed over clients
    dropped: int = 0  # connections closed by drop_after_frames
    restarts: int = 0  # restart() calls completed
    max_tokens_errors: int = 0  # subscriptions refused with MAX_TOKENS_ERROR
    last_rejected_monotonic: float | None = None  # time.monotonic() of the last 403


class _Client:
    __slots__ = (
        "complete_sent",
        "conn",
        "cursor",
        "dropped",
        "frames_sent",
        "inbox",
        "initial",
        "join_at",
        "last_send",
        "modes",
        "silent_until",
    )

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn
        self.modes: dict[int, int] = {}
        self.cursor: int | None = None  # next frame index; None until the client joins
        self.join_at: float | None = None  # monotonic time the client joins (set by 1st message)
        self.initial = False  # subscribed before the session clock started: starts at frame 0
        self.complete_sent = False
        self.last_send = time.monotonic()
        self.silent_until = 0.0  # monotonic; send nothing before it (go_silent)
        self.inbox: list[bytes | str] = []  # injected frames still to send
        self.frames_sent = 0
        self.dropped = False


class ReplayServer:
    """Serve ``session`` on ``ws://host:port`` in Kite's ticker protocol (see module doc).

    Args:
        session: a ``Session`` (``ts_ns`` non-decreasing epoch ns, ``frames`` Kite binary messages).
        host: interface to bind; loopback by default.
        port: TCP port; 0 picks a free one (read it back from ``.port``).
        speed: session seconds per wall second, or None for as fast as the client reads.
        wait_for_client: start the session clock at the first subscription instead of ``start()``.
        start_clients: with ``wait_for_client``, hold the clock until this many clients have
            subscribed (a scanner's connections, one per shard; at most
            :data:`START_WAIT_S` after the first): every client that subscribed before the
            clock started gets the session from its first frame, so 3 connections replayed
            at max speed see the same frames; a client subscribing later (a reconnect)
            joins at the live position.
        heartbeat_interval_s: idle time after which a heartbeat is sent, wall seconds.
        expected_credentials: ``(api_key, access_token)`` to require; None accepts any non-empty.
        jitter_s: send each frame up to this many wall seconds late (paced replays; see the
            module doc); 0: on time.
        seed: seed of the jitter's random delays (None: fresh entropy).
        start_at: ``time.monotonic()`` instant at which the session clock starts (paced
            replays; servers given the same one share a clock); None: see ``wait_for_client``.

    Raises:
        ValueError: a bad ``speed``, ``start_clients``, ``heartbeat_interval_s`` or
            ``jitter_s``, jitter or ``start_at`` at max speed, or session timestamps that are
            unsorted or do not match its frames.

    Fault attributes (settable at any time, see the module doc): ``reject_handshakes``
    (bool), ``drop_after_frames`` (int or None), ``max_tokens_per_message`` (int or None).
    """

    def __init__(
        self,
        session: SessionLike,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float | None = 1.0,
        wait_for_client: bool = False,
        start_clients: int = 1,
        heartbeat_interval_s: float = 1.0,
        expected_credentials: tuple[str, str] | None = None,
        jitter_s: float = 0.0,
        seed: int | None = None,
        start_at: float | None = None,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 or None (max), got {speed!r}")
        if start_clients < 1:
            raise ValueError(f"start_clients must be >= 1, got {start_clients!r}")
        if heartbeat_interval_s <= 0:
            raise ValueError(f"heartbeat_interval_s must be > 0, got {heartbeat_interval_s!r}")
        if not jitter_s >= 0:
            raise ValueError(f"jitter_s must be >= 0 wall seconds, got {jitter_s!r}")
        if speed is None and (jitter_s > 0 or start_at is not None):
            raise ValueError("jitter_s and start_at need a paced replay (speed), not max speed")
        ts = np.asarray(session.ts_ns, dtype=np.int64)
        frames = session.frames  # a FrameFile stays on disk: frames are read as they are sent
        if len(ts) != len(frames):
            raise ValueError(f"session has {len(ts)} timestamps but {len(frames)} frames")
        if len(ts) > 1 and bool(np.any(np.diff(ts) < 0)):
            raise ValueError("session timestamps must be non-decreasing")
        self.session = session
        self.host = host
        self._requested_port = port
        self.speed = speed
        self.wait_for_client = wait_for_client
        self.start_clients = start_clients
        self._subscribed = 0  # clients that subscribed before the clock started
        self._first_subscribe: float | None = None  # monotonic time of the first of them
        self.heartbeat_interval_s = heartbeat_interval_s
        self.expected_credentials = expected_credentials
        self._ts = ts
        self._frames = frames
        self._n = len(frames)
        first = int(ts[0]) if self._n else 0
        start = getattr(session, "start_ns", None)  # header start_ns (Session.start_ns)
        self._ts0 = min(int(start), first) if start is not None and self._n else first
        # recorded heartbeats: we send our own
        self._skip = (
            frames.heartbeats()
            if isinstance(frames, FrameFile)
            else np.fromiter((is_heartbeat(f) for f in frames), bool, len(frames))
        )
        self.stats = ReplayStats()
        self._lock = threading.Lock()
        # session time each frame is sent at: its own, or later by the jitter (order kept)
        self._due = ts
        if jitter_s > 0 and self._n and speed is not None:
            delay = np.random.default_rng(seed).uniform(0.0, jitter_s * speed * 1e9, self._n)
            self._due = np.maximum.accumulate(ts + delay.astype(np.int64))
        self._start_at = start_at
        self._clock_start: float | None = None  # monotonic time of session time ts0
        self._head = 0  # max-speed clock: furthest frame index sent to any client
        self._clients: set[_Client] = set()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.port: int = port
        self.reject_handshakes = False
        self.drop_after_frames: int | None = None
        self.max_tokens_per_message: int | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Bind and start serving in a daemon thread; returns once the socket listens."""
        if self._server is not None:
            raise RuntimeError("ReplayServer already started")
        self._stopping.clear()
        self._server = serve(
            self._handle,
            self.host,
            self._requested_port,
            process_request=self._check_handshake,
            compression=None,
            max_size=2**20,
            logger=_ws_log,
            # at max speed a client is back-pressured by design (it reads as fast as it can
            # process): its pong waits behind the frames in the socket, so keepalive pings
            # would close a healthy connection; paced replays keep websockets' default
            ping_interval=None if self.speed is None else 20.0,
        )
        self.port = self._server.socket.getsockname()[1]
        if self._clock_start is None and self._start_at is not None:
            with self._lock:
                self._clock_start = self._start_at
        if self.speed is not None and not self.wait_for_client and self._clock_start is None:
            with self._lock:
                self._clock_start = time.monotonic()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"replay-server-{self.port}", daemon=True
        )
        self._thread.start()
        log.info(
            "replay server listening on %s (%d frames, speed=%s)", self.url, self._n, self.speed
        )

    def stop(self) -> None:
        """Stop listening, close every client connection (1001 going away) and join."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        log.info("replay server on port %d stopped", self.port)

    def __enter__(self) -> ReplayServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def subscriptions(self) -> list[dict[int, int]]:
        """Token -> mode of every connected client (copies; order not significant)."""
        with self._lock:
            return [dict(c.modes) for c in self._clients]

    # ------------------------------------------------------------ fault hooks
    def restart(self, down_s: float = 0.0) -> None:
        """Stop (closing every connection), stay down ``down_s`` wall seconds, listen again.

        The new listener binds the same port; the session clock (and the max-speed head) keep
        their place, so frames due while the server was down are missed by every client, as
        with a live feed.
        """
        self.stop()
        if down_s > 0:
            time.sleep(down_s)
        self._requested_port = self.port
        self.start()
        with self._lock:
            self.stats.restarts += 1

    def go_silent(self, duration_s: float | None = None) -> int:
        """Send nothing (no frames, no heartbeats) to the clients connected now.

        Their sockets stay open and their messages are still read; after ``duration_s`` wall
        seconds (None: never) a client still connected gets the frames due since. Clients
        connecting later are served normally. Returns how many clients were silenced.
        """
        until = math.inf if duration_s is None else time.monotonic() + duration_s
        with self._lock:
            clients = list(self._clients)
            for c in clients:
                c.silent_until = until
        return len(clients)

    def inject(self, frames: Sequence[bytes | str]) -> int:
        """Queue ``frames`` (binary or text, sent as given) for every client connected now.

        Each client thread sends them, in order, before its next session frames. Returns how
        many clients got them.
        """
        with self._lock:
            clients = list(self._clients)
            for c in clients:
                c.inbox.extend(frames)
        return len(clients)

    def drop_connections(self, abrupt: bool = False) -> int:
        """Close every client connection (server keeps listening); returns how many.

        ``abrupt=True`` shuts the TCP socket down without a WebSocket close frame,
        like a network failure; otherwise the close code is 1001 (going away).
        """
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            with contextlib.suppress(OSError):
                if abrupt:
                    c.conn.socket.shutdown(socket.SHUT_RDWR)
                else:
                    c.conn.close(1001, "replay: connection dropped")
        return len(clients)

    # --------------------------------------------------------------- the clock
    def session_time_ns(self) -> int | None:
        """Current session time (epoch ns) at real speed; the head's timestamp at max speed.

        None before the clock has started.
        """
        with self._lock:
            if self.speed is None:
                if self._clock_start is None or self._n == 0:
                    return None
                return int(self._ts[min(self._head, self._n - 1)])
            if self._clock_start is None:
                return None
            return self._ts0 + int((time.monotonic() - self._clock_start) * self.speed * 1e9)

    def _join(self, client: _Client) -> None:
        """Place a client on the session clock (at its first subscription)."""
        now = time.monotonic()  # one reading: the client starting the clock joins at ts0
        with self._lock:
            if self._clock_start is None:
                self._clock_start = now
            if client.initial:
                client.cursor = 0
            elif self.speed is None:
                client.cursor = self._head
            else:
                now_ns = self._ts0 + int((now - self._clock_start) * self.speed * 1e9)
                client.cursor = int(np.searchsorted(self._due, now_ns, side="left"))

    def _may_start(self) -> bool:
        """A client may join: the clock runs, or ``start_clients`` clients subscribed before it
        started (or :data:`START_WAIT_S` passed since the first did)."""
        with self._lock:
            if self._clock_start is not None or not self.wait_for_client:
                return True
            if self._subscribed >= self.start_clients:
                return True
            first = self._first_subscribe
            return first is not None and time.monotonic() - first >= START_WAIT_S

    def _due_end(self, cursor: int) -> int:
        """Index one past the last frame due now for a client at ``cursor`` (capped to a batch)."""
        cap = min(self._n, cursor + _BATCH)
        if self.speed is None:
            return cap
        assert self._clock_start is not None
        now_ns = self._ts0 + int((time.monotonic() - self._clock_start) * self.speed * 1e9)
        end = cursor
        while end < cap and self._due[end] <= now_ns:
            end += 1
        return end

    def _wait_s(self, client: _Client) -> float:
        """Wall seconds until this client's next due frame or heartbeat (bounded)."""
        now = time.monotonic()
        if now < client.silent_until:
            return min(client.silent_until - now, _MAX_WAIT_S)
        wake = client.last_send + self.heartbeat_interval_s
        cur = client.cursor
        if cur is not None and cur < self._n:
            if self.speed is None:
                return 0.0
            assert self._clock_start is not None
            due = self._clock_start + (int(self._due[cur]) - self._ts0) / (self.speed * 1e9)
            wake = min(wake, due)
        elif cur is not None and not client.complete_sent:
            return 0.0
        elif cur is None and client.join_at is not None:
            wake = min(wake, max(client.join_at, now + _START_POLL_S))
        return min(max(wake - now, 0.0), _MAX_WAIT_S)

    # ---------------------------------------------------------------- handshake
    def _check_handshake(self, conn: ServerConnection, request: Request) -> Response | None:
        query = parse_qs(urlsplit(request.path).query)
        api_key = (query.get("api_key") or [""])[0]
        token = (query.get("access_token") or [""])[0]
        ok = bool(api_key) and bool(token) and not self.reject_handshakes
        if ok and self.expected_credentials is not None:
            ok = (api_key, token) == tuple(self.expected_credentials)
        if ok:
            return None
        with self._lock:
            self.stats.rejected += 1
            self.stats.last_rejected_monotonic = time.monotonic()
        log.info("replay: rejected handshake from %s (HTTP 403)", conn.remote_address)
        body = json.dumps(
            {
                "status": "error",
                "message": "Incorrect `api_key` or `access_token`.",
                "data": None,
                "error_type": "TokenException",
            }
        )
        return conn.respond(HTTPStatus.FORBIDDEN, body + "\n")

    # ----------------------------------------------------------- client thread
    def _handle(self, conn: ServerConnection) -> None:
        client = _Client(conn)
        with self._lock:
            self._clients.add(client)
            self.stats.clients += 1
            self.stats.connections += 1
        try:
            while not self._stopping.is_set():
                wait_s = self._wait_s(client)
                try:
                    msg = conn.recv(timeout=wait_s)
                except TimeoutError:
                    msg = None
                if msg is not None:
                    self._on_message(client, msg)
                if time.monotonic() < client.silent_until:
                    continue  # silent: read the client's messages, send nothing
                if client.inbox:
                    self._send_injected(client)
                if (
                    client.cursor is None
                    and client.join_at is not None
                    and time.monotonic() >= client.join_at
                    and self._may_start()
                ):
                    self._join(client)
                if client.cursor is not None:
                    self._send_due(client)
                if client.dropped:
                    break
                if time.monotonic() - client.last_send >= self.heartbeat_interval_s:
                    self._send(client, HEARTBEAT_FRAME)
                    with self._lock:
                        self.stats.heartbeats_sent += 1
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._clients.discard(client)
                self.stats.clients -= 1

    def _send(self, client: _Client, data: bytes | str) -> None:
        client.conn.send(data)
        client.last_send = time.monotonic()

    def _send_injected(self, client: _Client) -> None:
        with self._lock:
            items, client.inbox = client.inbox, []
        for item in items:
            self._send(client, item)
        with self._lock:
            self.stats.injected += len(items)

    def _drop(self, client: _Client) -> None:
        """Close ``client`` abruptly (TCP shutdown, no close frame), like a network failure."""
        client.dropped = True
        with contextlib.suppress(OSError):
            client.conn.socket.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self.stats.dropped += 1

    def _send_due(self, client: _Client) -> None:
        cursor = client.cursor
        assert cursor is not None
        end = self._due_end(cursor)
        drop_after = self.drop_after_frames
        frames_sent = bytes_sent = bad = 0
        modes = client.modes
        try:
            if modes:
                for i in range(cursor, end):
                    if self._skip[i]:
                        continue
                    try:
                        out = filter_frame(self._frames[i], modes)
                    except MalformedFrame:
                        bad += 1
                        continue
                    if out is not None:
                        self._send(client, out)
                        frames_sent += 1
                        bytes_sent += len(out)
                        client.frames_sent += 1
                        if drop_after is not None and client.frames_sent >= drop_after:
                            end = i + 1
                            self._drop(client)
                            break
            client.cursor = end
        finally:
            with self._lock:
                self.stats.frames_sent += frames_sent
                self.stats.bytes_sent += bytes_sent
                self.stats.bad_frames += bad
                if self.speed is None and client.cursor is not None:
                    self._head = max(self._head, client.cursor)
        if client.cursor == self._n and not client.complete_sent and not client.dropped:
            self._send(client, SESSION_COMPLETE_MESSAGE)
            client.complete_sent = True

    def _error(self, client: _Client, text: str) -> None:
        self._send(client, json.dumps({"type": "error", "data": text}))
        with self._lock:
            self.stats.errors_sent += 1

    def _on_message(self, client: _Client, msg: str | bytes) -> None:
        if isinstance(msg, bytes):
            self._error(client, "binary messages from the client are not supported")
            return
        try:
            obj: Any = json.loads(msg)
        except ValueError:
            self._error(client, "invalid message: not JSON")
            return
        if not isinstance(obj, dict) or "a" not in obj or "v" not in obj:
            self._error(client, 'invalid message: expected {"a": action, "v": value}')
            return
        action, value = obj["a"], obj["v"]
        if action in ("subscribe", "unsubscribe"):
            tokens = _tokens(value)
            if tokens is None:
                self._error(client, f"invalid {action}: 'v' must be a list of instrument tokens")
                return
            if action == "unsubscribe":
                for t in tokens:
                    client.modes.pop(t, None)
                return
            if not self._fits(client, tokens):
                return
            for t in tokens:
                client.modes.setdefault(t, MODE_QUOTE)
        elif action == "mode":
            if not (isinstance(value, list) and len(value) == 2 and value[0] in _MODE_BY_NAME):
                self._error(client, 'invalid mode: \'v\' must be ["ltp"|"quote"|"full", [tokens]]')
                return
            tokens = _tokens(value[1])
            if tokens is None:
                self._error(client, "invalid mode: second element must be a list of tokens")
                return
            if not self._fits(client, tokens):
                return
            mode = _MODE_BY_NAME[value[0]]
            for t in tokens:
                client.modes[t] = mode
        else:
            self._error(client, f"invalid message: unknown action {action!r}")
            return
        if client.join_at is None:
            now = time.monotonic()
            client.join_at = now + JOIN_SETTLE_S
            with self._lock:
                if self._clock_start is None:
                    client.initial = True
                    self._subscribed += 1
                    if self._first_subscribe is None:
                        self._first_subscribe = now

    def _fits(self, client: _Client, tokens: list[int]) -> bool:
        limit = self.max_tokens_per_message
        if limit is not None and len(tokens) > limit:
            self._error(client, MAX_TOKENS_ERROR)
            with self._lock:
                self.stats.max_tokens_errors += 1
            return False
        total = len(client.modes.keys() | set(tokens))
        if total > MAX_TOKENS_PER_CONNECTION:
            self._error(
                client,
                f"subscription of {total} instruments exceeds the limit of "
                f"{MAX_TOKENS_PER_CONNECTION} per connection",
            )
            return False
        return True


def _tokens(value: object) -> list[int] | None:
    """``value`` as a list of instrument tokens (uint32), or None if it is not one."""
    if not isinstance(value, list):
        return None
    out: list[int] = []
    for t in value:
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < 2**32:
            return None
        out.append(t)
    return out

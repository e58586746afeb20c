"""The feed: one WebSocket connection to Kite's ticker (or the replay server).

The same code talks to ``wss://ws.kite.trade`` and to ``aion.replay.server`` on
127.0.0.1 (DESIGN.md, "The socket"). Protocol per the Kite Connect WebSocket docs
(https://kite.trade/docs/connect/v3/websocket/):

- connect to ``URL?api_key=...&access_token=...``; an invalid or expired token is
  refused in the handshake with HTTP 403;
- subscribe with the text message ``{"a": "subscribe", "v": [tokens]}`` (new tokens
  start in ``quote`` mode), then set modes with ``{"a": "mode", "v": [mode, [tokens]]}``
  where mode is ``ltp``, ``quote`` or ``full``;
- at most 3000 instruments per connection and 3 connections per API key;
- the server sends binary messages of one or more tick packets, a 1-byte binary
  heartbeat every second when idle, and JSON text messages (order updates, errors).

Each non-heartbeat binary message is put on the sink queue untouched as
``(recv_ns, conn_name, frame)``; parsing happens on the compute thread. Disconnects
are retried with exponential backoff and full jitter, and the subscription is sent
again on every (re)connect with the same modes; every gap is recorded in
``stats.gaps`` (and, with ``gap_markers``, put in order on the sink). An HTTP 403 is
not retried: the token will not become valid by waiting (Kite access tokens expire
daily). A watchdog closes a connection that delivers nothing, not even a heartbeat,
for ``stale_after_s`` (sockets that stop delivering ticks without ever closing:
pykiteconnect issue #229). A text error "max tokens exceeded" (Kite's answer when a
reconnect races the old connection's subscriptions, pykiteconnect PR #67) is
answered by resubscribing in batches half as large. Text frames (order updates,
errors, messages) are parsed and logged, errors at warning level; a malformed one
is counted and never stops the feed.

The credentials are never logged: URLs and error texts are redacted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import websocket

from aion.kite.decode import is_heartbeat
from aion.kite.text import parse_text_message
from aion.kite.wire import MAX_CONNECTIONS_PER_KEY, MAX_TOKENS_PER_CONNECTION, MODE_NAMES
from aion.queues import BoundedQueue

log = logging.getLogger(__name__)

KITE_WS_URL = "wss://ws.kite.trade"
#: One line shown when Kite refuses the token.
FATAL_403 = (
    "Kite rejected the access token (HTTP 403): it is invalid or expired; "
    "generate a new one (Kite Connect login flow) and set KITE_ACCESS_TOKEN"
)


@dataclass(frozen=True)
class Gap:
    """One interruption of a connection's feed.

    Attributes:
        connection: the connection's name (``conn0``...).
        disconnected_ns: wall-clock epoch ns when the connection was found dead or closed.
        reconnected_ns: wall-clock epoch ns of the handshake that ended the gap; None when the
            feed stopped (or gave up) before it came back.
        reason: why the connection ended (one line, secrets removed).
        attempts: connection attempts it took to come back.
        tokens: the instrument tokens of the connection (all of them missed the gap).
    """

    connection: str
    disconnected_ns: int
    reconnected_ns: int | None
    reason: str
    attempts: int
    tokens: tuple[int, ...] = field(default=(), repr=False)

    @property
    def duration_s(self) -> float | None:
        """Length of the gap in seconds (None while open)."""
        if self.reconnected_ns is None:
            return None
        return (self.reconnected_ns - self.disconnected_ns) / 1e9

    def record(self) -> dict[str, str]:
        """Flat str -> str fields for the Redis gap stream and the run summary."""
        return {
            "connection": self.connection,
            "start_ns": str(self.disconnected_ns),
            "end_ns": "" if self.reconnected_ns is None else str(self.reconnected_ns),
            "duration_s": "" if self.duration_s is None else f"{self.duration_s:.3f}",
            "reason": self.reason,
            "attempts": str(self.attempts),
            "tokens": str(len(self.tokens)),
        }


#: An item of the raw queue: ``(recv_ns, connection, frame)``; with ``gap_markers`` the
#: connection also puts ``(now_ns, connection, Gap)`` there when a gap ends (before the first
#: frame of the new connection) or stays open at stop, so the compute thread sees it in order.
RawItem = tuple[int, str, bytes | Gap]


@dataclass
class FeedStats:
    """Counters of one connection (read by the live view and the final summary)."""

    frames: int = 0  # binary messages put on the sink (heartbeats excluded)
    heartbeats: int = 0
    bytes: int = 0  # bytes of those frames
    text: int = 0  # text messages parsed and passed on
    bad_text: int = 0  # text messages that were not valid JSON objects
    errors: int = 0  # text messages of type "error" (logged at warning level)
    dropped: int = 0  # frames the sink refused (its overflow policy counted them too)
    connects: int = 0  # successful handshakes, the first included
    reconnects: int = 0  # successful handshakes after a gap
    connect_failures: int = 0  # attempts that did not get through the handshake
    watchdog_closes: int = 0  # connections closed because nothing arrived for stale_after_s
    max_tokens_errors: int = 0  # "max tokens" errors answered by resubscribing in batches
    subscribe_batch: int = MAX_TOKENS_PER_CONNECTION  # tokens per subscribe/mode message now
    gaps: list[Gap] = field(default_factory=list)
    fatal_error: str | None = None
    last_frame_monotonic: float | None = None  # any message, heartbeats included


class FeedClient:
    """One ticker connection feeding raw frames into ``sink``.

    Args:
        url: ``wss://ws.kite.trade`` or the replay server's ``ws://127.0.0.1:PORT``.
        api_key, access_token: Kite credentials (sent as query parameters, never logged).
        modes: instrument token -> ``MODE_LTP``/``MODE_QUOTE``/``MODE_FULL``; at most 3000.
        sink: queue receiving ``(time.time_ns(), name, frame)`` per binary message.
        name: connection name carried with every frame and used in the thread name.
        on_text: called with each parsed text message (Kite order updates, errors, messages);
            an exception it raises is logged, never ends the feed.
        reconnect: retry after a disconnect (never after HTTP 403).
        max_backoff_s: cap of the exponential backoff between attempts, seconds.
        base_backoff_s: first backoff ceiling, seconds; attempt k waits
            uniform(0, min(max_backoff_s, base_backoff_s * 2**k)) ("full jitter", AWS
            Architecture Blog, "Exponential Backoff And Jitter", 2015).
        stale_after_s: watchdog: close and reconnect when nothing, not even a heartbeat,
            arrived for this long (Kite sends a heartbeat every second when idle), seconds.
        ping_interval_s: send a WebSocket ping this often (0: never), which keeps idle
            NAT and proxy state alive. Whether the connection lives is the watchdog's call
            (data or heartbeats), never the pong's: a pong waits behind the frames in the
            socket whenever the scan is behind (a full raw queue, live or replay), and a late
            pong is the consumer's delay, not a dead connection; a server that answers pings
            but sends no ticks is dead to the watchdog.
        max_attempts: consecutive failed attempts after which to give up (None: never);
            ignored while ``retry_forever()`` is True.
        retry_forever: predicate, e.g. the feed hours of the calendar
            (:meth:`aion.market.calendar.MarketCalendar.in_feed_hours` at the wall clock);
            None means always True.
        gap_markers: also put :class:`Gap` items on the sink (see :data:`RawItem`).
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        access_token: str,
        modes: Mapping[int, int],
        sink: BoundedQueue[Any],
        name: str = "conn0",
        on_text: Callable[[dict], None] | None = None,
        reconnect: bool = True,
        max_backoff_s: float = 60.0,
        base_backoff_s: float = 1.0,
        stale_after_s: float = 5.0,
        ping_interval_s: float = 0.0,
        max_attempts: int | None = None,
        retry_forever: Callable[[], bool] | None = None,
        gap_markers: bool = False,
    ) -> None:
        if len(modes) > MAX_TOKENS_PER_CONNECTION:
            raise ValueError(
                f"{name}: {len(modes)} instruments on one connection; Kite allows at most "
                f"{MAX_TOKENS_PER_CONNECTION} per connection (and {MAX_CONNECTIONS_PER_KEY} "
                "connections per API key)"
            )
        bad = {m for m in modes.values() if m not in MODE_NAMES}
        if bad:
            raise ValueError(f"{name}: unknown mode(s) {sorted(bad)}; expected {MODE_NAMES}")
        self.name = name
        self.base_url = url
        self._api_key = api_key
        self._token = access_token
        self.modes = dict(modes)
        self.sink = sink
        self.on_text = on_text
        self.reconnect = reconnect
        self.max_backoff_s = max_backoff_s
        self.base_backoff_s = base_backoff_s
        self.stale_after_s = stale_after_s
        self.ping_interval_s = ping_interval_s
        self.max_attempts = max_attempts
        self.retry_forever = retry_forever
        self.gap_markers = gap_markers
        self.stats = FeedStats()
        self._url = _with_query(url, {"api_key": api_key, "access_token": access_token})
        self._ws: websocket.WebSocketApp | None = None
        self._connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self._in_sink = False  # the socket thread is handing a frame to the (full) sink
        self._reason: str | None = None  # why the current connection ended
        self._raw_sock: socket.socket | None = None  # TCP socket of the current connection
        self._pending_gap: tuple[int, str, int] | None = None  # (start ns, reason, attempts)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"FeedClient(name={self.name!r}, url={self.redacted_url!r}, tokens={len(self.modes)})"
        )

    @property
    def redacted_url(self) -> str:
        """The connection URL with both credentials replaced by ``***``."""
        return _with_query(self.base_url, {"api_key": "***", "access_token": "***"})

    @property
    def connected(self) -> bool:
        return self._connected

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Connect and run in a daemon thread ``feed-<name>``; returns at once."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"feed-{self.name}", daemon=True)
        self._thread.start()
        self._watchdog = threading.Thread(
            target=self._watch, name=f"feed-{self.name}-watchdog", daemon=True
        )
        self._watchdog.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection, stop retrying and join the threads."""
        self._stop.set()
        ws = self._ws
        if ws is not None:
            _abort(ws)
        for t in (self._thread, self._watchdog):
            if t is not None:
                t.join(timeout=timeout)
        self._thread = self._watchdog = None

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (True) or ``timeout`` seconds pass / a fatal error (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._connected:
                return True
            if self.stats.fatal_error is not None:
                return False
            time.sleep(0.01)
        return self._connected

    # --------------------------------------------------------------- the loop
    def _give_up(self, attempt: int) -> bool:
        if self.max_attempts is None or attempt < self.max_attempts:
            return False
        return not (self.retry_forever() if self.retry_forever is not None else True)

    def _run(self) -> None:
        attempt = 0
        gap_start: int | None = None
        gap_reason = ""
        while not self._stop.is_set():
            self._reason = None
            opened_before = self.stats.connects
            ws = websocket.WebSocketApp(
                self._url,
                on_open=self._on_open,
                on_message=self._on_message,
                on_error=self._on_error,
                on_close=self._on_close,
            )
            self._ws = ws
            if gap_start is not None:
                # on_open of this attempt closes the gap: hand the gap to it
                self._pending_gap = (gap_start, gap_reason, attempt + 1)
            ping = self.ping_interval_s
            try:
                ws.run_forever(reconnect=0, ping_interval=ping, ping_timeout=None)
            except Exception as e:  # run_forever reports through on_error; belt and braces
                self._reason = self._reason or _describe(e, self._secrets())
            _close_raw(self._raw_sock)
            self._raw_sock = None
            self._connected = False
            self._ws = None
            if self.stats.connects > opened_before:  # this attempt got through, then ended
                attempt = 0
                gap_start = None
                if not self._stop.is_set():  # not our own stop(): a gap begins
                    gap_start = time.time_ns()
                    gap_reason = self._reason or "connection closed"
                    log.warning("%s: disconnected (%s)", self.name, gap_reason)
            else:
                self.stats.connect_failures += 1
                attempt += 1
            if self.stats.fatal_error is not None:  # the scan reports it, once, in one line
                log.info("%s: %s", self.name, self.stats.fatal_error)
                break
            if self._stop.is_set() or not self.reconnect:
                break
            if self._give_up(attempt):
                self.stats.fatal_error = (
                    f"{self.name}: gave up reconnecting after {attempt} failed attempts "
                    f"outside market hours ({self._reason or 'no connection'})"
                )
                log.error("%s", self.stats.fatal_error)
                break
            ceiling = min(self.max_backoff_s, self.base_backoff_s * 2 ** min(attempt, 30))
            self._stop.wait(random.uniform(0.0, ceiling))
        if gap_start is not None:  # stopped (or gave up) before the feed came back
            gap = Gap(self.name, gap_start, None, gap_reason, attempt, tuple(self.modes))
            self.stats.gaps.append(gap)
            if self.gap_markers:
                self.sink.put((time.time_ns(), self.name, gap))
        self._pending_gap = None

    def _watch(self) -> None:
        """Close a connection that went silent (Kite heartbeats every second when idle)."""
        while not self._stop.wait(min(1.0, self.stale_after_s / 4)):
            last = self.stats.last_frame_monotonic
            ws = self._ws
            if self._connected and ws is not None and last is not None and not self._in_sink:
                silent = time.monotonic() - last
                if silent > self.stale_after_s:
                    self._reason = f"no data for {silent:.1f} s (watchdog)"
                    self.stats.watchdog_closes += 1
                    self._connected = False
                    _abort(ws)

    # ------------------------------------------------------------ subscription
    def _subscribe(self, ws: websocket.WebSocketApp) -> None:
        for msg in subscription_messages(self.modes, self.stats.subscribe_batch):
            ws.send(msg)

    def _on_max_tokens(self, ws: websocket.WebSocketApp) -> None:
        """Kite said "max tokens exceeded": resubscribe everything in smaller batches."""
        self.stats.max_tokens_errors += 1
        batch = self.stats.subscribe_batch
        smaller = max(1, batch // 2)
        if smaller >= batch:
            log.error("%s: max tokens exceeded even one token at a time; not retrying", self.name)
            return
        self.stats.subscribe_batch = smaller
        log.warning(
            "%s: server says max tokens exceeded; resubscribing %d instruments in batches of %d",
            self.name,
            len(self.modes),
            smaller,
        )
        self._subscribe(ws)

    # --------------------------------------------------------------- callbacks
    def _on_open(self, ws: websocket.WebSocketApp) -> None:
        self._raw_sock = ws.sock.sock if ws.sock is not None else None
        if self._stop.is_set():  # stop() raced with the handshake
            ws.keep_running = False
            return
        now_ns = time.time_ns()
        self.stats.last_frame_monotonic = time.monotonic()
        self.stats.connects += 1
        pending, self._pending_gap = self._pending_gap, None
        if pending is not None:
            start, reason, attempts = pending
            gap = Gap(self.name, start, now_ns, reason, attempts, tuple(self.modes))
            self.stats.gaps.append(gap)
            self.stats.reconnects += 1
            if self.gap_markers:  # before any frame of this connection
                self.sink.put((now_ns, self.name, gap))
            log.info("%s: reconnected after %.1f s (%s)", self.name, (now_ns - start) / 1e9, reason)
        self._subscribe(ws)
        self._connected = True
        log.info(
            "%s: connected to %s, %d instruments", self.name, self.redacted_url, len(self.modes)
        )

    def _on_message(self, ws: websocket.WebSocketApp, message: bytes | str) -> None:
        self.stats.last_frame_monotonic = time.monotonic()
        if isinstance(message, bytes):
            if is_heartbeat(message):
                self.stats.heartbeats += 1
                return
            self.stats.frames += 1
            self.stats.bytes += len(message)
            # a put blocked on a full queue is the consumer's delay, not a silent connection:
            # the watchdog does not count it (any feed the scan cannot keep up with, live or
            # replayed, is back-pressured this way)
            self._in_sink = True
            try:
                if not self.sink.put((time.time_ns(), self.name, message)):
                    self.stats.dropped += 1
            finally:
                self._in_sink = False
                self.stats.last_frame_monotonic = time.monotonic()
            return
        try:
            obj = parse_text_message(message)
        except ValueError:  # includes MalformedFrame and json.JSONDecodeError
            self.stats.bad_text += 1
            log.warning("%s: unparsable text message (%d chars) ignored", self.name, len(message))
            return
        self.stats.text += 1
        kind = obj.get("type")
        if kind == "error":
            self.stats.errors += 1
            text = str(obj.get("data", ""))
            log.warning("%s: server error: %s", self.name, _redact(text, self._secrets())[:300])
            if _MAX_TOKENS.search(text):
                self._on_max_tokens(ws)
        elif kind == "order":
            data = obj.get("data")
            order = data if isinstance(data, dict) else {}
            log.info(
                "%s: order update %s %s %s",
                self.name,
                order.get("order_id", "?"),
                order.get("tradingsymbol", "?"),
                order.get("status", "?"),
            )
        else:
            log.info("%s: %s message: %.300s", self.name, kind, obj.get("data", ""))
        if self.on_text is not None:
            try:
                self.on_text(obj)
            except Exception:  # a consumer bug must not end the feed
                log.exception("%s: on_text callback failed", self.name)

    def _on_error(self, ws: websocket.WebSocketApp, error: Exception) -> None:
        status = getattr(error, "status_code", None)
        if isinstance(error, websocket.WebSocketBadStatusException) and status == 403:
            self.stats.fatal_error = FATAL_403
            self._reason = "HTTP 403"
            return
        self._reason = self._reason or _describe(error, self._secrets())

    def _on_close(self, ws: websocket.WebSocketApp, code: int | None, reason: str | None) -> None:
        self._connected = False
        if self._reason is None and code is not None:
            self._reason = f"closed by server (code {code}{': ' + reason if reason else ''})"

    def _secrets(self) -> tuple[str, ...]:
        return (self._token, self._api_key)


_MAX_TOKENS = re.compile(r"max(imum)?\W*(number of )?(tokens|instruments)", re.IGNORECASE)


def feed_summary(clients: Sequence[FeedClient]) -> dict[str, Any]:
    """Run-summary fields of a scan's connections (JSON-able).

    ``feed_gaps`` lists every gap as :meth:`Gap.record` (oldest first per connection);
    ``feed_gap_s`` sums closed gaps in seconds.
    """
    gaps = [g for c in clients for g in c.stats.gaps]
    return {
        "feed_connections": len(clients),
        "feed_tokens": sum(len(c.modes) for c in clients),
        "feed_watchdog_closes": sum(c.stats.watchdog_closes for c in clients),
        "feed_connect_failures": sum(c.stats.connect_failures for c in clients),
        "feed_max_tokens_errors": sum(c.stats.max_tokens_errors for c in clients),
        "text_frames": sum(c.stats.text for c in clients),
        "text_errors": sum(c.stats.errors for c in clients),
        "bad_text_frames": sum(c.stats.bad_text for c in clients),
        "feed_gap_s": round(sum(g.duration_s or 0.0 for g in gaps), 3),
        "feed_gaps": [g.record() for g in gaps],
    }


def _abort(ws: websocket.WebSocketApp) -> None:
    """End ``ws.run_forever`` from another thread: close frame, then TCP shutdown.

    ``WebSocketApp.close()`` from a second thread can close the socket's fd under the
    dispatcher's ``select`` (which then never wakes); shutting the socket down instead
    makes it readable (EOF), and the dispatcher sees ``keep_running`` False and tears down.
    """
    ws.keep_running = False
    sock = ws.sock
    if sock is None:
        return
    with contextlib.suppress(Exception):  # best effort: the peer may be gone already
        sock.send_close()
    raw = sock.sock
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)


def _close_raw(raw: socket.socket | None) -> None:
    """Close a finished connection's TCP socket for sure.

    After a server-initiated close, websocket-client answers the close frame but its
    teardown skips closing the socket (it is no longer "connected"), leaving it to the
    garbage collector; the server then waits its close timeout for our EOF.
    """
    if raw is None:
        return
    with contextlib.suppress(OSError):
        raw.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        raw.close()


def subscription_messages(
    modes: Mapping[int, int], batch: int = MAX_TOKENS_PER_CONNECTION
) -> list[str]:
    """Kite's subscription messages for ``modes`` (token -> mode), ``batch`` tokens per message.

    Per batch of tokens (in ``modes`` order): one ``{"a": "subscribe", "v": [tokens]}``, then one
    ``{"a": "mode", "v": [mode name, [tokens]]}`` per mode present in the batch. ``batch`` is
    3000 (Kite's per-connection limit) unless the server answered "max tokens exceeded".
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    tokens = list(modes)
    out = []
    for i in range(0, len(tokens), batch):
        chunk = tokens[i : i + batch]
        out.append(json.dumps({"a": "subscribe", "v": chunk}))
        by_mode: dict[int, list[int]] = {}
        for token in chunk:
            by_mode.setdefault(modes[token], []).append(token)
        for mode in sorted(by_mode):
            out.append(json.dumps({"a": "mode", "v": [MODE_NAMES[mode], by_mode[mode]]}))
    return out


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params, safe="*")) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, parts.fragment))


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def _describe(error: BaseException, secrets: tuple[str, ...]) -> str:
    """One line for a connection error, with the credentials removed."""
    text = (
        f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__
    )
    return _redact(text, secrets)

"""The dashboard's web app (Starlette): JSON API, the alert event stream and the page.

Read-only: every Redis access goes through :mod:`aion.store.queries` (reads only) or
:func:`aion.ops.health.health_report`. Routes (all GET; dates are IST trading dates
``YYYY-MM-DD``, default the latest session in Redis):

- ``/`` the page, ``/static/...`` its files (chart library vendored, no CDN);
- ``/api/days``: session dates in Redis;
- ``/api/alerts?date=&pattern=&side=&symbol=``: the day's alerts, newest first;
- ``/api/alerts/stream?date=``: server-sent events, one ``alert`` event per stream entry
  (SSE ``id`` = stream id). The pub/sub channel :func:`aion.store.keys.alerts_channel`
  says *when* to read, the day's stream says *what*: each wake-up reads the entries after
  the last id sent, so a reconnect (``Last-Event-ID``) or a lost pub/sub message neither
  misses nor repeats an alert. ``status`` events say whether Redis is reachable;
- ``/api/symbols?date=``: instruments with bars that day;
- ``/api/instrument?symbol=&date=&tf=1m|5m|15m|30m|60m``: bars, EMA 20/50, VWAP and bands,
  the day's alerts of the symbol, volume profile, latest indicators and RVOL;
- ``/api/validation?date=``: ``aion validate``'s per-pattern, per-window summary;
- ``/api/health``: ``aion health --json``'s report plus the day's run summaries and gaps.

Errors are JSON ``{"error": message}``: 400 malformed parameter, 401 missing/wrong token,
404 unknown symbol/date/route, 413 body over :data:`MAX_BODY_BYTES`, 503 Redis unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
import redis
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aion.config import AionConfig, ConfigError
from aion.dashboard.series import chart_time, indicator_series, warm_up
from aion.market.time import parse_date, ymd
from aion.ops.health import health_report
from aion.store import keys, queries
from aion.store.server import connect
from aion.store.status import merge_store_status

STATIC_DIR = Path(__file__).resolve().parent / "static"

MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted (bytes); every route is a GET, so anything bigger is 413."""

TIMEFRAMES = ("1m", "5m", "15m", "30m", "60m")
"""Bar lengths the instrument view can show (1m stored bars, the rest stored roll-ups)."""

SIDES = ("long", "short")

WAKE_TIMEOUT_S = 15.0
"""An alert stream re-reads the day's stream at least this often (seconds) without a pub/sub
wake-up: pub/sub is at-most-once, the stream is the record."""

RETRY_MS = 1000
"""Reconnect delay the event stream asks of the browser's EventSource (ms)."""

_log = logging.getLogger("aion.dashboard")


def _redis_down(exc: Exception) -> str:
    return f"Redis unreachable: {type(exc).__name__}: {exc}"


# -- request guards (pure ASGI, so event streams are not buffered) ---------------------------


class BodyLimit:
    """413 for a request whose body is larger than ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before reading; a body without
    one (chunked) is read up to the limit and refused as soon as it passes it.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        too_big = JSONResponse({"error": f"request body over {self.limit} bytes"}, 413)
        if length is not None:
            if not length.isdigit() or int(length) > self.limit:
                await too_big(scope, receive, send)
                return
        elif b"transfer-encoding" in headers:
            body: list[Message] = []
            size = 0
            while True:
                msg = await receive()
                body.append(msg)
                size += len(msg.get("body", b""))
                if size > self.limit:
                    await too_big(scope, receive, send)
                    return
                if not msg.get("more_body", False):
                    break
            pending = iter(body)

            async def replay() -> Message:
                return next(pending, {"type": "http.disconnect"})

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)


class BearerAuth:
    """401 for every request without the token, given as ``Authorization: Bearer <token>``
    or (for ``EventSource`` and the page's own files, which cannot send headers)
    ``?token=<token>``. Compared in constant time; the token is never echoed or logged."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _ok(self, scope: Scope) -> bool:
        auth = dict(scope["headers"]).get(b"authorization", b"")
        if auth[:7].lower() == b"bearer " and hmac.compare_digest(auth[7:].strip(), self.token):
            return True
        qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return any(hmac.compare_digest(t.encode(), self.token) for t in qs.get("token", []))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._ok(scope):
            resp = JSONResponse(
                {"error": "missing or wrong token: send Authorization: Bearer <token>"},
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await resp(scope, receive, send)
            return
        await self.app(scope, receive, send)


# -- the alert hub: one pub/sub subscription, many event streams ------------------------------


class AlertHub:
    """Subscribes once to :func:`aion.store.keys.alerts_channel` (a daemon thread) and wakes
    every open event stream when an alert is announced or Redis comes back.

    Args:
        client: a redis-py client (``decode_responses=True``); the thread takes its own
            pub/sub connection from it.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.reachable = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: set[asyncio.Event] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the subscriber thread; wake-ups are delivered on ``loop``."""
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="aion-dashboard-pubsub")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Stop the subscriber thread (returns within about a second)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def listen(self) -> asyncio.Event:
        """A new wake-up event for one stream (set on every announcement)."""
        ev = asyncio.Event()
        with self._lock:
            self._listeners.add(ev)
        return ev

    def unlisten(self, ev: asyncio.Event) -> None:
        with self._lock:
            self._listeners.discard(ev)

    def _wake(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._lock:
            listeners = list(self._listeners)
        for ev in listeners:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(ev.set)

    def _run(self) -> None:
        while not self._stop.is_set():
            pubsub = None
            try:
                pubsub = queries.alert_announcements(self.client)
                if not self.reachable:
                    self.reachable = True
                    self._wake()  # Redis is back: every stream catches up from its last id
                while not self._stop.is_set():
                    if pubsub.get_message(timeout=0.5) is not None:
                        self._wake()
            except (redis.RedisError, OSError) as exc:
                if self.reachable:
                    _log.warning("dashboard: alert subscription lost: %s", _redis_down(exc))
                self.reachable = False
                self._wake()
                self._stop.wait(0.5)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(redis.RedisError, OSError):
                        pubsub.close()


# -- helpers --------------------------------------------------------------------------------


def _param_date(request: Request, client: redis.Redis) -> int:
    """``?date=`` as YYYYMMDD, else the latest session date in Redis (404 when none)."""
    text = request.query_params.get("date")
    if text:
        try:
            return ymd(parse_date(text))
        except ValueError as exc:
            raise HTTPException(400, f"date: {exc}") from exc
    dates = queries.session_dates(client)
    if not dates:
        raise HTTPException(404, "no session in Redis yet: run `aion scan` first")
    return dates[-1]


def _iso(date: int) -> str:
    return f"{date // 10_000:04d}-{date // 100 % 100:02d}-{date % 100:02d}"


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf floats become None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _num(text: str | None) -> float | None:
    try:
        v = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _profile(raw: dict[str, str]) -> dict[str, Any]:
    """The stored volume profile hash as numbers; ``bins`` as ``[[price, volume], ...]``."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k == "bins":
            out[k] = json.loads(v)
        elif k == "baseline":
            out[k] = v
        else:
            out[k] = _num(v)
    return out


# -- the app --------------------------------------------------------------------------------


def create_app(cfg: AionConfig, redis_url: str, token: str | None = None) -> Starlette:
    """The dashboard app on the Redis at ``redis_url`` (read-only).

    Args:
        cfg: the validated configuration (TLS for ``rediss://``, validation and indicator
            settings, health thresholds).
        redis_url: the Redis to read; its password, if any, is never shown.
        token: when given, every request must carry it (see :class:`BearerAuth`).
    """
    client = connect(redis_url, cfg.redis.tls)
    hub = AlertHub(client)
    validation_cache: dict[tuple[int, int, str], list[dict[str, Any]]] = {}

    async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args)

    # -- pages ------------------------------------------------------------------------------

    async def index(request: Request) -> Response:
        # no Referer: the page's own URL may carry ?token=
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        return FileResponse(STATIC_DIR / "index.html", headers=headers)

    # -- API --------------------------------------------------------------------------------

    def days(request: Request) -> JSONResponse:
        dates = queries.session_dates(client)
        return JSONResponse({"dates": [_iso(d) for d in dates]})

    def alerts(request: Request) -> JSONResponse:
        date = _param_date(request, client)
        side = request.query_params.get("side")
        if side is not None and side not in SIDES:
            raise HTTPException(400, f"side: {side!r} must be one of {', '.join(SIDES)}")
        pattern = request.query_params.get("pattern")
        symbol = request.query_params.get("symbol")
        rows = queries.read_alerts(client, date)
        rows = [
            a
            for a in rows
            if (side is None or a.get("direction") == side)
            and (pattern is None or a.get("pattern") == pattern)
            and (symbol is None or a.get("symbol") == symbol)
        ]
        rows.reverse()
        return JSONResponse({"date": _iso(date), "alerts": rows})

    async def alert_stream(request: Request) -> Response:
        try:
            date = await in_thread(_param_date, request, client)
        except redis.RedisError:
            date = None  # say so in the stream: EventSource gives up on a non-200 answer
        last_id = request.headers.get("last-event-id") or None
        if last_id is not None and not _is_stream_id(last_id):
            raise HTTPException(400, f"Last-Event-ID: {last_id!r} is not a stream id <ms>-<seq>")

        async def events() -> AsyncIterator[dict[str, Any]]:
            nonlocal date, last_id
            wake = hub.listen()
            up: bool | None = None
            try:
                while True:
                    wake.clear()
                    try:
                        if date is None:
                            date = await in_thread(_param_date, request, client)
                        rows = await in_thread(queries.read_alerts_after, client, date, last_id)
                    except redis.RedisError as exc:
                        if up is not False:
                            up = False
                            msg = {"redis": False, "error": _redis_down(exc)}
                            yield {"event": "status", "data": json.dumps(msg)}
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wake.wait(), 1.0)
                        continue
                    except HTTPException as exc:  # no session yet: wait for one
                        msg = {"redis": True, "error": str(exc.detail)}
                        yield {"event": "status", "data": json.dumps(msg)}
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wake.wait(), WAKE_TIMEOUT_S)
                        continue
                    if up is not True:
                        up = True
                        msg = {"redis": True, "date": _iso(date)}
                        yield {"event": "status", "data": json.dumps(msg), "retry": RETRY_MS}
                    for row in rows:
                        last_id = row["id"]
                        yield {"event": "alert", "id": row["id"], "data": json.dumps(row)}
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), WAKE_TIMEOUT_S)
            finally:
                hub.unlisten(wake)

        return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})

    def symbols(request: Request) -> JSONResponse:
        date = _param_date(request, client)
        return JSONResponse(
            {"date": _iso(date), "symbols": queries.symbols_with_bars(client, date)}
        )

    def instrument(request: Request) -> JSONResponse:
        symbol = request.query_params.get("symbol", "").strip()
        if not symbol:
            raise HTTPException(400, "symbol: required, e.g. ?symbol=NSE:HDFCBANK")
        if "{" in symbol or "}" in symbol:
            raise HTTPException(400, f"symbol: {symbol!r} must not contain braces")
        tf = request.query_params.get("tf", "1m")
        if tf not in TIMEFRAMES:
            raise HTTPException(400, f"tf: {tf!r} must be one of {', '.join(TIMEFRAMES)}")
        date = _param_date(request, client)
        one_min = queries.read_bars(client, symbol, date)
        if not one_min:
            raise HTTPException(404, f"unknown symbol {symbol}: no bars stored on {_iso(date)}")
        bars = one_min if tf == "1m" else queries.read_rollup_bars(client, symbol, tf, date)
        try:
            series = indicator_series(bars, date, cfg.indicators.for_timeframe(tf))
        except ConfigError as exc:
            raise HTTPException(400, str(exc)) from exc
        latest = queries.read_latest_minute(client, keys.rvol(symbol, date))
        body = {
            "symbol": symbol,
            "date": _iso(date),
            "timeframe": tf,
            "bars": [
                {
                    "time": chart_time(b["start"]),
                    "label": b["time"],
                    **{k: b[k] for k in ("open", "high", "low", "close", "volume")},
                }
                for b in bars
            ],
            "series": series,
            "alerts": [a for a in queries.read_alerts(client, date) if a["symbol"] == symbol],
            "profile": _profile(queries.read_hash(client, keys.profile(symbol, date))),
            "indicators": {
                k: _num(v) for k, v in queries.read_hash(client, keys.indicators(symbol)).items()
            },
            "rvol": None if latest is None else {"time": latest[0], **latest[1]},
        }
        return JSONResponse(_clean(body))

    def validation(request: Request) -> JSONResponse:
        from aion.validation.forward import random_baseline, validate_alerts
        from aion.validation.stats import summarize

        date = _param_date(request, client)
        alerts_ = queries.read_alerts(client, date)
        if not alerts_:
            raise HTTPException(404, f"no alerts stored for {_iso(date)}")
        key = (date, len(alerts_), alerts_[-1]["id"])
        rows = validation_cache.get(key)
        if rows is None:
            vc = cfg.validation
            syms = sorted({a["symbol"] for a in alerts_})
            bars = {s: queries.read_bars(client, s, date) for s in syms}
            try:
                trades = validate_alerts(alerts_, bars, vc.windows_min)
                base = random_baseline(
                    alerts_,
                    bars,
                    vc.windows_min,
                    vc.baseline_draws,
                    vc.baseline_jitter_min,
                    vc.seed,
                )
            except ValueError as exc:
                raise HTTPException(422, f"cannot validate: {exc}") from exc
            rows = _clean(summarize(trades, base, vc.windows_min).to_dicts())
            validation_cache.clear()
            validation_cache[key] = rows
        vc = cfg.validation
        return JSONResponse(
            {
                "date": _iso(date),
                "alerts": len(alerts_),
                "windows_min": list(vc.windows_min),
                "baseline": {
                    "draws": vc.baseline_draws,
                    "jitter_min": vc.baseline_jitter_min,
                    "seed": vc.seed,
                },
                "rows": rows,
            }
        )

    def health(request: Request) -> JSONResponse:
        report = merge_store_status(health_report(client, cfg), cfg.data_dir())
        runs: list[dict[str, Any]] = []
        gaps: list[dict[str, Any]] = []
        date: int | None = None
        if report["redis"].get("reachable"):
            with contextlib.suppress(redis.RedisError, HTTPException):
                date = _param_date(request, client)
                runs = [_decode_run(r) for r in queries.read_runs(client, date)]
                gaps = queries.read_gaps(client, date)
        body = {"date": None if date is None else _iso(date), "report": report}
        return JSONResponse(_clean({**body, "runs": runs, "gaps": gaps}))

    # -- errors -----------------------------------------------------------------------------

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)

    async def redis_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": _redis_down(exc), "redis": False}, 503)

    async def server_error(request: Request, exc: Exception) -> Response:
        _log.exception("dashboard: %s %s failed", request.method, request.url.path)
        return JSONResponse({"error": "internal error (see the dashboard's log)"}, 500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub.start(asyncio.get_running_loop())
        # the indicator kernels load (or compile) on first use: not on the first page view
        warm = threading.Thread(target=warm_up, name="aion-dashboard-warm-up", daemon=True)
        warm.start()
        try:
            yield
        finally:
            hub.stop()
            client.close()

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/days", days),
            Route("/api/alerts", alerts),
            Route("/api/alerts/stream", alert_stream),
            Route("/api/symbols", symbols),
            Route("/api/instrument", instrument),
            Route("/api/validation", validation),
            Route("/api/health", health),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        exception_handlers={
            HTTPException: http_error,
            redis.RedisError: redis_error,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    if token:
        app.add_middleware(BearerAuth, token=token)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    return app


def _is_stream_id(text: str) -> bool:
    ms, sep, seq = text.partition("-")
    return bool(sep) and ms.isdigit() and seq.isdigit()


def _decode_run(run: dict[str, str]) -> dict[str, Any]:
    """A run summary's fields, JSON-decoded where they hold JSON (dicts, lists, numbers)."""
    out: dict[str, Any] = {}
    for k, v in run.items():
        try:
            out[k] = json.loads(v) if k != "id" else v
        except (TypeError, ValueError):
            out[k] = v
    return out

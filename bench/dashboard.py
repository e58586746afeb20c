"""Dashboard benchmark: instrument-view load time and alert-to-page latency (issue 17).

Set-up, as the browser tests do (``tests/integration/test_dashboard_browser.py``): the bundled
real 2022-11-11 session (:func:`aion.replay.builder.build_session`) scanned at max speed with
every pattern entry (``aion scan --replay ... --patterns all``) into a private redis-server,
``aion dashboard`` on it in a child process, and Debian's headless Chromium driven by
selenium. What the page drew is read back from ``window.aionDash`` (the chart's data, not
pixels); both clocks below are the page's own, set by ``aion/dashboard/static/app.js``.

Figures (milliseconds):

* ``instrument_load``: a fresh navigation to ``#instrument?symbol=NSE:HDFCBANK&alert=ID``
  (``about:blank`` first, so each is a full page load) until the chart holds HDFCBANK's 375
  one-minute candles: ``window.aionDash.instrument.drawnAt``, ``performance.now()`` taken
  right after the candle, volume, line and marker data were set (so: from the navigation's
  start, before the browser paints the chart). The first load of a fresh browser profile on a
  dashboard that has served nothing yet is ``cold_ms``; the next ``loads`` give median and max.
  ``fetch_to_draw`` is the part from the ``/api/instrument`` request to the data set, ``api``
  that request alone (Resource Timing: request start to response end).
* ``click_to_chart``: on the alerts view, ``performance.now()`` just before a click on an
  HDFCBANK alert's row until ``drawnAt`` of the chart it opens (no page reload: the hash
  changes, the page fetches the instrument and sets the data).
* ``alert_to_page``: the day's stream is emptied, the page opened on it, and every alert of
  the session published again, one at a time with its own stream id and fields, through the
  store writer (:class:`aion.store.writer.RedisStore`: XADD, then PUBLISH on
  ``aion:alerts:live``, as the scanner's store thread does). Latency of each alert =
  ``window.aionDash.received[id]`` (``Date.now()`` when the page's event handler took it,
  just before the row is inserted; 1 ms resolution) minus ``time.time_ns()`` taken right
  before the writer's flush; the next alert is published once the page holds the previous
  one. Both clocks are this machine's wall clock. p50/p99 by ``numpy.percentile`` (linear).
  Afterwards the stream must equal the scan's (same ids and fields) and the page must show
  every alert once, else the run fails.

Not a test: nothing is compared with a threshold. Run:
``python -m bench.dashboard [--work DIR] [--loads N] [--clicks N]``; prints a summary and, as
its last line, the JSON result (``bench.run`` runs it in a child process).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from aion.queues import BoundedQueue
from aion.store import keys
from aion.store.queries import read_alerts
from aion.store.server import PrivateRedis, connect
from aion.store.writer import AlertRecord, RedisStore, StoreBatch, TtlSeconds

ROOT = Path(__file__).resolve().parents[1]
BARS_DIR = ROOT / "aion" / "data" / "intraday_1min_2022-11-11"
CONFIG_DIR = ROOT / "config"
DATE = 20221111
SYMBOL = "NSE:HDFCBANK"
CANDLES = 375
"""1-minute bars of a full NSE session (09:15-15:30 IST)."""

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
TTL = TtlSeconds(bars=86_400, state=86_400, alerts=86_400, runs=86_400)
WAIT_S = 60.0
"""Longest wait for one page state before the run fails (not a measured figure)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(redis_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AION_CONFIG_DIR",)}
    env.pop("AION_DASHBOARD_TOKEN", None)
    env.update({"REDIS_URL": redis_url, "AION_DATA_DIR": str(data_dir)})
    return env


def _scan(session: Path, env: dict[str, str]) -> None:
    """``aion scan`` of ``session`` at max speed with every pattern entry into ``REDIS_URL``."""
    cmd = [sys.executable, "-m", "aion", "scan", "--replay", str(session), "--speed", "max",
           "--patterns", "all", "--json", "--no-live", "--config", str(CONFIG_DIR)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"aion scan failed: {out.stderr.strip()[-500:]}")


@contextmanager
def _dashboard(env: dict[str, str]) -> Iterator[str]:
    """``aion dashboard`` in a child process; yields its base URL once ``/api/days`` answers."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "aion", "dashboard", "--port", str(port), "--config",
           str(CONFIG_DIR)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                with urllib.request.urlopen(base + "api/days", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read() if proc.stderr else ""
                    raise RuntimeError(f"aion dashboard did not start: {err[-500:]}") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def _browser() -> Iterator[Any]:
    """Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) on a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        raise RuntimeError("needs chromium and chromium-driver (apt-get install both)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--window-size=1500,950",
    ):  # fmt: skip
        opts.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="aion-bench-chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(drv: Any, script: str, timeout_s: float = WAIT_S) -> Any:
    """Poll ``script`` (JS returning a value) every 5 ms until it is truthy; returns it."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, timeout_s, poll_frequency=0.005).until(
        lambda d: d.execute_script(script)
    )


def _summary(values_ms: Sequence[float]) -> dict[str, Any]:
    a = np.asarray(values_ms, dtype=np.float64)
    return {
        "n": int(a.size),
        "p50_ms": round(float(np.percentile(a, 50)), 1),
        "p99_ms": round(float(np.percentile(a, 99)), 1),
        "max_ms": round(float(a.max()), 1),
        "min_ms": round(float(a.min()), 1),
    }


_DRAWN = (
    "const i = window.aionDash.instrument;"
    f"if (!(i && i.symbol === '{SYMBOL}' && i.candles === {CANDLES} && i.drawnAt > %f))"
    " return null;"
    "const api = performance.getEntriesByType('resource')"
    ".filter(e => e.name.includes('/api/instrument?')).pop();"
    "return {drawnAt: i.drawnAt, fetchToDrawMs: i.fetchToDrawMs, candles: i.candleData.length,"
    " apiMs: api ? api.responseEnd - api.startTime : null};"
)
"""The chart's state once it holds the symbol's candles and was drawn after the given
``performance.now()``; ``apiMs``: the last ``/api/instrument`` request's start to its
response's end (Resource Timing), the server's share of ``fetchToDrawMs``."""


def instrument_loads(drv: Any, base: str, alert_id: str, n: int) -> list[dict[str, float]]:
    """``n`` fresh navigations to the instrument view; each one's drawnAt and fetchToDrawMs."""
    out: list[dict[str, float]] = []
    for _ in range(n):
        drv.get("about:blank")  # a fresh navigation each time (a hash change does not reload)
        drv.get(f"{base}#instrument?symbol={SYMBOL}&alert={alert_id}")
        drawn = _wait(drv, _DRAWN % 0.0)
        if drawn["candles"] != CANDLES:
            raise RuntimeError(f"chart holds {drawn['candles']} candles, not {CANDLES}")
        out.append(drawn)
    return out


def click_loads(drv: Any, base: str, alert_id: str, n_alerts: int, n: int) -> list[float]:
    """``n`` clicks on the alert's row in the alerts view; ms from click to the chart's data."""
    drv.get("about:blank")
    drv.get(base)
    _wait(drv, f"return window.aionDash.alerts.size === {n_alerts}")
    row = f"#alerts-table tbody tr[data-id='{alert_id}']"
    out: list[float] = []
    for _ in range(n):
        drv.execute_script("location.hash = '#alerts'")
        _wait(drv, "return window.aionDash.view === 'alerts'")
        t0 = drv.execute_script(
            f'const t = performance.now(); document.querySelector("{row}").click(); return t;'
        )
        drawn = _wait(drv, _DRAWN % t0)
        out.append(drawn["drawnAt"] - t0)
    return out


def alert_latencies(drv: Any, base: str, client: Any, stream: list[dict]) -> list[float]:
    """Empty the day's stream, open the page, publish ``stream``'s alerts again one at a time;
    ms from each publish to the page's receipt. Fails unless the stream ends as it was."""
    client.delete(keys.alerts(DATE))
    drv.get("about:blank")
    drv.get(base)
    _wait(drv, "return window.aionDash.redis === true && window.aionDash.alerts.size === 0")
    store = RedisStore(client, BoundedQueue("out", 10, "block", 1.0), TTL)
    out: list[float] = []
    for a in stream:
        record = AlertRecord(DATE, a["id"], {k: v for k, v in a.items() if k != "id"})
        store.merge(StoreBatch(alerts=[record]))
        sent_ns = time.time_ns()
        if not store.flush_alerts() or store.stats.alerts_announced != len(out) + 1:
            raise RuntimeError(f"alert {a['id']} not written and announced: {store.stats}")
        got_ms = _wait(drv, f"return window.aionDash.received['{a['id']}']")
        out.append(got_ms - sent_ns / 1e6)
    if read_alerts(client, DATE) != stream:
        raise RuntimeError("the republished stream differs from the scan's")
    ids = drv.execute_script(
        "return [...document.querySelectorAll('#alerts-table tbody tr')].map(r => r.dataset.id)"
    )
    if ids != [a["id"] for a in reversed(stream)]:
        raise RuntimeError("the page does not show every published alert once, newest first")
    return out


def run(work: Path, loads: int = 20, clicks: int = 20) -> dict[str, Any]:
    """The benchmark (see the module docstring) with its scratch files under ``work``.

    Args:
        work: scratch folder (session file, Redis data, the scan's data folder).
        loads: warm instrument-view navigations after the cold one (>= 10 for the figures).
        clicks: clicks on an alert row.

    Raises:
        RuntimeError: the scan, the dashboard or the browser failed, or the page did not
            show what Redis holds.
    """
    from aion.replay.builder import build_session

    t0 = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    session = work / "2022-11-11.session.gz"
    if not session.exists():
        build_session([BARS_DIR], "2022-11-11", session)
    server = PrivateRedis(work / "redis-data")
    url = server.start()
    try:
        client = connect(url)
        client.flushdb()
        env = _env(url, work / "data")
        _scan(session, env)
        stream = read_alerts(client, DATE)
        mine = [a for a in stream if a["symbol"] == SYMBOL]
        if not mine:
            raise RuntimeError(f"the scan raised no alert on {SYMBOL}")
        pick = mine[len(mine) // 2]["id"]
        setup_s = time.monotonic() - t0
        with _dashboard(env) as base, _browser() as drv:
            nav = instrument_loads(drv, base, pick, 1 + loads)
            click = click_loads(drv, base, pick, len(stream), clicks)
            latency = alert_latencies(drv, base, client, stream)
            version = drv.capabilities.get("browserVersion", "")
        client.close()
    finally:
        server.stop()
    warm = nav[1:]
    return {
        "symbol": SYMBOL,
        "candles": CANDLES,
        "alerts": len(stream),
        "chromium": version,
        "instrument_load": {
            "cold_ms": round(nav[0]["drawnAt"], 1),
            "cold_fetch_to_draw_ms": round(nav[0]["fetchToDrawMs"], 1),
            **_summary([d["drawnAt"] for d in warm]),
            "cold_api_ms": round(nav[0]["apiMs"], 1),
            "fetch_to_draw": _summary([d["fetchToDrawMs"] for d in warm]),
            "api": _summary([d["apiMs"] for d in warm]),
        },
        "click_to_chart": _summary(click),
        "alert_to_page": _summary(latency),
        "setup_s": round(setup_s, 1),
        "wall_s": round(time.monotonic() - t0, 1),
    }


def describe(r: dict[str, Any]) -> str:
    """One paragraph of the figures of :func:`run`'s result ``r``."""
    il, ck, ap = r["instrument_load"], r["click_to_chart"], r["alert_to_page"]
    return (
        f"instrument view ({r['symbol']}, {r['candles']} candles): cold {il['cold_ms']} ms, "
        f"then median {il['p50_ms']} / max {il['max_ms']} ms over {il['n']} loads "
        f"(API call to chart data: median {il['fetch_to_draw']['p50_ms']} ms, of which "
        f"the /api/instrument response {il['api']['p50_ms']} ms); "
        f"click on an alert to chart: median {ck['p50_ms']} / max {ck['max_ms']} ms over "
        f"{ck['n']} clicks; alert to page over {ap['n']} alerts: p50 {ap['p50_ms']} / "
        f"p99 {ap['p99_ms']} / max {ap['max_ms']} ms (Chromium {r['chromium']}; "
        f"{r['wall_s']} s, {r['setup_s']} s of it session build and scan)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    ap.add_argument("--loads", type=int, default=20, help="warm instrument-view loads")
    ap.add_argument("--clicks", type=int, default=20, help="clicks on an alert row")
    a = ap.parse_args(argv)
    if a.loads < 1 or a.clicks < 1:
        ap.error("--loads and --clicks must be at least 1")
    work = a.work or Path(tempfile.mkdtemp(prefix="aion-bench-dashboard-"))
    try:
        r = run(work, a.loads, a.clicks)
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(describe(r))
    print(json.dumps(r))


if __name__ == "__main__":
    main()

"""Acceptance: `aion dashboard` on the real 2022-11-11 session (replayed once per module into a
real redis-server), opened in a real headless Chromium (Debian's chromium + chromium-driver,
driven by selenium). What the page drew is read back from ``window.aionDash`` (the chart's
data, not pixels). Alerts are published the way the scanner publishes them: an AlertRecord
through the store writer (XADD + PUBLISH). Screenshots of each view go to the test's tmp dir.

Prints (not asserted): the instrument view's load time and the alert-to-page latency."""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from aion.queues import BoundedQueue
from aion.store import keys
from aion.store.batch import AlertRecord, StoreBatch
from aion.store.queries import read_alerts
from aion.store.server import PrivateRedis, connect, find_redis_server
from aion.store.writer import RedisStore, TtlSeconds

pytestmark = pytest.mark.integration

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DATE = 20221111
TTL = TtlSeconds(bars=86_400, state=86_400, alerts=86_400, runs=86_400)

from selenium import webdriver  # noqa: E402

# a missing browser is a broken install, not a reason to pass: .ci/run installs both
assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), (
    "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def _env(url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    env.update({"REDIS_URL": url, "AION_DATA_DIR": str(data_dir)})
    env.pop("AION_DASHBOARD_TOKEN", None)
    return env


@pytest.fixture(scope="module")
def scanned(
    tmp_path_factory: pytest.TempPathFactory, session_2022_11_11: Path
) -> Iterator[tuple[str, Path, PrivateRedis]]:
    """A redis-server of this module holding the scanned real session."""
    server = PrivateRedis(tmp_path_factory.mktemp("dash-redis"))
    url = server.start()
    data_dir = tmp_path_factory.mktemp("dash-data")
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "scan", "--replay", str(session_2022_11_11), "--speed",
         "max", "--json", "--no-live", "--config", str(REPO_CONFIG)],
        capture_output=True, text=True, env=_env(url, data_dir), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    yield url, data_dir, server
    server.stop()


@pytest.fixture()
def client(scanned: tuple[str, Path, PrivateRedis]) -> Iterator[redis.Redis]:
    c = connect(scanned[0])
    yield c
    c.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dashboard:
    """`aion dashboard` in a subprocess on a fixed port (restartable on the same port)."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.env = _env(url, data_dir)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen[str] | None = None
        self.output: str | None = None

    def start(self, probe_query: str = "") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aion", "dashboard", "--port", str(self.port), "--config",
             str(REPO_CONFIG)],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}api/days{probe_query}", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    out = self.proc.stdout.read() if self.proc.stdout else ""
                    raise AssertionError(f"dashboard did not start: {out}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM; keeps what the process printed in :attr:`output`."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.output, _ = self.proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.output, _ = self.proc.communicate()
        self.proc = None


@pytest.fixture(scope="module")
def dashboard(scanned: tuple[str, Path, PrivateRedis]) -> Iterator[Dashboard]:
    d = Dashboard(scanned[0], scanned[1])
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--window-size=1500,950",
    ):  # fmt: skip
        opts.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="aion-chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _wait(drv: WebDriver, script: str, timeout: float = 30.0) -> Any:
    """Poll ``script`` (JS returning a value) until it is truthy; returns it."""
    return WebDriverWait(drv, timeout, poll_frequency=0.02).until(
        lambda d: d.execute_script(script)
    )


def _open(drv: WebDriver, url: str) -> None:
    drv.get("about:blank")  # a fresh navigation each time (hash-only changes do not reload)
    drv.get(url)


def _publish(client: redis.Redis, alerts: list[AlertRecord]) -> None:
    """XADD + PUBLISH through the store writer, as the scanner's store thread does."""
    store = RedisStore(client, BoundedQueue("out", 10, "block", 1.0), TTL)
    store.merge(StoreBatch(alerts=alerts))
    assert store.flush_alerts()
    assert store.stats.alerts_announced == len(alerts)


def _next_alert(client: redis.Redis, tag: str) -> AlertRecord:
    """A new alert after the stream's last one: the last alert's fields, a new id."""
    last = read_alerts(client, DATE)[-1]
    ms = int(last["id"].split("-")[0]) + 60_000
    fields = {k: v for k, v in last.items() if k != "id"}
    fields["alert_id"] = f"{fields['alert_id']}:{tag}"
    return AlertRecord(DATE, f"{ms}-0", fields)


def test_alerts_view_shows_every_stream_alert(
    dashboard: Dashboard, browser: WebDriver, client: redis.Redis, tmp_path: Path
) -> None:
    stream = read_alerts(client, DATE)
    assert len(stream) > 100
    _open(browser, dashboard.base)
    _wait(browser, f"return window.aionDash.alerts.size === {len(stream)}")
    ids = browser.execute_script(
        "return [...document.querySelectorAll('#alerts-table tbody tr')].map(r => r.dataset.id)"
    )
    assert ids == [a["id"] for a in reversed(stream)]  # every alert once, newest first
    first = browser.execute_script(
        "return [...document.querySelector('#alerts-table tbody tr').cells].map(c => c.textContent)"
    )
    a = stream[-1]
    assert first[:4] == [a["bar_time"][11:16], a["symbol"], a["pattern"], a["direction"]]
    assert first[4:7] == [f"{float(a[k]):.2f}" for k in ("entry", "stop", "target")]
    assert first[7] == a["quantity"]
    # filters: pattern + side
    browser.execute_script(
        "const s = document.getElementById('f-pattern'); s.value = 'volume_spike';"
        "s.dispatchEvent(new Event('change'));"
        "const d = document.getElementById('f-side'); d.value = 'long';"
        "d.dispatchEvent(new Event('change'));"
    )
    shown = browser.execute_script(
        "return [...document.querySelectorAll('#alerts-table tbody tr')]"
        ".filter(r => !r.hidden).map(r => r.dataset.id)"
    )
    want = [x["id"] for x in reversed(stream) if x["pattern"] == "volume_spike"]
    want = [i for i in want if next(x for x in stream if x["id"] == i)["direction"] == "long"]
    assert shown == want and shown
    browser.execute_script(
        "for (const id of ['f-pattern', 'f-side']) { const s = document.getElementById(id);"
        "s.value = ''; s.dispatchEvent(new Event('change')); }"
    )
    browser.save_screenshot(str(tmp_path / "dashboard-alerts.png"))
    # a click on an alert opens its instrument with the alert's levels drawn
    pick = next(x for x in reversed(stream) if x["symbol"] == "NSE:HDFCBANK")
    browser.execute_script(
        f"document.querySelector('#alerts-table tbody tr[data-id=\"{pick['id']}\"]').click()"
    )
    drawn = _wait(
        browser,
        "const i = window.aionDash.instrument; return i && i.priceLines.length === 3 && i",
    )
    assert drawn["symbol"] == "NSE:HDFCBANK"
    assert {p["title"]: p["price"] for p in drawn["priceLines"]}["entry"] == float(pick["entry"])


def test_instrument_view_draws_candles_markers_and_price_lines(
    dashboard: Dashboard, browser: WebDriver, client: redis.Redis, tmp_path: Path
) -> None:
    mine = [a for a in read_alerts(client, DATE) if a["symbol"] == "NSE:HDFCBANK"]
    assert mine
    chosen = mine[len(mine) // 2]
    loads = []
    for _ in range(3):
        _open(browser, f"{dashboard.base}#instrument?symbol=NSE:HDFCBANK&alert={chosen['id']}")
        drawn = _wait(
            browser,
            "const i = window.aionDash.instrument; return i && i.candles === 375 && i",
        )
        loads.append(drawn["drawnAt"])
    print(f"\ninstrument view load (navigation -> chart data set), ms: {loads}")
    assert drawn["symbol"] == "NSE:HDFCBANK" and drawn["timeframe"] == "1m"
    times = [b["time"] for b in drawn["candleData"]]
    assert times == sorted(times) and len(set(times)) == 375
    assert len(drawn["markers"]) == len(mine)
    assert {m["id"] for m in drawn["markers"]} == {a["id"] for a in mine}
    assert all(m["time"] in set(times) for m in drawn["markers"])
    lines = {p["title"]: p["price"] for p in drawn["priceLines"]}
    assert lines == {k: float(chosen[k]) for k in ("entry", "stop", "target")}
    # EMA 20/50 and VWAP computed with the indicator core end on what the scan stored
    stored = client.hgetall(keys.indicators("NSE:HDFCBANK"))
    api = json.load(
        urllib.request.urlopen(dashboard.base + "api/instrument?symbol=NSE:HDFCBANK", timeout=30)
    )
    for name in ("ema_20", "ema_50", "vwap", "vwap_upper_1", "vwap_lower_2"):
        assert api["series"][name][-1]["value"] == pytest.approx(float(stored[name]), abs=1e-5)
    assert drawn["series"]["vwap"] == 375 and drawn["series"]["ema_50"] == 375 - 49
    assert drawn["profile"]["poc"] is not None and drawn["profile"]["bins"]
    browser.save_screenshot(str(tmp_path / "dashboard-instrument.png"))
    # a 5-minute roll-up
    browser.execute_script(
        "const s = document.getElementById('i-tf'); s.value = '5m';"
        "s.dispatchEvent(new Event('change'));"
    )
    five = _wait(browser, "const i = window.aionDash.instrument; return i.timeframe === '5m' && i")
    assert five["candles"] == 75
    assert len(five["markers"]) == len(mine)


def test_validation_view_shows_every_pattern_that_fired(
    dashboard: Dashboard, browser: WebDriver, client: redis.Redis, tmp_path: Path
) -> None:
    fired = {a["pattern"] for a in read_alerts(client, DATE)}
    _open(browser, f"{dashboard.base}#validation")
    shown = _wait(browser, "const v = window.aionDash.validation; return v && v.shown", timeout=120)
    assert set(shown) == fired | {"(all)"}
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#v-table tbody tr')].map(r => r.dataset.pattern)"
    )
    assert set(rows) == fired | {"(all)"}
    bars = browser.execute_script("return document.querySelectorAll('#v-chart rect').length")
    assert bars >= len(fired)
    browser.save_screenshot(str(tmp_path / "dashboard-validation.png"))


def test_health_view_shows_the_health_report(
    dashboard: Dashboard, browser: WebDriver, tmp_path: Path
) -> None:
    _open(browser, f"{dashboard.base}#health")
    h = _wait(browser, "return window.aionDash.health")
    names = browser.execute_script(
        "return [...document.querySelectorAll('#h-checks tbody tr')]"
        ".map(r => r.cells[0].textContent)"
    )
    assert names == [c["name"] for c in h["report"]["checks"]]
    assert "redis.reachable" in names
    runs = browser.execute_script("return document.querySelectorAll('#h-runs tbody tr').length")
    assert runs == len(h["runs"]) == 1
    assert h["runs"][0]["queue_drops"] == 0
    browser.save_screenshot(str(tmp_path / "dashboard-health.png"))


def test_published_alerts_appear_within_2_s(
    dashboard: Dashboard, browser: WebDriver, client: redis.Redis
) -> None:
    _open(browser, dashboard.base)
    n = len(read_alerts(client, DATE))
    _wait(browser, f"return window.aionDash.alerts.size === {n}")
    latencies = []
    for i in range(40):
        alert = _next_alert(client, f"live{i}")
        sent_ms = time.time() * 1000
        _publish(client, [alert])
        row = f"#alerts-table tbody tr[data-id='{alert.stream_id}']"
        _wait(browser, f'return document.querySelector("{row}")', timeout=2.0)
        got_ms = browser.execute_script(f"return window.aionDash.received['{alert.stream_id}']")
        latencies.append(got_ms - sent_ms)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(
        f"\nalert -> page latency over {len(latencies)} alerts, ms: "
        f"p50 {statistics.median(latencies):.1f} p99 {p99:.1f} max {latencies[-1]:.1f}"
    )
    rows = browser.execute_script(
        "return document.querySelectorAll('#alerts-table tbody tr').length"
    )
    assert rows == n + 40


def test_reconnect_catches_up_without_gaps_or_repeats(
    dashboard: Dashboard, browser: WebDriver, client: redis.Redis
) -> None:
    _open(browser, dashboard.base)
    n = len(read_alerts(client, DATE))
    _wait(browser, f"return window.aionDash.alerts.size === {n}")
    dashboard.stop()  # the page's EventSource loses its server
    missed = []
    for i in range(3):  # published while the page is disconnected
        a = _next_alert(client, f"missed{i}")
        _publish(client, [a])
        missed.append(a.stream_id)
    dashboard.start()  # same port: EventSource reconnects with Last-Event-ID
    _wait(browser, f"return window.aionDash.alerts.size === {n + 3}", timeout=30)
    ids = browser.execute_script(
        "return [...document.querySelectorAll('#alerts-table tbody tr')].map(r => r.dataset.id)"
    )
    assert ids == [a["id"] for a in reversed(read_alerts(client, DATE))]
    assert ids[:3] == missed[::-1]
    assert len(ids) == len(set(ids))


def test_page_works_with_a_token(
    scanned: tuple[str, Path, PrivateRedis], browser: WebDriver, client: redis.Redis
) -> None:
    token = "t0ken-for-this-test-only"
    d = Dashboard(scanned[0], scanned[1])
    d.env["AION_DASHBOARD_TOKEN"] = token
    d.start(probe_query=f"?token={token}")
    try:
        _open(browser, d.base)
        assert "missing or wrong token" in browser.page_source
        _open(browser, f"{d.base}?token={token}#instrument?symbol=NSE:HDFCBANK")
        n = len(read_alerts(client, DATE))
        _wait(browser, f"return window.aionDash.alerts.size === {n}")
        _wait(browser, "const i = window.aionDash.instrument; return i && i.candles === 375")
        assert token not in browser.execute_script("return document.body.innerHTML")
    finally:
        d.stop()
    assert d.output is not None and token not in d.output


def test_page_says_redis_is_down_and_recovers(
    scanned: tuple[str, Path, PrivateRedis], dashboard: Dashboard, browser: WebDriver,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Last in the module: Redis is stopped, then started again on the same port and data."""
    url, _, server = scanned
    _open(browser, dashboard.base)
    _wait(browser, "return window.aionDash.redis === true && window.aionDash.alerts.size > 0")
    n = browser.execute_script("return window.aionDash.alerts.size")
    port, folder = server.port, server.dir
    server.stop()  # SHUTDOWN SAVE: the AOF keeps everything
    banner = _wait(
        browser,
        "const b = document.getElementById('banner');"
        "return !b.classList.contains('hidden') && b.textContent",
    )
    assert banner.startswith("Redis is unreachable")
    assert browser.execute_script("return document.getElementById('live').textContent") == (
        "Redis down"
    )
    browser.save_screenshot(str(tmp_path / "dashboard-redis-down.png"))
    proc = subprocess.Popen(
        [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--appendonly", "yes", "--save", "", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(
            browser,
            "return window.aionDash.redis === true &&"
            "document.getElementById('banner').classList.contains('hidden')",
        )
        c = connect(url)
        alert = _next_alert(c, "after-outage")
        _publish(c, [alert])
        c.close()
        _wait(browser, f"return window.aionDash.alerts.size === {n + 1}", timeout=10)
    finally:
        proc.terminate()
        proc.wait(15)

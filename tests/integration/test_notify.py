"""Acceptance: `aion notify` on the real 2022-11-11 session (replayed once per module into a real
redis-server by `aion scan`, whose optional notifier thread feeds a webhook receiver meanwhile)
against a real Bot API server and webhook receiver on 127.0.0.1 (``notify_servers.py``).

Checked at the servers: every alert of the stream delivered exactly once to every destination,
paced within the limits (the server answers 429 to any early request, and the receive times are
checked), under a 429 storm and 500s, across kill -9 and restart of `aion notify`; failures
for good (400, 401, connection refused) counted, logged and acknowledged; the bot token in no
output. Prints (not asserted): delivered / duplicated / lost counts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from notify_servers import BotApi, Reply, Request, WebhookReceiver

from aion.store import keys
from aion.store.queries import read_alerts
from aion.store.server import PrivateRedis, connect

pytestmark = pytest.mark.integration

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"
DATE = 20221111
TOKEN = "123456789:AAHsecretPART-of_the_bot_token42"


def write_config(folder: Path, notify: dict[str, Any]) -> Path:
    """The repository's config with ``notify:`` replaced; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in REPO_CONFIG.iterdir():
        shutil.copy(f, folder / f.name)
    raw = yaml.safe_load((REPO_CONFIG / "aion.yaml").read_text())
    raw["notify"] = notify
    raw["logging"]["file"] = True
    (folder / "aion.yaml").write_text(yaml.safe_dump(raw))
    return folder


def _env(url: str, data_dir: Path, token: str | None = TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    env.update({"REDIS_URL": url, "AION_DATA_DIR": str(data_dir)})
    env.pop("AION_TELEGRAM_BOT_TOKEN", None)
    if token:
        env["AION_TELEGRAM_BOT_TOKEN"] = token
    return env


@pytest.fixture(scope="module")
def scan_hook() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver()
    hook.start()
    yield hook
    hook.stop()


@pytest.fixture(scope="module")
def scanned(
    tmp_path_factory: pytest.TempPathFactory, session_2022_11_11: Path, scan_hook: WebhookReceiver
) -> Iterator[tuple[str, Path, dict]]:
    """A redis-server holding the scanned real session; the scan ran its notifier thread
    (``notify.in_scan``, group ``scan``) on a webhook. Yields (url, data dir, scan summary)."""
    server = PrivateRedis(tmp_path_factory.mktemp("notify-redis"))
    url = server.start()
    data_dir = tmp_path_factory.mktemp("notify-data")
    cfg = write_config(
        tmp_path_factory.mktemp("scan-config"),
        {"enabled": True, "in_scan": True, "group": "scan", "consumer": "scan-1",
         "daily_cap_per_chat": 0, "webhooks": [{"url": f"{scan_hook.url}/scan", "format": "json"}]},
    )  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "scan", "--replay", str(session_2022_11_11), "--speed",
         "max", "--json", "--no-live", "--config", str(cfg)],
        capture_output=True, text=True, env=_env(url, data_dir, None), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    yield url, data_dir, json.loads(proc.stdout.strip().splitlines()[-1])
    server.stop()


@pytest.fixture()
def client(scanned: tuple[str, Path, dict]) -> Iterator[redis.Redis]:
    c = connect(scanned[0])
    c.delete(keys.notify(DATE))  # each test starts with an empty ledger (its own group)
    yield c
    c.close()


@pytest.fixture()
def stream_ids(client: redis.Redis) -> list[str]:
    ids = [a["id"] for a in read_alerts(client, DATE)]
    assert len(ids) > 100  # the real session's alerts (270 with the bundled config)
    return ids


class NotifyProcess:
    """`aion notify --date 2022-11-11` in a subprocess (restartable, killable). Its stdout and
    stderr go to files (a pipe nobody reads would fill and block the process's logging)."""

    def __init__(self, url: str, data_dir: Path, config: Path, token: str | None = TOKEN):
        self.env = _env(url, data_dir, token)
        self.config = config
        self.proc: subprocess.Popen[str] | None = None
        self.outputs: list[str] = []  # stdout and stderr of every run
        self._files: tuple[Any, Any] | None = None

    def start(self, *extra: str) -> None:
        out = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by _collect)
        errs = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self._files = (out, errs)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aion", *extra, "notify", "--date", "2022-11-11", "--json",
             "--config", str(self.config)],
            env=self.env, stdout=out, stderr=errs, text=True,
        )  # fmt: skip

    def _collect(self) -> tuple[str, str]:
        assert self.proc is not None and self._files is not None
        self.proc.wait(timeout=60)
        texts = []
        for f in self._files:
            f.seek(0)
            texts.append(f.read())
            f.close()
        self.outputs += texts
        return texts[0], texts[1]

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None
        self.proc.send_signal(signal.SIGKILL)
        self._collect()

    def stop(self) -> dict:
        """SIGTERM; returns the JSON summary (the last stdout line)."""
        assert self.proc is not None
        self.proc.terminate()
        out, errs = self._collect()
        assert self.proc.returncode == 0, errs
        return json.loads(out.strip().splitlines()[-1])

    def wait(self, done: Callable[[], bool], timeout_s: float = 240.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"aion notify exited: {self._collect()}")
            if time.monotonic() > deadline:
                self.kill9()
                raise AssertionError(f"aion notify did not deliver in time: {self.outputs[-1]}")
            time.sleep(0.05)


def _gaps(reqs: list[Request]) -> list[float]:
    return [b.t - a.t for a, b in pairwise(reqs)]


def _max_in_window(times: list[float], window_s: float) -> int:
    """Most requests within any ``window_s`` seconds (half-open)."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _delivery(server: BotApi | WebhookReceiver, dest: str, ids: list[str]) -> dict[str, int]:
    got = Counter(r.stream_id for r in server.ok(dest))
    return {
        "delivered": sum(1 for i in ids if got[i] >= 1),
        "duplicated": sum(got[i] - 1 for i in ids if got[i] > 1),
        "lost": sum(1 for i in ids if got[i] == 0),
        "unknown": sum(n for i, n in got.items() if i not in set(ids)),
    }


def test_scan_thread_notifies_each_alert_at_most_once(
    scanned: tuple[str, Path, dict], scan_hook: WebhookReceiver, client: redis.Redis
) -> None:
    """The scan's notifier thread: every webhook POST is a stream alert, none twice, and what
    it had not sent when the scan stopped is still pending or undelivered in its group."""
    summary = scanned[2]
    ids = [a["id"] for a in read_alerts(client, DATE)]
    assert summary["queue_drops"] == 0 and summary["alerts"] == len(ids)
    got = Counter(r.stream_id for r in scan_hook.ok("/scan"))
    assert set(got) <= set(ids) and max(got.values()) == 1
    (info,) = [g for g in client.xinfo_groups(keys.alerts(DATE)) if g["name"] == "scan"]
    assert len(got) + info["pending"] + info["lag"] == len(ids)
    assert summary["notify"]["sent"] == len(got)
    print(f"\nscan thread: {len(got)} of {len(ids)} alerts sent during the scan")


def test_every_alert_once_paced_under_a_429_storm(
    scanned: tuple[str, Path, dict], client: redis.Redis, stream_ids: list[str], tmp_path: Path
) -> None:
    """Two chats (a private one and a group) and a webhook; the Bot API answers a burst of
    429s and scattered 500s, the webhook 500s and 429 with Retry-After: every alert reaches
    every destination exactly once, and no request breaks the limits."""
    interval, per_group, per_s = 0.1, 200, 15

    def storm(n: int, chat: str) -> Reply | None:
        if 50 <= n < 56 or n % 37 == 36:
            return 429, {"ok": False, "error_code": 429, "description": "Too Many Requests: "
                         "retry after 1", "parameters": {"retry_after": 1}}, {}  # fmt: skip
        if n % 29 == 13:
            return 500, {"ok": False, "error_code": 500, "description": "Internal"}, {}
        return None

    def hook_script(n: int) -> Reply | None:
        if n % 23 == 5:
            return 500, {}, {}
        if n % 41 == 9:
            return 429, {"message": "rate limited"}, {"Retry-After": "1"}
        return None

    bot = BotApi(TOKEN, interval, per_group, per_s, script=storm)
    hook = WebhookReceiver(hook_script)
    bot.start()
    hook.start()
    cfg = write_config(tmp_path / "config", {
        "enabled": True, "group": "storm", "daily_cap_per_chat": 0, "backoff_initial_s": 0.2,
        "telegram": {"enabled": True, "chat_ids": ["1001", "-1002"], "api_url": bot.url,
                     "per_chat_interval_s": interval, "per_group_per_min": per_group,
                     "global_per_s": per_s},
        "webhooks": [{"url": f"{hook.url}/hook", "format": "json"}],
    })  # fmt: skip
    n = len(stream_ids)
    proc = NotifyProcess(scanned[0], scanned[1], cfg)
    proc.start()
    try:
        proc.wait(
            lambda: len(bot.ok("1001")) >= n and len(bot.ok("-1002")) >= n
            and len(hook.ok("/hook")) >= n
        )  # fmt: skip
        summary = proc.stop()
    finally:
        bot.stop()
        hook.stop()
    report = {d: _delivery(bot, d, stream_ids) for d in ("1001", "-1002")}
    report["/hook"] = _delivery(hook, "/hook", stream_ids)
    rate_limited = sum(r.status == 429 for r in bot.requests + hook.requests)
    print(f"\n429 storm: {rate_limited} answers 429, {sum(r.status == 500 for r in bot.requests)}"
          f" + {sum(r.status == 500 for r in hook.requests)} answers 500; {report}")  # fmt: skip
    for d, r in report.items():
        assert r == {"delivered": n, "duplicated": 0, "lost": 0, "unknown": 0}, d
    assert bot.violations == 0  # the server never saw a request early
    by_chat = {c: [r for r in bot.requests if r.dest == c] for c in ("1001", "-1002")}
    for reqs in by_chat.values():
        assert min(_gaps(reqs)) >= interval
        # after a 429 the next request waits retry_after (1 s) from the answer
        for a, b in pairwise(reqs):
            if a.status == 429:
                assert b.t - a.t >= 1.0
    assert _max_in_window([r.t for r in by_chat["-1002"]], 60.0) <= per_group
    assert len(by_chat["-1002"]) > per_group  # the group window was exercised
    assert _max_in_window(sorted(r.t for r in bot.requests), 1.0) <= per_s
    hook_reqs = hook.requests
    for a, b in pairwise(hook_reqs):
        if a.status == 500:
            assert b.t - a.t >= 0.2  # the back-off
        if a.status == 429:
            assert b.t - a.t >= 1.0  # Retry-After
    assert summary["sent"] == 3 * n and summary["failed"] == 0 and summary["entries"] == n
    assert summary["rate_limited"] == rate_limited
    assert summary["requests"] == len(bot.requests) + len(hook.requests)
    assert client.xpending(keys.alerts(DATE), "storm")["pending"] == 0


def test_kill_9_and_restart_lose_nothing(
    scanned: tuple[str, Path, dict], client: redis.Redis, stream_ids: list[str], tmp_path: Path
) -> None:
    """`aion notify` killed with SIGKILL three times mid-stream and restarted: every alert
    reaches every destination; a repeat is possible only for the one request in flight at
    each kill; a chat that answers 400 gets each alert tried once, failed for good."""
    bot = BotApi(TOKEN, 0.02, 100_000, 200, bad_chats=("-400",))
    hook = WebhookReceiver()
    bot.start()
    hook.start()
    cfg = write_config(tmp_path / "config", {
        "enabled": True, "group": "kill", "daily_cap_per_chat": 0,
        "telegram": {"enabled": True, "chat_ids": ["1001", "-400"], "api_url": bot.url,
                     "per_chat_interval_s": 0.02, "per_group_per_min": 100_000,
                     "global_per_s": 200},
        "webhooks": [{"url": f"{hook.url}/discord", "format": "discord"}],
    })  # fmt: skip
    n = len(stream_ids)
    proc = NotifyProcess(scanned[0], scanned[1], cfg)
    kills = (n // 4, n // 2, 3 * n // 4)
    try:
        for at in kills:
            proc.start()
            proc.wait(lambda at=at: len(bot.ok("1001")) >= at)
            proc.kill9()
        proc.start()
        proc.wait(
            lambda: len(bot.ok("1001")) >= n and len(hook.ok("/discord")) >= n
            and len({r.stream_id for r in bot.requests if r.dest == "-400"}) >= n
        )  # fmt: skip
        time.sleep(0.5)  # let the last ledger writes and acks land
        summary = proc.stop()
    finally:
        bot.stop()
        hook.stop()
    report = {"1001": _delivery(bot, "1001", stream_ids)}
    report["/discord"] = _delivery(hook, "/discord", stream_ids)
    tried_400 = Counter(r.stream_id for r in bot.requests if r.dest == "-400")
    print(f"\nkill -9 x{len(kills)}: {report}; chat -400: {len(tried_400)} alerts tried, "
          f"{sum(tried_400.values()) - len(tried_400)} repeated")  # fmt: skip
    duplicated = sum(r["duplicated"] for r in report.values())
    duplicated += sum(tried_400.values()) - len(tried_400)
    for d, r in report.items():
        assert r["lost"] == 0 and r["unknown"] == 0 and r["delivered"] == n, d
    assert set(tried_400) == set(stream_ids)
    assert duplicated <= len(kills)  # only the request in flight at a kill can repeat
    ledger = client.hgetall(keys.notify(DATE))
    for sid in stream_ids:
        assert ledger[f"{sid}|telegram:1001"] == "sent"
        assert ledger[f"{sid}|telegram:-400"].startswith("failed:HTTP 400 Bad Request")
    assert client.xpending(keys.alerts(DATE), "kill")["pending"] == 0
    assert summary["recovered"] >= 1  # the last run read back what the kill left pending


def test_filters_and_daily_cap_hold_across_a_restart(
    scanned: tuple[str, Path, dict], client: redis.Redis, tmp_path: Path
) -> None:
    """Only the chosen patterns at or above the confidence reach the chat, at most the cap a
    day, the first ones in stream order; a second run sends nothing more."""
    patterns, min_conf, cap = ["volume_spike", "volume_profile_advanced"], 0.9, 7
    alerts = read_alerts(client, DATE)
    eligible = [
        a["id"] for a in alerts if a["pattern"] in patterns and float(a["confidence"]) >= min_conf
    ]
    assert len(eligible) > cap
    bot = BotApi(TOKEN, 0.01, 100_000, 1000)
    bot.start()
    cfg = write_config(tmp_path / "config", {
        "enabled": True, "group": "cap", "patterns": patterns, "min_confidence": min_conf,
        "daily_cap_per_chat": cap,
        "telegram": {"enabled": True, "chat_ids": ["1001"], "api_url": bot.url,
                     "per_chat_interval_s": 0.01, "global_per_s": 1000},
    })  # fmt: skip
    proc = NotifyProcess(scanned[0], scanned[1], cfg)
    summaries = []
    try:
        for run in range(2):
            if run == 1:  # the group hands every entry out again: only the ledger stops repeats
                client.xgroup_setid(keys.alerts(DATE), "cap", "0")
            proc.start()
            proc.wait(lambda: _caught_up(client, "cap"))
            summaries.append(proc.stop())
    finally:
        bot.stop()
    assert [r.stream_id for r in bot.ok("1001")] == eligible[:cap]
    assert len(bot.requests) == cap
    first, second = summaries
    assert first["sent"] == cap and first["capped"] == len(eligible) - cap
    assert first["filtered"] == len(alerts) - len(eligible) and first["entries"] == len(alerts)
    assert second["sent"] == 0 and second["capped"] == 0 and second["entries"] == len(alerts)
    assert second["already_settled"] == len(eligible)
    assert client.hget(keys.notify(DATE), "count|telegram:1001") == str(cap)


def _closed_port() -> int:
    """A loopback port nobody listens on, below Linux's ephemeral range (32768-60999): a
    connection to a free port inside it can connect to itself (TCP simultaneous open)."""
    for port in range(20_000, 30_000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below 30000")


def _caught_up(client: redis.Redis, name: str) -> bool:
    """Group ``name`` exists, has been handed the stream's last entry and acknowledged all."""
    stream = keys.alerts(DATE)
    groups = [g for g in client.xinfo_groups(stream) if g["name"] == name]
    last = client.xrevrange(stream, count=1)[0][0]
    return bool(groups) and groups[0]["last-delivered-id"] == last and groups[0]["pending"] == 0


def test_failures_for_good_are_counted_and_the_token_never_printed(
    scanned: tuple[str, Path, dict], client: redis.Redis, stream_ids: list[str], tmp_path: Path
) -> None:
    """A Bot API that does not know the token (401) and a webhook nobody listens on
    (connection refused, two attempts): every alert fails for good at both, each counted,
    logged and acknowledged; the token is in no output or log line, even at DEBUG."""
    bot = BotApi("999:another-bots-token", 0.001, 100_000, 10_000)
    bot.start()
    closed_url = f"http://127.0.0.1:{_closed_port()}"
    data_dir = tmp_path / "data"
    cfg = write_config(tmp_path / "config", {
        "enabled": True, "group": "fail", "daily_cap_per_chat": 0, "max_attempts": 2,
        "timeout_s": 2, "backoff_initial_s": 0.01, "backoff_cap_s": 0.01,
        "telegram": {"enabled": True, "chat_ids": ["1001"], "api_url": bot.url,
                     "per_chat_interval_s": 0.001, "global_per_s": 10_000},
        "webhooks": [{"url": f"{closed_url}/hook?secret=abc123", "format": "slack"}],
    })  # fmt: skip
    proc = NotifyProcess(scanned[0], data_dir, cfg)
    try:
        proc.start("--log-level", "DEBUG")
        proc.wait(lambda: _caught_up(client, "fail"))
        summary = proc.stop()
    finally:
        bot.stop()
    n = len(stream_ids)
    assert len(bot.requests) == n and all(r.status == 401 for r in bot.requests)
    assert summary["failed"] == 2 * n and summary["sent"] == 0 and summary["entries"] == n
    ledger = client.hgetall(keys.notify(DATE))
    assert all(ledger[f"{s}|telegram:1001"] == "failed:HTTP 401 Unauthorized" for s in stream_ids)
    log_text = (data_dir / "logs" / "aion.log").read_text()
    assert log_text.count("notification failed for good") == 2 * n
    everything = "\n".join(proc.outputs) + log_text
    assert TOKEN not in everything and TOKEN.split(":")[1] not in everything
    assert "abc123" not in everything  # the webhook URL's secret neither


@pytest.mark.parametrize(
    ("notify", "token", "line"),
    [
        ({"enabled": False}, TOKEN, "error: notify.enabled is false"),
        ({"enabled": True, "patterns": ["volume_spikes"], "webhooks": [{"url": "http://h/"}]},
         TOKEN, "error: notify.patterns[0]: 'volume_spikes' is not a detector"),
        ({"enabled": True, "telegram": {"enabled": True, "chat_ids": ["1"]}}, None,
         "error: notify.telegram is enabled but there is no bot token"),
        ({"enabled": True, "telegram": {"chat_ids": [-100]}}, TOKEN,
         "error: notify.telegram.chat_ids[0]:"),
    ],
)  # fmt: skip
def test_bad_notify_setups_stop_with_one_line(
    tmp_path: Path, notify: dict, token: str | None, line: str
) -> None:
    cfg = write_config(tmp_path / "config", notify)
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "notify", "--config", str(cfg)],
        capture_output=True, text=True, timeout=120,
        env=_env("redis://127.0.0.1:1/0", tmp_path / "data", token),
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith(line) and proc.stderr.count("\n") == 1, proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout

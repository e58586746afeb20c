"""Notifier units: notify: config errors, message text and escaping (read back with the stdlib
HTML parser), webhook bodies, the dashboard link, filters, the pacer under Telegram's limits
(a simulated clock), answer classification (real httpx responses) and redaction."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from aion.config import ConfigError
from aion.config_checks import build_section
from aion.kite.credentials import CredentialsError
from aion.notify.config import NotifyConfig
from aion.notify.message import instrument_link, telegram_text, webhook_body
from aion.notify.notifier import load_bot_token, skip_reason
from aion.notify.pacing import Pacer
from aion.notify.senders import Telegram, Webhook, classify
from aion.ops.logging import redact

ALERT = {
    "alert_id": "20221111:NSE:M&M:volume_spike:10:32",
    "symbol": "NSE:M&M",
    "pattern": "volume_spike",
    "direction": "long",
    "confidence": "0.9123",
    "bar_time": "2022-11-11T10:32:00+0530",
    "entry": "1290.50",
    "stop": "1281.25",
    "target": "1309.00",
    "quantity": "1081",
    "risk_reward": "2.00",
}
TOKEN = "123456789:AAHsecretPART-of_the_bot_token42"


def notify_config(data: dict) -> NotifyConfig:
    return build_section(NotifyConfig, data, "notify")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"telegram": {"enabled": True}}, "notify.telegram.chat_ids"),
        ({"telegram": {"chat_ids": ["12ab"]}}, "notify.telegram.chat_ids[0]"),
        ({"telegram": {"chat_ids": [123]}}, "notify.telegram.chat_ids[0]"),
        ({"telegram": {"per_chat_interval_s": 0}}, "notify.telegram.per_chat_interval_s"),
        ({"webhooks": [{"url": "ftp://x"}]}, "notify.webhooks[].url"),
        ({"webhooks": [{"url": "https://x", "format": "teams"}]}, "notify.webhooks[].format"),
        ({"min_confidence": 1.5}, "notify.min_confidence"),
        ({"daily_cap_per_chat": -1}, "notify.daily_cap_per_chat"),
        ({"dashboard_url": "127.0.0.1:8050"}, "notify.dashboard_url"),
        ({"consumer": "a b"}, "notify.consumer"),
        ({"backoff_cap_s": 0.5}, "notify.backoff_cap_s"),
        ({"enabled": True}, "notify.enabled"),
        ({"telgram": {}}, "notify.telgram"),
    ],
)
def test_bad_notify_config_names_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        notify_config(data)
    line = str(exc.value)
    assert line.startswith(key + ":") and "\n" not in line


def test_defaults_are_off_with_telegram_limits() -> None:
    cfg = notify_config({})
    assert not cfg.enabled and not cfg.telegram.enabled and not cfg.in_scan
    t = cfg.telegram
    assert (t.per_chat_interval_s, t.per_group_per_min, t.global_per_s) == (1.0, 20, 30)


class _Text(HTMLParser):
    """Text and links of Telegram-style HTML, as a client would render them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.hrefs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [v or "" for k, v in attrs if k == "href"]

    def handle_data(self, data: str) -> None:
        self.text += data


def _render(html_text: str) -> _Text:
    p = _Text()
    p.feed(html_text)
    p.close()
    return p


def test_telegram_text_has_every_figure_and_escapes_html() -> None:
    hostile = dict(ALERT, pattern='<script>"x"</script>&')
    link = instrument_link("http://127.0.0.1:8050", 20221111, "NSE:M&M", "1668142920000-0")
    out = _render(telegram_text(hostile, link))
    assert set(out.tags) <= {"b", "a"}  # the pattern's markup stayed text
    for value in ("NSE:M&M", "BUY", '<script>"x"</script>&', "10:32 IST", "1290.50", "1281.25",
                  "1309.00", "1081", "2.00", "0.9123"):  # fmt: skip
        assert value in out.text, value
    assert out.hrefs == [link]
    short = _render(telegram_text(dict(ALERT, direction="short"), None))
    assert "SELL" in short.text and short.hrefs == []


def test_instrument_link_opens_the_alert_in_the_dashboard() -> None:
    link = instrument_link("https://desk.example/aion", 20221111, "NSE:M&M", "1668142920000-0")
    parts = urlsplit(link)
    assert parts.path == "/aion/" and parse_qs(parts.query) == {"date": ["2022-11-11"]}
    view, query = parts.fragment.split("?")
    assert view == "instrument"
    assert parse_qs(query) == {"symbol": ["NSE:M&M"], "alert": ["1668142920000-0"]}


def test_webhook_bodies() -> None:
    link = "http://127.0.0.1:8050/?date=2022-11-11#instrument?symbol=NSE%3AM%26M"
    plain = json.loads(webhook_body(ALERT, "1-0", 20221111, "json", link))
    assert plain == {"stream_id": "1-0", "date": 20221111, "link": link, "alert": ALERT}
    discord = json.loads(webhook_body(ALERT, "1-0", 20221111, "discord", link))
    slack = json.loads(webhook_body(ALERT, "1-0", 20221111, "slack", link))
    assert discord["content"] == slack["text"]
    assert "NSE:M&M BUY volume_spike" in slack["text"] and slack["text"].endswith(link)
    with pytest.raises(ValueError, match="teams"):
        webhook_body(ALERT, "1-0", 20221111, "teams", None)


def test_filters() -> None:
    cfg = notify_config({"patterns": ["breakout"], "min_confidence": 0.95})
    assert skip_reason(ALERT, cfg) == "pattern"
    assert skip_reason(dict(ALERT, pattern="breakout"), cfg) == "confidence"
    assert skip_reason(dict(ALERT, pattern="breakout", confidence="0.95"), cfg) is None
    assert skip_reason(dict(ALERT, pattern="breakout", confidence="n/a"), cfg) == "confidence"
    assert skip_reason(ALERT, notify_config({})) is None


def _simulate(pacer: Pacer, chats: list[str], n: int, rtt_s: float = 0.0) -> dict[str, list]:
    """Send ``n`` messages round-robin over ``chats`` as fast as the pacer allows; returns
    the send times per chat (a simulated clock)."""
    now, sent = 0.0, {c: [] for c in chats}
    for i in range(n):
        chat = chats[i % len(chats)]
        now += pacer.delay(chat, now)
        sent[chat].append(now)
        now += rtt_s
        pacer.record(chat, now)
    return sent


def _max_in_window(times: list[float], window_s: float) -> int:
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window_s - 1e-9:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_pacer_keeps_telegrams_limits() -> None:
    pacer = Pacer(1.0, 20, 30)
    chats = [str(1000 + i) for i in range(40)] + ["-100200"]
    sent = _simulate(pacer, chats, 41 * 30, rtt_s=0.01)
    everything = sorted(t for ts in sent.values() for t in ts)
    assert _max_in_window(everything, 1.0) <= 30
    for chat, ts in sent.items():
        assert all(b - a >= 1.0 for a, b in pairwise(ts)), chat
    group = sent["-100200"]
    assert _max_in_window(group, 60.0) <= 20
    assert group[20] - group[0] >= 60.0  # the 21st message to the group waited a minute
    # and no slower than needed: 30 messages a second overall
    assert everything[-1] <= len(everything) / 30 * 1.01 + 60


def test_pacer_one_chat_is_one_a_second() -> None:
    sent = _simulate(Pacer(1.0, 20, 30), ["42"], 10)
    assert sent["42"] == [float(i) for i in range(10)]


def _response(status: int, body: object = None, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def test_classify_follows_the_retry_rules() -> None:
    assert classify(_response(200, {"ok": True, "result": {}})).kind == "ok"
    assert classify(_response(204)).kind == "ok"
    limited = classify(_response(429, {"ok": False, "parameters": {"retry_after": 7}}))
    assert (limited.kind, limited.wait_s) == ("retry_after", 7.0)
    assert classify(_response(429, None, {"Retry-After": "3"})).wait_s == 3.0
    assert classify(_response(429, {"retry_after": 0.5})).wait_s == 0.5  # Discord
    assert classify(_response(429)).wait_s < 0  # no hint: the back-off
    assert classify(_response(502)).kind == "transient"
    bad = classify(_response(400, {"ok": False, "description": "Bad Request: chat not found"}))
    assert (bad.kind, bad.detail) == ("permanent", "HTTP 400 Bad Request: chat not found")
    assert classify(_response(200, {"ok": False, "description": "x"})).kind == "permanent"


def test_secrets_stay_out_of_reprs_and_logs() -> None:
    tg = Telegram("1001", TOKEN)
    hook = Webhook("https://discord.com/api/webhooks/1/SECRETPART", "discord")
    cfg = notify_config({"webhooks": [{"url": "https://hooks.slack.com/services/T/B/SECRETX"}]})
    for r in (repr(tg), repr(hook), repr(cfg), hook.label, tg.label):
        assert TOKEN not in r and "SECRET" not in r
    url = f"https://api.telegram.org/bot{TOKEN}/sendMessage"
    assert redact(f"POST {url} failed") == "POST https://api.telegram.org/bot***/sendMessage failed"
    assert tg.redact(f"error at {url}") == "error at https://api.telegram.org/bot***/sendMessage"


def test_bot_token_from_env_or_owner_only_secrets_file(tmp_path: Path) -> None:
    assert load_bot_token(None, {"AION_TELEGRAM_BOT_TOKEN": TOKEN}) == TOKEN
    f = tmp_path / "secrets.env"
    f.write_text(f"KITE_API_KEY=k\nAION_TELEGRAM_BOT_TOKEN='{TOKEN}'\n")
    f.chmod(0o600)
    assert load_bot_token(str(f), {}) == TOKEN
    assert load_bot_token(None, {}) is None
    f.chmod(0o644)
    with pytest.raises(CredentialsError, match="chmod 600"):
        load_bot_token(str(f), {})
    # a token read from the file is registered: it is redacted even without the env var
    assert redact(f"got {TOKEN}!") == "got ***!"

"""What a notification says: the Telegram HTML text, the webhook payloads, the dashboard link.

The input is one alert as the stream holds it (flat str fields,
:meth:`aion.alerts.manager.Alert.fields`: ``symbol``, ``pattern``, ``direction`` long/short,
``bar_time`` ISO IST, ``entry``/``stop``/``target`` rupees, ``quantity``, ``risk_reward``,
``confidence`` in [0, 1], ...).

Telegram's HTML parse mode (https://core.telegram.org/bots/api#html-style) takes ``<b>``,
``<i>``, ``<code>``, ``<a href>`` and the entities ``&lt;`` ``&gt;`` ``&amp;`` ``&quot;`` plus
numeric ones; every text and attribute value from the alert is escaped with
:func:`html.escape` (``quote=True``), so a symbol such as ``M&M`` or a pattern name cannot
break the markup. A message is at most 4096 characters after entity parsing (ours are ~300).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any
from urllib.parse import urlencode

SIDES = {"long": "BUY", "short": "SELL"}
"""Alert ``direction`` -> the side shown (for options premium strategies, of the premium)."""


def instrument_link(dashboard_url: str, date: int, symbol: str, stream_id: str) -> str:
    """The dashboard's instrument view of ``symbol`` on ``date`` (YYYYMMDD) with the alert
    ``stream_id`` chosen: ``<base>?date=YYYY-MM-DD#instrument?symbol=...&alert=...``
    (the routes of :mod:`aion.dashboard`'s page)."""
    base = dashboard_url if dashboard_url.endswith("/") else dashboard_url + "/"
    day = f"{date // 10000:04d}-{date // 100 % 100:02d}-{date % 100:02d}"
    return f"{base}?date={day}#instrument?" + urlencode({"symbol": symbol, "alert": stream_id})


def _ist_time(bar_time: str) -> str:
    try:
        return dt.datetime.fromisoformat(bar_time).strftime("%H:%M IST")
    except ValueError:
        return bar_time


def telegram_text(alert: dict[str, str], link: str | None) -> str:
    """The ``sendMessage`` text (HTML parse mode) of one alert.

    Lines: symbol (bold), side and pattern, bar time (IST); entry, stop, target (rupees);
    quantity, R:R, confidence; the dashboard link when ``link`` is given. Missing fields
    show as ``?``.
    """
    e = lambda k: html.escape(alert.get(k) or "?", quote=True)  # noqa: E731
    side = SIDES.get(alert.get("direction", ""), alert.get("direction") or "?")
    lines = [
        f"<b>{e('symbol')}</b> {html.escape(side)} · {e('pattern')} · "
        f"{html.escape(_ist_time(alert.get('bar_time', '')))}",
        f"entry <b>{e('entry')}</b> · stop {e('stop')} · target {e('target')}",
        f"qty {e('quantity')} · R:R {e('risk_reward')} · confidence {e('confidence')}",
    ]
    if link:
        lines.append(f'<a href="{html.escape(link, quote=True)}">chart</a>')
    return "\n".join(lines)


def plain_text(alert: dict[str, str], link: str | None) -> str:
    """The same message as plain text (Discord/Slack webhooks; Markdown-free)."""
    side = SIDES.get(alert.get("direction", ""), alert.get("direction") or "?")
    g = lambda k: alert.get(k) or "?"  # noqa: E731
    text = (
        f"{g('symbol')} {side} {g('pattern')} {_ist_time(alert.get('bar_time', ''))}: "
        f"entry {g('entry')} stop {g('stop')} target {g('target')} qty {g('quantity')} "
        f"R:R {g('risk_reward')} confidence {g('confidence')}"
    )
    return f"{text} {link}" if link else text


def webhook_body(
    alert: dict[str, str], stream_id: str, date: int, fmt: str, link: str | None
) -> bytes:
    """The JSON body POSTed to a webhook.

    ``fmt``: ``json`` -> ``{"stream_id", "date", "link", "alert": {fields}}``; ``discord`` ->
    ``{"content": text}`` (Discord's execute-webhook, at most 2000 characters); ``slack`` ->
    ``{"text": text}`` (Slack incoming webhooks). Raises ValueError for another ``fmt``.
    """
    body: dict[str, Any]
    if fmt == "json":
        body = {"stream_id": stream_id, "date": date, "link": link, "alert": alert}
    elif fmt == "discord":
        body = {"content": plain_text(alert, link)[:2000]}
    elif fmt == "slack":
        body = {"text": plain_text(alert, link)}
    else:
        raise ValueError(f"webhook format {fmt!r} is not json, discord or slack")
    return json.dumps(body, separators=(",", ":")).encode()

"""Destinations of a notification and the retry rules of one delivery.

A :class:`Telegram` destination is one chat of a bot (Bot API ``sendMessage``,
https://core.telegram.org/bots/api#sendmessage: ``POST <api>/bot<token>/sendMessage`` with
JSON ``chat_id``, ``text``, ``parse_mode=HTML``; the answer is ``{"ok": true, ...}`` or
``{"ok": false, "error_code", "description", "parameters": {"retry_after": s}}``). A
:class:`Webhook` destination is one URL taking a JSON POST (2xx is success; Discord and Slack
answer 429 with ``Retry-After`` or a JSON ``retry_after`` in seconds).

Rules of :func:`deliver`, the same for both:

- 2xx (and Telegram ``ok``): sent.
- 429: wait ``retry_after`` (Telegram's ``parameters.retry_after``, else ``Retry-After``,
  else the back-off) and retry; these waits do not use up attempts (the server said when).
- 5xx, 408 and connection errors or time-outs: back off ``backoff_initial_s`` doubling to
  ``backoff_cap_s`` and retry, up to ``max_attempts`` attempts; then failed for good.
- any other answer (400 chat not found, 401 bad token, 403 bot blocked, 404): failed for good
  at once.

Secrets: the bot token is part of the Telegram URL and Discord/Slack webhook URLs are
secrets. Neither is in a ``repr``, a log line or an outcome: destinations are named
``telegram:<chat_id>`` and ``webhook:<12 hex of the URL's sha256>`` (host shown), exception
texts are reduced to the exception's type, and the token is replaced by ``***`` in any text
taken from a response.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from aion.notify.pacing import Pacer
from aion.ops.logging import log_event

_log = logging.getLogger(__name__)

REDACTED = "***"


@dataclass
class Attempt:
    """The answer to one request: ``kind`` ``ok``, ``retry_after``, ``transient`` or
    ``permanent``; ``wait_s`` (seconds, for ``retry_after``); ``detail`` (no secret)."""

    kind: str
    wait_s: float = 0.0
    detail: str = ""


def _retry_after(response: httpx.Response, body: object) -> float | None:
    if isinstance(body, dict):
        params = body.get("parameters")
        if isinstance(params, dict) and isinstance(params.get("retry_after"), int | float):
            return float(params["retry_after"])
        if isinstance(body.get("retry_after"), int | float):  # Discord
            return float(body["retry_after"])
    header = response.headers.get("retry-after")
    try:
        return float(header) if header is not None else None
    except ValueError:  # an HTTP date: fall back to the back-off
        return None


def classify(response: httpx.Response) -> Attempt:
    """How one HTTP answer is treated (module docstring); Telegram's ``ok: false`` with 200
    is permanent."""
    try:
        body: object = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if 200 <= status < 300:
        if isinstance(body, dict) and body.get("ok") is False:
            return Attempt("permanent", detail=f"ok=false: {body.get('description', '')}")
        return Attempt("ok")
    description = body.get("description", "") if isinstance(body, dict) else ""
    detail = f"HTTP {status} {description}".strip()
    if status == 429:
        wait = _retry_after(response, body)
        return Attempt("retry_after", wait if wait is not None else -1.0, detail)
    if status >= 500 or status == 408:
        return Attempt("transient", detail=detail)
    return Attempt("permanent", detail=detail)


@dataclass
class Telegram:
    """One chat of a bot. ``name`` is the ledger's destination id (``telegram:<chat_id>``)."""

    chat_id: str
    token: str = field(repr=False)
    api_url: str = "https://api.telegram.org"

    @property
    def name(self) -> str:
        return f"telegram:{self.chat_id}"

    @property
    def label(self) -> str:
        return self.name

    def request(self, client: httpx.Client, text: str) -> httpx.Response:
        """POST ``sendMessage`` of ``text`` (HTML parse mode, link previews off)."""
        return client.post(
            f"{self.api_url.rstrip('/')}/bot{self.token}/sendMessage",
            json={
                "chat_id": self.chat_id,
                "text": text,
                "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": True},
            },
        )

    def redact(self, text: str) -> str:
        return text.replace(self.token, REDACTED) if self.token else text


@dataclass
class Webhook:
    """One webhook URL; ``fmt`` is ``json``, ``discord`` or ``slack``
    (:func:`aion.notify.message.webhook_body`)."""

    url: str = field(repr=False)
    fmt: str = "json"

    @property
    def name(self) -> str:
        return "webhook:" + hashlib.sha256(self.url.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return f"{self.name} ({urlsplit(self.url).hostname})"

    def request(self, client: httpx.Client, body: bytes) -> httpx.Response:
        return client.post(self.url, content=body, headers={"Content-Type": "application/json"})

    def redact(self, text: str) -> str:
        return text.replace(self.url, REDACTED)


@dataclass
class RetryPolicy:
    """Back-off of transient failures (seconds) and the attempts before failing for good."""

    backoff_initial_s: float = 1.0
    backoff_cap_s: float = 60.0
    max_attempts: int = 8


@dataclass
class DeliveryStats:
    """Counters of all deliveries (the notifier's summary): requests sent, 429 answers,
    transient failures retried."""

    requests: int = 0
    rate_limited: int = 0
    transient_errors: int = 0


def deliver(
    dest: Telegram | Webhook,
    payload: str | bytes,
    client: httpx.Client,
    policy: RetryPolicy,
    stop: threading.Event,
    stats: DeliveryStats,
    pacer: Pacer | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> str | None:
    """Deliver ``payload`` to ``dest`` under the module's retry rules.

    Returns:
        ``"sent"``, ``"failed:<detail>"`` (failed for good; no secret in the detail), or None
        when ``stop`` was set before the delivery settled (it is retried by the next run).
    """
    backoff = policy.backoff_initial_s
    attempts = 0
    while not stop.is_set():
        if pacer is not None and isinstance(dest, Telegram):
            wait = pacer.delay(dest.chat_id, clock())
            if wait > 0 and stop.wait(wait):
                return None
        try:
            stats.requests += 1
            response = dest.request(client, payload)  # type: ignore[arg-type]
            result = classify(response)
        except httpx.HTTPError as exc:  # the text may hold the URL: only the type
            result = Attempt("transient", detail=type(exc).__name__)
        finally:
            if pacer is not None and isinstance(dest, Telegram):
                pacer.record(dest.chat_id, clock())
        detail = dest.redact(result.detail)
        if result.kind == "ok":
            return "sent"
        if result.kind == "permanent":
            return f"failed:{detail}"
        if result.kind == "retry_after" and result.wait_s >= 0:
            stats.rate_limited += 1
            log_event(
                _log, "rate limited", logging.WARNING, to=dest.label, retry_after_s=result.wait_s
            )
            if stop.wait(result.wait_s):
                return None
            continue
        attempts += 1
        stats.transient_errors += 1
        if attempts >= policy.max_attempts:
            return f"failed:{detail} after {attempts} attempts"
        log_event(
            _log, "delivery retried", logging.WARNING, to=dest.label, error=detail,
            attempt=attempts, backoff_s=backoff,
        )  # fmt: skip
        if stop.wait(backoff):
            return None
        backoff = min(backoff * 2, policy.backoff_cap_s)
    return None

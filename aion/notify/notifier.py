"""The notifier: the day's alert stream -> Telegram chats and webhooks, each alert once.

It is one consumer of its own Redis consumer group on the alert stream of the trading day
(:class:`aion.store.consumer.AlertGroup`), so it never competes with the dashboard or other
readers. Per entry: the filters (``notify.patterns``, ``notify.min_confidence``); then per
destination, unless the ledger says that delivery is already settled: the daily cap
(``notify.daily_cap_per_chat``), the delivery with its retry rules
(:func:`aion.notify.senders.deliver`, Telegram paced by :class:`aion.notify.pacing.Pacer`),
the outcome written to the ledger; and only when every destination is settled, ``XACK``.

Delivery guarantees (README, "Notifications"):

- **Nothing lost.** An entry is acknowledged only after all its destinations are settled:
  ``sent``, ``failed:<reason>`` (failed for good: counted, logged at ERROR, kept in the
  ledger) or ``capped``. A stop (SIGTERM) or a kill leaves it pending; the next run reads
  its own pending entries first (same ``notify.consumer``) and takes over entries another
  consumer left pending for 5 minutes (``XAUTOCLAIM``).
- **Not repeated.** A destination whose outcome is in the ledger is skipped when the entry
  comes back. The one exception is the request in flight at a kill -9: if Telegram (or the
  webhook) had accepted it but the ledger write (one round trip after the answer) had not
  reached Redis, that one message is sent again after the restart: at most one duplicate
  per kill, at one destination. A stop by SIGTERM finishes the request in flight and its
  ledger write first: no duplicate.

The day is ``date`` when given (a replayed session), else the IST calendar date of the wall
clock, followed across midnight.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis

from aion.kite.credentials import CredentialsError, read_secrets_file
from aion.market.time import session_date
from aion.notify.config import NotifyConfig
from aion.notify.message import instrument_link, telegram_text, webhook_body
from aion.notify.pacing import Pacer
from aion.notify.senders import DeliveryStats, RetryPolicy, Telegram, Webhook, deliver
from aion.ops.logging import add_secret, log_event
from aion.store.consumer import AlertGroup

_log = logging.getLogger(__name__)

TOKEN_ENV = "AION_TELEGRAM_BOT_TOKEN"
CLAIM_IDLE_MS = 300_000
"""Entries pending with another consumer of the group this long (ms) are taken over."""
MISSING_TOKEN = (
    f"notify.telegram is enabled but there is no bot token: set {TOKEN_ENV} in the environment "
    "or in kite.secrets_file (mode 0600)"
)
READ_COUNT = 50
"""Entries read per XREADGROUP."""


def load_bot_token(
    secrets_file: str | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The bot token: env ``AION_TELEGRAM_BOT_TOKEN``, else that name in ``secrets_file``
    (``kite.secrets_file``, mode 0600: :func:`aion.kite.credentials.read_secrets_file`).

    The token is registered for redaction from every log line.

    Raises:
        CredentialsError: the secrets file is unsafe or malformed.
    """
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV, "").strip()
    if not token and secrets_file is not None:
        from pathlib import Path

        token = read_secrets_file(Path(secrets_file).expanduser()).get(TOKEN_ENV, "").strip()
    if token:
        add_secret(token)
    return token or None


def skip_reason(alert: Mapping[str, str], cfg: NotifyConfig) -> str | None:
    """Why ``alert`` is not notified (``pattern``, ``confidence``), None when it is.

    ``notify.patterns`` empty lets every pattern through; an unreadable ``confidence`` counts
    as below any ``min_confidence`` > 0.
    """
    if cfg.patterns and alert.get("pattern") not in cfg.patterns:
        return "pattern"
    if cfg.min_confidence > 0:
        try:
            conf = float(alert.get("confidence", "nan"))
        except ValueError:
            conf = math.nan
        if not conf >= cfg.min_confidence:
            return "confidence"
    return None


@dataclass
class NotifyStats:
    """Counters of one notifier run (its summary)."""

    entries: int = 0  # stream entries handled (acknowledged)
    recovered: int = 0  # of them read back from the pending list (a previous run's)
    filtered: Counter[str] = field(default_factory=Counter)  # by reason
    sent: Counter[str] = field(default_factory=Counter)  # by destination
    failed: Counter[str] = field(default_factory=Counter)  # by destination (failed for good)
    capped: Counter[str] = field(default_factory=Counter)  # by destination
    already_settled: int = 0  # deliveries skipped because the ledger had them
    redis_errors: int = 0
    delivery: DeliveryStats = field(default_factory=DeliveryStats)

    def values(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "entries": self.entries,
            "recovered": self.recovered,
            "sent": sum(self.sent.values()),
            "failed": sum(self.failed.values()),
            "capped": sum(self.capped.values()),
            "filtered": sum(self.filtered.values()),
            "already_settled": self.already_settled,
            "requests": self.delivery.requests,
            "rate_limited": self.delivery.rate_limited,
            "transient_errors": self.delivery.transient_errors,
            "redis_errors": self.redis_errors,
            "sent_by_destination": dict(self.sent),
            "failed_by_destination": dict(self.failed),
            "capped_by_destination": dict(self.capped),
            "filtered_by_reason": dict(self.filtered),
        }


class Notifier:
    """Consumes one day's alerts (or today's, followed) and notifies every destination.

    Args:
        cfg: the validated ``notify:`` section.
        client: a redis-py client (decoded responses) of aion's Redis; used by this
            notifier's thread only.
        token: the bot token (required when ``notify.telegram.enabled``).
        ttl_s: TTL of the ledger and of a stream the group creates (the alerts TTL, s).
        date: trading date YYYYMMDD to consume; None: today's (IST wall clock).
        http: the HTTP client (default: httpx with ``notify.timeout_s``).

    Raises:
        CredentialsError: Telegram is enabled without a bot token.
    """

    def __init__(
        self,
        cfg: NotifyConfig,
        client: redis.Redis,
        token: str | None,
        ttl_s: int,
        date: int | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.ttl_s = ttl_s
        self.date = date
        self.destinations: list[Telegram | Webhook] = []
        if cfg.telegram.enabled:
            if not token:
                raise CredentialsError(MISSING_TOKEN)
            self.destinations += [
                Telegram(c, token, cfg.telegram.api_url) for c in cfg.telegram.chat_ids
            ]
        self.destinations += [Webhook(w.url, w.format) for w in cfg.webhooks]
        tc = cfg.telegram
        self.pacer = Pacer(tc.per_chat_interval_s, tc.per_group_per_min, tc.global_per_s)
        self.policy = RetryPolicy(cfg.backoff_initial_s, cfg.backoff_cap_s, cfg.max_attempts)
        self.http = http or httpx.Client(timeout=cfg.timeout_s)
        self.stats = NotifyStats()
        self.stop_event = threading.Event()
        self._capped_logged: set[tuple[int, str]] = set()

    def __repr__(self) -> str:  # destinations hold the token and webhook URLs: names only
        return f"Notifier(date={self.date}, destinations={[d.name for d in self.destinations]})"

    def stop(self) -> None:
        """Ask :meth:`run` to return after the request in flight (and its ledger write)."""
        self.stop_event.set()

    def _group(self, date: int) -> AlertGroup:
        group = AlertGroup(self.client, date, self.cfg.group, self.cfg.consumer, self.ttl_s)
        group.ensure()
        return group

    def run(self) -> NotifyStats:
        """Consume until :meth:`stop`; returns the counters. Redis errors are logged, counted
        and retried (backing off up to 5 s): nothing read is acknowledged before it is
        settled, so an outage loses nothing."""
        group: AlertGroup | None = None
        recovering = True
        wait_s = 0.5
        log_event(
            _log, "notifier started", date=self.date or "today",
            destinations=",".join(d.label for d in self.destinations),
        )  # fmt: skip
        while not self.stop_event.is_set():
            day = self.date or session_date(int(time.time()))
            try:
                if group is None or group.date != day:
                    group = self._group(day)
                    recovering = True
                if recovering:
                    entries = group.pending(READ_COUNT) or group.claim(CLAIM_IDLE_MS, READ_COUNT)
                    recovering = bool(entries)
                    self.stats.recovered += len(entries)
                else:
                    entries = group.new(READ_COUNT, block_ms=1000)
                for stream_id, fields in entries:
                    if not self.handle(group, stream_id, fields):
                        break  # stopping: the rest stays pending
                    group.ack(stream_id)
                    self.stats.entries += 1
                wait_s = 0.5
            except redis.RedisError as exc:
                self.stats.redis_errors += 1
                log_event(
                    _log, "redis error, retrying", logging.WARNING,
                    error=f"{type(exc).__name__}: {exc}", retry_in_s=wait_s,
                )  # fmt: skip
                group, recovering = None, True
                self.stop_event.wait(wait_s)
                wait_s = min(wait_s * 2, 5.0)
        self.http.close()
        log_event(_log, "notifier stopped", **self.stats.values())
        return self.stats

    def handle(self, group: AlertGroup, stream_id: str, alert: dict[str, str]) -> bool:
        """Settle every destination of one entry; False when stopped before (not settled).

        Raises:
            redis.RedisError: Redis failed (the entry stays pending).
        """
        reason = skip_reason(alert, self.cfg)
        if reason is not None:
            self.stats.filtered[reason] += 1
            return True
        link = None
        if self.cfg.dashboard_url:
            link = instrument_link(
                self.cfg.dashboard_url, group.date, alert.get("symbol", ""), stream_id
            )
        settled = group.outcomes(stream_id, [d.name for d in self.destinations])
        cap = self.cfg.daily_cap_per_chat
        for dest in self.destinations:
            if dest.name in settled:
                self.stats.already_settled += 1
                continue
            if cap and group.sent_count(dest.name) >= cap:
                group.mark(stream_id, dest.name, "capped")
                self.stats.capped[dest.name] += 1
                if (group.date, dest.name) not in self._capped_logged:
                    self._capped_logged.add((group.date, dest.name))
                    log_event(
                        _log, "daily cap reached", logging.WARNING, to=dest.label,
                        date=group.date, cap=cap,
                    )  # fmt: skip
                continue
            payload: str | bytes
            if isinstance(dest, Telegram):
                payload = telegram_text(alert, link)
            else:
                payload = webhook_body(alert, stream_id, group.date, dest.fmt, link)
            outcome = deliver(
                dest, payload, self.http, self.policy, self.stop_event, self.stats.delivery,
                self.pacer,
            )  # fmt: skip
            if outcome is None:
                return False
            group.mark(stream_id, dest.name, outcome)
            if outcome == "sent":
                self.stats.sent[dest.name] += 1
            else:
                self.stats.failed[dest.name] += 1
                log_event(
                    _log, "notification failed for good", logging.ERROR, to=dest.label,
                    stream_id=stream_id, alert_id=alert.get("alert_id", ""), reason=outcome,
                )  # fmt: skip
        return True


def start_thread(notifier: Notifier) -> threading.Thread:
    """Run ``notifier`` on a daemon thread named ``notify`` (the scan's optional notifier).

    It shares no queue or lock with the scanner's threads (its own Redis connection and HTTP
    client), so a slow or failing Telegram never holds them up; stop it with
    :meth:`Notifier.stop` and a bounded ``join``.
    """
    thread = threading.Thread(target=notifier.run, name="notify", daemon=True)
    thread.start()
    return thread

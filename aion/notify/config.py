"""``notify:``: Telegram and webhook notifications of the day's alerts."""

from __future__ import annotations

from dataclasses import dataclass, field

from aion.config_checks import ConfigError, check_at_least, check_choice, check_positive, check_unit

NOTIFY_FORMATS = ("json", "discord", "slack")
"""Webhook payloads: ``json`` (the alert's fields), ``discord`` (``{"content": text}``),
``slack`` (``{"text": text}``); see :mod:`aion.notify.message`."""


@dataclass(frozen=True)
class TelegramConfig:
    """``notify.telegram``: Bot API ``sendMessage`` to ``chat_ids``.

    The bot token is never in the config file: env ``AION_TELEGRAM_BOT_TOKEN``, else the
    same name in ``kite.secrets_file`` (mode 0600). ``chat_ids`` are Telegram chat ids as
    strings (negative for groups, or ``@channelusername``). Pacing follows Telegram's
    published limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
    ``per_chat_interval_s`` between two messages to one chat (1 s), ``per_group_per_min``
    messages a minute to one group (20), ``global_per_s`` messages a second in all (30).
    """

    enabled: bool = False
    chat_ids: tuple[str, ...] = ()
    api_url: str = "https://api.telegram.org"
    per_chat_interval_s: float = 1.0
    per_group_per_min: int = 20
    global_per_s: int = 30

    def __post_init__(self) -> None:
        if self.enabled and not self.chat_ids:
            raise ConfigError("notify.telegram.chat_ids: give at least one chat id when enabled")
        for i, c in enumerate(self.chat_ids):
            if not (c.lstrip("-").isdigit() or (c.startswith("@") and len(c) > 1)):
                raise ConfigError(
                    f"notify.telegram.chat_ids[{i}]: {c!r} must be a numeric chat id "
                    '(quoted, e.g. "-1001234567890") or @channelusername'
                )
        if not self.api_url.startswith(("http://", "https://")):
            raise ConfigError(f"notify.telegram.api_url: {self.api_url!r} must start with https://")
        check_positive("notify.telegram.per_chat_interval_s", self.per_chat_interval_s)
        check_positive("notify.telegram.per_group_per_min", self.per_group_per_min)
        check_positive("notify.telegram.global_per_s", self.global_per_s)


@dataclass(frozen=True)
class WebhookConfig:
    """One ``notify.webhooks`` entry: JSON POST of each alert to ``url``.

    ``format``: ``json`` (the alert's stream fields), ``discord`` or ``slack`` (a message
    text those services render). The URL often carries a secret (Discord, Slack): it is
    kept out of ``repr`` and logs show only its host.
    """

    url: str = field(default="", repr=False)
    format: str = "json"

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError("notify.webhooks[].url: must start with http:// or https://")
        check_choice("notify.webhooks[].format", self.format, NOTIFY_FORMATS)


@dataclass(frozen=True)
class NotifyConfig:
    """``notify:``: Telegram and webhook notifications of the day's alerts (:mod:`aion.notify`).

    Off by default. ``patterns`` (empty: all) and ``min_confidence`` (in [0, 1]) filter the
    alerts sent; ``daily_cap_per_chat`` bounds the messages one chat (or webhook) receives
    per trading day (0: no cap). ``dashboard_url`` is the base of the instrument-view link
    in each message (null: no link). ``group``/``consumer`` name the Redis consumer group
    and this notifier in it. Retries: HTTP 429 waits the server's ``retry_after``; 5xx and
    connection errors back off exponentially from ``backoff_initial_s`` to ``backoff_cap_s``;
    after ``max_attempts`` a message fails for good (counted, logged, acknowledged).
    ``timeout_s`` bounds one HTTP request. ``in_scan`` runs the notifier as a thread of
    ``aion scan``.
    """

    enabled: bool = False
    in_scan: bool = False
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    webhooks: tuple[WebhookConfig, ...] = ()
    patterns: tuple[str, ...] = ()
    min_confidence: float = 0.0
    daily_cap_per_chat: int = 200
    dashboard_url: str | None = "http://127.0.0.1:8050/"
    group: str = "notify"
    consumer: str = "notify-1"
    timeout_s: float = 10.0
    backoff_initial_s: float = 1.0
    backoff_cap_s: float = 60.0
    max_attempts: int = 8

    def __post_init__(self) -> None:
        check_unit("notify.min_confidence", self.min_confidence)
        check_at_least("notify.daily_cap_per_chat", self.daily_cap_per_chat, 0)
        if self.dashboard_url is not None and not self.dashboard_url.startswith(
            ("http://", "https://")
        ):
            raise ConfigError(
                f"notify.dashboard_url: {self.dashboard_url!r} must start with http:// or "
                "https:// (or be null for no link)"
            )
        for key in ("group", "consumer"):
            value = getattr(self, key)
            if not value or any(c.isspace() for c in value):
                raise ConfigError(f"notify.{key}: must be a non-empty name without spaces")
        check_positive("notify.timeout_s", self.timeout_s)
        check_positive("notify.backoff_initial_s", self.backoff_initial_s)
        if self.backoff_cap_s < self.backoff_initial_s:
            raise ConfigError("notify.backoff_cap_s: must be >= notify.backoff_initial_s")
        check_positive("notify.max_attempts", self.max_attempts)
        if self.enabled and not (self.telegram.enabled or self.webhooks):
            raise ConfigError(
                "notify.enabled: enable notify.telegram or list notify.webhooks (or set "
                "enabled: false)"
            )

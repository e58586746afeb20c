"""Notifications of accepted alerts: Telegram Bot API messages and webhooks (``aion notify``).

Modules: :mod:`~aion.notify.notifier` (the consumer of the alert stream and its delivery
guarantees), :mod:`~aion.notify.senders` (destinations, retry rules, redaction),
:mod:`~aion.notify.pacing` (Telegram's rate limits), :mod:`~aion.notify.message` (texts,
payloads, the dashboard link). Redis access goes through :mod:`aion.store.consumer`.
"""

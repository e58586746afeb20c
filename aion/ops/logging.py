"""Structured logs: one line per event, human-readable or JSON, rotated, secrets redacted.

Every aion module logs through ``logging.getLogger(__name__)`` (children of the
``aion`` logger). :func:`setup_logging` attaches, to the ``aion`` logger only:

- a stderr handler (``WARNING`` and above unless ``stderr_level`` says otherwise,
  so a scan's live view is not flooded);
- a :class:`logging.handlers.RotatingFileHandler` on ``<data_dir>/logs/aion.log``
  (``max_bytes`` per file, ``backup_count`` rotated files kept).

Both use the same format: ``text`` (``2022-11-11T04:15:00.123Z INFO aion.app:
scan started node=main instruments=32``) or ``json`` (``{"ts": ..., "level": ...,
"logger": ..., "event": ..., <fields>}``). Structured fields are passed with
:func:`log_event` (``extra={"fields": {...}}``). Tracebacks are kept on the same
line (JSON-escaped, or with newlines shown as ``\\n`` in text), so every event is
exactly one line.

Secrets never reach a handler: :class:`RedactingFilter` replaces the values of
``KITE_API_KEY``/``KITE_ACCESS_TOKEN``/``AION_TELEGRAM_BOT_TOKEN`` and the password of
``REDIS_URL`` found in the environment, secrets registered with :func:`add_secret` (a bot
token read from a secrets file), plus anything that looks like ``access_token=...``,
``api_key=...``, ``password=...``, ``token ...:...`` (Kite's ``Authorization``
header) or the password part of a ``redis[s]://user:password@host`` URL, with
``***``; a Telegram Bot API URL ``/bot<id>:<token>/`` becomes ``/bot***/``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

REDACTED = "***"
LOGGER = "aion"

_SECRET_ENV = ("KITE_API_KEY", "KITE_ACCESS_TOKEN", "REDIS_PASSWORD", "AION_TELEGRAM_BOT_TOKEN")
_REGISTERED: set[str] = set()
_PATTERNS = (
    # query strings, form fields, key=value pairs in messages
    re.compile(
        r"(?i)\b(access_token|api_key|api_secret|password|passwd|secret|request_token)"
        r"(\s*[=:]\s*)([^\s&\"',;]+)"
    ),
    # Kite's Authorization header: "token api_key:access_token"
    re.compile(r"(?i)\b(token)(\s+)([A-Za-z0-9]{6,}:[A-Za-z0-9]{6,})"),
    # redis://user:password@host -> redis://user:***@host
    re.compile(r"(?i)\b(rediss?://[^:/@\s]*)(:)([^@\s]+)(?=@)"),
    # Telegram Bot API: https://api.telegram.org/bot<id>:<secret>/sendMessage
    re.compile(r"(/bot)()(\d+:[A-Za-z0-9_-]+)"),
)


def add_secret(value: str) -> None:
    """Redact ``value`` from every later log line (a secret read from a file, not the env)."""
    _REGISTERED.add(value)


def _env_secrets() -> list[str]:
    out = [os.environ.get(k, "") for k in _SECRET_ENV] + list(_REGISTERED)
    url = os.environ.get("REDIS_URL", "")
    m = re.match(r"rediss?://[^:/@]*:([^@]+)@", url)
    if m:
        out.append(m.group(1))
    # very short values ("1", "x") would redact unrelated text; real secrets are longer
    return sorted({s for s in out if len(s) >= 6}, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every secret replaced by ``***`` (see the module docstring for what counts)."""
    for secret in _env_secrets():
        text = text.replace(secret, REDACTED)
    for pat in _PATTERNS:
        text = pat.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return text


class RedactingFilter(logging.Filter):
    """Formats the record's message once, redacts it, and redacts structured fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _timestamp(record: logging.LogRecord) -> str:
    t = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


def _value(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return json.dumps(text) if (not text or any(c in text for c in ' "=\n')) else text


class TextFormatter(logging.Formatter):
    """``<UTC ISO time> <LEVEL> <logger>: <event> k=v ...`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, f"{record.name}:", record.getMessage()]
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            parts.extend(f"{k}={_value(v)}" for k, v in fields.items())
        line = " ".join(parts)
        if record.exc_text:
            line += " exc=" + json.dumps(record.exc_text)
        return line.replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC ISO), ``level``, ``logger``, ``event``, fields."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            "thread": record.threadName,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for k, v in fields.items():
                obj.setdefault(k, v)
        if record.exc_text:
            obj["exc"] = record.exc_text
        return json.dumps(obj, default=str, separators=(",", ":"))


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with structured ``fields`` (shown as ``k=v`` in text, keys in JSON)."""
    logger.log(level, event, extra={"fields": fields})


def log_file(data_dir: Path) -> Path:
    """The log file of a data folder: ``<data_dir>/logs/aion.log``."""
    return Path(data_dir) / "logs" / "aion.log"


def setup_logging(
    *,
    level: str = "INFO",
    json_format: bool = False,
    file: Path | None = None,
    max_bytes: int = 10_000_000,
    backup_count: int = 5,
    stderr: TextIO | None = None,
    stderr_level: str = "WARNING",
) -> logging.Logger:
    """Configure the ``aion`` logger; calling it again replaces the previous setup.

    Args:
        level: level of the file handler (and of the logger), ``DEBUG``..``ERROR``.
        json_format: JSON lines instead of text.
        file: rotating log file (its folder is created); None for no file.
        max_bytes: bytes per file before rotation; ``backup_count`` rotated files are kept.
        stderr: stream of the console handler (default ``sys.stderr``).
        stderr_level: level of the console handler.

    Returns:
        The configured ``aion`` logger.
    """
    logger = logging.getLogger(LOGGER)
    for h in list(logger.handlers):
        if getattr(h, "_aion", False):
            logger.removeHandler(h)
            h.close()
    fmt: logging.Formatter = JsonFormatter() if json_format else TextFormatter()
    handlers: list[logging.Handler] = []
    console = logging.StreamHandler(stderr or sys.stderr)
    console.setLevel(stderr_level)
    handlers.append(console)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        rot = logging.handlers.RotatingFileHandler(
            file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
        rot.setLevel(level)
        handlers.append(rot)
    for h in handlers:
        h.setFormatter(fmt)
        h.addFilter(RedactingFilter())
        h._aion = True  # type: ignore[attr-defined]
        logger.addHandler(h)
    logger.setLevel(min(logging.getLevelName(level), logging.getLevelName(stderr_level)))
    logger.propagate = False
    return logger


def configure_logging(
    config: Any, json_format: bool | None = None, level: str | None = None
) -> None:
    """Set up logging from the ``logging:`` config section (CLI flags override it).

    Args:
        config: the validated :class:`aion.config.AionConfig`.
        json_format: ``--log-json`` (None: ``logging.format``).
        level: ``--log-level`` (None: ``logging.level``).
    """
    lc = config.logging
    setup_logging(
        level=level or lc.level,
        json_format=(lc.format == "json") if json_format is None else json_format,
        file=log_file(config.data_dir()) if lc.file else None,
        max_bytes=lc.max_bytes,
        backup_count=lc.backup_count,
    )

"""The Redis key schema: every key aion writes is named here and only here.

Cluster-safe by construction (DESIGN.md, "Beyond one machine"): every key of
one instrument carries the instrument in a hash tag, ``aion:{NSE:HDFCBANK}:...``,
so all of an instrument's keys live in one slot; cross-instrument data (the
alert stream, run summaries, feed health) lives in keys named per day or per
process (``node``). Every key has a TTL or a bounded length.

The table of keys, types and bounds is in the README ("Redis"); each function
below documents one key.
"""

from __future__ import annotations

PREFIX = "aion"

NAMESPACES = (
    "bars", "tick", "option", "volume", "ind", "averages", "rvol", "profile", "alerts", "runs",
    "feed", "gaps", "notify",
)  # fmt: skip
"""Namespaces reported by ``aion health`` (key counts per namespace)."""


def _inst(symbol: str) -> str:
    if "{" in symbol or "}" in symbol:
        raise ValueError(f"symbol {symbol!r} must not contain braces")
    return f"{PREFIX}:{{{symbol}}}"


def bars_1m(symbol: str, date: int) -> str:
    """Regular-session 1-minute bars of ``symbol`` on ``date`` (YYYYMMDD)."""
    return f"{_inst(symbol)}:bars:1m:{date}"


def bars_1m_ext(symbol: str, date: int) -> str:
    """Pre-open and post-close 1-minute bars of ``symbol`` on ``date``."""
    return f"{_inst(symbol)}:bars:1m:ext:{date}"


def bars(symbol: str, timeframe: str, date: int) -> str:
    """Regular-session bars of ``symbol`` rolled up to ``timeframe`` (``5m``, ``15m``, ``30m``,
    ``60m``) on ``date``: field ``HH:MM`` (IST start) -> JSON bar (:mod:`aion.bars.rollup`)."""
    return f"{_inst(symbol)}:bars:{timeframe}:{date}"


def rvol(symbol: str, date: int) -> str:
    """Per-minute volume statistics of ``symbol`` on ``date``: field ``HH:MM`` (IST bar start)
    -> JSON (cumulative/bar RVOL, expected volumes, VIX regime, multiplier, POC)."""
    return f"{_inst(symbol)}:rvol:{date}"


def profile(symbol: str, date: int) -> str:
    """Session volume profile of ``symbol`` on ``date``: POC, value area and nodes as of the
    latest closed bar, and ``bins`` (JSON ``[[price, volume], ...]``) as of its last write
    (every ``volume.profile.bins_interval_min`` minutes and at session end)."""
    return f"{_inst(symbol)}:profile:{date}"


def tick(symbol: str) -> str:
    """Latest tick of ``symbol``."""
    return f"{_inst(symbol)}:tick"


def option(symbol: str) -> str:
    """Latest IV, Greeks and time to expiry of option ``symbol`` (hash next to its ``tick``)."""
    return f"{_inst(symbol)}:option"


def volume_state(symbol: str) -> str:
    """Cumulative-volume state of ``symbol`` (restored after a restart)."""
    return f"{_inst(symbol)}:volume"


def indicators(symbol: str, timeframe: str = "1m") -> str:
    """Latest indicator values of ``symbol`` on ``timeframe``."""
    return f"{_inst(symbol)}:ind:{timeframe}"


def averages(symbol: str) -> str:
    """Daily average volume inputs of ``symbol``."""
    return f"{_inst(symbol)}:averages"


def alerts(date: int) -> str:
    """The alert stream of trading ``date``."""
    return f"{PREFIX}:alerts:{date}"


def alerts_channel() -> str:
    """The pub/sub channel announcing each new alert (not a key: nothing is stored).

    Message: JSON object of the alert's stream fields plus ``stream_id``; only alerts the
    stream accepted are announced (a re-published duplicate is not).
    """
    return f"{PREFIX}:alerts:live"


def notify(date: int) -> str:
    """The notifier's delivery ledger of trading ``date`` (hash, alerts TTL).

    Field ``<stream_id>|<destination>`` -> outcome (``sent``, ``failed:<reason>``, ``capped``)
    once a destination's delivery of that alert is settled; field ``count|<destination>`` ->
    messages sent to it that day (the daily cap). Destinations: ``telegram:<chat_id>``,
    ``webhook:<sha256 of the URL, 12 hex>``. See :mod:`aion.store.consumer`.
    """
    return f"{PREFIX}:notify:{date}"


RUNS_MAXLEN = 1000
"""Approximate MAXLEN of each day's run-summary stream (one entry per scan)."""


def runs(date: int) -> str:
    """Run summaries of trading ``date``: a stream of at most about :data:`RUNS_MAXLEN`
    entries."""
    return f"{PREFIX}:runs:{date}"


def feed(node: str) -> str:
    """Feed health of process ``node``."""
    return f"{PREFIX}:feed:{node}"


def gaps(date: int) -> str:
    """Feed gaps of trading ``date``: hash ``<connection>:<start_ns>`` -> JSON gap record.

    One field per interruption of a feed connection (start/end wall ns, duration, reason,
    attempts, tokens affected); written with the state TTL.
    """
    return f"{PREFIX}:gaps:{date}"


_TAG_HEAD = f"{PREFIX}:{{"


def hash_tag(key: str) -> str | None:
    """The ``{...}`` hash tag of an instrument key (``aion:{NSE:SBIN}:tick`` -> ``NSE:SBIN``),
    None for a cross-instrument key."""
    if key.startswith(_TAG_HEAD):
        end = key.find("}")
        if end > 0:
            return key[len(_TAG_HEAD) : end]
    return None


def namespace_of(key: str) -> str:
    """The namespace of an aion key (``bars``, ``alerts``...) or ``other``."""
    if key.startswith(f"{PREFIX}:{{"):
        rest = key.split("}:", 1)
        return rest[1].split(":", 1)[0] if len(rest) == 2 else "other"
    parts = key.split(":")
    return parts[1] if len(parts) > 1 and parts[0] == PREFIX else "other"

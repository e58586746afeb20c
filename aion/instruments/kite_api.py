"""Kite Connect REST calls aion needs at start-up: the instrument master and last prices.

Endpoints (Kite Connect v3 docs, https://kite.trade/docs/connect/v3/):

- ``GET {api_url}/instruments``: the full instrument dump as CSV (columns in
  :data:`aion.instruments.master.KITE_COLUMNS`), regenerated once a day before the open;
- ``GET {api_url}/quote/ltp?i=EXCHANGE:TRADINGSYMBOL...``: JSON
  ``{"status": "success", "data": {"NSE:NIFTY 50": {"instrument_token": ..., "last_price": ...}}}``.

Both take the headers ``X-Kite-Version: 3`` and ``Authorization: token api_key:access_token``.
An HTTP 403 means the access token is invalid or expired; it is reported in one line without
the token. The downloaded master is cached on disk per IST day
(``kite_instruments_YYYY-MM-DD.csv.gz``, written atomically), so restarts during the day do not
download it again.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from aion.instruments.master import InstrumentMaster
from aion.kite.credentials import Credentials

__all__ = ["KiteApiError", "cached_instruments", "last_prices"]

_TIMEOUT_S = 30.0


class KiteApiError(RuntimeError):
    """A Kite REST call failed; ``str()`` is one line without any secret."""


def _get(url: str, creds: Credentials) -> bytes:
    req = urllib.request.Request(
        url,
        headers={
            "X-Kite-Version": "3",
            "Authorization": f"token {creds.api_key}:{creds.access_token}",
        },
    )
    where = url.split("?", 1)[0]
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 403:
            raise KiteApiError(
                f"Kite rejected the access token at {where} (HTTP 403): it is invalid or expired; "
                "generate a new one (Kite Connect login flow) and set KITE_ACCESS_TOKEN"
            ) from None
        raise KiteApiError(f"Kite {where} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KiteApiError(f"cannot reach Kite at {where}: {reason}") from None


def cached_instruments(
    api_url: str, creds: Credentials, cache_dir: Path, today: dt.date
) -> InstrumentMaster:
    """Today's instrument master: from ``cache_dir`` if downloaded already today, else Kite.

    Args:
        api_url: REST root, ``https://api.kite.trade``.
        creds: Kite credentials.
        cache_dir: folder of the per-day cache (created if missing).
        today: the IST trading date naming the cache file.

    Raises:
        KiteApiError: the download failed (403: token invalid or expired).
        ValueError: the downloaded or cached file is not a Kite instruments CSV.
    """
    path = cache_dir / f"kite_instruments_{today.isoformat()}.csv.gz"
    if not path.exists():
        data = _get(f"{api_url.rstrip('/')}/instruments", creds)
        if data[:2] != b"\x1f\x8b":
            data = gzip.compress(data, mtime=0)
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".instruments-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return InstrumentMaster.from_csv(path)


def last_prices(api_url: str, creds: Credentials, symbols: Sequence[str]) -> dict[str, float]:
    """Last traded price (rupees) of each ``EXCHANGE:TRADINGSYMBOL`` Kite knows.

    Raises:
        KiteApiError: the call failed or the answer is not Kite's JSON.
    """
    if not symbols:
        return {}
    query = urllib.parse.urlencode([("i", s) for s in symbols])
    raw = _get(f"{api_url.rstrip('/')}/quote/ltp?{query}", creds)
    try:
        data = json.loads(raw)["data"]
        return {str(k): float(v["last_price"]) for k, v in data.items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise KiteApiError(f"Kite quote/ltp answered something unexpected ({exc})") from None

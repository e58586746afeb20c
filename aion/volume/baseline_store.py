"""Time-of-day baselines prepared before the open and loaded by the scan.

``aion premarket refresh-averages`` learns the curves of :mod:`aion.volume.baseline`
(polars + SciPy's PCHIP, about 0.5 s and 35 MB for the bundled 48 stocks) and writes
them with :func:`write_baselines` to ``<data_dir>/premarket/baselines.npz``; ``aion
scan`` reads them back with :func:`read_baselines` (numpy only) when the file was
learnt from the same inputs, else learns them itself (:func:`prepared_or_learnt`).

The file is an uncompressed NumPy ``.npz`` (a zip whose members carry CRC-32s, read
with ``allow_pickle=False``):

=================  ==================  ===============================================
member             dtype, shape        content
=================  ==================  ===============================================
``header``         str, ()             JSON: :class:`BaselineInputs` fields, ``format``,
                                       ``as_of`` (null: latest sessions), ``learnt_at``
                                       (UTC ISO-8601), ``fallback_source``,
                                       ``fallback_after_as_of``
``symbols``        str, (n,)           ``NSE:<TRADINGSYMBOL>``
``cum_share``      float64, (n, 376)   ``C(m)`` per instrument
``sessions``       int64, (n,)         complete sessions learnt from
``source``         str, (n,)           ``intraday``
``after_as_of``    bool, (n,)          sessions used lie after the prepared date
``fallback``       float64, (376,)     the market (or uniform) curve
=================  ==================  ===============================================

The inputs' identity is the two folders (absolute paths), ``sessions``,
``min_sessions`` and a SHA-256 over the name, size and modification time (ns) of
every candle file the learning reads; a file touched since makes the prepared
curves stale (re-learnt, never wrongly reused).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from aion.config import AionConfig
from aion.volume.averages import bundled_daily_dir, daily_files
from aion.volume.baseline import (
    SESSION_MINUTES,
    BaselineSet,
    VolumeBaseline,
    bundled_intraday_dir,
    intraday_files,
    learn_baselines,
)

log = logging.getLogger(__name__)

FORMAT = "aion.volume.baselines/1"
"""Format tag of the header; a file of another format is stale (learning changed)."""

PREPARE_HINT = "run aion premarket refresh-averages"


class PreparedBaselinesError(ValueError):
    """The prepared file cannot be used; ``str()`` is one line saying why."""


@dataclass(frozen=True)
class BaselineInputs:
    """What the curves are learnt from (see the module docstring).

    Attributes:
        intraday_dir, daily_dir: absolute folder paths.
        intraday_files, daily_files: candle files found in each.
        fingerprint: SHA-256 hex of every file's name, size (bytes) and mtime (ns).
        sessions, min_sessions: ``volume.baseline`` settings.
    """

    intraday_dir: str
    daily_dir: str
    intraday_files: int
    daily_files: int
    fingerprint: str
    sessions: int
    min_sessions: int


def baseline_folders(config: AionConfig) -> tuple[Path, Path]:
    """``(intraday, daily)`` candle folders of the config (the bundled ones when unset)."""
    vc = config.volume
    intraday = vc.baseline.intraday_history_dir
    return (
        Path(intraday) if intraday else bundled_intraday_dir(),
        Path(vc.daily_history_dir) if vc.daily_history_dir else bundled_daily_dir(),
    )


def prepared_baselines_path(data_dir: Path) -> Path:
    """``<data_dir>/premarket/baselines.npz``, next to the prepared averages."""
    return data_dir / "premarket" / "baselines.npz"


def baseline_inputs(
    intraday_dir: Path, daily_dir: Path, sessions: int, min_sessions: int
) -> BaselineInputs:
    """The identity of the inputs (one ``stat`` per candle file, no file is read).

    Raises:
        FileNotFoundError: a folder does not exist.
    """
    intra = intraday_files(intraday_dir)
    daily = sorted(daily_files(daily_dir).values())
    h = hashlib.sha256()
    for tag, paths in (("intraday", intra), ("daily", daily)):
        h.update(f"{tag}\n".encode())
        for p in paths:
            st = p.stat()
            h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return BaselineInputs(
        str(intraday_dir.resolve()),
        str(daily_dir.resolve()),
        len(intra),
        len(daily),
        h.hexdigest(),
        sessions,
        min_sessions,
    )


def write_baselines(
    path: Path, baselines: BaselineSet, inputs: BaselineInputs, learnt_at: dt.datetime
) -> None:
    """Write ``baselines`` (learnt with ``as_of=None`` from ``inputs``) to ``path``.

    Written to a temporary file in the same folder and renamed over ``path``, so a scan
    never reads a half-written file.

    Raises:
        OSError: the folder cannot be created or written.
    """
    syms = sorted(baselines.curves)
    curves = [baselines.curves[s] for s in syms]
    fb = baselines.fallback
    header = {
        "format": FORMAT,
        **asdict(inputs),
        "as_of": None,
        "learnt_at": learnt_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "fallback_source": fb.source,
        "fallback_after_as_of": fb.after_as_of,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            np.savez(
                fh,
                header=np.array(json.dumps(header)),
                symbols=np.array(syms, dtype=np.str_),
                cum_share=np.array([c.cum_share for c in curves], np.float64).reshape(
                    len(curves), SESSION_MINUTES + 1
                ),
                sessions=np.array([c.sessions for c in curves], np.int64),
                source=np.array([c.source for c in curves], dtype=np.str_),
                after_as_of=np.array([c.after_as_of for c in curves], np.bool_),
                fallback=np.asarray(fb.cum_share, np.float64),
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _mismatch(header: dict, inputs: BaselineInputs) -> str | None:
    """Why a file's header does not match ``inputs`` (None when it matches)."""
    if header.get("format") != FORMAT:
        return f"format {header.get('format')!r}, this aion reads {FORMAT!r}"
    for key in ("intraday_dir", "daily_dir", "sessions", "min_sessions"):
        if header.get(key) != getattr(inputs, key):
            return f"learnt with {key} {header.get(key)!r}, the config has {getattr(inputs, key)!r}"
    if header.get("fingerprint") != inputs.fingerprint:
        return (
            f"candle files changed since {header.get('learnt_at')} "
            f"({inputs.intraday_files} intraday, {inputs.daily_files} daily now)"
        )
    return None


def read_baselines(path: Path, inputs: BaselineInputs) -> BaselineSet:
    """The curves of a prepared file learnt from ``inputs`` (numpy only, no SciPy).

    Returns:
        A :class:`BaselineSet` equal, array for array, to the one
        :func:`~aion.volume.baseline.learn_baselines` gave when the file was written;
        the arrays are read-only.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        PreparedBaselinesError: the file is damaged, truncated or of another format, or
            was learnt from other inputs (one line naming the difference).
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"][()]))
            if not isinstance(header, dict):
                raise ValueError("header is not a JSON object")
            why = _mismatch(header, inputs)
            if why is not None:
                raise PreparedBaselinesError(f"{path} is stale: {why}")
            syms = z["symbols"]
            cum = z["cum_share"]
            sessions = z["sessions"]
            source = z["source"]
            after = z["after_as_of"]
            fallback = z["fallback"]
    except FileNotFoundError:
        raise
    except PreparedBaselinesError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise PreparedBaselinesError(
            f"{path} is unreadable ({type(exc).__name__}: {exc})".splitlines()[0]
        ) from exc
    n = syms.shape[0]
    width = SESSION_MINUTES + 1
    ok = (
        syms.ndim == 1
        and cum.dtype == np.float64
        and cum.shape == (n, width)
        and sessions.shape == source.shape == after.shape == (n,)
        and fallback.dtype == np.float64
        and fallback.shape == (width,)
        and bool(np.isfinite(cum).all() and np.isfinite(fallback).all())
        and bool((np.diff(cum, axis=1) >= 0).all() and (np.diff(fallback) >= 0).all())
    )
    if not ok:
        raise PreparedBaselinesError(f"{path} is damaged: arrays of the wrong shape or values")
    cum.flags.writeable = False
    fallback.flags.writeable = False
    curves = {
        str(s): VolumeBaseline(str(s), cum[i], int(sessions[i]), str(source[i]), bool(after[i]))
        for i, s in enumerate(syms)
    }
    fb = VolumeBaseline(
        "",
        fallback,
        0,
        str(header.get("fallback_source")),
        bool(header.get("fallback_after_as_of")),
    )
    return BaselineSet(curves, fb)


def prepared_or_learnt(
    intraday_dir: Path,
    daily_dir: Path,
    sessions: int,
    min_sessions: int,
    prepared: Path | None,
) -> BaselineSet:
    """The prepared curves when ``prepared`` matches the inputs, else learnt now.

    Learning (``as_of=None``: the latest sessions of the folders) imports SciPy and reads
    every candle file. One log line says so and how to prepare it: INFO when the file was
    never prepared (the scan is exact without it, only slower to start), WARNING when it is
    stale or damaged.

    Raises:
        FileNotFoundError: a candle folder does not exist.
        ValueError: a candle CSV is malformed (while learning).
    """
    if prepared is not None:
        inputs = baseline_inputs(intraday_dir, daily_dir, sessions, min_sessions)
        try:
            return read_baselines(prepared, inputs)
        except FileNotFoundError:
            # never prepared: the scan is exact without the file, only slower to start
            log.info("baselines not prepared (%s not found): %s; learning them now", prepared,
                     PREPARE_HINT)  # fmt: skip
        except PreparedBaselinesError as exc:
            log.warning("baselines not prepared (%s): %s; learning them now", exc, PREPARE_HINT)
    return learn_baselines(intraday_dir, daily_dir, None, sessions, min_sessions)

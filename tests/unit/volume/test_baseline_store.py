"""Prepared time-of-day baselines: the file holds exactly the learnt curves, is used only for
the inputs it was learnt from, and a damaged or stale file never stops a scan."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from aion.config import load_config
from aion.volume.analytics import baselines_for, cached_baselines
from aion.volume.averages import bundled_daily_dir
from aion.volume.baseline import BaselineSet, bundled_intraday_dir, learn_baselines
from aion.volume.baseline_store import (
    PreparedBaselinesError,
    baseline_inputs,
    prepared_baselines_path,
    prepared_or_learnt,
    read_baselines,
    write_baselines,
)

LEARNT_AT = dt.datetime(2022, 11, 11, 3, 0, tzinfo=dt.UTC)
FEW = ("HDFCBANK", "SBIN", "TCS")


def assert_bit_identical(a: BaselineSet, b: BaselineSet) -> None:
    assert sorted(a.curves) == sorted(b.curves)
    for sym, ca in a.curves.items():
        cb = b.curves[sym]
        assert ca.cum_share.dtype == cb.cum_share.dtype == np.float64
        assert ca.cum_share.tobytes() == cb.cum_share.tobytes(), sym
        assert (ca.symbol, ca.sessions, ca.source, ca.after_as_of) == (
            cb.symbol, cb.sessions, cb.source, cb.after_as_of,
        )  # fmt: skip
    assert a.fallback.cum_share.tobytes() == b.fallback.cum_share.tobytes()
    assert (a.fallback.source, a.fallback.after_as_of) == (
        b.fallback.source,
        b.fallback.after_as_of,
    )


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of three stocks' bundled 60-minute and daily candles."""
    intra, daily = tmp_path / "hourly", tmp_path / "daily"
    intra.mkdir()
    daily.mkdir()
    for sym in FEW:
        shutil.copy2(next(bundled_intraday_dir().glob(f"{sym}_60minute_*")), intra)
        shutil.copy2(next(bundled_daily_dir().glob(f"{sym}_day_*")), daily)
    return intra, daily


def prepare(intra: Path, daily: Path, out: Path, sessions: int = 60) -> BaselineSet:
    learnt = learn_baselines(intra, daily, None, sessions, 20)
    write_baselines(out, learnt, baseline_inputs(intra, daily, sessions, 20), LEARNT_AT)
    return learnt


def test_file_of_the_bundled_history_is_bit_identical_to_fresh_learning(tmp_path: Path) -> None:
    intra, daily = bundled_intraday_dir(), bundled_daily_dir()
    out = tmp_path / "baselines.npz"
    prepare(intra, daily, out)
    fresh = prepared_or_learnt(intra, daily, 60, 20, None)  # what a scan without the file does
    loaded = read_baselines(out, baseline_inputs(intra, daily, 60, 20))
    assert len(loaded.curves) == 48 and loaded.fallback.source == "market"
    assert_bit_identical(loaded, fresh)
    hdfc = loaded.curves["NSE:HDFCBANK"]
    assert hdfc.sessions == 60 and hdfc.source == "intraday" and not hdfc.after_as_of
    # the market curve is the mean of the 48 stored curves
    mean = np.mean([c.cum_share for c in loaded.curves.values()], axis=0)
    assert np.array_equal(loaded.fallback.cum_share, mean)
    with zipfile.ZipFile(out) as z, z.open("header.npy") as fh:  # the header names the inputs
        header = json.loads(str(np.lib.format.read_array(fh)[()]))
    assert header["sessions"] == 60 and header["min_sessions"] == 20
    assert header["intraday_dir"] == str(intra.resolve()) and header["intraday_files"] == 48
    assert header["daily_files"] == 48 and header["learnt_at"] == "2022-11-11T03:00:00+00:00"
    assert header["as_of"] is None and len(header["fingerprint"]) == 64


def test_a_file_of_other_inputs_is_stale(folders: tuple[Path, Path], tmp_path: Path) -> None:
    intra, daily = folders
    out = tmp_path / "b.npz"
    prepare(intra, daily, out)
    read_baselines(out, baseline_inputs(intra, daily, 60, 20))  # same inputs: used
    with pytest.raises(PreparedBaselinesError, match="stale: learnt with sessions 60, the config"):
        read_baselines(out, baseline_inputs(intra, daily, 30, 20))
    with pytest.raises(PreparedBaselinesError, match="stale: learnt with min_sessions 20"):
        read_baselines(out, baseline_inputs(intra, daily, 60, 10))
    with pytest.raises(PreparedBaselinesError, match="stale: learnt with intraday_dir"):
        read_baselines(out, baseline_inputs(bundled_intraday_dir(), daily, 60, 20))
    # a candle file rewritten since (new mtime), or one more file: re-learnt
    f = next(intra.glob("SBIN_*"))
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(PreparedBaselinesError, match="candle files changed since 2022-11-11T03"):
        read_baselines(out, baseline_inputs(intra, daily, 60, 20))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    read_baselines(out, baseline_inputs(intra, daily, 60, 20))
    shutil.copy2(next(bundled_daily_dir().glob("INFY_day_*")), daily)
    with pytest.raises(PreparedBaselinesError, match=r"\(3 intraday, 4 daily now\)"):
        read_baselines(out, baseline_inputs(intra, daily, 60, 20))


def _rewritten(src: Path, dst: Path, **replace: np.ndarray) -> None:
    """``src``'s members with some replaced (a well-formed zip with bad content)."""
    with np.load(src, allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    members.update(replace)
    np.savez(dst, **members)  # type: ignore[arg-type]


def test_damaged_files_give_one_clear_line(folders: tuple[Path, Path], tmp_path: Path) -> None:
    intra, daily = folders
    good = tmp_path / "good.npz"
    prepare(intra, daily, good)
    inputs = baseline_inputs(intra, daily, 60, 20)
    data = good.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "garbage": b"not a zip file at all" * 10,
    }
    # one flipped byte inside the curves: the zip's CRC-32 catches it
    body = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo("cum_share.npy")
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    body[at] ^= 0xFF
    cases["bit flip"] = bytes(body)
    for name, content in cases.items():
        bad = tmp_path / f"{name.replace(' ', '_')}.npz"
        bad.write_bytes(content)
        with pytest.raises(PreparedBaselinesError, match="is unreadable") as exc:
            read_baselines(bad, inputs)
        assert "\n" not in str(exc.value), name
    wrong = tmp_path / "wrong.npz"
    _rewritten(good, wrong, cum_share=np.zeros((3, 100)))
    with pytest.raises(PreparedBaselinesError, match="is damaged"):
        read_baselines(wrong, inputs)
    _rewritten(good, wrong, header=np.array(json.dumps({"format": "other/9"})))
    with pytest.raises(PreparedBaselinesError, match="stale: format 'other/9'"):
        read_baselines(wrong, inputs)
    with pytest.raises(FileNotFoundError):
        read_baselines(tmp_path / "missing.npz", inputs)


def test_damaged_or_missing_file_falls_back_to_learning_with_one_warning(
    folders: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    intra, daily = folders
    out = tmp_path / "b.npz"
    learnt = prepare(intra, daily, out)
    out.write_bytes(out.read_bytes()[:-100])  # truncated
    with caplog.at_level(logging.WARNING, logger="aion.volume.baseline_store"):
        got = prepared_or_learnt(intra, daily, 60, 20, out)
    assert_bit_identical(got, learnt)
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert "baselines not prepared" in msg and "unreadable" in msg
    assert "run aion premarket refresh-averages" in msg
    caplog.clear()
    prepare(intra, daily, out)
    with caplog.at_level(logging.WARNING, logger="aion.volume.baseline_store"):
        got = prepared_or_learnt(intra, daily, 60, 20, out)
    assert not caplog.records and got.curves["NSE:SBIN"].cum_share.flags.writeable is False
    assert_bit_identical(got, learnt)


def test_scan_config_reads_the_prepared_file_and_warns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AION_DATA_DIR", str(tmp_path / "data"))
    cfg = load_config()
    cached_baselines.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="aion.volume.baseline_store"):
            first = baselines_for(cfg)
            assert baselines_for(cfg) is first  # memoised: no second learning, no second line
        path = prepared_baselines_path(cfg.data_dir())
        assert [r.getMessage() for r in caplog.records] == [
            f"baselines not prepared ({path} not found): run aion premarket refresh-averages;"
            " learning them now"
        ]
        # prepared with the config's folders: the next process (cache cleared) loads it
        bc = cfg.volume.baseline
        inputs = baseline_inputs(
            bundled_intraday_dir(), bundled_daily_dir(), bc.sessions, bc.min_sessions
        )
        write_baselines(path, first, inputs, LEARNT_AT)
        cached_baselines.cache_clear()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="aion.volume.baseline_store"):
            loaded = baselines_for(cfg)
        assert not caplog.records
        assert loaded.curves["NSE:HDFCBANK"].cum_share.flags.writeable is False  # from the file
        assert_bit_identical(loaded, first)
    finally:
        cached_baselines.cache_clear()

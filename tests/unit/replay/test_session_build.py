"""Session building from the real 2022-11-11 vendor bars, and the session file format.

The built session is checked by decoding its frames with the protocol module and comparing with
the vendor files parsed here (independently of the builder's code).
"""

from __future__ import annotations

import datetime as dt
import gzip
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from aion.kite.decode import decode_frame
from aion.kite.wire import MODE_FULL
from aion.market.time import from_ist
from aion.replay.builder import build_session
from aion.replay.resolve import monthly_expiry
from aion.replay.session_file import (
    SessionFileError,
    SessionWriter,
    iter_frames,
    read_header,
    read_session,
)

DATA = Path(__file__).resolve().parents[3] / "aion" / "data"
BARS_DIR = DATA / "intraday_1min_2022-11-11"
DATE = dt.date(2022, 11, 11)
INDEX_SYMBOLS = {
    "NIFTY": "NSE:NIFTY 50",
    "BANKNIFTY": "NSE:NIFTY BANK",
    "INDIAVIX": "NSE:INDIA VIX",
}
FUTURES = {"NIFTY_F1": "NFO:NIFTY22NOVFUT", "BANKNIFTY_F1": "NFO:BANKNIFTY22NOVFUT"}


def _vendor_rows(path: Path) -> list[tuple]:
    """(stamp HH:MM, o, h, l, c, volume, oi) for DATE, parsed independently of the builder."""
    rows = []
    for line in gzip.decompress(path.read_bytes()).decode().splitlines():
        _sym, ymd, hhmm, o, h, lo, c, v, oi = line.split(",")
        if ymd == DATE.strftime("%Y%m%d"):
            rows.append((hhmm, float(o), float(h), float(lo), float(c), int(v), int(oi)))
    return rows


def _symbol_for(vendor: str) -> str:
    return INDEX_SYMBOLS.get(vendor) or FUTURES.get(vendor) or f"NSE:{vendor}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("session") / "2022-11-11.aion.gz"
    result = build_session([BARS_DIR], "2022-11-11", out)
    session = read_session(out)
    ticks = []
    for ts, frame in zip(session.ts_ns, session.frames, strict=True):
        t = decode_frame(frame)
        assert t.size > 0
        assert (t["exchange_timestamp"] * 1_000_000_000 == ts).all()
        assert (np.diff(t["instrument_token"].astype(np.int64)) > 0).all(), "sorted by token"
        ticks.append(t)
    all_ticks = np.concatenate(ticks)
    by_token: dict[int, np.ndarray] = {}
    for tok in np.unique(all_ticks["instrument_token"]):
        by_token[int(tok)] = all_ticks[all_ticks["instrument_token"] == tok]
    return result, session, by_token, out


def test_every_regular_minute_matches_vendor_bar_exactly(built) -> None:
    _, session, by_token, _ = built
    master = session.instruments()
    files = sorted(BARS_DIR.glob("*.txt.gz"))
    assert len(files) == 32
    checked = 0
    for f in files:
        vendor = f.name.removesuffix(".txt.gz")
        inst = master.by_symbol(_symbol_for(vendor))
        t = by_token[inst.instrument_token]
        ts, px, vol = t["exchange_timestamp"], t["last_price"], t["volume_traded"]
        regular = [r for r in _vendor_rows(f) if "09:16" <= r[0] <= "15:30"]
        assert len(regular) == 375
        for hhmm, o, h, lo, c, v, _oi in regular:
            end = from_ist(DATE, int(hhmm[:2]), int(hhmm[3:]))
            inside = (ts >= end - 60) & (ts < end)  # end-labelled bar
            assert inside.sum() >= 1, (vendor, hhmm)
            p = px[inside]
            assert p[0] == pytest.approx(o, abs=1e-9), (vendor, hhmm)
            assert p.max() == pytest.approx(h, abs=1e-9), (vendor, hhmm)
            assert p.min() == pytest.approx(lo, abs=1e-9), (vendor, hhmm)
            assert p[-1] == pytest.approx(c, abs=1e-9), (vendor, hhmm)
            before = vol[ts < end - 60]
            base = int(before[-1]) if before.size else 0
            assert int(vol[inside][-1]) - base == v, (vendor, hhmm)
            checked += 1
    assert checked == 32 * 375


def test_day_volume_and_cumulative_never_decreases(built) -> None:
    _, session, by_token, _ = built
    master = session.instruments()
    for f in sorted(BARS_DIR.glob("*.txt.gz")):
        vendor = f.name.removesuffix(".txt.gz")
        t = by_token[master.by_symbol(_symbol_for(vendor)).instrument_token]
        cum = t["volume_traded"]
        assert (np.diff(cum) >= 0).all(), vendor
        assert int(cum[-1]) == sum(r[5] for r in _vendor_rows(f)), vendor
        assert (np.diff(t["exchange_timestamp"]) > 0).all(), vendor


def test_preopen_snapshot_has_every_token_at_zero_volume(built) -> None:
    _, session, _, _ = built
    assert session.ts_ns[0] == from_ist(DATE, 9, 0) * 1_000_000_000
    assert session.header["start_ns"] == session.ts_ns[0]
    snap = decode_frame(session.frames[0])
    assert len(snap) == 32
    assert set(snap["instrument_token"].tolist()) == {
        i.instrument_token for i in session.instruments()
    }
    assert (snap["volume_traded"] == 0).all()
    assert (session.ts_ns[1:] > session.ts_ns[:-1]).all()
    rel = snap[snap["instrument_token"] == 738561][0]
    assert rel["last_price"] == 2600.00  # RELIANCE 09:08 pre-open price
    pre = decode_frame(session.frames[1])  # 09:08 pre-open auction trades
    assert session.ts_ns[1] == from_ist(DATE, 9, 8) * 1_000_000_000
    rel = pre[pre["instrument_token"] == 738561][0]
    assert rel["volume_traded"] == 54_311 and rel["last_price"] == 2600.00


def test_tokens_packets_and_instruments(built) -> None:
    result, session, by_token, _ = built
    m = session.instruments()
    assert len(m) == 32 == len(result.instruments)
    assert m.by_symbol("NSE:HDFCBANK").instrument_token == 341249
    assert m.by_symbol("NSE:RELIANCE").instrument_token == 738561
    assert m.by_symbol("NSE:NIFTY 50").instrument_token == 256265
    assert m.by_symbol("NSE:NIFTY BANK").instrument_token == 260105
    assert m.by_symbol("NSE:INDIA VIX").instrument_token == 264969
    fut = m.by_symbol("NFO:NIFTY22NOVFUT")
    assert fut.expiry == dt.date(2022, 11, 24) and fut.lot_size == 50
    assert fut.instrument_type == "FUT" and fut.segment == "NFO-FUT"
    assert fut.instrument_token & 0xFF == 2
    bn = m.by_symbol("NFO:BANKNIFTY22NOVFUT")
    assert bn.expiry == dt.date(2022, 11, 24) and bn.lot_size == 25
    assert set(session.modes.values()) == {"full"}
    for tok, t in by_token.items():
        assert (t["mode"] == MODE_FULL).all()
        want = 32 if m.by_token(tok).is_index else 184
        assert (t["packet_length"] == want).all(), m.by_token(tok).symbol
    f = by_token[fut.instrument_token]
    assert f["oi"][-1] == 12_349_350  # 17:58 end-of-day OI
    assert f["oi_day_high"].max() >= f["oi_day_low"][f["oi_day_low"] > 0].min()


def test_derived_fields(built) -> None:
    _, _, by_token, _ = built
    t = by_token[341249]  # HDFCBANK
    traded = t["volume_traded"] > 0
    assert (t["average_traded_price"][traded] >= t["low"][traded] - 0.01).all()
    assert (t["average_traded_price"][traded] <= t["high"][traded] + 0.01).all()
    assert t["open"][-1] == 1545.00  # day open = pre-open auction price
    assert (t["close"] == 0.0).all()  # previous day not in the bars
    assert (t["depth_buy_quantity"] == 0).all() and (t["total_buy_quantity"] == 0).all()
    assert (t["last_trade_time"] <= t["exchange_timestamp"]).all()


def test_build_is_deterministic(built, tmp_path: Path) -> None:
    _, _, _, out = built
    again = tmp_path / "again.aion.gz"
    build_session([BARS_DIR], "2022-11-11", again)
    assert again.read_bytes() == out.read_bytes()


def test_nifty_1s_and_previous_close(tmp_path: Path) -> None:
    out = tmp_path / "nifty.aion"
    res = build_session(
        [DATA / "index_1min" / "NIFTY_2022-11_excl_17_18.txt.gz"],
        "2022-11-11",
        out,
        nifty_1s=DATA / "nifty50_index_1s" / "NIFTY50_2022-11-11.csv.gz",
    )
    assert res.prev_close == {"NIFTY": 18028.20}
    t = np.concatenate([decode_frame(f) for f in read_session(out).frames])
    assert (t["close"] == 18028.20).all()
    secs = {}
    for line in (
        gzip.decompress((DATA / "nifty50_index_1s" / "NIFTY50_2022-11-11.csv.gz").read_bytes())
        .decode()
        .splitlines()
    ):
        stamp, value = line.split(",")
        hh, mm, ss = (int(x) for x in stamp[11:].split(":"))
        if (9, 15, 0) <= (hh, mm, ss) < (15, 30, 0):
            secs[from_ist(DATE, hh, mm, ss)] = float(value)
    regular = (t["exchange_timestamp"] >= from_ist(DATE, 9, 15)) & (
        t["exchange_timestamp"] < from_ist(DATE, 15, 30)
    )
    got = dict(
        zip(
            t["exchange_timestamp"][regular].tolist(),
            t["last_price"][regular].tolist(),
            strict=True,
        )
    )
    assert got == secs
    assert t["last_price"][-1] == 18349.70  # 15:32 closing value from the bars


def test_monthly_expiry_rule() -> None:
    assert monthly_expiry(2022, 11) == dt.date(2022, 11, 24)
    assert monthly_expiry(2022, 12) == dt.date(2022, 12, 29)
    assert monthly_expiry(2023, 3) == dt.date(2023, 3, 29)  # 30 Mar 2023 Ram Navami holiday


def test_cli_build(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from aion.cli.session_cmd import session_app

    app = typer.Typer()
    app.add_typer(session_app, name="session")
    files = [str(BARS_DIR / "RELIANCE.txt.gz"), str(BARS_DIR / "NIFTY_F1.txt.gz")]
    out = tmp_path / "cli.aion"
    r = CliRunner().invoke(
        app, ["session", "build", "--bars", *files, "--date", "2022-11-11", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert len(r.output.splitlines()) == 1 and "2 instruments" in r.output  # one line
    assert "frames" in r.output and "NFO:NIFTY22NOVFUT" not in r.output
    assert len(read_session(out).instruments()) == 2
    argv = ["session", "build", "--bars", *files, "--date", "2022-11-11", "--out", str(out)]
    verbose = CliRunner().invoke(app, [*argv, "--verbose"])
    assert verbose.exit_code == 0, verbose.output
    assert "NFO:NIFTY22NOVFUT" in verbose.output  # the instrument table
    assert "deterministic tokens" in verbose.output  # the synthesised token, explained
    bad = CliRunner().invoke(
        app, ["session", "build", "--bars", files[0], "--date", "2022-11-12", "--out", str(out)]
    )
    assert bad.exit_code == 1 and "no vendor bars dated 2022-11-12" in bad.output


# ---------------------------------------------------------------------------- session file format
HEADER = {
    "date": "2022-11-11",
    "description": "unit test",
    "instruments": [],
    "modes": {"738561": "full"},
    "start_ns": 1_668_137_400_000_000_000,
    "tick_timing": "test",
}
RECORDS = [
    (1_668_137_400_000_000_000 + i * 1_000_000_000, bytes([0, 1, i % 256]) * (i + 1))
    for i in range(50)
]


@pytest.mark.parametrize("name", ["s.aion", "s.aion.gz"])
def test_session_file_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with SessionWriter(path, HEADER) as w:
        for ts, fr in RECORDS:
            w.write(ts, fr)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")
    s = read_session(path)
    assert s.complete and s.date == dt.date(2022, 11, 11)
    assert s.header["description"] == "unit test" and s.header["version"] == 1
    assert s.modes == {738561: "full"} and s.start_ns == HEADER["start_ns"]
    assert s.ts_ns.dtype == np.int64 and s.ts_ns.tolist() == [r[0] for r in RECORDS]
    assert s.frames == [r[1] for r in RECORDS]
    assert list(iter_frames(path)) == RECORDS
    assert read_header(path)["tick_timing"] == "test"


@pytest.mark.parametrize("name", ["t.aion", "t.aion.gz"])
def test_truncated_file_is_an_error_naming_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with SessionWriter(path, HEADER) as w:
        for ts, fr in RECORDS:
            w.write(ts, fr)
    raw = path.read_bytes()
    cut = tmp_path / f"cut-{name}"
    if name.endswith(".gz"):
        plain = gzip.decompress(raw)
        cut.write_bytes(gzip.compress(plain[:-30]))  # valid gzip, stream cut mid-record
        with pytest.raises(SessionFileError, match=r"cut-t\.aion\.gz.*truncated"):
            read_session(cut)
        cut.write_bytes(raw[: len(raw) // 2])  # gzip stream itself cut short
        with pytest.raises(SessionFileError, match=r"cut-t\.aion\.gz"):
            read_session(cut)
    else:
        cut.write_bytes(raw[:-30])
        with pytest.raises(SessionFileError, match=r"cut-t\.aion.*truncated"):
            read_session(cut)
        cut.write_bytes(raw[:10])
        with pytest.raises(SessionFileError, match="truncated"):
            read_session(cut)


def test_missing_end_marker_reads_as_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "live.aion"
    with SessionWriter(path, HEADER) as w:
        for ts, fr in RECORDS:
            w.write(ts, fr)
    raw = path.read_bytes()
    path.write_bytes(raw[:-12])  # drop the 12-byte END marker: a killed recording
    s = read_session(path)
    assert not s.complete and len(s) == len(RECORDS)


def test_bad_magic_and_bad_writes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.aion"
    bad.write_bytes(b"NOTASESSIONFILE" + b"\0" * 32)
    with pytest.raises(SessionFileError, match=r"bad\.aion.*not an aion session file"):
        read_session(bad)
    with pytest.raises(SessionFileError, match="date"):
        SessionWriter(tmp_path / "x.aion", {"description": "no date"})
    with SessionWriter(tmp_path / "y.aion", HEADER) as w:
        w.write(10, b"\x00")
        with pytest.raises(SessionFileError, match="time order"):
            w.write(9, b"\x00")
        with pytest.raises(SessionFileError, match="frame length"):
            w.write(11, b"")


def test_session_grouping(built) -> None:
    """Frames hold every tick of one timestamp: no two frames share a time."""
    _, session, _, _ = built
    assert len(np.unique(session.ts_ns)) == len(session.frames)
    counts = defaultdict(int)
    for fr in session.frames:
        counts[len(decode_frame(fr))] += 1
    assert counts[32] >= 1500  # every regular tick second carries all 32 instruments


def test_kite_density_path_rebuilds_every_vendor_bar(tmp_path: Path) -> None:
    """120 ticks per regular minute (Kite's 2 ticks/s): still the vendor bar exactly, every
    tick inside the bar's [low, high], at most 2 ticks per instrument per second."""
    out = tmp_path / "dense.session"
    build_session([BARS_DIR], "2022-11-11", out, ticks_per_minute=120)
    ticks = np.concatenate([decode_frame(f) for f in read_session(out).frames])
    master = read_session(out).instruments()
    for f in sorted(BARS_DIR.glob("*.txt.gz"))[:8]:
        vendor = f.name.removesuffix(".txt.gz")
        t = ticks[
            ticks["instrument_token"] == master.by_symbol(_symbol_for(vendor)).instrument_token
        ]
        ts, px, vol = t["exchange_timestamp"], t["last_price"], t["volume_traded"]
        _, per_second = np.unique(ts, return_counts=True)
        assert per_second.max() <= 2, vendor
        for hhmm, o, h, lo, c, v, _oi in (r for r in _vendor_rows(f) if "09:16" <= r[0] <= "15:30"):
            end = from_ist(DATE, int(hhmm[:2]), int(hhmm[3:]))
            inside = (ts >= end - 60) & (ts < end)
            assert inside.sum() == 120, (vendor, hhmm)
            p = px[inside]
            assert (p[0], p.max(), p.min(), p[-1]) == pytest.approx((o, h, lo, c), abs=1e-9)
            before = vol[ts < end - 60]
            assert int(vol[inside][-1]) - (int(before[-1]) if before.size else 0) == v
    with pytest.raises(ValueError, match="ticks_per_minute"):
        build_session([BARS_DIR], "2022-11-11", tmp_path / "x.session", ticks_per_minute=3)

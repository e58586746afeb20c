"""Universe resolution against the bundled real Kite instrument dumps (both expiry formats)."""

from __future__ import annotations

import datetime as dt
import gzip
import io
from pathlib import Path

import polars as pl
import pytest

from aion.config import ConfigError
from aion.instruments.config import FuturesSelector, OptionsSelector, UniverseConfig
from aion.instruments.master import InstrumentMaster
from aion.instruments.universe import UniverseError, resolve_universe
from aion.kite.wire import MODE_FULL, MODE_LTP, MODE_QUOTE

DATA = Path(__file__).resolve().parents[3] / "aion" / "data" / "instruments"
NFO_2024 = DATA / "kite_instruments_NFO_plus_FnO_underlyings_2024-04-06.csv.gz"  # DD-MM-YYYY
NSE_2025 = DATA / "kite_instruments_NSE_EQ_INDICES_2025-10-24.csv.gz"
TODAY = dt.date(2024, 4, 8)


def raw_rows() -> pl.DataFrame:
    return pl.read_csv(io.BytesIO(gzip.decompress(NFO_2024.read_bytes())), infer_schema=False)


@pytest.fixture(scope="module")
def master() -> InstrumentMaster:
    return InstrumentMaster.from_csv([NSE_2025, NFO_2024])


@pytest.fixture(scope="module")
def master_iso(tmp_path_factory: pytest.TempPathFactory) -> InstrumentMaster:
    """The same NFO dump re-written with YYYY-MM-DD expiries (the official format)."""
    df = raw_rows().with_columns(
        pl.col("expiry").str.strptime(pl.Date, "%d-%m-%Y", strict=False).dt.strftime("%Y-%m-%d")
    )
    out = tmp_path_factory.mktemp("iso") / "nfo_iso.csv"
    df.write_csv(out)
    return InstrumentMaster.from_csv([NSE_2025, out])


def expected_futures(underlying: str) -> list[int]:
    """Near and next NIFTY futures on TODAY, straight from the CSV text."""
    df = (
        raw_rows()
        .filter((pl.col("name") == underlying) & (pl.col("instrument_type") == "FUT"))
        .with_columns(pl.col("expiry").str.strptime(pl.Date, "%d-%m-%Y").alias("exp"))
    )
    df = df.filter(pl.col("exp") >= TODAY).sort("exp")
    return [int(t) for t in df["instrument_token"].to_list()[:2]]


def test_symbols_indices_futures_and_modes(master: InstrumentMaster) -> None:
    cfg = UniverseConfig(
        symbols=("NSE:RELIANCE",),
        indices=("NSE:NIFTY 50", "NSE:INDIA VIX"),
        modes={"NSE:INDIA VIX": "ltp"},
        futures=(FuturesSelector(underlying="NIFTY", months=("near", "next"), mode="quote"),),
    )
    uni = resolve_universe(cfg, master, "full", TODAY)
    syms = [i.symbol for i in uni.instruments.values()]
    assert syms[:3] == ["NSE:RELIANCE", "NSE:NIFTY 50", "NSE:INDIA VIX"]
    fut_tokens = list(uni.instruments)[3:]
    assert fut_tokens == expected_futures("NIFTY")
    assert [uni.instruments[t].tradingsymbol for t in fut_tokens] == [
        "NIFTY24APRFUT",
        "NIFTY24MAYFUT",
    ]
    modes = {uni.instruments[t].symbol: m for t, m in uni.modes.items()}
    assert modes["NSE:RELIANCE"] == MODE_FULL and modes["NSE:INDIA VIX"] == MODE_LTP
    assert modes["NFO:NIFTY24APRFUT"] == MODE_QUOTE


def test_options_within_n_strikes_of_atm_match_a_direct_filter(master: InstrumentMaster) -> None:
    sel = OptionsSelector(underlying="NIFTY", expiry="near", strikes=3, atm_strike=22_513.0)
    uni = resolve_universe(UniverseConfig(options=(sel,)), master, "quote", TODAY)
    # independent: nearest expiry >= TODAY, its listed strikes, 3 either side of 22513
    df = (
        raw_rows()
        .filter((pl.col("name") == "NIFTY") & pl.col("instrument_type").is_in(["CE", "PE"]))
        .with_columns(
            pl.col("expiry").str.strptime(pl.Date, "%d-%m-%Y").alias("exp"),
            pl.col("strike").cast(pl.Float64),
        )
    )
    near = df.filter(pl.col("exp") >= TODAY)["exp"].min()
    chain = df.filter(pl.col("exp") == near)
    strikes = sorted(set(chain["strike"].to_list()))
    atm = min(strikes, key=lambda k: abs(k - 22_513.0))
    i = strikes.index(atm)
    want = set(strikes[i - 3 : i + 4])
    expected = set(
        int(t) for t in chain.filter(pl.col("strike").is_in(list(want)))["instrument_token"]
    )
    assert near == dt.date(2024, 4, 10) and len(want) == 7
    assert set(uni.instruments) == expected and len(expected) == 14
    assert all(m == MODE_QUOTE for m in uni.modes.values())
    got_strikes = sorted({i.strike for i in uni.instruments.values()})
    assert got_strikes[3] == atm == 22_500.0


def test_spot_price_sets_atm_and_both_expiry_formats_agree(
    master: InstrumentMaster, master_iso: InstrumentMaster
) -> None:
    sel = OptionsSelector(underlying="NIFTY", expiry="next", strikes=1, spot="NSE:NIFTY 50")
    cfg = UniverseConfig(options=(sel,), futures=(FuturesSelector(underlying="BANKNIFTY"),))
    a = resolve_universe(cfg, master, "full", TODAY, spot_price=lambda s: 22_048.0)
    b = resolve_universe(cfg, master_iso, "full", TODAY, spot_price=lambda s: 22_048.0)
    assert list(a.instruments) == list(b.instruments) and a.modes == b.modes
    opts = [i for i in a.instruments.values() if i.instrument_type in ("CE", "PE")]
    assert {i.strike for i in opts} == {22_000.0, 22_050.0, 22_100.0}
    assert {i.expiry for i in opts} == {dt.date(2024, 4, 18)}


def test_errors_name_the_entry(master: InstrumentMaster) -> None:
    with pytest.raises(UniverseError, match="NSE:NOSUCH"):
        resolve_universe(UniverseConfig(symbols=("NSE:NOSUCH",)), master, "full", TODAY)
    far_future = FuturesSelector(underlying="NIFTY", months=("near",))
    with pytest.raises(UniverseError, match="near-month"):
        resolve_universe(UniverseConfig(futures=(far_future,)), master, "full", dt.date(2030, 1, 1))
    no_price = OptionsSelector(underlying="NIFTY", spot="NSE:NIFTY 50")
    with pytest.raises(UniverseError, match="atm_strike"):
        resolve_universe(UniverseConfig(options=(no_price,)), master, "full", TODAY)
    with pytest.raises(ConfigError, match="spot"):
        OptionsSelector(underlying="NIFTY")


def test_command_line_symbols_replace_the_configured_universe(master: InstrumentMaster) -> None:
    cfg = UniverseConfig(symbols=("NSE:RELIANCE",), modes={"NSE:INFY": "ltp"})
    uni = resolve_universe(cfg, master, "full", TODAY, symbols=["NSE:INFY", "NSE:TCS"])
    assert [i.symbol for i in uni.instruments.values()] == ["NSE:INFY", "NSE:TCS"]
    assert list(uni.modes.values()) == [MODE_LTP, MODE_FULL]

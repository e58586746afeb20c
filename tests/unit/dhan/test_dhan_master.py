"""Tests for aion.dhan.master: Dhan's scrip master mapped onto aion's instruments."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from aion.dhan import master as M
from aion.dhan import wire as W
from aion.instruments.master import InstrumentMaster
from aion.kite.wire import TICK_DTYPE


@pytest.fixture(scope="module")
def kite() -> InstrumentMaster:
    return InstrumentMaster.bundled()


def test_sample_has_the_published_columns_in_order() -> None:
    header = M.SAMPLE_CSV.read_text().splitlines()[0].split(",")
    assert tuple(header) == M.DHAN_COLUMNS


def test_symbols_and_tokens_agree_with_kite(kite: InstrumentMaster) -> None:
    dhan = M.load_scrip_master(M.SAMPLE_CSV, kite)
    assert len(dhan) == 7
    want = {
        "NSE:RELIANCE": 738561,
        "NSE:TCS": 2953217,
        "NSE:HDFCBANK": 341249,
        "BSE:HDFCBANK": 128046084,
        "NFO:HDFCBANK24APRFUT": 15083010,
        "NSE:NIFTY 50": 13 << 8 | 9,  # Dhan's index id, not Kite's 256265
        "NSE:INDIA VIX": 21 << 8 | 9,
    }
    assert {i.symbol: i.instrument_token for i in dhan} == want
    for inst in dhan:
        k = kite.by_symbol(inst.symbol)
        assert (inst.name, inst.expiry, inst.lot_size, inst.segment, inst.instrument_type) == (
            k.name,
            k.expiry,
            k.lot_size,
            k.segment,
            k.instrument_type,
        )
        if not inst.is_index:
            assert inst.instrument_token == k.instrument_token


def test_dhan_columns_alone_give_the_same_facts_as_kite(kite: InstrumentMaster) -> None:
    """Rows mapped without Kite's help: the facts Dhan publishes match Kite's for the same token."""
    own = M.load_scrip_master(M.SAMPLE_CSV, use_kite=False)
    fut = own.by_token(15083010)
    assert (fut.symbol, fut.instrument_type, fut.segment) == (
        "NFO:HDFCBANK-Apr2024-FUT",
        "FUT",
        "NFO-FUT",
    )
    k = kite.by_token(15083010)
    assert (fut.expiry, fut.lot_size, fut.strike, fut.exchange_token) == (
        k.expiry,
        k.lot_size,
        k.strike,
        k.exchange_token,
    )
    assert fut.expiry == dt.date(2024, 4, 25)
    nifty = own.by_token(13 << 8 | 9)
    assert (nifty.symbol, nifty.segment, nifty.is_index, nifty.lot_size, nifty.expiry) == (
        "NSE:NIFTY",
        "INDICES",
        True,
        0,
        None,
    )
    rel = own.by_symbol("NSE:RELIANCE")
    assert rel.tick_size == pytest.approx(0.10) and rel.lot_size == 1
    assert rel.tick_size == pytest.approx(kite.by_symbol("NSE:RELIANCE").tick_size)


def test_decoded_ticks_resolve_to_symbols(kite: InstrumentMaster) -> None:
    dhan = M.load_scrip_master(M.SAMPLE_CSV, kite)
    t = np.zeros(2, TICK_DTYPE)
    t["instrument_token"] = [W.instrument_token(1, 1333), W.instrument_token(0, 13)]
    t["mode"] = 1
    t["last_price"] = [1612.35, 18349.7]
    ticks = W.decode_frames([W.encode_ticks(t)]).ticks
    assert [dhan.by_token(x).symbol for x in ticks["instrument_token"]] == [
        "NSE:HDFCBANK",
        "NSE:NIFTY 50",
    ]


def test_bad_files_fail_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read Dhan scrip master"):
        M.load_scrip_master(tmp_path / "missing.csv", use_kite=False)
    kite_csv = tmp_path / "kite.csv"
    kite_csv.write_text("instrument_token,tradingsymbol,exchange\n1,X,NSE\n")
    with pytest.raises(ValueError, match="not a Dhan scrip master"):
        M.load_scrip_master(kite_csv, use_kite=False)
    bad = tmp_path / "bad.csv"
    header = ",".join(M.DHAN_COLUMNS)
    bad.write_text(header + "\nNSE,E,notanid,EQUITY,0,X,1.0,X,,,,5.0,NA,ES,EQ,X\n")
    with pytest.raises(ValueError, match="security id 'notanid'"):
        M.load_scrip_master(bad, use_kite=False)
    big = tmp_path / "big.csv"
    big.write_text(header + f"\nNSE,E,{1 << 24},EQUITY,0,X,1.0,X,,,,5.0,NA,ES,EQ,X\n")
    with pytest.raises(ValueError, match="24 bits"):
        M.load_scrip_master(big, use_kite=False)
    with pytest.raises(ValueError, match="no Dhan feed segment"):
        M.dhan_segment("NSE", "Z")

"""Instrument master: parsing both Kite CSV variants, lookups, merge rules, bundled dumps."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest

from aion.instruments.master import KITE_COLUMNS, Instrument, InstrumentMaster, parse_expiry

HEADER = ",".join(KITE_COLUMNS)

# official dump style: YYYY-MM-DD, numbers written 0.0
OFFICIAL = f"""{HEADER}
256265,1001,NIFTY 50,NIFTY 50,0.0,,0.0,0.0,0,EQ,INDICES,NSE
738561,2885,RELIANCE,RELIANCE INDUSTRIES,0.0,,0.0,0.1,1,EQ,NSE,NSE
13368834,52222,NIFTY24APRFUT,NIFTY,0.0,2024-04-25,0.0,0.05,50,FUT,NFO-FUT,NFO
"""
# re-saved style: DD-MM-YYYY, numbers written 0
RESAVED = f"""{HEADER}
13368834,52222,NIFTY24APRFUT,NIFTY,0,25-04-2024,0,0.05,50,FUT,NFO-FUT,NFO
33271042,129965,RELIANCE24APR2440CE,RELIANCE,0,25-04-2024,2440,0.05,250,CE,NFO-OPT,NFO
738561,2885,RELIANCE,RELIANCE IND (NEWER),0,,0,0.05,1,EQ,NSE,NSE
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    if name.endswith(".gz"):
        p.write_bytes(gzip.compress(text.encode()))
    else:
        p.write_text(text)
    return p


def test_both_expiry_formats_and_number_styles_parse(tmp_path: Path) -> None:
    a = InstrumentMaster.from_csv(_write(tmp_path, "a.csv", OFFICIAL))
    b = InstrumentMaster.from_csv(_write(tmp_path, "b.csv.gz", RESAVED))
    fa, fb = a.by_token(13368834), b.by_token(13368834)
    assert fa.expiry == fb.expiry == dt.date(2024, 4, 25)
    assert fa == fb
    opt = b.by_symbol("NFO:RELIANCE24APR2440CE")
    assert opt.strike == 2440.0 and opt.lot_size == 250 and opt.instrument_type == "CE"
    assert isinstance(opt.lot_size, int) and isinstance(opt.strike, float)
    assert a.by_token(738561).expiry is None


def test_later_file_wins_per_token(tmp_path: Path) -> None:
    pa, pb = _write(tmp_path, "a.csv", OFFICIAL), _write(tmp_path, "b.csv", RESAVED)
    m = InstrumentMaster.from_csv([pa, pb])
    assert len(m) == 4
    assert m.by_token(738561).name == "RELIANCE IND (NEWER)"
    assert m.by_token(738561).tick_size == 0.05
    m2 = InstrumentMaster.from_csv([pb, pa])
    assert m2.by_token(738561).name == "RELIANCE INDUSTRIES"
    merged = InstrumentMaster.from_csv(pa).merge(InstrumentMaster.from_csv(pb))
    assert merged.by_token(738561).name == "RELIANCE IND (NEWER)"
    assert len(merged) == 4


def test_symbol_and_index_properties(tmp_path: Path) -> None:
    m = InstrumentMaster.from_csv(_write(tmp_path, "a.csv", OFFICIAL))
    nifty = m.by_symbol("NSE:NIFTY 50")
    assert nifty.instrument_token == 256265 and nifty.is_index
    assert nifty.symbol == "NSE:NIFTY 50"
    assert not m.by_token(738561).is_index
    assert m.by_token(13368834).symbol == "NFO:NIFTY24APRFUT"
    assert [i.instrument_token for i in m] == [256265, 738561, 13368834]


def test_lookup_errors_are_clear(tmp_path: Path) -> None:
    m = InstrumentMaster.from_csv(_write(tmp_path, "a.csv", OFFICIAL))
    with pytest.raises(KeyError, match="instrument_token 42 not in the instrument master"):
        m.by_token(42)
    with pytest.raises(KeyError, match="EXCHANGE:TRADINGSYMBOL"):
        m.by_symbol("RELIANCE")
    with pytest.raises(ValueError, match="bad expiry"):
        parse_expiry("2024/04/25")


def test_to_rows_kite_column_order_round_trip(tmp_path: Path) -> None:
    m = InstrumentMaster.from_csv(_write(tmp_path, "b.csv", RESAVED))
    rows = m.to_rows()
    assert all(list(r) == list(KITE_COLUMNS) for r in rows)
    assert rows[0]["expiry"] == "2024-04-25"
    assert rows[2]["expiry"] == ""
    again = InstrumentMaster.from_rows(rows)
    assert list(again) == list(m)
    assert Instrument.from_row(rows[1]) == m.by_token(33271042)


def test_bad_csv_names_the_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "junk.csv", "a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"junk\.csv"):
        InstrumentMaster.from_csv(p)


def test_bundled_master_real_tokens() -> None:
    m = InstrumentMaster.bundled()
    assert len(m) > 30_000
    assert m.by_symbol("NSE:RELIANCE").instrument_token == 738561
    assert m.by_symbol("NSE:HDFCBANK").instrument_token == 341249
    assert m.by_symbol("NSE:ICICIBANK").instrument_token == 1270529
    assert m.by_symbol("NSE:SBIN").instrument_token == 779521
    for sym, tok in (
        ("NSE:NIFTY 50", 256265),
        ("NSE:NIFTY BANK", 260105),
        ("NSE:INDIA VIX", 264969),
    ):
        inst = m.by_symbol(sym)
        assert inst.instrument_token == tok and inst.is_index and tok & 0xFF == 9
    fut = m.by_symbol("NFO:NIFTY24APRFUT")
    assert fut.expiry == dt.date(2024, 4, 25) and fut.lot_size == 50
    # the 2025 NSE dump is newer than the 2024 NFO dump: token 884737 is TMPV now
    assert m.by_token(884737).tradingsymbol == "TMPV"
    assert m.find("NSE:TATAMOTORS") is None

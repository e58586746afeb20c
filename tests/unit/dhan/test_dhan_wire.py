"""Tests for aion.dhan.wire and aion.dhan.requests (DhanHQ v2 market feed).

Packets are built here with ``struct`` from the documented layouts (DhanHQ v2 docs, "Live
Market Feed") and cross-checked field by field against the ``dhanhq`` package's own parser
(``MarketFeed.process_data``), which shares no code with aion.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import struct

import numpy as np
import pytest
from dhanhq.marketfeed import MarketFeed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aion.dhan import requests as R
from aion.dhan import wire as W
from aion.instruments.master import InstrumentMaster
from aion.kite.wire import TICK_DTYPE

N_PACKETS = 10_000
DHAN_SEGMENTS = (0, 1, 2, 3, 4, 5, 7, 8)
CURRENCY = (3, 7)
KITE_SEG = {0: 9, 1: 1, 2: 2, 3: 3, 4: 4, 5: 7, 7: 6, 8: 5}


def _parser() -> MarketFeed:
    """dhanhq's parser without a connection (its process_* methods only read ``data``)."""
    feed = MarketFeed.__new__(MarketFeed)
    feed.on_close = None  # read by server_disconnection
    return feed


# --------------------------------------------------------------------------- builders


def _price(rng: random.Random, seg: int) -> float:
    """A price on the exchange's grid: 4 decimals (currency, < 1000) or paise (< 131,072)."""
    if seg in CURRENCY:
        return rng.randrange(1, 400_000) * 0.0025
    return rng.randrange(1, 2_600_000) * 0.05


def _header(code: int, size: int, seg: int, sid: int) -> bytes:
    return struct.pack("<BHBI", code, size, seg, sid)


def make_packet(rng: random.Random, code: int) -> bytes:
    """One packet of response ``code`` laid out per Dhan's docs, every field random."""
    seg = rng.choice(DHAN_SEGMENTS)
    sid = rng.getrandbits(24)
    u32 = lambda: rng.getrandbits(32)  # noqa: E731
    u16 = lambda: rng.getrandbits(16)  # noqa: E731
    p = lambda: _price(rng, seg)  # noqa: E731
    if code == 2:
        return _header(2, 16, seg, sid) + struct.pack("<fI", p(), u32())
    if code == 4:
        body = struct.pack("<fHIfIIIffff", p(), u16(), u32(), p(), u32(), u32(), u32(),
                           p(), p(), p(), p())  # fmt: skip
        return _header(4, 50, seg, sid) + body
    if code == 5:
        return _header(5, 12, seg, sid) + struct.pack("<I", u32())
    if code == 6:
        return _header(6, 16, seg, sid) + struct.pack("<fI", p(), u32())
    if code == 7:
        return _header(7, 8, seg, sid)
    if code == 8:
        body = struct.pack("<fHIfIIIIIIffff", p(), u16(), u32(), p(), u32(), u32(), u32(),
                           u32(), u32(), u32(), p(), p(), p(), p())  # fmt: skip
        depth = b"".join(
            struct.pack("<IIHHff", u32(), u32(), u16(), u16(), p(), p()) for _ in range(5)
        )
        return _header(8, 162, seg, sid) + body + depth
    if code == 50:
        return _header(50, 10, seg, sid) + struct.pack("<H", rng.choice((805, 806, 807, 808, 809)))
    raise AssertionError(code)


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _same_price(ours: float, theirs: str, raw: float, seg: int) -> None:
    """Our rupees vs dhanhq's ``{:.2f}`` string and vs the float32 on the wire."""
    decimals = 4 if seg in CURRENCY else 2
    assert ours == round(raw, decimals)
    if seg in CURRENCY:  # dhanhq keeps 2 decimals only
        assert abs(ours - float(theirs)) <= 0.005 + 1e-9
    else:
        assert f"{ours:.2f}" == theirs


def _ltt_text(ets: int) -> str:
    """Our exchange_timestamp back on dhanhq's clock (LTT formatted as UTC)."""
    ltt = ets + W.IST_EPOCH_OFFSET_S if ets else 0
    return dt.datetime.fromtimestamp(ltt, dt.UTC).strftime("%H:%M:%S")


# --------------------------------------------------------------------------- cross-check


@pytest.mark.parametrize("code", [2, 4, 8])
def test_tick_packets_match_dhanhq_field_by_field(code: int) -> None:
    rng = random.Random(code)
    packets = [make_packet(rng, code) for _ in range(N_PACKETS)]
    dec = W.decode_frames(packets)
    assert (dec.status == 0).all()
    assert dec.ticks.size == N_PACKETS and dec.events.size == 0
    assert (dec.tick_frame == np.arange(N_PACKETS)).all()
    ref = _parser()
    mode = {2: 1, 4: 2, 8: 3}[code]
    for pkt, t in zip(packets, dec.ticks, strict=True):
        d = ref.process_data(pkt)
        seg = d["exchange_segment"]
        assert int(t["instrument_token"]) == d["security_id"] << 8 | KITE_SEG[seg]
        assert int(t["mode"]) == mode and int(t["packet_length"]) == len(pkt)
        assert bool(t["tradable"]) == (seg != 0)
        raw_lp = struct.unpack_from("<f", pkt, 8)[0]
        _same_price(float(t["last_price"]), d["LTP"], raw_lp, seg)
        assert _ltt_text(int(t["exchange_timestamp"])) == d["LTT"]
        assert t["last_trade_time"] == t["exchange_timestamp"]
        if code == 2:
            assert t["volume_traded"] == 0 and t["close"] == 0
            continue
        assert t["last_traded_quantity"] == d["LTQ"]
        assert t["volume_traded"] == d["volume"]
        assert t["total_sell_quantity"] == d["total_sell_quantity"]
        assert t["total_buy_quantity"] == d["total_buy_quantity"]
        _same_price(float(t["average_traded_price"]), d["avg_price"],
                    struct.unpack_from("<f", pkt, 18)[0], seg)  # fmt: skip
        ohlc_at = 34 if code == 4 else 46
        for i, f in enumerate(("open", "close", "high", "low")):
            _same_price(float(t[f]), d[f], struct.unpack_from("<f", pkt, ohlc_at + 4 * i)[0], seg)
        close = float(t["close"])
        want = (float(t["last_price"]) - close) * 100 / close if close else 0.0
        assert float(t["change"]) == want
        if code == 4:
            assert t["oi"] == 0 and (t["depth_buy_quantity"] == 0).all()
            continue
        assert (t["oi"], t["oi_day_high"], t["oi_day_low"]) == (
            d["OI"],
            d["oi_day_high"],
            d["oi_day_low"],
        )
        for j, lvl in enumerate(d["depth"]):
            at = 62 + 20 * j
            assert t["depth_buy_quantity"][j] == lvl["bid_quantity"]
            assert t["depth_sell_quantity"][j] == lvl["ask_quantity"]
            assert t["depth_buy_orders"][j] == lvl["bid_orders"]
            assert t["depth_sell_orders"][j] == lvl["ask_orders"]
            bid, ask = struct.unpack_from("<ff", pkt, at + 12)
            _same_price(float(t["depth_buy_price"][j]), lvl["bid_price"], bid, seg)
            _same_price(float(t["depth_sell_price"][j]), lvl["ask_price"], ask, seg)


@pytest.mark.parametrize("code", [5, 6, 7, 50])
def test_event_packets_match_dhanhq(code: int, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(100 + code)
    packets = [make_packet(rng, code) for _ in range(N_PACKETS)]
    dec = W.decode_frames(packets)
    assert (dec.status == 0).all()
    assert dec.ticks.size == 0 and dec.events.size == N_PACKETS
    ref = _parser()
    for pkt, e in zip(packets, dec.events, strict=True):
        _, _, seg, sid = struct.unpack_from("<BHBI", pkt)
        assert (int(e["response_code"]), int(e["exchange_segment"]), int(e["security_id"])) == (
            code,
            seg,
            sid,
        )
        assert int(e["instrument_token"]) == sid << 8 | KITE_SEG[seg]
        d = ref.process_data(pkt)
        if code == 5:
            assert (d["exchange_segment"], d["security_id"]) == (seg, sid)
            assert e["oi"] == d["OI"]
        elif code == 6:
            assert e["prev_oi"] == d["prev_OI"]
            _same_price(float(e["prev_close"]), d["prev_close"],
                        struct.unpack_from("<f", pkt, 8)[0], seg)  # fmt: skip
        elif code == 7:
            assert d == "Markets Open"
        else:
            printed = capsys.readouterr().out.strip().lower()
            words = W.DISCONNECT_REASONS[int(e["reason_code"])]
            assert printed.startswith("disconnected: " + words.lower())
            assert W.disconnect_reason(int(e["reason_code"])).startswith(words)


def test_many_packets_per_message_keep_order() -> None:
    rng = random.Random(7)
    codes = [rng.choice([2, 4, 5, 6, 7, 8, 50]) for _ in range(2_000)]
    packets = [make_packet(rng, c) for c in codes]
    frames, i = [], 0
    while i < len(packets):
        k = rng.randint(1, 9)
        frames.append(b"".join(packets[i : i + k]))
        i += k
    joined = W.decode_frames(frames)
    alone = W.decode_frames(packets)
    assert (joined.status == 0).all()
    assert joined.ticks.tobytes() == alone.ticks.tobytes()
    assert joined.events.tobytes() == alone.events.tobytes()
    assert joined.ticks.size == sum(c in (2, 4, 8) for c in codes)


def test_payload_only_message_length_is_accepted() -> None:
    pkt = bytearray(make_packet(random.Random(1), 4))
    struct.pack_into("<H", pkt, 1, 42)
    dec = W.decode_frames([bytes(pkt)])
    assert dec.status.tolist() == [0] and dec.ticks.size == 1


# --------------------------------------------------------------------------- malformed


def test_malformed_frames_are_counted_by_reason() -> None:
    rng = random.Random(3)
    good = make_packet(rng, 8)
    bad_len = bytearray(good)
    struct.pack_into("<H", bad_len, 1, 161)
    big_id = bytearray(good)
    big_id[7] = 1
    v1_depth = _header(3, 112, 1, 1333) + bytes(104)
    frames = [good, good[:5], good[:100], bytes(bad_len), v1_depth, b"", 12345, bytes(big_id),
              good + good[:9], good]  # fmt: skip
    dec = W.decode_frames(frames)
    reasons = [W.FRAME_STATUS_REASONS[s] for s in dec.status]
    assert reasons == ["ok", "truncated header", "truncated packet", "bad message length",
                       "unknown response code", "empty", "not bytes",
                       "security id out of range", "truncated packet", "ok"]  # fmt: skip
    assert dec.reason_counts() == {"truncated header": 1, "truncated packet": 2,
                                   "bad message length": 1, "unknown response code": 1,
                                   "empty": 1, "not bytes": 1,
                                   "security id out of range": 1}  # fmt: skip
    assert dec.tick_frame.tolist() == [0, 9]  # nothing of a malformed frame is kept
    assert dec.where[8] == 162


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=400), max_size=20), st.integers(0, 2**32 - 1))
def test_fuzzed_frames_never_raise(blobs: list[bytes], seed: int) -> None:
    rng = random.Random(seed)
    frames: list[object] = list(blobs)
    for _ in range(5):  # valid packets, cut or with a flipped byte
        pkt = bytearray(make_packet(rng, rng.choice([2, 4, 5, 6, 7, 8, 50])))
        if rng.random() < 0.5:
            pkt = pkt[: rng.randrange(len(pkt))]
        else:
            pkt[rng.randrange(len(pkt))] ^= 1 << rng.randrange(8)
        frames.append(bytes(pkt))
    dec = W.decode_frames(frames)
    assert dec.status.shape == (len(frames),)
    ok = dec.status == 0
    assert sum(dec.reason_counts().values()) == int((~ok).sum())
    assert set(dec.tick_frame.tolist()) | set(dec.event_frame.tolist()) <= set(
        np.flatnonzero(ok).tolist()
    )
    for f in np.flatnonzero(ok):  # a well-formed frame is whole packets end to end
        frame = frames[f]
        assert isinstance(frame, bytes)
        pos = 0
        while pos < len(frame):
            pos += W.PACKET_SIZES[frame[pos]]
        assert pos == len(frame)


# --------------------------------------------------------------------------- encode


def _ticks_strategy() -> st.SearchStrategy[np.ndarray]:
    u32 = st.integers(0, 2**32 - 1)

    @st.composite
    def one(draw: st.DrawFn) -> tuple:
        seg = draw(st.sampled_from(DHAN_SEGMENTS))
        sid = draw(st.integers(0, 2**24 - 1))
        mode = draw(st.sampled_from([1, 2, 3]))
        if seg in CURRENCY:
            price = st.integers(1, 9_999_999).map(lambda u: u / 10_000)
        else:
            price = st.integers(1, 13_107_100).map(lambda u: u / 100)
        ets = draw(st.integers(1, 2**32 - 1 - W.IST_EPOCH_OFFSET_S))
        prices = [draw(price) for _ in range(15)]
        ints = [draw(u32) for _ in range(19)]
        shorts = [draw(st.integers(0, 65535)) for _ in range(11)]
        return (seg, sid, mode, draw(price), ets, prices, ints, shorts)

    def build(rows: list[tuple]) -> np.ndarray:
        t = np.zeros(len(rows), TICK_DTYPE)
        for i, (seg, sid, mode, lp, ets, prices, ints, shorts) in enumerate(rows):
            r = t[i : i + 1]
            r["instrument_token"] = sid << 8 | KITE_SEG[seg]
            r["mode"] = mode
            r["last_price"] = lp
            r["exchange_timestamp"] = ets
            r["last_trade_time"] = ets
            if mode == 1:
                continue
            r["last_traded_quantity"] = shorts[0]
            r["volume_traded"], r["total_buy_quantity"], r["total_sell_quantity"] = ints[:3]
            r["average_traded_price"], r["open"], r["high"], r["low"], r["close"] = prices[:5]
            if mode == 3:
                r["oi"], r["oi_day_high"], r["oi_day_low"] = ints[3:6]
                r["depth_buy_price"] = [prices[5:10]]
                r["depth_sell_price"] = [prices[10:15]]
                r["depth_buy_quantity"] = [ints[6:11]]
                r["depth_sell_quantity"] = [ints[11:16]]
                r["depth_buy_orders"] = [shorts[1:6]]
                r["depth_sell_orders"] = [shorts[6:11]]
        return t

    return st.lists(one(), min_size=1, max_size=30).map(build)


@settings(max_examples=200, deadline=None)
@given(_ticks_strategy())
def test_encode_decode_is_identity(ticks: np.ndarray) -> None:
    dec = W.decode_frames([W.encode_ticks(ticks)])
    assert dec.status.tolist() == [0]
    got = dec.ticks
    assert got.size == ticks.size
    names = [n for n in TICK_DTYPE.names or () if n not in ("change", "packet_length", "tradable")]
    for n in names:
        assert np.array_equal(got[n], ticks[n]), n
    assert np.array_equal(got["tradable"], (ticks["instrument_token"] & 0xFF) != 9)


def test_encode_rejects_what_the_wire_cannot_carry() -> None:
    t = np.zeros(1, TICK_DTYPE)
    t["instrument_token"] = 1333 << 8 | 1
    t["mode"] = 2
    with pytest.raises(ValueError, match="TICK_DTYPE"):
        W.encode_ticks(np.zeros(1, np.int64))
    t["last_traded_quantity"] = 70_000
    with pytest.raises(ValueError, match="last_traded_quantity"):
        W.encode_ticks(t)
    t["last_traded_quantity"] = 1
    t["instrument_token"] = 1 << 8 | 12  # Kite NCO: no Dhan segment
    with pytest.raises(ValueError, match="no Dhan segment"):
        W.encode_ticks(t)
    t["instrument_token"] = 1333 << 8 | 1
    t["mode"] = 4
    with pytest.raises(ValueError, match="mode"):
        W.encode_ticks(t)


def test_event_encoders_round_trip() -> None:
    frame = (
        W.encode_oi(2, 35_000, 1_234_567)
        + W.encode_prev_close(1, 1333, 1612.35, 0)
        + W.encode_market_status(1, 1333)
        + W.encode_disconnect(807)
    )
    dec = W.decode_frames([frame])
    e = dec.events
    assert e["response_code"].tolist() == [5, 6, 7, 50]
    assert e["oi"][0] == 1_234_567 and e["prev_close"][1] == 1612.35
    assert e["reason_code"][3] == 807
    assert W.disconnect_reason(807) == "access token is expired (807)"
    assert W.disconnect_reason(999) == "unknown disconnect reason 999"


# --------------------------------------------------------------------------- tokens, requests


def test_tokens_of_cash_instruments_are_kites_tokens() -> None:
    """Dhan's security id is the exchange token: Kite's own master confirms the token rule."""
    kite = InstrumentMaster.bundled()
    for symbol, seg, sid in (("NSE:HDFCBANK", 1, 1333), ("BSE:HDFCBANK", 4, 500180)):
        inst = kite.by_symbol(symbol)
        assert inst.exchange_token == sid
        assert W.instrument_token(seg, sid) == inst.instrument_token
        assert W.split_token(inst.instrument_token) == (seg, sid)
    with pytest.raises(ValueError, match="24 bits"):
        W.instrument_token(1, 1 << 24)
    with pytest.raises(ValueError, match="segment"):
        W.instrument_token(6, 1)


def test_subscription_messages_follow_the_documented_shape() -> None:
    tokens = [W.instrument_token(1, i) for i in range(1, 251)] + [W.instrument_token(0, 13)]
    msgs = [json.loads(m) for m in R.subscription_messages(tokens + tokens[:5], 3)]
    assert [m["InstrumentCount"] for m in msgs] == [100, 100, 51]
    assert {m["RequestCode"] for m in msgs} == {21}
    assert msgs[0]["InstrumentList"][0] == {"ExchangeSegment": "NSE_EQ", "SecurityId": "1"}
    assert msgs[2]["InstrumentList"][-1] == {"ExchangeSegment": "IDX_I", "SecurityId": "13"}
    assert all(len(m["InstrumentList"]) == m["InstrumentCount"] for m in msgs)
    codes = [json.loads(R.subscription_messages(tokens[:1], m)[0])["RequestCode"] for m in (1, 2)]
    assert codes == [15, 17]
    unsub = json.loads(R.subscription_messages(tokens[:1], 1, subscribe=False)[0])
    assert unsub["RequestCode"] == 16
    assert set(R.REQUEST_CODES.values()) == {MarketFeed.Ticker, MarketFeed.Quote, MarketFeed.Full}
    assert json.loads(R.disconnect_message()) == {"RequestCode": 12}
    with pytest.raises(ValueError, match="5000"):
        R.subscription_messages([W.instrument_token(2, i) for i in range(5001)], 1)
    with pytest.raises(ValueError, match="mode"):
        R.subscription_messages(tokens, 4)
    url = R.feed_url("1000000001", "tok")
    assert url == "wss://api-feed.dhan.co?version=2&token=tok&clientId=1000000001&authType=2"

"""Tests for the Kite WebSocket wire format (aion.kite.wire, decode, encode, text) and
``aion kite decode``.

Packets are built here with ``struct`` from the documented layouts (Kite Connect
WebSocket docs) and cross-checked against kiteconnect's own parser
(``KiteTicker._parse_binary``), which shares no code with aion.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kiteconnect.ticker import KiteTicker
from typer.testing import CliRunner

from aion.cli.kite_cmd import kite_app
from aion.kite.decode import decode_frame, decode_packet, is_heartbeat, packet_spans, ticks_to_dicts
from aion.kite.encode import encode_frame, filter_frame
from aion.kite.fields import load_field_aliases, normalise_fields
from aion.kite.text import parse_text_message
from aion.kite.wire import (
    MODE_CODES,
    MODE_LTP,
    MODE_NAMES,
    MODE_QUOTE,
    SEGMENT_CDS,
    SEGMENT_INDICES,
    SEGMENT_NCO,
    TICK_DTYPE,
    BytesLike,
    MalformedFrame,
    price_divisor,
    price_divisors,
)

FIXTURES = Path(__file__).resolve().parents[3] / "aion" / "data" / "kite_fixtures"
UTC = dt.UTC
IST_OFFSET = dt.timedelta(hours=5, minutes=30)

SEG_NSE, SEG_NFO, SEG_CDS, SEG_BSE, SEG_BCD, SEG_MCX, SEG_IDX, SEG_NCO = 1, 2, 3, 4, 6, 7, 9, 12
TRADABLE_SEGS = (SEG_NSE, SEG_NFO, SEG_CDS, SEG_BSE, SEG_BCD, SEG_MCX, SEG_NCO)
KINDS = ("ltp", "quote", "full", "index_quote", "index_full")
KIND_LEN = {"ltp": 8, "quote": 44, "full": 184, "index_quote": 28, "index_full": 32}
DIVISOR = {SEG_CDS: 1e7, SEG_BCD: 1e4, SEG_NCO: 1e4}  # everything else 100


# --------------------------------------------------------------------------- builders


def make_token(rng: random.Random, seg: int) -> int:
    return (rng.getrandbits(24) << 8) | seg


def make_packet(
    rng: random.Random,
    kind: str,
    token: int,
    *,
    signed_prices: bool = False,
    zero_padding: bool = False,
    consistent_change: bool = False,
) -> bytes:
    """One packet body laid out per Kite's docs, fields random."""

    def price() -> int:
        if signed_prices:
            return rng.randint(-(2**31), 2**31 - 1)
        return rng.getrandbits(31)  # kiteconnect reads unsigned: keep the sign bit clear

    def u32() -> int:
        return rng.getrandbits(32)

    lp = price()
    if kind == "ltp":
        return struct.pack(">Ii", token, lp)
    close = 0 if rng.random() < 0.1 else price()
    if kind.startswith("index"):
        high, low, opn = price(), price(), price()
        if consistent_change:
            change = (lp - close + 2**31) % 2**32 - 2**31
        else:
            change = rng.randint(-(2**31), 2**31 - 1)
        body = struct.pack(">Iiiiiii", token, lp, high, low, opn, close, change)
        if kind == "index_full":
            body += struct.pack(">I", u32())
        return body
    body = struct.pack(
        ">IiIiIIIiiii",
        token,
        lp,
        u32(),  # last_traded_quantity
        price(),  # average_traded_price
        u32(),  # volume_traded
        u32(),  # total_buy_quantity
        u32(),  # total_sell_quantity
        price(),  # open
        price(),  # high
        price(),  # low
        close,
    )
    if kind == "quote":
        return body
    body += struct.pack(">IIIII", u32(), u32(), u32(), u32(), u32())
    for _ in range(10):
        pad = b"\x00\x00" if zero_padding else rng.randbytes(2)
        body += struct.pack(">IiH", u32(), price(), rng.getrandbits(16)) + pad
    assert len(body) == 184
    return body


def make_frame(packets: list[bytes]) -> bytes:
    return struct.pack(">H", len(packets)) + b"".join(
        struct.pack(">H", len(p)) + p for p in packets
    )


def random_packet(rng: random.Random, **kw: bool) -> bytes:
    kind = rng.choice(KINDS)
    if kind.startswith("index"):
        seg = SEG_IDX
    elif kind == "ltp":
        seg = rng.choice((*TRADABLE_SEGS, SEG_IDX))
    else:
        seg = rng.choice(TRADABLE_SEGS)
    return make_packet(rng, kind, make_token(rng, seg), **kw)


@pytest.fixture
def utc_local_time(monkeypatch: pytest.MonkeyPatch):
    """kiteconnect builds naive local datetimes; pin local time to UTC to compare instants."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def kc_parse(frame: bytes) -> list[dict]:
    return KiteTicker.__new__(KiteTicker)._parse_binary(frame)


def kc_epoch(value: dt.datetime | None) -> int:
    assert value is not None
    return int(value.replace(tzinfo=UTC).timestamp())


def kc_normalise(obj):
    """kiteconnect's naive (UTC-local, see fixture) datetimes -> aware, recursively."""
    if isinstance(obj, dt.datetime):
        return obj.replace(tzinfo=UTC)
    if isinstance(obj, dict):
        return {k: kc_normalise(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [kc_normalise(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- kiteconnect agreement


def test_agrees_with_kiteconnect_on_random_frames(utc_local_time: None) -> None:
    rng = random.Random(20240611)
    frames: list[bytes] = []
    total = 0
    while total < 12_000:
        n = rng.randint(1, 200)
        frames.append(make_frame([random_packet(rng) for _ in range(n)]))
        total += n
    seen_kinds: set[tuple[int, int]] = set()
    for frame in frames:
        ticks = decode_frame(frame)
        kc = kc_parse(frame)
        assert ticks.dtype == TICK_DTYPE
        assert len(ticks) == len(kc)
        seen_kinds.update(
            zip(
                ticks["packet_length"].tolist(),
                (ticks["instrument_token"] & 0xFF).tolist(),
                strict=True,
            )
        )

        def col(key, default=0, sub=None, _kc=kc):
            if sub is None:
                return np.array([d.get(key, default) for d in _kc])
            return np.array([d[sub][key] if sub in d else default for d in _kc])

        assert np.array_equal(ticks["instrument_token"], col("instrument_token"))
        assert np.array_equal(ticks["tradable"], col("tradable"))
        assert [MODE_NAMES[m] for m in ticks["mode"].tolist()] == [d["mode"] for d in kc]
        for f in (
            "last_price",
            "last_traded_quantity",
            "average_traded_price",
            "volume_traded",
            "total_buy_quantity",
            "total_sell_quantity",
            "change",
            "oi",
            "oi_day_high",
            "oi_day_low",
        ):
            assert np.array_equal(ticks[f], col(f)), f
        for f in ("open", "high", "low", "close"):
            assert np.array_equal(ticks[f], col(f, sub="ohlc")), f
        for f in ("last_trade_time", "exchange_timestamp"):
            epochs = [kc_epoch(d[f]) if f in d else 0 for d in kc]
            assert ticks[f].tolist() == epochs, f
        for side in ("buy", "sell"):
            for f in ("price", "quantity", "orders"):
                expected = [
                    [lvl[f] for lvl in d["depth"][side]] if "depth" in d else [0] * 5 for d in kc
                ]
                assert ticks[f"depth_{side}_{f}"].tolist() == expected, (side, f)
        # the display view has kiteconnect's shape and values (datetimes as IST instants)
        assert ticks_to_dicts(ticks) == kc_normalise(kc)
    assert total >= 10_000
    lengths = {ln for ln, _ in seen_kinds}
    segs = {s for _, s in seen_kinds}
    assert lengths == {8, 28, 32, 44, 184}
    assert set(TRADABLE_SEGS) | {SEG_IDX} <= segs


def test_signed_prices_are_a_deliberate_difference_from_kiteconnect() -> None:
    body = struct.pack(">Ii", (1234 << 8) | SEG_MCX, -288_400)  # MCX crude, 20 Apr 2020 style
    tick = decode_packet(body)[0]
    assert tick["last_price"] == -2884.0
    assert kc_parse(make_frame([body]))[0]["last_price"] == (2**32 - 288_400) / 100


def test_price_divisors_per_segment() -> None:
    tokens = np.array([(77 << 8) | s for s in (1, 2, 3, 4, 5, 6, 7, 8, 9, 12)], np.uint32)
    expected = [100, 100, 1e7, 100, 100, 1e4, 100, 100, 100, 1e4]
    assert price_divisors(tokens).tolist() == expected
    assert [price_divisor(int(t)) for t in tokens] == expected
    assert SEGMENT_INDICES == 9 and SEGMENT_CDS == 3 and SEGMENT_NCO == 12


def test_index_ticks_are_not_tradable_and_change_is_percent() -> None:
    body = struct.pack(
        ">Iiiiiii", 256265, 1_810_000, 1_820_000, 1_800_000, 1_805_000, 1_800_000, 10_000
    )
    assert SEG_IDX == 256265 & 0xFF
    t = decode_packet(body)[0]
    assert not t["tradable"]
    assert t["mode"] == MODE_QUOTE and t["packet_length"] == 28
    assert t["last_price"] == 18100.0 and t["close"] == 18000.0
    assert t["change"] == pytest.approx(100 / 18000 * 100)
    zero_close = struct.pack(">Iiiiiii", 256265, 5, 5, 5, 5, 0, 5)
    assert decode_packet(zero_close)[0]["change"] == 0.0


# --------------------------------------------------------------------------- round trips


def test_encode_decode_bytes_round_trip() -> None:
    rng = random.Random(7)
    for _ in range(60):
        n = rng.randint(1, 200)
        packets = [
            random_packet(rng, signed_prices=True, zero_padding=True, consistent_change=True)
            for _ in range(n)
        ]
        frame = make_frame(packets)
        assert encode_frame(decode_frame(frame)) == frame


def _random_ticks(rng: random.Random, n: int) -> np.ndarray:
    """Ticks on the price grid, built field by field (no protocol code involved)."""
    t = np.zeros(n, TICK_DTYPE)
    for i in range(n):
        kind = rng.choice(KINDS)
        seg = SEG_IDX if kind.startswith("index") else rng.choice(TRADABLE_SEGS)
        div = DIVISOR.get(seg, 100.0)

        def px(div=div) -> float:
            return rng.randint(-(2**31), 2**31 - 1) / div

        token = make_token(rng, seg)
        row = t[i : i + 1]
        row["instrument_token"] = token
        row["tradable"] = seg != SEG_IDX
        row["packet_length"] = KIND_LEN[kind]
        row["mode"] = {"ltp": 1, "quote": 2, "full": 3, "index_quote": 2, "index_full": 3}[kind]
        row["last_price"] = px()
        if kind == "ltp":
            continue
        for f in ("open", "high", "low"):
            row[f] = px()
        row["close"] = 0.0 if rng.random() < 0.1 else px()
        if kind == "index_full":
            row["exchange_timestamp"] = rng.getrandbits(32)
        if kind in ("quote", "full"):
            row["average_traded_price"] = px()
            for f in (
                "last_traded_quantity",
                "volume_traded",
                "total_buy_quantity",
                "total_sell_quantity",
            ):
                row[f] = rng.getrandbits(32)
        if kind == "full":
            for f in ("last_trade_time", "oi", "oi_day_high", "oi_day_low", "exchange_timestamp"):
                row[f] = rng.getrandbits(32)
            for side in ("buy", "sell"):
                row[f"depth_{side}_price"] = [px() for _ in range(5)]
                row[f"depth_{side}_quantity"] = [rng.getrandbits(32) for _ in range(5)]
                row[f"depth_{side}_orders"] = [rng.getrandbits(16) for _ in range(5)]
    lp, close = t["last_price"], t["close"]
    with np.errstate(divide="ignore", invalid="ignore"):
        t["change"] = np.where(close != 0, (lp - close) * 100 / close, 0.0)
    t["change"][t["mode"] == MODE_LTP] = 0.0
    return t


def test_decode_encode_ticks_round_trip() -> None:
    rng = random.Random(99)
    for _ in range(20):
        ticks = _random_ticks(rng, rng.randint(1, 150))
        back = decode_frame(encode_frame(ticks))
        assert back.dtype == TICK_DTYPE
        for name in TICK_DTYPE.names or ():
            assert np.array_equal(back[name], ticks[name]), name


def test_encode_rounds_to_the_price_grid_and_rejects_unencodable() -> None:
    t = np.zeros(1, TICK_DTYPE)
    t["instrument_token"] = (5 << 8) | SEG_NSE
    t["mode"] = MODE_LTP
    t["last_price"] = 100.004  # -> 10000 paise
    assert encode_frame(t) == struct.pack(">HHIi", 1, 8, (5 << 8) | SEG_NSE, 10000)
    t["last_price"] = 100.006
    assert encode_frame(t)[-4:] == struct.pack(">i", 10001)
    for field, value in (("last_price", 3e7), ("last_price", float("nan")), ("mode", 0)):
        bad = t.copy()
        bad[field] = value
        with pytest.raises(ValueError):
            encode_frame(bad)
    q = t.copy()
    q["mode"] = MODE_QUOTE
    q["volume_traded"] = -1
    with pytest.raises(ValueError):
        encode_frame(q)
    with pytest.raises(ValueError):
        encode_frame(np.zeros(70_000, TICK_DTYPE))
    assert encode_frame(np.zeros(0, TICK_DTYPE)) == b"\x00\x00"


# --------------------------------------------------------------------------- fixtures


def _fixture_json(name: str) -> dict:
    return normalise_fields(json.loads((FIXTURES / name).read_text()))


def _fixture_body(name: str) -> bytes:
    return base64.b64decode((FIXTURES / name).read_text())


@pytest.mark.parametrize("stem", ["ticker_full", "ticker_quote"])
def test_fixture_packets_decode_to_fixture_json(stem: str) -> None:
    expected = _fixture_json(f"{stem}.json")
    ticks = decode_packet(_fixture_body(f"{stem}.packet"))
    assert len(ticks) == 1
    got = ticks_to_dicts(ticks)[0]
    # The kiteconnect-mocks JSON's "change" (5.9 for both) is the absolute change of the
    # full tick copied into the quote mock; Kite's tick "change" is percent vs close.
    exp_change = expected.pop("change")
    assert exp_change == pytest.approx(1573.7 - 1567.8)
    lp, close = got["last_price"], got["ohlc"]["close"]
    assert got.pop("change") == pytest.approx((lp - close) / close * 100)
    for key in ("last_trade_time", "exchange_timestamp"):
        if key in expected:
            assert got[key].isoformat() == expected[key]
            assert got[key].utcoffset() == IST_OFFSET
            expected[key] = dt.datetime.fromisoformat(expected[key])
    assert got == expected
    if stem == "ticker_full":
        assert [lvl["orders"] for lvl in got["depth"]["buy"]] == [1, 2, 1, 7, 1]
        assert [lvl["orders"] for lvl in got["depth"]["sell"]] == [3, 3, 3, 2, 5]
        assert ticks["exchange_timestamp"][0] == int(
            dt.datetime(2021, 7, 5, 5, 11, 27, tzinfo=UTC).timestamp()
        )


def test_fixture_ltp_via_encode() -> None:
    expected = _fixture_json("ticker_ltp.json")
    t = np.zeros(1, TICK_DTYPE)
    t["instrument_token"] = expected["instrument_token"]
    t["mode"] = MODE_CODES[expected["mode"]]
    t["last_price"] = expected["last_price"]
    frame = encode_frame(t)
    assert frame == struct.pack(">HHIi", 1, 8, 408065, 157315)
    assert ticks_to_dicts(decode_frame(frame)) == [expected]


def test_field_aliases_config() -> None:
    aliases = load_field_aliases()
    assert aliases["volume_traded"] == ("volume",)
    assert aliases["exchange_timestamp"] == ("timestamp",)
    assert normalise_fields({"volume": 3, "last_price": 1.0}) == {
        "volume_traded": 3,
        "last_price": 1.0,
    }
    with pytest.raises(ValueError):
        normalise_fields({"volume": 3, "volume_traded": 4})


# --------------------------------------------------------------------------- malformed input


def test_heartbeat_and_empty() -> None:
    assert is_heartbeat(b"\x00") and not is_heartbeat(b"\x00\x00")
    hb = decode_frame(b"\x00")
    assert hb.dtype == TICK_DTYPE and hb.size == 0
    assert decode_frame(b"\x00\x00").size == 0
    with pytest.raises(MalformedFrame) as e:
        decode_frame(b"")
    assert e.value.reason == "empty"


def test_bytes_like_inputs_accepted() -> None:
    frame = make_frame([make_packet(random.Random(1), "quote", (9 << 8) | SEG_NFO)])
    a = decode_frame(frame)
    variants: list[BytesLike] = [bytearray(frame), memoryview(frame)]
    for variant in variants:
        assert decode_frame(variant).tobytes() == a.tobytes()


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\x00\x01\x00\x08\x00\x00\x00\x01\x00\x00\x00", "truncated packet"),
        (b"\x00\x02\x00\x08\x00\x00\x00\x01\x00\x00\x00\x05", "count mismatch"),
        (b"\x00\x02\x00\x08\x00\x00\x00\x01\x00\x00\x00\x05\x00", "truncated header"),
        (b"\x00\x01\x00\x07\x00\x00\x00\x01\x00\x00\x00", "unknown packet length"),
        (b"\x00\x01\x00\x08\x00\x00\x00\x01\x00\x00\x00\x05\xff", "trailing bytes"),
    ],
)
def test_malformed_reasons(frame: bytes, reason: str) -> None:
    with pytest.raises(MalformedFrame) as e:
        decode_frame(frame)
    assert e.value.reason == reason
    with pytest.raises(MalformedFrame):
        packet_spans(frame)


def test_decode_packet_rejects_unknown_length() -> None:
    with pytest.raises(MalformedFrame) as e:
        decode_packet(b"\x00" * 45)
    assert e.value.reason == "unknown packet length"


def test_parse_text_message() -> None:
    order = parse_text_message('{"type": "order", "data": {"order_id": "1", "status": "COMPLETE"}}')
    assert order["type"] == "order" and order["data"]["status"] == "COMPLETE"
    assert parse_text_message(b'{"type": "error", "data": "bad token"}')["data"] == "bad token"
    assert parse_text_message('{"type":"message","data":"hi"}')["type"] == "message"
    for bad, reason in (
        ("{nope", "bad json"),
        ("[1, 2]", "not an object"),
        (b"\xff\xfe", "bad json"),
    ):
        with pytest.raises(MalformedFrame) as e:
            parse_text_message(bad)
        assert e.value.reason == reason


# --------------------------------------------------------------------------- properties

_SEED = st.integers(min_value=0, max_value=2**32 - 1)
_HSET = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_frame(seed: int, max_packets: int = 30) -> tuple[bytes, list[bytes]]:
    rng = random.Random(seed)
    packets = [random_packet(rng) for _ in range(rng.randint(0, max_packets))]
    return make_frame(packets), packets


@_HSET
@given(st.binary(max_size=600))
def test_arbitrary_bytes_decode_or_malformed(data: bytes) -> None:
    try:
        out = decode_frame(data)
    except MalformedFrame:
        return
    assert isinstance(out, np.ndarray) and out.dtype == TICK_DTYPE


@st.composite
def _almost_frames(draw) -> bytes:
    """Frames with plausible headers whose declared lengths and bodies may disagree."""
    count = draw(st.integers(0, 6))
    parts = [struct.pack(">H", count + draw(st.sampled_from([0, 0, 0, 1, -1 if count else 0])))]
    for _ in range(count):
        plen = draw(st.sampled_from([8, 28, 32, 44, 184, 0, 3, 43, 185]))
        body = draw(st.binary(min_size=max(plen - 2, 0), max_size=plen + 2))
        parts.append(struct.pack(">H", plen) + body)
    return b"".join(parts) + draw(st.binary(max_size=3))


@_HSET
@given(_almost_frames())
def test_almost_valid_frames_decode_or_malformed(data: bytes) -> None:
    try:
        out = decode_frame(data)
    except MalformedFrame:
        return
    assert out.dtype == TICK_DTYPE
    assert out.size == struct.unpack(">H", data[:2])[0]


@_HSET
@given(_SEED, st.data())
def test_damaged_frames_raise_malformed(seed: int, data: st.DataObject) -> None:
    frame, packets = _valid_frame(seed)
    ticks = decode_frame(frame)
    assert ticks.size == len(packets)
    assert ticks["packet_length"].tolist() == [len(p) for p in packets]
    # truncated (a 1-byte message is by definition a heartbeat, so skip that cut)
    cut = data.draw(st.integers(0, len(frame) - 1).filter(lambda c: c != 1), label="cut")
    with pytest.raises(MalformedFrame):
        decode_frame(frame[:cut])
    # extended
    extra = data.draw(st.binary(min_size=1, max_size=50), label="extra")
    with pytest.raises(MalformedFrame) as e:
        decode_frame(frame + extra)
    assert e.value.reason == "trailing bytes"
    # wrong count
    wrong = data.draw(st.integers(0, 0xFFFF).filter(lambda c: c != len(packets)), label="count")
    with pytest.raises(MalformedFrame):
        decode_frame(struct.pack(">H", wrong) + frame[2:])


def test_extended_frame_reason_is_trailing_bytes() -> None:
    frame, _ = _valid_frame(3)
    with pytest.raises(MalformedFrame) as e:
        decode_frame(frame + b"\x00\x08")
    assert e.value.reason == "trailing bytes"


@_HSET
@given(_SEED, st.data())
def test_filter_frame_keeps_subscribed_tokens_truncated(seed: int, data: st.DataObject) -> None:
    frame, packets = _valid_frame(seed)
    tokens = [struct.unpack(">I", p[:4])[0] for p in packets]
    chosen = data.draw(st.lists(st.sampled_from(tokens), unique=True) if tokens else st.just([]))
    modes = {tok: data.draw(st.sampled_from([1, 2, 3])) for tok in chosen}
    modes[0xDEAD09] = 3  # subscribed but absent from the frame
    out = filter_frame(frame, modes)

    family = {8: {1: 8, 2: 8, 3: 8}, 28: {1: 8, 2: 28, 3: 32}, 32: {1: 8, 2: 28, 3: 32}}
    expected = []
    for tok, body in zip(tokens, packets, strict=True):
        if tok in modes:
            target = family.get(len(body), {1: 8, 2: 44, 3: 184})[modes[tok]]
            expected.append(body[: min(len(body), target)])
    if not expected:
        assert out is None
        return
    assert out == make_frame(expected)
    offsets, lengths, toks = packet_spans(out)
    assert [
        out[o : o + n] for o, n in zip(offsets.tolist(), lengths.tolist(), strict=True)
    ] == expected
    assert toks.tolist() == [struct.unpack(">I", b[:4])[0] for b in expected]
    assert lengths.tolist() == [len(b) for b in expected]
    # the truncated packets decode to the same leading fields
    kept = decode_frame(out)
    assert np.array_equal(kept["last_price"], [decode_packet(b)[0]["last_price"] for b in expected])


def test_filter_frame_heartbeat_and_bad_mode() -> None:
    assert filter_frame(b"\x00", {1: 3}) == b"\x00"
    frame = make_frame([make_packet(random.Random(5), "full", (3 << 8) | SEG_NSE)])
    assert filter_frame(frame, {}) is None
    with pytest.raises(ValueError):
        filter_frame(frame, {(3 << 8) | SEG_NSE: 7})
    with pytest.raises(MalformedFrame):
        filter_frame(frame[:-1], {(3 << 8) | SEG_NSE: 3})


# --------------------------------------------------------------------------- CLI


def _cli_app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(kite_app, name="kite")
    return app


def test_cli_decode_fixture_base64_body() -> None:
    result = CliRunner().invoke(
        _cli_app(), ["kite", "decode", "--base64", "--body", str(FIXTURES / "ticker_full.packet")]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    tick = json.loads(lines[0])
    assert (
        tick["instrument_token"] == 408065 and tick["mode"] == "full" and tick["tradable"] is True
    )
    assert tick["last_price"] == 1573.7
    assert tick["volume_traded"] == 1192471
    assert tick["average_traded_price"] == 1570.37
    assert tick["ohlc"] == {"open": 1569.15, "high": 1575.0, "low": 1561.05, "close": 1567.8}
    assert tick["exchange_timestamp"] == "2021-07-05T10:41:27+05:30"
    assert tick["last_trade_time"] == "2021-07-05T10:41:27+05:30"
    assert tick["depth"]["sell"][4] == {"quantity": 724, "price": 1573.95, "orders": 5}


def test_cli_decode_raw_frame_and_errors(tmp_path: Path) -> None:
    rng = random.Random(11)
    packets = [make_packet(rng, "ltp", make_token(rng, SEG_NFO)) for _ in range(3)]
    raw = tmp_path / "frame.bin"
    raw.write_bytes(make_frame(packets))
    result = CliRunner().invoke(_cli_app(), ["kite", "decode", str(raw)])
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["instrument_token"] for r in rows] == [struct.unpack(">I", p[:4])[0] for p in packets]
    assert all(set(r) == {"tradable", "mode", "instrument_token", "last_price"} for r in rows)

    bad = tmp_path / "bad.bin"
    bad.write_bytes(make_frame(packets)[:-1])
    result = CliRunner().invoke(_cli_app(), ["kite", "decode", str(bad)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "truncated" in result.stderr

    result = CliRunner().invoke(_cli_app(), ["kite", "decode", "--base64", str(bad)])
    assert result.exit_code == 1

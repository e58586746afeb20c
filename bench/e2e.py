"""End-to-end benchmark: N instruments (9,000) through the whole scanner into Redis.

The session is the bundled real 2022-11-11 session (:func:`aion.replay.builder.build_session`
on ``aion/data/intraday_1min_2022-11-11``) replicated to N instruments by
:func:`aion.replay.replicate.replicate_session` (distinct tokens, deterministic price and
volume factors), restricted to an IST window. Everything runs as ``aion scan`` does: the
default ``config/aion.yaml`` and ``config/patterns.yaml`` (every enabled detector), a private
redis-server, the Parquet archive, the feed client on real WebSockets (3 connections of
3,000 tokens).

Two modes, each meant to run in a fresh process (``python -m bench.e2e MODE ...``) so its
peak RSS is its own:

* ``max``: :class:`aion.app.Scanner` replays the session through its in-process loopback
  server as fast as possible. Ticks/s = ticks / wall seconds from ``start()`` until the
  session is complete and everything is flushed to Redis (``stop()`` returned);
  ``streaming_ticks_per_s`` = ticks / seconds from the start of the first compute step to the
  end of the last (start-up and the final flush excluded). The compute steps are timed
  too: ``tick_path_ticks_per_s`` is ticks / compute-thread seconds outside the closed-bar
  work (decode, validation, volume, bars, latest state).
* ``live``: a replay server in a child process (``aion replay serve``) sends the session on
  a schedule giving every instrument 2 ticks per wall second, the first ``burst_s`` seconds
  at 5 times that (the opening burst); the scanner connects with ``--ws-url``. Measured:
  frame receipt (the feed thread's ``recv_ns``) to the end of its compute step, for every
  frame; frame receipt to alert in the stream: for each alert announced on the pub/sub
  channel (the store announces an alert right after the stream accepted it), the wall time
  of the announcement minus the receipt of the first frame whose exchange time reached the
  alert's bar end (the frame that closed the bar), over all three connections.

Both report per-thread CPU seconds (``/proc/self/task/<tid>/stat``, sampled every 0.1 s while
the scan runs), process CPU, peak RSS (``VmRSS`` sampled every 0.1 s from ``start()`` until
``stop()`` returned: the scanner's, not the session set-up before it; the process's lifetime
peak from ``getrusage`` is ``process_peak_rss_mb``), queue drops and the scan summary.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import redis

from aion.app import Scanner, ScanOptions
from aion.config import load_config
from aion.kite.wire import MAX_TOKENS_PER_CONNECTION
from aion.pipeline.compute import ComputeEngine
from aion.replay.session_file import SessionWriter, iter_frames, open_session
from aion.store import keys

BARS_DIR = Path(__file__).resolve().parents[1] / "aion" / "data" / "intraday_1min_2022-11-11"
DATE = "2022-11-11"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def build_session(
    work: Path, n_instruments: int, window: str, seed: int = 0, ticks_per_minute: int = 4
) -> Path:
    """The replicated session file under ``work`` (built once, reused when present).

    ``ticks_per_minute``: ticks per instrument per regular minute (4: the bar's open,
    extremes and close; 60-120: Kite's full-mode density of 1-2 ticks/s,
    :func:`aion.replay.builder.build_session`).
    """
    from aion.replay.builder import build_session as build_base
    from aion.replay.replicate import replicate_session

    tag = f"{n_instruments}-{window.replace(':', '')}-k{ticks_per_minute}-s{seed}"
    out = work / f"replicated-{tag}.session"
    if out.exists():
        return out
    base = work / f"base-2022-11-11-k{ticks_per_minute}.session.gz"
    if not base.exists():
        build_base([BARS_DIR], DATE, base, ticks_per_minute=ticks_per_minute)
    lo, hi = window.split("-")
    tmp = out.with_suffix(".tmp")
    replicate_session(base, n_instruments, tmp, window=(lo, hi), seed=seed, compress=False)
    tmp.replace(out)
    return out


def live_session(src: Path, ticks_per_s: float, burst: float, burst_s: float) -> tuple[Path, float]:
    """Rewrite the send schedule of ``src`` for the live test; returns (file, speed).

    ``speed`` (session seconds per wall second) gives each instrument ``ticks_per_s`` ticks per
    wall second on average; the schedule of the first ``burst_s`` wall seconds is compressed
    ``burst`` times (the opening burst). Exchange timestamps inside the frames are untouched.
    """
    s = open_session(src)  # frames stay on disk: this process is the measured scanner
    n_inst = len(s.header["instruments"])
    ts = s.ts_ns.astype(np.int64)
    ticks = sum(int.from_bytes(f[:2], "big") for _t, f in iter_frames(src) if len(f) >= 2)
    span_s = (int(ts[-1]) - int(ts[0])) / 1e9
    speed = ticks_per_s / (ticks / n_inst / span_s)
    t0 = int(ts[0])
    cut = t0 + int(burst * speed * burst_s * 1e9)  # session span sent during the burst
    new = np.where(ts < cut, t0 + (ts - t0) // int(burst), 0)
    new = np.where(ts >= cut, t0 + (cut - t0) // int(burst) + (ts - cut), new)
    out = src.with_name(src.stem + f"-live-b{burst:g}x{burst_s:g}.session")
    hdr = {k: v for k, v in s.header.items() if k not in ("format", "version")}
    hdr["start_ns"] = t0
    with SessionWriter(out, hdr, compress=False) as w:
        for t, (_old, frame) in zip(new.tolist(), iter_frames(src), strict=True):
            w.write(int(t), frame)
    return out, speed


def _thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) per live thread, by thread name."""
    out: dict[str, float] = {}
    for th in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{th.native_id}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[th.name] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return out


def _frame_exchange_ts(frame: bytes) -> int:
    """Exchange timestamp (epoch s) of the first full/index-full packet of a frame, else 0."""
    if len(frame) < 4:
        return 0
    n = int.from_bytes(frame[:2], "big")
    off = 2
    for _ in range(n):
        ln = int.from_bytes(frame[off : off + 2], "big")
        pkt = off + 2
        if ln == 184:
            return int.from_bytes(frame[pkt + 60 : pkt + 64], "big")
        if ln == 32:
            return int.from_bytes(frame[pkt + 28 : pkt + 32], "big")
        off = pkt + ln
    return 0


def _pct(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    a = np.asarray(values) / 1e6
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "max_ms": round(float(a.max()), 3),
    }


def _scan(scanner: Scanner, timeout_s: float) -> tuple[dict[str, Any], dict[str, float], float]:
    """Start, wait for the end condition, stop; returns (summary, thread CPU s, wall s).

    A sampler thread reads every thread's CPU time every 0.1 s until ``stop()`` returned (a
    thread's last sample is at most 0.1 s before it ended).
    """
    cpu: dict[str, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            cpu.update(_thread_cpu())
            rss = _rss_mb()
            cpu["__rss_mb"] = max(cpu.get("__rss_mb", 0.0), rss)

    sampler = threading.Thread(target=sample, name="bench-sampler", daemon=True)
    t0 = time.perf_counter()
    scanner.start()
    sampler.start()
    deadline = time.monotonic() + timeout_s
    while not scanner.should_stop() and time.monotonic() < deadline:
        time.sleep(0.1)
    summary = scanner.stop().values
    wall = time.perf_counter() - t0
    cpu.update(_thread_cpu())
    done.set()
    sampler.join()
    cpu.pop("bench-sampler", None)
    return summary, cpu, wall


def _rss_mb() -> float:
    """This process's resident set now (``VmRSS``), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _resources(cpu: dict[str, float], wall: float) -> dict[str, Any]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    scan_peak = cpu.pop("__rss_mb", 0.0)
    busy = {k: v for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v >= 0.01}
    return {
        "wall_s": round(wall, 3),
        "process_cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
        # peak of VmRSS sampled every 0.1 s from start() until stop() returned: the scan's,
        # not the benchmark's own set-up (session building) before it
        "peak_rss_mb": round(scan_peak, 1),
        "process_peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
        "thread_cpu_s": {k: round(v, 2) for k, v in busy.items()},
        "thread_cpu_share_of_wall": {k: round(v / wall, 3) for k, v in busy.items()},
    }


def _profiled_compute() -> tuple[cProfile.Profile, Any]:
    """Profile every compute step (``ComputeEngine.process``); returns (profile, original)."""
    prof = cProfile.Profile()
    process = ComputeEngine.process

    calls = [0]

    def profiled(self: ComputeEngine, frames: list[tuple[int, str, bytes]]) -> None:
        calls[0] += 1
        if calls[0] == 1:  # the first step compiles the Numba kernels: not the steady state
            return process(self, frames)
        return prof.runcall(process, self, frames)

    ComputeEngine.process = profiled  # type: ignore[method-assign]
    return prof, process


def hot_spots(prof: cProfile.Profile, top: int = 15, by: str = "own") -> list[dict[str, Any]]:
    """The ``top`` functions by own time (``by="own"``), or aion's own functions by cumulative
    time (``by="cum"``): calls, own and cumulative seconds, own share of the profiled time."""
    st = pstats.Stats(prof)
    entries = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in entries.values()) or 1.0
    root = str(Path(__file__).resolve().parents[1]) + os.sep
    if by == "own":
        rows = sorted(entries.items(), key=lambda kv: -kv[1][2])[:top]
    else:
        mine = [kv for kv in entries.items() if kv[0][0].startswith(root + "aion")]
        rows = sorted(mine, key=lambda kv: -kv[1][3])[:top]
    out = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in rows:
        where = f"{file.replace(root, '')}:{line}" if not file.startswith("~") else "builtin"
        out.append(
            {
                "function": f"{func} ({where})",
                "calls": nc,
                "own_s": round(tt, 3),
                "cum_s": round(ct, 3),
                "own_share": round(tt / total, 3),
            }
        )
    return out


def run_max(
    session: Path, data_dir: Path, timeout_s: float = 600.0, profile: bool = False
) -> dict[str, Any]:
    """Replay ``session`` at max speed through the full scanner (see the module docstring).

    With ``profile`` the compute steps run under cProfile (slower: for hot spots only).
    """
    os.environ["AION_DATA_DIR"] = str(data_dir)
    cfg = load_config()
    scanner = Scanner(cfg, ScanOptions(replay=session, speed=None, patterns="all"))
    prof, original = _profiled_compute() if profile else (None, None)
    # compute-thread seconds in compute steps, and in their closed-bar work (finish() at
    # shutdown closes the forming bars on the main thread: not counted)
    spent = {"process": 0.0, "bars": 0.0}
    process, on_bars = ComputeEngine.process, ComputeEngine._on_bars
    compute_thread: list[int] = []

    span: list[float] = []  # start of the first compute step, end of the latest one

    def timed_process(self: ComputeEngine, frames: list[tuple[int, str, bytes]]) -> None:
        compute_thread[:] = [threading.get_ident()]
        t0 = time.perf_counter()
        try:
            return process(self, frames)
        finally:
            t1 = time.perf_counter()
            spent["process"] += t1 - t0
            span[:] = [span[0] if span else t0, t1]

    def timed_bars(self: ComputeEngine, closed: np.ndarray, batch: Any) -> None:
        t0 = time.perf_counter()
        try:
            on_bars(self, closed, batch)
        finally:
            if compute_thread == [threading.get_ident()]:
                spent["bars"] += time.perf_counter() - t0

    ComputeEngine.process = timed_process  # type: ignore[method-assign]
    ComputeEngine._on_bars = timed_bars  # type: ignore[method-assign]
    try:
        summary, cpu, wall = _scan(scanner, timeout_s)
    finally:
        ComputeEngine.process, ComputeEngine._on_bars = process, on_bars  # type: ignore[method-assign]
    tick_path_s = max(spent["process"] - spent["bars"], 1e-9)
    if prof is not None:
        ComputeEngine.process = original  # type: ignore[method-assign,assignment]
        return {
            "mode": "profile",
            "ticks": summary["ticks"],
            "bars": summary["bars"],
            "wall_s": round(wall, 3),
            "hot_spots": hot_spots(prof),
            "hot_spots_cumulative": hot_spots(prof, 20, by="cum"),
        }
    return {
        "mode": "max",
        "instruments": summary["instruments"],
        "ticks": summary["ticks"],
        "bars": summary["bars"],
        "alerts": summary["alerts"],
        "ticks_per_s": round(summary["ticks"] / wall),
        "bars_per_s": round(summary["bars"] / wall),
        # streaming: from the first compute step to the last (start-up and stop excluded)
        "streaming_s": round(span[1] - span[0], 3) if span else None,
        "streaming_ticks_per_s": round(summary["ticks"] / (span[1] - span[0])) if span else None,
        "compute_s": round(spent["process"], 3),
        "bar_close_s": round(spent["bars"], 3),
        "tick_path_ticks_per_s": round(summary["ticks"] / tick_path_s),
        "queue_drops": summary["queue_drops"],
        "redis_flushed": summary["redis_flushed"],
        "redis_commands": summary["redis_commands"],
        "stop_reason": summary["stop_reason"],
        **_resources(cpu, wall),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_live(
    session: Path,
    data_dir: Path,
    ticks_per_s: float = 2.0,
    burst: float = 5.0,
    burst_s: float = 10.0,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """The live-rate test (see the module docstring); the server runs in a child process."""
    live, speed = live_session(session, ticks_per_s, burst, burst_s)
    sess = open_session(live)
    symbols = [
        f"{r['exchange']}:{r['tradingsymbol']}" for r in sess.header["instruments"]
    ]  # every instrument of the session, in the default mode
    n_frames = len(sess.frames)
    span_s = (int(sess.ts_ns[-1]) - int(sess.ts_ns[0])) / 1e9 / speed
    del sess
    port = _free_port()
    aion = Path(sys.executable).with_name("aion")
    server = subprocess.Popen(
        [
            str(aion),
            "replay",
            "serve",
            str(live),
            "--port",
            str(port),
            "--speed",
            f"{speed:g}",
            "--wait-for-client",
            "--start-clients",
            str(-(-len(symbols) // MAX_TOKENS_PER_CONNECTION)),  # the scanner's connections
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):  # wait until it listens
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        os.environ["AION_DATA_DIR"] = str(data_dir)
        cfg = load_config()
        opts = ScanOptions(
            ws_url=f"ws://127.0.0.1:{port}",
            symbols=symbols,
            instruments=[live],
            duration_s=span_s + 5.0,
            restore=False,
            patterns="all",  # every detector: the shipped registry runs none (issue 23)
        )
        scanner = Scanner(cfg, opts)
        received: list[tuple[int, int]] = []  # (recv_ns, exchange ts s) per frame
        put = scanner.raw.put

        def recording_put(item: Any) -> bool:
            received.append((item[0], _frame_exchange_ts(item[2])))
            return put(item)

        scanner.raw.put = recording_put  # type: ignore[method-assign]
        processed: list[int] = []  # frame receipt -> end of its compute step, ns
        process = ComputeEngine.process

        def timed_process(self: ComputeEngine, frames: list[tuple[int, str, bytes]]) -> None:
            process(self, frames)
            done = time.time_ns()
            processed.extend(done - f[0] for f in frames)

        ComputeEngine.process = timed_process  # type: ignore[method-assign]
        announced: list[tuple[int, str]] = []
        stop_listen = threading.Event()

        def listen() -> None:
            assert scanner.redis is not None
            pool = scanner.redis.connection_pool  # its own pool: stop() closes the scanner's
            own = redis.Redis(
                connection_pool=redis.ConnectionPool(
                    connection_class=pool.connection_class, **pool.connection_kwargs
                )
            )
            ps = own.pubsub(ignore_subscribe_messages=True)
            ps.subscribe(keys.alerts_channel())
            while not stop_listen.is_set():
                msg = ps.get_message(timeout=0.05)
                if msg is not None:
                    announced.append((time.time_ns(), json.loads(msg["data"])["stream_id"]))
            ps.close()
            own.close()

        listener: threading.Thread | None = None
        orig_start = scanner._start

        def start_with_listener() -> None:
            nonlocal listener
            orig_start()
            listener = threading.Thread(target=listen, name="bench-listener", daemon=True)
            listener.start()

        scanner._start = start_with_listener  # type: ignore[method-assign]
        summary, cpu, wall = _scan(scanner, timeout_s)
        stop_listen.set()
        if listener is not None:
            listener.join()
        ComputeEngine.process = process  # type: ignore[method-assign]
    finally:
        server.terminate()
        server.wait(10)
    recv = np.array(sorted(received), np.int64).reshape(-1, 2)
    # earliest receipt of a frame at or past each exchange second (frames arrive in order)
    order = np.argsort(recv[:, 1], kind="stable")
    ts_sorted = recv[order, 1]
    first_recv = np.minimum.accumulate(recv[order, 0][::-1])[::-1]
    alert_lat = []
    for wall_ns, stream_id in announced:
        bar_end_s = int(stream_id.split("-")[0]) // 1000
        i = int(np.searchsorted(ts_sorted, bar_end_s))
        if i < ts_sorted.shape[0]:
            alert_lat.append(float(wall_ns - first_recv[i]))
    if os.environ.get("AION_BENCH_DEBUG"):
        print(json.dumps({"announced": announced[:50], "recv": recv[:400].tolist()}))
    return {
        "mode": "live",
        "instruments": summary["instruments"],
        "ticks_per_s_per_instrument": ticks_per_s,
        "burst": burst,
        "burst_s": burst_s,
        "replay_speed": round(speed, 2),
        "session_frames": n_frames,
        "frames_received": int(recv.shape[0]),
        "ticks": summary["ticks"],
        "bars": summary["bars"],
        "alerts": summary["alerts"],
        "queue_drops": summary["queue_drops"],
        "raw_queue_high_water": summary["raw_queue_high_water"],
        "feed_gaps": summary.get("feed_gaps"),
        "frame_to_processed": _pct(processed),
        "frame_to_alert_in_stream": _pct(alert_lat),
        **_resources(cpu, wall),
    }


def main() -> None:
    """CLI entry: ``python -m bench.e2e {max,live} --work DIR`` prints the result as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("max", "live", "profile"))
    ap.add_argument("--work", type=Path, required=True, help="folder for sessions and data")
    ap.add_argument("--instruments", type=int, default=9000)
    ap.add_argument("--window", default="09:15-09:25", help="IST HH:MM-HH:MM of the session")
    ap.add_argument("--burst-s", type=float, default=10.0)
    ap.add_argument(
        "--ticks-per-minute",
        type=int,
        default=4,
        help="ticks per instrument per minute: 4 (OHLC path) or Kite's 60-120 (1-2 ticks/s)",
    )
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    session = build_session(a.work, a.instruments, a.window, ticks_per_minute=a.ticks_per_minute)
    data = a.work / f"data-{a.mode}"
    shutil.rmtree(data, ignore_errors=True)  # a fresh private Redis and archive per run
    if a.mode == "live":
        res = run_live(session, data, burst_s=a.burst_s)
    else:
        res = run_max(session, data, profile=a.mode == "profile")
    res["window_ist"] = a.window
    res["ticks_per_minute"] = a.ticks_per_minute
    print(json.dumps(res))


if __name__ == "__main__":
    main()

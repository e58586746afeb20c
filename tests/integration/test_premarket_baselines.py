"""Acceptance: `aion premarket refresh-averages` prepares the time-of-day baselines and
`aion scan` loads them (no SciPy interpolation, no learning); a stale file is re-learnt with
one warning, bad inputs stop the command with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "aion" / "data"
CONFIG = ROOT / "config"
HINT = "run aion premarket refresh-averages"
# what a scan builds its curves with, plus everything `aion scan` imports
PROBE = """
import json, sys
from pathlib import Path
import aion.app, aion.cli.main
from aion.config import load_config
from aion.volume.analytics import baselines_for
cfg = load_config(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
bs = baselines_for(cfg)
print(json.dumps({"interpolate": "scipy.interpolate" in sys.modules, "curves": len(bs.curves),
                  "hdfcbank": bs.get("NSE:HDFCBANK").cum_share.tolist()}))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AION_CONFIG_DIR")}
    env.update(extra)
    return env


def premarket(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aion", "premarket", "refresh-averages", "--no-redis",
         "--as-of", "2022-11-11", *args],
        capture_output=True, text=True, env=_env(AION_DATA_DIR=str(data_dir)), timeout=120,
    )  # fmt: skip


def probe(data_dir: Path, *args: str) -> tuple[dict, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True, text=True, env=_env(AION_DATA_DIR=str(data_dir)), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), [ln for ln in proc.stderr.splitlines() if ln.strip()]


def test_scan_loads_prepared_baselines_without_scipy_interpolation(
    session_2022_11_11: Path, redis_url: str, data_dir: Path, tmp_path: Path
) -> None:
    proc = premarket(data_dir)
    assert proc.returncode == 0, proc.stderr
    target = data_dir / "premarket" / "baselines.npz"
    assert (
        f"baselines: 48 instruments from {DATA / 'hourly_kite'} (others use the market curve); "
        f"file: {target}" in proc.stdout
    )
    # a real scan of the 2022-11-11 session; -X importtime lists every module it imports.
    # The archive is off: its end-of-scan validation imports scipy.stats (and with it
    # scipy.interpolate) whatever the baselines.
    no_archive = tmp_path / "no-archive"
    no_archive.mkdir()
    for name in ("aion.yaml", "patterns.yaml"):
        text = (CONFIG / name).read_text()
        if name == "aion.yaml":
            assert text.count("\narchive:\n  enabled: true") == 1
            text = text.replace("\narchive:\n  enabled: true", "\narchive:\n  enabled: false")
        (no_archive / name).write_text(text)
    scan = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "aion", "scan", "--replay",
         str(session_2022_11_11), "--speed", "max", "--json", "--no-live",
         "--config", str(no_archive)],
        capture_output=True, text=True, timeout=300,
        env=_env(REDIS_URL=redis_url, AION_DATA_DIR=str(data_dir)),
    )  # fmt: skip
    assert scan.returncode == 0, scan.stderr[-3000:]
    summary = json.loads(scan.stdout.strip().splitlines()[-1])
    assert summary["stop_reason"] == "replayed session complete" and summary["alerts"] > 0
    assert "baselines not prepared" not in scan.stderr
    imported = {ln.split("|")[-1].strip() for ln in scan.stderr.splitlines() if "|" in ln}
    assert "aion.volume.baseline_store" in imported  # the listing is complete ...
    assert not {m for m in imported if m.startswith("scipy.interpolate")}  # ... and has no PCHIP

    # the config asks for other sessions: the file is stale, the curves are learnt (SciPy)
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    (cfg_dir / "aion.yaml").write_text("volume:\n  baseline:\n    sessions: 59\n")
    stale, lines = probe(data_dir, str(cfg_dir))
    assert stale["interpolate"] and stale["curves"] == 48
    assert len(lines) == 1 and HINT in lines[0]
    assert "stale: learnt with sessions 60, the config has 59" in lines[0]
    fresh, lines = probe(data_dir)
    assert not fresh["interpolate"] and not lines
    assert fresh["hdfcbank"] != stale["hdfcbank"]  # 60 vs 59 sessions: another curve

    # a truncated file: one line, then the same curves as the file held, learnt again
    target.write_bytes(target.read_bytes()[:5000])
    relearnt, lines = probe(data_dir)
    assert relearnt["interpolate"] and len(lines) == 1 and "is unreadable" in lines[0]
    assert relearnt["hdfcbank"] == fresh["hdfcbank"]


def test_bad_baseline_inputs_stop_with_one_line(data_dir: Path, tmp_path: Path) -> None:
    proc = premarket(data_dir, "--intraday", str(tmp_path / "nope"))
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "intraday history folder not found" in lines[0]
    assert not (data_dir / "premarket").exists()  # stopped before any work
    bad = tmp_path / "hourly"
    bad.mkdir()
    (bad / "HDFCBANK_60minute_x.csv").write_text("date,vol\n2022-11-10,5\n")
    proc = premarket(data_dir, "--intraday", str(bad))
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "HDFCBANK_60minute_x.csv: not a Kite intraday candle CSV" in lines[0]
    assert not (data_dir / "premarket" / "baselines.npz").exists()
    # --no-baselines: the averages alone
    proc = premarket(data_dir, "--intraday", str(bad), "--no-baselines")
    assert proc.returncode == 0, proc.stderr
    assert "baselines:" not in proc.stdout

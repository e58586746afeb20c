"""`make demo` is quiet (issue 22): installing aion the way the Makefile does prints no warning
that comes from this project (setuptools' licence-table and editable-layout warnings were
fixed at their source: an SPDX licence string, ``editable_mode=compat``), and the demo's
session build prints one line."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WARNING = re.compile(r"warning|deprecat", re.IGNORECASE)
MACHINE_LINES = re.compile(r"^WARNING: (Location '|There was an error checking the latest)")
"""pip's complaints about this machine's own index configuration, not about aion."""


def _makefile_install_args() -> list[str]:
    """The arguments after ``pip install`` of the Makefile's install of aion itself."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        if "pip install" in line and "-e" in line:
            return line.split("pip install", 1)[1].split()
    raise AssertionError("the Makefile has no editable install line")


def test_installing_aion_prints_no_project_warning(tmp_path: Path) -> None:
    venv.create(tmp_path / "v", with_pip=True)
    args = [a.strip("'") for a in _makefile_install_args()]
    args = [str(ROOT) if a.startswith(".[") else a for a in args]  # deps are already here
    proc = subprocess.run(
        [str(tmp_path / "v" / "bin" / "pip"), "install", "--no-deps", *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = (proc.stdout + proc.stderr).splitlines()
    noisy = [ln for ln in lines if WARNING.search(ln) and not MACHINE_LINES.match(ln)]
    assert not noisy, "\n".join(noisy)


def test_the_demo_session_build_prints_one_line(tmp_path: Path) -> None:
    out = tmp_path / "s.session.gz"
    proc = subprocess.run(
        [sys.executable, "-m", "aion", "session", "build", "--bars",
         str(ROOT / "aion" / "data" / "intraday_1min_2022-11-11"), "--date", "2022-11-11",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1 and "32 instruments" in proc.stdout
    assert not WARNING.search(proc.stdout + proc.stderr)

"""``chargeflow simulate`` on a day of the real ACN sessions, run as a user runs it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DATA = ROOT.parent / "shared" / "data"
SESSIONS = DATA / "acn" / "caltech_2019-05_2019-08.csv.gz"

ONE_DAY = (
    "--sessions",
    str(SESSIONS),
    "--site",
    "examples/acn_site.yaml",
    "--start",
    "2019-05-02",
    "--days",
    "1",
)
needs_data = pytest.mark.skipif(
    not SESSIONS.is_file(),
    reason=f"the shared ACN data is not here: missing ../shared/data/acn/{SESSIONS.name}",
)

FIELDS = (
    "sessions",
    "energy_requested_kwh",
    "energy_delivered_kwh",
    "needs_met_pct",
    "grid_import_kwh",
    "peak_import_w",
    "limit_violations",
    "max_overshoot_w",
    "pv_self_consumption_pct",
    "energy_cost",
    "ms_per_step_median",
)


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chargeflow.cli", "simulate", "--data", str(DATA), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )


@needs_data
def test_a_day_of_real_sessions_with_timeline_and_plot(tmp_path: Path) -> None:
    timeline, plot = tmp_path / "t.csv", tmp_path / "p.png"
    out = simulate(*ONE_DAY, "--strategy", "llf", "--json", "--timeline", str(timeline), "--plot", str(plot))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for field in FIELDS:
        assert field in result, field
    assert result["sessions"] > 20
    assert result["limit_violations"] == 0
    assert 0 < result["energy_delivered_kwh"] <= result["energy_requested_kwh"]
    rows = list(csv.DictReader(timeline.open()))
    assert len(rows) == 1440
    assert {"time", "grid_w", "building_w", "pv_w", "ess_w", "ev_w", "granted_w"} <= set(rows[0])
    assert {"transformer_max_phase_a", "transformer_fuse_a", "level3_max_phase_a", "level3_fuse_a"} <= set(
        rows[0]
    )
    assert all(float(r["level3_max_phase_a"]) <= float(r["level3_fuse_a"]) for r in rows)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_data
def test_uncontrolled_charging_on_the_same_day_breaks_the_limit() -> None:
    out = simulate(*ONE_DAY, "--strategy", "uncontrolled", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["limit_violations"] > 0


def test_bad_inputs_get_a_clear_error(tmp_path: Path) -> None:
    missing = simulate("--sessions", str(tmp_path / "none.csv"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    broken = tmp_path / "s.csv"
    broken.write_text("arrival,departure\nyesterday,today\n")
    out = simulate("--sessions", str(broken))
    assert out.returncode == 2
    assert "line 2" in out.stderr
    assert "Traceback" not in out.stderr

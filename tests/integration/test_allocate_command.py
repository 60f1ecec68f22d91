"""The ``chargeflow allocate`` and ``chargeflow bench allocate`` commands, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "step.json"


def chargeflow(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chargeflow.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def test_the_issue_example_gives_the_documented_fields() -> None:
    out = chargeflow("allocate", "--input", str(EXAMPLE))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for field in ("needed_w", "wished_w", "granted_w", "ess_discharge_w", "feasible", "evs"):
        assert field in result
    # One 3-phase EV that takes 16 A, four hours to go: nothing needed yet, it gets all it can take.
    assert result["needed_w"] == 0
    assert result["granted_w"] == result["wished_w"] == 16 * 3 * 230
    assert result["feasible"] is True
    assert result["evs"] == [
        {"id": "cp1", "current_a": 16.0, "power_w": 11040.0, "reason": "ev_max", "need_met": True}
    ]


def test_stdin_input_and_a_tight_grid() -> None:
    data = example()
    data["grid"]["max_import_w"] = 20_000  # 14 kW of building net load: 6 kW left
    data["evs"][0]["departure"] = "2026-01-01T08:30:00Z"  # 8 kWh in 30 min at 11 kW: full power needed
    out = chargeflow("allocate", "--input", "-", stdin=json.dumps(data))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["needed_w"] == 11_040
    assert result["grant_reason"] == "ess_covers_needs"
    assert result["ess_discharge_w"] == pytest.approx(5_040)
    assert result["evs"][0]["current_a"] == 16.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["evs"][0].pop("departure"), "evs[0].departure: Field required"),
        (lambda d: d["evs"][0].update(circuit="attic"), "evs[0].circuit: unknown circuit 'attic'"),
        (lambda d: d["evs"][0].update(wished_wh=10), "wished_wh (10) must be at least needed_wh (8000)"),
        (lambda d: d["circuits"][1].update(max_current_a=0), "circuits[1].max_current_a"),
        (
            lambda d: d.update(strategy="fastest"),
            "strategy: Input should be 'equal', 'edf', 'llf' or 'priority'",
        ),
        (lambda d: d.update(now="2026-01-01T08:00:00"), "now: Input should have timezone info"),
        (lambda d: d["evs"][0].update(phases=4), "evs[0].phases"),
    ],
)
def test_invalid_input_names_the_field_without_a_traceback(change: Any, message: str) -> None:
    data = example()
    change(data)
    out = chargeflow("allocate", "--input", "-", stdin=json.dumps(data))
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    missing = chargeflow("allocate", "--input", str(tmp_path / "none.json"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"now": ')
    out = chargeflow("allocate", "--input", str(broken))
    assert out.returncode == 2
    assert "not valid JSON" in out.stderr
    assert "line 1" in out.stderr


def test_bench_allocate_reports_its_timing_fields() -> None:
    out = chargeflow("bench", "allocate", "--evs", "200", "--steps", "5", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["evs"] == 200
    assert 0 < result["ms_per_step_median"] <= result["ms_per_step_p95"]


def test_demo_prints_every_strategy() -> None:
    out = chargeflow("demo", "--one-step")
    assert out.returncode == 0, out.stderr
    for strategy in ("equal", "edf", "llf", "priority"):
        assert f"strategy {strategy}" in out.stdout


def test_bench_allocate_times_the_mpc_strategy() -> None:
    out = chargeflow("bench", "allocate", "--evs", "40", "--strategy", "mpc", "--steps", "2", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["strategy"] == "mpc"
    assert result["evs"] == 40
    assert result["fallbacks"] <= result["steps"] == 2
    assert 0 < result["ms_per_step_median"] <= result["ms_per_step_p95"]


def test_the_mpc_strategy_on_the_command_line() -> None:
    out = chargeflow("allocate", "--input", str(EXAMPLE), "--strategy", "mpc")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["mpc_fell_back"] is False
    # The lone EV gets all it takes from the plan too.
    assert result["evs"][0]["current_a"] == 16.0
    assert result["evs"][0]["reason"] == "ev_max"

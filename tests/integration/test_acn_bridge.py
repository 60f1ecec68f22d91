"""Our optimiser inside acnportal's simulator, beside acnportal's own algorithms, on real Caltech sessions.

Short windows only (the full month is ``chargeflow bench acn``): they check the bridge, that no algorithm of
ours ever sends pilots over a limit in acnportal's own check, that the optimiser beats EDF where the
transformer binds, and that the offline plan bounds it from above.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "acnportal", reason="acnportal (the 'bench' extra) is not installed: pip install -e '.[bench]'"
)

from chargeflow.bench import acn_bench

DATA = Path(__file__).parents[2].parent / "shared" / "data" / "acn"
EVENTS = DATA / "caltech_2019-03_events_acnsim.json.gz"
SESSIONS = DATA / "caltech_2019-05_2019-08.csv.gz"

needs_data = pytest.mark.skipif(
    not EVENTS.exists(), reason=f"shared ACN data not here: missing ../shared/data/acn/{EVENTS.name}"
)


@pytest.fixture(scope="module")
def first_days() -> list[object]:
    # 4 and 5 March 2019 (Monday, Tuesday): a busy pair of working days.
    first = acn_bench.start_slot(acn_bench.MARCH_2019.replace(day=4))
    return acn_bench.window(acn_bench.evs_of(acn_bench.load_queue(EVENTS)), first, 2 * 288)


@needs_data
def test_mpc_beats_edf_stays_under_the_offline_bound_and_never_violates(first_days: list[object]) -> None:
    records = {r.algorithm: r for r in acn_bench.bench_acn(first_days, [20.0], ("mpc", "offline", "edf"))}
    for r in records.values():
        assert r.violations == 0, r
        assert r.steps > 100
    assert records["mpc"].fallbacks == 0
    assert records["mpc"].energy_delivered_pct > records["edf"].energy_delivered_pct
    assert records["mpc"].energy_delivered_pct <= records["offline"].energy_delivered_pct + 0.01
    assert records["mpc"].peak_kw <= 20.0 * 1.001


@needs_data
def test_taper_and_discrete_pilots_stay_within_limits(first_days: list[object]) -> None:
    records = acn_bench.bench_acn(first_days, [30.0], ("mpc", "uncontrolled"), taper=True, discrete=True)
    mpc, uncontrolled = records
    assert mpc.violations == 0
    assert uncontrolled.violations > 0  # the check can fail: uncontrolled charging ignores the transformer
    assert 0 < mpc.energy_delivered_pct <= 100


@needs_data
def test_the_command_prints_the_documented_records_as_json_and_draws_the_plot(tmp_path: Path) -> None:
    png = tmp_path / "energy.png"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "chargeflow.cli",
            "bench",
            "acn",
            "--events",
            str(EVENTS),
            "--start",
            "2019-03-05",
            "--days",
            "1",
            "--capacities",
            "30",
            "--algorithms",
            "mpc,llf",
            "--json",
            "--plot",
            str(png),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    assert [r["algorithm"] for r in records] == ["mpc", "llf"]
    for r in records:
        assert r["capacity_kw"] == 30.0
        for field in (
            "energy_delivered_pct",
            "demands_fully_met_pct",
            "peak_kw",
            "ms_per_step_median",
            "ms_per_step_p95",
            "violations",
        ):
            assert isinstance(r[field], (int, float))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_data
def test_each_run_reports_the_periods_it_has_simulated(first_days: list[object]) -> None:
    """``bench acn``'s progress bar is fed once a simulated day and at the end of each run."""
    seen: list[tuple[float, str, int, int]] = []
    acn_bench.bench_acn(first_days, [20.0, 30.0], ("uncontrolled",), steps=lambda *a: seen.append(a))
    for capacity in (20.0, 30.0):
        calls = [(done, total) for c, name, done, total in seen if c == capacity and name == "uncontrolled"]
        total = calls[-1][1]
        assert total == max(ev.departure for ev in first_days)  # type: ignore[attr-defined]
        assert calls[-1] == (total, total)
        assert [done for done, _ in calls] == sorted(done for done, _ in calls)
        assert any(0 < done < total for done, _ in calls)  # the bar moves during the run, not only at its end


@pytest.mark.skipif(
    not SESSIONS.exists(), reason=f"shared ACN sessions not here: missing ../shared/data/acn/{SESSIONS.name}"
)
def test_sessions_convert_to_events_at_caltech_stations() -> None:
    from chargeflow.bench.acn_sessions import evs_from_sessions

    evs, origin = evs_from_sessions(SESSIONS)
    assert origin.isoformat() == "2019-05-01T00:00:00-07:00"
    assert len(evs) > 3000
    assert all(ev.departure > ev.arrival >= 0 for ev in evs)
    by_station: dict[str, int] = {}
    for ev in sorted(evs, key=lambda e: e.arrival):
        assert ev.arrival >= by_station.get(ev.station_id, -1)  # one EV per station at a time
        by_station[ev.station_id] = ev.departure


JPL = DATA / "jpl_2019-05_2019-08.csv.gz"


@pytest.mark.skipif(
    not JPL.exists(), reason=f"shared ACN sessions not here: missing ../shared/data/acn/{JPL.name}"
)
def test_jpl_sessions_on_jpl_stations_and_its_two_transformers_are_kept() -> None:
    from chargeflow.bench.acn_sessions import evs_from_sessions

    evs, origin = evs_from_sessions(JPL, "jpl")
    stations = set(acn_bench.network_of("jpl").station_ids)
    assert len(evs) > 3000
    assert {ev.station_id for ev in evs} <= stations
    first = acn_bench.start_slot(origin.replace(day=6), origin)  # Monday 6 May 2019, 6:00 to 14:00
    window = acn_bench.window(evs, first + 72, 96)
    records = {
        r.algorithm: r for r in acn_bench.bench_acn(window, [40.0], ("mpc", "uncontrolled"), site="jpl")
    }
    assert records["mpc"].violations == 0
    assert records["uncontrolled"].violations > 0  # the check can fail on this network too
    assert records["mpc"].energy_delivered_pct > 0


def test_the_arrivals_forecast_error_is_zero_for_a_repeated_day_and_counts_a_miss() -> None:
    from acnportal import acnsim

    def ev(day: int, hour: int, name: str) -> object:
        arrival = day * 288 + hour * 12
        return acnsim.EV(arrival, arrival + 60, 10.0, "CA-303", name, acnsim.Battery(10.0, 0, 6.6))

    monday = acn_bench.MARCH_2019.replace(day=4)
    same = acn_bench.arrival_forecast_errors([ev(0, 8, "a"), ev(1, 8, "b")], monday)
    assert same.energy_kwh.n == 24
    assert same.energy_kwh.mae == 0.0
    assert same.sessions.mae == 0.0
    # Tuesday's EV comes an hour later than Monday's: two hours wrong by one session and 10 kWh each.
    late = acn_bench.arrival_forecast_errors([ev(0, 8, "a"), ev(1, 9, "b")], monday)
    assert late.energy_kwh.mae == 20.0 / 24
    assert late.energy_kwh.bias == 0.0
    assert late.sessions.mae == 2.0 / 24


def test_printed_records_parse_back_for_the_plot() -> None:
    from chargeflow.bench.acn_plot import parse_records

    text = """bench acn: 954 sessions from 2019-03-01, battery ideal, steps continuous
  20.0 kW  mpc          energy  77.38 %  demands met  62.47 %  peak  20.01 kW  median   11.32 ms  p95  216.62 ms  violations 0  fallbacks 0
  30.0 kW  uncontrolled energy  99.88 %  demands met  96.96 %  peak  99.00 kW  median    0.01 ms  p95    0.05 ms  violations 11123  fallbacks 2
"""  # noqa: E501
    mpc, uncontrolled = parse_records(text)
    assert (mpc.capacity_kw, mpc.algorithm, mpc.energy_delivered_pct, mpc.ms_per_step_p95) == (
        20.0,
        "mpc",
        77.38,
        216.62,
    )
    assert (uncontrolled.algorithm, uncontrolled.violations, uncontrolled.fallbacks) == (
        "uncontrolled",
        11123,
        2,
    )


def test_the_plot_adds_the_distance_to_offline_panel_only_where_offline_ran(tmp_path: Path) -> None:
    import matplotlib.image

    from chargeflow.bench.acn_plot import parse_records, plot_energy

    text = """  20.0 kW  mpc          energy  77.86 %  demands met  59.43 %  peak  20.01 kW  median    3.15 ms  p95   15.05 ms  violations 0  fallbacks 0
  20.0 kW  offline      energy  78.45 %  demands met  75.79 %  peak  20.01 kW  median    0.06 ms  p95    0.17 ms  violations 0  fallbacks 0
  20.0 kW  uncontrolled energy  99.88 %  demands met  96.96 %  peak  99.00 kW  median    0.01 ms  p95    0.05 ms  violations 11123  fallbacks 0
  30.0 kW  mpc          energy  92.53 %  demands met  80.29 %  peak  30.02 kW  median    3.06 ms  p95   15.01 ms  violations 0  fallbacks 0
  30.0 kW  offline      energy  92.91 %  demands met  90.57 %  peak  30.02 kW  median    0.07 ms  p95    0.30 ms  violations 0  fallbacks 0
"""  # noqa: E501
    records = parse_records(text)
    with_bound, without = tmp_path / "with.png", tmp_path / "without.png"
    plot_energy(records, with_bound, "with offline")
    plot_energy([r for r in records if r.algorithm != "offline"], without, "without")
    # 6.5 in against 4.5 in at 120 dpi: the second panel is there only with the bound
    assert matplotlib.image.imread(with_bound).shape[0] == 780
    assert matplotlib.image.imread(without).shape[0] == 540


@needs_data
def test_the_forecast_enters_the_plan_at_its_weight(
    first_days: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mpc_forecast`` plans for the expected arrivals at ``FORECAST_WEIGHT`` of the history's average:
    at weight 0 it is plain ``mpc`` to the last digit; at the chosen weight it keeps every limit."""
    from chargeflow.bench import acn_algorithms

    mpc, weighted = acn_bench.bench_acn(first_days, [20.0], ("mpc", "mpc_forecast"))
    assert weighted.violations == 0
    assert weighted.fallbacks == 0
    assert weighted.peak_kw <= 20.0 * 1.001
    monkeypatch.setattr(acn_algorithms, "FORECAST_WEIGHT", 0.0)
    (none,) = acn_bench.bench_acn(first_days, [20.0], ("mpc_forecast",))
    assert none.energy_delivered_pct == mpc.energy_delivered_pct
    assert none.demands_fully_met_pct == mpc.demands_fully_met_pct


@needs_data
def test_the_named_hedges_keep_every_limit_and_the_size_tie_break_completes_more_sessions(
    first_days: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mpc_phase`` (``ems.phase_hedge``) and ``mpc_complete`` (the size tie-break) keep every limit in
    acnportal's check; the size tie-break ends more sessions complete than plain ``mpc`` on these two
    days; and at strength 0 the phase hedge is plain ``mpc`` to the last digit."""
    mpc, phase, complete = acn_bench.bench_acn(first_days, [20.0], ("mpc", "mpc_phase", "mpc_complete"))
    for r in (phase, complete):
        assert r.violations == 0, r
        assert r.fallbacks == 0, r
        assert r.peak_kw <= 20.0 * 1.001
    assert complete.demands_fully_met_pct > mpc.demands_fully_met_pct
    monkeypatch.setattr(acn_bench, "PHASE_HEDGE", 0.0)
    (none,) = acn_bench.bench_acn(first_days, [20.0], ("mpc_phase",))
    assert none.energy_delivered_pct == mpc.energy_delivered_pct
    assert none.demands_fully_met_pct == mpc.demands_fully_met_pct


@needs_data
def test_the_oracle_knows_every_session_and_lies_between_mpc_and_the_offline_bound(
    first_days: list[object],
) -> None:
    """``mpc_oracle`` (a diagnostic: every session known in advance, re-planned every period as ``mpc``)
    keeps every limit and delivers no less than ``mpc`` and no more than the offline optimum."""
    mpc, oracle, offline = acn_bench.bench_acn(first_days, [20.0], ("mpc", "mpc_oracle", "offline"))
    assert oracle.violations == 0
    assert oracle.fallbacks == 0
    assert mpc.energy_delivered_pct <= oracle.energy_delivered_pct <= offline.energy_delivered_pct + 0.01

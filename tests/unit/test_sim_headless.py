"""The headless simulator on small hand-made sites and sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chargeflow.sim.data import SessionRecord, synthetic_building_profile, synthetic_pv_profile
from chargeflow.sim.headless import SimConfig, StepRow, departure_error, simulate
from chargeflow.site.model import ChargingPoint, Circuit, Ess, GridConnection, Pv, Site

DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def site(max_import_w: float = 40_000, ess: bool = False, pv_w: float = 0.0) -> Site:
    return Site(
        id="t",
        grid=GridConnection(max_import_w, 20_000),
        circuits=(Circuit("main", None, (100.0, 100.0, 100.0)), Circuit("sub", "main", (63.0, 63.0, 40.0))),
        charging_points=tuple(ChargingPoint(f"cp{i}", "sub", 3, 1 + i % 3, 32.0) for i in range(6)),
        building_circuit="main",
        building_peak_w=20_000,
        pv=(Pv("roof", "main", pv_w),) if pv_w else (),
        ess=Ess("main", 50_000, 5_000, 20_000, 20_000) if ess else None,
    )


def sessions(n: int = 10) -> list[SessionRecord]:
    out = []
    for i in range(n):
        arrival = DAY + timedelta(hours=7, minutes=20 * i)
        out.append(
            SessionRecord(
                id=f"s{i}",
                station_id=f"cp{i}",  # cp6… are not on the site: placed on a free one, or turned away
                arrival=arrival,
                departure=arrival + timedelta(hours=8),
                estimated_departure=arrival + timedelta(hours=7),
                requested_wh=30_000,
                delivered_wh=20_000,
            )
        )
    return out


def config(strategy: str, **kw: object) -> SimConfig:
    base: dict[str, object] = {
        "site": site(),
        "start": DAY,
        "end": DAY + timedelta(days=1),
        "strategy": strategy,
        "building": synthetic_building_profile("UTC"),
        "pv": synthetic_pv_profile("UTC"),
    }
    base.update(kw)
    return SimConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", ["equal", "edf", "llf", "priority"])
def test_controlled_site_never_breaks_a_limit(strategy: str) -> None:
    r = simulate(config(strategy), sessions())
    assert r.limit_violations == 0
    assert r.fuse_violations == 0
    assert r.sessions == 6
    assert r.turned_away == 4
    assert r.peak_import_w <= 40_000
    assert r.energy_delivered_kwh > 50


def test_uncontrolled_charging_breaks_the_limits_that_control_keeps() -> None:
    r = simulate(config("uncontrolled"), sessions())
    assert r.grid_violations > 0
    assert r.fuse_violations > 0
    assert r.limit_violations >= max(r.grid_violations, r.fuse_violations)
    assert r.max_overshoot_w > 0


def test_every_step_balances_and_the_timeline_carries_the_circuits() -> None:
    rows: list[StepRow] = []
    s = site(ess=True, pv_w=100_000)
    simulate(config("edf", site=s, step_s=300), sessions(), on_step=rows.append)
    assert len(rows) == 288
    for row in rows:
        assert row.grid_w == pytest.approx(row.building_w - row.pv_w + row.ev_w - row.ess_w)
        assert row.ev_w <= row.granted_w + 1e-6
        assert len(row.circuits) == 2
        for current, fuse in row.circuits:
            assert current <= fuse + 1e-6
    assert any(row.ess_w < 0 for row in rows)  # the battery stores PV surplus at midday


def test_needs_are_met_when_the_site_has_room() -> None:
    r = simulate(config("edf", site=site(max_import_w=200_000)), sessions(6))
    assert r.needs_met_pct == 100.0
    assert 6 * 20.0 <= r.energy_delivered_kwh <= 6 * 30.0 + 1e-6  # every ΔE_min, never beyond ΔE_max


def test_the_mpc_strategy_keeps_every_limit() -> None:
    edf = simulate(config("edf", step_s=300), sessions())
    mpc = simulate(config("mpc", step_s=300), sessions())
    assert mpc.limit_violations == 0
    assert mpc.fuse_violations == 0
    assert mpc.sessions == edf.sessions == 6
    # Not as much as EDF here (156 against 164 kWh): these EVs' batteries are full before ΔE_max, and the
    # plan keeps current for an EV that no longer draws, where EDF's order gives it to the next.
    assert mpc.energy_delivered_kwh >= 0.9 * edf.energy_delivered_kwh
    assert mpc.mpc_fallbacks < mpc.steps // 10
    assert edf.mpc_fallbacks == 0


def test_the_departure_error_compares_what_the_controller_was_told_with_the_real_stay() -> None:
    error = departure_error([7.0, 3.0, 5.5, 9.0], [8.0, 5.5, 5.0, 7.5])
    # told − real: −1, −2.5, +0.5, +1.5 h
    assert error == {
        "mae_h": 1.38,
        "bias_h": -0.38,
        "mean_stay_h": 6.5,
        "left_1h_before_pct": 25.0,
        "left_1h_after_pct": 25.0,
        "sessions": 4,
    }
    # The drivers here all say 7 h and stay 8 h, unless the controller is told the real departure.
    told = simulate(config("edf"), sessions(6)).departure_error
    assert told["bias_h"] == -1.0
    assert told["left_1h_after_pct"] == 0.0  # exactly an hour late: not more than one
    assert told["sessions"] == 6
    actual = simulate(config("edf", planned_departure="actual"), sessions(6)).departure_error
    assert actual["mae_h"] == 0.0

"""The ``mpc`` strategy in the control step (``allocate_mpc``), with the core split as its fallback."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from chargeflow.control.allocate import StepInput, control_step
from chargeflow.control.allocate_mpc import MpcPlanner
from chargeflow.csm.demand import EvSession, Preferences
from chargeflow.csm.split import Strategy
from chargeflow.site.measurement import BuildingPower
from chargeflow.site.model import ChargingPoint, Circuit, GridConnection, Site
from chargeflow.site.tree import check_site, constraint_index

NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)


def site(fuse_a: float = 32.0) -> Site:
    return Site(
        id="s",
        grid=GridConnection(max_import_w=100_000, max_export_w=0),
        circuits=(Circuit("grid", None, (63.0, 63.0, 63.0)), Circuit("panel", "grid", (fuse_a,) * 3)),
        charging_points=(
            ChargingPoint("a", "panel", 3, 1, 32.0),
            ChargingPoint("b", "panel", 3, 1, 32.0),
            ChargingPoint("c", "panel", 1, 2, 32.0),
        ),
    )


def session(cp: ChargingPoint, need_wh: int, wish_wh: int, hours: float, charged_wh: int = 0) -> EvSession:
    return EvSession.at(
        cp, Preferences(need_wh, wish_wh, NOW + timedelta(hours=hours)), charged_wh=charged_wh
    )


def step(s: Site, sessions: tuple[EvSession, ...]) -> StepInput:
    return StepInput(site=s, now=NOW, step_s=300.0, building=BuildingPower(0.0, 0.0), sessions=sessions)


def test_the_plan_serves_the_ev_that_must_leave_soon_and_keeps_the_fuse() -> None:
    s = site(32.0)
    a, b, _ = s.charging_points
    # a leaves in 1 h wanting 22.08 kWh, exactly what 32 A·3·230 V gives in that hour; b stays 10 h. On
    # one 32 A fuse the most energy goes only if a gets the whole fuse now (EDF would too; equal would not).
    sessions = (session(a, 0, 22_080, 1.0), session(b, 0, 20_000, 10.0))
    planner = MpcPlanner(step_s=300.0)
    result = control_step(step(s, sessions), planner=planner)
    by_id = {limit.id: limit for limit in result.limits}
    assert planner.fallbacks == 0
    assert by_id["a"].current_a == 32.0
    assert by_id["b"].current_a == 0.0
    assert by_id["a"].reason == "station_max"
    assert by_id["b"].reason == "mpc_plan"


def test_every_need_is_met_when_the_core_would_meet_it() -> None:
    s = site(40.0)
    a, b, c = s.charging_points
    sessions = (session(a, 10_000, 12_000, 0.6), session(b, 0, 30_000, 8.0), session(c, 2_000, 5_000, 0.5))
    core = control_step(step(s, sessions))
    planned = control_step(step(s, sessions), planner=MpcPlanner(step_s=300.0))
    assert core.feasible
    assert planned.feasible
    assert all(limit.need_met for limit in planned.limits)


def test_when_the_needs_do_not_fit_the_core_split_stands() -> None:
    s = site(10.0)
    a, b, _ = s.charging_points
    # Both need far more than a 10 A fuse allows now: the plan's need rows are infeasible.
    sessions = (session(a, 20_000, 20_000, 0.5), session(b, 20_000, 20_000, 0.5))
    planner = MpcPlanner(step_s=300.0)
    planned = control_step(step(s, sessions), planner=planner)
    core = control_step(step(s, sessions))
    assert planner.fallbacks == 1
    assert planned.limits == core.limits


@pytest.mark.parametrize("seed", range(20))
def test_no_fuse_phase_and_no_grant_is_ever_exceeded(seed: int) -> None:
    rng = random.Random(seed)
    s = site(rng.choice((16.0, 25.0, 40.0, 63.0)))
    sessions = tuple(
        session(cp, w // 2, w, rng.uniform(0.3, 12.0), charged_wh=rng.randint(0, w // 2))
        for cp in s.charging_points
        for w in [rng.randint(2, 40) * 1000]
    )
    st = StepInput(s, NOW, 300.0, BuildingPower(rng.uniform(0, 20_000), 0.0), sessions, Strategy.EDF)
    tree = check_site(s)
    result = control_step(st, tree, planner=MpcPlanner(step_s=300.0))
    loads = [0.0] * (3 * len(tree.circuits))
    tree.add_balanced_load(loads, s.root.id, st.building.consumption_w / (3 * s.voltage_v))
    for limit, ev in zip(result.limits, sessions, strict=True):
        assert limit.current_a == 0.0 or ev.min_current_a <= limit.current_a <= ev.station_max_current_a
        for k in tree.constraints_of(
            ev.circuit, s.charging_points[[cp.id for cp in s.charging_points].index(ev.id)].grid_phases
        ):
            loads[k] += limit.current_a
    fuses = tree.fuse_limits()
    for c in range(len(tree.circuits)):
        for p in (1, 2, 3):
            k = constraint_index(c, p)
            assert loads[k] <= fuses[k] + 1e-6
    assert result.ev_w <= result.granted_w + 1e-6

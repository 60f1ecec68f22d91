"""The site plan in the control step: its targets within the rules of the step, and the fallback."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chargeflow.control.allocate import SiteTarget, StepInput, control_step
from chargeflow.control.site_plan_step import PriceOutlook, SitePlanStep
from chargeflow.csm.demand import DemandTable, EvSession, Preferences
from chargeflow.ems.site_forecast import BuildingForecaster
from chargeflow.ems.site_plan import PlanEssReason, PlanSettings, follow_plan
from chargeflow.site.measurement import BuildingPower, EssState
from chargeflow.site.model import ChargingPoint, Circuit, Ess, GridConnection, Site

NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)
GRID = GridConnection(max_import_w=30_000, max_export_w=10_000)
ESS = Ess("main", capacity_wh=40_000, min_wh=5_000, max_charge_w=10_000, max_discharge_w=10_000)


def site(ess: Ess | None = ESS) -> Site:
    return Site(
        id="s",
        grid=GRID,
        circuits=(Circuit("main", None, (100.0,) * 3), Circuit("panel", "main", (63.0,) * 3)),
        charging_points=(ChargingPoint("a", "panel", 3, 1, 32.0), ChargingPoint("b", "panel", 3, 2, 32.0)),
        ess=ess,
    )


def session(cp: ChargingPoint, need_wh: int, wish_wh: int, hours: float) -> EvSession:
    return EvSession.at(cp, Preferences(need_wh, wish_wh, NOW + timedelta(hours=hours)))


def step(building_w: float, stored_wh: float = 20_000, sessions: tuple[EvSession, ...] = ()) -> StepInput:
    return StepInput(
        site=site(),
        now=NOW,
        step_s=300.0,
        building=BuildingPower(building_w),
        sessions=sessions,
        ess_state=EssState(stored_wh),
        price_per_kwh=Decimal("0.30"),
    )


class Fixed:
    """A site planner that wants the same every step, or fails (None)."""

    def __init__(self, target: SiteTarget | None) -> None:
        self.target = target

    def __call__(self, step: StepInput, evs: DemandTable) -> SiteTarget | None:
        return self.target


def follow(
    planned_w: float, building_w: float, stored_wh: float = 20_000, room_w: float = 1e9
) -> tuple[float, PlanEssReason, float] | None:
    out = follow_plan(
        planned_w, BuildingPower(building_w), 0.0, GRID, ESS, EssState(stored_wh), 300.0, room_w
    )
    return None if out is None else (out.discharge_w, out.reason, out.grid_w)


def test_the_plans_ess_setpoint_is_clamped_by_each_rule_of_settle() -> None:
    assert follow(-4_000, 10_000) == (-4_000, PlanEssReason.PLANNED, 14_000)
    # 25 kW of building and 30 kW of import: charging 10 kW would import 35 kW, 5 kW is all there is.
    assert follow(-10_000, 25_000) == (-5_000, PlanEssReason.IMPORT_LIMIT, 30_000)
    # 0.5 kWh above E_min lasts 5 minutes at 6 kW: the plan's 10 kW discharge is cut to that.
    assert follow(10_000, 20_000, stored_wh=5_500) == pytest.approx((6_000, PlanEssReason.ESS_LIMIT, 14_000))
    # 2 kW of building, 10 kW of export allowed: the battery may discharge 12 kW, its own limit is 20 kW.
    big = replace(ESS, max_discharge_w=20_000)
    out = follow_plan(20_000, BuildingPower(2_000), 0.0, GRID, big, EssState(20_000), 300.0)
    assert out is not None
    assert (out.discharge_w, out.reason, out.grid_w) == (12_000, PlanEssReason.EXPORT_LIMIT, -10_000)
    # The fuses of the ESS's circuit leave 3 kW to charge.
    assert follow(-8_000, 5_000, room_w=3_000) == (-3_000, PlanEssReason.CIRCUIT_ROOM, 8_000)
    # 50 kW of building: 20 kW over the import limit and only 10 kW of ESS: no set-point to follow.
    assert follow(0.0, 50_000) is None


def test_the_grant_is_never_below_the_need_nor_above_what_grant_allows() -> None:
    a, b = site().charging_points
    # a must charge now (6 kWh in 20 minutes), b only wishes.
    sessions = (session(a, 6_000, 6_000, 1 / 3), session(b, 0, 20_000, 8.0))
    rule = control_step(step(0.0, sessions=sessions))
    nothing = control_step(step(0.0, sessions=sessions), site_planner=Fixed(SiteTarget({}, None)))
    assert nothing.granted_w == pytest.approx(rule.needed_w)
    assert nothing.grant_reason == "site_plan"
    assert nothing.feasible
    by_id = {lim.id: lim for lim in nothing.limits}
    assert by_id["b"].current_a == 0.0  # the wish waits for the plan
    assert by_id["a"].power_w >= rule.needed_w - 1e-6
    everything = Fixed(SiteTarget({"a": 1e9, "b": 1e9}, None))
    assert control_step(step(0.0, sessions=sessions), site_planner=everything).granted_w == rule.granted_w


def test_each_ev_gets_its_planned_power_not_the_splits_order() -> None:
    a, b = site().charging_points
    # EDF would give a (leaving first) its whole wish; the plan wants b charged now and a later.
    sessions = (session(a, 0, 20_000, 2.0), session(b, 0, 20_000, 8.0))
    planner = Fixed(SiteTarget({"a": 0.0, "b": 11_040.0}, None))
    result = control_step(step(0.0, sessions=sessions), site_planner=planner)
    by_id = {lim.id: lim for lim in result.limits}
    assert by_id["a"].current_a == 0.0
    assert by_id["b"].current_a == 16.0  # 11.04 kW on three phases at 230 V


def test_the_plans_ess_setpoint_replaces_settle_within_the_import_limit() -> None:
    rule = control_step(step(25_000))
    assert rule.ess_discharge_w == 0.0  # no surplus, no import over the limit: the rule leaves it idle
    planned = control_step(step(25_000), site_planner=Fixed(SiteTarget({}, -10_000.0)))
    assert planned.ess_discharge_w == -5_000
    assert planned.ess_reason == "site_plan_import_limit"
    assert planned.grid_w == 30_000


def test_a_failing_plan_leaves_the_rule_based_step_as_it_is() -> None:
    a, b = site().charging_points
    sessions = (session(a, 6_000, 6_000, 1 / 3), session(b, 0, 20_000, 8.0))
    for building_w in (0.0, 25_000.0, 45_000.0):
        rule = control_step(step(building_w, sessions=sessions))
        assert control_step(step(building_w, sessions=sessions), site_planner=Fixed(None)) == rule


def prices(cheap_until_h: float, cheap: str = "0.05", dear: str = "0.50") -> PriceOutlook:
    def at(now: datetime, t: datetime) -> Decimal:
        return Decimal(cheap if t < NOW + timedelta(hours=cheap_until_h) else dear)

    return at


def test_the_site_plan_charges_the_ess_and_the_evs_in_the_cheap_hours() -> None:
    a, _ = site().charging_points
    sessions = (session(a, 0, 11_000, 4.0),)
    cheap_now = SitePlanStep(BuildingForecaster("UTC"), prices=prices(1.0))
    cheap_now.observe(NOW, BuildingPower(5_000))
    now = control_step(step(5_000, stored_wh=5_000, sessions=sessions), site_planner=cheap_now)
    # The battery is at E_min and the hour now is the cheap one: the EV takes its wish now and the battery
    # charges from the grid with what the import limit leaves (30 − 5 − 22.08 kW), which the rule never
    # does without surplus PV.
    assert now.ev_w == pytest.approx(22_080)
    assert now.ess_discharge_w == pytest.approx(-2_920)
    assert now.grid_w == pytest.approx(30_000)
    assert control_step(step(5_000, stored_wh=5_000, sessions=sessions)).ess_discharge_w == 0.0
    cheap_later = SitePlanStep(BuildingForecaster("UTC"), prices=prices(-1.0, "0.50", "0.05"))
    cheap_later.observe(NOW, BuildingPower(5_000))
    first = step(5_000, stored_wh=5_000, sessions=sessions)
    # The EV is not seen to draw yet: it gets its full wish for a step, to show what it can take.
    assert control_step(first, site_planner=cheap_later).ev_w == pytest.approx(22_080)
    seen = replace(sessions[0], charged_wh=1_840)  # 22.08 kW for five minutes
    later = control_step(
        replace(first, now=NOW + timedelta(minutes=5), sessions=(seen,)), site_planner=cheap_later
    )
    assert later.ev_w == 0.0  # now it waits for the cheap hours
    assert later.ess_discharge_w == 0.0
    assert cheap_later.fallbacks == 0
    assert cheap_later.solves == 2


def test_a_late_plan_falls_back_and_is_counted() -> None:
    planner = SitePlanStep(
        BuildingForecaster("UTC"), prices=prices(1.0), settings=PlanSettings(time_limit_s=0.0)
    )
    a, b = site().charging_points
    sessions = (session(a, 6_000, 6_000, 1 / 3), session(b, 0, 20_000, 8.0))
    for minutes in (0, 5, 10):
        s = replace(step(5_000, stored_wh=5_000, sessions=sessions), now=NOW + timedelta(minutes=minutes))
        assert control_step(s, site_planner=planner) == control_step(s)
    assert planner.fallbacks == 3
    assert planner.failed_solves == 1  # tried again at the next slot, not every step

"""The site plan in the live EMS: the EVs' aggregate flexibility from the demand profile, the aggregate LP,
and the EMS's step with a planner (ems/live_plan.py, ems/service.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from chargeflow.clock import ManualClock
from chargeflow.ems.balance import EssSetpoint, Grant, GrantReason, grant, settle
from chargeflow.ems.live_plan import (
    SITE_PLAN,
    LivePlan,
    LivePlanner,
    PlanInputs,
    flexibility,
    planned_grant,
)
from chargeflow.ems.service import EmsConfig, EmsDecision, EmsService
from chargeflow.ems.site_forecast import BuildingForecaster
from chargeflow.ems.site_plan import (
    EvFlexibility,
    PlannedSetpoint,
    PlanSettings,
    SiteForecast,
    SitePlanner,
    Storage,
)
from chargeflow.exchange import DemandPoint, InMemoryExchange, PowerDemand, Validity
from chargeflow.site.measurement import BuildingPower, EssState, SiteMeasurement
from chargeflow.site.model import Site
from chargeflow.site.prices import EnergyPrices, TimeOfUse
from tests.unit.test_control_services import SITE, T0


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# --- the flexibility the EMS reads from the profile ---


def two_evs() -> tuple[DemandPoint, ...]:
    """The profile of csm/flexibility's two-EV case: 08:00–09:00 wish 5 kW, 09:00–10:00 need 5 kW,
    11:00–12:00 need 10 kW, and 15 kW of wish for the first step."""
    return (
        DemandPoint(T0, 0.0, 15_000.0),
        DemandPoint(T0 + timedelta(seconds=10), 0.0, 5_000.0),
        DemandPoint(h(1), 5_000.0, 5_000.0),
        DemandPoint(h(2), 0.0, 0.0),
        DemandPoint(h(3), 10_000.0, 10_000.0),
        DemandPoint(h(4), 0.0, 0.0),
        DemandPoint(h(24), 0.0, 0.0),
    )


def test_the_bounds_are_the_integrals_of_the_profile() -> None:
    flex = flexibility(two_evs(), T0, 900.0, 96)
    need_kwh = flex.need_wh / 1000
    assert need_kwh[3] == pytest.approx(0.0)  # by 09:00
    assert need_kwh[7] == pytest.approx(5.0)  # by 10:00
    assert need_kwh[15] == pytest.approx(15.0)  # by 12:00
    assert need_kwh[-1] == pytest.approx(15.0)
    extra = 5_000 * (1 - 10 / 3600) + 15_000 * 10 / 3600  # 08:00–09:00 and the first step's 15 kW
    assert flex.extra_wh[3] == pytest.approx(extra)
    assert flex.extra_wh[-1] == pytest.approx(extra)
    # the most power: 15 kW in the first slot (the first step), then 10 kW until the last EV leaves
    assert flex.max_w[0] == 15_000.0
    assert flex.max_w[1] == flex.max_w[15] == 10_000.0
    assert flex.max_w[16] == 0.0


def test_a_profile_that_starts_before_the_plan_counts_from_the_plan_and_a_single_point_holds_a_slot() -> None:
    flex = flexibility(two_evs(), h(1), 900.0, 8)  # an hour later: b's need is all that is left by 10:00
    assert flex.need_wh[3] == pytest.approx(5_000.0)
    assert flex.extra_wh[-1] == pytest.approx(0.0)
    single = flexibility((DemandPoint(T0, 4_000.0, 8_000.0),), T0, 900.0, 4)
    assert single.need_wh.tolist() == [1_000.0] * 4
    assert single.extra_wh.tolist() == [1_000.0] * 4
    assert single.max_w.tolist() == [8_000.0, 0.0, 0.0, 0.0]


# --- the aggregate plan ---


def test_the_aggregate_plan_stores_cheap_energy_for_the_dear_hours_and_keeps_the_cumulative_need() -> None:
    n = 8  # hours
    need_wh = np.array([0, 0, 0, 5_000, 5_000, 5_000, 15_000, 15_000], dtype=np.float64)
    flex = EvFlexibility(need_wh=need_wh, extra_wh=np.full(n, 4_000.0), max_w=np.full(n, 10_000.0))
    price = np.array([0.1] * 4 + [0.4] * 4) / 1000
    forecast = SiteForecast(np.full(n, 10_000.0), np.zeros(n), price, np.zeros(n))
    storage = Storage(10_000, 0, 50_000, 20_000, 20_000, efficiency=0.95)
    plan = SitePlanner().solve_aggregate(flex, forecast, 1.0, 60_000, 20_000, storage)
    assert plan.ok
    assert plan.ev_w.shape == (1, n)
    assert plan.ess_charge_w[:4].sum() > 0
    assert plan.ess_discharge_w[:4].sum() == pytest.approx(0, abs=1)
    assert plan.ess_discharge_w[4:].sum() > 0
    assert plan.ess_charge_w[4:].sum() == pytest.approx(0, abs=1)
    cumulative = np.cumsum(plan.ev_w[0])
    assert np.all(cumulative >= need_wh - 1e-6)  # the need by each slot's end
    assert cumulative[-1] == pytest.approx(15_000 + 4_000)  # and the energy beyond it, which is worth buying
    assert cumulative[3] == pytest.approx(19_000)  # all of it in the cheap hours
    assert plan.short_wh.max() == pytest.approx(0.0)


def test_the_aggregate_plan_never_gives_the_evs_more_than_they_can_take_or_earlier_than_they_can() -> None:
    n = 4
    flex = EvFlexibility(
        need_wh=np.zeros(n), extra_wh=np.array([1_000, 2_000, 3_000, 3_000.0]), max_w=np.full(n, 2_500.0)
    )
    forecast = SiteForecast(np.zeros(n), np.zeros(n), np.full(n, 1e-4), np.zeros(n))
    plan = SitePlanner().solve_aggregate(flex, forecast, 1.0, 40_000, 0)
    assert np.all(plan.ev_w[0] <= 2_500 + 1e-6)
    assert np.all(np.cumsum(plan.ev_w[0]) <= flex.extra_wh + 1e-6)
    assert plan.ev_w[0].sum() == pytest.approx(3_000)


# --- the grant with a plan ---


def test_the_planned_grant_lies_between_the_need_and_the_rules() -> None:
    rules = Grant(20_000, True, GrantReason.WISHED, 0.0)
    assert planned_grant(5_000, 8_000, rules) == (8_000, SITE_PLAN)  # never below P_needed
    assert planned_grant(12_000, 8_000, rules) == (12_000, SITE_PLAN)
    assert planned_grant(30_000, 8_000, rules) == (20_000, "wished")  # never above the rules
    short = Grant(6_000, False, GrantReason.NEEDS_EXCEED_GRID, 0.0)
    assert planned_grant(30_000, 8_000, short) == (6_000, "needs_exceed_grid")


# --- the EMS's step with a planner ---


@dataclass
class Meter:
    clock: ManualClock
    consumption_w: float = 10_000.0
    stored_wh: float = 30_000.0

    async def read(self) -> SiteMeasurement:
        return SiteMeasurement(self.clock.now(), BuildingPower(self.consumption_w), EssState(self.stored_wh))


@dataclass
class Battery:
    setpoints: list[float] = field(default_factory=list)

    async def set_discharge(self, discharge_w: float) -> None:
        self.setpoints.append(discharge_w)


#: cheap until 10:00 UTC, dear after: the plan charges the ESS now and discharges it later
EVERY_DAY = frozenset(range(7))
PRICES = EnergyPrices(
    Decimal("0.40"), (TimeOfUse(EVERY_DAY, h(-8).time(), h(2).time(), Decimal("0.10")),), timezone="UTC"
)


class FailingPlanner(LivePlanner):
    def solve(self, inputs: PlanInputs) -> LivePlan | None:
        raise RuntimeError("no solver today")


class NoInputsPlanner(LivePlanner):
    def inputs(
        self, now: datetime, points: Sequence[DemandPoint], site: Site, ess_state: EssState | None
    ) -> PlanInputs:
        raise ValueError("a price the plan cannot read")


class SlowPlanner(LivePlanner):
    def solve(self, inputs: PlanInputs) -> LivePlan | None:
        time.sleep(0.3)
        return LivePlanner.solve(self, inputs)


class Rig:
    def __init__(self, planner: LivePlanner | None, plan_timeout_s: float = 2.0) -> None:
        self.clock = ManualClock(T0)
        self.bus = InMemoryExchange()
        self.meter = Meter(self.clock)
        self.battery = Battery()
        config = EmsConfig(step_s=10, margin_pct=0.0, plan_timeout_s=plan_timeout_s)
        self.ems = EmsService(SITE, self.meter, self.bus, self.clock, config, self.battery, planner)

    async def step(self, points: tuple[DemandPoint, ...]) -> EmsDecision:
        now = self.clock.now()
        await self.bus.publish_demand(PowerDemand("s", Validity(now, now + timedelta(seconds=30)), points))
        decision = await self.ems.step()
        self.clock.advance(timedelta(seconds=10))
        return decision


def demand_now(now: datetime, needed_w: float, wished_w: float) -> tuple[DemandPoint, ...]:
    """Need and wish now, and for the next two hours: EVs that could take ``wished_w`` and must have
    ``needed_w`` all along."""
    return (
        DemandPoint(now, needed_w, wished_w),
        DemandPoint(now + timedelta(seconds=10), needed_w, wished_w),
        DemandPoint(now + timedelta(hours=2), 0.0, 0.0),
    )


SIX_HOURS = PlanSettings(horizon_s=6 * 3600)


def planner() -> LivePlanner:
    return LivePlanner(BuildingForecaster("UTC"), prices=PRICES, settings=SIX_HOURS)


def rules(needed_w: float, wished_w: float, consumption_w: float) -> Grant:
    return grant(needed_w, wished_w, BuildingPower(consumption_w), SITE.grid, SITE.ess, EssState(30_000), 10)


def rule_ess(granted_w: float | None) -> EssSetpoint:
    """The rule-based ESS set-point with 10 kW of building and the EVs taking ``granted_w``."""
    assert granted_w is not None
    return settle(BuildingPower(10_000), granted_w, SITE.grid, SITE.ess, EssState(30_000), 10)


async def test_with_a_plan_the_grant_lies_between_the_need_and_the_rules_and_the_ess_follows_it() -> None:
    rig = Rig(planner())
    decision = await rig.step(demand_now(T0, 4_000, 25_000))
    assert decision.planned
    assert rig.ems.plan_solves == 1
    assert rig.ems.plan_fallbacks == 0
    assert decision.grant == rules(4_000, 25_000, 10_000)  # the rules' grant: the grid has room for all
    assert decision.granted_w is not None
    assert 4_000 <= decision.granted_w <= decision.grant.granted_w
    # Cheap now, dear later: the plan charges the EVs' wish and the ESS with what the grid has left.
    assert isinstance(decision.ess, PlannedSetpoint)
    assert decision.granted_w == pytest.approx(25_000)
    assert decision.ess.discharge_w == pytest.approx(-5_000)
    assert decision.ess.reason == "site_plan"
    assert rig.battery.setpoints == [decision.ess.discharge_w]
    assert decision.ess.grid_w <= SITE.grid.max_import_w
    published = rig.bus.latest_grant("s")
    assert published is not None
    assert published.points[0].granted_w == decision.granted_w
    assert published.reason == decision.reason
    again = await rig.step(demand_now(rig.clock.now(), 4_000, 25_000))
    assert again.planned
    assert rig.ems.plan_solves == 1


async def test_the_plan_s_ess_set_point_is_clamped_by_the_import_limit() -> None:
    rig = Rig(planner())
    first = await rig.step(demand_now(T0, 4_000, 4_000))
    assert isinstance(first.ess, PlannedSetpoint)
    assert first.ess.discharge_w < 0
    rig.meter.consumption_w = 34_000.0  # the building jumps: 34 + 4 kW of EVs leave 2 kW to charge
    clamped = await rig.step(demand_now(rig.clock.now(), 4_000, 4_000))
    assert clamped.planned
    assert rig.ems.plan_solves == 1
    assert isinstance(clamped.ess, PlannedSetpoint)
    assert clamped.ess.reason == "site_plan_import_limit"
    assert clamped.ess.discharge_w == pytest.approx(-2_000)
    assert clamped.ess.grid_w == pytest.approx(SITE.grid.max_import_w)


async def test_a_plan_that_holds_the_grant_says_so() -> None:
    # One 11 kW EV for 4 h: ΔE_min 11 kWh as late as possible (11:00–12:00), 11 kWh more as soon as possible
    # (08:00–09:00). Dear until 09:00, cheap after: a plan free to move ΔE_min too waits, and the grant is
    # P_needed (0 W now), held by the plan.
    dear = TimeOfUse(EVERY_DAY, h(-1).time(), h(1).time(), Decimal("0.40"))
    prices = EnergyPrices(Decimal("0.10"), (dear,), timezone="UTC")
    rig = Rig(replace(planner(), prices=prices, settings=replace(SIX_HOURS, need_early_per_kwh_h=0.0)))
    points = (
        DemandPoint(T0, 0.0, 11_000),
        DemandPoint(T0 + timedelta(seconds=10), 0.0, 11_000),
        DemandPoint(h(1), 0.0, 0.0),
        DemandPoint(h(3), 11_000, 11_000),
        DemandPoint(h(4), 0.0, 0.0),
    )
    decision = await rig.step(points)
    assert decision.planned
    assert decision.grant is not None
    assert decision.grant.granted_w == 11_000
    assert decision.reason == SITE_PLAN
    assert decision.granted_w == pytest.approx(0.0)
    published = rig.bus.latest_grant("s")
    assert published is not None
    assert published.reason == SITE_PLAN


async def test_a_failing_planner_falls_back_to_the_rules_and_is_counted() -> None:
    rig = Rig(FailingPlanner(BuildingForecaster("UTC"), prices=PRICES))
    without = Rig(None)
    for _ in range(2):
        decision = await rig.step(demand_now(rig.clock.now(), 4_000, 25_000))
        expected = await without.step(demand_now(without.clock.now(), 4_000, 25_000))
        assert not decision.planned
        assert (decision.granted_w, decision.reason, decision.ess) == (
            expected.granted_w,
            expected.reason,
            expected.ess,
        )
    assert rig.ems.plans_failed == 2  # asked again each step: no plan is in force
    assert rig.ems.plan_fallbacks == 2
    assert rig.battery.setpoints == without.battery.setpoints


async def test_a_planner_that_cannot_gather_its_inputs_falls_back_too() -> None:
    rig = Rig(NoInputsPlanner(BuildingForecaster("UTC"), prices=PRICES))
    decision = await rig.step(demand_now(T0, 4_000, 25_000))
    assert not decision.planned
    assert decision.granted_w == rules(4_000, 25_000, 10_000).granted_w
    assert rig.ems.plans_failed == 1
    assert rig.ems.plan_fallbacks == 1


async def test_a_late_planner_falls_back_to_the_rules_until_its_plan_comes() -> None:
    rig = Rig(SlowPlanner(BuildingForecaster("UTC"), prices=PRICES, settings=SIX_HOURS), plan_timeout_s=0.05)
    late = await rig.step(demand_now(T0, 4_000, 25_000))
    assert not late.planned
    assert rig.ems.plans_late == 1
    assert rig.ems.plan_fallbacks == 1
    assert late.granted_w == rules(4_000, 25_000, 10_000).granted_w
    assert late.ess == rule_ess(late.granted_w)
    busy = await rig.step(demand_now(rig.clock.now(), 4_000, 25_000))  # still solving: no second solve
    assert not busy.planned
    assert rig.ems.plan_solves == 1
    assert rig.ems.plan_fallbacks == 2
    await asyncio.sleep(0.4)
    came = await rig.step(demand_now(rig.clock.now(), 4_000, 25_000))
    assert came.planned
    assert rig.ems.plan_solves == 1


async def test_without_a_planner_the_ems_steps_as_before() -> None:
    rig = Rig(None)
    decision = await rig.step(demand_now(T0, 4_000, 45_000))
    expected = rules(4_000, 45_000, 10_000)
    assert decision.grant == expected
    assert decision.granted_w == expected.granted_w
    assert decision.reason == expected.reason.value
    assert decision.ess == rule_ess(expected.granted_w)
    assert not decision.planned
    assert rig.ems.plan_solves == rig.ems.plan_fallbacks == 0


async def test_a_plan_is_made_again_when_an_ev_comes() -> None:
    rig = Rig(planner())
    await rig.step(demand_now(T0, 4_000, 11_000))
    await rig.step(demand_now(rig.clock.now(), 4_000, 11_000))
    assert rig.ems.plan_solves == 1
    await rig.step(demand_now(rig.clock.now(), 4_000, 22_000))  # another EV, 11 kW more
    assert rig.ems.plan_solves == 2
    rig.clock.advance(timedelta(minutes=15))  # and when the plan's slot is over
    await rig.step(demand_now(rig.clock.now(), 4_000, 22_000))
    assert rig.ems.plan_solves == 3

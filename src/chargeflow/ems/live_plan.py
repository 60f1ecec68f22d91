"""The site plan in the live EMS, which sees the EVs only through the CSM's demand profile.

The live EMS knows no EV: only the CSM's P_needed and P_wished cross to it (TF-EVC 3.2.6), now as a profile
over the next day (``csm.flexibility``). From the profile it takes, per 15-minute slot of its plan, the EVs'
aggregate flexibility (``flexibility``): the cumulative energy they need by the slot's end (the integral of
needed_w: ΔE_min as late as possible), the cumulative energy beyond it they can take by then (the integral of
wished_w − needed_w: the rest as soon as possible) and the most power they can take in the slot (the largest
wished_w from the slot on: no EV arrives in the profile). ``ems.site_plan.SitePlanner.solve_aggregate`` plans
one EV power per slot within these bounds, with the ESS, forecasts of PV and building load fed by the EMS's
own meter readings (``ems.site_forecast``), the site's energy prices and the grid limits.

The first slot of the plan then narrows the rule-based step (``planned_grant``): P_granted is the plan's EV
power, never below P_needed and never above what ``ems.balance.grant`` allows; the ESS follows the plan's
set-point within the safety rules (``ems.site_plan.follow_plan``). The service (``ems.service``) solves in a
worker thread every slot, or sooner when the profile changes a lot (an EV came or went), and falls back to
the rule-based step when the plan fails or is late.

Pure: times, readings and the demand are arguments; HiGHS and the forecasters are the only state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from chargeflow.ems.balance import Grant
from chargeflow.ems.site_forecast import BuildingForecaster, FloatArray, PvForecaster
from chargeflow.ems.site_plan import EvFlexibility, PlanSettings, SiteForecast, SitePlan, SitePlanner, Storage
from chargeflow.exchange import DemandPoint
from chargeflow.site.measurement import BuildingPower, EssState
from chargeflow.site.model import Ess, Site
from chargeflow.site.prices import EnergyPrices
from chargeflow.units import SECONDS_PER_HOUR

#: the grant reason where the plan, not a limit, holds P_granted below what the rules allow
SITE_PLAN = "site_plan"


def flexibility(points: Sequence[DemandPoint], start: datetime, slot_s: float, n: int) -> EvFlexibility:
    """The EVs' aggregate flexibility over ``n`` slots from ``start``, from a demand profile. Each point holds
    until the next; the last for one slot (a CSM that publishes P_needed and P_wished now only gives the plan
    one slot of demand). Points before ``start`` count from ``start``."""
    ordered = sorted(points, key=lambda p: p.start)
    begin = np.asarray([(p.start - start).total_seconds() for p in ordered], dtype=np.float64)
    end = np.append(begin[1:], begin[-1] + slot_s)
    needed = np.asarray([p.needed_w for p in ordered], dtype=np.float64)
    wished = np.asarray([p.wished_w for p in ordered], dtype=np.float64)
    edges = np.arange(n + 1, dtype=np.float64) * slot_s
    lo = np.maximum(begin[:, None], edges[None, :-1])
    hi = np.minimum(end[:, None], edges[None, 1:])
    hours = np.maximum(hi - lo, 0.0) / SECONDS_PER_HOUR  # (points, slots)
    need_wh = needed @ hours
    wish_wh = np.maximum(wished @ hours, need_wh)
    # The most power in slot k: the largest wished_w of the points that end after its start.
    suffix = np.maximum.accumulate(wished[::-1])[::-1]  # the largest wished_w of point j and after
    first = np.searchsorted(end, edges[:-1], side="right")  # the first point that ends after the slot starts
    top = np.where(first < len(ordered), suffix[np.minimum(first, len(ordered) - 1)], 0.0)
    return EvFlexibility(
        need_wh=np.cumsum(need_wh), extra_wh=np.cumsum(wish_wh - need_wh), max_w=np.maximum(top, 0.0)
    )


def slot_forecast(
    start: datetime,
    n: int,
    slot_s: float,
    building: BuildingForecaster,
    pv: PvForecaster | None,
    price_per_kwh: FloatArray,
    feed_in_per_kwh: float,
) -> SiteForecast:
    """Per slot from ``start``: the building and PV forecasts at the slot's middle, the prices per Wh."""
    middles = start.timestamp() + (np.arange(n, dtype=np.float64) + 0.5) * slot_s
    return SiteForecast(
        building_w=building.forecast(middles),
        pv_w=pv.forecast(middles) if pv is not None else np.zeros(n),
        price_per_wh=price_per_kwh / 1000,
        # Export never earns more than import costs: at a negative price it costs too, and the plan would
        # otherwise import and export at once.
        feed_in_per_wh=np.minimum(feed_in_per_kwh, price_per_kwh) / 1000,
    )


def plan_storage(
    ess: Ess | None, state: EssState | None, efficiency: float, price_per_kwh: FloatArray
) -> Storage | None:
    """The ESS as the plan sees it; None where its capacity or its state is not known."""
    if ess is None or state is None or ess.capacity_wh is None:
        return None
    return Storage(
        stored_wh=state.stored_wh,
        min_wh=ess.min_wh,
        capacity_wh=ess.capacity_wh,
        max_charge_w=ess.max_charge_w,
        max_discharge_w=ess.max_discharge_w,
        efficiency=efficiency,
        # A Wh left at the end saves the horizon's mean price later, less the losses to get it out.
        end_value_per_wh=max(float(price_per_kwh.mean()), 0.0) * efficiency / 1000,
    )


@dataclass(frozen=True, slots=True, eq=False)
class PlanInputs:
    """What one solve needs, gathered on the EMS's loop; the solve itself may then run in a thread."""

    start: datetime
    flex: EvFlexibility
    forecast: SiteForecast
    dt_h: float
    max_import_w: float
    max_export_w: float
    storage: Storage | None


@dataclass(frozen=True, slots=True)
class LivePlan:
    """The plan's first slot, as the EMS's step follows it."""

    start: datetime
    until: datetime  # the first slot's end: after it the plan is stale
    ev_w: float  # the EVs' planned power
    ess_discharge_w: float | None  # negative: charging; None: the plan has no ESS
    need_wh: float  # the profile's energy the plan was made for: the need, and the need and extra together
    wish_wh: float
    max_w: float  # and the EVs' power in its first slot
    plan: SitePlan


def planned_grant(plan_ev_w: float, needed_w: float, rules: Grant) -> tuple[float, str]:
    """P_granted with the plan: its EV power, never below P_needed, never above what the rules grant; the
    reason is ``site_plan`` where the plan holds it below the rules' grant, else the rules' own."""
    granted = min(max(plan_ev_w, needed_w), rules.granted_w)
    return granted, SITE_PLAN if granted < rules.granted_w - 1e-6 else rules.reason.value


@dataclass(slots=True)
class LivePlanner:
    """The site plan for the live EMS: forecasters fed with its meter readings, the prices, the LP."""

    building: BuildingForecaster
    pv: PvForecaster | None = None
    prices: EnergyPrices | None = None
    settings: PlanSettings = field(default_factory=PlanSettings)
    #: plan again before the slot is over when the profile changes a lot (``outdated``)
    replan_share: float = 0.1
    replan_min_wh: float = 2000.0
    replan_w: float = 1000.0  # the least an AC EV draws is about 1.4 kW
    _planner: SitePlanner | None = field(default=None, repr=False)

    def observe(self, at: datetime, reading: BuildingPower) -> None:
        """Feed the forecasters with a meter reading taken at ``at``."""
        self.building.observe(at, reading.consumption_w)
        if self.pv is not None:
            self.pv.observe(at, reading.generation_w)

    @property
    def slots(self) -> int:
        return self.settings.slots

    def inputs(
        self, now: datetime, points: Sequence[DemandPoint], site: Site, ess_state: EssState | None
    ) -> PlanInputs:
        n = self.slots
        slot = timedelta(seconds=self.settings.slot_s)
        known = self.prices.ahead(now, slot, n) if self.prices is not None else [0] * n
        price = np.asarray([float(p) for p in known], dtype=np.float64)
        return PlanInputs(
            start=now,
            flex=flexibility(points, now, self.settings.slot_s, n),
            forecast=slot_forecast(
                now, n, self.settings.slot_s, self.building, self.pv, price, self.settings.feed_in_per_kwh
            ),
            dt_h=self.settings.slot_s / SECONDS_PER_HOUR,
            max_import_w=site.grid.max_import_w,
            max_export_w=site.grid.max_export_w,
            storage=plan_storage(site.ess, ess_state, self.settings.ess_efficiency, price),
        )

    def solve(self, inputs: PlanInputs) -> LivePlan | None:
        """The plan (in a worker thread: one solve at a time); None where HiGHS found none in time."""
        if self._planner is None:
            self._planner = self.settings.planner()
        i = inputs
        plan = self._planner.solve_aggregate(
            i.flex, i.forecast, i.dt_h, i.max_import_w, i.max_export_w, i.storage
        )
        if not plan.ok:
            return None
        ess_w = float(plan.ess_discharge_w[0] - plan.ess_charge_w[0]) if i.storage is not None else None
        need_wh, wish_wh = _energy(i.flex)
        return LivePlan(
            i.start,
            i.start + timedelta(seconds=self.settings.slot_s),
            float(plan.ev_w[0, 0]),
            ess_w,
            need_wh,
            wish_wh,
            float(i.flex.max_w[0]),
            plan,
        )

    def outdated(self, plan: LivePlan, now: datetime, points: Sequence[DemandPoint]) -> bool:
        """The plan's first slot is over, or the demand changed a lot since it was made: the EVs' power now
        moved by more than ``replan_w`` (an EV came, went or is full), or their need or wish energy grew by
        more than ``replan_share`` (and ``replan_min_wh``). Charging only makes the energy shrink."""
        if now >= plan.until or now < plan.start:
            return True
        flex = flexibility(points, now, self.settings.slot_s, self.slots)
        need_wh, wish_wh = _energy(flex)
        if abs(float(flex.max_w[0]) - plan.max_w) > self.replan_w:
            return True
        return any(
            new - old > max(self.replan_min_wh, self.replan_share * old)
            for new, old in ((need_wh, plan.need_wh), (wish_wh, plan.wish_wh))
        )


def _energy(flex: EvFlexibility) -> tuple[float, float]:
    """The profile's need energy, and need and extra together, over the horizon."""
    return float(flex.need_wh[-1]), float(flex.need_wh[-1] + flex.extra_wh[-1])

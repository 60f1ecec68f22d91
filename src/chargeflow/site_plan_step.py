"""The site plan in the control step: the site LP (``ems.site_plan``) over the next day, its first slot as
the step's target.

Each plan slot (15 minutes by default), and whenever an EV comes or goes, the plan is solved again over
``horizon_s`` with what the step knows: the EVs present — what each still needs (ΔE_min) and wishes (ΔE_max),
its departure, its maximum power, the driver's price cap for the energy beyond ΔE_min —, the ESS's stored
energy, forecasts of the building's load and of PV (``ems.site_forecast``, fed with the meter's readings
through ``observe``) and the energy prices ahead, as a day-ahead market publishes them (``PriceOutlook``).
The plan's first slot becomes a ``SiteTarget``: ``control_step`` caps the grant at max(P_needed, the plan's
EV power) and follows the plan's ESS set-point within the rules of ``ems.balance.settle``.

A plan that fails or is late (HiGHS stops at ``time_limit_s``) gives no target: the rule-based step stands
until the next solve, and every such step is counted in ``fallbacks``. Never no limit: the target only ever
narrows what the rules allow.

The plan does not see EVs that have not come yet; a plan that leaves room for them is ``ems.forecast``'s
business (the ``mpc`` strategy) and not done here.

Pure: time comes with the step, prices and readings are handed in; HiGHS is the only state besides the
forecasters and the last plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from chargeflow.allocate import SiteTarget, StepInput
from chargeflow.csm.demand import DemandTable
from chargeflow.ems.site_forecast import BuildingForecaster, FloatArray, PvForecaster
from chargeflow.ems.site_plan import EvNeeds, SiteForecast, SitePlan, SitePlanner, Storage
from chargeflow.site.measurement import BuildingPower
from chargeflow.units import SECONDS_PER_HOUR

#: the energy price at ``at`` per kWh as known at ``now`` (the first argument); None where none is known
PriceOutlook = Callable[[datetime, datetime], Decimal | None]


@dataclass(frozen=True, slots=True, eq=False)
class PlanInputs:
    """What the last plan was made with: its start, the forecasts per slot (W) and prices (per kWh)."""

    start: datetime
    pv_w: FloatArray
    building_w: FloatArray
    price_per_kwh: FloatArray


@dataclass(slots=True)
class SitePlanStep:
    building: BuildingForecaster
    pv: PvForecaster | None = None
    prices: PriceOutlook | None = None
    slot_s: float = 900.0
    horizon_s: float = 24 * SECONDS_PER_HOUR
    time_limit_s: float = 1.0
    feed_in_per_kwh: float = 0.0
    #: the price of the horizon's peak import, per kW (a demand charge spread over the plan's day)
    peak_price_per_kw: float = 0.1
    #: round-trip losses the plan counts with, per direction; a site file does not say them
    ess_efficiency: float = 0.95
    fallbacks: int = 0  # steps in which there was no plan in time and the rule-based step stood
    solves: int = 0
    failed_solves: int = 0
    last: PlanInputs | None = None
    _planner: SitePlanner | None = field(default=None, repr=False)
    _plan: SitePlan | None = field(default=None, repr=False)
    _due: datetime | None = field(default=None, repr=False)
    _ids: tuple[str, ...] = field(default=(), repr=False)
    _plan_ids: tuple[str, ...] = field(default=(), repr=False)  # the EVs of the plan's rows, in order

    def observe(self, at: datetime, reading: BuildingPower) -> None:
        """Feed the forecasters with a meter reading taken at ``at``."""
        self.building.observe(at, reading.consumption_w)
        if self.pv is not None:
            self.pv.observe(at, reading.generation_w)

    def __call__(self, step: StepInput, evs: DemandTable) -> SiteTarget | None:
        ids = tuple(sorted(evs.ids))
        if self._due is None or step.now >= self._due or ids != self._ids:
            self._plan = self._solve(step, evs)
            self._due = step.now + timedelta(seconds=self.slot_s)
            self._ids = ids
            self._plan_ids = evs.ids
        plan = self._plan
        if plan is None:
            self.fallbacks += 1
            return None
        ess_w = None if step.ess_state is None else float(plan.ess_discharge_w[0] - plan.ess_charge_w[0])
        return SiteTarget(dict(zip(self._plan_ids, plan.ev_w[:, 0].tolist(), strict=True)), ess_w)

    def _solve(self, step: StepInput, evs: DemandTable) -> SitePlan | None:
        if self._planner is None:
            self._planner = SitePlanner(
                peak_price_per_w=self.peak_price_per_kw / 1000, time_limit_s=self.time_limit_s
            )
        n_t = max(1, round(self.horizon_s / self.slot_s))
        dt_h = self.slot_s / SECONDS_PER_HOUR
        start_s = step.now.timestamp()
        starts = [step.now + timedelta(seconds=k * self.slot_s) for k in range(n_t)]
        middles = start_s + (np.arange(n_t, dtype=np.float64) + 0.5) * self.slot_s
        price = np.asarray([self._price(step, t) for t in starts], dtype=np.float64)
        pv = self.pv.forecast(middles) if self.pv is not None else np.zeros(n_t)
        building = self.building.forecast(middles)
        self.last = PlanInputs(step.now, pv, building, price)
        forecast = SiteForecast(
            building_w=building,
            pv_w=pv,
            price_per_wh=price / 1000,
            # Export never earns more than import costs: at a negative price it costs too, and the plan
            # would otherwise import and export at once.
            feed_in_per_wh=np.minimum(self.feed_in_per_kwh, price) / 1000,
        )
        site = step.site
        storage = None
        if site.ess is not None and step.ess_state is not None and site.ess.capacity_wh is not None:
            storage = Storage(
                stored_wh=step.ess_state.stored_wh,
                min_wh=site.ess.min_wh,
                capacity_wh=site.ess.capacity_wh,
                max_charge_w=site.ess.max_charge_w,
                max_discharge_w=site.ess.max_discharge_w,
                efficiency=self.ess_efficiency,
                # A Wh left at the end saves the horizon's mean price later, less the losses to get it out.
                end_value_per_wh=max(float(price.mean()), 0.0) * self.ess_efficiency / 1000,
            )
        plan = self._planner.solve(
            self._needs(step, evs, n_t),
            forecast,
            dt_h,
            site.grid.max_import_w,
            site.grid.max_export_w,
            storage,
        )
        self.solves += 1
        if not plan.ok:
            self.failed_solves += 1
            return None
        return plan

    def _price(self, step: StepInput, at: datetime) -> float:
        known = self.prices(step.now, at) if self.prices is not None else None
        if known is None:
            known = step.price_per_kwh
        return float(known) if known is not None else 0.0

    def _needs(self, step: StepInput, evs: DemandTable, n_t: int) -> EvNeeds:
        prefs = [s.preferences for s in step.sessions]
        charged = np.asarray([s.charged_wh for s in step.sessions], dtype=np.float64)
        needed = np.maximum(np.asarray([p.needed_wh for p in prefs], dtype=np.float64) - charged, 0.0)
        wished = np.maximum(np.asarray([p.wished_wh for p in prefs], dtype=np.float64) - charged, 0.0)
        caps = [p.price_cap_wished_per_kwh for p in prefs]
        runs = (evs.max_a >= evs.min_a) & (evs.max_a > 0)
        end = [min(max(math.ceil(t / self.slot_s), 1), n_t) for t in evs.time_left_s.tolist()]
        return EvNeeds(
            max_w=np.where(runs, evs.max_a * evs.w_per_a, 0.0),
            needed_wh=needed,
            wished_wh=np.maximum(wished, needed),
            start_slot=np.zeros(len(evs), dtype=np.int64),
            end_slot=np.asarray(end, dtype=np.int64),
            wish_cap_per_wh=np.asarray([np.inf if c is None else float(c) / 1000 for c in caps]),
        )

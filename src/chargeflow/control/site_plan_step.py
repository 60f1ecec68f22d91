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

from chargeflow.control.allocate import SiteTarget, StepInput
from chargeflow.csm.demand import DemandTable
from chargeflow.ems.live_plan import plan_storage, slot_forecast
from chargeflow.ems.site_forecast import BuildingForecaster, FloatArray, PvForecaster
from chargeflow.ems.site_plan import EvNeeds, PlanSettings, SitePlan, SitePlanner
from chargeflow.site.measurement import BuildingPower
from chargeflow.units import SECONDS_PER_HOUR

#: an EV drawing at least this much has shown what it can take (the least an AC station runs at is ~1.4 kW)
SEEN_W = 1000.0
_FULL_W = 1.0

#: the energy price at ``at`` per kWh as known at ``now`` (the first argument); None where none is known
PriceOutlook = Callable[[datetime, datetime], Decimal | None]


@dataclass(slots=True)
class SitePlanStep:
    building: BuildingForecaster
    pv: PvForecaster | None = None
    prices: PriceOutlook | None = None
    settings: PlanSettings = field(default_factory=PlanSettings)
    #: the share of the highest power an EV was seen to draw that the plan counts on: a plan that fills the
    #: last slots at exactly that power comes up short by any dip
    seen_share: float = 0.9
    fallbacks: int = 0  # steps in which there was no plan in time and the rule-based step stood
    solves: int = 0
    failed_solves: int = 0
    _planner: SitePlanner | None = field(default=None, repr=False)
    _plan: SitePlan | None = field(default=None, repr=False)
    _due: datetime | None = field(default=None, repr=False)
    _ids: tuple[tuple[str, ...], tuple[str, ...]] = field(default=((), ()), repr=False)
    #: per EV: when it was last seen, its energy charged then, the highest power it was seen to draw
    _seen: dict[str, tuple[datetime, int, float]] = field(default_factory=dict, repr=False)
    _plan_ids: tuple[str, ...] = field(default=(), repr=False)  # the EVs of the plan's rows, in order
    _plan_max_w: FloatArray = field(default_factory=lambda: np.zeros(0), repr=False)
    _with_ess: bool = field(default=False, repr=False)  # the plan has the ESS (a known capacity and state)

    def observe(self, at: datetime, reading: BuildingPower) -> None:
        """Feed the forecasters with a meter reading taken at ``at``."""
        self.building.observe(at, reading.consumption_w)
        if self.pv is not None:
            self.pv.observe(at, reading.generation_w)

    def _watch(self, step: StepInput) -> tuple[str, ...]:
        """Update the power each EV was seen to draw, from its energy between steps; the ids of those seen."""
        seen = {}
        for s in step.sessions:
            before = self._seen.get(s.id)
            top_w = 0.0
            if before is not None:
                at, charged_wh, top_w = before
                if step.now > at:
                    drawn_w = (s.charged_wh - charged_wh) * SECONDS_PER_HOUR / (step.now - at).total_seconds()
                    top_w = max(top_w, drawn_w)
            seen[s.id] = (step.now, s.charged_wh, top_w)
        self._seen = seen
        return tuple(sorted(i for i, (_, _, w) in seen.items() if w >= SEEN_W))

    def __call__(self, step: StepInput, evs: DemandTable) -> SiteTarget | None:
        ids = (tuple(sorted(evs.ids)), self._watch(step))
        if self._due is None or step.now >= self._due or ids != self._ids:
            self._plan = self._solve(step, evs)
            self._due = step.now + timedelta(seconds=self.settings.slot_s)
            self._ids = ids
            self._plan_ids = evs.ids
        plan = self._plan
        if plan is None:
            self.fallbacks += 1
            return None
        ess_w = float(plan.ess_discharge_w[0] - plan.ess_charge_w[0]) if self._with_ess else None
        # Its full wish for an EV that the plan charges at the most it counts on for it (which is less than
        # the EV was seen to draw), that has not been seen to draw yet (it shows what it can take) or that
        # is still short of ΔE_min: the plan spreads the rest of ΔE_min over its slot, and a driver who
        # leaves within that slot would miss the last of it.
        full = plan.ev_w[:, 0] >= self._plan_max_w - _FULL_W
        ev_w = dict(zip(self._plan_ids, np.where(full, math.inf, plan.ev_w[:, 0]).tolist(), strict=True))
        short = {s.id for s in step.sessions if s.charged_wh < s.preferences.needed_wh}
        for i in self._plan_ids:
            if self._seen[i][2] < SEEN_W or i in short:
                ev_w[i] = math.inf
        return SiteTarget(ev_w, ess_w)

    def _solve(self, step: StepInput, evs: DemandTable) -> SitePlan | None:
        if self._planner is None:
            self._planner = self.settings.planner()
        n_t = self.settings.slots
        dt_h = self.settings.slot_s / SECONDS_PER_HOUR
        starts = [step.now + timedelta(seconds=k * self.settings.slot_s) for k in range(n_t)]
        price = np.asarray([self._price(step, t) for t in starts], dtype=np.float64)
        forecast = slot_forecast(
            step.now, n_t, self.settings.slot_s, self.building, self.pv, price, self.settings.feed_in_per_kwh
        )
        site = step.site
        storage = plan_storage(site.ess, step.ess_state, self.settings.ess_efficiency, price)
        needs = self._needs(step, evs, n_t)
        self._plan_max_w = needs.max_w
        self._with_ess = storage is not None
        plan = self._planner.solve(
            needs,
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
        # The last slot the EV is there for the whole of: a plan that counts on a slot it leaves in the middle
        # of comes up short by the rest of that slot.
        end = [min(max(math.floor(t / self.settings.slot_s), 1), n_t) for t in evs.time_left_s.tolist()]
        # What an EV can take is what it was seen to draw; one not seen yet is planned as if it charged on
        # one phase: the station's maximum on all phases would plan it too late if it cannot.
        seen_w = np.asarray([self._seen[i][2] for i in evs.ids], dtype=np.float64)
        max_w = np.where(
            seen_w >= SEEN_W,
            np.minimum(seen_w * self.seen_share, evs.max_a * evs.w_per_a),
            evs.max_a * step.site.voltage_v,
        )
        return EvNeeds(
            max_w=np.where(runs, max_w, 0.0),
            needed_wh=needed,
            wished_wh=np.maximum(wished, needed),
            start_slot=np.zeros(len(evs), dtype=np.int64),
            end_slot=np.asarray(end, dtype=np.int64),
            wish_cap_per_wh=np.asarray([np.inf if c is None else float(c) / 1000 for c in caps]),
        )

"""One control step of the site, CSM and EMS together, as a pure function.

The CSM turns sessions into P_needed and P_wished (``csm.demand``); the EMS grants P_granted
(``ems.balance.grant``); the CSM splits it into per-station limits within every fuse (``csm.split``); the
EMS sets the ESS once the EVs' power is known (``ems.balance.settle``). On a live site the two actors run
apart and exchange ``exchange.PowerDemand`` / ``PowerGrant``; here they meet in one call, which is what the
``allocate`` command, the simulator's headless mode and the benchmarks run.

Fuses count consumption, never generation: PV can vanish within seconds (a cloud), faster than a control
step, so it does not buy fuse headroom. The ESS's discharge is not counted as fuse relief either; it relieves
only the grid access limit (eq. 3.2.6.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import numpy as np

from chargeflow.csm.demand import DemandTable, EvSession, FloatArray, demand_table
from chargeflow.csm.split import Limit, SplitResult, Strategy, split
from chargeflow.ems.balance import grant, settle
from chargeflow.ems.site_plan import follow_plan
from chargeflow.site.measurement import BuildingPower, EssState
from chargeflow.site.model import Site
from chargeflow.site.tree import CircuitTree, building_loads_a, check_site, constraint_index
from chargeflow.units import GRID_PHASES, ceil_current


@dataclass(frozen=True, slots=True)
class StepInput:
    site: Site
    now: datetime
    step_s: float
    building: BuildingPower
    sessions: tuple[EvSession, ...]
    strategy: Strategy = Strategy.EDF
    ess_state: EssState | None = None
    price_per_kwh: Decimal | None = None


@dataclass(frozen=True, slots=True)
class StepResult:
    needed_w: float
    wished_w: float
    granted_w: float
    grant_reason: str
    ev_w: float
    ess_discharge_w: float  # negative: charging
    ess_reason: str
    grid_w: float  # at the grid access point after this step's decisions, positive = import
    feasible: bool  # every EV's need is met
    limits: tuple[Limit, ...]


class StepPlanner(Protocol):
    """The ``mpc`` strategy (``allocate_mpc.MpcPlanner``): per-station limits for this step from a plan, or
    None when the plan is late, fails or would break a rule of the step; then the core split stands."""

    def __call__(
        self,
        step: StepInput,
        evs: DemandTable,
        tree: CircuitTree,
        other_loads_a: list[float],
        granted_w: float,
    ) -> SplitResult | None: ...


@dataclass(frozen=True, slots=True)
class SiteTarget:
    """What the site plan wants for this step: each EV's power by session id (an EV it does not name: 0),
    and the ESS's set-point (positive: discharge; None where the plan has no ESS)."""

    ev_w: Mapping[str, float]
    ess_discharge_w: float | None


def wishes_within_plan(evs: DemandTable, planned_w: FloatArray) -> DemandTable:
    """Each EV's wish lowered to its planned power — rounded up to the current step and to the station's
    minimum, as AC charging runs at 0 A or at least that — and never below its need.

    The EVs' total alone is not enough: the split would hand it out by its own rule (EDF: the earliest
    departure first) and starve an EV that the plan charges early because it needs long."""
    plan_a = ceil_current(np.where(planned_w > _PLAN_ZERO_W, planned_w, 0.0) / evs.w_per_a)
    plan_a = np.where(plan_a > 0, np.maximum(plan_a, evs.min_a), 0.0)
    return replace(evs, wish_a=np.maximum(np.minimum(evs.wish_a, plan_a), evs.need_a))


class SiteStepPlanner(Protocol):
    """The site plan (``site_plan_step.SitePlanStep``): targets for this step from a plan of the whole site
    against prices and forecasts, or None when the plan is late or fails; then the rule-based step stands."""

    def __call__(self, step: StepInput, evs: DemandTable) -> SiteTarget | None: ...


SITE_PLAN_REASON = "site_plan"
_PLAN_ZERO_W = 1.0  # planned EV power below this is the solver's rounding, not a plan to charge


def control_step(
    step: StepInput,
    tree: CircuitTree | None = None,
    planner: StepPlanner | None = None,
    site_planner: SiteStepPlanner | None = None,
) -> StepResult:
    """One step. With a ``site_planner`` its target caps each EV's wish at max(its need, its planned power)
    and the grant at max(P_needed, the plan's EV power), never above what ``grant`` allows, and sets the ESS
    within the rules of ``settle`` (``follow_plan``)."""
    site = step.site
    tree = tree or check_site(site)
    evs = demand_table(step.sessions, step.now, step.step_s, site.voltage_v, step.price_per_kwh)
    needed_w, wished_w = evs.needed_w, evs.wished_w
    g = grant(needed_w, wished_w, step.building, site.grid, site.ess, step.ess_state, step.step_s)
    granted_w, grant_reason = g.granted_w, g.reason.value
    target = site_planner(step, evs) if site_planner is not None else None
    if target is not None:
        planned_w = np.asarray([target.ev_w.get(i, 0.0) for i in evs.ids], dtype=np.float64)
        evs = wishes_within_plan(evs, planned_w)
        if max(needed_w, float(planned_w.sum())) < granted_w:
            granted_w, grant_reason = max(needed_w, float(planned_w.sum())), SITE_PLAN_REASON
    loads_a = building_loads_a(site, tree, step.building.consumption_w)
    result = split(evs, tree, loads_a, granted_w, step.strategy, grant_reason)
    if planner is not None:  # mpc: the plan's first slot if it keeps every rule, else the split above
        result = planner(step, evs, tree, loads_a, granted_w) or result
    charge_room_w = float("inf")
    if site.ess is not None:
        ess_index = tree.index[site.ess.circuit]
        room_a = min(
            result.headroom_a[constraint_index(c, p)] for c in tree.chains[ess_index] for p in GRID_PHASES
        )
        charge_room_w = 3 * site.voltage_v * max(room_a, 0.0)
    ess = settle(
        step.building, result.power_w, site.grid, site.ess, step.ess_state, step.step_s, charge_room_w
    )
    ess_w, ess_reason, grid_w = ess.discharge_w, ess.reason.value, ess.grid_w
    if target is not None and target.ess_discharge_w is not None:
        held = follow_plan(
            target.ess_discharge_w,
            step.building,
            result.power_w,
            site.grid,
            site.ess,
            step.ess_state,
            step.step_s,
            charge_room_w,
        )
        if held is not None:
            ess_w, ess_reason, grid_w = held.discharge_w, held.reason.value, held.grid_w
    return StepResult(
        needed_w=needed_w,
        wished_w=wished_w,
        granted_w=granted_w,
        grant_reason=grant_reason,
        ev_w=result.power_w,
        ess_discharge_w=ess_w,
        ess_reason=ess_reason,
        grid_w=grid_w,
        feasible=g.feasible and result.needs_met,
        limits=result.limits,
    )

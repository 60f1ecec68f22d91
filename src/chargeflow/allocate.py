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

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from chargeflow.csm.demand import DemandTable, EvSession, demand_table
from chargeflow.csm.split import Limit, SplitResult, Strategy, split
from chargeflow.ems.balance import grant, settle
from chargeflow.site.measurement import BuildingPower, EssState
from chargeflow.site.model import Site
from chargeflow.site.tree import CircuitTree, building_loads_a, check_site, constraint_index
from chargeflow.units import GRID_PHASES


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


def control_step(
    step: StepInput, tree: CircuitTree | None = None, planner: StepPlanner | None = None
) -> StepResult:
    site = step.site
    tree = tree or check_site(site)
    evs = demand_table(step.sessions, step.now, step.step_s, site.voltage_v, step.price_per_kwh)
    needed_w, wished_w = evs.needed_w, evs.wished_w
    g = grant(needed_w, wished_w, step.building, site.grid, site.ess, step.ess_state, step.step_s)
    loads_a = building_loads_a(site, tree, step.building.consumption_w)
    result = split(evs, tree, loads_a, g.granted_w, step.strategy, g.reason.value)
    if planner is not None:  # mpc: the plan's first slot if it keeps every rule, else the split above
        result = planner(step, evs, tree, loads_a, g.granted_w) or result
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
    return StepResult(
        needed_w=needed_w,
        wished_w=wished_w,
        granted_w=g.granted_w,
        grant_reason=g.reason.value,
        ev_w=result.power_w,
        ess_discharge_w=ess.discharge_w,
        ess_reason=ess.reason.value,
        grid_w=ess.grid_w,
        feasible=g.feasible and result.needs_met,
        limits=result.limits,
    )

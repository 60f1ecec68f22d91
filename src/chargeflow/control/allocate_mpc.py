"""The ``mpc`` strategy of the control step: per-station limits from the predictive optimiser.

``control_step`` computes the core split first (fast, always there); with an ``MpcPlanner`` it then asks
the optimiser (``ems.optimiser``) for a plan over the EVs' stays and, if the plan is there in time and
keeps every rule of the step, applies its first slot instead. Otherwise the core split stands: never no
limit. The rules the plan must keep are the core's: every EV gets at least its need now (P_needed, eq.
3.2.6.1), 0 A or between its minimum and maximum current, every fuse phase (eq. 3.2.5.1) and the grant
P_granted.

What the plan sees: each EV's energy still wanted — up to ΔE_max, or only up to ΔE_min where the price is
above the driver's cap for the rest — its departure, its maximum current; the fuse headroom left by the
other loads and the grant, held for the whole horizon (a persistence forecast: the step knows no better).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from chargeflow.control.allocate import StepInput
from chargeflow.csm.demand import DemandTable, EvSession, WishReason
from chargeflow.csm.split import Limit, SplitResult
from chargeflow.ems.optimiser import ChargeRequest, Planner, rolling_boundaries
from chargeflow.ems.phasor import line_currents, linearise, phasor_matrix
from chargeflow.ems.pilots import Pilots, round_to_pilots
from chargeflow.site.tree import CircuitTree
from chargeflow.units import SECONDS_PER_HOUR, floor_current

log = logging.getLogger(__name__)

REASON = "mpc_plan"
#: the plan's slot where the control step is shorter (a live site steps every 10 s): 5 minutes
PLAN_SLOT_S = 300.0
_TOL = 1e-6


@dataclass(slots=True)
class MpcPlanner:
    """Plans with slots of ``step_s`` over at most ``horizon_s``; a solve that takes longer than
    ``time_limit_s`` is late and the core split stands."""

    step_s: float
    horizon_s: float = 24 * 3600.0
    time_limit_s: float = 0.5
    #: start each solve from the last one's basis (``ems.optimiser``); the EVs are known by their session id
    warm: bool = True
    fallbacks: int = 0
    #: the fallbacks by cause: the solver's status where it found no optimum (``time limit reached``,
    #: ``infeasible`` …), ``need_unmet`` or ``limit_broken`` where the rounded plan would break a rule
    causes: dict[str, int] = field(default_factory=dict)
    _planner: Planner | None = field(default=None, repr=False)
    _keys: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def for_step(cls, step_s: float) -> MpcPlanner:
        """The planner for a control step of ``step_s``: plan slots of that step, or of ``PLAN_SLOT_S``
        where the step is shorter (a live site steps every 10 s)."""
        return cls(step_s=max(step_s, PLAN_SLOT_S))

    @property
    def warm_starts(self) -> int:
        return 0 if self._planner is None else self._planner.warm_starts

    def _keys_of(self, ids: list[str]) -> npt.NDArray[np.int64]:
        known = self._keys
        if len(known) > 1 << 20:  # a long-running site: forget the ids of sessions long gone
            known.clear()
        return np.asarray([known.setdefault(i, len(known)) for i in ids], dtype=np.int64)

    def _fallback(self, cause: str) -> SplitResult | None:
        """Count a plan that is late, failed or would break a rule, by its cause; the core split stands."""
        self.fallbacks += 1
        self.causes[cause] = self.causes.get(cause, 0) + 1
        log.debug("mpc: the core split stands (%s)", cause)
        return None

    def __call__(
        self,
        step: StepInput,
        evs: DemandTable,
        tree: CircuitTree,
        other_loads_a: list[float],
        granted_w: float,
    ) -> SplitResult | None:
        return self.plan(step.now, step.sessions, evs, tree, other_loads_a, granted_w)

    def plan(
        self,
        now: datetime,
        sessions: Sequence[EvSession],
        evs: DemandTable,
        tree: CircuitTree,
        other_loads_a: list[float],
        granted_w: float,
    ) -> SplitResult | None:
        """The plan's first slot as limits for the EVs of ``evs`` (``sessions`` in the same order), or
        None where the core split must stand. The live CSM calls this (``csm.smart_charging``), the
        control step ``__call__``."""
        n = len(evs)
        if n == 0:
            return None
        if self._planner is None:
            self._planner = Planner(
                SECONDS_PER_HOUR * 24 / self.step_s, time_limit_s=self.time_limit_s, warm=self.warm
            )
        # One row per fuse phase, one for the grant (in W per A of each EV), all with real coefficients:
        # the linear form is then exact (a zero-width sector in ``ems.phasor``).
        n_cons = 3 * len(tree.circuits)
        matrix = np.zeros((n_cons + 1, n))
        for i in range(n):
            matrix[list(tree.constraints_of(evs.circuits[i], evs.grid_phases[i])), i] = 1.0
        matrix[n_cons] = evs.w_per_a
        head = np.asarray(tree.fuse_limits()) - np.asarray(other_loads_a)
        limits = np.maximum(np.r_[head, max(granted_w, 0.0)], 0.0)
        phasors = phasor_matrix(matrix, np.zeros(n))
        lin = linearise(phasors, limits)

        rest_wh = np.asarray(
            [
                max(
                    (
                        s.preferences.needed_wh
                        if evs.reason(i) is WishReason.PRICE_CAP
                        else s.preferences.wished_wh
                    )
                    - s.charged_wh,
                    0,
                )
                for i, s in enumerate(sessions)
            ],
            dtype=np.float64,
        )
        slot_h = self.step_s / SECONDS_PER_HOUR
        energy = rest_wh / (evs.w_per_a * slot_h)
        end = np.ceil(np.maximum(evs.time_left_s, self.step_s) / self.step_s).astype(np.int64)
        n_slots = int(min(end.max(), max(1, round(self.horizon_s / self.step_s))))
        max_a = np.where(evs.wish_a > 0, evs.max_a, 0.0)
        request = ChargeRequest(
            station=np.arange(n, dtype=np.int64),
            energy_a_slots=np.maximum(energy, evs.need_a),
            start_slot=np.zeros(n, dtype=np.int64),
            end_slot=np.minimum(end, n_slots),
            max_a=max_a,
            first_min_a=evs.need_a,
        )
        origin = round(now.timestamp() / self.step_s)
        plan = self._planner.solve(
            lin,
            request,
            rolling_boundaries(n_slots, origin_slot=origin),
            keys=self._keys_of(list(evs.ids)),
            origin_slot=origin,
        )
        if not plan.ok:
            return self._fallback(plan.status.lower())
        levels = [np.array([m, x]) for m, x in zip(evs.min_a.tolist(), evs.max_a.tolist(), strict=True)]
        rates = round_to_pilots(
            plan.first_a, np.zeros(n), max_a, Pilots(levels, np.ones(n, dtype=bool)), phasors, limits
        )
        stepped = floor_current(rates)
        rates = np.where(stepped < evs.min_a - _TOL, 0.0, stepped)
        met = rates >= evs.need_a - _TOL
        if not met.all():
            return self._fallback("need_unmet")
        if np.any(line_currents(phasors, rates) > limits + _TOL):
            return self._fallback("limit_broken")
        power = rates * evs.w_per_a
        reasons = [evs.reason(i).value if rates[i] >= evs.max_a[i] - _TOL else REASON for i in range(n)]
        out = tuple(map(Limit, evs.ids, rates.tolist(), power.tolist(), reasons, met.tolist()))
        headroom = head - matrix[:n_cons] @ rates
        return SplitResult(out, float(power.sum()), True, tuple(headroom.tolist()))

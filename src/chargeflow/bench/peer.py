"""The peer for ``bench allocate``: acnportal's earliest-deadline-first (``SortedSchedulingAlgo``, the
classic online algorithm of Caltech's Adaptive Charging Network) on the same steps as ours.

Both get the same problem: every fuse phase of the synthetic site, with the building's load taken off,
is one row of acnportal's constraint matrix (all phase angles 0, so that a row is the plain sum of the
currents on that phase, as our fuse check is), and the grant is one more row in which each station
counts with its number of phases (power / voltage). Each EV's maximum is min(station, EV), its deadline
the same. acnportal decides on current only; ours also computes the demand, the grant and the ESS in
the same time. acnportal is the ``bench`` extra, not a runtime dependency.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from chargeflow.control.allocate import StepInput, control_step
from chargeflow.csm.demand import demand_table
from chargeflow.ems.balance import grant
from chargeflow.site.tree import CircuitTree, building_loads_a, check_site


@dataclass(frozen=True, slots=True)
class PeerResult:
    steps: int
    peer_ms_per_step_median: float
    ours_ms_per_step_median: float
    speedup: float  # peer time / our time, same steps, same run
    current_ratio: float  # Σ our currents / Σ acnportal's currents on the same steps (EDF both)
    peer_violations: int  # steps in which acnportal's schedule broke a fuse phase or the grant


class _Interface:
    """What acnportal's sorted algorithms ask of their interface, for one step."""

    def __init__(self, infrastructure: Any, remaining: dict[str, float]) -> None:
        self._infrastructure = infrastructure
        self._remaining = remaining
        self.period = 1.0  # minutes; the demand is given in A·periods directly

    def infrastructure_info(self) -> Any:
        return self._infrastructure

    def remaining_amp_periods(self, session: Any) -> float:
        return self._remaining[session.station_id]


def compare_with_acnportal(inputs: list[StepInput], tree: CircuitTree | None = None) -> PeerResult:
    from acnportal.acnsim.interface import InfrastructureInfo, SessionInfo
    from acnportal.algorithms import SortedSchedulingAlgo, earliest_deadline_first

    peer_ms, ours_ms, ours_a, peer_a = [], [], 0.0, 0.0
    violations = 0
    for step in inputs:
        site = step.site
        tree = tree or check_site(site)
        t0 = time.perf_counter()
        result = control_step(step, tree)
        ours_ms.append((time.perf_counter() - t0) * 1000.0)
        ours_a += sum(lim.current_a for lim in result.limits)

        # The same problem, as acnportal states it.
        table = demand_table(step.sessions, step.now, step.step_s, site.voltage_v, step.price_per_kwh)
        g = grant(
            table.needed_w, table.wished_w, step.building, site.grid, site.ess, step.ess_state, step.step_s
        )
        n = len(step.sessions)
        rows = 3 * len(tree.circuits)
        matrix = np.zeros((rows + 1, n))
        for j, s in enumerate(step.sessions):
            for k in tree.constraints_of(s.circuit, table.grid_phases[j]):
                matrix[k, j] = 1.0
            matrix[rows, j] = len(table.grid_phases[j])
        fuses = np.asarray(tree.fuse_limits())
        head = fuses - np.asarray(building_loads_a(site, tree, step.building.consumption_w))
        limits = np.append(np.maximum(head, 0.0), g.granted_w / site.voltage_v)
        ids = [s.id for s in step.sessions]
        infrastructure = InfrastructureInfo(
            matrix,
            limits,
            np.zeros(n),
            np.full(n, site.voltage_v),
            [f"c{k}" for k in range(rows + 1)],
            ids,
            table.wish_a.copy(),
            np.zeros(n),
        )
        minute = 0
        sessions = [
            SessionInfo(
                s.id,
                s.id,
                1e6,  # kWh: the wish, not the energy, bounds the rate here
                0.0,
                minute,
                minute + max(int(table.time_left_s[j] // 60), 1),
                current_time=minute,
                min_rates=0.0,
                max_rates=float(table.wish_a[j]),
            )
            for j, s in enumerate(step.sessions)
        ]
        algo = SortedSchedulingAlgo(earliest_deadline_first)
        algo.register_interface(_Interface(infrastructure, {i: 1e9 for i in ids}))
        t0 = time.perf_counter()
        schedule = algo.schedule(sessions)
        peer_ms.append((time.perf_counter() - t0) * 1000.0)
        rates = np.asarray([schedule[i][0] for i in ids])
        peer_a += float(rates.sum())
        if np.any(matrix @ rates > limits + 1e-6):
            violations += 1
    peer, ours = statistics.median(peer_ms), statistics.median(ours_ms)
    return PeerResult(
        steps=len(inputs),
        peer_ms_per_step_median=round(peer, 3),
        ours_ms_per_step_median=round(ours, 3),
        speedup=round(peer / ours, 1),
        current_ratio=round(ours_a / peer_a, 4) if peer_a else float("nan"),
        peer_violations=violations,
    )

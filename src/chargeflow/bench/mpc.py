"""Time the ``mpc`` strategy of the control step on ``bench allocate``'s synthetic site, cold and warm.

Same site and seeded random state as ``sim.bench_allocate``; the step is 15 minutes and the plan covers
24 h (96 slots, grouped into ``ems.optimiser.rolling_boundaries`` blocks). The measured steps are one
site's consecutive steps, as a live site runs them: each starts 15 minutes after the last, with every EV
charged by what the last step gave it and the EVs whose departure has passed gone (the first state is
``bench allocate``'s first random one with the needs already met: see ``needs_met``). The same steps are
timed twice: **cold**, a full build and solve of the LP every step (HiGHS from presolve and its own
starting basis), and **warm**, the same build started from the rest of the previous step's plan
(``Planner(warm=True)``, see ``ems.optimiser``).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from chargeflow.bench.allocate import random_step, synthetic_site
from chargeflow.control.allocate import StepInput, control_step
from chargeflow.control.allocate_mpc import MpcPlanner
from chargeflow.csm.split import Strategy
from chargeflow.site.tree import CircuitTree, check_site
from chargeflow.units import SECONDS_PER_HOUR

STEP_S = 900.0


@dataclass(frozen=True, slots=True)
class MpcBenchResult:
    evs: int
    circuits: int
    strategy: str
    steps: int
    ms_per_step_median: float  # cold
    ms_per_step_p95: float
    fallbacks: int
    warm_ms_per_step_median: float
    warm_ms_per_step_p95: float
    warm_fallbacks: int
    warm_starts: int  # steps HiGHS started from the rest of the previous plan


def consecutive_steps(
    first: StepInput, tree: CircuitTree, steps: int, planner: MpcPlanner | None = None
) -> list[StepInput]:
    """``steps`` consecutive steps from ``first``: each EV charged by the limit the step gave it."""
    out = [first]
    for _ in range(steps - 1):
        last = out[-1]
        result = control_step(last, tree, planner)
        power = {lim.id: lim.power_w for lim in result.limits}
        now = last.now + timedelta(seconds=STEP_S)
        sessions = tuple(
            replace(s, charged_wh=s.charged_wh + round(power.get(s.id, 0.0) * STEP_S / SECONDS_PER_HOUR))
            for s in last.sessions
            if s.preferences.departure > now
        )
        out.append(replace(last, now=now, sessions=sessions))
    return out


def needs_met(step: StepInput) -> StepInput:
    """The step with every EV's need (ΔE_min) already charged, so that each step has a plan: the random
    states' needs often do not fit the fuses, and then the plan's need bounds are infeasible, the core split
    stands and there is nothing to start the next solve from."""
    sessions = tuple(
        replace(s, preferences=replace(s.preferences, needed_wh=min(s.preferences.needed_wh, s.charged_wh)))
        for s in step.sessions
    )
    return replace(step, sessions=sessions)


def _time(inputs: Sequence[StepInput], tree: CircuitTree, planner: MpcPlanner) -> list[float]:
    times_ms = []
    for step in inputs:
        t0 = time.perf_counter()
        control_step(step, tree, planner)
        times_ms.append((time.perf_counter() - t0) * 1000.0)
    return sorted(times_ms)


def _p95(times_ms: list[float]) -> float:
    return round(times_ms[min(len(times_ms) - 1, int(0.95 * len(times_ms)))], 3)


def bench_mpc(n_evs: int, steps: int = 10, seed: int = 1) -> MpcBenchResult:
    rng = random.Random(seed)
    site = synthetic_site(n_evs, rng)
    tree = check_site(site)
    first = needs_met(replace(random_step(site, rng, Strategy.EDF), step_s=STEP_S))
    # The site as the mpc strategy runs it (this also imports everything and makes HiGHS's first call).
    inputs = consecutive_steps(first, tree, steps + 1, MpcPlanner(step_s=STEP_S, time_limit_s=30.0))
    cold = MpcPlanner(step_s=STEP_S, time_limit_s=30.0, warm=False)
    warm = MpcPlanner(step_s=STEP_S, time_limit_s=30.0, warm=True)
    control_step(inputs[0], tree, warm)  # the warm planner's first basis: the step before those timed
    warm.fallbacks = 0
    cold_ms = _time(inputs[1:], tree, cold)
    warm_ms = _time(inputs[1:], tree, warm)
    return MpcBenchResult(
        evs=n_evs,
        circuits=len(site.circuits),
        strategy="mpc",
        steps=steps,
        ms_per_step_median=round(statistics.median(cold_ms), 3),
        ms_per_step_p95=_p95(cold_ms),
        fallbacks=cold.fallbacks,
        warm_ms_per_step_median=round(statistics.median(warm_ms), 3),
        warm_ms_per_step_p95=_p95(warm_ms),
        warm_fallbacks=warm.fallbacks,
        warm_starts=warm.warm_starts,
    )

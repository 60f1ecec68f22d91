"""Time the ``mpc`` strategy of the control step on ``bench allocate``'s synthetic site.

Same site and same seeded random states as ``sim.bench_allocate``; the step is 15 minutes and the plan
covers 24 h (96 slots, grouped into ``ems.optimiser.rolling_boundaries`` blocks). Each measured step is a
full build and solve of the LP (no basis is carried over: the EVs differ from one random state to the next).
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, replace

from chargeflow.allocate import control_step
from chargeflow.allocate_mpc import MpcPlanner
from chargeflow.csm.split import Strategy
from chargeflow.sim.bench_allocate import random_step, synthetic_site
from chargeflow.site.tree import check_site

STEP_S = 900.0


@dataclass(frozen=True, slots=True)
class MpcBenchResult:
    evs: int
    circuits: int
    strategy: str
    steps: int
    ms_per_step_median: float
    ms_per_step_p95: float
    fallbacks: int


def bench_mpc(n_evs: int, steps: int = 10, seed: int = 1) -> MpcBenchResult:
    rng = random.Random(seed)
    site = synthetic_site(n_evs, rng)
    tree = check_site(site)
    inputs = [replace(random_step(site, rng, Strategy.EDF), step_s=STEP_S) for _ in range(steps)]
    planner = MpcPlanner(step_s=STEP_S, time_limit_s=30.0)
    control_step(inputs[0], tree, planner)  # warm-up: imports, HiGHS's first call
    planner.fallbacks = 0
    times_ms = []
    for step in inputs:
        t0 = time.perf_counter()
        control_step(step, tree, planner)
        times_ms.append((time.perf_counter() - t0) * 1000.0)
    times_ms.sort()
    return MpcBenchResult(
        evs=n_evs,
        circuits=len(site.circuits),
        strategy="mpc",
        steps=steps,
        ms_per_step_median=round(statistics.median(times_ms), 3),
        ms_per_step_p95=round(times_ms[min(len(times_ms) - 1, int(0.95 * len(times_ms)))], 3),
        fallbacks=planner.fallbacks,
    )

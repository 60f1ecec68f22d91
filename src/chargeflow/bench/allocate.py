"""Benchmark of one control step (``chargeflow bench allocate``) on a synthetic three-level site.

The site: a grid access point, feeders of five sub-panels each, twenty charging points per sub-panel; a
mix of three-phase stations and single-phase ones on all three phase rotations; fuses and a grid limit
small enough that every level of the tree binds somewhere. Each measured step gets a fresh state (building
load, each EV's energy so far, departure, learned EV maximum), drawn from a seeded generator so that runs
are comparable.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chargeflow.control.allocate import StepInput, control_step
from chargeflow.csm.demand import EvSession, Preferences
from chargeflow.csm.split import Strategy
from chargeflow.site.measurement import BuildingPower, EssState
from chargeflow.site.model import ChargingPoint, Circuit, Ess, GridConnection, Site
from chargeflow.site.tree import check_site

EVS_PER_PANEL = 20
PANELS_PER_FEEDER = 5
START = datetime(2026, 3, 2, 8, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BenchResult:
    evs: int
    circuits: int
    strategy: str
    steps: int
    ms_per_step_median: float
    ms_per_step_p95: float
    needs_met_steps_pct: float


def synthetic_site(n_evs: int, rng: random.Random) -> Site:
    panels = -(-n_evs // EVS_PER_PANEL)
    feeders = -(-panels // PANELS_PER_FEEDER)
    circuits = [Circuit("grid", None, (float(max(400, 50 * panels)),) * 3)]
    for f in range(feeders):
        circuits.append(Circuit(f"feeder{f}", "grid", (250.0, 250.0, 250.0)))
    points = []
    for p in range(panels):
        circuits.append(Circuit(f"panel{p}", f"feeder{p // PANELS_PER_FEEDER}", (100.0, 100.0, 80.0)))
    for i in range(n_evs):
        phases = 3 if rng.random() < 0.7 else 1
        points.append(
            ChargingPoint(
                f"cp{i}", f"panel{i // EVS_PER_PANEL}", phases, rng.randint(1, 3), rng.choice((16, 32))
            )
        )
    total_w = sum(cp.max_current_a * cp.phases * 230 for cp in points)
    return Site(
        id="bench",
        grid=GridConnection(max_import_w=0.35 * total_w, max_export_w=0.2 * total_w),
        circuits=tuple(circuits),
        charging_points=tuple(points),
        building_circuit="grid",
        ess=Ess("grid", 500_000, 50_000, 100_000.0, 100_000.0),
    )


def random_step(site: Site, rng: random.Random, strategy: Strategy) -> StepInput:
    now = START + timedelta(minutes=rng.randint(0, 600))
    sessions = []
    for cp in site.charging_points:
        needed = rng.randint(2, 30) * 1000
        prefs = Preferences(
            needed, needed + rng.randint(0, 30) * 1000, now + timedelta(minutes=rng.randint(20, 600))
        )
        ev_max = rng.choice((None, None, 10.0, 16.0))
        sessions.append(EvSession.at(cp, prefs, charged_wh=rng.randint(0, needed), ev_max_current_a=ev_max))
    return StepInput(
        site=site,
        now=now,
        step_s=60.0,
        building=BuildingPower(rng.uniform(0.05, 0.3) * site.grid.max_import_w, rng.uniform(0, 50_000)),
        sessions=tuple(sessions),
        strategy=strategy,
        ess_state=EssState(rng.uniform(50_000, 500_000)),
    )


def bench_steps(n_evs: int, strategy: Strategy, steps: int, seed: int = 1) -> list[StepInput]:
    """The measured steps: one synthetic site, ``steps`` random states of it."""
    rng = random.Random(seed)
    site = synthetic_site(n_evs, rng)
    return [random_step(site, rng, strategy) for _ in range(steps)]


def bench_allocate(n_evs: int, strategy: Strategy, steps: int = 100, seed: int = 1) -> BenchResult:
    inputs = bench_steps(n_evs, strategy, steps, seed)
    site = inputs[0].site
    tree = check_site(site)
    control_step(inputs[0], tree)  # warm-up: imports, numpy's first calls
    times_ms = []
    met = 0
    for step in inputs:
        t0 = time.perf_counter()
        result = control_step(step, tree)
        times_ms.append((time.perf_counter() - t0) * 1000.0)
        met += result.feasible
    times_ms.sort()
    return BenchResult(
        evs=n_evs,
        circuits=len(site.circuits),
        strategy=strategy.value,
        steps=steps,
        ms_per_step_median=round(statistics.median(times_ms), 3),
        ms_per_step_p95=round(times_ms[min(len(times_ms) - 1, int(0.95 * len(times_ms)))], 3),
        needs_met_steps_pct=round(100.0 * met / steps, 1),
    )

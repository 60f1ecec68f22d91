"""The live CSM with the predictive optimiser (``--strategy mpc``): the plan's limits where it is there in
time and keeps the rules, the split where it is late, busy or fails — never no limit."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

from chargeflow.control.allocate_mpc import PLAN_SLOT_S, REASON, MpcPlanner
from chargeflow.csm.demand import Preferences
from chargeflow.csm.smart_charging import (
    LimitPlanner,
    ObservedRepository,
    SmartCharging,
    SmartChargingConfig,
)
from chargeflow.csm.split import SplitResult
from tests.unit.test_control_services import SITE, Rig

GRID_W = 40_000 - 10_000  # the rig's grid limit less its building load


def with_planner(planner: LimitPlanner, timeout_s: float = 2.0) -> Rig:
    rig = Rig()
    config = SmartChargingConfig(
        step_s=10, safe_current_a=6.0, margin_pct=0.0, planner=planner, plan_timeout_s=timeout_s
    )
    rig.csm = SmartCharging(SITE, rig.repo, rig.bus, rig.control, rig.clock, config, rig.meter)
    rig.observed = ObservedRepository(rig.repo, rig.csm.live.observe)
    return rig


async def two_sessions(rig: Rig) -> None:
    """cp1 leaves in an hour needing 15 kWh; cp2 stays all day and wishes 40 kWh."""
    now = rig.clock.now()
    rig.csm.set_preferences(await rig.start("cp1"), Preferences(15_000, 15_000, now + timedelta(hours=1)))
    rig.csm.set_preferences(await rig.start("cp2"), Preferences(0, 40_000, now + timedelta(hours=9)))


async def test_the_plan_sets_the_limits_within_the_grant() -> None:
    rig = with_planner(MpcPlanner(step_s=PLAN_SLOT_S))
    await two_sessions(rig)
    limits = await rig.step()
    step = rig.csm.last
    assert step is not None
    reasons = {lim.station_id: lim.reason for lim in step.limits}
    assert REASON in reasons.values()  # the plan's limits went out, not the split's
    assert rig.csm.plans_late == 0
    power_w = sum(a * 3 * 230 for a in limits.values())
    # The plan charges as early as it can: the whole grant now, less what the 0.1 A steps round off.
    assert GRID_W - 2 * 0.1 * 690 <= power_w <= GRID_W + 1e-6
    assert all(6.0 <= a <= 32.0 for a in limits.values())


class SlowPlanner:
    """A real planner that waits for ``release`` before planning: late, then busy, then in time."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.inner = MpcPlanner(step_s=PLAN_SLOT_S)
        self.calls = 0

    def plan(self, *args: Any) -> SplitResult | None:
        self.calls += 1
        self.release.wait(5.0)
        return self.inner.plan(*args)


async def test_a_late_plan_leaves_the_split_and_one_solve_runs_at_a_time() -> None:
    slow = SlowPlanner()
    rig = with_planner(slow, timeout_s=0.05)
    await two_sessions(rig)
    split_limits = await rig.step()  # late: the split stands
    assert rig.csm.plans_late == 1
    assert rig.csm.last is not None
    assert REASON not in {lim.reason for lim in rig.csm.last.limits}
    assert split_limits["cp1"] >= 21.7  # the split keeps the need too
    await rig.step()  # the first solve still runs: no second one is started
    assert rig.csm.plans_late == 2
    assert slow.calls == 1
    slow.release.set()
    for _ in range(500):  # the first solve finishes in its thread
        if not rig.csm.planning:
            break
        await asyncio.sleep(0.01)
    await rig.step()
    assert slow.calls == 2
    assert rig.csm.plans_late == 2
    assert rig.csm.last is not None
    assert REASON in {lim.reason for lim in rig.csm.last.limits}


class FailingPlanner:
    def plan(self, *args: Any) -> SplitResult | None:
        raise RuntimeError("solver crashed")


async def test_a_failing_planner_leaves_the_split_in_force() -> None:
    rig = with_planner(FailingPlanner())
    await two_sessions(rig)
    limits = await rig.step()
    assert rig.csm.last is not None
    assert rig.csm.last.fallback is None  # the grant holds; only the plan is missing
    assert set(limits) == {"cp1", "cp2"}
    assert limits["cp1"] >= 21.7
    assert sum(a * 3 * 230 for a in limits.values()) <= GRID_W + 1e-6

"""The EMS as a running actor: each step it reads the site's meters, takes the CSM's latest P_needed and
P_wished, grants P_granted (``ems.balance``), sets the ESS and publishes the grant with a validity window.

It decides nothing itself: the rules are ``ems.balance``'s. When its measurements are stale it publishes
nothing, so that the CSM's last grant runs out and the CSM falls back to its safe limit — an EMS that does
not know the building's load must not hand out power.

With a site planner (``ems.live_plan.LivePlanner``) it plans the site over the next day from the CSM's demand
profile, every plan slot or when the profile changes a lot, in a worker thread so that the step's loop goes
on. The plan's first slot narrows the rule-based step: P_granted is the plan's EV power within
[P_needed, the rules' grant], the ESS follows the plan within the safety rules. A plan that fails, is late
(not back within ``plan_timeout_s``) or is stale leaves the rule-based step in force, never no limit; such
steps are counted in ``plan_fallbacks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from chargeflow.clock import Clock
from chargeflow.ems.balance import EssSetpoint, Grant, grant, settle
from chargeflow.ems.live_plan import LivePlan, LivePlanner, planned_grant
from chargeflow.ems.site_plan import PlannedSetpoint, follow_plan
from chargeflow.exchange import ExchangeBus, GrantPoint, PowerDemand, PowerGrant, Validity
from chargeflow.site.measurement import SiteMeasurement, SiteMeter
from chargeflow.site.model import Site, with_margin

log = logging.getLogger(__name__)


class EssControl(Protocol):
    async def set_discharge(self, discharge_w: float) -> None: ...


@dataclass(frozen=True, slots=True)
class EmsConfig:
    step_s: float = 10.0
    validity_steps: int = 3  # a grant holds for this many steps; then the CSM falls back
    stale_after_steps: int = 3  # measurements older than this many steps are not used
    margin_pct: float = 3.0  # below the grid limit and the fuses, for readings a step old
    timeout_s: float = 5.0  # for every port call
    plan_timeout_s: float = 2.0  # how long a step waits for the site plan's worker thread


@dataclass(frozen=True, slots=True)
class EmsDecision:
    at: datetime
    published: bool
    reason: str
    grant: Grant | None = None  # the rules' grant; with a plan, the published one may be lower
    ess: EssSetpoint | PlannedSetpoint | None = None
    measurement: SiteMeasurement | None = None
    granted_w: float | None = None  # P_granted as published
    planned: bool = False  # the site plan's first slot decided the grant and the ESS


class EmsService:
    def __init__(
        self,
        site: Site,
        meter: SiteMeter,
        bus: ExchangeBus,
        clock: Clock,
        config: EmsConfig,
        ess: EssControl | None = None,
        planner: LivePlanner | None = None,
    ) -> None:
        self._site = site
        self._view = with_margin(site, config.margin_pct)
        self._meter = meter
        self._bus = bus
        self._clock = clock
        self._config = config
        self._ess = ess
        self._planner = planner
        self._plan: LivePlan | None = None
        self._solving: asyncio.Future[LivePlan | None] | None = None
        self.last: EmsDecision | None = None
        self.plan_solves = 0  # plans asked for
        self.plans_failed = 0  # ... that found none (or raised)
        self.plans_late = 0  # ... not back within ``plan_timeout_s``
        self.plan_fallbacks = 0  # steps with a planner but no plan in force: the rule-based step stood

    async def step(self) -> EmsDecision:
        now = self._clock.now()
        cfg = self._config
        try:
            m = await asyncio.wait_for(self._meter.read(), cfg.timeout_s)
        except Exception as err:  # any failure of a meter: no grant, so the CSM falls back; never stop
            log.warning("EMS: no measurement (%s: %s); publishing no grant", type(err).__name__, err)
            return self._done(EmsDecision(now, False, "measurements_missing"))
        if now - m.at > timedelta(seconds=cfg.stale_after_steps * cfg.step_s):
            log.warning("EMS: measurements are %s old; publishing no grant", now - m.at)
            return self._done(EmsDecision(now, False, "measurements_stale", measurement=m))
        demand = self._bus.latest_demand(self._site.id)
        if demand is None or not demand.validity.holds_at(now):
            return self._done(EmsDecision(now, False, "no_valid_demand", measurement=m))
        point = max((p for p in demand.points if p.start <= now), key=lambda p: p.start, default=None)
        if point is None:
            return self._done(EmsDecision(now, False, "no_valid_demand", measurement=m))
        view = self._view
        building = m.building.with_margin(cfg.margin_pct)
        if self._planner is not None:
            self._planner.observe(m.at, m.building)
        g = grant(point.needed_w, point.wished_w, building, view.grid, view.ess, m.ess, cfg.step_s)
        plan = await self._planned(now, demand, m) if self._planner is not None else None
        granted_w, reason = g.granted_w, g.reason.value
        ess: EssSetpoint | PlannedSetpoint | None = None
        if plan is not None:
            granted_w, reason = planned_grant(plan.ev_w, point.needed_w, g)
            if plan.ess_discharge_w is not None:
                ess = follow_plan(
                    plan.ess_discharge_w, building, granted_w, view.grid, view.ess, m.ess, cfg.step_s
                )
        if ess is None:
            # The ESS is set as if the EVs took all of the grant; the next step's reading corrects it.
            ess = settle(building, granted_w, view.grid, view.ess, m.ess, cfg.step_s)
        if self._ess is not None and view.ess is not None:
            await asyncio.wait_for(self._ess.set_discharge(ess.discharge_w), cfg.timeout_s)
        valid_until = now + timedelta(seconds=cfg.validity_steps * cfg.step_s)
        await self._bus.publish_grant(
            PowerGrant(self._site.id, Validity(now, valid_until), (GrantPoint(now, granted_w),), reason)
        )
        return self._done(EmsDecision(now, True, reason, g, ess, m, granted_w, plan is not None))

    async def _planned(self, now: datetime, demand: PowerDemand, m: SiteMeasurement) -> LivePlan | None:
        """The site plan in force for this step, asking for a new one where it is due; None: fall back."""
        planner = self._planner
        assert planner is not None
        if self._solving is not None and self._solving.done():
            self._plan = self._outcome(self._solving)  # a late plan that has come since
            self._solving = None
        if self._solving is None and (self._plan is None or planner.outdated(self._plan, now, demand.points)):
            self.plan_solves += 1
            self._plan = None
            try:
                inputs = planner.inputs(now, demand.points, self._view, m.ess)
            except (ValueError, ArithmeticError) as err:  # a profile or a price the plan cannot use
                log.warning("EMS: no site plan (%s); the rule-based step stands", err)
                self.plans_failed += 1
                self.plan_fallbacks += 1
                return None
            self._solving = asyncio.ensure_future(asyncio.to_thread(planner.solve, inputs))
            self._solving.add_done_callback(_retrieve)
            done, _ = await asyncio.wait({self._solving}, timeout=self._config.plan_timeout_s)
            if done:
                self._plan = self._outcome(self._solving)
                self._solving = None
            else:
                self.plans_late += 1
                log.warning("EMS: the site plan is late; the rule-based step stands")
        plan = self._plan
        if plan is None or not plan.start <= now < plan.until:
            self.plan_fallbacks += 1
            return None
        return plan

    def _outcome(self, solving: asyncio.Future[LivePlan | None]) -> LivePlan | None:
        error = solving.exception()
        if error is not None:
            log.warning("EMS: the site plan failed (%s); the rule-based step stands", error)
        plan = None if error is not None else solving.result()
        self.plans_failed += plan is None
        return plan

    def _done(self, decision: EmsDecision) -> EmsDecision:
        self.last = decision
        return decision

    async def run(self, stop: asyncio.Event) -> None:
        """Step in real time until ``stop`` is set."""
        while not stop.is_set():
            await self.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._config.step_s)


def _retrieve(done: asyncio.Future[LivePlan | None]) -> None:
    """Mark a solve's error as seen, for a solve that ends after the service has stopped asking."""
    if not done.cancelled():
        done.exception()

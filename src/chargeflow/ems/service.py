"""The EMS as a running actor: each step it reads the site's meters, takes the CSM's latest P_needed and
P_wished, grants P_granted (``ems.balance``), sets the ESS and publishes the grant with a validity window.

It decides nothing itself: the rules are ``ems.balance``'s. When its measurements are stale it publishes
nothing, so that the CSM's last grant runs out and the CSM falls back to its safe limit — an EMS that does
not know the building's load must not hand out power.
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
from chargeflow.exchange import ExchangeBus, GrantPoint, PowerGrant, Validity
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


@dataclass(frozen=True, slots=True)
class EmsDecision:
    at: datetime
    published: bool
    reason: str
    grant: Grant | None = None
    ess: EssSetpoint | None = None
    measurement: SiteMeasurement | None = None


class EmsService:
    def __init__(
        self,
        site: Site,
        meter: SiteMeter,
        bus: ExchangeBus,
        clock: Clock,
        config: EmsConfig,
        ess: EssControl | None = None,
    ) -> None:
        self._site = site
        self._view = with_margin(site, config.margin_pct)
        self._meter = meter
        self._bus = bus
        self._clock = clock
        self._config = config
        self._ess = ess
        self.last: EmsDecision | None = None

    async def step(self) -> EmsDecision:
        now = self._clock.now()
        cfg = self._config
        try:
            m = await asyncio.wait_for(self._meter.read(), cfg.timeout_s)
        except (TimeoutError, OSError) as err:
            log.warning("EMS: no measurement (%s); publishing no grant", err)
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
        g = grant(point.needed_w, point.wished_w, building, view.grid, view.ess, m.ess, cfg.step_s)
        # The ESS is set as if the EVs took all of the grant; the next step's reading corrects it.
        ess = settle(building, g.granted_w, view.grid, view.ess, m.ess, cfg.step_s)
        if self._ess is not None and view.ess is not None:
            await asyncio.wait_for(self._ess.set_discharge(ess.discharge_w), cfg.timeout_s)
        valid_until = now + timedelta(seconds=cfg.validity_steps * cfg.step_s)
        await self._bus.publish_grant(
            PowerGrant(
                self._site.id, Validity(now, valid_until), (GrantPoint(now, g.granted_w),), g.reason.value
            )
        )
        return self._done(EmsDecision(now, True, g.reason.value, g, ess, m))

    def _done(self, decision: EmsDecision) -> EmsDecision:
        self.last = decision
        return decision

    async def run(self, stop: asyncio.Event) -> None:
        """Step in real time until ``stop`` is set."""
        while not stop.is_set():
            await self.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._config.step_s)

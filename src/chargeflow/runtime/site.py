"""The running site: one control loop over the site's actors, the same for ``serve --site`` and ``demo``.

``build_site_control`` wires the CSM, its smart charging, the EMS and billing; this module runs them in
time. Each step: demand → grant → split → charging profiles, then the step's power flows into the history
the dashboard draws (and the energy-source shares into billing, where a grid meter measures them). Between
steps, every second, a newly connected station gets its safe limit (``csm.safe``), so that it holds it
before its first transaction. No failure of a step ends the loop: it is logged, every session the smart
charging last knew of goes to its safe limit (``SmartCharging.fall_back``: the store is down, say), and the
next step runs and restores the grant when it can; the smart charging's own fallbacks (no valid grant,
stale meter) put the stations at their safe limits too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from chargeflow.clock import Clock
from chargeflow.csm.demand import Preferences
from chargeflow.csm.model import TransactionRecord
from chargeflow.csm.smart_charging import ChargingStep
from chargeflow.runtime.control import FALLBACK_STEP_FAILED, SiteControl, StepFailed
from chargeflow.site.measurement import BuildingPower, SiteMeasurement, SiteMeter
from chargeflow.site.model import Site
from chargeflow.web.live import ConnectorReading, FlowHistory, FlowSample, step_reason

log = logging.getLogger(__name__)


class StationsMeter:
    """The site meter of a site that names none: the building at its declared peak (0 W where the site
    file gives none), the EVs as their stations' meters say. Safe for the fuses as long as the building
    stays within its peak; a site with a grid meter should name it (``meters:``)."""

    def __init__(self, site: Site, clock: Clock, ev_power_w: Callable[[], float]) -> None:
        self._building = BuildingPower(site.building_peak_w or 0.0)
        self._clock = clock
        self._ev_power_w = ev_power_w

    async def read(self) -> SiteMeasurement:
        return SiteMeasurement(self._clock.now(), self._building, None, self._ev_power_w())


class SiteLoop:
    """Runs a ``SiteControl`` every ``step_s`` of ``clock`` time, in real time."""

    def __init__(
        self,
        control: SiteControl,
        meter: SiteMeter,
        clock: Clock,
        history: FlowHistory,
        step_s: float = 10.0,
        metered: bool = False,
        poll_s: float = 1.0,
    ) -> None:
        self.control = control
        self._meter = meter
        self._clock = clock
        self._history = history
        self._step_s = step_s
        self._metered = metered  # a real grid meter: the step's flows can be attributed to sessions
        self._poll_s = poll_s
        self.steps = 0
        self.failures = 0
        self.early_steps = 0  # steps run before their time, woken by a jump in a meter's reading
        self._failing = False  # the last step failed

    async def run(self, wake: asyncio.Event | None = None) -> None:
        """Step until cancelled; early where ``wake`` is set (a meter saw the site's load jump), so that
        a step in the load reaches the stations' limits within a fraction of the step."""
        loop = asyncio.get_running_loop()
        wake = wake or asyncio.Event()
        while True:
            due = loop.time() + self._step_s
            wake.clear()
            await self.step()
            while (left := due - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), min(left, self._poll_s))
                if wake.is_set():
                    self.early_steps += 1
                    log.debug("site: a meter's reading jumped; stepping now")
                    break
                try:
                    await self.control.charging.send_safe_defaults()
                except Exception:  # a station that answers nonsense must not stop the loop
                    log.exception("site: sending safe limits failed")

    async def step(self) -> None:
        self.steps += 1
        try:
            await self.control.step()
            self._failing = False
        except Exception as err:
            self.failures += 1
            if self._failing:  # the traceback once per outage, a line for every step of it
                log.warning("site: control step %d failed too (%s: %s)", self.steps, type(err).__name__, err)
            else:
                log.exception("site: control step %d failed; the next step runs as usual", self.steps)
            self._failing = True
            await self._fall_back(err)
        try:
            measurement = await asyncio.wait_for(self._meter.read(), 5.0)
        except Exception as err:
            log.debug("site: no measurement for the history (%s)", err)
            measurement = None
        await self._record(measurement)

    async def _fall_back(self, err: Exception) -> None:
        """A failed step leaves no station at a limit split from a grant the CSM can no longer check:
        every session it last knew of goes to its safe limit; the next step that runs restores the grant."""
        reason = err.reason if isinstance(err, StepFailed) else FALLBACK_STEP_FAILED
        try:
            await self.control.charging.fall_back(reason)
        except Exception:
            log.exception("site: sending the safe limits after a failed step failed")

    async def _record(self, m: SiteMeasurement | None) -> None:
        charging = self.control.charging
        step = charging.last
        ems = self.control.ems.last if self.control.ems is not None else None
        ess_w = ems.ess.discharge_w if ems is not None and ems.ess is not None else 0.0
        ev_w = charging.ev_power_w
        now = self._clock.now()
        if m is None:
            return  # no reading: a gap in the history, not made-up flows
        b = m.building
        grid_w = b.consumption_w - b.generation_w + ev_w - ess_w
        granted = step.granted_w if step is not None else None
        flows = (b.consumption_w, b.generation_w, ess_w, ev_w, granted, step_reason(step))
        self._history.record(FlowSample(now, grid_w, *flows))
        if self._metered and self.control.billing is not None:
            try:
                await self.control.record_sources(self._step_s, b.generation_w, ess_w, grid_w)
            except Exception:
                log.exception("site: the step's energy sources could not be recorded")


class RunningSiteView:
    """The running site as the web UI sees it (``web.live.SiteView``), on any clock."""

    def __init__(self, site: Site, clock: Clock, control: SiteControl, history: FlowHistory) -> None:
        self._site = site
        self._clock = clock
        self._control = control
        self._history = history

    @property
    def site(self) -> Site:
        return self._site

    def now(self) -> datetime:
        return self._clock.now()

    def history(self) -> Sequence[FlowSample]:
        return self._history.samples()

    async def history_between(self, start: datetime, end: datetime, max_points: int) -> Sequence[FlowSample]:
        return await self._history.between(start, end, max_points)

    def charging(self) -> ChargingStep | None:
        return self._control.charging.last

    def reading(self, station_id: str, evse_id: int) -> ConnectorReading | None:
        live = self._control.charging.live.get(station_id, evse_id)
        if live.at is None:
            return None
        a = live.current_a
        return ConnectorReading(live.power_w, (a[0], a[1], a[2]), live.soc_pct)

    def preferences_of(self, tx: TransactionRecord) -> Preferences:
        return self._control.charging.preferences_of(tx)

    def set_preferences(self, transaction_id: int, preferences: Preferences) -> None:
        self._control.charging.set_preferences(transaction_id, preferences)

    async def wait_newer(self, version: int, timeout_s: float) -> int:
        return await self._history.wait_newer(version, timeout_s)

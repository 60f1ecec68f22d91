"""The simulated site around the stations: building load, PV, the battery, and the smart meter.

Implements the EMS's ports (``SiteMeter``, ``EssControl``) as a real site's meter and battery inverter
would: the meter reports a reading that is ``delay_steps`` old with a little noise, the battery follows its
set-point within its power and energy limits. ``advance`` moves the physics one step on the shared clock.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from chargeflow.clock import Clock
from chargeflow.sim.data import Profile
from chargeflow.site.measurement import BuildingPower, EssState, SiteMeasurement
from chargeflow.site.model import Site
from chargeflow.units import SECONDS_PER_HOUR


@dataclass(frozen=True, slots=True)
class SiteTruth:
    """What really flows in the step just simulated (positive grid: import; positive ESS: discharge)."""

    building_w: float
    pv_w: float
    ess_w: float
    ev_w: float

    @property
    def grid_w(self) -> float:
        return self.building_w - self.pv_w + self.ev_w - self.ess_w


class SimulatedSite:
    def __init__(
        self,
        site: Site,
        clock: Clock,
        building: Profile,
        pv: Profile,
        ev_power_w: Callable[[], float],
        noise_pct: float = 1.0,
        delay_steps: int = 1,
        ess_initial_soc: float = 0.5,
        seed: int = 1,
    ) -> None:
        self.site = site
        self._clock = clock
        self._building = building
        self._pv = pv
        self._ev_power_w = ev_power_w
        self._noise = noise_pct / 100.0
        self._rng = random.Random(seed)
        self._readings: deque[SiteMeasurement] = deque(maxlen=delay_steps + 1)
        ess = site.ess
        self.stored_wh = (ess.capacity_wh or 0) * ess_initial_soc if ess else 0.0
        self._setpoint_w = 0.0
        self.extra_load_w = 0.0  # a load switched on by hand (the demo's "step change")
        self.truth = SiteTruth(0.0, 0.0, 0.0, 0.0)
        self.advance(0.0)

    # --- the EMS's ports ---

    async def read(self) -> SiteMeasurement:
        return self._readings[0]

    async def set_discharge(self, discharge_w: float) -> None:
        self._setpoint_w = discharge_w

    # --- physics ---

    def building_w(self) -> float:
        peak = self.site.building_peak_w or 0.0
        return peak * self._building.at(self._clock.now()) + self.extra_load_w

    def pv_w(self) -> float:
        return sum(p.peak_w for p in self.site.pv) * self._pv.at(self._clock.now())

    def advance(self, step_s: float) -> SiteTruth:
        """The step that just ran, and a new meter reading at the clock's time."""
        ess = self.site.ess
        ess_w = 0.0
        if ess is not None and step_s > 0:
            hours = step_s / SECONDS_PER_HOUR
            if self._setpoint_w >= 0:
                ess_w = min(
                    self._setpoint_w, ess.max_discharge_w, max(self.stored_wh - ess.min_wh, 0.0) / hours
                )
            else:
                room = float("inf") if ess.capacity_wh is None else max(ess.capacity_wh - self.stored_wh, 0.0)
                ess_w = -min(-self._setpoint_w, ess.max_charge_w, room / hours)
            self.stored_wh -= ess_w * hours
        building, pv = self.building_w(), self.pv_w()
        self.truth = SiteTruth(building, pv, ess_w, self._ev_power_w())
        noisy = BuildingPower(
            building * (1 + self._rng.gauss(0, self._noise)),
            max(pv * (1 + self._rng.gauss(0, self._noise)), 0.0),
        )
        state = EssState(self.stored_wh) if ess is not None else None
        self._readings.append(SiteMeasurement(self._clock.now(), noisy, state, self.truth.ev_w))
        return self.truth

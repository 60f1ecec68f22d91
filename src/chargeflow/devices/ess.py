"""The EMS's ESS port (``ems.service.EssControl``) on the site's battery device.

A device offers the capability only where the hardware has it (``SettableBattery``: today a SunSpec battery
with a 124 basic storage model). A battery that takes no setpoint, or refuses or misses one, is left to its
own control, logged once, and the step goes on: the EMS publishes its grant all the same, and the next step's
reading of the battery shows what it really did (the EMS sets the ESS "as if", ``ems.service``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


@runtime_checkable
class SettableBattery(Protocol):
    @property
    def writable(self) -> bool: ...

    async def set_discharge(self, discharge_w: float) -> None: ...


class DeviceEss:
    def __init__(self, device_id: str, battery: SettableBattery, timeout_s: float = 3.0) -> None:
        self._id = device_id
        self._battery = battery
        self._timeout_s = timeout_s  # below the EMS's own timeout for the call (5 s), so the step goes on
        self._problem: str | None = None
        self.setpoint_w: float | None = None  # the last setpoint the battery took

    async def set_discharge(self, discharge_w: float) -> None:
        if not self._battery.writable:
            self._report("it takes no setpoint (no writable storage model read yet)")
            return
        try:
            await asyncio.wait_for(self._battery.set_discharge(discharge_w), self._timeout_s)
        except (OSError, ValueError, TimeoutError) as err:  # SunSpecError is a ValueError
            self._report(f"a setpoint failed ({type(err).__name__} {err})")
            return
        self.setpoint_w = discharge_w
        if self._problem is not None:
            log.info("battery %s: takes its setpoints again", self._id)
        self._problem = None

    def _report(self, problem: str) -> None:
        """Logged once, until the problem changes or ends."""
        if problem != self._problem:
            log.warning("battery %s: %s; it runs on its own control", self._id, problem)
        self._problem = problem

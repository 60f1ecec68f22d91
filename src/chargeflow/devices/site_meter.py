"""The site meter (``site.measurement.SiteMeter``) over the site's devices.

The measurement is as old as the grid (or building) meter's reading, so a silent meter makes a stale
measurement that the EMS and the CSM will not use. A reading older than its device's ``stale_after_s``, or
implausible, is not used at all: ``read`` raises ``StaleReading`` naming the device and why, and both
actors fall back to their safe step.

Circuit meters (role ``circuit``) are passed on as they are, one ``CircuitReading`` each; one that cannot be
used (stale, or implausible against the site's limits) is passed on without its power, so that only its
circuit falls back (``site.circuit_loads``), not the whole site.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chargeflow.clock import Clock
from chargeflow.devices.base import Device
from chargeflow.devices.reading import Reading, building_from, implausible, implausible_currents
from chargeflow.site.circuit_loads import CircuitReading
from chargeflow.site.measurement import EssState, SiteMeasurement
from chargeflow.site.model import Site


class StaleReading(OSError):
    """A device's reading cannot be used (too old, implausible or missing)."""


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    id: str
    role: str
    age_s: float | None
    used: bool
    reason: str | None


class DevicesMeter:
    def __init__(
        self, site: Site, devices: Sequence[Device], clock: Clock, ev_power_w: Callable[[], float]
    ) -> None:
        roles = {d.config.role for d in devices}
        if not roles & {"grid", "building"}:
            raise ValueError("a site meter needs a grid or a building meter")
        self._site = site
        self._devices: dict[str, Device] = {d.config.role: d for d in devices if d.config.role != "circuit"}
        self._circuit_meters = [d for d in devices if d.config.role == "circuit"]
        self._clock = clock
        self._ev_power_w = ev_power_w
        fuse_w = min(site.root.fuse_a) * site.voltage_v * 3
        self._limit_w = max(site.grid.max_import_w, site.grid.max_export_w, fuse_w)

    def _problem(self, device: Device) -> str | None:
        reading = device.latest
        if reading is None:
            return device.error or "no reading yet"
        age = (self._clock.now() - reading.at).total_seconds()
        if age > device.config.stale_after_s:
            return f"its reading is {age:.0f} s old" + (f" ({device.error})" if device.error else "")
        problem = implausible(reading.power_w, device.config.role, self._limit_w)
        if problem is None and reading.current_a is not None:
            # against the site's main fuse, not the circuit's own: a circuit over its fuse is what the
            # control must see and act on, not a reading to throw away; past the main fuse it cannot last
            problem = implausible_currents(reading.current_a, self._site.root.fuse_a)
        return problem

    def _circuit(self, device: Device) -> CircuitReading:
        circuit = device.config.circuit
        assert circuit is not None  # checked with the site file
        reading = device.latest
        if reading is None or self._problem(device) is not None:
            return CircuitReading(circuit, None)
        return CircuitReading(circuit, reading.power_w, reading.current_a)

    def _usable(self, role: str) -> Reading | None:
        device = self._devices.get(role)
        if device is None:
            return None
        problem = self._problem(device)
        if problem is not None:
            raise StaleReading(f"meter {device.config.id} ({role}): {problem}")
        reading: Reading | None = device.latest
        return reading

    async def read(self) -> SiteMeasurement:
        grid, building = self._usable("grid"), self._usable("building")
        pv, battery = self._usable("pv"), self._usable("battery")
        base = grid if building is None else building
        assert base is not None
        power = building_from(
            grid.power_w if grid is not None else None,
            building.power_w if building is not None else None,
            pv.power_w if pv is not None else 0.0,
            self._ev_power_w(),
            battery.power_w if battery is not None else 0.0,
        )
        ess = None
        capacity = self._site.ess.capacity_wh if self._site.ess is not None else None
        if battery is not None and battery.soc_pct is not None and capacity:
            ess = EssState(capacity * battery.soc_pct / 100.0)
        circuits = tuple(self._circuit(d) for d in self._circuit_meters)
        return SiteMeasurement(base.at, power, ess, self._ev_power_w(), circuits)

    def status(self) -> list[DeviceStatus]:
        out = []
        for device in [*self._devices.values(), *self._circuit_meters]:
            role = device.config.role
            reading = device.latest
            age = (self._clock.now() - reading.at).total_seconds() if reading is not None else None
            problem = self._problem(device)
            out.append(DeviceStatus(device.config.id, role, age, problem is None, problem))
        return out

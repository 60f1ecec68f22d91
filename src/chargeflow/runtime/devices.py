"""The site's meter as its file names it: the devices under ``meters:`` and their tasks, or, where it
names none, the stations' meters with the building at its declared peak (``runtime.site.StationsMeter``).

A device whose reading jumps by more than ``JUMP_SHARE`` of the grid limit (a circuit meter: or of its
circuit's fuse) wakes the control loop, so that a step in the site's load reaches the stations within a
fraction of the control step.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from chargeflow.clock import Clock
from chargeflow.devices.base import Device
from chargeflow.devices.build import build_devices
from chargeflow.devices.ess import DeviceEss, SettableBattery
from chargeflow.devices.site_meter import DevicesMeter
from chargeflow.runtime.site import StationsMeter
from chargeflow.site.config import load_meters
from chargeflow.site.measurement import SiteMeter
from chargeflow.site.model import Site

JUMP_SHARE = 0.05


@dataclass(frozen=True, slots=True)
class MeterSetup:
    meter: SiteMeter
    metered: bool  # a grid meter measures the site: the step's flows are real, and billing attributes them
    description: str  # for the start-up lines
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # set when a reading jumps
    ess: DeviceEss | None = None  # the battery's setpoint, where its device takes one


@contextlib.asynccontextmanager
async def site_meter(
    site_file: Path, site: Site, clock: Clock, ev_power_w: Callable[[], float]
) -> AsyncIterator[MeterSetup]:
    """The site's meter for the life of the block (its devices' tasks run meanwhile)."""
    config = load_meters(site_file)
    if not config.meters:
        peak = site.building_peak_w or 0.0
        yield MeterSetup(
            StationsMeter(site, clock, ev_power_w),
            False,
            f"no meter named: the building is counted at its peak ({peak:.0f} W), "
            "the EVs as their stations say",
        )
        return
    wake = asyncio.Event()
    seen: dict[str, float] = {}
    jump_w = JUMP_SHARE * max(site.grid.max_import_w, 1.0)
    fuses_w = {c.id: min(c.fuse_a) * 3 * site.voltage_v for c in site.circuits}
    holder: list[Device] = []

    def jump_of(device: Device) -> float:
        """A circuit meter's jump is a share of its own circuit's fuse too: a heat pump that starts on a
        16 A sub-circuit is a small part of the grid limit but a large one of its fuse."""
        circuit = device.config.circuit
        if device.config.role == "circuit" and circuit is not None:
            return min(jump_w, JUMP_SHARE * fuses_w[circuit])
        return jump_w

    def on_reading() -> None:
        for device in holder:
            if device.latest is not None:
                last = seen.get(device.config.id)
                seen[device.config.id] = device.latest.power_w
                if last is None or abs(device.latest.power_w - last) > jump_of(device):
                    wake.set()

    holder.extend(build_devices(config, clock, on_reading))
    meter = DevicesMeter(site, holder, clock, ev_power_w)
    described = ", ".join(f"{d.config.id} ({d.config.role}, {d.config.adapter})" for d in holder)
    battery = next((d for d in holder if d.config.role == "battery" and isinstance(d, SettableBattery)), None)
    tasks = [asyncio.create_task(d.run(), name=f"meter-{d.config.id}") for d in holder]
    try:
        yield MeterSetup(
            meter,
            any(d.config.role == "grid" for d in holder),
            f"meters {described}",
            wake,
            DeviceEss(battery.config.id, battery) if battery is not None else None,
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

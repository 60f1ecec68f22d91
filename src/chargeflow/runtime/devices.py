"""The site's meter as its file names it: the devices under ``meters:`` and their tasks, or, where it
names none, the stations' meters with the building at its declared peak (``runtime.site.StationsMeter``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from chargeflow.clock import Clock
from chargeflow.runtime.site import StationsMeter
from chargeflow.site.measurement import SiteMeter
from chargeflow.site.model import Site


@dataclass(frozen=True, slots=True)
class MeterSetup:
    meter: SiteMeter
    metered: bool  # a grid meter measures the site: the step's flows are real, and billing attributes them
    description: str  # for the start-up lines


@contextlib.asynccontextmanager
async def site_meter(
    site_file: Path, site: Site, clock: Clock, ev_power_w: Callable[[], float]
) -> AsyncIterator[MeterSetup]:
    """The site's meter for the life of the block (its devices' tasks run meanwhile)."""
    peak = site.building_peak_w or 0.0
    yield MeterSetup(
        StationsMeter(site, clock, ev_power_w),
        False,
        f"no meter named: the building is counted at its peak ({peak:.0f} W), the EVs as their stations say",
    )

"""The port the web UI reads the running site through, and the live history it keeps.

``SiteView`` is all the dashboard and the driver page need from a running site: the site model, the
latest power flows, the latest charging step with its per-station limits and reasons, what the stations'
meters report, the preferences of a session and a way to set them. The composition root (``runtime.site``)
implements it from the running objects; the UI never reaches into the CSM or the EMS itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from chargeflow.csm.demand import Preferences
from chargeflow.csm.model import TransactionRecord
from chargeflow.csm.smart_charging import ChargingStep
from chargeflow.site.model import Site


@dataclass(frozen=True, slots=True)
class FlowSample:
    """The site's power flows at one moment (positive grid: import; positive ESS: discharge)."""

    at: datetime
    grid_w: float
    building_w: float
    pv_w: float
    ess_w: float
    ev_w: float
    granted_w: float | None


@dataclass(frozen=True, slots=True)
class ConnectorReading:
    """What a station's meter last said about one connector."""

    power_w: float | None
    current_a: tuple[float, float, float]  # on the station's L1..L3
    soc_pct: float | None


class SiteView(Protocol):
    @property
    def site(self) -> Site: ...

    def now(self) -> datetime: ...

    def history(self) -> Sequence[FlowSample]:
        """The flows of the last hours, oldest first."""
        ...

    def charging(self) -> ChargingStep | None: ...

    def reading(self, station_id: str, evse_id: int) -> ConnectorReading | None: ...

    def preferences_of(self, tx: TransactionRecord) -> Preferences: ...

    def set_preferences(self, transaction_id: int, preferences: Preferences) -> None: ...

    async def wait_newer(self, version: int, timeout_s: float) -> int:
        """Wait until a step newer than ``version`` is recorded (or the timeout); the latest version."""
        ...


class FlowHistory:
    """A ring buffer of the flows over ``keep`` of simulated time, with a version counter to wait on."""

    def __init__(self, keep: timedelta = timedelta(hours=3), max_samples: int = 2000) -> None:
        self._keep = keep
        self._samples: deque[FlowSample] = deque(maxlen=max_samples)
        self.version = 0
        self._changed = asyncio.Event()

    def record(self, sample: FlowSample) -> None:
        self._samples.append(sample)
        while self._samples and self._samples[0].at < sample.at - self._keep:
            self._samples.popleft()
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def samples(self) -> list[FlowSample]:
        return list(self._samples)

    async def wait_newer(self, version: int, timeout_s: float) -> int:
        if self.version > version:
            return self.version
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout_s)
        return self.version

"""The port the web UI reads the running site through, and the live history it keeps.

``SiteView`` is all the dashboard and the driver page need from a running site: the site model, the
latest power flows, the latest charging step with its per-station limits and reasons, what the stations'
meters report, the preferences of a session and a way to set them. The composition root (``runtime.site``)
implements it from the running objects; the UI never reaches into the CSM or the EMS itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from chargeflow.csm.demand import Preferences
from chargeflow.csm.model import TransactionRecord
from chargeflow.csm.smart_charging import ChargingStep
from chargeflow.site.flows import FlowSample
from chargeflow.site.model import Site

__all__ = ["ConnectorReading", "FlowArchive", "FlowHistory", "FlowSample", "SiteView", "step_reason"]


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

    async def history_between(self, start: datetime, end: datetime, max_points: int) -> Sequence[FlowSample]:
        """The flows in [start, end), oldest first, averaged down to at most ``max_points``."""
        ...

    def charging(self) -> ChargingStep | None: ...

    def reading(self, station_id: str, evse_id: int) -> ConnectorReading | None: ...

    def preferences_of(self, tx: TransactionRecord) -> Preferences: ...

    def set_preferences(self, transaction_id: int, preferences: Preferences) -> None: ...

    async def wait_newer(self, version: int, timeout_s: float) -> int:
        """Wait until a step newer than ``version`` is recorded (or the timeout); the latest version."""
        ...


def step_reason(step: ChargingStep | None) -> str | None:
    """The reason code of the limit in force at a step, as the history keeps it: the fallback where the
    safe limit applies, else the reason most stations' limits give (a tie: the first station's)."""
    if step is None:
        return None
    if step.fallback:
        return step.fallback
    reasons = Counter(limit.reason for limit in step.limits)
    return reasons.most_common(1)[0][0] if reasons else None


class FlowArchive(Protocol):
    """Where the history outlives the process (``store.flows.FlowStore``)."""

    def add(self, sample: FlowSample) -> None: ...

    async def flush(self, timeout_s: float | None = None) -> None: ...

    async def range(self, start: datetime, end: datetime, max_points: int) -> list[FlowSample]: ...


class FlowHistory:
    """A ring buffer of the flows over ``keep`` of simulated time, with a version counter to wait on; with
    a ``store``, each sample is also handed to it (without waiting) and longer ranges are read from it."""

    def __init__(
        self,
        keep: timedelta = timedelta(hours=3),
        max_samples: int = 2000,
        store: FlowArchive | None = None,
    ) -> None:
        self._keep = keep
        self._samples: deque[FlowSample] = deque(maxlen=max_samples)
        self._store = store
        self.version = 0
        self._changed = asyncio.Event()

    def record(self, sample: FlowSample) -> None:
        self._samples.append(sample)
        while self._samples and self._samples[0].at < sample.at - self._keep:
            self._samples.popleft()
        if self._store is not None:
            self._store.add(sample)
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def samples(self) -> list[FlowSample]:
        return list(self._samples)

    async def load_recent(self, now: datetime) -> int:
        """The stored samples of the last ``keep`` before ``now`` put back in front of the buffer (at
        start-up, so that the dashboard's recent view survives a restart); how many."""
        if self._store is None:
            return 0
        first = self._samples[0].at if self._samples else now + timedelta(microseconds=1)
        stored = await self._store.range(now - self._keep, first, self._samples.maxlen or 2000)
        room = (self._samples.maxlen or len(stored)) - len(self._samples)
        older = stored[-room:] if room > 0 else []
        self._samples.extendleft(reversed(older))
        return len(older)

    async def between(self, start: datetime, end: datetime, max_points: int) -> list[FlowSample]:
        """The flows in [start, end): from the store, averaged to at most ``max_points``, once the samples
        handed to it are written; without a store, what the buffer holds of that range."""
        if self._store is None:
            return [s for s in self._samples if start <= s.at < end]
        await self._store.flush(5.0)
        return await self._store.range(start, end, max_points)

    async def flush(self) -> None:
        if self._store is not None:
            await self._store.flush()

    async def wait_newer(self, version: int, timeout_s: float) -> int:
        if self.version > version:
            return self.version
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout_s)
        return self.version
